//! Fault tests against real Redis and PostgreSQL servers (issue #4, item 6): a worker process
//! killed with SIGKILL mid-job 20 times during a stream of uploads; Redis gone for 30 s during
//! a burst of uploads; PostgreSQL restarted under load. Each test starts the servers it stops
//! on ports of its own (the machine's shared PostgreSQL only ever gets a database of the
//! test's own), bounds every wait, and stops everything it started when it ends, failed or
//! not. The figures measured are printed to stderr (`--nocapture` shows them).

mod support;

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use support::servers::{PgCluster, PgDatabase, RedisServer, psql, psql_count};
use support::{API_KEY, Answer, Server, command, ingest, request, run_bounded, scratch, wait_for};

/// The longest any single request may take before the test calls it hung.
const HUNG: Duration = Duration::from_secs(30);

/// How one test fared in one run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Passed,
    Failed,
    /// Failed once, then passed on the retry: two attempts.
    Flaky,
}

impl Outcome {
    fn attempts(self) -> i64 {
        match self {
            Outcome::Flaky => 2,
            _ => 1,
        }
    }

    fn failures(self) -> i64 {
        match self {
            Outcome::Passed => 0,
            _ => 1,
        }
    }
}

/// The `(classname, name)` of test `i`.
fn test_key(i: usize) -> (String, String) {
    (format!("pkg.Class{:02}", i / 100), format!("test_{i:04}"))
}

/// One JUnit report of `cases` (test index, outcome); `run` makes failure text differ.
fn junit(run: usize, cases: &[(usize, Outcome)]) -> String {
    let mut xml = String::with_capacity(cases.len() * 80 + 200);
    xml.push_str(&format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites><testsuite name=\"faults\" tests=\"{}\">\n",
        cases.len()
    ));
    for (i, outcome) in cases {
        let (classname, name) = test_key(*i);
        let head = format!("<testcase classname=\"{classname}\" name=\"{name}\" time=\"0.002\"");
        match outcome {
            Outcome::Passed => xml.push_str(&format!("{head}/>\n")),
            Outcome::Failed => xml.push_str(&format!(
                "{head}><failure message=\"expected {run} got {i}\">assertion failed in run {run}</failure></testcase>\n"
            )),
            Outcome::Flaky => xml.push_str(&format!(
                "{head}><flakyFailure message=\"timeout in run {run}\">timed out</flakyFailure></testcase>\n"
            )),
        }
    }
    xml.push_str("</testsuite></testsuites>\n");
    xml
}

/// The ingest query of run `run` of acme/shop.
fn run_query(run: usize) -> String {
    format!(
        "repo=acme/shop&run_id={}&commit={:040x}&branch=main",
        1000 + run,
        0xc0ffee_usize + run
    )
}

/// Runs `flakeguard migrate deploy` on `url`.
fn migrate(dir: &Path, url: &str) {
    let out = run_bounded(
        &mut command(dir, &[("DATABASE_URL", url)], &["migrate", "deploy"]),
        Duration::from_secs(120),
    );
    assert!(
        out.status.success(),
        "migrate deploy: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `GET <path>` on `addr`, bounded by [`HUNG`], as parsed JSON with the status.
fn get_json(addr: &str, path: &str) -> Result<(u16, serde_json::Value), String> {
    let answer = request(addr, "GET", path, &[], &[], HUNG)?;
    let value = serde_json::from_str(&answer.body)
        .map_err(|e| format!("GET {path}: not JSON ({e}): {}", answer.body))?;
    Ok((answer.status, value))
}

/// The worker's `/health` queue counts summed over every queue: (pending, running, failed,
/// dead), or None when it does not answer 200.
fn worker_counts(addr: &str) -> Option<(u64, u64, u64, u64)> {
    let (status, body) = get_json(addr, "/health").ok()?;
    if status != 200 {
        return None;
    }
    let mut sums = (0, 0, 0, 0);
    for q in body["queues"].as_array()? {
        sums.0 += q["pending"].as_u64()?;
        sums.1 += q["running"].as_u64()?;
        sums.2 += q["failed"].as_u64()?;
        sums.3 += q["dead"].as_u64()?;
    }
    Some(sums)
}

/// Runs whose scoring has not finished.
fn unscored(url: &str) -> i64 {
    psql_count(url, "SELECT count(*) FROM runs WHERE scored_at IS NULL")
}

/// Deadlocks PostgreSQL broke in the database of `url` so far (each cost its waiters
/// `deadlock_timeout`, 1 s by default).
fn deadlocks(url: &str) -> i64 {
    psql_count(
        url,
        "SELECT deadlocks FROM pg_stat_database WHERE datname = current_database()",
    )
}

/// `flakeguard jobs list --format json` against `redis_url`.
fn jobs_list(dir: &Path, redis_url: &str, database_url: &str) -> serde_json::Value {
    let out = run_bounded(
        &mut command(
            dir,
            &[("REDIS_URL", redis_url), ("DATABASE_URL", database_url)],
            &["jobs", "list", "--state", "all", "--format", "json"],
        ),
        Duration::from_secs(60),
    );
    assert!(
        out.status.success(),
        "jobs list: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("jobs list prints JSON")
}

fn assert_no_dead_job(jobs: &serde_json::Value) {
    for queue in jobs["queues"].as_array().expect("queues") {
        assert_eq!(queue["dead"], 0, "no dead job: {jobs:#}");
    }
    let dead: Vec<_> = jobs["jobs"]
        .as_array()
        .expect("jobs")
        .iter()
        .filter(|j| j["state"] == "dead")
        .collect();
    assert!(dead.is_empty(), "dead jobs: {dead:#?}");
}

/// Jobs whose lease ends more than 700 ms from now (Redis's clock): the ones a live worker
/// reserved or extended within the last ~1.3 s (with a 2 s lease it extends every ~0.67 s).
/// A worker killed 1.5 s ago or longer holds none of these any more.
fn fresh_leases(redis: &RedisServer) -> u64 {
    const SCRIPT: &str = "local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local n = 0
for _, q in ipairs({'score_tests', 'process_webhook', 'notify', 'maintenance'}) do
  n = n + redis.call('ZCOUNT', '{flakeguard}:q:' .. q .. ':running', '(' .. (now + 700), '+inf')
end
return n";
    let out = redis.cli(&["EVAL", SCRIPT, "0"]);
    out.parse()
        .unwrap_or_else(|_| panic!("redis-cli EVAL answered {out:?}"))
}

const KILLS: usize = 20;
const STREAM_RUNS: usize = 40;
const POOL: usize = 2000;

/// Which tests run `r` of the stream has and how they fare: the first 1000 tests always,
/// about three quarters of the next 1000 (a different set each run); three failures and two
/// flaky retries, at places that move from run to run.
fn stream_run(r: usize) -> Vec<(usize, Outcome)> {
    let failing: Vec<usize> = (0..3).map(|k| (r * 37 + k * 331 + 5) % POOL).collect();
    let flaky: Vec<usize> = (0..2).map(|k| (r * 53 + k * 701 + 17) % POOL).collect();
    (0..POOL)
        .filter(|&i| i < 1000 || !(i * 7 + r * 13).is_multiple_of(4))
        .map(|i| {
            let outcome = if failing.contains(&i) {
                Outcome::Failed
            } else if flaky.contains(&i) {
                Outcome::Flaky
            } else {
                Outcome::Passed
            };
            (i, outcome)
        })
        .collect()
}

/// A worker is killed with SIGKILL 20 times, each time while it holds jobs, during a stream
/// of 40 uploads of ~1,750 tests; a new one is started after each kill. Every run ends up
/// scored, no execution is stored or counted twice, and no job died.
#[test]
fn worker_killed_mid_job_twenty_times_loses_and_doubles_nothing() {
    let dir = scratch("faults-worker-kills");
    let db = PgDatabase::create("flakeguard_faults");
    let url = db.url();
    migrate(&dir, &url);
    let redis = RedisServer::start();
    let redis_url = redis.url();
    let env: Vec<(&str, &str)> = vec![
        ("DATABASE_URL", &url),
        ("REDIS_URL", &redis_url),
        ("API_KEY", API_KEY),
        ("RATE_LIMIT_MAX", "1000000"),
        ("WORKER_CONCURRENCY", "4"),
        ("JOB_LEASE_SECONDS", "2"),
    ];
    let api = Server::spawn(&dir, &env, &["api"]);

    // The runs, and what the database must hold once they are scored.
    let runs: Vec<Vec<(usize, Outcome)>> = (0..STREAM_RUNS).map(stream_run).collect();
    let mut expected: HashMap<(String, String), (i64, i64)> = HashMap::new();
    let mut rows_per_run: BTreeMap<String, i64> = BTreeMap::new();
    for (r, cases) in runs.iter().enumerate() {
        for (i, outcome) in cases {
            let e = expected.entry(test_key(*i)).or_default();
            e.0 += outcome.attempts();
            e.1 += outcome.failures();
        }
        rows_per_run.insert(
            (1000 + r).to_string(),
            cases.iter().map(|(_, o)| o.attempts()).sum(),
        );
    }
    let total_rows: i64 = rows_per_run.values().sum();
    let testcases: usize = runs.iter().map(Vec::len).sum();

    // The stream: one upload about every second, from a thread of its own.
    let api_addr = api.api().to_owned();
    let bodies: Vec<String> = runs.iter().enumerate().map(|(r, c)| junit(r, c)).collect();
    let stream = thread::spawn(move || {
        let mut answers = Vec::new();
        for (r, xml) in bodies.iter().enumerate() {
            let started = Instant::now();
            answers.push((r, ingest(&api_addr, &run_query(r), xml, HUNG)));
            thread::sleep(Duration::from_millis(1000).saturating_sub(started.elapsed()));
        }
        answers
    });

    // The kills. Before each, wait (at most 2.5 s) until /health counts a running job and the
    // worker holds a fresh lease, at least 1.5 s after the previous kill (so that the
    // previous worker's leases, 2 s, cannot be taken for this one's).
    let spawn_worker = || Server::spawn(&dir, &env, &["worker"]);
    let mut worker = spawn_worker();
    let mut last_kill: Option<Instant> = None;
    let (mut kills_mid_job, mut jobs_interrupted, mut kills_after_health_running) = (0, 0, 0);
    let kills_started = Instant::now();
    for _ in 0..KILLS {
        let waiting = Instant::now();
        let mut health_running = false;
        while waiting.elapsed() < Duration::from_millis(2500) {
            let spaced = last_kill.is_none_or(|t| t.elapsed() >= Duration::from_millis(1500));
            health_running = worker_counts(worker.worker()).is_some_and(|c| c.1 > 0);
            if spaced && health_running && fresh_leases(&redis) > 0 {
                break;
            }
            thread::sleep(Duration::from_millis(50));
        }
        worker.kill();
        // The killed worker's leases stay in Redis until they run out.
        let held = fresh_leases(&redis);
        last_kill = Some(Instant::now());
        if held > 0 {
            kills_mid_job += 1;
            jobs_interrupted += held;
        }
        if health_running {
            kills_after_health_running += 1;
        }
        worker = spawn_worker();
    }
    let kills_took = kills_started.elapsed();
    let answers = stream.join().expect("the upload stream");
    // Both the stream and the kills are over.
    let stream_done = Instant::now();

    // One worker stays; the interrupted jobs come back once their leases run out.
    wait_for(
        "every run to be scored",
        Duration::from_secs(120),
        Duration::from_millis(250),
        || (unscored(&url) == 0).then_some(()),
    );
    let drained = stream_done.elapsed();
    wait_for(
        "the queues to be idle",
        Duration::from_secs(60),
        Duration::from_millis(250),
        || worker_counts(worker.worker()).filter(|c| c.0 + c.1 + c.2 == 0),
    );

    eprintln!(
        "worker kills: {KILLS} in {:.1} s; {kills_mid_job} landed while the killed worker held \
         jobs ({jobs_interrupted} jobs interrupted), {kills_after_health_running} after /health \
         showed running > 0; every run scored {:.1} s after the stream and the kills ended \
         ({STREAM_RUNS} runs, {testcases} testcases, {total_rows} executions; {} deadlocks \
         broken by PostgreSQL)",
        kills_took.as_secs_f64(),
        drained.as_secs_f64(),
        deadlocks(&url)
    );
    assert!(
        kills_mid_job > 0,
        "no kill landed while the worker held a job: the test proved nothing"
    );
    for (r, answer) in &answers {
        let answer = answer
            .as_ref()
            .unwrap_or_else(|e| panic!("upload {r} not answered: {e}"));
        assert_eq!(answer.status, 201, "upload {r}: {}", answer.body);
    }
    assert_eq!(
        psql_count(&url, "SELECT count(*) FROM runs"),
        STREAM_RUNS as i64
    );
    assert_eq!(
        psql_count(&url, "SELECT count(*) FROM executions"),
        total_rows,
        "one row per attempt uploaded, none twice"
    );
    let stored: BTreeMap<String, i64> = psql(
        &url,
        "SELECT r.workflow_run_id, count(*) FROM executions e JOIN runs r ON r.id = e.run_id \
         GROUP BY 1",
    )
    .iter()
    .map(|row| {
        let (run, n) = row.split_once('|').unwrap();
        (run.to_owned(), n.parse().unwrap())
    })
    .collect();
    assert_eq!(stored, rows_per_run, "executions per run");

    let scores = psql(
        &url,
        "SELECT classname, name, executions, failures FROM test_cases",
    );
    assert_eq!(
        scores.len(),
        expected.len(),
        "one test case per test uploaded"
    );
    let mut wrong = Vec::new();
    for row in &scores {
        let parts: Vec<&str> = row.split('|').collect();
        let key = (parts[0].to_owned(), parts[1].to_owned());
        let got: (i64, i64) = (parts[2].parse().unwrap(), parts[3].parse().unwrap());
        let want = expected.get(&key).copied();
        if want != Some(got) {
            wrong.push(format!(
                "{}.{}: (executions, failures) stored {got:?}, uploaded {want:?}",
                key.0, key.1
            ));
        }
    }
    assert!(
        wrong.is_empty(),
        "{} of {} tests are scored over other executions than were uploaded, e.g.:\n{}",
        wrong.len(),
        scores.len(),
        wrong[..wrong.len().min(10)].join("\n")
    );
    assert_no_dead_job(&jobs_list(&dir, &redis_url, &url));
}

/// One answer to a request sent at `sent`, received at `answered`.
#[derive(Debug, Clone)]
struct Exchange {
    what: &'static str,
    sent: Instant,
    answered: Instant,
    result: Result<Answer, String>,
}

/// The exchanges as lines (sent and answered in seconds from `t0`, the answer), for failure
/// messages.
fn timeline(log: &[Exchange], t0: Instant) -> String {
    log.iter()
        .map(|e| {
            let at = |t: Instant| t.saturating_duration_since(t0).as_secs_f64();
            let answer = match &e.result {
                Ok(a) => format!(
                    "{} {}",
                    a.status,
                    a.body.chars().take(120).collect::<String>()
                ),
                Err(err) => err.clone(),
            };
            format!(
                "{:7.2} {:7.2} {:<13} {answer}",
                at(e.sent),
                at(e.answered),
                e.what
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

impl Exchange {
    /// Whether the whole exchange happened between `from` and `to`.
    fn within(&self, from: Instant, to: Instant) -> bool {
        self.sent >= from && self.answered <= to
    }

    fn status(&self) -> Option<u16> {
        self.result.as_ref().ok().map(|a| a.status)
    }
}

/// Starts `work` every `every`, each time on a thread of its own (so a slow answer does not
/// hold up the next request: the load keeps its rate), until `stop`; records each exchange.
/// The returned thread ends once every request has ended.
fn repeat(
    what: &'static str,
    every: Duration,
    stop: &Arc<AtomicBool>,
    log: &Arc<Mutex<Vec<Exchange>>>,
    work: impl Fn(usize) -> Result<Answer, String> + Send + Sync + 'static,
) -> thread::JoinHandle<()> {
    let (stop, log) = (Arc::clone(stop), Arc::clone(log));
    let work = Arc::new(work);
    thread::spawn(move || {
        let mut requests = Vec::new();
        let started = Instant::now();
        let mut n = 0;
        while !stop.load(Ordering::SeqCst) {
            let (log, work) = (Arc::clone(&log), Arc::clone(&work));
            requests.push(thread::spawn(move || {
                let sent = Instant::now();
                let result = work(n);
                log.lock().unwrap().push(Exchange {
                    what,
                    sent,
                    answered: Instant::now(),
                    result,
                });
            }));
            n += 1;
            let next = every * u32::try_from(n).unwrap();
            thread::sleep(next.saturating_sub(started.elapsed()));
        }
        for request in requests {
            request.join().expect("a request thread");
        }
    })
}

/// A small run: 30 tests, one of them failing.
fn small_run(r: usize) -> String {
    let cases: Vec<(usize, Outcome)> = (0..30)
        .map(|i| {
            let outcome = if i == r % 30 {
                Outcome::Failed
            } else {
                Outcome::Passed
            };
            (i, outcome)
        })
        .collect();
    junit(r, &cases)
}

/// Redis is killed 5 s into a 45 s stream of uploads and started again, empty, 30 s later.
/// Every upload is answered 2xx (`deferred` while Redis is away), the health checks say
/// `degraded` meanwhile, and the outbox sweep gets every run scored once Redis is back.
#[test]
fn redis_down_for_30_seconds_loses_no_upload() {
    let dir = scratch("faults-redis-down");
    let db = PgDatabase::create("flakeguard_faults");
    let url = db.url();
    migrate(&dir, &url);
    let mut redis = RedisServer::start();
    let redis_url = redis.url();
    let server = Server::start(
        &dir,
        &[
            ("DATABASE_URL", &url),
            ("REDIS_URL", &redis_url),
            ("API_KEY", API_KEY),
            ("RATE_LIMIT_MAX", "1000000"),
        ],
    );
    let (api, worker) = (server.api().to_owned(), server.worker().to_owned());

    let stop = Arc::new(AtomicBool::new(false));
    let log = Arc::new(Mutex::new(Vec::new()));
    let uploads = {
        let api = api.clone();
        repeat(
            "upload",
            Duration::from_millis(150),
            &stop,
            &log,
            move |n| ingest(&api, &run_query(n), &small_run(n), HUNG),
        )
    };
    let ready = {
        let api = api.clone();
        repeat(
            "ready",
            Duration::from_millis(500),
            &stop,
            &log,
            move |_| request(&api, "GET", "/health/ready", &[], &[], HUNG),
        )
    };
    let worker_health = {
        let worker = worker.clone();
        repeat(
            "worker health",
            Duration::from_millis(500),
            &stop,
            &log,
            move |_| request(&worker, "GET", "/health", &[], &[], HUNG),
        )
    };

    let t0 = Instant::now();
    thread::sleep(Duration::from_secs(5));
    redis.stop();
    let down = Instant::now();
    thread::sleep(Duration::from_secs(30).saturating_sub(down.elapsed()));
    let restarting = Instant::now();
    redis.start_again();
    let back = Instant::now();
    thread::sleep(Duration::from_secs(45).saturating_sub(t0.elapsed()));
    stop.store(true, Ordering::SeqCst);
    for handle in [uploads, ready, worker_health] {
        handle.join().expect("a load thread");
    }
    let stream_end = Instant::now();
    let log = log.lock().unwrap().clone();

    // Every upload answered 2xx; those made while Redis was away were deferred.
    let uploads: Vec<&Exchange> = log.iter().filter(|e| e.what == "upload").collect();
    let mut deferred = 0;
    let mut during = 0;
    for e in &uploads {
        let answer = e
            .result
            .as_ref()
            .unwrap_or_else(|err| panic!("an upload was not answered: {err}"));
        assert!(
            (200..300).contains(&answer.status),
            "upload answered {}: {}",
            answer.status,
            answer.body
        );
        let scoring = answer.json()["scoring"].as_str().unwrap_or("").to_owned();
        assert!(
            scoring == "queued" || scoring == "deferred",
            "{}",
            answer.body
        );
        if scoring == "deferred" {
            deferred += 1;
        }
        if e.within(down, restarting) {
            during += 1;
            assert_eq!(
                scoring, "deferred",
                "uploaded while Redis was away: {}",
                answer.body
            );
        }
    }
    let slowest = uploads
        .iter()
        .filter_map(|e| e.result.as_ref().ok().map(|a| a.elapsed))
        .max()
        .unwrap_or_default();
    assert!(during >= 5, "uploads while Redis was away: {during}");

    // The health checks while Redis was away.
    let (mut ready_probes, mut worker_probes) = (0, 0);
    for e in log.iter().filter(|e| e.within(down, restarting)) {
        let answer = match (&e.result, e.what) {
            (_, "upload") => continue,
            (Ok(answer), _) => answer,
            (Err(err), what) => panic!("{what} not answered while Redis was away: {err}"),
        };
        let body = answer.json();
        if e.what == "ready" {
            ready_probes += 1;
            assert_eq!(answer.status, 200, "/health/ready: {}", answer.body);
            assert_eq!(body["status"], "degraded", "/health/ready: {}", answer.body);
            assert_eq!(
                body["checks"]["database"]["status"], "ok",
                "{}",
                answer.body
            );
            assert_eq!(
                body["checks"]["queue"]["status"], "unavailable",
                "{}",
                answer.body
            );
        } else {
            worker_probes += 1;
            assert_eq!(answer.status, 503, "worker /health: {}", answer.body);
            assert_eq!(
                body["status"], "degraded",
                "worker /health: {}",
                answer.body
            );
        }
    }
    assert!(
        ready_probes >= 5 && worker_probes >= 5,
        "probes while Redis was away: {ready_probes}, {worker_probes}"
    );

    // Back: every stored run is scored (the sweep re-enqueues what Redis lost or never got).
    let stored = psql_count(&url, "SELECT count(*) FROM runs");
    assert_eq!(stored, uploads.len() as i64, "one run per upload");
    wait_for(
        "every run to be scored after Redis came back",
        Duration::from_secs(90),
        Duration::from_millis(250),
        || (unscored(&url) == 0).then_some(()),
    );
    let drained = back.elapsed();
    wait_for(
        "/health/ready and the worker's /health to say ok again",
        Duration::from_secs(30),
        Duration::from_millis(250),
        || {
            let ready = get_json(&api, "/health/ready").ok()?;
            let worker = get_json(&worker, "/health").ok()?;
            (ready.0 == 200
                && ready.1["status"] == "ok"
                && worker.0 == 200
                && worker.1["status"] == "ok")
                .then_some(())
        },
    );
    // When each health check first said ok again (from the probes made during the stream,
    // else now).
    let first_ok = |what: &str, status: u16| {
        log.iter()
            .filter(|e| e.what == what && e.sent >= back)
            .filter(|e| {
                e.result
                    .as_ref()
                    .is_ok_and(|a| a.status == status && a.json()["status"] == "ok")
            })
            .map(|e| e.answered.duration_since(back))
            .min()
            .unwrap_or_else(|| back.elapsed())
    };
    let (ready_ok, worker_ok) = (first_ok("ready", 200), first_ok("worker health", 200));
    eprintln!(
        "redis down {:.1} s: {} uploads in {:.1} s, all 2xx ({during} while Redis was away, \
         {deferred} deferred; slowest {:.2} s); {ready_probes} /health/ready probes degraded, \
         {worker_probes} worker /health probes 503; every run scored {:.1} s after Redis came \
         back (the stream ended {:.1} s after); /health/ready ok again after {:.1} s, the \
         worker's /health after {:.1} s; {} deadlocks broken by PostgreSQL",
        restarting.duration_since(down).as_secs_f64(),
        uploads.len(),
        stream_end.duration_since(t0).as_secs_f64(),
        slowest.as_secs_f64(),
        drained.as_secs_f64(),
        stream_end.duration_since(back).as_secs_f64(),
        ready_ok.as_secs_f64(),
        worker_ok.as_secs_f64(),
        deadlocks(&url),
    );
    assert_no_dead_job(&jobs_list(&dir, &redis_url, &url));
}

/// PostgreSQL is stopped (`pg_ctl stop -m fast`) for 10 s under a load of uploads, reads and
/// readiness checks, then started again. Meanwhile every request is answered 503 with the
/// uniform error body, promptly; afterwards the same process serves and scores again.
///
/// The uploads that queued up during the outage arrive together when PostgreSQL is back, so
/// concurrent ingests of the same tests are certain then: an upload answered 409 ("deadlock
/// detected") or a recovery that does not come means ingests lock `test_cases` rows in
/// orders that differ (the printed deadlock count says how often PostgreSQL broke a cycle).
#[test]
fn postgres_restart_is_answered_503_then_recovered_from() {
    let dir = scratch("faults-postgres-restart");
    let mut pg = PgCluster::start();
    let url = pg.url();
    let redis = RedisServer::start();
    let redis_url = redis.url();
    let server = Server::spawn(
        &dir,
        &[
            ("DATABASE_URL", &url),
            ("REDIS_URL", &redis_url),
            ("API_KEY", API_KEY),
            ("RATE_LIMIT_MAX", "1000000"),
        ],
        &["serve", "--migrate"],
    );
    let api = server.api().to_owned();
    let first = ingest(&api, &run_query(0), &small_run(0), HUNG).expect("the first upload");
    assert_eq!(first.status, 201, "{}", first.body);

    let stop = Arc::new(AtomicBool::new(false));
    let log = Arc::new(Mutex::new(Vec::new()));
    let mut threads = Vec::new();
    {
        let api = api.clone();
        threads.push(repeat(
            "upload",
            Duration::from_millis(100),
            &stop,
            &log,
            move |n| ingest(&api, &run_query(n + 1), &small_run(n + 1), HUNG),
        ));
    }
    for (what, path) in [
        ("runs", "/api/v1/repos/acme/shop/runs?per_page=5"),
        ("tests", "/api/v1/repos/acme/shop/tests?per_page=5"),
    ] {
        let api = api.clone();
        threads.push(repeat(
            what,
            Duration::from_millis(100),
            &stop,
            &log,
            move |_| support::get_with_key(&api, path, HUNG),
        ));
    }
    {
        let api = api.clone();
        threads.push(repeat(
            "ready",
            Duration::from_millis(250),
            &stop,
            &log,
            move |_| request(&api, "GET", "/health/ready", &[], &[], HUNG),
        ));
    }

    thread::sleep(Duration::from_secs(3));
    let stopping = Instant::now();
    pg.stop();
    let down = Instant::now();
    thread::sleep(Duration::from_secs(10));
    let restarting = Instant::now();
    pg.start_again();
    let back = Instant::now();
    // Recovered: since the last failed answer, 3 s have passed and uploads were stored.
    let ok = |e: &Exchange| matches!(e.status(), Some(200 | 201));
    let recovered = wait_for(
        "the API to answer every request with success again after PostgreSQL came back",
        Duration::from_secs(60),
        Duration::from_millis(100),
        || {
            let log = log.lock().unwrap();
            let last_failure = log
                .iter()
                .filter(|e| !ok(e))
                .map(|e| e.answered)
                .max()
                .map_or(back, |t| t.max(back));
            let stored_since = log
                .iter()
                .filter(|e| e.what == "upload" && e.sent > last_failure && ok(e))
                .count();
            (last_failure.elapsed() >= Duration::from_secs(3) && stored_since >= 5)
                .then_some(last_failure)
        },
    );
    stop.store(true, Ordering::SeqCst);
    for handle in threads {
        handle.join().expect("a load thread");
    }
    let log = log.lock().unwrap().clone();

    // Nothing went unanswered (HUNG); nothing was a 500 or another error.
    for e in &log {
        let answer = e
            .result
            .as_ref()
            .unwrap_or_else(|err| panic!("{} not answered: {err}", e.what));
        assert!(
            matches!(answer.status, 200 | 201 | 503),
            "{} answered {}: {}",
            e.what,
            answer.status,
            answer.body
        );
    }
    // While PostgreSQL was away: 503 with the uniform error body (readiness: its own).
    let mut during: BTreeMap<&str, usize> = BTreeMap::new();
    for e in log.iter().filter(|e| e.within(down, restarting)) {
        let answer = e.result.as_ref().unwrap();
        *during.entry(e.what).or_default() += 1;
        assert_eq!(
            answer.status, 503,
            "{} while PostgreSQL was away: {}",
            e.what, answer.body
        );
        let body = answer.json();
        if e.what == "ready" {
            assert_eq!(body["status"], "unavailable", "{}", answer.body);
        } else {
            assert_eq!(body["error"]["code"], "unavailable", "{}", answer.body);
            assert!(body["error"]["message"].is_string(), "{}", answer.body);
            assert_eq!(
                body.as_object().map(|o| o.len()),
                Some(1),
                "{}",
                answer.body
            );
        }
    }
    for what in ["upload", "runs", "tests", "ready"] {
        assert!(
            during.get(what).copied().unwrap_or(0) >= 1,
            "no {what} request fell in the outage ({:.2} to {:.2}): {during:?}\n{}",
            down.duration_since(stopping).as_secs_f64(),
            restarting.duration_since(stopping).as_secs_f64(),
            timeline(&log, stopping)
        );
    }
    // Not hung while PostgreSQL was away: every request sent in its first 2 s was answered
    // before it came back (8 s later or more).
    let early: Vec<&Exchange> = log
        .iter()
        .filter(|e| e.sent >= down && e.sent <= down + Duration::from_secs(2))
        .collect();
    assert!(!early.is_empty());
    for e in &early {
        assert!(
            e.answered < restarting,
            "a {} request sent {:.2} s into the outage was answered only {:.2} s later, after \
             PostgreSQL was back",
            e.what,
            e.sent.duration_since(down).as_secs_f64(),
            e.answered.duration_since(e.sent).as_secs_f64()
        );
    }
    let latency = |e: &Exchange| e.answered.duration_since(e.sent);
    let slowest_down = log
        .iter()
        .filter(|e| e.within(down, restarting))
        .map(|e| (latency(e), e.what))
        .max()
        .unwrap();
    assert!(
        slowest_down.0 < Duration::from_secs(10),
        "a {} request took {:?} during the outage",
        slowest_down.1,
        slowest_down.0
    );
    let slowest_all = log.iter().map(|e| (latency(e), e.what)).max().unwrap();
    let failed_after_back = log.iter().filter(|e| e.answered > back && !ok(e)).count();
    // Recovered by itself: everything after is a success.
    let after: Vec<&Exchange> = log.iter().filter(|e| e.sent > recovered).collect();
    assert!(!after.is_empty());
    for e in &after {
        assert!(ok(e), "{} after recovery answered {:?}", e.what, e.status());
    }
    // Every upload answered 201 is stored. (One answered 503 may be stored too, should its
    // commit have gone through just before its connection was cut: a retry would find it.)
    let stored: Vec<String> = psql(&url, "SELECT id FROM runs");
    let mut created = 0;
    for e in log
        .iter()
        .filter(|e| e.what == "upload" && e.status() == Some(201))
    {
        let run = e.result.as_ref().unwrap().json()["run_id"].to_string();
        assert!(
            stored.contains(&run),
            "run {run} was answered 201 but is not stored"
        );
        created += 1;
    }
    let stored_unanswered = stored.len() - created - 1;
    wait_for(
        "every run to be scored after PostgreSQL came back",
        Duration::from_secs(90),
        Duration::from_millis(250),
        || (unscored(&url) == 0).then_some(()),
    );
    let scored = back.elapsed();
    wait_for(
        "/health/ready to say ok again",
        Duration::from_secs(30),
        Duration::from_millis(250),
        || {
            get_json(&api, "/health/ready")
                .ok()
                .filter(|(status, body)| *status == 200 && body["status"] == "ok")
        },
    );
    eprintln!(
        "postgres down {:.1} s (stop took {:.1} s, start {:.1} s): {} requests; {during:?} \
         answered 503 while down, the slowest of them in {:.2} s ({}); recovered (last failed \
         answer) {:.2} s after PostgreSQL was back, {failed_after_back} answers after it was \
         back failed; slowest answer of the test {:.2} s ({}); every run scored {:.1} s after \
         it was back; {stored_unanswered} runs stored although answered 503; {} deadlocks \
         broken by PostgreSQL",
        restarting.duration_since(down).as_secs_f64(),
        down.duration_since(stopping).as_secs_f64(),
        back.duration_since(restarting).as_secs_f64(),
        log.len(),
        slowest_down.0.as_secs_f64(),
        slowest_down.1,
        recovered.saturating_duration_since(back).as_secs_f64(),
        slowest_all.0.as_secs_f64(),
        slowest_all.1,
        scored.as_secs_f64(),
        deadlocks(&url),
    );
}
