//! A fake GitHub for tests (cargo feature `fake`): a real HTTP server on loopback that speaks
//! the REST endpoints FlakeGuard uses and checks requests the way GitHub does — the app JWT on
//! `/app/...`, an unexpired installation token everywhere else, check run limits — answering
//! with GitHub's status codes, error bodies, `Link` pagination and `x-ratelimit-*` headers.
//!
//! Artifact downloads answer 302 to a blob URL on another host name (`localhost` when the API
//! is `127.0.0.1`), which refuses requests that carry an `Authorization` header, like the blob
//! storage behind GitHub.
//!
//! Tests arrange state (`add_installation`, `add_artifact`, `put_file`, ...), inject faults
//! (`fail_next`, `rate_limit_next`) and inspect what arrived (`requests`, `check_runs`, ...).

mod checks;
mod issues;
mod keys;
mod routes;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use time::OffsetDateTime;

use crate::AppConfig;

/// A request as the fake received it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedRequest {
    pub method: String,
    pub path: String,
    pub query: Option<String>,
    pub authorization: Option<String>,
    /// The `Host` header: tells API requests (`127.0.0.1:PORT`) from blob downloads
    /// (`localhost:PORT`).
    pub host: Option<String>,
    pub accept: Option<String>,
    /// `X-GitHub-Api-Version`.
    pub api_version: Option<String>,
    pub user_agent: Option<String>,
}

/// A check run and every body that created or updated it, in order.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordedCheckRun {
    pub id: i64,
    pub owner: String,
    pub repo: String,
    pub head_sha: String,
    /// The current state, as GitHub would answer it.
    pub current: serde_json::Value,
    /// The create body, then every update body.
    pub bodies: Vec<serde_json::Value>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedIssue {
    pub owner: String,
    pub repo: String,
    pub number: i64,
    pub title: String,
    pub body: String,
    pub labels: Vec<String>,
    pub state: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedComment {
    pub id: i64,
    pub owner: String,
    pub repo: String,
    pub issue_number: i64,
    pub body: String,
    pub user_login: String,
    /// How many times the body was edited after creation.
    pub edits: u32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedRerun {
    pub owner: String,
    pub repo: String,
    pub run_id: i64,
}

/// The login comments created through the API are attributed to.
pub const BOT_LOGIN: &str = "flakeguard[bot]";

#[derive(Debug)]
struct StoredArtifact {
    id: i64,
    owner: String,
    repo: String,
    run_id: i64,
    name: String,
    bytes: Vec<u8>,
    blob_key: String,
}

#[derive(Debug)]
struct IssuedToken {
    expires_at: OffsetDateTime,
}

#[derive(Debug)]
struct State {
    app_id: u64,
    public_key: Vec<u8>,
    base_url: String,
    blob_url: String,
    installations: HashMap<i64, String>,
    tokens: HashMap<String, IssuedToken>,
    token_ttl: Duration,
    next_id: i64,
    artifacts: Vec<StoredArtifact>,
    files: HashMap<(String, String, String, String), String>,
    pulls: HashMap<(String, String, String), Vec<i64>>,
    check_runs: Vec<RecordedCheckRun>,
    issues: Vec<RecordedIssue>,
    comments: Vec<RecordedComment>,
    reruns: Vec<RecordedRerun>,
    requests: Vec<RecordedRequest>,
    fail_next: (u32, u16),
    rate_limit_next: (u32, bool),
    rate_limit_wait: Duration,
    page_size: Option<usize>,
    blob_chunked: bool,
    remaining: u64,
}

impl State {
    fn next_id(&mut self) -> i64 {
        self.next_id += 1;
        self.next_id
    }
}

type Shared = Arc<Mutex<State>>;

fn lock(state: &Shared) -> MutexGuard<'_, State> {
    state
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The running fake; the server stops when this is dropped.
pub struct FakeGitHub {
    state: Shared,
    base_url: String,
    app_id: u64,
    pkcs8_pem: String,
    pkcs1_pem: String,
    server: tokio::task::JoinHandle<()>,
}

impl std::fmt::Debug for FakeGitHub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FakeGitHub")
            .field("base_url", &self.base_url)
            .field("app_id", &self.app_id)
            .finish_non_exhaustive()
    }
}

impl Drop for FakeGitHub {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl FakeGitHub {
    /// Generates the App's key and starts serving on `127.0.0.1:0`.
    pub async fn start() -> FakeGitHub {
        let key = keys::generate();
        let app_id = 4242;
        // Binding loopback port 0 only fails when the machine is out of ports.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the fake GitHub on 127.0.0.1:0");
        let port = listener.local_addr().expect("local address").port();
        let base_url = format!("http://127.0.0.1:{port}");
        let state = Arc::new(Mutex::new(State {
            app_id,
            public_key: key.public_key,
            base_url: base_url.clone(),
            blob_url: format!("http://localhost:{port}"),
            installations: HashMap::new(),
            tokens: HashMap::new(),
            token_ttl: Duration::from_secs(3600),
            next_id: 1000,
            artifacts: Vec::new(),
            files: HashMap::new(),
            pulls: HashMap::new(),
            check_runs: Vec::new(),
            issues: Vec::new(),
            comments: Vec::new(),
            reruns: Vec::new(),
            requests: Vec::new(),
            fail_next: (0, 500),
            rate_limit_next: (0, false),
            rate_limit_wait: Duration::from_secs(1),
            page_size: None,
            blob_chunked: false,
            remaining: 5000,
        }));
        let router = routes::router(state.clone());
        let server = tokio::spawn(async move {
            if let Err(err) = axum::serve(listener, router).await {
                tracing::error!(error = %err, "fake GitHub server stopped");
            }
        });
        FakeGitHub {
            state,
            base_url,
            app_id,
            pkcs8_pem: key.pkcs8_pem,
            pkcs1_pem: key.pkcs1_pem,
            server,
        }
    }

    /// `http://127.0.0.1:PORT`, the API base.
    pub fn base_url(&self) -> String {
        self.base_url.clone()
    }

    /// The App's id and generated key (PKCS#8 PEM) pointed at this fake.
    pub fn app_config(&self) -> AppConfig {
        AppConfig {
            api_url: self.base_url.clone(),
            app_id: self.app_id,
            private_key_pem: self.pkcs8_pem.clone(),
            user_agent: "flakeguard-tests".to_owned(),
        }
    }

    /// The same key in PKCS#1 PEM (`BEGIN RSA PRIVATE KEY`), the form GitHub hands out.
    pub fn pkcs1_private_key_pem(&self) -> String {
        self.pkcs1_pem.clone()
    }

    pub fn add_installation(&self, id: i64, account_login: &str) {
        lock(&self.state)
            .installations
            .insert(id, account_login.to_owned());
    }

    /// How long installation tokens issued from now on live (GitHub: one hour).
    pub fn set_token_ttl(&self, ttl: Duration) {
        lock(&self.state).token_ttl = ttl;
    }

    /// Revokes every issued installation token: their next use answers 401.
    pub fn revoke_tokens(&self) {
        lock(&self.state).tokens.clear();
    }

    /// Stores an artifact of a workflow run; returns its id.
    pub fn add_artifact(
        &self,
        owner: &str,
        repo: &str,
        run_id: i64,
        name: &str,
        zip_bytes: Vec<u8>,
    ) -> i64 {
        let mut state = lock(&self.state);
        let id = state.next_id();
        state.artifacts.push(StoredArtifact {
            id,
            owner: owner.to_owned(),
            repo: repo.to_owned(),
            run_id,
            name: name.to_owned(),
            bytes: zip_bytes,
            blob_key: routes::random_token(24),
        });
        id
    }

    /// Serves `content` for `path` at `git_ref` through the contents API.
    pub fn put_file(&self, owner: &str, repo: &str, path: &str, git_ref: &str, content: &str) {
        lock(&self.state).files.insert(
            (
                owner.to_owned(),
                repo.to_owned(),
                path.to_owned(),
                git_ref.to_owned(),
            ),
            content.to_owned(),
        );
    }

    /// The pull requests `GET /repos/{owner}/{repo}/commits/{sha}/pulls` answers.
    pub fn set_pulls_for_commit(&self, owner: &str, repo: &str, sha: &str, numbers: &[i64]) {
        lock(&self.state).pulls.insert(
            (owner.to_owned(), repo.to_owned(), sha.to_owned()),
            numbers.to_vec(),
        );
    }

    /// Adds a comment written by someone else (a human, another bot); returns its id.
    pub fn add_comment(
        &self,
        owner: &str,
        repo: &str,
        issue_number: i64,
        user_login: &str,
        body: &str,
    ) -> i64 {
        let mut state = lock(&self.state);
        let id = state.next_id();
        state.comments.push(RecordedComment {
            id,
            owner: owner.to_owned(),
            repo: repo.to_owned(),
            issue_number,
            body: body.to_owned(),
            user_login: user_login.to_owned(),
            edits: 0,
        });
        id
    }

    pub fn check_runs(&self) -> Vec<RecordedCheckRun> {
        lock(&self.state).check_runs.clone()
    }

    pub fn issues(&self) -> Vec<RecordedIssue> {
        lock(&self.state).issues.clone()
    }

    pub fn comments(&self) -> Vec<RecordedComment> {
        lock(&self.state).comments.clone()
    }

    pub fn reruns(&self) -> Vec<RecordedRerun> {
        lock(&self.state).reruns.clone()
    }

    /// Every request received, in order, blob downloads included.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        lock(&self.state).requests.clone()
    }

    /// How many installation tokens were issued.
    pub fn token_requests(&self) -> usize {
        self.requests()
            .iter()
            .filter(|r| r.method == "POST" && r.path.ends_with("/access_tokens"))
            .count()
    }

    /// The next `n` API requests answer `status` (a 5xx, typically) with GitHub's error body.
    pub fn fail_next(&self, n: u32, status: u16) {
        lock(&self.state).fail_next = (n, status);
    }

    /// The next `n` API requests hit a rate limit: primary (403, `x-ratelimit-remaining: 0`,
    /// reset after the rate-limit wait) or secondary (403 with `retry-after`).
    pub fn rate_limit_next(&self, n: u32, secondary: bool) {
        lock(&self.state).rate_limit_next = (n, secondary);
    }

    /// How long rate limits ask clients to wait (whole seconds; default 1 s).
    pub fn set_rate_limit_wait(&self, wait: Duration) {
        lock(&self.state).rate_limit_wait = wait;
    }

    /// Caps every page at `size` items whatever `per_page` asks, so pagination shows with
    /// few items. `None` restores GitHub's cap of 100.
    pub fn set_page_size(&self, size: Option<usize>) {
        lock(&self.state).page_size = size;
    }

    /// Serves blobs in 1 KiB chunks without `Content-Length`, so a client cannot rely on the
    /// announced size to enforce its cap.
    pub fn set_blob_chunked(&self, chunked: bool) {
        lock(&self.state).blob_chunked = chunked;
    }
}

/// A deflated zip of `(name, contents)`, as GitHub Actions packs an artifact: for tests that
/// hand the fake an artifact.
pub fn zip_archive(entries: &[(&str, &[u8])]) -> Vec<u8> {
    use std::io::Write;
    let mut writer = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated);
    for (name, contents) in entries {
        // In memory: writing cannot fail short of running out of memory.
        let _ = writer.start_file(*name, options);
        let _ = writer.write_all(contents);
    }
    writer
        .finish()
        .map(|cursor| cursor.into_inner())
        .unwrap_or_default()
}
