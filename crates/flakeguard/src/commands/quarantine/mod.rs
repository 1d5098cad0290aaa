//! `flakeguard quarantine export`: the repository's quarantined tests as skip or deselect
//! expressions for a test runner, from the server or a saved list. Only quarantines that apply
//! (active, not expired) are exported, except by `--format json`, which saves the whole live
//! list for `--quarantine-file`.

mod formats;

use std::io::Write;
use std::process::ExitCode;

use anyhow::Result;
use time::OffsetDateTime;

use crate::cli::{ExportArgs, ExportFormat, QuarantineCommand};
use crate::commands::upload::send::Retry;
use crate::commands::upload::target::Endpoint;
use crate::quarantine_list::{self, Entry, Page};

pub(crate) fn run(command: &QuarantineCommand) -> Result<ExitCode> {
    match command {
        QuarantineCommand::Export(args) => export(args),
    }
}

fn export(args: &ExportArgs) -> Result<ExitCode> {
    let entries = match &args.quarantine_file {
        Some(path) => match quarantine_list::load(path) {
            Ok(entries) => entries,
            Err(e) => {
                eprintln!("error: {e:#}");
                return Ok(ExitCode::from(1));
            }
        },
        None => {
            let endpoint = match Endpoint::resolve(&args.server, |n| std::env::var(n).ok()) {
                Ok(endpoint) => endpoint,
                Err(e) => {
                    eprintln!("error: {e:#}");
                    return Ok(ExitCode::from(2));
                }
            };
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            match runtime.block_on(quarantine_list::fetch(
                &endpoint,
                Retry::from_args(&args.server),
            )) {
                Ok(entries) => entries,
                Err(e) => {
                    eprintln!("error: cannot fetch the quarantine list: {e:#}");
                    return Ok(ExitCode::from(1));
                }
            }
        }
    };
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let now = OffsetDateTime::now_utc();
    let applying: Vec<&Entry> = entries.iter().filter(|e| e.applies(now)).collect();
    let rendered = match args.format {
        ExportFormat::Json => {
            serde_json::to_writer_pretty(&mut out, &Page::whole(entries.clone()))?;
            out.write_all(b"\n")?;
            out.flush()?;
            return Ok(ExitCode::SUCCESS);
        }
        ExportFormat::Pytest => formats::pytest(&applying),
        ExportFormat::Jest => formats::jest(&applying),
        ExportFormat::Nextest => formats::nextest(&applying),
        ExportFormat::Go => formats::go(&applying),
        ExportFormat::Junit5 => formats::junit5(&applying),
    };
    for test in &rendered.skipped {
        eprintln!("warning: cannot express {test:?} for this runner; it is not excluded");
    }
    out.write_all(rendered.text.as_bytes())?;
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}
