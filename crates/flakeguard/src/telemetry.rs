//! Logging: JSON lines in production, readable lines otherwise, at `LOG_LEVEL` (`RUST_LOG`
//! overrides it for debugging).

use std::io::IsTerminal;

use flakeguard_app::Settings;
use tracing_subscriber::EnvFilter;

pub(crate) fn init(settings: &Settings) {
    let level = settings.log_level.as_filter();
    let filter = std::env::var("RUST_LOG")
        .ok()
        .and_then(|f| EnvFilter::try_new(f).ok())
        .unwrap_or_else(|| {
            // sqlx logs every slow statement at info: keep it for warnings.
            EnvFilter::new(format!("{level},sqlx=warn"))
        });
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stdout);
    let result = if settings.production {
        builder
            .json()
            .with_current_span(true)
            .with_span_list(false)
            .try_init()
    } else {
        // Colours only for people: files and log collectors get plain text.
        builder
            .with_target(false)
            .with_ansi(std::io::stdout().is_terminal())
            .try_init()
    };
    // Already initialised (tests run several servers in one process): keep the first.
    drop(result);
}
