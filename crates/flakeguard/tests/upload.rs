//! `flakeguard upload` as a CI job runs it: the real binary, real fixture reports (read in
//! place), and a fake FlakeGuard server on a loopback port that records every request and
//! answers from a script.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use reqwest::Url;

fn fixtures() -> PathBuf {
    std::env::var("FLAKEGUARD_FIXTURES")
        .map(PathBuf::from)
        .unwrap_or_else(|_| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/fixtures")
        })
}

/// The folder every upload runs in, so that reports are named by short relative paths.
fn junit() -> PathBuf {
    fixtures().join("junit")
}

const NEXTEST: &str = "nextest/nextest__fixture-project-junit.xml";
const JEST: &str = "jest/dorny-test-reporter__jest-junit.xml";

/// Every variable `upload` reads, removed so that the test's own environment (a CI job's,
/// perhaps) cannot leak in.
const VARIABLES: &[&str] = &[
    "FLAKEGUARD_SERVER",
    "FLAKEGUARD_TOKEN",
    "GITHUB_REPOSITORY",
    "GITHUB_SHA",
    "GITHUB_REF",
    "GITHUB_REF_NAME",
    "GITHUB_HEAD_REF",
    "GITHUB_RUN_ID",
    "GITHUB_RUN_ATTEMPT",
    "GITHUB_JOB",
];

fn flakeguard(env: &[(&str, &str)], args: &[&str]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_flakeguard"));
    for var in VARIABLES {
        cmd.env_remove(var);
    }
    cmd.current_dir(junit())
        .envs(env.iter().copied())
        .arg("upload")
        .args(args)
        .output()
        .expect("flakeguard runs")
}

/// `upload` with everything required given as flags, fast retries, then `args`.
fn upload(server: &str, args: &[&str]) -> Output {
    let mut all = vec![
        "--server",
        server,
        "--token",
        "fgt_test",
        "--repo",
        "acme/shop",
        "--commit",
        "abc123",
        "--backoff-ms",
        "10",
    ];
    all.extend_from_slice(args);
    flakeguard(&[], &all)
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

// ---------------------------------------------------------------------------------------------
// The fake server

/// One scripted answer.
#[derive(Debug, Clone)]
enum Reply {
    Json(u16, &'static [(&'static str, &'static str)], String),
    /// Accept the request and never answer.
    Silence,
}

impl Reply {
    fn stored(created: bool) -> Reply {
        Reply::Json(
            if created { 201 } else { 200 },
            &[],
            STORED.replace("true", &created.to_string()),
        )
    }

    fn error(status: u16, code: &str, message: &str) -> Reply {
        let body = serde_json::json!({"error": {"code": code, "message": message}});
        Reply::Json(status, &[], body.to_string())
    }
}

const STORED: &str = r#"{"run_id": 17, "created": true, "repo": "acme/shop", "testcases": 412, "failed": 2, "failures": [{"key": "shop::cart::total", "status": "new"}, {"key": "shop::login::remembers_me", "status": "known_flaky"}], "url": "http://fg.test/acme/shop/runs/17"}"#;

/// A request as the server saw it.
#[derive(Debug, Clone)]
struct Received {
    at: Instant,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
}

impl Received {
    fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_else(|| panic!("no {name} header in {:?}", self.headers))
    }

    fn query(&self) -> Vec<(String, String)> {
        let url = Url::parse(&format!("http://fake{}", self.uri)).unwrap();
        url.query_pairs().into_owned().collect()
    }

    /// The gzipped multipart body's parts, as (headers, content).
    fn parts(&self) -> Vec<(String, Vec<u8>)> {
        assert_eq!(self.header("content-encoding"), "gzip");
        let content_type = self.header("content-type");
        let boundary = content_type
            .strip_prefix("multipart/form-data; boundary=")
            .unwrap_or_else(|| panic!("content-type {content_type}"));
        let mut document = Vec::new();
        flate2::read::GzDecoder::new(&self.body[..])
            .read_to_end(&mut document)
            .expect("the body is gzip");
        split_multipart(&document, boundary)
    }

    /// Each part's file name and content, checking the headers every part must have.
    fn files(&self) -> Vec<(String, Vec<u8>)> {
        self.parts()
            .into_iter()
            .map(|(headers, content)| {
                let lines: Vec<&str> = headers.split("\r\n").collect();
                assert_eq!(lines.len(), 2, "{headers}");
                let filename = lines[0]
                    .strip_prefix("Content-Disposition: form-data; name=\"report\"; filename=\"")
                    .and_then(|rest| rest.strip_suffix('"'))
                    .unwrap_or_else(|| panic!("{headers}"));
                assert_eq!(lines[1], "Content-Type: application/xml");
                (filename.to_owned(), content)
            })
            .collect()
    }

    fn filenames(&self) -> Vec<String> {
        self.files().into_iter().map(|(name, _)| name).collect()
    }
}

/// Splits an RFC 7578 document, strictly: it must be exactly delimiter, part, delimiter, …,
/// close delimiter.
fn split_multipart(document: &[u8], boundary: &str) -> Vec<(String, Vec<u8>)> {
    let first = format!("--{boundary}\r\n");
    let between = format!("\r\n--{boundary}\r\n");
    let close = format!("\r\n--{boundary}--\r\n");
    let mut rest = document
        .strip_prefix(first.as_bytes())
        .expect("starts with the first delimiter");
    rest = rest
        .strip_suffix(close.as_bytes())
        .expect("ends with the close delimiter");
    let mut parts = Vec::new();
    loop {
        let (part, next) = match find(rest, between.as_bytes()) {
            Some(at) => (&rest[..at], Some(&rest[at + between.len()..])),
            None => (rest, None),
        };
        let split = find(part, b"\r\n\r\n").expect("a part has headers");
        let headers = String::from_utf8(part[..split].to_vec()).unwrap();
        parts.push((headers, part[split + 4..].to_vec()));
        match next {
            Some(next) => rest = next,
            None => return parts,
        }
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

#[derive(Debug, Default)]
struct Script {
    replies: Vec<Reply>,
    received: Vec<Received>,
}

/// A server on 127.0.0.1 that answers with `replies` in order, repeating the last one.
struct FakeServer {
    url: String,
    script: Arc<Mutex<Script>>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl FakeServer {
    fn start(replies: Vec<Reply>) -> FakeServer {
        let script = Arc::new(Mutex::new(Script {
            replies,
            received: Vec::new(),
        }));
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let app = Router::new()
            .fallback(answer)
            .layer(DefaultBodyLimit::disable())
            .with_state(script.clone());
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).unwrap();
                tokio::select! {
                    served = axum::serve(listener, app) => served.unwrap(),
                    _ = stopped => {}
                }
            });
        });
        FakeServer {
            url,
            script,
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    fn received(&self) -> Vec<Received> {
        self.script.lock().unwrap().received.clone()
    }

    fn only_request(&self) -> Received {
        let mut received = self.received();
        assert_eq!(received.len(), 1, "{received:#?}");
        received.remove(0)
    }
}

impl Drop for FakeServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

async fn answer(
    State(script): State<Arc<Mutex<Script>>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let reply = {
        let mut script = script.lock().unwrap();
        script.received.push(Received {
            at: Instant::now(),
            method,
            uri,
            headers,
            body,
        });
        if script.replies.len() > 1 {
            script.replies.remove(0)
        } else {
            script.replies[0].clone()
        }
    };
    match reply {
        Reply::Json(status, headers, body) => {
            let mut response = (
                StatusCode::from_u16(status).unwrap(),
                [("content-type", "application/json")],
                body,
            )
                .into_response();
            for (name, value) in headers {
                response.headers_mut().insert(*name, value.parse().unwrap());
            }
            response
        }
        Reply::Silence => {
            tokio::time::sleep(Duration::from_secs(120)).await;
            StatusCode::GATEWAY_TIMEOUT.into_response()
        }
    }
}

/// An address where nothing listens: a port the system handed out, then closed.
fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

fn xml_files_below(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(junit().join(dir))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".xml"))
        .map(|n| format!("{}/{n}", dir.display()))
        .collect();
    names.sort();
    names
}

// ---------------------------------------------------------------------------------------------
// The request

#[test]
fn sends_every_report_in_one_gzipped_multipart_request() {
    let server = FakeServer::start(vec![Reply::stored(true)]);
    let out = flakeguard(
        &[],
        &[
            "--server",
            &server.url,
            "--token",
            "fgt_secret",
            "--repo",
            "acme/shop",
            "--commit",
            "abc123",
            "--branch",
            "main",
            "--run-id",
            "9001",
            "--attempt",
            "2",
            "--job",
            "test",
            "--pr",
            "12",
            NEXTEST,
            JEST,
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));

    let request = server.only_request();
    assert_eq!(request.method, Method::POST);
    assert_eq!(request.uri.path(), "/api/v1/ingest");
    assert_eq!(
        request.uri.query(),
        Some("repo=acme%2Fshop&commit=abc123&branch=main&run_id=9001&attempt=2&job=test&pr=12")
    );
    assert_eq!(request.header("authorization"), "Bearer fgt_secret");
    assert_eq!(request.header("content-encoding"), "gzip");
    assert_eq!(
        request.header("user-agent"),
        concat!("flakeguard/", env!("CARGO_PKG_VERSION"))
    );
    assert_eq!(
        request.header("content-length"),
        request.body.len().to_string()
    );

    let files = request.files();
    assert_eq!(files.len(), 2);
    for ((name, content), expected) in files.iter().zip([NEXTEST, JEST]) {
        assert_eq!(name, expected);
        assert!(
            *content == std::fs::read(junit().join(expected)).unwrap(),
            "{name} arrived changed"
        );
    }
}

#[test]
fn query_values_are_url_encoded() {
    let server = FakeServer::start(vec![Reply::stored(true)]);
    let out = upload(
        &server.url,
        &["--branch", "feature/a b&c=d", "--job", "tést", NEXTEST],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let request = server.only_request();
    assert!(
        request
            .uri
            .query()
            .unwrap()
            .contains("&branch=feature%2Fa+b%26c%3Dd&job=t%C3%A9st"),
        "{}",
        request.uri
    );
    assert_eq!(
        request.query()[2],
        ("branch".to_owned(), "feature/a b&c=d".to_owned())
    );
}

#[test]
fn github_actions_variables_fill_in_missing_flags() {
    let server = FakeServer::start(vec![Reply::stored(true)]);
    let out = flakeguard(
        &[
            ("FLAKEGUARD_SERVER", &server.url),
            ("FLAKEGUARD_TOKEN", "fgt_from_env"),
            ("GITHUB_REPOSITORY", "acme/shop"),
            ("GITHUB_SHA", "0123abcd"),
            ("GITHUB_REF", "refs/heads/main"),
            ("GITHUB_REF_NAME", "main"),
            ("GITHUB_HEAD_REF", ""),
            ("GITHUB_RUN_ID", "555"),
            ("GITHUB_RUN_ATTEMPT", "3"),
            ("GITHUB_JOB", "unit"),
        ],
        &[NEXTEST],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let request = server.only_request();
    assert_eq!(request.header("authorization"), "Bearer fgt_from_env");
    assert_eq!(
        request.uri.query(),
        Some("repo=acme%2Fshop&commit=0123abcd&branch=main&run_id=555&attempt=3&job=unit")
    );
}

#[test]
fn pull_request_runs_send_the_head_branch_and_the_number() {
    let server = FakeServer::start(vec![Reply::stored(true)]);
    let out = flakeguard(
        &[
            ("FLAKEGUARD_SERVER", &server.url),
            ("FLAKEGUARD_TOKEN", "fgt_from_env"),
            ("GITHUB_REPOSITORY", "acme/shop"),
            ("GITHUB_SHA", "0123abcd"),
            ("GITHUB_REF", "refs/pull/42/merge"),
            ("GITHUB_REF_NAME", "42/merge"),
            ("GITHUB_HEAD_REF", "fix/login"),
        ],
        &[NEXTEST],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(
        server.only_request().uri.query(),
        Some("repo=acme%2Fshop&commit=0123abcd&branch=fix%2Flogin&pr=42")
    );
}

#[test]
fn flags_win_over_github_actions_variables() {
    let server = FakeServer::start(vec![Reply::stored(true)]);
    let out = flakeguard(
        &[
            ("FLAKEGUARD_SERVER", "http://127.0.0.1:9/unused"),
            ("FLAKEGUARD_TOKEN", "fgt_from_env"),
            ("GITHUB_REPOSITORY", "other/repo"),
            ("GITHUB_SHA", "0123abcd"),
            ("GITHUB_REF_NAME", "main"),
            ("GITHUB_RUN_ID", "555"),
            ("GITHUB_RUN_ATTEMPT", "3"),
            ("GITHUB_JOB", "unit"),
        ],
        &[
            "--server",
            &server.url,
            "--token",
            "fgt_flag",
            "--repo",
            "acme/shop",
            "--commit",
            "feedface",
            "--branch",
            "release",
            "--run-id",
            "7",
            "--attempt",
            "1",
            "--job",
            "lint",
            NEXTEST,
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let request = server.only_request();
    assert_eq!(request.header("authorization"), "Bearer fgt_flag");
    assert_eq!(
        request.uri.query(),
        Some("repo=acme%2Fshop&commit=feedface&branch=release&run_id=7&attempt=1&job=lint")
    );
}

#[test]
fn the_token_can_come_from_flakeguard_token_alone() {
    let server = FakeServer::start(vec![Reply::stored(true)]);
    let out = flakeguard(
        &[("FLAKEGUARD_TOKEN", "fgt_only_in_env")],
        &[
            "--server",
            &server.url,
            "--repo",
            "acme/shop",
            "--commit",
            "abc",
            NEXTEST,
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(
        server.only_request().header("authorization"),
        "Bearer fgt_only_in_env"
    );
}

// ---------------------------------------------------------------------------------------------
// Which files

#[test]
fn directories_send_every_xml_file_below_them_once() {
    let server = FakeServer::start(vec![Reply::stored(true)]);
    let out = upload(&server.url, &["nextest", NEXTEST]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let expected = xml_files_below(Path::new("nextest"));
    assert_eq!(expected.len(), 4);
    assert_eq!(server.only_request().filenames(), expected);
}

#[test]
fn glob_patterns_are_expanded() {
    let server = FakeServer::start(vec![Reply::stored(true)]);
    let out = upload(
        &server.url,
        &[
            "jest/*-junit.xml",
            "**/nextest__*.xml",
            "pytest/mikepenz-ajr__python__report.xm?",
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let mut expected: Vec<String> = xml_files_below(Path::new("jest"))
        .into_iter()
        .filter(|n| n.ends_with("-junit.xml"))
        .collect();
    expected.extend(
        xml_files_below(Path::new("nextest"))
            .into_iter()
            .filter(|n| n.starts_with("nextest/nextest__")),
    );
    expected.push("pytest/mikepenz-ajr__python__report.xml".to_owned());
    assert_eq!(server.only_request().filenames(), expected);
}

#[test]
fn a_glob_that_matches_nothing_is_an_error_naming_it() {
    let server = FakeServer::start(vec![Reply::stored(true)]);
    let out = upload(&server.url, &[NEXTEST, "reports/**/*.xml"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(stderr(&out), "error: no files match \"reports/**/*.xml\"\n");
    assert!(server.received().is_empty());
}

#[test]
fn a_missing_file_is_an_error_naming_it() {
    let server = FakeServer::start(vec![Reply::stored(true)]);
    let out = upload(&server.url, &["nextest/missing.xml"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).starts_with("error: cannot read nextest/missing.xml: "),
        "{}",
        stderr(&out)
    );
    assert!(server.received().is_empty());
}

#[test]
fn missing_repo_is_a_one_line_error_naming_the_flag_and_the_variable() {
    let out = flakeguard(
        &[("FLAKEGUARD_TOKEN", "fgt_x")],
        &["--server", "http://127.0.0.1:9", "--commit", "abc", NEXTEST],
    );
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        stderr(&out),
        "error: missing --repo (or GITHUB_REPOSITORY)\n"
    );
    assert!(stdout(&out).is_empty());
}

// ---------------------------------------------------------------------------------------------
// Answers

#[test]
fn prints_a_summary_of_what_the_server_stored() {
    let server = FakeServer::start(vec![Reply::stored(true)]);
    let out = upload(&server.url, &[NEXTEST, JEST]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stdout(&out);
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines[0].starts_with("uploaded 2 reports ("), "{text}");
    assert!(
        lines[0].ends_with(
            "gzipped) to acme/shop: run 17, 412 tests, 2 failed — 1 new, 1 known flaky, 0 quarantined"
        ),
        "{text}"
    );
    assert_eq!(
        &lines[1..],
        [
            "  new          shop::cart::total",
            "  known flaky  shop::login::remembers_me",
            "http://fg.test/acme/shop/runs/17",
        ]
    );
    assert!(stderr(&out).is_empty(), "{}", stderr(&out));
}

#[test]
fn a_run_the_server_already_had_is_a_success() {
    let server = FakeServer::start(vec![Reply::stored(false)]);
    let out = upload(&server.url, &[NEXTEST]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("to acme/shop: run 17 (already stored), 412 tests"),
        "{}",
        stdout(&out)
    );
}

#[test]
fn json_format_prints_the_servers_answer() {
    let server = FakeServer::start(vec![Reply::stored(true)]);
    let out = upload(&server.url, &["--format", "json", NEXTEST]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let printed: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    let sent: serde_json::Value = serde_json::from_str(STORED).unwrap();
    assert_eq!(printed, sent);
    assert_eq!(stdout(&out).lines().count(), 1);
}

#[test]
fn a_success_without_the_expected_json_is_an_error() {
    let server = FakeServer::start(vec![Reply::Json(201, &[], "ok".to_owned())]);
    let out = upload(&server.url, &[NEXTEST]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out)
            .starts_with("error: the server answered HTTP 201 but not with the expected JSON"),
        "{}",
        stderr(&out)
    );
}

// ---------------------------------------------------------------------------------------------
// Retries

#[test]
fn retries_after_503_then_succeeds() {
    let server = FakeServer::start(vec![
        Reply::error(503, "unavailable", "database starting"),
        Reply::error(503, "unavailable", "database starting"),
        Reply::stored(true),
    ]);
    let out = upload(&server.url, &["--retries", "3", NEXTEST, JEST]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let received = server.received();
    assert_eq!(received.len(), 3);
    assert!(received.iter().all(|r| r.body == received[0].body));
    let err = stderr(&out);
    assert_eq!(
        err.lines().collect::<Vec<_>>().len(),
        2,
        "one warning per failed attempt: {err}"
    );
    assert!(
        err.starts_with(
            "warning: attempt 1 of 4 failed: HTTP 503 unavailable: database starting; retrying in "
        ),
        "{err}"
    );
    assert!(err.contains("warning: attempt 2 of 4 failed"), "{err}");
    assert!(stdout(&out).starts_with("uploaded 2 reports"));
}

#[test]
fn a_429_waits_as_long_as_retry_after_says() {
    let server = FakeServer::start(vec![
        Reply::Json(
            429,
            &[("retry-after", "1")],
            r#"{"error":{"code":"rate_limited","message":"slow down"}}"#.to_owned(),
        ),
        Reply::stored(true),
    ]);
    let out = upload(&server.url, &[NEXTEST]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let received = server.received();
    assert_eq!(received.len(), 2);
    let waited = received[1].at - received[0].at;
    assert!(
        waited >= Duration::from_millis(950),
        "retried after {waited:?}"
    );
    assert!(
        stderr(&out).contains("HTTP 429 rate_limited: slow down; retrying in 1.0s"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn a_401_is_not_retried() {
    let server = FakeServer::start(vec![Reply::error(
        401,
        "unauthorized",
        "unknown or revoked token",
    )]);
    let out = upload(&server.url, &[NEXTEST]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(server.received().len(), 1);
    assert_eq!(
        stderr(&out),
        "error: upload refused (HTTP 401 unauthorized): unknown or revoked token\n"
    );
}

#[test]
fn a_422_is_not_retried_and_its_message_is_printed() {
    let server = FakeServer::start(vec![Reply::error(
        422,
        "invalid_report",
        "nextest/x.xml: testsuites/testsuite[1]/testcase[3]: missing name",
    )]);
    let out = upload(&server.url, &["--retries", "4", NEXTEST]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(server.received().len(), 1);
    assert_eq!(
        stderr(&out),
        "error: upload refused (HTTP 422 invalid_report): nextest/x.xml: testsuites/testsuite[1]/testcase[3]: missing name\n"
    );
}

#[test]
fn a_redirect_is_reported_not_followed() {
    let server = FakeServer::start(vec![Reply::Json(
        308,
        &[("location", "https://fg.example.com/api/v1/ingest")],
        String::new(),
    )]);
    let out = upload(&server.url, &[NEXTEST]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(server.received().len(), 1);
    assert!(
        stderr(&out).contains("redirects to https://fg.example.com/api/v1/ingest"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn exhausted_retries_say_how_many_attempts_and_the_last_error() {
    let server = FakeServer::start(vec![Reply::error(500, "internal", "boom")]);
    let out = upload(&server.url, &["--retries", "2", NEXTEST]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(server.received().len(), 3);
    let err = stderr(&out);
    assert_eq!(
        err.lines().last(),
        Some("error: upload failed after 3 attempts; last error: HTTP 500 internal: boom"),
        "{err}"
    );
}

#[test]
fn connection_refused_is_retried_then_reported_cleanly() {
    let port = closed_port();
    let url = format!("http://127.0.0.1:{port}");
    let started = Instant::now();
    let out = upload(&url, &["--retries", "2", NEXTEST]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert_eq!(err.matches("warning: attempt").count(), 2, "{err}");
    let last = err.lines().last().unwrap();
    assert!(
        last.starts_with(&format!(
            "error: upload failed after 3 attempts; last error: cannot connect to 127.0.0.1:{port}: "
        )),
        "{err}"
    );
    assert!(last.to_lowercase().contains("refused"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    assert!(started.elapsed() < Duration::from_secs(10));
}

#[test]
fn a_silent_server_times_out_and_is_retried() {
    let server = FakeServer::start(vec![Reply::Silence]);
    let out = upload(&server.url, &["--timeout", "1", "--retries", "1", NEXTEST]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(server.received().len(), 2);
    let err = stderr(&out);
    let port = server.url.rsplit(':').next().unwrap();
    assert_eq!(
        err.lines().last(),
        Some(
            format!(
                "error: upload failed after 2 attempts; last error: no answer from 127.0.0.1:{port} within 1s"
            )
            .as_str()
        ),
        "{err}"
    );
}

#[test]
fn https_to_a_plain_http_server_fails_cleanly() {
    let server = FakeServer::start(vec![Reply::stored(true)]);
    let url = server.url.replace("http://", "https://");
    let out = upload(&url, &["--retries", "0", NEXTEST]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.starts_with(
            "error: upload failed after 1 attempt; last error: cannot connect to 127.0.0.1:"
        ),
        "{err}"
    );
    assert!(!err.contains("panicked"), "{err}");
}
