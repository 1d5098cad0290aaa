//! The server's settings: the runbook's environment variables, read as written.
//!
//! Each variable is looked up, in order, in the process environment, in `<NAME>_FILE` (a
//! file holding the value, as Docker and Kubernetes secrets are mounted), in
//! `/run/secrets/<name>` (secrets only), and in a `.env` file. A bad value fails with one
//! line naming the variable and what is expected; in production mode (`NODE_ENV=production`)
//! missing, short or placeholder secrets are refused.

use std::collections::HashMap;
use std::fmt;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Why the settings could not be read: one line, naming the variable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct SettingsError(pub String);

/// A secret value: never printed by `Debug`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(…)")
    }
}

/// `LOG_LEVEL`, with pino's names (what the runbook's earlier product used) accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogLevel {
    Off,
    Error,
    Warn,
    Info,
    Debug,
    Trace,
}

impl LogLevel {
    fn parse(s: &str) -> Option<Self> {
        Some(match s.to_ascii_lowercase().as_str() {
            "silent" | "off" => LogLevel::Off,
            "fatal" | "error" => LogLevel::Error,
            "warn" | "warning" => LogLevel::Warn,
            "info" => LogLevel::Info,
            "debug" => LogLevel::Debug,
            "trace" => LogLevel::Trace,
            _ => return None,
        })
    }

    /// The `tracing` filter directive for this level.
    pub fn as_filter(self) -> &'static str {
        match self {
            LogLevel::Off => "off",
            LogLevel::Error => "error",
            LogLevel::Warn => "warn",
            LogLevel::Info => "info",
            LogLevel::Debug => "debug",
            LogLevel::Trace => "trace",
        }
    }
}

/// Everything `flakeguard serve` needs to know.
#[derive(Debug, Clone)]
pub struct Settings {
    /// `NODE_ENV=production`: JSON logs, secrets required.
    pub production: bool,
    pub host: IpAddr,
    pub port: u16,
    pub worker_port: u16,
    pub web_port: u16,
    pub log_level: LogLevel,
    /// `postgres://…`, `postgresql://…` or `sqlite:PATH`; `None` = SQLite in `data_dir`.
    pub database_url: Option<Secret>,
    pub data_dir: PathBuf,
    pub redis_url: Option<Secret>,
    pub jwt_secret: Option<Secret>,
    /// The operator's admin key (`Authorization: Bearer <API_KEY>`).
    pub api_key: Option<Secret>,
    /// Requests per token (or per client address without one) per window.
    pub rate_limit_max: u32,
    pub rate_limit_window: Duration,
    /// Largest accepted upload, compressed or not.
    pub max_upload_bytes: u64,
    /// Jobs one worker runs at once (`WORKER_CONCURRENCY`).
    pub worker_concurrency: usize,
    /// How long a job is leased before another worker may take it back
    /// (`JOB_LEASE_SECONDS`).
    pub job_lease: Duration,
    /// Raw failure text is cleared after this many days; signatures stay
    /// (`FAILURE_TEXT_RETENTION_DAYS`).
    pub failure_text_retention_days: u32,
    /// The GitHub App (`GITHUB_*`, `ENABLE_GITHUB_WEBHOOKS`, `ENABLE_QUARANTINE_ACTIONS`).
    pub github: GitHubSettings,
}

/// The GitHub App's settings. Webhooks are accepted only with a secret to check them by;
/// the API is called only with an App id and its private key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GitHubSettings {
    /// `ENABLE_GITHUB_WEBHOOKS` (default true); false answers every delivery 503 and stores
    /// nothing — the runbook's circuit breaker.
    pub webhooks_enabled: bool,
    /// `GITHUB_WEBHOOK_SECRET`: the App's webhook secret (HMAC-SHA256 key).
    pub webhook_secret: Option<Secret>,
    /// `GITHUB_APP_ID`.
    pub app_id: Option<u64>,
    /// The App's private key (PEM): `GITHUB_PRIVATE_KEY`, its `_FILE`, `/run/secrets`, or the
    /// file named by `GITHUB_PRIVATE_KEY_PATH`.
    pub private_key: Option<Secret>,
    /// `GITHUB_API_URL` (default `https://api.github.com`; GitHub Enterprise Server:
    /// `https://HOST/api/v3`), without a trailing slash.
    pub api_url: String,
    /// `ENABLE_QUARANTINE_ACTIONS` (default true): offer "Quarantine flaky" on check runs.
    pub quarantine_actions: bool,
    /// `FLAKEGUARD_PUBLIC_URL`: where people reach FlakeGuard, for links in check runs and
    /// comments (none by default).
    pub public_url: Option<String>,
}

impl Default for GitHubSettings {
    fn default() -> Self {
        GitHubSettings {
            webhooks_enabled: true,
            webhook_secret: None,
            app_id: None,
            private_key: None,
            api_url: "https://api.github.com".to_owned(),
            quarantine_actions: true,
            public_url: None,
        }
    }
}

impl Default for Settings {
    /// The zero-configuration settings.
    fn default() -> Self {
        Settings {
            production: false,
            host: IpAddr::from([0, 0, 0, 0]),
            port: 3000,
            worker_port: 3001,
            web_port: 3002,
            log_level: LogLevel::Info,
            database_url: None,
            data_dir: PathBuf::from("data"),
            redis_url: None,
            jwt_secret: None,
            api_key: None,
            rate_limit_max: 1000,
            worker_concurrency: 4,
            job_lease: Duration::from_secs(60),
            failure_text_retention_days: 90,
            rate_limit_window: Duration::from_millis(60_000),
            max_upload_bytes: 100 << 20,
            github: GitHubSettings::default(),
        }
    }
}

/// Variables that are secrets: also read from `/run/secrets/<name>`, never echoed in errors.
const SECRETS: &[&str] = &[
    "DATABASE_URL",
    "REDIS_URL",
    "JWT_SECRET",
    "API_KEY",
    "GITHUB_WEBHOOK_SECRET",
    "GITHUB_PRIVATE_KEY",
];

/// Values that show a secret was copied from an example and never replaced.
const PLACEHOLDERS: &[&str] = &[
    "changeme",
    "change-me",
    "change_me",
    "placeholder",
    "example",
    "your-",
    "your_",
    "secure-32-char-key",
    "secure-16-char-key",
    "replace",
    "todo",
    "xxxx",
];

/// Where variables come from.
#[derive(Debug, Clone, Default)]
pub struct Environment {
    vars: HashMap<String, String>,
    /// From the `.env` file: consulted last, after `_FILE` and `/run/secrets`.
    dotenv: HashMap<String, String>,
    /// `/run/secrets` in production; a temporary folder in tests; `None` to skip.
    secrets_dir: Option<PathBuf>,
}

impl Environment {
    /// The process environment over the `.env` file at `dotenv` (when it exists), with
    /// secrets also read from `secrets_dir`.
    pub fn from_process(
        dotenv: &Path,
        secrets_dir: Option<PathBuf>,
    ) -> Result<Self, SettingsError> {
        let mut vars = HashMap::new();
        let mut file_vars = HashMap::new();
        match std::fs::read_to_string(dotenv) {
            Ok(text) => {
                for (key, value) in parse_dotenv(&text)
                    .map_err(|e| SettingsError(format!("{}: {e}", dotenv.display())))?
                {
                    file_vars.insert(key, value);
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                return Err(SettingsError(format!(
                    "cannot read {}: {e}",
                    dotenv.display()
                )));
            }
        }
        for (key, value) in std::env::vars_os() {
            if let (Ok(key), Ok(value)) = (key.into_string(), value.into_string()) {
                vars.insert(key, value);
            }
        }
        Ok(Environment {
            vars,
            dotenv: file_vars,
            secrets_dir,
        })
    }

    /// An environment of exactly these variables (tests).
    pub fn from_vars<K: Into<String>, V: Into<String>>(
        vars: impl IntoIterator<Item = (K, V)>,
        secrets_dir: Option<PathBuf>,
    ) -> Self {
        Environment {
            vars: vars
                .into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
            dotenv: HashMap::new(),
            secrets_dir,
        }
    }

    /// These variables as if read from a `.env` file (tests).
    pub fn with_dotenv<K: Into<String>, V: Into<String>>(
        mut self,
        vars: impl IntoIterator<Item = (K, V)>,
    ) -> Self {
        self.dotenv = vars
            .into_iter()
            .map(|(k, v)| (k.into(), v.into()))
            .collect();
        self
    }

    /// The variable's value from the first source that has it — the process environment,
    /// `<NAME>_FILE`, `/run/secrets/<name>`, `.env` — where empty values count as unset.
    pub fn get(&self, name: &str) -> Result<Option<String>, SettingsError> {
        if let Some(v) = self.vars.get(name).filter(|v| !v.is_empty()) {
            return Ok(Some(v.clone()));
        }
        let file_var = format!("{name}_FILE");
        let file_path = self
            .vars
            .get(&file_var)
            .or_else(|| self.dotenv.get(&file_var));
        if let Some(path) = file_path.filter(|v| !v.is_empty()) {
            return read_value_file(Path::new(path)).map(Some).map_err(|e| {
                SettingsError(format!("{file_var}={path}: cannot read the file: {e}"))
            });
        }
        if SECRETS.contains(&name)
            && let Some(dir) = &self.secrets_dir
        {
            for file in [name.to_ascii_lowercase(), name.to_owned()] {
                let path = dir.join(&file);
                match read_value_file(&path) {
                    Ok(v) => return Ok(Some(v)),
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => {
                        return Err(SettingsError(format!(
                            "{name}: cannot read {}: {e}",
                            path.display()
                        )));
                    }
                }
            }
        }
        Ok(self.dotenv.get(name).filter(|v| !v.is_empty()).cloned())
    }
}

/// A secret file's value: its text without the trailing newline editors and `echo` add.
fn read_value_file(path: &Path) -> std::io::Result<String> {
    let text = std::fs::read_to_string(path)?;
    Ok(text.trim_end_matches(['\n', '\r']).to_owned())
}

impl Settings {
    /// Reads and checks every setting.
    pub fn from_env(env: &Environment) -> Result<Self, SettingsError> {
        let defaults = Settings::default();
        let production = match env.get("NODE_ENV")?.as_deref() {
            None | Some("development") | Some("test") => false,
            Some("production") => true,
            Some(other) => {
                return Err(invalid(
                    "NODE_ENV",
                    other,
                    "production, development or test",
                ));
            }
        };
        let port = |name: &str, default: u16| -> Result<u16, SettingsError> {
            match env.get(name)? {
                None => Ok(default),
                Some(v) => v
                    .trim()
                    .parse::<u16>()
                    .map_err(|_| invalid(name, &v, "a port number from 0 to 65535")),
            }
        };
        let host = match env.get("HOST")? {
            None => defaults.host,
            Some(v) => match v.trim() {
                "localhost" => IpAddr::from([127, 0, 0, 1]),
                t => t.parse().map_err(|_| {
                    invalid("HOST", &v, "an IP address such as 0.0.0.0, 127.0.0.1 or ::")
                })?,
            },
        };
        let log_level = match env.get("LOG_LEVEL")? {
            None => defaults.log_level,
            Some(v) => LogLevel::parse(v.trim()).ok_or_else(|| {
                invalid(
                    "LOG_LEVEL",
                    &v,
                    "one of trace, debug, info, warn, error, fatal or silent",
                )
            })?,
        };
        let database_url = match env.get("DATABASE_URL")? {
            None => None,
            Some(v) => {
                if !(v.starts_with("postgres://")
                    || v.starts_with("postgresql://")
                    || v.starts_with("sqlite:"))
                {
                    return Err(SettingsError(
                        "DATABASE_URL: expected postgres://…, postgresql://… or sqlite:PATH \
                         (leave it unset for the embedded SQLite database)"
                            .to_owned(),
                    ));
                }
                Some(Secret(v))
            }
        };
        let redis_url = match env.get("REDIS_URL")? {
            None => None,
            Some(v) => {
                if !(v.starts_with("redis://") || v.starts_with("rediss://")) {
                    return Err(SettingsError(
                        "REDIS_URL: expected redis://… or rediss://…".to_owned(),
                    ));
                }
                Some(Secret(v))
            }
        };
        let number = |name: &str, default: u64, min: u64, max: u64| -> Result<u64, SettingsError> {
            match env.get(name)? {
                None => Ok(default),
                Some(v) => v
                    .trim()
                    .parse::<u64>()
                    .ok()
                    .filter(|n| (min..=max).contains(n))
                    .ok_or_else(|| {
                        invalid(name, &v, &format!("a whole number from {min} to {max}"))
                    }),
            }
        };
        let rate_limit_max = number("RATE_LIMIT_MAX", 1000, 1, u64::from(u32::MAX))? as u32;
        let rate_limit_window =
            Duration::from_millis(number("RATE_LIMIT_WINDOW_MS", 60_000, 1, 24 * 3600 * 1000)?);
        let max_upload_bytes =
            number("MAX_UPLOAD_BYTES", defaults.max_upload_bytes, 1024, 1 << 40)?;
        let worker_concurrency = number(
            "WORKER_CONCURRENCY",
            defaults.worker_concurrency as u64,
            1,
            1024,
        )? as usize;
        let job_lease = Duration::from_secs(number("JOB_LEASE_SECONDS", 60, 1, 24 * 3600)?);
        let failure_text_retention_days = number(
            "FAILURE_TEXT_RETENTION_DAYS",
            u64::from(defaults.failure_text_retention_days),
            1,
            36_500,
        )? as u32;
        let data_dir = env
            .get("FLAKEGUARD_DATA_DIR")?
            .map(PathBuf::from)
            .unwrap_or(defaults.data_dir);
        let github = github_settings(env)?;
        let settings = Settings {
            github,
            production,
            host,
            port: port("PORT", defaults.port)?,
            worker_port: port("WORKER_PORT", defaults.worker_port)?,
            web_port: port("WEB_PORT", defaults.web_port)?,
            log_level,
            database_url,
            data_dir,
            redis_url,
            jwt_secret: env.get("JWT_SECRET")?.map(Secret),
            api_key: env.get("API_KEY")?.map(Secret),
            rate_limit_max,
            rate_limit_window,
            max_upload_bytes,
            worker_concurrency,
            job_lease,
            failure_text_retention_days,
        };
        settings.check()?;
        Ok(settings)
    }

    fn check(&self) -> Result<(), SettingsError> {
        let ports = [
            ("PORT", self.port),
            ("WORKER_PORT", self.worker_port),
            ("WEB_PORT", self.web_port),
        ];
        for (i, (a, pa)) in ports.iter().enumerate() {
            for (b, pb) in &ports[i + 1..] {
                if pa == pb && *pa != 0 {
                    return Err(SettingsError(format!(
                        "{a} and {b} are both {pa}: each role needs its own port"
                    )));
                }
            }
        }
        if let Some(key) = &self.api_key {
            check_secret("API_KEY", key, 16, self.production)?;
        }
        if let Some(secret) = &self.jwt_secret {
            check_secret("JWT_SECRET", secret, 32, self.production)?;
        }
        if let Some(secret) = &self.github.webhook_secret {
            check_secret("GITHUB_WEBHOOK_SECRET", secret, 16, self.production)?;
        }
        if self.github.app_id.is_some() != self.github.private_key.is_some() {
            return Err(SettingsError(
                "GITHUB_APP_ID and the App's private key (GITHUB_PRIVATE_KEY_PATH, \
                 GITHUB_PRIVATE_KEY or GITHUB_PRIVATE_KEY_FILE) go together: set both or neither"
                    .to_owned(),
            ));
        }
        if self.production {
            for (name, value) in [("JWT_SECRET", &self.jwt_secret), ("API_KEY", &self.api_key)] {
                if value.is_none() {
                    return Err(SettingsError(format!(
                        "{name} is required in production (NODE_ENV=production): set it, \
                         {name}_FILE or /run/secrets/{}",
                        name.to_ascii_lowercase()
                    )));
                }
            }
        }
        Ok(())
    }
}

fn flag(env: &Environment, name: &str, default: bool) -> Result<bool, SettingsError> {
    match env.get(name)? {
        None => Ok(default),
        Some(v) => match v.trim().to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" | "on" => Ok(true),
            "false" | "0" | "no" | "off" => Ok(false),
            _ => Err(invalid(name, &v, "true or false")),
        },
    }
}

fn github_settings(env: &Environment) -> Result<GitHubSettings, SettingsError> {
    let defaults = GitHubSettings::default();
    let app_id = match env.get("GITHUB_APP_ID")? {
        None => None,
        Some(v) => Some(
            v.trim()
                .parse::<u64>()
                .ok()
                .filter(|id| *id > 0)
                .ok_or_else(|| invalid("GITHUB_APP_ID", &v, "the App's numeric id"))?,
        ),
    };
    let private_key = match env.get("GITHUB_PRIVATE_KEY")? {
        Some(pem) => Some(pem),
        None => match env.get("GITHUB_PRIVATE_KEY_PATH")? {
            None => None,
            Some(path) => Some(std::fs::read_to_string(path.trim()).map_err(|e| {
                SettingsError(format!(
                    "GITHUB_PRIVATE_KEY_PATH={path}: cannot read the App's private key: {e}"
                ))
            })?),
        },
    };
    if let Some(pem) = &private_key
        && !pem.contains("-----BEGIN")
    {
        return Err(SettingsError(
            "the GitHub App private key (GITHUB_PRIVATE_KEY or GITHUB_PRIVATE_KEY_PATH) is not \
             PEM: expected the .pem file GitHub downloads, starting with -----BEGIN"
                .to_owned(),
        ));
    }
    let api_url = match env.get("GITHUB_API_URL")? {
        None => defaults.api_url,
        Some(v) => {
            let url = v.trim().trim_end_matches('/').to_owned();
            if !(url.starts_with("https://") || url.starts_with("http://")) {
                return Err(invalid("GITHUB_API_URL", &v, "an http(s):// URL"));
            }
            url
        }
    };
    let public_url = env
        .get("FLAKEGUARD_PUBLIC_URL")?
        .map(|v| v.trim().trim_end_matches('/').to_owned());
    Ok(GitHubSettings {
        webhooks_enabled: flag(env, "ENABLE_GITHUB_WEBHOOKS", defaults.webhooks_enabled)?,
        webhook_secret: env.get("GITHUB_WEBHOOK_SECRET")?.map(Secret),
        app_id,
        private_key: private_key.map(Secret),
        api_url,
        quarantine_actions: flag(
            env,
            "ENABLE_QUARANTINE_ACTIONS",
            defaults.quarantine_actions,
        )?,
        public_url,
    })
}

/// Short or placeholder secrets are refused in production; elsewhere only an API key shorter
/// than 16 characters is (it guards the whole API even on a laptop).
fn check_secret(
    name: &str,
    secret: &Secret,
    min: usize,
    production: bool,
) -> Result<(), SettingsError> {
    let value = secret.expose();
    if production || name == "API_KEY" {
        let length = value.chars().count();
        if length < min {
            return Err(SettingsError(format!(
                "{name} is too short ({length} characters): expected at least {min} random characters"
            )));
        }
    }
    if production {
        let lower = value.to_ascii_lowercase();
        let placeholder = PLACEHOLDERS.iter().any(|p| lower.contains(p))
            || value.chars().all(|c| value.starts_with(c));
        if placeholder {
            return Err(SettingsError(format!(
                "{name} looks like a placeholder: expected a random secret (e.g. `openssl rand -hex 32`)"
            )));
        }
    }
    Ok(())
}

fn invalid(name: &str, value: &str, expected: &str) -> SettingsError {
    SettingsError(format!("invalid {name}={value:?}: expected {expected}"))
}

/// Parses a `.env` file: `KEY=value` lines, `#` comments, optional `export `, single quotes
/// (literal) or double quotes (with `\n`, `\"` and `\\` escapes).
pub fn parse_dotenv(text: &str) -> Result<Vec<(String, String)>, String> {
    let mut out = Vec::new();
    for (index, raw) in text.lines().enumerate() {
        let line_no = index + 1;
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let line = line.strip_prefix("export ").unwrap_or(line).trim_start();
        let Some((key, value)) = line.split_once('=') else {
            return Err(format!("line {line_no}: expected KEY=value"));
        };
        let key = key.trim();
        let valid_key = key
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !valid_key {
            return Err(format!(
                "line {line_no}: {key:?} is not a variable name (letters, digits and _)"
            ));
        }
        let value = value.trim();
        let value = if let Some(rest) = value.strip_prefix('"') {
            let mut out = String::new();
            let mut chars = rest.chars();
            let mut closed = false;
            while let Some(c) = chars.next() {
                match c {
                    '"' => {
                        closed = true;
                        break;
                    }
                    '\\' => match chars.next() {
                        Some('n') => out.push('\n'),
                        Some('t') => out.push('\t'),
                        Some(other) => out.push(other),
                        None => break,
                    },
                    c => out.push(c),
                }
            }
            if !closed {
                return Err(format!("line {line_no}: {key}: unterminated double quote"));
            }
            out
        } else if let Some(rest) = value.strip_prefix('\'') {
            match rest.find('\'') {
                Some(end) => rest[..end].to_owned(),
                None => return Err(format!("line {line_no}: {key}: unterminated single quote")),
            }
        } else {
            match value.find(" #") {
                Some(comment) => value[..comment].trim_end().to_owned(),
                None => value.to_owned(),
            }
        };
        out.push((key.to_owned(), value));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(vars: &[(&str, &str)]) -> Result<Settings, SettingsError> {
        Settings::from_env(&Environment::from_vars(vars.iter().copied(), None))
    }

    const STRONG_JWT: &str = "k3P9xQ2mV7rT1wY5zB8nC4dF6gH0jL2s";
    const STRONG_KEY: &str = "Zq8Wm3Lp5Rt7Yv2N";

    #[test]
    fn zero_configuration_gives_the_runbook_defaults() {
        let s = settings(&[]).unwrap();
        assert!(!s.production);
        assert_eq!((s.port, s.worker_port, s.web_port), (3000, 3001, 3002));
        assert_eq!(s.host.to_string(), "0.0.0.0");
        assert_eq!(s.log_level, LogLevel::Info);
        assert!(s.database_url.is_none());
        assert_eq!(s.max_upload_bytes, 100 << 20);
        assert_eq!(
            (s.rate_limit_max, s.rate_limit_window.as_millis()),
            (1000, 60_000)
        );
        assert_eq!(s.worker_concurrency, 4);
        assert_eq!(s.job_lease.as_secs(), 60);
        assert_eq!(s.failure_text_retention_days, 90);
    }

    #[test]
    fn github_settings_are_read_and_checked() {
        let s = settings(&[]).unwrap();
        assert_eq!(s.github, GitHubSettings::default());
        assert!(s.github.webhooks_enabled && s.github.quarantine_actions);
        let dir = std::env::temp_dir().join(format!("fg-gh-settings-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let key = dir.join("app.pem");
        std::fs::write(
            &key,
            "-----BEGIN RSA PRIVATE KEY-----\nMIIB\n-----END RSA PRIVATE KEY-----\n",
        )
        .unwrap();
        let s = settings(&[
            ("GITHUB_APP_ID", "123456"),
            ("GITHUB_PRIVATE_KEY_PATH", key.to_str().unwrap()),
            ("GITHUB_WEBHOOK_SECRET", "a-webhook-secret-of-some-length"),
            ("GITHUB_API_URL", "https://ghe.example.test/api/v3/"),
            ("ENABLE_GITHUB_WEBHOOKS", "false"),
            ("ENABLE_QUARANTINE_ACTIONS", "0"),
        ])
        .unwrap();
        assert_eq!(s.github.app_id, Some(123_456));
        assert!(
            s.github
                .private_key
                .as_ref()
                .unwrap()
                .expose()
                .contains("BEGIN RSA")
        );
        assert_eq!(s.github.api_url, "https://ghe.example.test/api/v3");
        assert!(!s.github.webhooks_enabled && !s.github.quarantine_actions);
        for (vars, expected) in [
            (
                vec![("ENABLE_GITHUB_WEBHOOKS", "maybe")],
                "ENABLE_GITHUB_WEBHOOKS",
            ),
            (vec![("GITHUB_APP_ID", "abc")], "GITHUB_APP_ID"),
            (vec![("GITHUB_APP_ID", "1")], "go together"),
            (vec![("GITHUB_PRIVATE_KEY", "not a key")], "not PEM"),
            (
                vec![("GITHUB_PRIVATE_KEY_PATH", "/nonexistent/key.pem")],
                "GITHUB_PRIVATE_KEY_PATH",
            ),
            (vec![("GITHUB_API_URL", "api.github.com")], "GITHUB_API_URL"),
        ] {
            let err = settings(&vars).unwrap_err().to_string();
            assert!(err.contains(expected), "{vars:?}: {err}");
        }
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn worker_settings_are_read_and_checked() {
        let s = settings(&[
            ("WORKER_CONCURRENCY", "10"),
            ("JOB_LEASE_SECONDS", "5"),
            ("FAILURE_TEXT_RETENTION_DAYS", "30"),
        ])
        .unwrap();
        assert_eq!(
            (
                s.worker_concurrency,
                s.job_lease.as_secs(),
                s.failure_text_retention_days
            ),
            (10, 5, 30)
        );
        let err = settings(&[("WORKER_CONCURRENCY", "0")]).unwrap_err();
        assert!(err.to_string().contains("WORKER_CONCURRENCY"), "{err}");
    }

    #[test]
    fn the_runbook_variables_are_read_as_written() {
        let s = settings(&[
            ("NODE_ENV", "production"),
            ("PORT", "8080"),
            ("HOST", "127.0.0.1"),
            ("LOG_LEVEL", "warn"),
            (
                "DATABASE_URL",
                "postgresql://u:p@db:5432/flakeguard?schema=public",
            ),
            ("REDIS_URL", "redis://redis:6379"),
            ("JWT_SECRET", STRONG_JWT),
            ("API_KEY", STRONG_KEY),
            ("RATE_LIMIT_MAX", "5"),
            ("RATE_LIMIT_WINDOW_MS", "1000"),
        ])
        .unwrap();
        assert!(s.production);
        assert_eq!((s.port, s.host.to_string()), (8080, "127.0.0.1".to_owned()));
        assert_eq!(s.log_level, LogLevel::Warn);
        assert_eq!(
            (s.rate_limit_max, s.rate_limit_window.as_millis()),
            (5, 1000)
        );
        assert_eq!(s.api_key.unwrap().expose(), STRONG_KEY);
        assert!(!format!("{:?}", s.jwt_secret).contains(STRONG_JWT));
    }

    #[test]
    fn a_bad_value_names_the_variable_and_what_is_expected() {
        for (vars, expected) in [
            (
                vec![("PORT", "eighty")],
                "invalid PORT=\"eighty\": expected a port number",
            ),
            (vec![("HOST", "my host")], "invalid HOST="),
            (vec![("LOG_LEVEL", "loud")], "invalid LOG_LEVEL=\"loud\""),
            (vec![("NODE_ENV", "prod")], "invalid NODE_ENV=\"prod\""),
            (
                vec![("RATE_LIMIT_MAX", "0")],
                "invalid RATE_LIMIT_MAX=\"0\"",
            ),
            (
                vec![("RATE_LIMIT_WINDOW_MS", "-5")],
                "invalid RATE_LIMIT_WINDOW_MS",
            ),
            (
                vec![("DATABASE_URL", "mysql://x")],
                "DATABASE_URL: expected postgres://",
            ),
            (
                vec![("REDIS_URL", "localhost:6379")],
                "REDIS_URL: expected redis://",
            ),
            (
                vec![("API_KEY", "short")],
                "API_KEY is too short (5 characters)",
            ),
            (
                vec![("PORT", "4000"), ("WEB_PORT", "4000")],
                "PORT and WEB_PORT are both 4000",
            ),
        ] {
            let err = settings(&vars).unwrap_err().to_string();
            assert!(err.starts_with(expected), "{vars:?}: {err}");
            assert!(!err.contains('\n'), "one line: {err}");
        }
    }

    #[test]
    fn production_refuses_missing_short_and_placeholder_secrets() {
        let base = [("NODE_ENV", "production")];
        let err = settings(&base).unwrap_err().to_string();
        assert!(
            err.starts_with("JWT_SECRET is required in production"),
            "{err}"
        );
        for (jwt, key, expected) in [
            ("qz81", STRONG_KEY, "JWT_SECRET is too short"),
            (
                "[secure-32-char-key]-padding-padding",
                STRONG_KEY,
                "JWT_SECRET looks like a placeholder",
            ),
            (
                "changeme-changeme-changeme-changeme",
                STRONG_KEY,
                "JWT_SECRET looks like a placeholder",
            ),
            (
                "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
                STRONG_KEY,
                "JWT_SECRET looks like a placeholder",
            ),
            (
                STRONG_JWT,
                "your-api-key-here-1234",
                "API_KEY looks like a placeholder",
            ),
        ] {
            let err = settings(&[base[0], ("JWT_SECRET", jwt), ("API_KEY", key)])
                .unwrap_err()
                .to_string();
            assert!(err.starts_with(expected), "{jwt}/{key}: {err}");
            assert!(
                !err.contains(jwt) && !err.contains(key),
                "secrets are not echoed: {err}"
            );
        }
        let err = settings(&[base[0], ("JWT_SECRET", STRONG_JWT)])
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("API_KEY is required in production"),
            "{err}"
        );
        // Outside production a short JWT secret is fine (nothing signs with it yet).
        assert!(settings(&[("JWT_SECRET", "dev")]).is_ok());
    }

    #[test]
    fn secrets_come_from_file_variables_and_run_secrets() {
        let dir = std::env::temp_dir().join(format!("fg-settings-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let key_file = dir.join("key.txt");
        std::fs::write(&key_file, format!("{STRONG_KEY}\n")).unwrap();
        std::fs::write(dir.join("jwt_secret"), format!("{STRONG_JWT}\r\n")).unwrap();
        let env = Environment::from_vars(
            [
                ("NODE_ENV", "production"),
                ("API_KEY_FILE", key_file.to_str().unwrap()),
            ],
            Some(dir.clone()),
        );
        let s = Settings::from_env(&env).unwrap();
        assert_eq!(s.api_key.unwrap().expose(), STRONG_KEY);
        assert_eq!(s.jwt_secret.unwrap().expose(), STRONG_JWT);
        // The variable itself wins over the file.
        let env = Environment::from_vars(
            [
                ("API_KEY", "Direct-Key-0123456"),
                ("API_KEY_FILE", key_file.to_str().unwrap()),
            ],
            None,
        );
        assert_eq!(env.get("API_KEY").unwrap().unwrap(), "Direct-Key-0123456");
        // A .env value is the last resort: the process's _FILE variable wins over it.
        let env = Environment::from_vars([("API_KEY_FILE", key_file.to_str().unwrap())], None)
            .with_dotenv([("API_KEY", "from-dotenv-0123456789"), ("PORT", "4100")]);
        assert_eq!(env.get("API_KEY").unwrap().unwrap(), STRONG_KEY);
        assert_eq!(env.get("PORT").unwrap().unwrap(), "4100");
        let env = Environment::from_vars([("API_KEY_FILE", "/nonexistent/key")], None);
        let err = Settings::from_env(&env).unwrap_err().to_string();
        assert!(
            err.starts_with("API_KEY_FILE=/nonexistent/key: cannot read the file"),
            "{err}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn dotenv_files_are_parsed_and_the_process_environment_wins() {
        let parsed = parse_dotenv(
            "# comment\nexport PORT=4000\nHOST = 127.0.0.1 # inline\nA='lit $x # y'\nB=\"two\\nlines\"\n\nEMPTY=\n",
        )
        .unwrap();
        assert_eq!(
            parsed,
            vec![
                ("PORT".to_owned(), "4000".to_owned()),
                ("HOST".to_owned(), "127.0.0.1".to_owned()),
                ("A".to_owned(), "lit $x # y".to_owned()),
                ("B".to_owned(), "two\nlines".to_owned()),
                ("EMPTY".to_owned(), String::new()),
            ]
        );
        assert_eq!(
            parse_dotenv("X=1\nnot a line\n").unwrap_err(),
            "line 2: expected KEY=value"
        );
        assert!(
            parse_dotenv("B=\"open\n")
                .unwrap_err()
                .contains("unterminated")
        );
        assert!(
            parse_dotenv("1X=2")
                .unwrap_err()
                .contains("not a variable name")
        );
    }
}
