//! A repository's effective policy: its stored `.flakeguard.yml` settings (through the API or
//! from the repository) over the defaults, with its CODEOWNERS, and what it does to scores —
//! each test judged by its team's thresholds, `exclude_paths` not judged, `exempted_tests`
//! never recommended for quarantine. The score job, the full rescore and the quarantine plan
//! all judge through [`RepoPolicy::score`], so they agree.

use flakeguard_core::config::Problem;
use flakeguard_core::{
    Codeowners, Policy, Recommendation, RepoConfig, Status, TestKey, TestScore, score_all_with,
};
use flakeguard_store::{
    PolicyOrigin, RepoId, Store, StoreError, StoredHistory, StoredPolicy, TestCaseId,
};
use serde_json::{Map, Value};
use time::OffsetDateTime;

/// Where a repository's effective settings come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PolicySource {
    /// Nothing stored (or a stored file that no longer parses): the defaults.
    Default,
    /// Stored through `PUT …/policy`.
    Api,
    /// The repository's `.flakeguard.yml`.
    File,
}

impl PolicySource {
    pub fn as_str(self) -> &'static str {
        match self {
            PolicySource::Default => "default",
            PolicySource::Api => "api",
            PolicySource::File => "file",
        }
    }
}

/// A repository's policy as it judges: settings, where they come from, and CODEOWNERS.
#[derive(Debug, Clone)]
pub struct RepoPolicy {
    pub config: RepoConfig,
    pub source: PolicySource,
    /// What is stored, when anything is.
    pub stored: Option<StoredPolicy>,
    pub codeowners: Option<Codeowners>,
    /// The problems of a stored policy that does not parse (a repository's file is stored as
    /// read, valid or not); the defaults apply meanwhile.
    pub problems: Vec<Problem>,
}

impl RepoPolicy {
    /// The repository's policy: what is stored, over the defaults. One store read.
    pub async fn load(store: &dyn Store, repo: RepoId) -> Result<RepoPolicy, StoreError> {
        Self::load_or(store, repo, &RepoConfig::default()).await
    }

    /// As [`RepoPolicy::load`], with `fallback` where no policy is stored (the worker's
    /// configured default policy).
    pub async fn load_or(
        store: &dyn Store,
        repo: RepoId,
        fallback: &RepoConfig,
    ) -> Result<RepoPolicy, StoreError> {
        let stored = store.repo_policy(repo).await?;
        Ok(Self::from_stored(stored, fallback))
    }

    /// Builds the policy from what is stored.
    pub fn from_stored(stored: Option<StoredPolicy>, fallback: &RepoConfig) -> RepoPolicy {
        let codeowners = stored
            .as_ref()
            .and_then(|s| s.codeowners.as_deref())
            .map(Codeowners::parse);
        let parsed = stored
            .as_ref()
            .and_then(|s| Some((s.source.as_deref()?, s.origin?)));
        let (config, source, problems) = match parsed {
            None => (fallback.clone(), PolicySource::Default, Vec::new()),
            Some((text, origin)) => match RepoConfig::parse(text) {
                Ok(config) => (
                    config,
                    match origin {
                        PolicyOrigin::Api => PolicySource::Api,
                        PolicyOrigin::File => PolicySource::File,
                    },
                    Vec::new(),
                ),
                Err(problems) => {
                    tracing::warn!(
                        problems = problems.len(),
                        "the stored policy does not parse; the defaults apply"
                    );
                    (fallback.clone(), PolicySource::Default, problems)
                }
            },
        };
        RepoPolicy {
            config,
            source,
            stored,
            codeowners,
            problems,
        }
    }

    /// The same policy with other settings (the plan's overrides).
    #[must_use]
    pub fn with_config(&self, config: RepoConfig) -> RepoPolicy {
        RepoPolicy {
            config,
            ..self.clone()
        }
    }

    /// The owners CODEOWNERS names for the test's path (see [`test_path`]).
    pub fn owners(&self, file: Option<&str>, key: &TestKey) -> Option<Vec<String>> {
        let codeowners = self.codeowners.as_ref()?;
        codeowners.owner_for(&test_path(file, key)?)
    }

    /// The test's owner: the first owner CODEOWNERS names for its path.
    pub fn owner(&self, file: Option<&str>, key: &TestKey) -> Option<String> {
        self.owners(file, key)?.into_iter().next()
    }

    /// Scores the tests of `history` under this policy: each test by its team's thresholds
    /// (the override named after its owner, else the first whose `paths` match its file),
    /// tests under `exclude_paths` recommended nothing, tests matching `exempted_tests`
    /// never recommended for quarantine (a warning at most). Same order as `history.tests`.
    pub fn score(&self, history: &StoredHistory, now: OffsetDateTime) -> Vec<TestScore> {
        let config = &self.config;
        let plain = config.team_overrides.is_empty()
            && config.exclude_paths.is_empty()
            && config.exempted_tests.is_empty();
        if plain {
            return score_all_with(&history.runs, &history.tests, &config.policy, &[], now);
        }
        // One policy per team, chosen per test by index.
        let team_policies: Vec<Policy> = config
            .team_overrides
            .iter()
            .map(|o| o.apply(&config.policy))
            .collect();
        let paths: Vec<Option<String>> = history
            .tests
            .iter()
            .map(|t| test_path(t.file.as_deref(), &t.key))
            .collect();
        let policies: Vec<&Policy> = history
            .tests
            .iter()
            .zip(&paths)
            .map(|(t, path)| {
                let owner = self.owner(t.file.as_deref(), &t.key);
                config
                    .team_override(path.as_deref(), owner.as_deref())
                    .and_then(|o| {
                        config
                            .team_overrides
                            .iter()
                            .position(|x| std::ptr::eq(x, o))
                    })
                    .map_or(&config.policy, |i| &team_policies[i])
            })
            .collect();
        let mut scores = score_all_with(
            &history.runs,
            &history.tests,
            &config.policy,
            &policies,
            now,
        );
        for ((score, test), path) in scores.iter_mut().zip(&history.tests).zip(&paths) {
            if let Some(glob) = config.exclusion(path.as_deref()) {
                score.recommendation = Recommendation::None;
                score.priority = None;
                score.reason = format!(
                    "Not judged: its file matches exclude_paths `{glob}`. {}",
                    score.reason
                );
            } else if let Some(glob) = config.exemption(&test.key)
                && score.recommendation == Recommendation::Quarantine
            {
                score.recommendation = Recommendation::Warn;
                score.reason = format!(
                    "{} Exempted from quarantine by exempted_tests `{glob}`: a warning only.",
                    score.reason
                );
            }
        }
        scores
    }

    /// The repository's effective settings as JSON, in the shape of `.flakeguard.yml` (every
    /// key, defaults filled; `team_overrides` a mapping of team names to what they set).
    pub fn settings_json(&self) -> Value {
        settings_json(&self.config)
    }
}

/// The repository's effective settings: the stored policy, or the defaults when none is
/// stored (or the stored one no longer parses).
pub async fn effective_config(store: &dyn Store, repo: RepoId) -> Result<RepoConfig, StoreError> {
    Ok(RepoPolicy::load(store, repo).await?.config)
}

/// The path CODEOWNERS and `exclude_paths` see for a test: its file when its reports name
/// one, else its classname when that looks like a path (`tests/test_cart.py`,
/// `spec/cart_spec.rb`), else none — a Java class name is not a path.
pub fn test_path(file: Option<&str>, key: &TestKey) -> Option<String> {
    if let Some(file) = file.map(str::trim).filter(|f| !f.is_empty()) {
        return Some(file.to_owned());
    }
    let class = key.classname.trim();
    let looks_like_path = !class.is_empty()
        && !class.contains(char::is_whitespace)
        && !class.contains("://")
        && (class.contains('/')
            || SOURCE_EXTENSIONS.iter().any(|ext| {
                class
                    .rsplit_once('.')
                    .is_some_and(|(stem, e)| !stem.is_empty() && e == *ext)
            }));
    looks_like_path.then(|| class.to_owned())
}

/// Extensions of test source files, for classnames that are file names.
const SOURCE_EXTENSIONS: &[&str] = &[
    "py", "rb", "js", "jsx", "ts", "tsx", "mjs", "cjs", "go", "rs", "php", "cs", "kt", "swift",
    "ex", "exs", "feature",
];

/// `config` as JSON in the shape of `.flakeguard.yml`.
pub fn settings_json(config: &RepoConfig) -> Value {
    let mut json = match serde_json::to_value(config) {
        Ok(Value::Object(map)) => map,
        _ => Map::new(),
    };
    let mut teams = Map::new();
    for o in &config.team_overrides {
        let mut fields = match serde_json::to_value(o) {
            Ok(Value::Object(map)) => map,
            _ => Map::new(),
        };
        fields.remove("team");
        teams.insert(o.team.clone(), Value::Object(fields));
    }
    json.insert("team_overrides".to_owned(), Value::Object(teams));
    if !json.contains_key("default_branch") {
        json.insert("default_branch".to_owned(), Value::Null);
    }
    Value::Object(json)
}

/// One test the policy would quarantine (the answer of `POST …/quarantine/plan`).
#[derive(Debug, Clone, PartialEq)]
pub struct PlanCandidate {
    pub test: TestCaseId,
    pub key: TestKey,
    pub file: Option<String>,
    pub probability: f64,
    pub status: Status,
    pub recommendation: Recommendation,
    /// Why: the verdict's sentence, the threshold it crossed, the evidence.
    pub reasons: Vec<String>,
    /// From CODEOWNERS, as an automatic quarantine would record it.
    pub owner: Option<String>,
    /// The test has a live (proposed or active) quarantine already.
    pub already_quarantined: bool,
}

/// The tests `policy` would quarantine now, most likely flaky first: the repository's whole
/// scoring window scored under `policy`, keeping those recommended for quarantine that are
/// not broken. Reads only; changes nothing.
pub async fn plan(
    store: &dyn Store,
    repo: RepoId,
    policy: &RepoPolicy,
    now: OffsetDateTime,
) -> Result<Vec<PlanCandidate>, StoreError> {
    let history = store
        .load_history(repo, policy.config.policy.rolling_window_size)
        .await?;
    let scores = policy.score(&history, now);
    let live: std::collections::HashSet<TestCaseId> = store
        .live_quarantines(repo)
        .await?
        .into_iter()
        .map(|(q, _)| q.test)
        .collect();
    let mut candidates: Vec<PlanCandidate> = history
        .tests
        .iter()
        .zip(&history.test_ids)
        .zip(&scores)
        .filter(|(_, s)| {
            s.recommendation == Recommendation::Quarantine && s.status != Status::Broken
        })
        .map(|((test, id), score)| {
            let owner = policy.owner(test.file.as_deref(), &test.key);
            let path = test_path(test.file.as_deref(), &test.key);
            let team = policy
                .config
                .team_override(path.as_deref(), owner.as_deref());
            let threshold = team
                .and_then(|o| o.flaky_threshold)
                .unwrap_or(policy.config.policy.flaky_threshold);
            let mut reasons = vec![score.reason.clone()];
            reasons.push(match team {
                Some(o) => format!(
                    "probability {:.2} ≥ flaky_threshold {threshold} of team {}",
                    score.probability, o.team
                ),
                None => format!(
                    "probability {:.2} ≥ flaky_threshold {threshold}",
                    score.probability
                ),
            });
            for e in &score.evidence {
                reasons.push(format!(
                    "{} evidence in {} run{}",
                    e.kind.as_str(),
                    e.runs.len(),
                    if e.runs.len() == 1 { "" } else { "s" }
                ));
            }
            PlanCandidate {
                test: *id,
                key: test.key.clone(),
                file: test.file.clone(),
                probability: score.probability,
                status: score.status,
                recommendation: score.recommendation,
                reasons,
                owner,
                already_quarantined: live.contains(id),
            }
        })
        .collect();
    candidates.sort_by(|a, b| {
        b.probability
            .total_cmp(&a.probability)
            .then_with(|| a.key.cmp(&b.key))
    });
    Ok(candidates)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(classname: &str) -> TestKey {
        TestKey::from_parts(None, "suite", Some(classname), "t")
    }

    #[test]
    fn a_test_path_is_its_file_or_a_classname_that_looks_like_one() {
        assert_eq!(
            test_path(Some("tests/a.py"), &key("x")).as_deref(),
            Some("tests/a.py")
        );
        assert_eq!(
            test_path(None, &key("tests/test_cart.py")).as_deref(),
            Some("tests/test_cart.py")
        );
        assert_eq!(
            test_path(None, &key("cart_spec.rb")).as_deref(),
            Some("cart_spec.rb")
        );
        for class in ["com.acme.CartTest", "", "Cart Test", "http://x/y", ".py"] {
            assert_eq!(test_path(None, &key(class)), None, "{class}");
        }
    }

    #[test]
    fn settings_json_has_the_file_shape_and_parses_back() {
        let config = RepoConfig::parse(
            "flaky_threshold: 0.8\nteam_overrides:\n  payments:\n    paths: ['pay/**']\n    min_occurrences: 9\n",
        )
        .unwrap();
        let json = settings_json(&config);
        assert_eq!(json["flaky_threshold"], 0.8);
        assert_eq!(json["warn_threshold"], 0.3);
        assert_eq!(json["default_branch"], Value::Null);
        assert_eq!(json["team_overrides"]["payments"]["min_occurrences"], 9);
        assert!(json["team_overrides"]["payments"].get("team").is_none());
        assert!(
            json["team_overrides"]["payments"]
                .get("flaky_threshold")
                .is_none()
        );
        let back = RepoConfig::parse(&json.to_string()).unwrap();
        assert_eq!(back, config, "JSON is YAML: the settings round-trip");
    }

    #[test]
    fn a_stored_policy_that_does_not_parse_falls_back_to_the_defaults() {
        let stored = StoredPolicy {
            repo: RepoId(1),
            source: Some("flaky_threshold: 7\n".to_owned()),
            origin: Some(PolicyOrigin::File),
            commit: Some("abc".to_owned()),
            updated_at: None,
            updated_by: None,
            codeowners: Some("* @acme/all\n".to_owned()),
            codeowners_source: Some("api".to_owned()),
            codeowners_updated_at: None,
        };
        let p = RepoPolicy::from_stored(Some(stored), &RepoConfig::default());
        assert_eq!(p.source, PolicySource::Default);
        assert_eq!(p.config, RepoConfig::default());
        assert_eq!(p.problems.len(), 1);
        assert_eq!(
            p.owner(Some("x.rs"), &key("c")).as_deref(),
            Some("@acme/all"),
            "CODEOWNERS still applies"
        );
        let none = RepoPolicy::from_stored(None, &RepoConfig::default());
        assert_eq!(
            (none.source, none.owner(Some("x"), &key("c"))),
            (PolicySource::Default, None)
        );
    }
}
