//! The behaviour every [`JobQueue`] backend must have, as one suite.
//!
//! Each check takes an empty queue of its own. `tests/contract.rs` runs all of them against
//! Redis (a key prefix per check on `TEST_REDIS_URL`) and SQLite (a file per check) with
//! [`queue_contract_tests!`](crate::queue_contract_tests).

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use crate::{JobQueue, JobState, NewJob, Pushed, QueueError};

/// Generates one `#[tokio::test]` per contract check. `$factory` is an async fn returning an
/// `Arc<dyn JobQueue>` on an empty queue.
#[macro_export]
macro_rules! queue_contract_tests {
    ($factory:path) => {
        $crate::queue_contract_tests!(@each $factory;
            a_job_is_delivered_with_its_payload_and_forgotten_when_complete,
            an_id_is_queued_once_until_it_completes,
            jobs_come_out_oldest_first_and_queues_in_the_order_asked,
            a_failed_job_waits_for_its_retry,
            a_job_without_retries_left_is_dead_and_can_be_replayed_or_purged,
            an_expired_lease_is_taken_back_and_the_old_lease_is_void,
            a_lease_that_expires_on_the_last_attempt_makes_the_job_dead,
            retries_and_expired_leases_come_back_in_every_queue_asked,
            a_released_job_is_pending_again_without_using_an_attempt,
            an_extended_lease_is_kept,
            concurrent_consumers_get_each_job_once,
            a_schedule_slot_is_claimed_once,
            invalid_jobs_are_refused_with_the_reason,
        );
    };
    (@each $factory:path; $($name:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                let queue = $factory().await;
                $crate::contract::$name(queue).await;
            }
        )*
    };
}

const LONG: Duration = Duration::from_secs(30);

fn job(queue: &str, id: &str) -> NewJob {
    NewJob {
        queue: queue.to_owned(),
        id: id.to_owned(),
        payload: format!(r#"{{"id":"{id}"}}"#),
        max_attempts: 3,
    }
}

async fn counts(queue: &dyn JobQueue, name: &str) -> [u64; 4] {
    let stats = queue.stats(&[name]).await.expect("stats");
    assert_eq!(stats.len(), 1);
    assert_eq!(stats[0].name, name);
    [
        stats[0].pending,
        stats[0].running,
        stats[0].failed,
        stats[0].dead,
    ]
}

pub async fn a_job_is_delivered_with_its_payload_and_forgotten_when_complete(
    queue: Arc<dyn JobQueue>,
) {
    queue.ping().await.expect("ping");
    assert_eq!(
        queue.push(&job("alpha", "j1")).await.unwrap(),
        Pushed::Queued
    );
    assert_eq!(counts(&*queue, "alpha").await, [1, 0, 0, 0]);
    let lease = queue
        .reserve(&["alpha"], LONG)
        .await
        .unwrap()
        .expect("a job");
    assert_eq!(lease.queue, "alpha");
    assert_eq!(lease.id, "j1");
    assert_eq!(lease.payload, r#"{"id":"j1"}"#);
    assert_eq!((lease.attempt, lease.max_attempts), (1, 3));
    assert_eq!(counts(&*queue, "alpha").await, [0, 1, 0, 0]);
    let running = queue.list("alpha", JobState::Running, 10).await.unwrap();
    assert_eq!(running.len(), 1);
    assert_eq!((running[0].id.as_str(), running[0].attempts), ("j1", 1));
    assert!(queue.reserve(&["alpha"], LONG).await.unwrap().is_none());
    assert!(queue.complete(&lease).await.unwrap());
    assert!(!queue.complete(&lease).await.unwrap(), "completing twice");
    assert_eq!(counts(&*queue, "alpha").await, [0, 0, 0, 0]);
    assert!(queue.reserve(&["alpha"], LONG).await.unwrap().is_none());
    // Listing a state nothing is in (what `flakeguard jobs list` does first on a healthy
    // queue: the dead set) is an empty list, not an error.
    for state in JobState::ALL {
        assert_eq!(
            queue.list("alpha", state, 10).await.unwrap().len(),
            0,
            "{state:?}"
        );
    }
}

pub async fn an_id_is_queued_once_until_it_completes(queue: Arc<dyn JobQueue>) {
    assert_eq!(
        queue.push(&job("alpha", "same")).await.unwrap(),
        Pushed::Queued
    );
    assert_eq!(
        queue.push(&job("alpha", "same")).await.unwrap(),
        Pushed::AlreadyQueued
    );
    let lease = queue.reserve(&["alpha"], LONG).await.unwrap().unwrap();
    assert_eq!(
        queue.push(&job("alpha", "same")).await.unwrap(),
        Pushed::AlreadyQueued,
        "a running job's id"
    );
    assert!(queue.complete(&lease).await.unwrap());
    assert_eq!(
        queue.push(&job("alpha", "same")).await.unwrap(),
        Pushed::Queued,
        "a completed job's id is free again"
    );
    assert_eq!(counts(&*queue, "alpha").await, [1, 0, 0, 0]);
}

pub async fn jobs_come_out_oldest_first_and_queues_in_the_order_asked(queue: Arc<dyn JobQueue>) {
    for id in ["a1", "a2", "a3"] {
        queue.push(&job("alpha", id)).await.unwrap();
        // Distinct enqueue times even on a coarse clock.
        tokio::time::sleep(Duration::from_millis(3)).await;
    }
    queue.push(&job("beta", "b1")).await.unwrap();
    let first = queue
        .reserve(&["beta", "alpha"], LONG)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(first.id, "b1");
    let mut order = Vec::new();
    while let Some(lease) = queue.reserve(&["beta", "alpha"], LONG).await.unwrap() {
        order.push(lease.id.clone());
        queue.complete(&lease).await.unwrap();
    }
    assert_eq!(order, ["a1", "a2", "a3"]);
    assert!(queue.reserve(&["gamma"], LONG).await.unwrap().is_none());
    assert!(queue.reserve(&[], LONG).await.unwrap().is_none());
}

pub async fn a_failed_job_waits_for_its_retry(queue: Arc<dyn JobQueue>) {
    queue.push(&job("alpha", "r1")).await.unwrap();
    let lease = queue.reserve(&["alpha"], LONG).await.unwrap().unwrap();
    assert!(
        queue
            .fail(&lease, "boom", Some(Duration::from_millis(400)))
            .await
            .unwrap()
    );
    assert!(
        !queue.complete(&lease).await.unwrap(),
        "the failed lease is void"
    );
    assert_eq!(counts(&*queue, "alpha").await, [0, 0, 1, 0]);
    let retrying = queue.list("alpha", JobState::Retrying, 10).await.unwrap();
    assert_eq!(retrying.len(), 1);
    assert_eq!(retrying[0].last_error.as_deref(), Some("boom"));
    assert!(
        queue.reserve(&["alpha"], LONG).await.unwrap().is_none(),
        "not due yet"
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    let again = queue.reserve(&["alpha"], LONG).await.unwrap().expect("due");
    assert_eq!((again.id.as_str(), again.attempt), ("r1", 2));
    assert!(queue.complete(&again).await.unwrap());
    assert_eq!(counts(&*queue, "alpha").await, [0, 0, 0, 0]);
}

pub async fn a_job_without_retries_left_is_dead_and_can_be_replayed_or_purged(
    queue: Arc<dyn JobQueue>,
) {
    for id in ["d1", "d2", "d3"] {
        queue.push(&job("alpha", id)).await.unwrap();
        tokio::time::sleep(Duration::from_millis(3)).await;
        let lease = queue.reserve(&["alpha"], LONG).await.unwrap().unwrap();
        assert!(
            queue
                .fail(&lease, &format!("{id} is broken"), None)
                .await
                .unwrap()
        );
    }
    assert_eq!(counts(&*queue, "alpha").await, [0, 0, 0, 3]);
    assert_eq!(
        queue.push(&job("alpha", "d1")).await.unwrap(),
        Pushed::AlreadyQueued,
        "a dead job is not resurrected by a push"
    );
    let dead = queue.list("alpha", JobState::Dead, 10).await.unwrap();
    let ids: Vec<&str> = dead.iter().map(|j| j.id.as_str()).collect();
    assert_eq!(ids, ["d1", "d2", "d3"]);
    assert_eq!(dead[0].last_error.as_deref(), Some("d1 is broken"));
    assert_eq!(dead[0].state, JobState::Dead);
    assert_eq!(dead[0].payload, r#"{"id":"d1"}"#);
    assert_eq!(
        queue.list("alpha", JobState::Dead, 1).await.unwrap().len(),
        1
    );

    assert_eq!(queue.retry_dead("alpha", Some("d2")).await.unwrap(), 1);
    assert_eq!(queue.retry_dead("alpha", Some("nope")).await.unwrap(), 0);
    assert_eq!(counts(&*queue, "alpha").await, [1, 0, 0, 2]);
    let lease = queue.reserve(&["alpha"], LONG).await.unwrap().unwrap();
    assert_eq!(
        (lease.id.as_str(), lease.attempt),
        ("d2", 1),
        "attempts reset"
    );
    queue.complete(&lease).await.unwrap();

    assert_eq!(queue.purge_dead("alpha", Some("d1")).await.unwrap(), 1);
    assert_eq!(queue.purge_dead("alpha", None).await.unwrap(), 1);
    assert_eq!(counts(&*queue, "alpha").await, [0, 0, 0, 0]);
    assert_eq!(
        queue.push(&job("alpha", "d1")).await.unwrap(),
        Pushed::Queued,
        "a purged id is free"
    );
    assert_eq!(queue.retry_dead("alpha", None).await.unwrap(), 0);
}

pub async fn an_expired_lease_is_taken_back_and_the_old_lease_is_void(queue: Arc<dyn JobQueue>) {
    queue.push(&job("alpha", "e1")).await.unwrap();
    let lost = queue
        .reserve(&["alpha"], Duration::from_millis(200))
        .await
        .unwrap()
        .unwrap();
    tokio::time::sleep(Duration::from_millis(350)).await;
    let taken = queue
        .reserve(&["alpha"], LONG)
        .await
        .unwrap()
        .expect("reclaimed");
    assert_eq!((taken.id.as_str(), taken.attempt), ("e1", 2));
    assert!(
        !queue.complete(&lost).await.unwrap(),
        "the dead worker's lease"
    );
    assert!(!queue.fail(&lost, "late", None).await.unwrap());
    assert!(!queue.release(&lost).await.unwrap());
    assert!(!queue.extend(&lost, LONG).await.unwrap());
    assert_eq!(counts(&*queue, "alpha").await, [0, 1, 0, 0]);
    assert!(queue.complete(&taken).await.unwrap());
}

pub async fn a_lease_that_expires_on_the_last_attempt_makes_the_job_dead(queue: Arc<dyn JobQueue>) {
    let mut once = job("alpha", "poison");
    once.max_attempts = 1;
    queue.push(&once).await.unwrap();
    let _lost = queue
        .reserve(&["alpha"], Duration::from_millis(150))
        .await
        .unwrap()
        .unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(queue.reserve(&["alpha"], LONG).await.unwrap().is_none());
    assert_eq!(counts(&*queue, "alpha").await, [0, 0, 0, 1]);
    let dead = queue.list("alpha", JobState::Dead, 10).await.unwrap();
    let error = dead[0].last_error.as_deref().unwrap_or_default();
    assert!(error.contains("lease expired"), "{error}");
}

pub async fn retries_and_expired_leases_come_back_in_every_queue_asked(queue: Arc<dyn JobQueue>) {
    queue.push(&job("beta", "b-retry")).await.unwrap();
    queue.push(&job("gamma", "g-lost")).await.unwrap();
    let failing = queue.reserve(&["beta"], LONG).await.unwrap().unwrap();
    assert!(
        queue
            .fail(&failing, "flaky", Some(Duration::from_millis(100)))
            .await
            .unwrap()
    );
    let _lost = queue
        .reserve(&["gamma"], Duration::from_millis(100))
        .await
        .unwrap()
        .unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    // Asked in one call for three queues, the first empty: both jobs come back, in the order
    // of the queues asked.
    let first = queue
        .reserve(&["alpha", "gamma", "beta"], LONG)
        .await
        .unwrap()
        .expect("the expired lease");
    assert_eq!((first.id.as_str(), first.attempt), ("g-lost", 2));
    let second = queue
        .reserve(&["alpha", "gamma", "beta"], LONG)
        .await
        .unwrap()
        .expect("the due retry");
    assert_eq!((second.id.as_str(), second.attempt), ("b-retry", 2));
    assert!(queue.complete(&first).await.unwrap());
    assert!(queue.complete(&second).await.unwrap());
    assert_eq!(counts(&*queue, "beta").await, [0, 0, 0, 0]);
    assert_eq!(counts(&*queue, "gamma").await, [0, 0, 0, 0]);
}

pub async fn a_released_job_is_pending_again_without_using_an_attempt(queue: Arc<dyn JobQueue>) {
    queue.push(&job("alpha", "h1")).await.unwrap();
    let lease = queue.reserve(&["alpha"], LONG).await.unwrap().unwrap();
    assert_eq!(lease.attempt, 1);
    assert!(queue.release(&lease).await.unwrap());
    assert!(!queue.complete(&lease).await.unwrap());
    assert_eq!(counts(&*queue, "alpha").await, [1, 0, 0, 0]);
    let again = queue.reserve(&["alpha"], LONG).await.unwrap().unwrap();
    assert_eq!(again.attempt, 1, "handing back is not an attempt");
}

pub async fn an_extended_lease_is_kept(queue: Arc<dyn JobQueue>) {
    queue.push(&job("alpha", "x1")).await.unwrap();
    let lease = queue
        .reserve(&["alpha"], Duration::from_millis(300))
        .await
        .unwrap()
        .unwrap();
    assert!(queue.extend(&lease, LONG).await.unwrap());
    tokio::time::sleep(Duration::from_millis(450)).await;
    assert!(queue.reserve(&["alpha"], LONG).await.unwrap().is_none());
    assert!(queue.complete(&lease).await.unwrap());
}

pub async fn concurrent_consumers_get_each_job_once(queue: Arc<dyn JobQueue>) {
    const JOBS: usize = 200;
    for i in 0..JOBS {
        queue.push(&job("alpha", &format!("c{i}"))).await.unwrap();
    }
    let mut consumers = Vec::new();
    for _ in 0..8 {
        let queue = Arc::clone(&queue);
        consumers.push(tokio::spawn(async move {
            let mut got = Vec::new();
            while let Some(lease) = queue.reserve(&["alpha"], LONG).await.unwrap() {
                assert!(queue.complete(&lease).await.unwrap());
                got.push(lease.id);
            }
            got
        }));
    }
    let mut all = Vec::new();
    for consumer in consumers {
        all.extend(consumer.await.expect("consumer"));
    }
    assert_eq!(all.len(), JOBS, "every job delivered exactly once");
    let distinct: HashSet<&String> = all.iter().collect();
    assert_eq!(distinct.len(), JOBS);
    assert_eq!(counts(&*queue, "alpha").await, [0, 0, 0, 0]);
}

pub async fn a_schedule_slot_is_claimed_once(queue: Arc<dyn JobQueue>) {
    let mut claims = Vec::new();
    for _ in 0..6 {
        let queue = Arc::clone(&queue);
        claims.push(tokio::spawn(async move {
            queue
                .claim_schedule("maintenance", 42, Duration::from_secs(60))
                .await
                .unwrap()
        }));
    }
    let mut won = 0;
    for claim in claims {
        won += usize::from(claim.await.unwrap());
    }
    assert_eq!(won, 1);
    assert!(
        queue
            .claim_schedule("maintenance", 43, Duration::from_secs(60))
            .await
            .unwrap()
    );
    assert!(
        queue
            .claim_schedule("other", 42, Duration::from_secs(60))
            .await
            .unwrap()
    );
}

pub async fn invalid_jobs_are_refused_with_the_reason(queue: Arc<dyn JobQueue>) {
    let mut bad = job("", "i1");
    let err = queue.push(&bad).await.unwrap_err();
    assert!(matches!(err, QueueError::Invalid(_)), "{err}");
    bad.queue = "alpha".to_owned();
    bad.max_attempts = 0;
    let err = queue.push(&bad).await.unwrap_err();
    assert!(err.to_string().contains("max_attempts"), "{err}");
    bad.max_attempts = 1;
    bad.id = String::new();
    assert!(queue.push(&bad).await.is_err());
    assert_eq!(counts(&*queue, "alpha").await, [0, 0, 0, 0]);
}
