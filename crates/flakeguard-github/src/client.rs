//! The GitHub App client: app JWT, per-installation access tokens (cached and shared), and the
//! request path every call takes — circuit breaker, rate limits, retries with backoff, metrics.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_lc_rs::signature::RsaKeyPair;
use reqwest::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, HeaderMap, RETRY_AFTER};
use reqwest::{Method, Response, StatusCode, Url};
use serde::de::DeserializeOwned;
use time::OffsetDateTime;

use crate::GitHubError;
use crate::breaker::Breaker;
use crate::jwt::{self, JwtClaims};
use crate::metrics::{RATE_LIMIT_REMAINING, count_request};
use crate::types::InstallationToken;

const GITHUB_ACCEPT: &str = "application/vnd.github+json";
const API_VERSION: &str = "2022-11-28";
/// A cached installation token is replaced this long before GitHub says it expires.
const TOKEN_REFRESH_MARGIN: time::Duration = time::Duration::minutes(5);
/// GitHub's advice when a 429 carries neither `retry-after` nor an exhausted quota.
const UNSPECIFIED_RATE_LIMIT_WAIT: Duration = Duration::from_secs(60);
const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// Guards against a `Link: rel="next"` chain that never ends.
const MAX_PAGES: usize = 1_000;

/// Who the App is and where its GitHub lives.
#[derive(Clone)]
pub struct AppConfig {
    /// REST API base, `https://api.github.com` by default, `https://HOST/api/v3` on GitHub
    /// Enterprise Server. A trailing slash is ignored.
    pub api_url: String,
    pub app_id: u64,
    /// The App's private key as GitHub hands it out (PKCS#1 PEM); PKCS#8 PEM works too.
    pub private_key_pem: String,
    pub user_agent: String,
}

impl AppConfig {
    /// The default API URL is github.com's.
    pub const DEFAULT_API_URL: &str = "https://api.github.com";

    /// A configuration for github.com with FlakeGuard's user agent.
    pub fn new(app_id: u64, private_key_pem: impl Into<String>) -> Self {
        AppConfig {
            api_url: Self::DEFAULT_API_URL.to_owned(),
            app_id,
            private_key_pem: private_key_pem.into(),
            user_agent: concat!("flakeguard/", env!("CARGO_PKG_VERSION")).to_owned(),
        }
    }
}

impl std::fmt::Debug for AppConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppConfig")
            .field("api_url", &self.api_url)
            .field("app_id", &self.app_id)
            .field("private_key_pem", &"<redacted>")
            .field("user_agent", &self.user_agent)
            .finish()
    }
}

/// How hard the client tries before giving up.
#[derive(Debug, Clone)]
pub struct ClientOptions {
    /// Longest rate-limit wait the client sits through before answering `RateLimited`.
    pub max_rate_limit_wait: Duration,
    /// Retries after a transport error or a 5xx (so `retries + 1` attempts in all).
    pub retries: u32,
    /// First backoff; doubled on every retry, plus up to as much again of jitter.
    pub retry_base: Duration,
    /// Consecutive failed calls (after their retries) that open the circuit breaker.
    pub breaker_threshold: u32,
    /// How long an open breaker fails calls fast before letting one trial through.
    pub breaker_cool_off: Duration,
    /// Whole-request timeout, body included.
    pub timeout: Duration,
}

impl Default for ClientOptions {
    fn default() -> Self {
        ClientOptions {
            max_rate_limit_wait: Duration::from_secs(60),
            retries: 3,
            retry_base: Duration::from_millis(250),
            breaker_threshold: 5,
            breaker_cool_off: Duration::from_secs(30),
            timeout: Duration::from_secs(30),
        }
    }
}

type TokenSlot = Arc<tokio::sync::Mutex<Option<InstallationToken>>>;

/// A GitHub App: signs app JWTs and hands out [`Installation`] handles. Cheap to clone; the
/// clones share the HTTP connection pool, the token cache and the circuit breaker.
#[derive(Clone)]
pub struct GitHubApp {
    inner: Arc<Inner>,
}

struct Inner {
    http: reqwest::Client,
    api: Url,
    app_id: u64,
    key: RsaKeyPair,
    options: ClientOptions,
    tokens: Mutex<HashMap<i64, TokenSlot>>,
    breaker: Breaker,
}

impl std::fmt::Debug for GitHubApp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GitHubApp")
            .field("api_url", &self.inner.api.as_str())
            .field("app_id", &self.inner.app_id)
            .finish_non_exhaustive()
    }
}

impl GitHubApp {
    /// Reads the key and builds the HTTP client. A key that is not an RSA private key in PEM
    /// (PKCS#1 or PKCS#8) is a [`GitHubError::Key`].
    pub fn new(config: AppConfig, options: ClientOptions) -> Result<Self, GitHubError> {
        let key = jwt::parse_private_key(&config.private_key_pem)?;
        let trimmed = config.api_url.trim_end_matches('/');
        let api = Url::parse(trimmed)
            .ok()
            .filter(|url| matches!(url.scheme(), "http" | "https") && url.host().is_some())
            .ok_or_else(|| {
                GitHubError::Config(format!("api url {trimmed:?} is not an http(s) URL"))
            })?;
        let http = reqwest::Client::builder()
            .user_agent(config.user_agent)
            .timeout(options.timeout)
            .build()
            .map_err(|err| GitHubError::Config(format!("cannot build the http client: {err}")))?;
        Ok(GitHubApp {
            inner: Arc::new(Inner {
                http,
                api,
                app_id: config.app_id,
                key,
                breaker: Breaker::new(options.breaker_threshold, options.breaker_cool_off),
                options,
                tokens: Mutex::new(HashMap::new()),
            }),
        })
    }

    /// A fresh app JWT: RS256, `iat` a minute ago, `exp` in nine minutes, `iss` the app id.
    pub fn app_jwt(&self) -> Result<String, GitHubError> {
        let claims = JwtClaims::for_app(self.inner.app_id, OffsetDateTime::now_utc());
        jwt::sign(&self.inner.key, &claims)
    }

    /// A handle acting as one installation. Handles for the same id share one cached token.
    pub fn installation(&self, installation_id: i64) -> Installation {
        Installation {
            app: self.clone(),
            id: installation_id,
        }
    }

    fn token_slot(&self, installation_id: i64) -> TokenSlot {
        let mut tokens = self
            .inner
            .tokens
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        tokens.entry(installation_id).or_default().clone()
    }

    pub(crate) fn url(&self, segments: &[&str]) -> Url {
        let mut url = self.inner.api.clone();
        if let Ok(mut path) = url.path_segments_mut() {
            path.pop_if_empty().extend(segments);
        }
        url
    }

    async fn fetch_installation_token(
        &self,
        installation_id: i64,
    ) -> Result<InstallationToken, GitHubError> {
        const ENDPOINT: &str = "create_installation_token";
        let jwt = self.app_jwt()?;
        let id = installation_id.to_string();
        let url = self.url(&["app", "installations", &id, "access_tokens"]);
        let call = Call {
            endpoint: ENDPOINT,
            method: Method::POST,
            url,
            body: None,
        };
        let response = self.execute(&call, &jwt).await?;
        decode(ENDPOINT, response).await
    }

    /// One logical call: breaker, then attempts with rate-limit waits and retries.
    async fn execute(&self, call: &Call, bearer: &str) -> Result<Response, GitHubError> {
        let breaker = &self.inner.breaker;
        breaker.admit()?;
        let result = self.attempts(call, bearer).await;
        match &result {
            Err(GitHubError::Transport(_)) => breaker.record_failure(),
            Err(GitHubError::Http { status, .. }) if *status >= 500 => breaker.record_failure(),
            // GitHub is pacing us, which says nothing about its health either way.
            Err(GitHubError::RateLimited { .. }) => {}
            // Any other answer means GitHub is up.
            _ => breaker.record_success(),
        }
        result
    }

    async fn attempts(&self, call: &Call, bearer: &str) -> Result<Response, GitHubError> {
        let options = &self.inner.options;
        let mut retries_left = options.retries;
        let mut rate_limit_waits_left = options.retries + 1;
        let mut attempt = 0u32;
        loop {
            let mut request = self
                .inner
                .http
                .request(call.method.clone(), call.url.clone())
                .header(AUTHORIZATION, format!("Bearer {bearer}"))
                .header(ACCEPT, GITHUB_ACCEPT)
                .header("X-GitHub-Api-Version", API_VERSION);
            if let Some(body) = &call.body {
                request = request
                    .header(CONTENT_TYPE, "application/json")
                    .body(body.clone());
            }
            let response = match request.send().await {
                Ok(response) => response,
                Err(err) => {
                    count_request(call.endpoint, "error");
                    let message = format!("{}: {}", call.endpoint, error_chain(&err.without_url()));
                    if retries_left > 0 {
                        retries_left -= 1;
                        tracing::warn!(endpoint = call.endpoint, error = %message, "retrying github call");
                        tokio::time::sleep(backoff(options.retry_base, attempt)).await;
                        attempt += 1;
                        continue;
                    }
                    return Err(GitHubError::Transport(message));
                }
            };
            let status = response.status();
            count_request(call.endpoint, status.as_str());
            track_rate_limit(response.headers());
            if let Some(wait) = rate_limit_wait(status, response.headers()) {
                if wait <= options.max_rate_limit_wait && rate_limit_waits_left > 0 {
                    rate_limit_waits_left -= 1;
                    tracing::warn!(
                        endpoint = call.endpoint,
                        wait_secs = wait.as_secs_f64(),
                        "github rate limit; waiting"
                    );
                    tokio::time::sleep(wait).await;
                    continue;
                }
                return Err(GitHubError::RateLimited { retry_after: wait });
            }
            if status.is_server_error() && retries_left > 0 {
                retries_left -= 1;
                tracing::warn!(endpoint = call.endpoint, %status, "retrying github call");
                tokio::time::sleep(backoff(options.retry_base, attempt)).await;
                attempt += 1;
                continue;
            }
            if status.is_success() {
                return Ok(response);
            }
            return Err(http_error(call.endpoint, response).await);
        }
    }
}

/// What one call sends; the body is serialized once so retries resend the same bytes.
#[derive(Debug)]
struct Call {
    endpoint: &'static str,
    method: Method,
    url: Url,
    body: Option<Vec<u8>>,
}

/// The App acting as one installation. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Installation {
    app: GitHubApp,
    id: i64,
}

impl Installation {
    pub fn id(&self) -> i64 {
        self.id
    }

    pub(crate) fn app(&self) -> &GitHubApp {
        &self.app
    }

    /// The cached token, or a fresh one; `true` when it came from the cache.
    async fn token(&self) -> Result<(String, bool), GitHubError> {
        let slot = self.app.token_slot(self.id);
        let mut cached = slot.lock().await;
        if let Some(token) = cached.as_ref()
            && OffsetDateTime::now_utc() < token.expires_at - TOKEN_REFRESH_MARGIN
        {
            return Ok((token.token.clone(), true));
        }
        let fresh = self.app.fetch_installation_token(self.id).await?;
        tracing::debug!(installation_id = self.id, expires_at = %fresh.expires_at, "fetched installation token");
        let token = fresh.token.clone();
        *cached = Some(fresh);
        Ok((token, false))
    }

    async fn forget_token(&self, token: &str) {
        let slot = self.app.token_slot(self.id);
        let mut cached = slot.lock().await;
        if cached.as_ref().is_some_and(|t| t.token == token) {
            *cached = None;
        }
    }

    /// Sends a call with the installation token; a 401 on a cached token (revoked, or the
    /// clocks disagree) drops it and tries once more with a fresh one.
    pub(crate) async fn send(
        &self,
        endpoint: &'static str,
        method: Method,
        url: Url,
        body: Option<Vec<u8>>,
    ) -> Result<Response, GitHubError> {
        let call = Call {
            endpoint,
            method,
            url,
            body,
        };
        let (token, from_cache) = self.token().await?;
        match self.app.execute(&call, &token).await {
            Err(GitHubError::Http { status: 401, .. }) if from_cache => {
                tracing::info!(
                    installation_id = self.id,
                    endpoint,
                    "cached installation token refused; fetching a new one"
                );
                self.forget_token(&token).await;
                let (token, _) = self.token().await?;
                self.app.execute(&call, &token).await
            }
            other => other,
        }
    }

    /// GETs `url` and every page after it (`Link: rel="next"`), collecting the items.
    pub(crate) async fn get_all_pages<P, T>(
        &self,
        endpoint: &'static str,
        mut url: Url,
        items: impl Fn(P) -> Vec<T>,
    ) -> Result<Vec<T>, GitHubError>
    where
        P: DeserializeOwned,
    {
        let mut all = Vec::new();
        for _ in 0..MAX_PAGES {
            let response = self.send(endpoint, Method::GET, url, None).await?;
            let next = next_link(response.headers());
            all.extend(items(decode::<P>(endpoint, response).await?));
            match next {
                None => return Ok(all),
                Some(next) => url = self.same_origin(endpoint, &next)?,
            }
        }
        Err(GitHubError::Decode {
            endpoint,
            message: format!("more than {MAX_PAGES} pages"),
        })
    }

    /// The installation token only ever goes to the configured API host.
    fn same_origin(&self, endpoint: &'static str, link: &str) -> Result<Url, GitHubError> {
        let url = Url::parse(link).map_err(|err| GitHubError::Decode {
            endpoint,
            message: format!("next page link {link:?} is not a URL: {err}"),
        })?;
        if url.origin() != self.app.inner.api.origin() {
            return Err(GitHubError::Decode {
                endpoint,
                message: format!("next page link {link:?} leaves the API host"),
            });
        }
        Ok(url)
    }
}

pub(crate) async fn decode<T: DeserializeOwned>(
    endpoint: &'static str,
    response: Response,
) -> Result<T, GitHubError> {
    let bytes = response.bytes().await.map_err(|err| {
        GitHubError::Transport(format!("{endpoint}: {}", error_chain(&err.without_url())))
    })?;
    serde_json::from_slice(&bytes).map_err(|err| GitHubError::Decode {
        endpoint,
        message: err.to_string(),
    })
}

async fn http_error(endpoint: &'static str, response: Response) -> GitHubError {
    #[derive(serde::Deserialize)]
    struct ErrorBody {
        message: String,
        #[serde(default)]
        errors: Option<serde_json::Value>,
    }
    let status = response.status().as_u16();
    let body = response.bytes().await.unwrap_or_default();
    let message = match serde_json::from_slice::<ErrorBody>(&body) {
        Ok(ErrorBody {
            message,
            errors: Some(errors),
        }) => format!("{message} {errors}"),
        Ok(ErrorBody { message, .. }) => message,
        Err(_) => String::from_utf8_lossy(&body).chars().take(200).collect(),
    };
    GitHubError::Http {
        status,
        message,
        endpoint,
    }
}

fn error_chain(err: &dyn std::error::Error) -> String {
    let mut message = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        message.push_str(": ");
        message.push_str(&cause.to_string());
        source = cause.source();
    }
    message
}

fn header_u64(headers: &HeaderMap, name: &str) -> Option<u64> {
    headers.get(name)?.to_str().ok()?.trim().parse().ok()
}

fn track_rate_limit(headers: &HeaderMap) {
    if let Some(remaining) = header_u64(headers, "x-ratelimit-remaining") {
        metrics::gauge!(RATE_LIMIT_REMAINING).set(remaining as f64);
    }
}

/// How long GitHub asks us to wait, when the answer is a rate limit: a 403 or 429 with
/// `retry-after` (secondary limit) or with the quota exhausted (`x-ratelimit-remaining: 0`,
/// wait until `x-ratelimit-reset`).
fn rate_limit_wait(status: StatusCode, headers: &HeaderMap) -> Option<Duration> {
    if status != StatusCode::FORBIDDEN && status != StatusCode::TOO_MANY_REQUESTS {
        return None;
    }
    if let Some(secs) = header_u64(headers, RETRY_AFTER.as_str()) {
        return Some(Duration::from_secs(secs));
    }
    if header_u64(headers, "x-ratelimit-remaining") == Some(0) {
        let now = OffsetDateTime::now_utc().unix_timestamp();
        let reset = header_u64(headers, "x-ratelimit-reset")
            .and_then(|reset| i64::try_from(reset).ok())
            .unwrap_or(now);
        return Some(Duration::from_secs(u64::try_from(reset - now).unwrap_or(0)));
    }
    (status == StatusCode::TOO_MANY_REQUESTS).then_some(UNSPECIFIED_RATE_LIMIT_WAIT)
}

/// Exponential backoff with jitter: `base * 2^attempt` plus up to `base` more.
fn backoff(base: Duration, attempt: u32) -> Duration {
    let mut random = [0u8; 4];
    let jitter_permille = match aws_lc_rs::rand::fill(&mut random) {
        Ok(()) => u32::from_le_bytes(random) % 1000,
        Err(_) => 500,
    };
    let exponential = base.saturating_mul(1u32 << attempt.min(16));
    let jitter = base.saturating_mul(jitter_permille) / 1000;
    exponential.saturating_add(jitter).min(MAX_BACKOFF)
}

/// The `rel="next"` target of a `Link` header.
fn next_link(headers: &HeaderMap) -> Option<String> {
    let link = headers.get(reqwest::header::LINK)?.to_str().ok()?;
    link.split(',').find_map(|part| {
        let (target, params) = part.split_once(';')?;
        let is_next = params.split(';').any(|param| {
            let Some((key, value)) = param.split_once('=') else {
                return false;
            };
            key.trim() == "rel"
                && value
                    .trim()
                    .trim_matches('"')
                    .split_whitespace()
                    .any(|rel| rel == "next")
        });
        let target = target.trim().strip_prefix('<')?.strip_suffix('>')?;
        is_next.then(|| target.to_owned())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    #[test]
    fn finds_the_next_link_among_others() {
        let mut headers = HeaderMap::new();
        headers.insert(
            reqwest::header::LINK,
            HeaderValue::from_static(
                r#"<https://api.github.com/repositories/1000/issues?per_page=3&page=1>; rel="prev", <https://api.github.com/repositories/1000/issues?per_page=3&page=3>; rel="next", <https://api.github.com/repositories/1000/issues?per_page=3&page=5>; rel="last""#,
            ),
        );
        assert_eq!(
            next_link(&headers).as_deref(),
            Some("https://api.github.com/repositories/1000/issues?per_page=3&page=3")
        );
        headers.insert(
            reqwest::header::LINK,
            HeaderValue::from_static(r#"<https://api.github.com/x?page=1>; rel="first""#),
        );
        assert_eq!(next_link(&headers), None);
    }

    #[test]
    fn secondary_limits_wait_for_retry_after_and_primary_for_the_reset() {
        let mut headers = HeaderMap::new();
        headers.insert(RETRY_AFTER, HeaderValue::from_static("7"));
        assert_eq!(
            rate_limit_wait(StatusCode::FORBIDDEN, &headers),
            Some(Duration::from_secs(7))
        );
        let mut headers = HeaderMap::new();
        headers.insert("x-ratelimit-remaining", HeaderValue::from_static("0"));
        let reset = OffsetDateTime::now_utc().unix_timestamp() + 3600;
        headers.insert("x-ratelimit-reset", HeaderValue::from(reset));
        let wait = rate_limit_wait(StatusCode::FORBIDDEN, &headers).unwrap();
        assert!(wait > Duration::from_secs(3500), "{wait:?}");
        // A plain 403 is a permission problem, not a rate limit.
        assert_eq!(
            rate_limit_wait(StatusCode::FORBIDDEN, &HeaderMap::new()),
            None
        );
    }

    #[test]
    fn backoff_doubles_and_stays_under_the_cap() {
        let base = Duration::from_millis(100);
        let first = backoff(base, 0);
        assert!(first >= base && first <= base * 2, "{first:?}");
        let third = backoff(base, 2);
        assert!(third >= base * 4 && third <= base * 5, "{third:?}");
        assert_eq!(backoff(base, 30), MAX_BACKOFF);
    }
}
