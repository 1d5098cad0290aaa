//! `flakeguard serve` (and `api`, `worker`, `web`): read the settings, open (and on SQLite
//! migrate) the store, open the queue, bind the roles' ports, run the worker when the role
//! includes it, serve until SIGTERM or Ctrl-C, drain, exit 0.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use flakeguard_api::{AppState, Listeners};
use flakeguard_app::jobs::JobContext;
use flakeguard_app::{Environment, Settings};
use flakeguard_core::Policy;
use flakeguard_worker::WorkerConfig;
use tokio::net::TcpListener;

use crate::cli::{MigrateFlags, Role};
use crate::database::Database;

pub(crate) fn run(role: Role, migrations: MigrateFlags) -> Result<ExitCode> {
    let env = Environment::from_process(Path::new(".env"), Some(PathBuf::from("/run/secrets")))?;
    let settings = Settings::from_env(&env)?;
    crate::telemetry::init(&settings);
    let database = Database::from_settings(&settings)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(serve(role, migrations, settings, database))?;
    Ok(ExitCode::SUCCESS)
}

async fn serve(
    role: Role,
    migrations: MigrateFlags,
    settings: Settings,
    database: Database,
) -> Result<()> {
    let store = database
        .open()
        .await
        .with_context(|| format!("cannot open {}", database.describe()))?;
    let apply = match (migrations.migrate, migrations.no_migrate) {
        (true, _) => Some(true),
        (false, true) => Some(false),
        (false, false) => None,
    };
    let applied = crate::database::ensure_migrated(&database, &*store, apply).await?;
    if applied > 0 {
        tracing::info!(count = applied, "applied pending migrations");
    }
    let queue = crate::queue::open(&settings, &database).await?;
    tracing::info!(
        database = %database.describe(),
        queue = %crate::queue::describe(&settings, &database),
        ?role,
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
    let wants = |wanted: Role| role == Role::All || role == wanted;
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
    flakeguard_api::metrics::install();
    let github = flakeguard_app::github::GitHub::from_settings(&settings.github)
        .context("the GitHub App (GITHUB_APP_ID, GITHUB_PRIVATE_KEY_PATH)")?
        .map(Arc::new);
    if wants(Role::Worker) && github.is_none() && settings.github.webhook_secret.is_some() {
        tracing::warn!(
            "GITHUB_WEBHOOK_SECRET is set but no GitHub App (GITHUB_APP_ID and its private key): \
             deliveries are stored, but workflow runs cannot be read nor check runs posted"
        );
    }
    let worker = wants(Role::Worker).then(|| {
        let mut ctx = JobContext::new(Arc::clone(&store), Policy::default());
        ctx.failure_text_retention =
            Duration::from_secs(u64::from(settings.failure_text_retention_days) * 24 * 3600);
        ctx.github = github;
        let config = WorkerConfig {
            concurrency: settings.worker_concurrency,
            lease: settings.job_lease,
            ..WorkerConfig::default()
        };
        (ctx, config)
    });
    let state = AppState::new(store, Arc::clone(&queue), settings);
    // One signal stops both: the HTTP side drains requests while the worker drains jobs.
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let stopped = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|stop| *stop).await;
    };
    let worker = worker.map(|(ctx, config)| {
        tokio::spawn(flakeguard_worker::run(
            queue,
            ctx,
            config,
            stopped(stop_rx.clone()),
        ))
    });
    tokio::spawn(async move {
        shutdown_signal().await;
        tracing::info!("shutdown requested");
        let _ = stop_tx.send(true);
    });
    flakeguard_api::serve(state, listeners, stopped(stop_rx)).await?;
    if let Some(worker) = worker {
        worker.await.context("the worker stopped abnormally")?;
    }
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
