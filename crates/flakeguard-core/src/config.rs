//! The repository's policy file, `.flakeguard.yml`: the scoring [`Policy`], which tests are
//! judged at all, per-team overrides, quarantine rules, which CI artifacts hold test reports,
//! and where notifications go. See `docs/quarantine.md` for every key and its default.
//!
//! [`RepoConfig::parse`] reads the YAML into a value tree and walks it, so that it can report
//! **every** problem at once — unknown keys (with a suggestion), values of the wrong type or
//! out of range, invalid glob patterns, contradictory thresholds — each with its key path and,
//! when the key can be found in the text, its `line:column`.

mod locate;

use std::fmt;

use serde::{Serialize, Serializer};
use serde_yaml_ng::{Mapping, Value};

use crate::TestKey;
use crate::policy::Policy;
use locate::Locations;

/// Default artifact name patterns: artifacts whose name contains one of these words hold test
/// reports.
pub const DEFAULT_ARTIFACT_PATTERNS: &[&str] = &[
    "*junit*",
    "*test-results*",
    "*test-report*",
    "*surefire*",
    "*nextest*",
    "*pytest*",
    "*jest*",
];

/// The scoring keys: exactly the fields of [`Policy`].
const POLICY_KEYS: &[&str] = &[
    "warn_threshold",
    "flaky_threshold",
    "min_occurrences",
    "min_recent_failures",
    "lookback_days",
    "rolling_window_size",
    "confidence_threshold",
    "infra_failure_share",
    "infra_signature_min_tests",
    "default_branch",
];

/// Every top-level key.
const TOP_LEVEL_KEYS: &[&str] = &[
    "warn_threshold",
    "flaky_threshold",
    "min_occurrences",
    "min_recent_failures",
    "lookback_days",
    "rolling_window_size",
    "confidence_threshold",
    "infra_failure_share",
    "infra_signature_min_tests",
    "default_branch",
    "exempted_tests",
    "exclude_paths",
    "team_overrides",
    "auto_quarantine_enabled",
    "quarantine_duration_days",
    "labels_required",
    "release_after_clean_runs",
    "artifact_patterns",
    "team_notifications",
];

/// What a team override may set.
const TEAM_KEYS: &[&str] = &[
    "paths",
    "flaky_threshold",
    "warn_threshold",
    "min_occurrences",
    "min_recent_failures",
    "confidence_threshold",
    "auto_quarantine_enabled",
];

const NOTIFICATION_KEYS: &[&str] = &["slack_channels", "email_groups"];

/// A glob pattern as written, and compiled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Glob {
    pattern: glob::Pattern,
}

impl Glob {
    /// Compiles `pattern` (`*`, `?`, `[…]`, `**`); the error says what is wrong and where.
    pub fn new(pattern: &str) -> Result<Glob, String> {
        glob::Pattern::new(pattern)
            .map(|pattern| Glob { pattern })
            .map_err(|e| {
                format!(
                    "invalid pattern {pattern:?}: {} at character {}",
                    e.msg,
                    e.pos + 1
                )
            })
    }

    pub fn as_str(&self) -> &str {
        self.pattern.as_str()
    }

    /// Matches a name: `*` crosses any character, `/` included.
    pub fn matches_name(&self, name: &str) -> bool {
        self.pattern.matches_with(
            name,
            glob::MatchOptions {
                case_sensitive: true,
                require_literal_separator: false,
                require_literal_leading_dot: false,
            },
        )
    }

    /// Matches a path: `*` stays within one directory, `**` crosses directories.
    pub fn matches_path(&self, path: &str) -> bool {
        self.pattern.matches_with(
            path,
            glob::MatchOptions {
                case_sensitive: true,
                require_literal_separator: true,
                require_literal_leading_dot: false,
            },
        )
    }

    /// Matches regardless of ASCII case (artifact names).
    pub fn matches_ignoring_case(&self, name: &str) -> bool {
        self.pattern.matches_with(
            name,
            glob::MatchOptions {
                case_sensitive: false,
                require_literal_separator: false,
                require_literal_leading_dot: false,
            },
        )
    }
}

impl fmt::Display for Glob {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for Glob {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// Thresholds of one team: applied to tests the team owns, or whose file matches `paths`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TeamOverride {
    /// The team's name as written (e.g. a CODEOWNERS owner such as `@acme/payments`).
    pub team: String,
    /// Test files this override applies to, whoever owns them.
    pub paths: Vec<Glob>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub flaky_threshold: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub warn_threshold: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub min_occurrences: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub min_recent_failures: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub confidence_threshold: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub auto_quarantine_enabled: Option<bool>,
}

impl TeamOverride {
    /// `base` with this team's thresholds in place of its own.
    pub fn apply(&self, base: &Policy) -> Policy {
        let mut p = base.clone();
        if let Some(v) = self.flaky_threshold {
            p.flaky_threshold = v;
        }
        if let Some(v) = self.warn_threshold {
            p.warn_threshold = v;
        }
        if let Some(v) = self.min_occurrences {
            p.min_occurrences = v;
        }
        if let Some(v) = self.min_recent_failures {
            p.min_recent_failures = v;
        }
        if let Some(v) = self.confidence_threshold {
            p.confidence_threshold = v;
        }
        p
    }

    /// The keys this override sets, besides `paths`.
    fn set_keys(&self) -> Vec<&'static str> {
        let mut keys = Vec::new();
        for (set, key) in [
            (self.flaky_threshold.is_some(), "flaky_threshold"),
            (self.warn_threshold.is_some(), "warn_threshold"),
            (self.min_occurrences.is_some(), "min_occurrences"),
            (self.min_recent_failures.is_some(), "min_recent_failures"),
            (self.confidence_threshold.is_some(), "confidence_threshold"),
            (
                self.auto_quarantine_enabled.is_some(),
                "auto_quarantine_enabled",
            ),
        ] {
            if set {
                keys.push(key);
            }
        }
        keys
    }
}

/// Where notifications about the repository's flaky tests go.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Notifications {
    /// Slack channels: `#name` or a channel id (`C0123ABCD`).
    pub slack_channels: Vec<String>,
    /// Email addresses of groups.
    pub email_groups: Vec<String>,
}

/// Everything `.flakeguard.yml` says. Every key has a default, so an empty file is valid.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RepoConfig {
    /// The scoring keys (top level in the file).
    #[serde(flatten)]
    pub policy: Policy,
    /// Tests that are never recommended for quarantine, by name (see [`RepoConfig::exemption`]).
    pub exempted_tests: Vec<Glob>,
    /// Test files that are not judged at all.
    pub exclude_paths: Vec<Glob>,
    /// Per-team thresholds, in file order (the first match wins).
    pub team_overrides: Vec<TeamOverride>,
    /// Quarantine tests automatically when the recommendation is quarantine (never broken ones).
    pub auto_quarantine_enabled: bool,
    /// How long a quarantine lasts before it expires, in days.
    pub quarantine_duration_days: u32,
    /// Pull-request labels that must all be present for automatic quarantine.
    pub labels_required: Vec<String>,
    /// A quarantined test is released after this many consecutive clean runs; 0 never
    /// releases automatically (expiry still does).
    pub release_after_clean_runs: u32,
    /// CI artifacts whose name matches one of these (ignoring case) hold test reports.
    pub artifact_patterns: Vec<Glob>,
    pub team_notifications: Notifications,
}

impl Default for RepoConfig {
    fn default() -> Self {
        RepoConfig {
            policy: Policy::default(),
            exempted_tests: Vec::new(),
            exclude_paths: Vec::new(),
            team_overrides: Vec::new(),
            auto_quarantine_enabled: false,
            quarantine_duration_days: 30,
            labels_required: Vec::new(),
            release_after_clean_runs: 10,
            artifact_patterns: DEFAULT_ARTIFACT_PATTERNS
                .iter()
                .filter_map(|p| Glob::new(p).ok())
                .collect(),
            team_notifications: Notifications::default(),
        }
    }
}

/// What kind of problem a [`Problem`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProblemKind {
    /// The text is not YAML.
    Syntax,
    /// The document is not a mapping of keys to values.
    NotAMapping,
    /// A key this file does not have (or a non-string key).
    UnknownKey,
    /// A key of the earlier product that FlakeGuard deliberately does not support.
    Unsupported,
    /// A value of the wrong type (a string where a number belongs, …).
    WrongType,
    /// A number outside its allowed range.
    OutOfRange,
    /// Values that contradict each other (`warn_threshold` above `flaky_threshold`).
    Conflict,
    /// A glob pattern that cannot be compiled.
    InvalidPattern,
    /// A value of the right type that is still not acceptable (an empty name, a malformed
    /// channel or address, a duplicate).
    InvalidValue,
}

/// One problem in a policy file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub kind: ProblemKind,
    /// The key path (`team_overrides.payments.flaky_threshold`, `exempted_tests[2]`); empty
    /// for the document as a whole.
    pub path: String,
    /// 1-based, when the position is known.
    pub line: Option<usize>,
    pub column: Option<usize>,
    pub message: String,
}

impl fmt::Display for Problem {
    /// `line:column: path: message`, leaving out what is unknown.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let (Some(line), Some(column)) = (self.line, self.column) {
            write!(f, "{line}:{column}: ")?;
        }
        if !self.path.is_empty() {
            write!(f, "{}: ", self.path)?;
        }
        f.write_str(&self.message)
    }
}

/// A test as the matching helpers see it.
#[derive(Debug, Clone, Copy)]
pub struct TestRef<'a> {
    pub key: &'a TestKey,
    /// The file that holds the test, when the report named one.
    pub file: Option<&'a str>,
}

impl RepoConfig {
    /// Parses and checks a policy file. An empty file (or one with only comments) is the
    /// defaults. On failure, every problem found, in file order.
    pub fn parse(text: &str) -> Result<RepoConfig, Vec<Problem>> {
        let locations = Locations::scan(text);
        let mut walker = Walker {
            locations: &locations,
            problems: Vec::new(),
        };
        let mut value: Value = match serde_yaml_ng::from_str(text) {
            Ok(v) => v,
            Err(e) => return Err(vec![syntax_problem(&e)]),
        };
        if let Err(e) = value.apply_merge() {
            return Err(vec![syntax_problem(&e)]);
        }
        let config = match untag(&value) {
            Value::Null => RepoConfig::default(),
            Value::Mapping(map) => walker.top_level(map),
            other => {
                walker.problem(
                    ProblemKind::NotAMapping,
                    "",
                    format!(
                        "expected a mapping of keys to values (`flaky_threshold: 0.6`), got {}",
                        describe(other)
                    ),
                );
                RepoConfig::default()
            }
        };
        let mut problems = walker.problems;
        if problems.is_empty() {
            return Ok(config);
        }
        problems.sort_by_key(|p| (p.line.unwrap_or(usize::MAX), p.column.unwrap_or(0)));
        Err(problems)
    }

    /// The `exempted_tests` pattern that exempts this test, if any. A pattern matches the
    /// test's name (with its `[variant]`, if any), its name qualified by its class
    /// (`classname.name`), or its full key as FlakeGuard displays it
    /// (`scope › classname › name`).
    pub fn exemption(&self, key: &TestKey) -> Option<&Glob> {
        if self.exempted_tests.is_empty() {
            return None;
        }
        let name = match &key.variant {
            Some(v) => format!("{}[{v}]", key.name),
            None => key.name.clone(),
        };
        let mut candidates = vec![key.name.clone(), name.clone(), key.to_string()];
        if !key.classname.is_empty() {
            candidates.push(format!("{}.{}", key.classname, key.name));
            candidates.push(format!("{}.{name}", key.classname));
        }
        self.exempted_tests
            .iter()
            .find(|g| candidates.iter().any(|c| g.matches_name(c)))
    }

    /// The `exclude_paths` pattern that excludes a test in this file, if any. Tests whose
    /// report names no file are never excluded by path.
    pub fn exclusion(&self, file: Option<&str>) -> Option<&Glob> {
        let file = normalize_path(file?);
        self.exclude_paths.iter().find(|g| g.matches_path(&file))
    }

    /// Whether the test is judged at all and may be recommended for quarantine: neither
    /// exempted by name nor excluded by path.
    pub fn judges(&self, test: TestRef<'_>) -> bool {
        self.exemption(test.key).is_none() && self.exclusion(test.file).is_none()
    }

    /// The team override for a test: the one named `team` (the test's owner) if there is one,
    /// else the first whose `paths` match the test's file.
    pub fn team_override(&self, file: Option<&str>, team: Option<&str>) -> Option<&TeamOverride> {
        if let Some(team) = team
            && let Some(o) = self.team_overrides.iter().find(|o| o.team == team)
        {
            return Some(o);
        }
        let file = normalize_path(file?);
        self.team_overrides
            .iter()
            .find(|o| o.paths.iter().any(|g| g.matches_path(&file)))
    }

    /// The policy that judges a test: the file's policy with its team's overrides applied.
    pub fn effective_policy(&self, file: Option<&str>, team: Option<&str>) -> Policy {
        match self.team_override(file, team) {
            Some(o) => o.apply(&self.policy),
            None => self.policy.clone(),
        }
    }

    /// Whether automatic quarantine is on for a test, after its team's override.
    pub fn auto_quarantine(&self, file: Option<&str>, team: Option<&str>) -> bool {
        self.team_override(file, team)
            .and_then(|o| o.auto_quarantine_enabled)
            .unwrap_or(self.auto_quarantine_enabled)
    }

    /// Whether a pull request with these labels carries every label of `labels_required`
    /// (always true when none are required).
    pub fn labels_satisfied<S: AsRef<str>>(&self, labels: &[S]) -> bool {
        self.labels_required
            .iter()
            .all(|required| labels.iter().any(|l| l.as_ref() == required))
    }

    /// Whether a CI artifact with this name holds test reports.
    pub fn is_report_artifact(&self, name: &str) -> bool {
        self.artifact_patterns
            .iter()
            .any(|g| g.matches_ignoring_case(name))
    }
}

/// `./a\b.py` → `a/b.py`, as test keys normalize files.
fn normalize_path(path: &str) -> String {
    let path = path.trim().replace('\\', "/");
    path.strip_prefix("./").map(str::to_owned).unwrap_or(path)
}

fn syntax_problem(e: &serde_yaml_ng::Error) -> Problem {
    let text = e.to_string();
    // The position is reported separately.
    let message = if e.location().is_some() {
        without_position(&text)
    } else {
        text
    };
    Problem {
        kind: ProblemKind::Syntax,
        path: String::new(),
        line: e.location().map(|l| l.line()),
        column: e.location().map(|l| l.column()),
        message: format!("invalid YAML: {message}"),
    }
}

/// The message without its ` at line N column M` (the parser puts it mid-sentence at times).
fn without_position(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find(" at line ") {
        let after = &rest[at + " at line ".len()..];
        let digits = after.len() - after.trim_start_matches(|c: char| c.is_ascii_digit()).len();
        let tail = &after[digits..];
        match tail.strip_prefix(" column ") {
            Some(col) if digits > 0 => {
                let col_digits =
                    col.len() - col.trim_start_matches(|c: char| c.is_ascii_digit()).len();
                out.push_str(&rest[..at]);
                rest = &col[col_digits..];
            }
            _ => {
                out.push_str(&rest[..at + 1]);
                rest = &rest[at + 1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// The value under any `!tag`.
fn untag(value: &Value) -> &Value {
    match value {
        Value::Tagged(tagged) => untag(&tagged.value),
        other => other,
    }
}

/// `the string "yes"`, `a list`, … for messages.
fn describe(value: &Value) -> String {
    match untag(value) {
        Value::Null => "nothing".to_owned(),
        Value::Bool(b) => format!("{b}"),
        Value::Number(n) => format!("the number {n}"),
        Value::String(s) => format!("the string {s:?}"),
        Value::Sequence(_) => "a list".to_owned(),
        Value::Mapping(_) => "a mapping".to_owned(),
        Value::Tagged(_) => "a tagged value".to_owned(),
    }
}

/// The known key closest to `key`, when it is close enough to be a likely typo.
fn suggestion<'k>(key: &str, known: &[&'k str]) -> Option<&'k str> {
    known
        .iter()
        .map(|k| (edit_distance(key, k), *k))
        .filter(|(d, k)| *d <= (k.len() / 3).max(2))
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| k)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut current = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let substitute = previous[j] + usize::from(ca != *cb);
            current.push(substitute.min(previous[j + 1] + 1).min(current[j] + 1));
        }
        previous = current;
    }
    previous[b.len()]
}

struct Walker<'a> {
    locations: &'a Locations,
    problems: Vec<Problem>,
}

impl Walker<'_> {
    fn problem(&mut self, kind: ProblemKind, path: &str, message: String) {
        let position = self.locations.find(path);
        self.problems.push(Problem {
            kind,
            path: path.to_owned(),
            line: position.map(|p| p.0),
            column: position.map(|p| p.1),
            message,
        });
    }

    /// The mapping's entries with string keys; other keys are reported.
    fn entries<'v>(&mut self, path: &str, map: &'v Mapping) -> Vec<(String, &'v Value)> {
        let mut out = Vec::new();
        for (key, value) in map {
            match untag(key) {
                Value::String(k) => out.push((k.clone(), value)),
                other => {
                    let described = describe(other);
                    self.problem(
                        ProblemKind::UnknownKey,
                        path,
                        format!("keys must be names, got {described}"),
                    );
                }
            }
        }
        out
    }

    fn unknown(&mut self, path: &str, key: &str, known: &[&str]) {
        let message = match suggestion(key, known) {
            Some(s) => format!("unknown key (did you mean `{s}`?)"),
            None => format!("unknown key; expected one of: {}", known.join(", ")),
        };
        self.problem(ProblemKind::UnknownKey, path, message);
    }

    fn number(&mut self, path: &str, value: &Value) -> Option<f64> {
        match untag(value) {
            Value::Number(n) => match n.as_f64() {
                Some(f) => Some(f),
                None => {
                    self.problem(
                        ProblemKind::WrongType,
                        path,
                        format!("unreadable number {n}"),
                    );
                    None
                }
            },
            other => {
                let described = describe(other);
                self.problem(
                    ProblemKind::WrongType,
                    path,
                    format!("expected a number, got {described}"),
                );
                None
            }
        }
    }

    /// A whole number within `min..=max`.
    fn count(&mut self, path: &str, value: &Value, min: u64, max: u64) -> Option<u32> {
        let expected = if max == u64::from(u32::MAX) {
            format!("a whole number from {min}")
        } else {
            format!("a whole number from {min} to {max}")
        };
        match untag(value) {
            Value::Number(n) if n.is_f64() => {
                self.problem(
                    ProblemKind::WrongType,
                    path,
                    format!("expected {expected}, got {n}"),
                );
                None
            }
            Value::Number(n) => match n.as_u64() {
                Some(v) if (min..=max).contains(&v) => u32::try_from(v).ok(),
                _ => {
                    self.problem(
                        ProblemKind::OutOfRange,
                        path,
                        format!("expected {expected}, got {n}"),
                    );
                    None
                }
            },
            other => {
                let described = describe(other);
                self.problem(
                    ProblemKind::WrongType,
                    path,
                    format!("expected {expected}, got {described}"),
                );
                None
            }
        }
    }

    fn boolean(&mut self, path: &str, value: &Value) -> Option<bool> {
        match untag(value) {
            Value::Bool(b) => Some(*b),
            other => {
                let described = describe(other);
                self.problem(
                    ProblemKind::WrongType,
                    path,
                    format!("expected true or false, got {described}"),
                );
                None
            }
        }
    }

    /// A non-empty string (numbers are taken as written: a branch may be called `2024`).
    fn text(&mut self, path: &str, value: &Value) -> Option<String> {
        let text = match untag(value) {
            Value::String(s) => s.clone(),
            Value::Number(n) => n.to_string(),
            other => {
                let described = describe(other);
                self.problem(
                    ProblemKind::WrongType,
                    path,
                    format!("expected text, got {described}"),
                );
                return None;
            }
        };
        if text.trim().is_empty() {
            self.problem(
                ProblemKind::InvalidValue,
                path,
                "must not be empty".to_owned(),
            );
            return None;
        }
        Some(text)
    }

    /// A list of non-empty strings (nothing at all is an empty list).
    fn texts(&mut self, path: &str, value: &Value) -> Vec<(String, String)> {
        let items = match untag(value) {
            Value::Null => return Vec::new(),
            Value::Sequence(items) => items,
            other => {
                let described = describe(other);
                self.problem(
                    ProblemKind::WrongType,
                    path,
                    format!("expected a list, got {described}"),
                );
                return Vec::new();
            }
        };
        let mut out = Vec::new();
        for (i, item) in items.iter().enumerate() {
            let item_path = format!("{path}[{i}]");
            if let Some(text) = self.text(&item_path, item) {
                out.push((item_path, text));
            }
        }
        out
    }

    fn globs(&mut self, path: &str, value: &Value) -> Vec<Glob> {
        let mut out = Vec::new();
        for (item_path, text) in self.texts(path, value) {
            match Glob::new(&text) {
                Ok(g) => out.push(g),
                Err(e) => self.problem(ProblemKind::InvalidPattern, &item_path, e),
            }
        }
        out
    }

    fn top_level(&mut self, map: &Mapping) -> RepoConfig {
        let mut config = RepoConfig::default();
        for (key, value) in self.entries("", map) {
            let path = key.as_str();
            match path {
                "warn_threshold"
                | "flaky_threshold"
                | "confidence_threshold"
                | "infra_failure_share" => {
                    if let Some(v) = self.number(path, value) {
                        match path {
                            "warn_threshold" => config.policy.warn_threshold = v,
                            "flaky_threshold" => config.policy.flaky_threshold = v,
                            "confidence_threshold" => config.policy.confidence_threshold = v,
                            _ => config.policy.infra_failure_share = v,
                        }
                    }
                }
                "min_occurrences"
                | "min_recent_failures"
                | "lookback_days"
                | "rolling_window_size"
                | "infra_signature_min_tests" => {
                    // Ranges are Policy::validate's; here only "is it a whole number".
                    if let Some(v) = self.count(path, value, 0, u64::from(u32::MAX)) {
                        match path {
                            "min_occurrences" => config.policy.min_occurrences = v,
                            "min_recent_failures" => config.policy.min_recent_failures = v,
                            "lookback_days" => config.policy.lookback_days = v,
                            "rolling_window_size" => config.policy.rolling_window_size = v,
                            _ => config.policy.infra_signature_min_tests = v,
                        }
                    }
                }
                "default_branch" => {
                    if !matches!(untag(value), Value::Null) {
                        config.policy.default_branch = self.text(path, value);
                    }
                }
                "exempted_tests" => config.exempted_tests = self.globs(path, value),
                "exclude_paths" => config.exclude_paths = self.globs(path, value),
                "team_overrides" => config.team_overrides = self.team_overrides(value),
                "auto_quarantine_enabled" => {
                    if let Some(v) = self.boolean(path, value) {
                        config.auto_quarantine_enabled = v;
                    }
                }
                "quarantine_duration_days" => {
                    if let Some(v) = self.count(path, value, 1, 365) {
                        config.quarantine_duration_days = v;
                    }
                }
                "release_after_clean_runs" => {
                    if let Some(v) = self.count(path, value, 0, 1000) {
                        config.release_after_clean_runs = v;
                    }
                }
                "labels_required" => {
                    config.labels_required = self
                        .texts(path, value)
                        .into_iter()
                        .map(|(_, l)| l)
                        .collect();
                }
                "artifact_patterns" => {
                    let empty = match untag(value) {
                        Value::Null => true,
                        Value::Sequence(items) => items.is_empty(),
                        _ => false,
                    };
                    let patterns = self.globs(path, value);
                    if empty {
                        self.problem(
                            ProblemKind::InvalidValue,
                            path,
                            "must name at least one pattern (leave the key out for the defaults)"
                                .to_owned(),
                        );
                    } else if !patterns.is_empty() {
                        config.artifact_patterns = patterns;
                    }
                }
                "team_notifications" => config.team_notifications = self.notifications(value),
                "scoring_weights" => self.problem(
                    ProblemKind::Unsupported,
                    path,
                    "not supported: FlakeGuard's model has no weights to set (it weighs the \
                     evidence itself; see docs/scoring.md); remove this key"
                        .to_owned(),
                ),
                _ => self.unknown(path, &key, TOP_LEVEL_KEYS),
            }
        }
        self.check_policy(&config.policy, "", |_| true);
        for o in &config.team_overrides {
            let merged = o.apply(&config.policy);
            let set = o.set_keys();
            let base = format!("team_overrides.{}", o.team);
            self.check_policy(&merged, &base, |key| set.contains(&key));
        }
        config
    }

    /// Reports `Policy::validate`'s problems (the one place the ranges are defined) at their
    /// keys under `base`, keeping those whose key `relevant` accepts.
    fn check_policy(&mut self, policy: &Policy, base: &str, relevant: impl Fn(&str) -> bool) {
        let Err(messages) = policy.validate() else {
            return;
        };
        for message in messages {
            let key = message.split([' ', '(']).next().unwrap_or_default();
            let conflict = message.contains("must not exceed");
            let keys_involved = if conflict {
                vec!["warn_threshold", "flaky_threshold"]
            } else {
                vec![key]
            };
            if !keys_involved.iter().any(|k| relevant(k)) {
                continue;
            }
            let kind = if conflict {
                ProblemKind::Conflict
            } else if message.contains("must not be empty") {
                ProblemKind::InvalidValue
            } else {
                ProblemKind::OutOfRange
            };
            let detail = message
                .strip_prefix(key)
                .map(str::trim_start)
                .unwrap_or(&message)
                .to_owned();
            // A conflict is reported at the threshold that was set (warn_threshold first).
            let at = if conflict {
                if relevant("warn_threshold") {
                    "warn_threshold"
                } else {
                    "flaky_threshold"
                }
            } else {
                key
            };
            let path = if base.is_empty() {
                at.to_owned()
            } else {
                format!("{base}.{at}")
            };
            let detail = if conflict { message.clone() } else { detail };
            self.problem(kind, &path, detail);
        }
    }

    fn team_overrides(&mut self, value: &Value) -> Vec<TeamOverride> {
        let map = match untag(value) {
            Value::Null => return Vec::new(),
            Value::Mapping(map) => map,
            other => {
                let described = describe(other);
                self.problem(
                    ProblemKind::WrongType,
                    "team_overrides",
                    format!(
                        "expected a mapping of team names to thresholds (`payments: {{flaky_threshold: 0.8}}`), got {described}"
                    ),
                );
                return Vec::new();
            }
        };
        let mut out = Vec::new();
        for (team, value) in self.entries("team_overrides", map) {
            let base = format!("team_overrides.{team}");
            if team.trim().is_empty() {
                self.problem(
                    ProblemKind::InvalidValue,
                    &base,
                    "a team's name must not be empty".to_owned(),
                );
                continue;
            }
            let entries = match untag(value) {
                Value::Mapping(m) => self.entries(&base, m),
                other => {
                    let described = describe(other);
                    self.problem(
                        ProblemKind::WrongType,
                        &base,
                        format!("expected the team's thresholds as a mapping, got {described}"),
                    );
                    continue;
                }
            };
            let mut o = TeamOverride {
                team: team.clone(),
                paths: Vec::new(),
                flaky_threshold: None,
                warn_threshold: None,
                min_occurrences: None,
                min_recent_failures: None,
                confidence_threshold: None,
                auto_quarantine_enabled: None,
            };
            for (key, value) in entries {
                let path = format!("{base}.{key}");
                match key.as_str() {
                    "paths" => o.paths = self.globs(&path, value),
                    "flaky_threshold" => o.flaky_threshold = self.number(&path, value),
                    "warn_threshold" => o.warn_threshold = self.number(&path, value),
                    "confidence_threshold" => o.confidence_threshold = self.number(&path, value),
                    "min_occurrences" => {
                        o.min_occurrences = self.count(&path, value, 0, u64::from(u32::MAX));
                    }
                    "min_recent_failures" => {
                        o.min_recent_failures = self.count(&path, value, 0, u64::from(u32::MAX));
                    }
                    "auto_quarantine_enabled" => {
                        o.auto_quarantine_enabled = self.boolean(&path, value);
                    }
                    other if POLICY_KEYS.contains(&other) || TOP_LEVEL_KEYS.contains(&other) => {
                        self.problem(
                            ProblemKind::UnknownKey,
                            &path,
                            format!(
                                "cannot be set per team (a team may set {})",
                                TEAM_KEYS.join(", ")
                            ),
                        );
                    }
                    other => self.unknown(&path, other, TEAM_KEYS),
                }
            }
            out.push(o);
        }
        out
    }

    fn notifications(&mut self, value: &Value) -> Notifications {
        let path = "team_notifications";
        let mut out = Notifications::default();
        let map = match untag(value) {
            Value::Null => return out,
            Value::Mapping(map) => map,
            other => {
                let described = describe(other);
                self.problem(
                    ProblemKind::WrongType,
                    path,
                    format!(
                        "expected a mapping with slack_channels and email_groups, got {described}"
                    ),
                );
                return out;
            }
        };
        for (key, value) in self.entries(path, map) {
            let key_path = format!("{path}.{key}");
            match key.as_str() {
                "slack_channels" => {
                    for (item_path, channel) in self.texts(&key_path, value) {
                        if is_slack_channel(&channel) {
                            out.slack_channels.push(channel);
                        } else {
                            self.problem(
                                ProblemKind::InvalidValue,
                                &item_path,
                                format!(
                                    "{channel:?} is not a Slack channel: expected #name (lower-case letters, digits, - and _) or a channel id such as C0123ABCD"
                                ),
                            );
                        }
                    }
                }
                "email_groups" => {
                    for (item_path, address) in self.texts(&key_path, value) {
                        if is_email(&address) {
                            out.email_groups.push(address);
                        } else {
                            self.problem(
                                ProblemKind::InvalidValue,
                                &item_path,
                                format!("{address:?} is not an email address"),
                            );
                        }
                    }
                }
                other => self.unknown(&key_path, other, NOTIFICATION_KEYS),
            }
        }
        out
    }
}

/// `#name` as Slack allows channel names, or a channel id.
fn is_slack_channel(s: &str) -> bool {
    if let Some(name) = s.strip_prefix('#') {
        return !name.is_empty()
            && name.len() <= 80
            && name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '-' | '_'));
    }
    s.len() >= 9
        && s.len() <= 20
        && s.starts_with(['C', 'G'])
        && s.chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit())
}

fn is_email(s: &str) -> bool {
    let Some((local, domain)) = s.split_once('@') else {
        return false;
    };
    !local.is_empty()
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !s.chars().any(|c| c.is_whitespace() || c == ',')
        && !domain.contains('@')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn problems(text: &str) -> Vec<Problem> {
        RepoConfig::parse(text).expect_err("the file should be refused")
    }

    fn only(text: &str) -> Problem {
        let mut p = problems(text);
        assert_eq!(p.len(), 1, "{p:#?}");
        p.remove(0)
    }

    #[test]
    fn an_empty_file_is_the_defaults() {
        for text in ["", "\n", "# only a comment\n", "---\n", "~\n"] {
            assert_eq!(
                RepoConfig::parse(text),
                Ok(RepoConfig::default()),
                "{text:?}"
            );
        }
        let d = RepoConfig::default();
        assert_eq!(d.policy, Policy::default());
        assert!(!d.auto_quarantine_enabled);
        assert_eq!(d.quarantine_duration_days, 30);
        assert_eq!(d.release_after_clean_runs, 10);
        assert_eq!(d.artifact_patterns.len(), DEFAULT_ARTIFACT_PATTERNS.len());
        assert!(d.exempted_tests.is_empty() && d.exclude_paths.is_empty());
    }

    #[test]
    fn every_key_is_read() {
        let text = r##"
flaky_threshold: 0.7
warn_threshold: 0.2
min_occurrences: 8
min_recent_failures: 3
lookback_days: 14
rolling_window_size: 100
confidence_threshold: 0.5
infra_failure_share: 0.25
infra_signature_min_tests: 12
default_branch: trunk
exempted_tests: ["*::smoke_*", "checkout"]
exclude_paths:
  - vendor/**
team_overrides:
  "@acme/payments":
    paths: [services/payments/**]
    flaky_threshold: 0.9
    auto_quarantine_enabled: true
auto_quarantine_enabled: false
quarantine_duration_days: 14
labels_required: [flaky-ok]
release_after_clean_runs: 20
artifact_patterns: ["*reports*"]
team_notifications:
  slack_channels: ["#ci-flaky", C0123ABCD]
  email_groups: [qa@acme.test]
"##;
        let c = RepoConfig::parse(text).unwrap();
        assert_eq!(c.policy.flaky_threshold, 0.7);
        assert_eq!(c.policy.warn_threshold, 0.2);
        assert_eq!(c.policy.min_occurrences, 8);
        assert_eq!(c.policy.min_recent_failures, 3);
        assert_eq!(c.policy.lookback_days, 14);
        assert_eq!(c.policy.rolling_window_size, 100);
        assert_eq!(c.policy.confidence_threshold, 0.5);
        assert_eq!(c.policy.infra_failure_share, 0.25);
        assert_eq!(c.policy.infra_signature_min_tests, 12);
        assert_eq!(c.policy.default_branch.as_deref(), Some("trunk"));
        assert_eq!(c.exempted_tests.len(), 2);
        assert_eq!(c.exclude_paths[0].as_str(), "vendor/**");
        assert_eq!(c.team_overrides[0].team, "@acme/payments");
        assert_eq!(c.team_overrides[0].flaky_threshold, Some(0.9));
        assert_eq!(c.quarantine_duration_days, 14);
        assert_eq!(c.labels_required, vec!["flaky-ok"]);
        assert_eq!(c.release_after_clean_runs, 20);
        assert!(c.is_report_artifact("nightly-REPORTS"));
        assert!(!c.is_report_artifact("junit"), "the defaults are replaced");
        assert_eq!(c.team_notifications.slack_channels.len(), 2);
        assert_eq!(c.team_notifications.email_groups, vec!["qa@acme.test"]);
    }

    #[test]
    fn syntax_errors_have_a_position() {
        let p = only("flaky_threshold: 0.6\nwarn_threshold: [0.3\n");
        assert_eq!(p.kind, ProblemKind::Syntax);
        assert!(p.line.is_some() && p.column.is_some(), "{p:?}");
        assert!(p.message.starts_with("invalid YAML: "), "{p}");
        assert!(!p.message.contains(" at line "), "{p}");
        assert_eq!(
            without_position("did not find x at line 3 column 1, while parsing at line 2"),
            "did not find x, while parsing at line 2"
        );
        let p = only("a: 1\na: 2\n");
        assert_eq!(p.kind, ProblemKind::Syntax, "duplicate keys: {p}");
    }

    #[test]
    fn a_document_that_is_not_a_mapping_is_refused() {
        for text in ["- a\n- b\n", "just words\n", "42\n"] {
            let p = only(text);
            assert_eq!(p.kind, ProblemKind::NotAMapping, "{text}");
            assert_eq!(p.path, "");
        }
    }

    #[test]
    fn unknown_keys_are_errors_with_a_suggestion() {
        let p = only("flaky_treshold: 0.7\n");
        assert_eq!(p.kind, ProblemKind::UnknownKey);
        assert_eq!(
            (p.path.as_str(), p.line, p.column),
            ("flaky_treshold", Some(1), Some(1))
        );
        assert!(p.message.contains("did you mean `flaky_threshold`"), "{p}");
        let p = only("colour: blue\n");
        assert!(p.message.contains("expected one of: warn_threshold"), "{p}");
        let p = only("1: x\n");
        assert_eq!(p.kind, ProblemKind::UnknownKey);
        assert!(p.message.contains("keys must be names"), "{p}");
        let p = only("team_notifications:\n  slack: ['#x']\n");
        assert_eq!(p.path, "team_notifications.slack");
        assert_eq!((p.line, p.column), (Some(2), Some(3)));
    }

    #[test]
    fn earlier_product_keys_without_meaning_here_are_unsupported() {
        let p = only("scoring_weights:\n  intermittency: 0.3\n");
        assert_eq!(p.kind, ProblemKind::Unsupported);
        assert!(p.message.contains("remove this key"), "{p}");
    }

    #[test]
    fn wrong_types_name_what_was_found() {
        for (text, path, expected) in [
            (
                "flaky_threshold: high\n",
                "flaky_threshold",
                "expected a number, got the string \"high\"",
            ),
            (
                "flaky_threshold: \"0.6\"\n",
                "flaky_threshold",
                "expected a number",
            ),
            (
                "min_occurrences: 2.5\n",
                "min_occurrences",
                "expected a whole number from 0, got 2.5",
            ),
            (
                "auto_quarantine_enabled: yes\n",
                "auto_quarantine_enabled",
                "expected true or false, got the string \"yes\"",
            ),
            (
                "exempted_tests: checkout\n",
                "exempted_tests",
                "expected a list, got the string",
            ),
            (
                "exempted_tests: [[a]]\n",
                "exempted_tests[0]",
                "expected text, got a list",
            ),
            (
                "team_overrides: [a]\n",
                "team_overrides",
                "expected a mapping of team names",
            ),
            (
                "team_overrides:\n  payments: 0.8\n",
                "team_overrides.payments",
                "expected the team's thresholds as a mapping",
            ),
            (
                "team_notifications: \"#ci\"\n",
                "team_notifications",
                "expected a mapping",
            ),
            ("lookback_days:\n", "lookback_days", "got nothing"),
        ] {
            let p = only(text);
            assert_eq!(p.kind, ProblemKind::WrongType, "{text}: {p}");
            assert_eq!(p.path, path, "{text}");
            assert!(p.message.contains(expected), "{text}: {p}");
        }
    }

    #[test]
    fn out_of_range_values_give_the_range() {
        for (text, path, expected) in [
            (
                "flaky_threshold: 1.5\n",
                "flaky_threshold",
                "must be between 0 and 1, got 1.5",
            ),
            (
                "confidence_threshold: .nan\n",
                "confidence_threshold",
                "must be between 0 and 1",
            ),
            (
                "lookback_days: 400\n",
                "lookback_days",
                "between 1 and 365, got 400",
            ),
            (
                "rolling_window_size: 4\n",
                "rolling_window_size",
                "between 5 and 500",
            ),
            ("min_occurrences: 0\n", "min_occurrences", "at least 1"),
            (
                "min_occurrences: -3\n",
                "min_occurrences",
                "expected a whole number from 0, got -3",
            ),
            (
                "infra_signature_min_tests: 1\n",
                "infra_signature_min_tests",
                "at least 2",
            ),
            (
                "quarantine_duration_days: 0\n",
                "quarantine_duration_days",
                "from 1 to 365",
            ),
            (
                "release_after_clean_runs: 5000\n",
                "release_after_clean_runs",
                "from 0 to 1000",
            ),
        ] {
            let p = only(text);
            assert_eq!(p.kind, ProblemKind::OutOfRange, "{text}: {p}");
            assert_eq!(p.path, path, "{text}");
            assert!(p.message.contains(expected), "{text}: {p}");
            assert_eq!(p.line, Some(1), "{text}");
        }
    }

    #[test]
    fn contradictory_thresholds_are_a_conflict_also_per_team() {
        let p = only("warn_threshold: 0.7\n");
        assert_eq!(p.kind, ProblemKind::Conflict);
        assert!(p.message.contains("must not exceed flaky_threshold"), "{p}");
        let p = only("team_overrides:\n  payments:\n    flaky_threshold: 0.2\n");
        assert_eq!(p.kind, ProblemKind::Conflict);
        assert!(p.path.starts_with("team_overrides.payments."), "{p}");
        assert_eq!(p.line, Some(3));
        // A valid override is not blamed for a top-level mistake.
        let all =
            problems("flaky_threshold: 7\nteam_overrides:\n  payments:\n    min_occurrences: 9\n");
        assert_eq!(all.len(), 1, "{all:?}");
        assert_eq!(all[0].path, "flaky_threshold");
    }

    #[test]
    fn invalid_patterns_are_named_with_their_position() {
        let p = only("exclude_paths:\n  - ok/**\n  - 'src/[abc'\n");
        assert_eq!(p.kind, ProblemKind::InvalidPattern);
        assert_eq!(p.path, "exclude_paths[1]");
        assert_eq!((p.line, p.column), (Some(3), Some(3)));
        assert!(p.message.contains("invalid pattern \"src/[abc\""), "{p}");
        let p = only("exempted_tests: ['a**b']\n");
        assert_eq!(p.kind, ProblemKind::InvalidPattern);
    }

    #[test]
    fn invalid_values_say_why() {
        for (text, path, expected) in [
            (
                "default_branch: ''\n",
                "default_branch",
                "must not be empty",
            ),
            (
                "labels_required: ['']\n",
                "labels_required[0]",
                "must not be empty",
            ),
            (
                "team_notifications:\n  slack_channels: [general]\n",
                "team_notifications.slack_channels[0]",
                "not a Slack channel",
            ),
            (
                "team_notifications:\n  email_groups: [qa]\n",
                "team_notifications.email_groups[0]",
                "not an email address",
            ),
            (
                "artifact_patterns: []\n",
                "artifact_patterns",
                "at least one pattern",
            ),
            (
                "team_overrides:\n  '': {flaky_threshold: 0.7}\n",
                "team_overrides.",
                "must not be empty",
            ),
        ] {
            let p = only(text);
            assert_eq!(p.kind, ProblemKind::InvalidValue, "{text}: {p}");
            assert_eq!(p.path, path, "{text}");
            assert!(p.message.contains(expected), "{text}: {p}");
        }
    }

    #[test]
    fn team_overrides_accept_only_their_keys() {
        let p = only("team_overrides:\n  payments:\n    lookback_days: 3\n");
        assert_eq!(p.kind, ProblemKind::UnknownKey);
        assert!(p.message.contains("cannot be set per team"), "{p}");
        let p = only("team_overrides:\n  payments:\n    flaky_treshold: 0.7\n");
        assert!(p.message.contains("did you mean `flaky_threshold`"), "{p}");
    }

    #[test]
    fn every_problem_is_reported_at_once_in_file_order() {
        let text = "\
flaky_threshold: 1.5
warn_treshold: 0.2
min_occurrences: many
exempted_tests:
  - ok
  - 'bad['
team_overrides:
  payments:
    auto_quarantine_enabled: sometimes
    colour: red
quarantine_duration_days: 0
team_notifications:
  slack_channels: [general]
";
        let all = problems(text);
        let summary: Vec<(ProblemKind, &str, Option<usize>)> = all
            .iter()
            .map(|p| (p.kind, p.path.as_str(), p.line))
            .collect();
        assert_eq!(
            summary,
            vec![
                (ProblemKind::OutOfRange, "flaky_threshold", Some(1)),
                (ProblemKind::UnknownKey, "warn_treshold", Some(2)),
                (ProblemKind::WrongType, "min_occurrences", Some(3)),
                (ProblemKind::InvalidPattern, "exempted_tests[1]", Some(6)),
                (
                    ProblemKind::WrongType,
                    "team_overrides.payments.auto_quarantine_enabled",
                    Some(9)
                ),
                (
                    ProblemKind::UnknownKey,
                    "team_overrides.payments.colour",
                    Some(10)
                ),
                (
                    ProblemKind::OutOfRange,
                    "quarantine_duration_days",
                    Some(11)
                ),
                (
                    ProblemKind::InvalidValue,
                    "team_notifications.slack_channels[0]",
                    Some(13)
                ),
            ],
            "{all:#?}"
        );
        assert_eq!(
            all[1].to_string(),
            "2:1: warn_treshold: unknown key (did you mean `warn_threshold`?)"
        );
    }

    fn key(file: Option<&str>, class: &str, name: &str) -> TestKey {
        TestKey::from_parts(file, "suite", Some(class), name)
    }

    #[test]
    fn exemptions_match_names_qualified_names_and_keys() {
        let c = RepoConfig::parse(
            "exempted_tests: ['test_smoke_*', 'com.acme.Cart*.checkout', 'tests/e2e/*', 'param[[]2]']\n",
        )
        .unwrap();
        let hit = |k: &TestKey| c.exemption(k).map(|g| g.as_str().to_owned());
        assert_eq!(
            hit(&key(None, "m", "test_smoke_login")).as_deref(),
            Some("test_smoke_*")
        );
        assert_eq!(
            hit(&key(None, "com.acme.CartTest", "checkout")).as_deref(),
            Some("com.acme.Cart*.checkout")
        );
        assert_eq!(
            hit(&key(Some("tests/e2e/login.spec.ts"), "", "logs in")).as_deref(),
            Some("tests/e2e/*"),
            "the full key starts with the file"
        );
        assert_eq!(
            hit(&key(None, "c", "param[2]")).as_deref(),
            Some("param[[]2]")
        );
        assert_eq!(hit(&key(None, "c", "param[3]")), None);
        assert_eq!(hit(&key(None, "com.acme.Other", "checkout")), None);
    }

    #[test]
    fn exclusions_match_files_and_stars_stay_in_one_directory() {
        let c = RepoConfig::parse("exclude_paths: ['vendor/**', 'tests/*.py']\n").unwrap();
        assert!(c.exclusion(Some("vendor/a/b/c.go")).is_some());
        assert!(c.exclusion(Some("./tests/test_x.py")).is_some());
        assert!(c.exclusion(Some("tests\\test_x.py")).is_some());
        assert!(c.exclusion(Some("tests/unit/test_x.py")).is_none());
        assert!(c.exclusion(None).is_none());
        let k = key(Some("tests/test_x.py"), "c", "t");
        assert!(!c.judges(TestRef {
            key: &k,
            file: Some("tests/test_x.py")
        }));
        assert!(c.judges(TestRef {
            key: &k,
            file: Some("src/x.py")
        }));
    }

    #[test]
    fn the_effective_policy_applies_the_matching_team() {
        let c = RepoConfig::parse(
            "flaky_threshold: 0.7\nauto_quarantine_enabled: true\nteam_overrides:\n  payments:\n    paths: ['services/payments/**']\n    flaky_threshold: 0.9\n    min_occurrences: 10\n    auto_quarantine_enabled: false\n  '@acme/web':\n    warn_threshold: 0.1\n",
        )
        .unwrap();
        let p = c.effective_policy(Some("services/payments/api/test_refund.py"), None);
        assert_eq!(
            (p.flaky_threshold, p.min_occurrences, p.warn_threshold),
            (0.9, 10, 0.3)
        );
        assert!(!c.auto_quarantine(Some("services/payments/x.py"), None));
        // By owner, whatever the file.
        let p = c.effective_policy(Some("services/payments/x.py"), Some("@acme/web"));
        assert_eq!((p.flaky_threshold, p.warn_threshold), (0.7, 0.1));
        assert!(c.auto_quarantine(None, Some("@acme/web")), "inherited");
        // Neither: the file's own policy.
        assert_eq!(
            c.effective_policy(Some("web/x.ts"), Some("@other")),
            c.policy
        );
        assert_eq!(c.effective_policy(None, None), c.policy);
    }

    #[test]
    fn labels_and_artifacts() {
        let c = RepoConfig::parse("labels_required: [flaky, ci]\n").unwrap();
        assert!(c.labels_satisfied(&["ci", "flaky", "other"]));
        assert!(!c.labels_satisfied(&["ci"]));
        assert!(RepoConfig::default().labels_satisfied::<&str>(&[]));
        let d = RepoConfig::default();
        for name in [
            "junit-report",
            "Test-Results-linux",
            "surefire-reports",
            "nextest-ci",
            "jest_junit",
        ] {
            assert!(d.is_report_artifact(name), "{name}");
        }
        assert!(!d.is_report_artifact("coverage"));
    }

    #[test]
    fn merge_keys_are_applied() {
        let c = RepoConfig::parse(
            "team_overrides:\n  a: &strict\n    flaky_threshold: 0.9\n  b:\n    <<: *strict\n    min_occurrences: 9\n",
        )
        .unwrap();
        assert_eq!(c.team_overrides[1].flaky_threshold, Some(0.9));
    }

    #[test]
    fn the_configuration_serializes_flat() {
        let json = serde_json::to_value(RepoConfig::default()).unwrap();
        assert_eq!(json["flaky_threshold"], 0.6);
        assert_eq!(json["quarantine_duration_days"], 30);
        assert_eq!(json["artifact_patterns"][0], "*junit*");
    }
}
