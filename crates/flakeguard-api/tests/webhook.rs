//! `POST /api/github/webhook` as GitHub calls it, with the real payloads from
//! shared/fixtures/github-webhooks signed like GitHub signs them: acceptance and storage,
//! deduplication, signatures, the circuit-breaker flag, limits, and a queue outage — on
//! SQLite with the embedded queue and on PostgreSQL with Redis.

mod support;

use std::time::Duration;

use flakeguard_app::{GitHubSettings, Secret, Settings};
use flakeguard_store::{DeliveryId, DeliveryStatus, Store};
use serde_json::Value;
use support::{Backend, TestApp, fixture, test_settings};
use time::OffsetDateTime;

const SECRET: &str = "webhook-secret-for-the-tests";

fn settings() -> Settings {
    Settings {
        github: GitHubSettings {
            webhook_secret: Some(Secret::new(SECRET)),
            ..GitHubSettings::default()
        },
        ..test_settings()
    }
}

fn sign(body: &[u8]) -> String {
    flakeguard_github::sign_webhook(SECRET.as_bytes(), body)
}

struct Delivery<'a> {
    event: Option<&'a str>,
    id: Option<&'a str>,
    signature: Option<String>,
    body: Vec<u8>,
}

impl<'a> Delivery<'a> {
    fn signed(event: &'a str, id: &'a str, body: Vec<u8>) -> Self {
        Delivery {
            event: Some(event),
            id: Some(id),
            signature: Some(sign(&body)),
            body,
        }
    }

    async fn send(self, app: &TestApp) -> (u16, Value) {
        let mut request = app
            .http
            .post(app.url("/api/github/webhook"))
            .header("content-type", "application/json")
            .header("user-agent", "GitHub-Hookshot/test");
        if let Some(event) = self.event {
            request = request.header("x-github-event", event);
        }
        if let Some(id) = self.id {
            request = request.header("x-github-delivery", id);
        }
        if let Some(signature) = self.signature {
            request = request.header("x-hub-signature-256", signature);
        }
        let response = request.body(self.body).send().await.unwrap();
        let status = response.status().as_u16();
        let body = response.json().await.unwrap_or(Value::Null);
        (status, body)
    }
}

/// Deliveries still waiting for their job.
async fn pending(store: &dyn Store) -> Vec<DeliveryId> {
    let later = OffsetDateTime::now_utc() + time::Duration::days(1);
    store.pending_deliveries(later, 1000).await.unwrap()
}

async fn wait_for_status(store: &dyn Store, id: DeliveryId, want: DeliveryStatus) {
    for _ in 0..400 {
        let delivery = store.find_delivery(id).await.unwrap().unwrap();
        if delivery.status == want {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("delivery {} never became {want:?}", id.0);
}

macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let app = super::TestApp::start_with(super::Backend::Sqlite, super::settings()).await;
                    super::$name(&app).await;
                    app.finish().await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let app = super::TestApp::start_with(super::Backend::Postgres, super::settings()).await;
                    super::$name(&app).await;
                    app.finish().await;
                }
            )*
        }
    };
}

on_both_backends!(
    deliveries_are_stored_once_and_handled,
    bad_requests_store_nothing
);

async fn deliveries_are_stored_once_and_handled(app: &TestApp) {
    let ping = fixture("github-webhooks/ping/payload.json");
    let (status, body) = Delivery::signed("ping", "d-ping-1", ping.clone())
        .send(app)
        .await;
    assert_eq!(
        (status, body["status"].as_str()),
        (202, Some("queued")),
        "{body}"
    );
    assert_eq!(body["delivery"], "d-ping-1");

    let run = fixture("github-webhooks/workflow_run/completed.payload.json");
    let (status, body) = Delivery::signed("workflow_run", "d-run-1", run.clone())
        .send(app)
        .await;
    assert_eq!(
        (status, body["status"].as_str()),
        (202, Some("queued")),
        "{body}"
    );

    // Both were stored before the 202; the worker handles them (ping is answered, the run
    // has no handler in this build yet and is recorded as ignored).
    let mut stored = Vec::new();
    for _ in 0..400 {
        let later = OffsetDateTime::now_utc() + time::Duration::days(1);
        stored.clear();
        for id in 1..=50 {
            if let Some(d) = app.store.find_delivery(DeliveryId(id)).await.unwrap() {
                stored.push(d);
            }
        }
        if stored.len() == 2
            && app
                .store
                .pending_deliveries(later, 10)
                .await
                .unwrap()
                .is_empty()
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert_eq!(stored.len(), 2, "{stored:?}");
    let ping_row = stored.iter().find(|d| d.delivery_id == "d-ping-1").unwrap();
    assert_eq!(ping_row.event, "ping");
    assert_eq!(ping_row.payload, ping, "the payload is stored verbatim");
    wait_for_status(&*app.store, ping_row.id, DeliveryStatus::Processed).await;
    let run_row = stored.iter().find(|d| d.delivery_id == "d-run-1").unwrap();
    assert_eq!(run_row.event, "workflow_run");
    assert_eq!(run_row.action.as_deref(), Some("completed"));
    let payload: Value = serde_json::from_slice(&run).unwrap();
    assert_eq!(
        run_row.installation_id,
        payload["installation"]["id"].as_i64(),
        "the installation is read from the payload"
    );

    // GitHub redelivers with the same GUID: answered, not stored or handled twice.
    let (status, body) = Delivery::signed("ping", "d-ping-1", ping).send(app).await;
    assert_eq!(
        (status, body["status"].as_str()),
        (202, Some("duplicate")),
        "{body}"
    );
    let again = app.store.find_delivery(ping_row.id).await.unwrap().unwrap();
    assert_eq!(again.attempts, 1, "a duplicate is not handled again");
    assert!(
        app.store
            .find_delivery(DeliveryId(run_row.id.0.max(ping_row.id.0) + 1))
            .await
            .unwrap()
            .is_none(),
        "no third delivery was stored"
    );

    // Events FlakeGuard does not subscribe to are answered and dropped.
    let (status, body) = Delivery::signed("star", "d-star-1", br#"{"action":"created"}"#.to_vec())
        .send(app)
        .await;
    assert_eq!(
        (status, body["status"].as_str()),
        (202, Some("ignored")),
        "{body}"
    );
    assert!(
        app.store
            .find_delivery(DeliveryId(run_row.id.0.max(ping_row.id.0) + 1))
            .await
            .unwrap()
            .is_none(),
        "an ignored event is not stored"
    );

    // Every payload of every subscribed event in the fixtures is accepted.
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/fixtures/github-webhooks");
    let mut n = 0;
    for event in std::fs::read_dir(&root).unwrap() {
        let event = event.unwrap().path();
        if !event.is_dir() {
            continue;
        }
        let name = event.file_name().unwrap().to_str().unwrap().to_owned();
        for file in std::fs::read_dir(&event).unwrap() {
            let body = std::fs::read(file.unwrap().path()).unwrap();
            n += 1;
            let id = format!("fixture-{n}");
            let (status, answer) = Delivery::signed(&name, &id, body).send(app).await;
            assert_eq!(status, 202, "{name}: {answer}");
        }
    }
    assert!(n >= 50, "only {n} fixture payloads");
}

async fn bad_requests_store_nothing(app: &TestApp) {
    let body = fixture("github-webhooks/ping/payload.json");
    let cases: Vec<(Delivery<'_>, u16, &str)> = vec![
        (
            Delivery {
                signature: None,
                ..Delivery::signed("ping", "b1", body.clone())
            },
            401,
            "unauthorized",
        ),
        (
            Delivery {
                signature: Some(sign(b"another body")),
                ..Delivery::signed("ping", "b2", body.clone())
            },
            401,
            "unauthorized",
        ),
        (
            Delivery {
                signature: Some("sha256=abc".to_owned()),
                ..Delivery::signed("ping", "b3", body.clone())
            },
            401,
            "unauthorized",
        ),
        (
            Delivery {
                event: None,
                ..Delivery::signed("ping", "b4", body.clone())
            },
            400,
            "missing_header",
        ),
        (
            Delivery {
                id: None,
                ..Delivery::signed("ping", "b5", body.clone())
            },
            400,
            "missing_header",
        ),
        (
            Delivery::signed("ping", "b6", b"not json".to_vec()),
            400,
            "invalid_payload",
        ),
    ];
    for (delivery, want, code) in cases {
        let (status, answer) = delivery.send(app).await;
        assert_eq!(status, want, "{answer}");
        assert_eq!(answer["error"]["code"], code, "{answer}");
        assert!(!answer["error"]["message"].as_str().unwrap().is_empty());
    }
    // Larger than GitHub's 25 MiB maximum.
    let big = vec![b' '; (25 << 20) + 1];
    let (status, answer) = Delivery::signed("ping", "b7", big).send(app).await;
    assert_eq!(status, 413, "{answer}");
    assert!(pending(&*app.store).await.is_empty());
    assert!(
        app.store
            .find_delivery(DeliveryId(1))
            .await
            .unwrap()
            .is_none(),
        "nothing stored"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn switched_off_or_unconfigured_webhooks_answer_503_and_store_nothing() {
    for (github, code) in [
        (
            GitHubSettings {
                webhooks_enabled: false,
                webhook_secret: Some(Secret::new(SECRET)),
                ..GitHubSettings::default()
            },
            "webhooks_disabled",
        ),
        (GitHubSettings::default(), "webhooks_not_configured"),
    ] {
        let app = TestApp::start_with(
            Backend::Sqlite,
            Settings {
                github,
                ..test_settings()
            },
        )
        .await;
        let body = fixture("github-webhooks/ping/payload.json");
        let (status, answer) = Delivery::signed("ping", "off-1", body).send(&app).await;
        assert_eq!(status, 503, "{answer}");
        assert_eq!(answer["error"]["code"], code, "{answer}");
        assert!(
            app.store
                .find_delivery(DeliveryId(1))
                .await
                .unwrap()
                .is_none()
        );
        app.finish().await;
    }
}

/// With the queue away the delivery is still stored and answered 202; the worker's outbox
/// sweep queues it once the queue is back (here: the worker runs on the real queue while the
/// API's queue is unreachable).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_queue_defers_deliveries_without_losing_them() {
    let queue = flakeguard_queue::RedisQueue::lazy("redis://127.0.0.1:1", "fg-nowhere").unwrap();
    let app = TestApp::start_custom(
        Backend::Sqlite,
        settings(),
        Some(std::sync::Arc::new(queue)),
    )
    .await;
    let body = fixture("github-webhooks/ping/payload.json");
    let (status, answer) = Delivery::signed("ping", "lost-1", body).send(&app).await;
    assert_eq!(
        (status, answer["status"].as_str()),
        (202, Some("deferred")),
        "{answer}"
    );
    assert_eq!(pending(&*app.store).await.len(), 1, "stored for the sweep");
    app.finish().await;
}
