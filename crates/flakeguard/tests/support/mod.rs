//! Helpers for tests that run `flakeguard` as a process: a clean environment, a running role
//! with the addresses it printed (killed when dropped), bare HTTP/1.1 with time limits, and
//! commands with a time limit. `servers` starts Redis and PostgreSQL servers of a test's own.
//!
//! Each test file uses part of this module.
#![allow(dead_code, unreachable_pub)]

pub mod servers;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

/// The operator key every test server gets.
pub const API_KEY: &str = "operator-key-0123456789";

/// How long a process may take to print where it listens.
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// A fresh directory of the test's own below the target directory.
pub fn scratch(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The binary with a clean environment (no DATABASE_URL, no runbook variables from the
/// machine), run in `dir`.
pub fn command(dir: &Path, env: &[(&str, &str)], args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_flakeguard"));
    cmd.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .current_dir(dir)
        .envs(env.iter().copied())
        .args(args);
    cmd
}

pub fn run(dir: &Path, env: &[(&str, &str)], args: &[&str]) -> Output {
    command(dir, env, args).output().expect("flakeguard runs")
}

/// Runs `cmd` to its end, killing it and failing the test when it takes longer than `limit`.
pub fn run_bounded(cmd: &mut Command, limit: Duration) -> Output {
    let what = format!("{cmd:?}");
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {what}: {e}"));
    let drain = |mut pipe: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut bytes = Vec::new();
            let _ = pipe.read_to_end(&mut bytes);
            bytes
        })
    };
    let stdout = drain(Box::new(child.stdout.take().unwrap()));
    let stderr = drain(Box::new(child.stderr.take().unwrap()));
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{what} did not finish within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    Output {
        status,
        stdout: stdout.join().unwrap_or_default(),
        stderr: stderr.join().unwrap_or_default(),
    }
}

/// A running `flakeguard serve|api|worker|web` and the addresses it printed. Its output is
/// kept in a log file beside it (named in failure messages); dropping it kills it.
#[derive(Debug)]
pub struct Server {
    child: Option<Child>,
    api: Option<String>,
    worker: Option<String>,
    web: Option<String>,
    lines: mpsc::Receiver<String>,
    stderr: Arc<Mutex<String>>,
    log: PathBuf,
}

impl Server {
    /// `flakeguard serve` with every role on a port of its own, on 127.0.0.1.
    pub fn start(dir: &Path, env: &[(&str, &str)]) -> Server {
        Server::spawn(dir, env, &["serve"])
    }

    /// `flakeguard <args>` (`serve`, `api`, `worker` or `web`, then flags); every port is
    /// chosen by the system. Returns once each of the roles has printed where it listens.
    pub fn spawn(dir: &Path, env: &[(&str, &str)], args: &[&str]) -> Server {
        let mut env = env.to_vec();
        env.extend([
            ("PORT", "0"),
            ("WORKER_PORT", "0"),
            ("WEB_PORT", "0"),
            ("HOST", "127.0.0.1"),
        ]);
        let roles: &[&str] = match args.first().copied() {
            Some("serve") => &["api", "worker", "web"],
            Some("api") => &["api"],
            Some("worker") => &["worker"],
            Some("web") => &["web"],
            other => panic!("not a serving command: {other:?}"),
        };
        let mut child = command(dir, &env, args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let log = dir.join(format!("{}-{}.log", args[0], child.id()));
        let mut file = std::fs::File::create(&log).unwrap();
        let (tx, rx) = mpsc::channel();
        let stdout = child.stdout.take().unwrap();
        std::thread::spawn(move || {
            let mut receiver_gone = false;
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = writeln!(file, "{line}");
                // Keep reading after the receiver went, so the process never blocks on a
                // full pipe.
                if !receiver_gone && tx.send(line).is_err() {
                    receiver_gone = true;
                }
            }
        });
        let stderr = Arc::new(Mutex::new(String::new()));
        let sink = Arc::clone(&stderr);
        let pipe = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                let mut all = sink.lock().unwrap();
                all.push_str(&line);
                all.push('\n');
            }
        });
        let mut server = Server {
            child: Some(child),
            api: None,
            worker: None,
            web: None,
            lines: rx,
            stderr,
            log,
        };
        let deadline = Instant::now() + START_TIMEOUT;
        let mut seen = Vec::new();
        while roles.iter().any(|role| server.address(role).is_none()) {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = match server.lines.recv_timeout(left) {
                Ok(line) => line,
                Err(e) => panic!(
                    "flakeguard {args:?} did not print where it listens ({e}); its output:\n{}\n{}",
                    seen.join("\n"),
                    server.stderr.lock().unwrap()
                ),
            };
            let addr = line.split("http://").nth(1).map(|a| {
                a.chars()
                    .take_while(|c| !c.is_whitespace() && *c != '"')
                    .collect::<String>()
            });
            for role in ["api", "worker", "web"] {
                if line.contains(&format!("{role} listening on")) {
                    *server.slot(role) = addr.clone();
                }
            }
            seen.push(line);
        }
        server
    }

    fn slot(&mut self, role: &str) -> &mut Option<String> {
        match role {
            "api" => &mut self.api,
            "worker" => &mut self.worker,
            _ => &mut self.web,
        }
    }

    fn address(&self, role: &str) -> Option<&str> {
        match role {
            "api" => self.api.as_deref(),
            "worker" => self.worker.as_deref(),
            _ => self.web.as_deref(),
        }
    }

    /// Where the API listens (`127.0.0.1:port`).
    pub fn api(&self) -> &str {
        self.address("api").expect("this process runs the api role")
    }

    pub fn worker(&self) -> &str {
        self.address("worker")
            .expect("this process runs the worker role")
    }

    pub fn web(&self) -> &str {
        self.address("web").expect("this process runs the web role")
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    /// The file the process's output goes to.
    pub fn log(&self) -> &Path {
        &self.log
    }

    /// Sends SIGTERM.
    pub fn terminate(&self) {
        let status = Command::new("kill")
            .args(["-TERM", &self.pid().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// SIGKILL (what `kill -9` sends), then reaps the process.
    pub fn kill(mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().unwrap();
            child.wait().unwrap();
        }
    }

    /// Waits (at most a minute) for the process to exit: its exit code and the lines it
    /// printed that were not read yet.
    pub fn wait(mut self) -> (Option<i32>, Vec<String>) {
        let (tx, rx) = mpsc::channel();
        let mut child = self.child.take().unwrap();
        let pid = child.id();
        std::thread::spawn(move || {
            let _ = tx.send(child.wait());
        });
        let status = match rx.recv_timeout(Duration::from_secs(60)) {
            Ok(status) => status.unwrap(),
            Err(_) => {
                // Do not leave it running.
                let _ = Command::new("kill")
                    .args(["-KILL", &pid.to_string()])
                    .status();
                panic!("the server did not exit within 60 s of SIGTERM");
            }
        };
        let lines = self.lines.try_iter().collect();
        (status.code(), lines)
    }
}

impl Drop for Server {
    /// A failed test must not leave a server running.
    fn drop(&mut self) {
        if let Some(child) = &mut self.child {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A bare HTTP/1.1 exchange (so a request can be left half-sent).
pub fn http(addr: &str, request: &str) -> (u16, String) {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    stream.write_all(request.as_bytes()).unwrap();
    read_response(&mut stream)
}

pub fn read_response(stream: &mut TcpStream) -> (u16, String) {
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    split_response(&response)
}

fn split_response(response: &str) -> (u16, String) {
    let status = response
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (status, body)
}

pub fn get(addr: &str, path: &str) -> (u16, String) {
    http(
        addr,
        &format!("GET {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"),
    )
}

/// An answer, and how long it took from connecting to the end of the body.
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: u16,
    pub body: String,
    pub elapsed: Duration,
}

impl Answer {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }
}

/// One request with `Connection: close`, given at most `limit` to connect, send and be
/// answered. Errors (refused, reset, no answer in time) are returned, not panicked on: fault
/// tests expect some.
pub fn request(
    addr: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
    limit: Duration,
) -> Result<Answer, String> {
    let started = Instant::now();
    let socket = addr
        .to_socket_addrs()
        .map_err(|e| format!("{addr}: {e}"))?
        .next()
        .ok_or_else(|| format!("{addr}: no address"))?;
    let mut stream =
        TcpStream::connect_timeout(&socket, limit).map_err(|e| format!("connect: {e}"))?;
    let exchange = |stream: &mut TcpStream| -> std::io::Result<String> {
        stream.set_write_timeout(Some(limit))?;
        let mut head = format!("{method} {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n");
        for (name, value) in headers {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        head.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
        stream.write_all(head.as_bytes())?;
        stream.write_all(body)?;
        let mut response = Vec::new();
        let mut buffer = [0u8; 16 * 1024];
        loop {
            let left = limit.saturating_sub(started.elapsed());
            if left.is_zero() {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    format!("no complete answer within {limit:?}"),
                ));
            }
            stream.set_read_timeout(Some(left))?;
            match stream.read(&mut buffer)? {
                0 => break,
                n => response.extend_from_slice(&buffer[..n]),
            }
        }
        Ok(String::from_utf8_lossy(&response).into_owned())
    };
    let response = exchange(&mut stream).map_err(|e| format!("{method} {path}: {e}"))?;
    let (status, body) = split_response(&response);
    if status == 0 {
        return Err(format!("{method} {path}: not an HTTP answer: {response:?}"));
    }
    Ok(Answer {
        status,
        body,
        elapsed: started.elapsed(),
    })
}

/// `POST /api/v1/ingest` of one JUnit XML body with the operator key.
pub fn ingest(addr: &str, query: &str, xml: &str, limit: Duration) -> Result<Answer, String> {
    let auth = format!("Bearer {API_KEY}");
    request(
        addr,
        "POST",
        &format!("/api/v1/ingest?{query}"),
        &[
            ("Authorization", &auth),
            ("Content-Type", "application/xml"),
        ],
        xml.as_bytes(),
        limit,
    )
}

/// A GET with the operator key.
pub fn get_with_key(addr: &str, path: &str, limit: Duration) -> Result<Answer, String> {
    let auth = format!("Bearer {API_KEY}");
    request(addr, "GET", path, &[("Authorization", &auth)], &[], limit)
}

/// Polls `check` every `every` until it returns `Some`, failing the test with `what` once
/// `limit` has passed.
pub fn wait_for<T>(
    what: &str,
    limit: Duration,
    every: Duration,
    mut check: impl FnMut() -> Option<T>,
) -> T {
    let started = Instant::now();
    loop {
        if let Some(value) = check() {
            return value;
        }
        if started.elapsed() > limit {
            panic!("timed out after {limit:?} waiting for {what}");
        }
        std::thread::sleep(every);
    }
}
