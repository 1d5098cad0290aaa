//! Talking to the server: a request (the upload's POST, the quarantine list's GETs) retried
//! with exponential backoff and jitter when a retry can help (no connection, a timeout, 5xx,
//! 429) and never when it cannot (any other 4xx).

use std::convert::Infallible;
use std::fmt;
use std::pin::Pin;
use std::task::{Context as TaskContext, Poll};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use bytes::Bytes;
use http_body::{Frame, SizeHint};
use indicatif::ProgressBar;
use reqwest::header::{
    AUTHORIZATION, CONTENT_ENCODING, CONTENT_TYPE, HeaderValue, LOCATION, RETRY_AFTER,
};
use reqwest::{StatusCode, Url};
use serde::Deserialize;

use crate::cli::Secret;

/// How a server's `Retry-After` is obeyed at most: a CI job should not sleep for an hour.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(60);
/// The longest pause between two attempts that backoff alone produces.
const MAX_BACKOFF: Duration = Duration::from_secs(30);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// How hard to try: attempts after the first, the time each may take, and the pause before
/// the first retry (each later one doubles).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Retry {
    pub(crate) retries: u32,
    pub(crate) timeout: Duration,
    pub(crate) backoff: Duration,
}

impl Retry {
    pub(crate) fn from_args(args: &crate::cli::ServerArgs) -> Self {
        Retry {
            retries: args.retries,
            timeout: Duration::from_secs(args.timeout),
            backoff: Duration::from_millis(args.backoff_ms),
        }
    }
}

/// One upload: where, with what, and how hard to try.
#[derive(Debug)]
pub(super) struct Upload<'a> {
    pub(super) url: Url,
    pub(super) token: &'a Secret,
    pub(super) content_type: String,
    pub(super) body: Bytes,
    pub(super) retry: Retry,
}

/// A 2xx answer.
#[derive(Debug)]
pub(crate) struct Answer {
    pub(crate) status: StatusCode,
    pub(crate) body: Bytes,
}

/// Why an attempt failed in a way another attempt may fix.
#[derive(Debug)]
enum Transient {
    Status {
        status: StatusCode,
        error: ServerError,
        retry_after: Option<Duration>,
    },
    Transport(String),
}

impl fmt::Display for Transient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Transient::Status { status, error, .. } => write!(f, "{}", error.describe(*status)),
            Transient::Transport(message) => f.write_str(message),
        }
    }
}

/// An HTTP client for talking to a FlakeGuard server.
pub(crate) fn client(timeout: Duration) -> Result<reqwest::Client> {
    reqwest::Client::builder()
        .user_agent(concat!("flakeguard/", env!("CARGO_PKG_VERSION")))
        .connect_timeout(CONNECT_TIMEOUT.min(timeout))
        .timeout(timeout)
        // A redirected POST becomes a GET without the reports; say so instead.
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .context("cannot set up the HTTP client")
}

/// `Bearer <token>`, marked sensitive so it is never logged.
pub(crate) fn authorization(token: &Secret) -> Result<HeaderValue> {
    let mut value = HeaderValue::from_str(&format!("Bearer {}", token.expose()))
        .context("the token cannot be sent in an HTTP header")?;
    value.set_sensitive(true);
    Ok(value)
}

pub(super) async fn send(upload: &Upload<'_>, bar: &ProgressBar) -> Result<Answer> {
    let client = client(upload.retry.timeout)?;
    let authorization = authorization(upload.token)?;
    with_retries(
        "upload",
        &upload.retry,
        |_| {
            bar.set_position(0);
            client
                .post(upload.url.clone())
                .header(AUTHORIZATION, authorization.clone())
                .header(CONTENT_TYPE, &upload.content_type)
                .header(CONTENT_ENCODING, "gzip")
                .body(reqwest::Body::wrap(CountedBody {
                    rest: upload.body.clone(),
                    bar: bar.clone(),
                }))
        },
        |event| match event {
            RetryEvent::Waiting { warning, failure } => {
                bar.suspend(|| eprintln!("{warning}"));
                bar.set_message(format!("waiting to retry ({failure})"));
            }
            RetryEvent::Attempt { attempt, attempts } => {
                bar.set_message(format!("attempt {attempt} of {attempts}"));
            }
        },
    )
    .await
}

/// What [`with_retries`] reports while it works.
#[derive(Debug)]
pub(crate) enum RetryEvent<'a> {
    /// An attempt failed; the warning says so and when the next one starts.
    Waiting { warning: &'a str, failure: &'a str },
    /// Attempt `attempt` of `attempts` is starting (from the second on).
    Attempt { attempt: u32, attempts: u32 },
}

/// Sends the request `build` makes (given the attempt number, from 1) until the server answers
/// 2xx, answers in a way no retry can change (any other 4xx: `Err` naming `what` as refused),
/// or the attempts run out (`Err` with the last failure). Retried: no connection, a timeout,
/// 5xx and 429 (after its `Retry-After`, capped), with exponential backoff and jitter.
pub(crate) async fn with_retries(
    what: &str,
    retry: &Retry,
    mut build: impl FnMut(u32) -> reqwest::RequestBuilder,
    mut events: impl FnMut(RetryEvent<'_>),
) -> Result<Answer> {
    let attempts = retry.retries.saturating_add(1);
    let mut attempt = 1;
    loop {
        let failure = match attempt_once(what, build(attempt), retry.timeout).await? {
            Ok(answer) => return Ok(answer),
            Err(failure) => failure,
        };
        if attempt >= attempts {
            let tries = if attempts == 1 { "attempt" } else { "attempts" };
            bail!("{what} failed after {attempts} {tries}; last error: {failure}");
        }
        let delay = match &failure {
            Transient::Status {
                retry_after: Some(after),
                ..
            } => (*after).min(MAX_RETRY_AFTER),
            _ => backoff(retry.backoff, attempt, jitter()),
        };
        let failure = failure.to_string();
        let warning = format!(
            "warning: attempt {attempt} of {attempts} failed: {failure}; retrying in {}",
            seconds(delay)
        );
        events(RetryEvent::Waiting {
            warning: &warning,
            failure: &failure,
        });
        tokio::time::sleep(delay).await;
        attempt += 1;
        events(RetryEvent::Attempt { attempt, attempts });
    }
}

/// One attempt: `Ok(Ok)` on 2xx, `Ok(Err)` when a retry may help, `Err` when none will.
async fn attempt_once(
    what: &str,
    request: reqwest::RequestBuilder,
    timeout: Duration,
) -> Result<Result<Answer, Transient>> {
    let response = match request.send().await {
        Ok(response) => response,
        Err(e) if e.is_builder() => return Err(anyhow::Error::new(e.without_url())),
        Err(e) => return Ok(Err(Transient::Transport(transport_error(&e, timeout)))),
    };
    let status = response.status();
    let retry_after = response
        .headers()
        .get(RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(Duration::from_secs);
    let location = response
        .headers()
        .get(LOCATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let body = match response.bytes().await {
        Ok(body) => body,
        Err(e) => return Ok(Err(Transient::Transport(transport_error(&e, timeout)))),
    };
    if status.is_success() {
        return Ok(Ok(Answer { status, body }));
    }
    let error = ServerError::from_body(&body);
    if status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS {
        return Ok(Err(Transient::Status {
            status,
            error,
            retry_after,
        }));
    }
    if status.is_redirection() {
        let to = location.as_deref().unwrap_or("an unnamed address");
        bail!(
            "{what} refused (HTTP {}): the server redirects to {to}; pass the final address as --server",
            status.as_u16()
        );
    }
    bail!("{}", error.refusal(what, status))
}

/// What an error answer says: the API's `{"error":{"code","message"}}`, or, from a server (or a
/// proxy in front of it) that answers otherwise, the start of its plain text as the message.
#[derive(Debug)]
struct ServerError {
    code: Option<String>,
    message: String,
}

impl ServerError {
    fn from_body(body: &[u8]) -> Self {
        #[derive(Deserialize)]
        struct Body {
            error: Detail,
        }
        #[derive(Deserialize)]
        struct Detail {
            code: String,
            message: String,
        }
        match serde_json::from_slice::<Body>(body) {
            Ok(Body { error }) => ServerError {
                code: Some(one_line(&error.code, 100)).filter(|c| !c.is_empty()),
                message: one_line(&error.message, 500),
            },
            Err(_) => {
                let text = String::from_utf8_lossy(body);
                // An HTML error page says no more than its status, at great length.
                let markup = text.trim_start().starts_with('<');
                ServerError {
                    code: None,
                    message: if markup {
                        String::new()
                    } else {
                        one_line(&text, 200)
                    },
                }
            }
        }
    }

    /// `HTTP 422 invalid_report`: the status and the server's code, or the status's name when
    /// the server gave no code.
    fn heading(&self, status: StatusCode) -> String {
        match self.code.as_deref().or(status.canonical_reason()) {
            Some(code) => format!("HTTP {} {code}", status.as_u16()),
            None => format!("HTTP {}", status.as_u16()),
        }
    }

    /// `HTTP 422 invalid_report: <message>`.
    fn describe(&self, status: StatusCode) -> String {
        self.with_message(self.heading(status))
    }

    /// `upload refused (HTTP 422 invalid_report): <message>`.
    fn refusal(&self, what: &str, status: StatusCode) -> String {
        self.with_message(format!("{what} refused ({})", self.heading(status)))
    }

    fn with_message(&self, head: String) -> String {
        if self.message.is_empty() {
            head
        } else {
            format!("{head}: {}", self.message)
        }
    }
}

/// At most `max` characters of `text`, its line breaks and other control characters as spaces.
fn one_line(text: &str, max: usize) -> String {
    let flat: String = text
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .chars()
        .filter(|c| !c.is_control())
        .collect();
    if flat.chars().count() <= max {
        flat
    } else {
        format!("{}…", flat.chars().take(max).collect::<String>())
    }
}

/// What went wrong below HTTP, in words: the innermost cause says the most ("Connection
/// refused", "invalid peer certificate: UnknownIssuer"). The URL is left out: it is long and
/// already known.
fn transport_error(error: &reqwest::Error, timeout: Duration) -> String {
    let mut innermost: &dyn std::error::Error = error;
    while let Some(source) = innermost.source() {
        innermost = source;
    }
    let host = error
        .url()
        .map(|u| match (u.host_str(), u.port_or_known_default()) {
            (Some(host), Some(port)) => format!("{host}:{port}"),
            (Some(host), None) => host.to_owned(),
            _ => u.scheme().to_owned(),
        })
        .unwrap_or_else(|| "the server".to_owned());
    if error.is_timeout() {
        if error.is_connect() {
            return format!("cannot connect to {host}: timed out");
        }
        return format!("no answer from {host} within {}s", timeout.as_secs());
    }
    if error.is_connect() {
        return format!("cannot connect to {host}: {innermost}");
    }
    format!("connection to {host} failed: {innermost}")
}

/// The pause after failed attempt `attempt` (from 1): `first`, doubled for each later attempt,
/// capped, then scaled by `jitter` (0.75 to 1.25) so that many CI jobs failing together do not
/// retry together.
fn backoff(first: Duration, attempt: u32, jitter: f64) -> Duration {
    let doubled = first.saturating_mul(1u32 << attempt.saturating_sub(1).min(16));
    doubled.min(MAX_BACKOFF).mul_f64(jitter.clamp(0.75, 1.25))
}

/// `1.5s`, or `20ms` for the short pauses tests use.
fn seconds(delay: Duration) -> String {
    if delay < Duration::from_millis(100) {
        format!("{}ms", delay.as_millis())
    } else {
        format!("{:.1}s", delay.as_secs_f64())
    }
}

fn jitter() -> f64 {
    let mut byte = [0u8; 1];
    match getrandom::fill(&mut byte) {
        Ok(()) => 0.75 + f64::from(byte[0]) / 510.0,
        // Without randomness the retry still happens, only in step with others.
        Err(_) => 1.0,
    }
}

/// The body, handed to the connection in chunks so the progress bar can count bytes sent.
struct CountedBody {
    rest: Bytes,
    bar: ProgressBar,
}

const CHUNK: usize = 64 * 1024;

impl http_body::Body for CountedBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        _cx: &mut TaskContext<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        let this = self.get_mut();
        if this.rest.is_empty() {
            return Poll::Ready(None);
        }
        let chunk = this.rest.split_to(CHUNK.min(this.rest.len()));
        this.bar.inc(chunk.len() as u64);
        if this.rest.is_empty() {
            this.bar.set_message("sent, waiting for the server");
        }
        Poll::Ready(Some(Ok(Frame::data(chunk))))
    }

    fn is_end_stream(&self) -> bool {
        self.rest.is_empty()
    }

    /// Exact, so the request carries a Content-Length instead of being chunked.
    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.rest.len() as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_from_the_first_pause_and_is_capped() {
        let first = Duration::from_millis(500);
        let pauses: Vec<u128> = (1..=5)
            .map(|n| backoff(first, n, 1.0).as_millis())
            .collect();
        assert_eq!(pauses, [500, 1000, 2000, 4000, 8000]);
        assert_eq!(backoff(first, 30, 1.0), MAX_BACKOFF);
        assert_eq!(backoff(first, u32::MAX, 1.0), MAX_BACKOFF);
        assert_eq!(backoff(first, 1, 0.75).as_millis(), 375);
        assert_eq!(backoff(first, 1, 9.0).as_millis(), 625);
    }

    #[test]
    fn jitter_stays_within_a_quarter() {
        for _ in 0..100 {
            let j = jitter();
            assert!((0.75..=1.25).contains(&j), "{j}");
        }
    }

    #[test]
    fn error_bodies_give_the_code_and_message() {
        let error = ServerError::from_body(
            br#"{"error":{"code":"invalid_report","message":"line 3: bad"}}"#,
        );
        assert_eq!(
            error.describe(StatusCode::UNPROCESSABLE_ENTITY),
            "HTTP 422 invalid_report: line 3: bad"
        );
        assert_eq!(
            error.refusal("upload", StatusCode::UNPROCESSABLE_ENTITY),
            "upload refused (HTTP 422 invalid_report): line 3: bad"
        );
    }

    #[test]
    fn other_bodies_give_the_status_and_their_first_words() {
        let html = ServerError::from_body(b"\n<html>\n<body>Bad Gateway</body>\n</html>\n");
        assert_eq!(
            html.describe(StatusCode::BAD_GATEWAY),
            "HTTP 502 Bad Gateway"
        );
        let text = ServerError::from_body(b"upstream connect error\nor disconnect\n");
        assert_eq!(
            text.describe(StatusCode::SERVICE_UNAVAILABLE),
            "HTTP 503 Service Unavailable: upstream connect error or disconnect"
        );
        assert_eq!(
            ServerError::from_body(b"").describe(StatusCode::NOT_FOUND),
            "HTTP 404 Not Found"
        );
        let long = ServerError::from_body("x".repeat(1000).as_bytes());
        assert_eq!(long.message.chars().count(), 200 + 1);
    }
}
