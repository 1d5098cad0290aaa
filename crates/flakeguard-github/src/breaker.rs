//! A circuit breaker shared by every call of one [`crate::GitHubApp`]: after a run of failed
//! calls it fails fast for a cool-off, then lets a single trial call through (half-open).

use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::GitHubError;

#[derive(Debug)]
pub(crate) struct Breaker {
    threshold: u32,
    cool_off: Duration,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    consecutive_failures: u32,
    /// While set and in the future, calls fail fast.
    open_until: Option<Instant>,
}

impl Breaker {
    pub(crate) fn new(threshold: u32, cool_off: Duration) -> Self {
        Breaker {
            threshold: threshold.max(1),
            cool_off,
            state: Mutex::new(State::default()),
        }
    }

    /// Admits a call, or refuses it while the breaker is open. Once the cool-off has passed
    /// the first caller is the trial: the breaker stays open for everyone else until the
    /// trial reports, and if the trial never reports (dropped) the next cool-off ends it.
    pub(crate) fn admit(&self) -> Result<(), GitHubError> {
        let mut state = self.lock();
        match state.open_until {
            Some(until) if Instant::now() < until => Err(GitHubError::CircuitOpen),
            Some(_) => {
                state.open_until = Some(Instant::now() + self.cool_off);
                Ok(())
            }
            None => Ok(()),
        }
    }

    pub(crate) fn record_success(&self) {
        let mut state = self.lock();
        let was_open = state.open_until.is_some();
        state.consecutive_failures = 0;
        state.open_until = None;
        if was_open {
            tracing::info!("github circuit breaker closed");
            metrics::gauge!(crate::metrics::CIRCUIT_OPEN).set(0.0);
        }
    }

    pub(crate) fn record_failure(&self) {
        let mut state = self.lock();
        state.consecutive_failures = state.consecutive_failures.saturating_add(1);
        let half_open_trial_failed = state.open_until.is_some();
        if half_open_trial_failed || state.consecutive_failures >= self.threshold {
            state.open_until = Some(Instant::now() + self.cool_off);
            tracing::warn!(
                failures = state.consecutive_failures,
                cool_off_secs = self.cool_off.as_secs_f64(),
                "github circuit breaker open"
            );
            metrics::gauge!(crate::metrics::CIRCUIT_OPEN).set(1.0);
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // The state is two plain fields; a panic elsewhere cannot leave it inconsistent.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opens_after_the_threshold_and_lets_one_trial_through_after_the_cool_off() {
        let breaker = Breaker::new(2, Duration::ZERO);
        breaker.admit().unwrap();
        breaker.record_failure();
        breaker.admit().unwrap();
        breaker.record_failure();
        // Cool-off of zero: the next admit is the half-open trial.
        breaker.admit().unwrap();
        breaker.record_failure();
        breaker.admit().unwrap();
        breaker.record_success();
        breaker.admit().unwrap();
        breaker.record_failure();
        // One failure after closing is below the threshold again.
        assert!(breaker.lock().open_until.is_none());
    }

    #[test]
    fn refuses_calls_while_open() {
        let breaker = Breaker::new(1, Duration::from_secs(3600));
        breaker.admit().unwrap();
        breaker.record_failure();
        assert!(matches!(breaker.admit(), Err(GitHubError::CircuitOpen)));
    }
}
