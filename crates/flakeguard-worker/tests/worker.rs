//! The worker against a real store (SQLite) and both real queues (the embedded SQLite queue
//! and Redis on `TEST_REDIS_URL`): the outbox sweep, scoring, webhook routing, retries and
//! dead jobs, hand-back on shutdown, concurrency, and maintenance with a controllable clock.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use flakeguard_app::jobs::{self, Job, JobContext, JobKind, Notify};
use flakeguard_app::{ReportFile, RunMeta, ingest_reports};
use flakeguard_core::Policy;
use flakeguard_queue::{JobQueue, JobState, RedisQueue, SqliteQueue};
use flakeguard_store::{
    DeliveryStatus, NewDelivery, NewQuarantine, PageRequest, QuarantineState, RepoSlug, Repository,
    Source, Store, TestQuery, TestSort,
};
use flakeguard_store_sqlite::SqliteStore;
use flakeguard_worker::{WorkerConfig, schedule, sweeper};
use time::OffsetDateTime;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::watch;

fn unique(name: &str) -> String {
    static N: AtomicUsize = AtomicUsize::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!(
        "{name}-{}-{}-{nanos}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

#[derive(Clone, Copy, Debug)]
enum Backend {
    Sqlite,
    Redis,
}

struct Env {
    store: Arc<dyn Store>,
    queue: Arc<dyn JobQueue>,
    repo: Repository,
    dir: PathBuf,
}

impl Drop for Env {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

async fn env(backend: Backend) -> Env {
    let dir = std::env::temp_dir().join(unique("fg-worker"));
    let store = SqliteStore::open(&dir.join("flakeguard.db")).await.unwrap();
    store.migrate().await.unwrap();
    let queue: Arc<dyn JobQueue> = match backend {
        Backend::Sqlite => Arc::new(SqliteQueue::open(&dir.join("queue.db")).await.unwrap()),
        Backend::Redis => {
            let url = std::env::var("TEST_REDIS_URL")
                .unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned());
            Arc::new(
                RedisQueue::connect(&url, &unique("fg-worker"))
                    .await
                    .unwrap_or_else(|e| panic!("Redis must run for these tests: {e}")),
            )
        }
    };
    assert_eq!(
        schedule::slot(OffsetDateTime::now_utc().unix_timestamp(), NEVER),
        0
    );
    assert!(
        queue
            .claim_schedule(schedule::MAINTENANCE, 0, NEVER)
            .await
            .unwrap()
    );
    let (org, _) = store.ensure_organization("acme", "Acme").await.unwrap();
    let (repo, _) = store
        .ensure_repository(org.id, &RepoSlug::parse("acme/shop").unwrap())
        .await
        .unwrap();
    Env {
        store: Arc::new(store),
        queue,
        repo,
        dir,
    }
}

fn config() -> WorkerConfig {
    WorkerConfig {
        concurrency: 3,
        lease: Duration::from_secs(30),
        poll: Duration::from_millis(10),
        sweep_every: Duration::from_secs(3600),
        sweep_grace: Duration::ZERO,
        drain: Duration::from_secs(5),
        maintenance_every: NEVER,
    }
}

/// A schedule period so long that its one slot (0) is claimed by `env` before any worker
/// starts: the workers in these tests schedule no maintenance of their own.
const NEVER: Duration = Duration::from_secs(100 * 365 * 24 * 3600);

/// A worker running until the returned sender says stop.
fn start(
    env: &Env,
    ctx: JobContext,
    config: WorkerConfig,
) -> (
    watch::Sender<bool>,
    tokio::task::JoinHandle<flakeguard_worker::WorkerSummary>,
) {
    let (tx, mut rx) = watch::channel(false);
    let worker = tokio::spawn(flakeguard_worker::run(
        Arc::clone(&env.queue),
        ctx,
        config,
        async move {
            let _ = rx.wait_for(|s| *s).await;
        },
    ));
    (tx, worker)
}

fn report(cases: &[(&str, bool)]) -> Vec<ReportFile> {
    let mut xml = String::from("<testsuite name=\"s\">");
    for (name, fail) in cases {
        xml.push_str(&format!("<testcase classname=\"c\" name=\"{name}\">"));
        if *fail {
            xml.push_str("<failure message=\"boom\">trace</failure>");
        }
        xml.push_str("</testcase>");
    }
    xml.push_str("</testsuite>");
    vec![ReportFile {
        name: "junit.xml".into(),
        bytes: xml.into_bytes(),
    }]
}

fn meta(run: usize) -> RunMeta {
    RunMeta {
        repo: RepoSlug::parse("acme/shop").unwrap(),
        commit: Some(format!("c{run}")),
        branch: Some("main".into()),
        run_id: Some(format!("run-{run}")),
        attempt: 1,
        job: "test".into(),
        pr: None,
        started_at: Some(OffsetDateTime::now_utc() - time::Duration::minutes(100 - run as i64)),
        source: Source::Upload,
    }
}

async fn wait_until<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + Duration::from_secs(30);
    while !check().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Every test, by name.
fn all_tests() -> TestQuery {
    TestQuery {
        filter: None,
        text: None,
        sort: TestSort::Name,
        page: PageRequest {
            offset: 0,
            limit: 1000,
        },
    }
}

async fn unscored(store: &dyn Store) -> usize {
    let far = OffsetDateTime::now_utc() + time::Duration::days(1);
    store.unscored_runs(far, 10_000).await.unwrap().len()
}

macro_rules! on_both_queues {
    ($($name:ident),* $(,)?) => {
        mod sqlite_queue {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(super::Backend::Sqlite).await;
                }
            )*
        }
        mod redis_queue {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(super::Backend::Redis).await;
                }
            )*
        }
    };
}

on_both_queues!(
    the_sweep_queues_runs_whose_job_is_missing_and_the_worker_scores_them,
    webhook_deliveries_are_swept_and_routed_once,
    a_failing_notification_is_retried_and_a_refused_one_is_dead,
    shutdown_hands_a_running_job_back,
    worker_concurrency_is_honoured,
    maintenance_is_scheduled_once_per_slot_and_expires_quarantines,
);

async fn the_sweep_queues_runs_whose_job_is_missing_and_the_worker_scores_them(backend: Backend) {
    let env = env(backend).await;
    let now = OffsetDateTime::now_utc();
    // Ten runs stored as the API stores them, but no job pushed: as if the queue was down.
    for run in 0..10 {
        let cases: Vec<(String, bool)> = (0..20)
            .map(|t| (format!("t{t}"), t == 3 && run % 2 == 0))
            .collect();
        let cases: Vec<(&str, bool)> = cases.iter().map(|(n, f)| (n.as_str(), *f)).collect();
        ingest_reports(&*env.store, &env.repo, &meta(run), &report(&cases), now)
            .await
            .unwrap();
    }
    assert_eq!(unscored(&*env.store).await, 10);
    let swept = sweeper::sweep_once(&*env.store, &*env.queue, now + time::Duration::seconds(1))
        .await
        .unwrap();
    assert_eq!((swept.found, swept.requeued), (10, 10));
    let again = sweeper::sweep_once(&*env.store, &*env.queue, now + time::Duration::seconds(1))
        .await
        .unwrap();
    assert_eq!(
        (again.found, again.requeued),
        (10, 0),
        "jobs that exist are not queued twice"
    );
    let stats = env.queue.stats(&["score_tests"]).await.unwrap();
    assert_eq!(stats[0].pending, 10);

    let ctx = JobContext::new(Arc::clone(&env.store), Policy::default());
    let (stop, worker) = start(&env, ctx, config());
    wait_until("every run scored", || async {
        unscored(&*env.store).await == 0
    })
    .await;
    stop.send(true).unwrap();
    let summary = worker.await.unwrap();
    // At least one job per run. The worker's own first sweep may read a run as unscored just
    // before its job completes and push it again: a second, harmless scoring.
    assert!(summary.completed >= 10, "{summary:?}");
    assert_eq!((summary.retried, summary.dead), (0, 0));

    // The flaky test (failing every other run) is judged as a full rescore judges it.
    let page = env
        .store
        .list_tests(env.repo.id, &all_tests())
        .await
        .unwrap();
    let t3 = page.items.iter().find(|t| t.key.name == "t3").unwrap();
    assert_eq!((t3.executions, t3.failures), (10, 5));
    let incremental: Vec<_> = page
        .items
        .iter()
        .map(|t| (t.key.name.clone(), t.status.clone(), t.probability))
        .collect();
    flakeguard_app::rescore(&*env.store, env.repo.id, now)
        .await
        .unwrap();
    let full = env
        .store
        .list_tests(env.repo.id, &all_tests())
        .await
        .unwrap();
    let full: Vec<_> = full
        .items
        .iter()
        .map(|t| (t.key.name.clone(), t.status.clone(), t.probability))
        .collect();
    assert_eq!(incremental, full);
}

async fn webhook_deliveries_are_swept_and_routed_once(backend: Backend) {
    let env = env(backend).await;
    let now = OffsetDateTime::now_utc();
    let mut ids = Vec::new();
    for (i, event) in ["ping", "workflow_run", "star"].iter().enumerate() {
        let (delivery, created) = env
            .store
            .record_delivery(&NewDelivery {
                delivery_id: format!("d-{i}"),
                event: (*event).to_owned(),
                action: None,
                installation_id: Some(1),
                payload: b"{}".to_vec(),
                received_at: now,
            })
            .await
            .unwrap();
        assert!(created);
        ids.push(delivery.id);
    }
    let swept = sweeper::sweep_once(&*env.store, &*env.queue, now + time::Duration::seconds(1))
        .await
        .unwrap();
    assert_eq!(swept.requeued, 3);
    let ctx = JobContext::new(Arc::clone(&env.store), Policy::default());
    let (stop, worker) = start(&env, ctx.clone(), config());
    wait_until("deliveries handled", || async {
        env.store
            .pending_deliveries(now + time::Duration::seconds(1), 10)
            .await
            .unwrap()
            .is_empty()
    })
    .await;
    stop.send(true).unwrap();
    worker.await.unwrap();
    let ping = env.store.find_delivery(ids[0]).await.unwrap().unwrap();
    assert_eq!((ping.status, ping.attempts), (DeliveryStatus::Processed, 1));
    let star = env.store.find_delivery(ids[2]).await.unwrap().unwrap();
    assert_eq!(star.status, DeliveryStatus::Ignored);
    assert!(star.last_error.unwrap().contains("not subscribed"));
    // Handling a delivery again (a redelivered job) changes nothing.
    jobs::handle(&ctx, &Job::webhook(ids[0])).await.unwrap();
    let again = env.store.find_delivery(ids[0]).await.unwrap().unwrap();
    assert_eq!(again.attempts, 1);
}

/// A tiny HTTP server answering every request with `status` after `delay`, counting
/// requests and the most it saw at once.
struct FakeHook {
    addr: SocketAddr,
    requests: Arc<AtomicUsize>,
    peak: Arc<AtomicUsize>,
}

async fn fake_hook(status: u16, delay: Duration) -> FakeHook {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let requests = Arc::new(AtomicUsize::new(0));
    let peak = Arc::new(AtomicUsize::new(0));
    let now = Arc::new(AtomicUsize::new(0));
    let (r, p) = (Arc::clone(&requests), Arc::clone(&peak));
    tokio::spawn(async move {
        loop {
            let Ok((mut socket, _)) = listener.accept().await else {
                return;
            };
            let (r, p, now) = (Arc::clone(&r), Arc::clone(&p), Arc::clone(&now));
            tokio::spawn(async move {
                let mut buf = vec![0u8; 16 * 1024];
                let mut got = Vec::new();
                // Read the headers and the (small) body.
                loop {
                    let Ok(n) = socket.read(&mut buf).await else {
                        return;
                    };
                    if n == 0 {
                        return;
                    }
                    got.extend_from_slice(&buf[..n]);
                    let text = String::from_utf8_lossy(&got);
                    if let Some(end) = text.find("\r\n\r\n") {
                        let length = text
                            .lines()
                            .find_map(|l| {
                                l.to_ascii_lowercase()
                                    .strip_prefix("content-length:")
                                    .map(|v| v.trim().parse::<usize>().unwrap_or(0))
                            })
                            .unwrap_or(0);
                        if got.len() >= end + 4 + length {
                            break;
                        }
                    }
                }
                r.fetch_add(1, Ordering::SeqCst);
                let at_once = now.fetch_add(1, Ordering::SeqCst) + 1;
                p.fetch_max(at_once, Ordering::SeqCst);
                tokio::time::sleep(delay).await;
                now.fetch_sub(1, Ordering::SeqCst);
                let reason = if status == 200 { "OK" } else { "Nope" };
                let response = format!(
                    "HTTP/1.1 {status} {reason}\r\ncontent-length: 2\r\nconnection: close\r\n\r\nno"
                );
                let _ = socket.write_all(response.as_bytes()).await;
            });
        }
    });
    FakeHook {
        addr,
        requests,
        peak,
    }
}

fn notify(key: &str, hook: &FakeHook) -> Job {
    Job::Notify(Notify {
        key: key.to_owned(),
        target: format!("http://{}/hook", hook.addr),
        text: format!("{key} is flaky"),
    })
}

async fn a_failing_notification_is_retried_and_a_refused_one_is_dead(backend: Backend) {
    let env = env(backend).await;
    let broken = fake_hook(503, Duration::ZERO).await;
    let refused = fake_hook(404, Duration::ZERO).await;
    jobs::enqueue(&*env.queue, &notify("retry-me", &broken))
        .await
        .unwrap();
    jobs::enqueue(&*env.queue, &notify("gone", &refused))
        .await
        .unwrap();
    let ctx = JobContext::new(Arc::clone(&env.store), Policy::default());
    let (stop, worker) = start(&env, ctx, config());
    wait_until("the 503 retried and the 404 dead", || async {
        let s = env.queue.stats(&["notify"]).await.unwrap();
        s[0].failed == 1 && s[0].dead == 1
    })
    .await;
    stop.send(true).unwrap();
    let summary = worker.await.unwrap();
    assert_eq!((summary.retried, summary.dead), (1, 1), "{summary:?}");
    assert_eq!(refused.requests.load(Ordering::SeqCst), 1, "never retried");
    let dead = env.queue.list("notify", JobState::Dead, 10).await.unwrap();
    assert_eq!(dead[0].id, "notify:gone");
    let error = dead[0].last_error.clone().unwrap();
    assert!(error.contains("404"), "{error}");
    let retrying = env
        .queue
        .list("notify", JobState::Retrying, 10)
        .await
        .unwrap();
    assert!(retrying[0].last_error.as_ref().unwrap().contains("503"));
    // Replaying the dead job sends it again.
    assert_eq!(env.queue.retry_dead("notify", None).await.unwrap(), 1);
    let ctx = JobContext::new(Arc::clone(&env.store), Policy::default());
    let (stop, worker) = start(&env, ctx, config());
    wait_until("the replayed job tried", || async {
        refused.requests.load(Ordering::SeqCst) == 2
    })
    .await;
    stop.send(true).unwrap();
    worker.await.unwrap();
}

async fn shutdown_hands_a_running_job_back(backend: Backend) {
    let env = env(backend).await;
    let slow = fake_hook(200, Duration::from_secs(20)).await;
    jobs::enqueue(&*env.queue, &notify("slow", &slow))
        .await
        .unwrap();
    let ctx = JobContext::new(Arc::clone(&env.store), Policy::default());
    let (stop, worker) = start(
        &env,
        ctx,
        WorkerConfig {
            drain: Duration::from_millis(300),
            ..config()
        },
    );
    wait_until("the job running", || async {
        slow.requests.load(Ordering::SeqCst) == 1
    })
    .await;
    let asked = Instant::now();
    stop.send(true).unwrap();
    let summary = worker.await.unwrap();
    assert!(
        asked.elapsed() < Duration::from_secs(10),
        "the drain is bounded"
    );
    assert_eq!(summary.handed_back, 1, "{summary:?}");
    let pending = env
        .queue
        .list("notify", JobState::Pending, 10)
        .await
        .unwrap();
    assert_eq!(pending.len(), 1);
    assert_eq!(
        pending[0].attempts, 0,
        "the handed-back attempt is not counted"
    );
}

async fn worker_concurrency_is_honoured(backend: Backend) {
    let env = env(backend).await;
    let hook = fake_hook(200, Duration::from_millis(300)).await;
    for i in 0..9 {
        jobs::enqueue(&*env.queue, &notify(&format!("n{i}"), &hook))
            .await
            .unwrap();
    }
    let ctx = JobContext::new(Arc::clone(&env.store), Policy::default());
    let (stop, worker) = start(&env, ctx, config());
    wait_until("all sent", || async {
        hook.requests.load(Ordering::SeqCst) == 9
    })
    .await;
    wait_until("all completed", || async {
        let s = env.queue.stats(&["notify"]).await.unwrap();
        s[0].pending + s[0].running == 0
    })
    .await;
    stop.send(true).unwrap();
    let summary = worker.await.unwrap();
    assert_eq!(summary.completed, 9);
    assert_eq!(
        hook.peak.load(Ordering::SeqCst),
        3,
        "WORKER_CONCURRENCY = 3 jobs at once, no more and no fewer"
    );
}

async fn maintenance_is_scheduled_once_per_slot_and_expires_quarantines(backend: Backend) {
    let env = env(backend).await;
    let every = Duration::from_secs(3600);
    let now = OffsetDateTime::now_utc();
    // Several workers tick the same hour at once: one schedules it.
    let mut ticks = Vec::new();
    for _ in 0..5 {
        let queue = Arc::clone(&env.queue);
        ticks.push(tokio::spawn(async move {
            schedule::tick(&*queue, now.unix_timestamp(), every)
                .await
                .unwrap()
        }));
    }
    let mut won = 0;
    for tick in ticks {
        won += usize::from(tick.await.unwrap());
    }
    assert_eq!(won, 1);
    let stats = env
        .queue
        .stats(&[JobKind::Maintenance.as_str()])
        .await
        .unwrap();
    assert_eq!(stats[0].pending, 1);

    // A quarantine that expires in two days, and old failure text.
    ingest_reports(
        &*env.store,
        &env.repo,
        &meta(1),
        &report(&[("a", true)]),
        now,
    )
    .await
    .unwrap();
    let test = env
        .store
        .list_tests(env.repo.id, &all_tests())
        .await
        .unwrap()
        .items[0]
        .id;
    env.store
        .add_quarantine(
            env.repo.id,
            &NewQuarantine {
                test,
                state: QuarantineState::Active,
                reason: "flaky".into(),
                owner: None,
                created_by: "test".into(),
                created_at: now,
                expires_at: Some(now + time::Duration::days(2)),
            },
        )
        .await
        .unwrap();
    // The clock says three days from now.
    let later = now + time::Duration::days(3);
    let mut ctx = JobContext::new(Arc::clone(&env.store), Policy::default());
    ctx.clock = Arc::new(move || later);
    ctx.failure_text_retention = Duration::from_secs(24 * 3600);
    let (stop, worker) = start(&env, ctx.clone(), config());
    wait_until("maintenance done and the run scored", || async {
        let s = env
            .queue
            .stats(&["maintenance", "score_tests"])
            .await
            .unwrap();
        s.iter().all(|q| q.pending + q.running == 0) && unscored(&*env.store).await == 0
    })
    .await;
    stop.send(true).unwrap();
    // The maintenance job, and the new run's scoring (found by the worker's first sweep).
    assert!(worker.await.unwrap().completed >= 2);
    assert!(
        env.store
            .live_quarantines(env.repo.id)
            .await
            .unwrap()
            .is_empty()
    );
    let audit = env.store.list_audit(env.repo.org, 10).await.unwrap();
    assert_eq!(audit[0].action, "quarantine.expired");
    assert_eq!(audit[0].actor, "flakeguard:maintenance");
    let signatures = env
        .store
        .failure_signatures(env.repo.id, test)
        .await
        .unwrap();
    assert_eq!(signatures.len(), 1, "signatures are kept");
    let executions = env
        .store
        .recent_executions(env.repo.id, test, 10)
        .await
        .unwrap();
    assert_eq!(
        executions[0].message, None,
        "the raw failure text is cleared"
    );
    assert!(executions[0].signature.is_some());
    // Running maintenance again finds nothing more to do.
    let report = jobs::handle(&ctx, &Job::Maintenance(jobs::Maintenance { slot: 0 }))
        .await
        .unwrap();
    assert_eq!(report, "cleared 0 failure texts, expired 0 quarantines");
}
