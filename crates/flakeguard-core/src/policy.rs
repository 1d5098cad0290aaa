//! The repository's scoring policy: the thresholds and windows that turn a test's score into a
//! recommendation, and the infrastructure guards. It is the scoring part of `.flakeguard.yml`;
//! see `docs/scoring.md` for what each knob does.

use serde::{Deserialize, Serialize};

/// How verdicts become recommendations. Every field has a default, so an empty file is valid.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct Policy {
    /// Probability of flakiness at or above which a test is worth a warning.
    pub warn_threshold: f64,
    /// Probability of flakiness at or above which the recommendation is quarantine.
    pub flaky_threshold: f64,
    /// Executions (not counting failures discounted as infrastructure) needed before any
    /// recommendation.
    pub min_occurrences: u32,
    /// Failures within `lookback_days` of now needed before any recommendation, so a test that
    /// has been quiet for a while is not quarantined on old evidence.
    pub min_recent_failures: u32,
    /// How far back "recent" reaches, in days.
    pub lookback_days: u32,
    /// How many of the test's most recent runs are judged (all attempts in them).
    pub rolling_window_size: u32,
    /// Minimum confidence for a recommendation. 0 by default: the probability already weighs
    /// how much evidence there is; raise it to act only on strongly supported verdicts.
    pub confidence_threshold: f64,
    /// A run in which more than this share of its tests fail is an infrastructure outage: its
    /// failures are not evidence about any test.
    pub infra_failure_share: f64,
    /// Infrastructure is only blamed when at least this many distinct tests fail together: in a
    /// run for the outage rule, with one failure signature for the shared-signature rule.
    pub infra_signature_min_tests: u32,
    /// The branch whose failures can make a test "broken". `None` infers it: `main`, then
    /// `master`, else all branches together. A configured branch that no run names is inferred
    /// the same way.
    pub default_branch: Option<String>,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            warn_threshold: 0.3,
            flaky_threshold: 0.6,
            min_occurrences: 5,
            min_recent_failures: 2,
            lookback_days: 7,
            rolling_window_size: 50,
            confidence_threshold: 0.0,
            infra_failure_share: 0.30,
            infra_signature_min_tests: 10,
            default_branch: None,
        }
    }
}

impl Policy {
    /// Checks every value and lists every problem at once, each naming its key.
    pub fn validate(&self) -> Result<(), Vec<String>> {
        let mut problems = Vec::new();
        let mut unit = |key: &str, value: f64| {
            if !(0.0..=1.0).contains(&value) {
                problems.push(format!("{key} must be between 0 and 1, got {value}"));
            }
        };
        unit("warn_threshold", self.warn_threshold);
        unit("flaky_threshold", self.flaky_threshold);
        unit("confidence_threshold", self.confidence_threshold);
        unit("infra_failure_share", self.infra_failure_share);
        if self.warn_threshold > self.flaky_threshold {
            problems.push(format!(
                "warn_threshold ({}) must not exceed flaky_threshold ({})",
                self.warn_threshold, self.flaky_threshold
            ));
        }
        if self.min_occurrences == 0 {
            problems.push("min_occurrences must be at least 1".to_owned());
        }
        if !(1..=365).contains(&self.lookback_days) {
            problems.push(format!(
                "lookback_days must be between 1 and 365, got {}",
                self.lookback_days
            ));
        }
        if !(5..=500).contains(&self.rolling_window_size) {
            problems.push(format!(
                "rolling_window_size must be between 5 and 500, got {}",
                self.rolling_window_size
            ));
        }
        if self.infra_signature_min_tests < 2 {
            problems.push(format!(
                "infra_signature_min_tests must be at least 2 (one test alone is never infrastructure), got {}",
                self.infra_signature_min_tests
            ));
        }
        if self
            .default_branch
            .as_deref()
            .is_some_and(|b| b.trim().is_empty())
        {
            problems.push("default_branch must not be empty (omit it to infer)".to_owned());
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_match_the_documented_values() {
        let p = Policy::default();
        assert_eq!(p.validate(), Ok(()));
        assert_eq!(
            (p.warn_threshold, p.flaky_threshold, p.min_occurrences),
            (0.3, 0.6, 5)
        );
        assert_eq!(
            (
                p.min_recent_failures,
                p.lookback_days,
                p.rolling_window_size
            ),
            (2, 7, 50)
        );
    }

    #[test]
    fn validation_lists_every_bad_value_at_once() {
        let p = Policy {
            warn_threshold: 0.9,
            flaky_threshold: 1.5,
            confidence_threshold: f64::NAN,
            rolling_window_size: 4,
            lookback_days: 0,
            infra_signature_min_tests: 1,
            default_branch: Some(" ".into()),
            ..Policy::default()
        };
        let problems = p.validate().unwrap_err();
        for key in [
            "flaky_threshold must be between",
            "confidence_threshold",
            "rolling_window_size",
            "lookback_days",
            "infra_signature_min_tests",
            "default_branch",
        ] {
            assert!(
                problems.iter().any(|m| m.contains(key)),
                "{key} missing from {problems:?}"
            );
        }
        let warn_over_flaky = Policy {
            warn_threshold: 0.7,
            ..Policy::default()
        };
        assert!(
            warn_over_flaky.validate().unwrap_err()[0].contains("must not exceed flaky_threshold")
        );
    }

    #[test]
    fn missing_keys_take_defaults_and_unknown_keys_are_refused() {
        let p: Policy = serde_json::from_str(r#"{"flaky_threshold": 0.8}"#).unwrap();
        assert_eq!(p.flaky_threshold, 0.8);
        assert_eq!(p.warn_threshold, 0.3);
        assert!(serde_json::from_str::<Policy>(r#"{"flaky_treshold": 0.8}"#).is_err());
    }
}
