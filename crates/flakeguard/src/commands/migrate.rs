//! `flakeguard migrate deploy|status`: apply or list the database's migrations.

use std::process::ExitCode;

use anyhow::{Context, Result};
use time::format_description::well_known::Rfc3339;

use crate::cli::MigrateCommand;

pub(crate) fn run(command: &MigrateCommand) -> Result<ExitCode> {
    crate::database::with_store(async |database, store| match command {
        MigrateCommand::Deploy => {
            let applied = store.migrate().await.context("migrations failed")?;
            if applied.is_empty() {
                println!("{}: up to date, nothing to apply", database.describe());
            }
            for m in &applied {
                println!("applied {:04} {}", m.version, m.name);
            }
            Ok(ExitCode::SUCCESS)
        }
        MigrateCommand::Status => {
            let states = store
                .migration_status()
                .await
                .context("cannot read migration status")?;
            println!("{}", database.describe());
            let mut pending = 0;
            for m in &states {
                match m.applied_at {
                    Some(at) => println!(
                        "applied  {:04} {}  ({})",
                        m.version,
                        m.name,
                        at.format(&Rfc3339).unwrap_or_default()
                    ),
                    None => {
                        pending += 1;
                        println!("pending  {:04} {}", m.version, m.name);
                    }
                }
            }
            if pending > 0 {
                println!("{pending} pending migration(s): run `flakeguard migrate deploy`");
                Ok(ExitCode::from(1))
            } else {
                Ok(ExitCode::SUCCESS)
            }
        }
    })
}
