//! Choosing and opening the store: `DATABASE_URL` unset or `sqlite:` → an SQLite file in the
//! data directory (`FLAKEGUARD_DATA_DIR`, default `./data`); `postgres://` or `postgresql://`
//! → PostgreSQL. No compile-time backend switch.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use flakeguard_app::{Environment, Settings};
use flakeguard_store::Store;
use flakeguard_store_postgres::PostgresStore;
use flakeguard_store_sqlite::SqliteStore;

/// Where the data lives, as configured.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Database {
    Sqlite(PathBuf),
    Postgres(String),
}

impl Database {
    /// Reads `DATABASE_URL` and `FLAKEGUARD_DATA_DIR` as the server does: from the
    /// environment, `<NAME>_FILE`, `/run/secrets` or `.env`.
    pub(crate) fn from_env() -> Result<Self> {
        let env =
            Environment::from_process(Path::new(".env"), Some(PathBuf::from("/run/secrets")))?;
        let url = env.get("DATABASE_URL")?;
        let data_dir = env
            .get("FLAKEGUARD_DATA_DIR")?
            .filter(|d| !d.trim().is_empty())
            .unwrap_or_else(|| "data".to_owned());
        Self::parse(url.as_deref(), &data_dir)
    }

    /// The database the server's settings name.
    pub(crate) fn from_settings(settings: &Settings) -> Result<Self> {
        Self::parse(
            settings.database_url.as_ref().map(|u| u.expose()),
            &settings.data_dir.to_string_lossy(),
        )
    }

    pub(crate) fn parse(url: Option<&str>, data_dir: &str) -> Result<Self> {
        match url.map(str::trim) {
            None => Ok(Database::Sqlite(
                PathBuf::from(data_dir).join("flakeguard.db"),
            )),
            Some(u) if u.starts_with("postgres://") || u.starts_with("postgresql://") => {
                Ok(Database::Postgres(u.to_owned()))
            }
            Some(u) if u.starts_with("sqlite:") => {
                let path = u.trim_start_matches("sqlite:").trim_start_matches("//");
                if path.is_empty() {
                    bail!(
                        "DATABASE_URL: expected sqlite:PATH, postgres://… or postgresql://…, got an sqlite: URL without a path"
                    );
                }
                Ok(Database::Sqlite(PathBuf::from(path)))
            }
            Some(_) => bail!(
                "DATABASE_URL: expected postgres://…, postgresql://… or sqlite:PATH (or leave it unset for ./data/flakeguard.db)"
            ),
        }
    }

    /// A description safe to print: the SQLite path, or the PostgreSQL host and database
    /// without the password.
    pub(crate) fn describe(&self) -> String {
        match self {
            Database::Sqlite(path) => format!("SQLite at {}", path.display()),
            Database::Postgres(url) => {
                let rest = url.split_once("://").map(|(_, r)| r).unwrap_or(url);
                let host = rest.rsplit_once('@').map(|(_, h)| h).unwrap_or(rest);
                let host = host.split('?').next().unwrap_or(host);
                format!("PostgreSQL at {host}")
            }
        }
    }

    pub(crate) async fn open(&self) -> Result<Arc<dyn Store>> {
        Ok(match self {
            Database::Sqlite(path) => Arc::new(SqliteStore::open(path).await?),
            Database::Postgres(url) => Arc::new(PostgresStore::connect(url, 10).await?),
        })
    }
}

/// Applies pending migrations when `apply` says so for this database (`None`: only the
/// embedded SQLite database migrates itself, as there is no operator step to forget);
/// otherwise refuses with the command that applies them. Returns how many were applied.
pub(crate) async fn ensure_migrated(
    database: &Database,
    store: &dyn Store,
    apply: Option<bool>,
) -> Result<usize> {
    let pending = store
        .migration_status()
        .await?
        .iter()
        .filter(|m| m.is_pending())
        .count();
    if pending == 0 {
        return Ok(0);
    }
    if !apply.unwrap_or(matches!(database, Database::Sqlite(_))) {
        bail!(
            "{pending} migration(s) pending on {}: run `flakeguard migrate deploy` first",
            database.describe()
        );
    }
    Ok(store.migrate().await.context("migrations failed")?.len())
}

/// Opens the configured store on a small runtime and runs `work` with it: what every
/// database command does.
pub(crate) fn with_store<T>(
    work: impl AsyncFnOnce(&Database, Arc<dyn Store>) -> Result<T>,
) -> Result<T> {
    let database = Database::from_env()?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let store = database
            .open()
            .await
            .with_context(|| format!("cannot open {}", database.describe()))?;
        work(&database, store).await
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backend_follows_database_url() {
        assert_eq!(
            Database::parse(None, "d").unwrap(),
            Database::Sqlite(PathBuf::from("d/flakeguard.db"))
        );
        assert_eq!(
            Database::parse(Some("sqlite:/tmp/x.db"), "d").unwrap(),
            Database::Sqlite(PathBuf::from("/tmp/x.db"))
        );
        assert!(matches!(
            Database::parse(Some("postgresql://u:p@h/db"), "d").unwrap(),
            Database::Postgres(_)
        ));
        let err = Database::parse(Some("mysql://h/db"), "d")
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("DATABASE_URL: expected"), "{err}");
    }

    #[test]
    fn descriptions_never_show_passwords() {
        let db = Database::Postgres(
            "postgres://flake:s3cret@db.internal:5432/flakeguard?sslmode=require".to_owned(),
        );
        assert_eq!(db.describe(), "PostgreSQL at db.internal:5432/flakeguard");
    }
}
