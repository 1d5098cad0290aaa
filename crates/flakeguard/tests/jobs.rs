//! `flakeguard jobs list|retry|purge-dead` as a process, on the embedded queue (the file in
//! `./data` that `serve` uses) and on Redis (`TEST_REDIS_URL`, database 7 so the fixed
//! `flakeguard` key prefix meets no other test).

mod support;

use std::path::Path;

use flakeguard_queue::{JobQueue, JobState, NewJob, RedisQueue, SqliteQueue};
use serde_json::Value;
use support::{run, scratch};

fn job(queue: &str, id: &str) -> NewJob {
    NewJob {
        queue: queue.to_owned(),
        id: id.to_owned(),
        payload: "{}".to_owned(),
        max_attempts: 3,
    }
}

/// Two dead jobs (one in each of two queues) and one pending.
async fn fill(queue: &dyn JobQueue) {
    for (name, id) in [
        ("score_tests", "score_tests:run:1"),
        ("notify", "notify:gone"),
    ] {
        queue.push(&job(name, id)).await.unwrap();
        let lease = queue
            .reserve(&[name], std::time::Duration::from_secs(30))
            .await
            .unwrap()
            .unwrap();
        assert!(
            queue
                .fail(&lease, &format!("{id} failed"), None)
                .await
                .unwrap()
        );
    }
    queue
        .push(&job("score_tests", "score_tests:run:2"))
        .await
        .unwrap();
}

fn json(dir: &Path, env: &[(&str, &str)], args: &[&str]) -> Value {
    let out = run(dir, env, args);
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn check(dir: &Path, env: &[(&str, &str)], backend: &str) {
    let listed = json(dir, env, &["jobs", "list", "--format", "json"]);
    assert_eq!(listed["backend"], backend);
    let queues = listed["queues"].as_array().unwrap();
    assert_eq!(queues.len(), 4);
    assert_eq!(
        (
            queues[0]["name"].as_str(),
            queues[0]["pending"].as_u64(),
            queues[0]["dead"].as_u64()
        ),
        (Some("score_tests"), Some(1), Some(1))
    );
    let dead: Vec<&str> = listed["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|j| j["id"].as_str().unwrap())
        .collect();
    assert_eq!(dead, ["score_tests:run:1", "notify:gone"]);
    assert_eq!(listed["jobs"][0]["last_error"], "score_tests:run:1 failed");
    assert_eq!(listed["jobs"][0]["attempts"], 1);

    let text = run(dir, env, &["jobs", "list", "--state", "all"]);
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(text.contains("score_tests:run:2 [pending]"), "{text}");
    assert!(text.contains("last error: notify:gone failed"), "{text}");

    // Retry one by id (its queue read from the id), then an unknown one.
    let out = run(dir, env, &["jobs", "retry", "score_tests:run:1"]);
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("1 dead job queued again"));
    let out = run(dir, env, &["jobs", "retry", "score_tests:run:99"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("score_tests:run:99"));
    let listed = json(
        dir,
        env,
        &[
            "jobs",
            "list",
            "--queue",
            "score_tests",
            "--state",
            "pending",
            "--format",
            "json",
        ],
    );
    assert_eq!(listed["jobs"].as_array().unwrap().len(), 2);
    assert_eq!(listed["jobs"][1]["attempts"], 0, "attempts reset: {listed}");

    // Purge what is dead.
    let out = run(dir, env, &["jobs", "purge-dead"]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("purged 1 dead job"));
    let listed = json(dir, env, &["jobs", "list", "--format", "json"]);
    assert!(listed["jobs"].as_array().unwrap().is_empty(), "{listed}");

    // Usage errors name what was wrong.
    let out = run(dir, env, &["jobs", "list", "--queue", "nope"]);
    assert_ne!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--queue nope: unknown queue"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dead_jobs_are_listed_replayed_and_purged_on_the_embedded_queue() {
    let dir = scratch("jobs-embedded");
    let queue = SqliteQueue::open(&dir.join("data/flakeguard-queue.db"))
        .await
        .unwrap();
    fill(&queue).await;
    let dir2 = dir.clone();
    tokio::task::spawn_blocking(move || check(&dir2, &[], "sqlite"))
        .await
        .unwrap();
    assert_eq!(
        queue
            .list("score_tests", JobState::Pending, 10)
            .await
            .unwrap()
            .len(),
        2
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dead_jobs_are_listed_replayed_and_purged_on_redis() {
    let base =
        std::env::var("TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned());
    let url = format!("{}/7", base.trim_end_matches('/'));
    let queue = RedisQueue::connect(&url, "flakeguard").await.unwrap();
    // Start clean (a previous run may have stopped half-way): this database is this test's.
    clear(&queue).await;
    fill(&queue).await;
    let dir = scratch("jobs-redis");
    let env_url = url.clone();
    tokio::task::spawn_blocking(move || check(&dir, &[("REDIS_URL", env_url.as_str())], "redis"))
        .await
        .unwrap();
    clear(&queue).await;
}

/// Empties every queue through the queue's own operations.
async fn clear(queue: &dyn JobQueue) {
    for name in ["score_tests", "process_webhook", "notify", "maintenance"] {
        while let Some(lease) = queue
            .reserve(&[name], std::time::Duration::from_secs(30))
            .await
            .unwrap()
        {
            queue.complete(&lease).await.unwrap();
        }
        queue.purge_dead(name, None).await.unwrap();
    }
}
