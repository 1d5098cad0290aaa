//! Running the roles until shutdown: each listener gets its router; on the shutdown signal
//! (SIGTERM or Ctrl-C, chosen by the caller) listeners stop accepting, in-flight requests are
//! drained for up to [`DRAIN_TIMEOUT`], and `serve` returns.

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::{AppState, api_router, web_router, worker_router};

/// Longest time in-flight requests get to finish after the shutdown signal.
pub const DRAIN_TIMEOUT: Duration = Duration::from_secs(30);

/// Builds one role's router.
type RouterFor = fn(AppState) -> Router;

/// The bound listeners of the roles this process runs.
#[derive(Debug, Default)]
pub struct Listeners {
    pub api: Option<TcpListener>,
    pub worker: Option<TcpListener>,
    pub web: Option<TcpListener>,
}

/// Serves every given listener until `shutdown` completes, then drains.
pub async fn serve(
    state: AppState,
    listeners: Listeners,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let (stop, stopped) = watch::channel(false);
    let mut servers = tokio::task::JoinSet::new();
    let roles: [(&str, Option<TcpListener>, RouterFor); 3] = [
        ("api", listeners.api, api_router),
        ("worker", listeners.worker, worker_router),
        ("web", listeners.web, web_router),
    ];
    for (role, listener, router) in roles {
        let Some(listener) = listener else { continue };
        let app = router(state.clone());
        let mut stopped = stopped.clone();
        if let Ok(addr) = listener.local_addr() {
            tracing::info!(role, "{role} listening on http://{addr}");
        }
        servers.spawn(async move {
            let result = axum::serve(
                listener,
                app.into_make_service_with_connect_info::<SocketAddr>(),
            )
            .with_graceful_shutdown(async move {
                let _ = stopped.wait_for(|s| *s).await;
            })
            .await;
            (role, result)
        });
    }
    let mut signal_stopped = stopped.clone();
    tokio::spawn(async move {
        shutdown.await;
        tracing::info!("shutdown requested: draining in-flight requests");
        let _ = stop.send(true);
    });
    let drain = async {
        let _ = signal_stopped.wait_for(|s| *s).await;
        tokio::time::sleep(DRAIN_TIMEOUT).await;
    };
    let all_done = async {
        let mut first_error = None;
        while let Some(joined) = servers.join_next().await {
            match joined {
                Ok((_, Ok(()))) => {}
                Ok((role, Err(e))) => {
                    tracing::error!(role, error = %e, "server failed");
                    first_error.get_or_insert(e);
                }
                Err(e) => {
                    first_error.get_or_insert(std::io::Error::other(e.to_string()));
                }
            }
        }
        first_error
    };
    tokio::select! {
        error = all_done => match error {
            Some(e) => Err(e),
            None => {
                tracing::info!("stopped");
                Ok(())
            }
        },
        () = drain => {
            tracing::warn!("requests still running after {} s: stopping anyway", DRAIN_TIMEOUT.as_secs());
            Ok(())
        }
    }
}
