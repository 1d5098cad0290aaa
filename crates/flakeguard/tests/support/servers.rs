//! Servers a test starts for itself, on free ports, stopped and removed when dropped (also
//! when the test fails): a `redis-server` ([`RedisServer`]), a PostgreSQL cluster
//! ([`PgCluster`], run as the `postgres` user: PostgreSQL refuses to run as root), and a
//! database of the test's own on an existing PostgreSQL server ([`PgDatabase`]). Every wait
//! is bounded.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use super::run_bounded;

/// How long a server may take to start answering.
const START_TIMEOUT: Duration = Duration::from_secs(30);

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// A name unique to this process and call.
fn unique(prefix: &str) -> String {
    format!(
        "{prefix}_{}_{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::SeqCst)
    )
}

/// A TCP port nobody listens on right now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// A `redis-server` of the test's own: no persistence, so a restart starts empty.
#[derive(Debug)]
pub struct RedisServer {
    port: u16,
    dir: PathBuf,
    child: Option<Child>,
}

impl RedisServer {
    pub fn start() -> RedisServer {
        let dir = std::env::temp_dir().join(unique("flakeguard-redis"));
        std::fs::create_dir_all(&dir).unwrap();
        // Another process may take the port between choosing and binding it: try again.
        for _ in 0..5 {
            let mut server = RedisServer {
                port: free_port(),
                dir: dir.clone(),
                child: None,
            };
            if server.launch().is_ok() {
                return server;
            }
        }
        panic!("redis-server did not start on any of 5 free ports");
    }

    fn launch(&mut self) -> Result<(), String> {
        let port = self.port.to_string();
        let mut child = Command::new("redis-server")
            .args([
                "--port",
                &port,
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                self.dir.to_str().unwrap(),
                "--logfile",
                self.dir.join("redis.log").to_str().unwrap(),
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server is on PATH");
        let started = Instant::now();
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                return Err(format!("redis-server exited: {status}"));
            }
            if self.ping() {
                self.child = Some(child);
                return Ok(());
            }
            if started.elapsed() > START_TIMEOUT {
                let _ = child.kill();
                let _ = child.wait();
                panic!("redis-server on port {port} did not answer within {START_TIMEOUT:?}");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Whether the server answers PING now.
    pub fn ping(&self) -> bool {
        let Ok(mut stream) = TcpStream::connect(("127.0.0.1", self.port)) else {
            return false;
        };
        let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
        let mut answer = [0u8; 7];
        stream.write_all(b"PING\r\n").is_ok()
            && stream.read_exact(&mut answer).is_ok()
            && &answer == b"+PONG\r\n"
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Kills the server (SIGKILL: nothing is saved, nothing said to the clients).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            child.wait().unwrap();
        }
    }

    /// Starts it again, empty, on the same port.
    pub fn start_again(&mut self) {
        assert!(self.child.is_none(), "redis-server is still running");
        let started = Instant::now();
        // The port can stay busy for a moment after the kill.
        while let Err(e) = self.launch() {
            if started.elapsed() > START_TIMEOUT {
                panic!(
                    "redis-server did not start again on port {}: {e}",
                    self.port
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Runs `redis-cli` against this server and returns its output.
    pub fn cli(&self, args: &[&str]) -> String {
        let out = run_bounded(
            Command::new("redis-cli")
                .args(["-h", "127.0.0.1", "-p", &self.port.to_string()])
                .args(args),
            Duration::from_secs(10),
        );
        assert!(
            out.status.success(),
            "redis-cli {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

const PG_BIN: &str = "/usr/lib/postgresql/15/bin";

/// A PostgreSQL 15 cluster of the test's own, run by the `postgres` user, listening on
/// 127.0.0.1 on a free port with trust authentication, its socket in its own directory.
#[derive(Debug)]
pub struct PgCluster {
    dir: PathBuf,
    port: u16,
    running: bool,
}

impl PgCluster {
    pub fn start() -> PgCluster {
        // Below /tmp: the postgres user must be able to reach it.
        let dir = std::env::temp_dir().join(unique("flakeguard-pg"));
        std::fs::create_dir_all(&dir).unwrap();
        let mut cluster = PgCluster {
            dir,
            port: 0,
            running: false,
        };
        let chown = run_bounded(
            Command::new("chown").args(["-R", "postgres:postgres", cluster.dir_str()]),
            Duration::from_secs(10),
        );
        assert!(chown.status.success(), "chown: {chown:?}");
        let init = run_bounded(
            &mut cluster.as_postgres(
                "initdb",
                &[
                    "-D",
                    cluster.data().to_str().unwrap(),
                    "-U",
                    "postgres",
                    "-A",
                    "trust",
                    "-E",
                    "UTF8",
                    "--locale=C",
                    "--no-sync",
                ],
            ),
            Duration::from_secs(120),
        );
        assert!(
            init.status.success(),
            "initdb failed: {}{}",
            String::from_utf8_lossy(&init.stdout),
            String::from_utf8_lossy(&init.stderr)
        );
        // Another process may take the port between choosing and binding it: try again.
        for _ in 0..5 {
            cluster.port = free_port();
            if cluster.pg_ctl_start().is_ok() {
                return cluster;
            }
        }
        panic!(
            "PostgreSQL did not start on any of 5 free ports; see {}",
            cluster.dir.join("postgres.log").display()
        );
    }

    fn dir_str(&self) -> &str {
        self.dir.to_str().unwrap()
    }

    fn data(&self) -> PathBuf {
        self.dir.join("data")
    }

    fn as_postgres(&self, program: &str, args: &[&str]) -> Command {
        let mut cmd = Command::new("runuser");
        cmd.args(["-u", "postgres", "--"])
            .arg(Path::new(PG_BIN).join(program))
            .args(args)
            .current_dir(&self.dir);
        cmd
    }

    fn pg_ctl(&self, args: &[&str]) -> std::process::Output {
        let data = self.data();
        let mut all = vec!["-D", data.to_str().unwrap()];
        all.extend_from_slice(args);
        // pg_ctl waits at most -t seconds itself; the outer bound is a safety net.
        run_bounded(
            &mut self.as_postgres("pg_ctl", &all),
            Duration::from_secs(90),
        )
    }

    fn pg_ctl_start(&mut self) -> Result<(), String> {
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off \
             -c full_page_writes=off",
            self.port,
            self.dir_str()
        );
        let log = self.dir.join("postgres.log");
        let out = self.pg_ctl(&[
            "-o",
            &options,
            "-l",
            log.to_str().unwrap(),
            "-w",
            "-t",
            "60",
            "start",
        ]);
        if out.status.success() {
            self.running = true;
            Ok(())
        } else {
            Err(format!(
                "pg_ctl start: {}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ))
        }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The URL of the `postgres` database as user `postgres`.
    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// `pg_ctl stop -m fast`: clients are disconnected, the server shuts down cleanly.
    pub fn stop(&mut self) {
        let out = self.pg_ctl(&["-m", "fast", "-w", "-t", "60", "stop"]);
        assert!(
            out.status.success(),
            "pg_ctl stop: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        self.running = false;
    }

    /// Starts it again on the same port.
    pub fn start_again(&mut self) {
        assert!(!self.running, "PostgreSQL is still running");
        let started = Instant::now();
        while let Err(e) = self.pg_ctl_start() {
            if started.elapsed() > START_TIMEOUT {
                panic!("PostgreSQL did not start again on port {}: {e}", self.port);
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

impl Drop for PgCluster {
    fn drop(&mut self) {
        if self.running {
            let _ = self.pg_ctl(&["-m", "immediate", "-w", "-t", "30", "stop"]);
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A fresh database on an existing PostgreSQL server (`TEST_DATABASE_URL`, default the
/// machine's shared server), dropped when the guard goes.
#[derive(Debug)]
pub struct PgDatabase {
    admin_url: String,
    name: String,
}

impl PgDatabase {
    /// A database named `<prefix>_<pid>_<n>`.
    pub fn create(prefix: &str) -> Self {
        let admin_url = std::env::var("TEST_DATABASE_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned());
        let name = unique(prefix);
        let out = run_bounded(
            Command::new("psql").args([&admin_url, "-qc", &format!("CREATE DATABASE {name}")]),
            Duration::from_secs(60),
        );
        assert!(
            out.status.success(),
            "cannot create a test database on {admin_url}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        PgDatabase { admin_url, name }
    }

    pub fn url(&self) -> String {
        let base = self
            .admin_url
            .rsplit_once('/')
            .map(|(b, _)| b)
            .unwrap_or(&self.admin_url);
        format!("{base}/{}", self.name)
    }
}

impl Drop for PgDatabase {
    fn drop(&mut self) {
        let _ = run_bounded(
            Command::new("psql").args([
                &self.admin_url,
                "-qc",
                &format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name),
            ]),
            Duration::from_secs(60),
        );
    }
}

/// Runs one SQL statement with `psql` and returns its rows, columns separated by `|`.
pub fn psql(url: &str, sql: &str) -> Vec<String> {
    let out = run_bounded(
        Command::new("psql").args([url, "-X", "-At", "-v", "ON_ERROR_STOP=1", "-c", sql]),
        Duration::from_secs(60),
    );
    assert!(
        out.status.success(),
        "psql {sql:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_owned)
        .collect()
}

/// One number from `sql`.
pub fn psql_count(url: &str, sql: &str) -> i64 {
    let rows = psql(url, sql);
    rows.first()
        .and_then(|r| r.trim().parse().ok())
        .unwrap_or_else(|| panic!("{sql:?} did not answer a number: {rows:?}"))
}
