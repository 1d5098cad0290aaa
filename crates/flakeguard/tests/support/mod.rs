//! Running the real binary in tests: a scratch directory, a clean environment, and
//! `flakeguard serve` as a process on ephemeral ports (SQLite in the directory's `./data`).
#![allow(dead_code, unreachable_pub)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

pub const API_KEY: &str = "operator-key-0123456789";

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

/// A running server and the addresses it printed.
pub struct Server {
    child: Option<Child>,
    pub api: String,
    pub worker: String,
    pub web: String,
    lines: mpsc::Receiver<String>,
}

impl Server {
    pub fn start(dir: &Path, env: &[(&str, &str)]) -> Server {
        let mut env = env.to_vec();
        env.extend([
            ("PORT", "0"),
            ("WORKER_PORT", "0"),
            ("WEB_PORT", "0"),
            ("HOST", "127.0.0.1"),
        ]);
        let mut child = command(dir, &env, &["serve"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let (tx, rx) = mpsc::channel();
        let stdout = child.stdout.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let (mut api, mut worker, mut web) = (None, None, None);
        while api.is_none() || worker.is_none() || web.is_none() {
            let line = rx
                .recv_timeout(Duration::from_secs(60))
                .expect("the server prints where it listens");
            let addr = || {
                line.split("http://").nth(1).map(|a| {
                    a.chars()
                        .take_while(|c| !c.is_whitespace() && *c != '"')
                        .collect::<String>()
                })
            };
            if line.contains("api listening on") {
                api = addr();
            } else if line.contains("worker listening on") {
                worker = addr();
            } else if line.contains("web listening on") {
                web = addr();
            }
        }
        Server {
            child: Some(child),
            api: api.unwrap(),
            worker: worker.unwrap(),
            web: web.unwrap(),
            lines: rx,
        }
    }

    pub fn terminate(&self) {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.as_ref().unwrap().id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }

    pub fn wait(mut self) -> (Option<i32>, Vec<String>) {
        let (tx, rx) = mpsc::channel();
        let mut child = self.child.take().unwrap();
        std::thread::spawn(move || {
            let _ = tx.send(child.wait());
        });
        let status = rx
            .recv_timeout(Duration::from_secs(60))
            .expect("the server exits after SIGTERM")
            .unwrap();
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
