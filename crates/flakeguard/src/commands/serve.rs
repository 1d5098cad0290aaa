//! `flakeguard serve`: read the settings, open (and on SQLite migrate) the store, bind the
//! roles' ports, serve until SIGTERM or Ctrl-C, drain, exit 0.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result};
use flakeguard_api::{AppState, Listeners};
use flakeguard_app::{Environment, Settings};
use tokio::net::TcpListener;

use crate::cli::{Role, ServeArgs};
use crate::database::Database;

pub(crate) fn run(args: &ServeArgs) -> Result<ExitCode> {
    let env = Environment::from_process(Path::new(".env"), Some(PathBuf::from("/run/secrets")))?;
    let settings = Settings::from_env(&env)?;
    crate::telemetry::init(&settings);
    let database = Database::from_settings(&settings)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(serve(args, settings, database))?;
    Ok(ExitCode::SUCCESS)
}

async fn serve(args: &ServeArgs, settings: Settings, database: Database) -> Result<()> {
    let store = database
        .open()
        .await
        .with_context(|| format!("cannot open {}", database.describe()))?;
    let apply = match (args.migrate, args.no_migrate) {
        (true, _) => Some(true),
        (false, true) => Some(false),
        (false, false) => None,
    };
    let applied = crate::database::ensure_migrated(&database, &*store, apply).await?;
    if applied > 0 {
        tracing::info!(count = applied, "applied pending migrations");
    }
    tracing::info!(
        database = %database.describe(),
        production = settings.production,
        "starting FlakeGuard {}",
        env!("CARGO_PKG_VERSION")
    );
    if settings.api_key.is_none() {
        tracing::info!(
            "no API_KEY set: the API accepts only tokens from `flakeguard token create` or `flakeguard seed`"
        );
    }
    let bind = async |name: &str, port: u16| -> Result<TcpListener> {
        let addr = SocketAddr::new(settings.host, port);
        TcpListener::bind(addr)
            .await
            .with_context(|| format!("cannot listen on {addr} ({name})"))
    };
    let wants = |role: Role| args.role == Role::All || args.role == role;
    let listeners = Listeners {
        api: match wants(Role::Api) {
            true => Some(bind("PORT", settings.port).await?),
            false => None,
        },
        worker: match wants(Role::Worker) {
            true => Some(bind("WORKER_PORT", settings.worker_port).await?),
            false => None,
        },
        web: match wants(Role::Web) {
            true => Some(bind("WEB_PORT", settings.web_port).await?),
            false => None,
        },
    };
    let state = AppState::new(store, settings);
    flakeguard_api::serve(state, listeners, shutdown_signal()).await?;
    Ok(())
}

/// SIGTERM (what `docker stop` and Kubernetes send) or Ctrl-C.
async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = tokio::signal::ctrl_c() => {}
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen for SIGTERM; Ctrl-C still stops the server");
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
