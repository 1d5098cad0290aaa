//! Black-box tests of the HTTP surface: every endpoint, authentication failures, tenant
//! isolation, idempotency and limits, each run on SQLite and on PostgreSQL.

mod support;

use std::io::Write;

use flakeguard_store::{NewQuarantine, QuarantineState, TestCaseId};
use serde_json::Value;
use support::{API_KEY, Backend, TestApp, fixture, junit, test_settings};
use time::OffsetDateTime;

macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let app = super::TestApp::start(super::Backend::Sqlite).await;
                    super::$name(&app).await;
                    app.finish().await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let app = super::TestApp::start(super::Backend::Postgres).await;
                    super::$name(&app).await;
                    app.finish().await;
                }
            )*
        }
    };
}

on_both_backends!(
    health_contracts,
    authentication_failures_use_the_error_body,
    ingest_stores_a_run_once,
    ingest_accepts_gzip_and_multipart,
    bad_reports_are_refused_with_their_location,
    bodies_are_bounded,
    repositories_are_created_only_when_allowed,
    scopes_and_tenants,
    failures_are_classified,
    read_api_lists_filters_and_paginates,
    test_and_run_details,
    quarantine_list,
    quarantine_lifecycle,
    openapi_and_swagger_ui,
    policy_is_read_validated_and_replaced,
    quarantine_plan_and_codeowners,
);

fn error_code(body: &Value) -> &str {
    body["error"]["code"].as_str().unwrap_or("<no error code>")
}

async fn health_contracts(app: &TestApp) {
    let body: Value = app
        .http
        .get(app.url("/health"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(body["status"], "ok");
    let timestamp = body["timestamp"].as_str().unwrap();
    assert!(
        OffsetDateTime::parse(timestamp, &time::format_description::well_known::Rfc3339).is_ok(),
        "{timestamp}"
    );
    let ready = app.http.get(app.url("/health/ready")).send().await.unwrap();
    assert_eq!(ready.status(), 200);
    let ready: Value = ready.json().await.unwrap();
    assert_eq!(ready["checks"]["database"]["status"], "ok");
    let live = app.http.get(app.url("/health/live")).send().await.unwrap();
    assert_eq!(live.status(), 200);

    let worker: Value = app
        .http
        .get(format!("{}/health", app.worker))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(worker["status"], "ok", "{worker}");
    let names: Vec<&str> = worker["queues"]
        .as_array()
        .unwrap()
        .iter()
        .map(|q| q["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        ["score_tests", "process_webhook", "notify", "maintenance"]
    );
    for queue in worker["queues"].as_array().unwrap() {
        for count in ["pending", "running", "failed", "dead"] {
            assert!(queue[count].is_u64(), "{queue}");
        }
    }
    assert_eq!(ready["checks"]["queue"]["status"], "ok", "{ready}");
    let metrics = app
        .http
        .get(format!("{}/metrics", app.worker))
        .send()
        .await
        .unwrap();
    assert_eq!(metrics.status(), 200);
    let text = metrics.text().await.unwrap();
    assert!(text.contains("# HELP flakeguard_queue_jobs"), "{text}");
    assert!(
        text.contains("flakeguard_queue_jobs{queue=\"score_tests\",state=\"dead\"} 0"),
        "{text}"
    );
    let web = app
        .http
        .get(format!("{}/health", app.web))
        .send()
        .await
        .unwrap();
    assert_eq!(web.status(), 200);
    assert_eq!(web.text().await.unwrap(), "OK");
    let page = app.http.get(format!("{}/", app.web)).send().await.unwrap();
    assert!(page.text().await.unwrap().contains("FlakeGuard"));

    // Every answer carries a request id, the client's when it sent one.
    let r = app
        .http
        .get(app.url("/health"))
        .header("x-request-id", "trace-me-42")
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["x-request-id"], "trace-me-42");
    let r = app.http.get(app.url("/health")).send().await.unwrap();
    assert!(!r.headers()["x-request-id"].is_empty());
}

async fn authentication_failures_use_the_error_body(app: &TestApp) {
    let r = app.http.get(app.url("/api/v1/repos")).send().await.unwrap();
    assert_eq!(r.status(), 401);
    let body: Value = r.json().await.unwrap();
    assert_eq!(error_code(&body), "unauthorized");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("Authorization")
    );
    for (header, expected) in [
        ("Basic abc", "malformed"),
        (
            "Bearer fgt_unknownunknownunknownunknownunknown1234",
            "unknown token",
        ),
    ] {
        let r = app
            .http
            .get(app.url("/api/v1/repos"))
            .header("authorization", header)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401, "{header}");
        let body: Value = r.json().await.unwrap();
        assert!(
            body["error"]["message"]
                .as_str()
                .unwrap()
                .contains(expected),
            "{body}"
        );
    }
    let (status, body) = app.get_json("/api/v1/repos", &app.tokens.revoked).await;
    assert_eq!((status, error_code(&body)), (401, "unauthorized"));
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("revoked")
    );
    // Unknown routes answer with the same body.
    let (status, body) = app.get_json("/api/v1/nope", &app.tokens.acme).await;
    assert_eq!((status, error_code(&body)), (404, "not_found"));
}

async fn ingest_stores_a_run_once(app: &TestApp) {
    let xml = String::from_utf8(fixture("junit/jest/dorny-test-reporter__jest-junit.xml")).unwrap();
    let query = "repo=acme/shop&commit=abc123&branch=main&run_id=900&attempt=1&job=test&pr=7&started_at=2026-11-20T10:00:00Z";
    let (status, first) = app.ingest(query, &app.tokens.acme, &xml).await;
    assert_eq!(status, 201, "{first}");
    assert_eq!(first["created"], true);
    assert_eq!(first["repo"], "acme/shop");
    let testcases = first["testcases"].as_u64().unwrap();
    assert!(testcases > 0);
    let failed = first["failed"].as_u64().unwrap();
    assert_eq!(first["failures"].as_array().unwrap().len() as u64, failed);
    for f in first["failures"].as_array().unwrap() {
        assert_eq!(f["status"], "new", "{f}");
    }
    let run_id = first["run_id"].as_i64().unwrap();
    assert_eq!(
        first["url"],
        format!("/api/v1/repos/acme/shop/runs/{run_id}")
    );

    // The same report of the same run again: stored once, answered 200 with the same run.
    let (status, second) = app.ingest(query, &app.tokens.acme, &xml).await;
    assert_eq!(status, 200, "{second}");
    assert_eq!(second["created"], false);
    assert_eq!(second["run_id"], first["run_id"]);
    assert_eq!(second["failed"], first["failed"]);
    assert_eq!(second["failures"], first["failures"]);
    let (_, runs) = app
        .get_json("/api/v1/repos/acme/shop/runs", &app.tokens.acme)
        .await;
    assert_eq!(runs["total"], 1);
    assert_eq!(runs["items"][0]["testcases"].as_u64().unwrap(), testcases);
    assert_eq!(runs["items"][0]["commit"], "abc123");
    assert_eq!(runs["items"][0]["pr_number"], 7);
    assert_eq!(runs["items"][0]["started_at"], "2026-11-20T10:00:00Z");

    // A re-run (attempt 2) of the same workflow run is a separate run.
    let (status, rerun) = app
        .ingest(
            &query.replace("attempt=1", "attempt=2"),
            &app.tokens.acme,
            &xml,
        )
        .await;
    assert_eq!(status, 201);
    assert_ne!(rerun["run_id"], first["run_id"]);

    // Bad metadata is named.
    for (q, param) in [
        ("repo=acme", "repo"),
        ("repo=acme/shop&attempt=0", "attempt"),
        ("repo=acme/shop&attempt=x", "attempt"),
        ("repo=acme/shop&started_at=yesterday", "started_at"),
        ("repo=acme/shop&colour=blue", "colour"),
        ("commit=abc", "repo"),
    ] {
        let (status, body) = app.ingest(q, &app.tokens.acme, &xml).await;
        assert_eq!(status, 422, "{q}: {body}");
        assert!(
            body["error"]["message"].as_str().unwrap().contains(param),
            "{q}: {body}"
        );
    }
}

async fn ingest_accepts_gzip_and_multipart(app: &TestApp) {
    let xml = fixture("junit/jest/dorny-test-reporter__jest-junit.xml");
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&xml).unwrap();
    let gz = gz.finish().unwrap();
    let r = app
        .http
        .post(app.url("/api/v1/ingest?repo=acme/shop&run_id=1"))
        .bearer_auth(&app.tokens.acme)
        .header("content-type", "application/xml")
        .header("content-encoding", "gzip")
        .body(gz)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let gz_answer: Value = r.json().await.unwrap();

    // Two files in one multipart upload: one run holding both.
    let other = fixture("junit/nextest/nextest__fixture-project-junit.xml");
    let boundary = "----flakeguard-test-boundary";
    let mut body = Vec::new();
    for (name, bytes) in [("jest.xml", &xml), ("nextest.xml", &other)] {
        write!(
            body,
            "--{boundary}\r\nContent-Disposition: form-data; name=\"report\"; filename=\"{name}\"\r\nContent-Type: application/xml\r\n\r\n"
        )
        .unwrap();
        body.extend_from_slice(bytes);
        body.extend_from_slice(b"\r\n");
    }
    write!(body, "--{boundary}--\r\n").unwrap();
    let r = app
        .http
        .post(app.url("/api/v1/ingest?repo=acme/shop&run_id=2"))
        .bearer_auth(&app.tokens.acme)
        .header(
            "content-type",
            format!("multipart/form-data; boundary={boundary}"),
        )
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let both: Value = r.json().await.unwrap();
    assert!(both["testcases"].as_u64().unwrap() > gz_answer["testcases"].as_u64().unwrap());

    let r = app
        .http
        .post(app.url("/api/v1/ingest?repo=acme/shop"))
        .bearer_auth(&app.tokens.acme)
        .header("content-type", "application/json")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 415);
    let r = app
        .http
        .post(app.url("/api/v1/ingest?repo=acme/shop"))
        .bearer_auth(&app.tokens.acme)
        .header("content-encoding", "br")
        .body("x")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 415);
}

async fn bad_reports_are_refused_with_their_location(app: &TestApp) {
    let corrupt =
        String::from_utf8(fixture("junit/malformed/enricomi-putra__corrupt-xml.xml")).unwrap();
    let (status, body) = app
        .ingest("repo=acme/shop&run_id=bad", &app.tokens.acme, &corrupt)
        .await;
    assert_eq!(
        (status, error_code(&body)),
        (422, "invalid_report"),
        "{body}"
    );
    assert!(
        body["error"]["message"].as_str().unwrap().contains("byte"),
        "{body}"
    );
    let xxe = String::from_utf8(fixture(
        "junit/malformed/jenkins-junit-plugin__testXxe-xxe.xml",
    ))
    .unwrap();
    let (status, body) = app
        .ingest("repo=acme/shop&run_id=xxe", &app.tokens.acme, &xxe)
        .await;
    assert_eq!(status, 422, "{body}");
    let (status, _) = app
        .ingest("repo=acme/shop&run_id=empty", &app.tokens.acme, "")
        .await;
    assert_eq!(status, 422);
    // Nothing of a refused upload was stored.
    let (_, runs) = app
        .get_json("/api/v1/repos/acme/shop/runs", &app.tokens.acme)
        .await;
    assert_eq!(runs["total"], 0);
}

async fn bodies_are_bounded(_app: &TestApp) {
    // A server of its own with a small limit (and the backend of the caller's choice is not
    // needed: limits act before storage).
    let mut settings = test_settings();
    settings.max_upload_bytes = 64 * 1024;
    let app = TestApp::start_with(Backend::Sqlite, settings).await;
    let big = junit(
        &(0..2000)
            .map(|_| ("c", "a test with a long enough name", "pass"))
            .collect::<Vec<_>>(),
    );
    assert!(big.len() > 64 * 1024);
    let (status, body) = app.ingest("repo=acme/shop", &app.tokens.acme, &big).await;
    assert_eq!(
        (status, error_code(&body)),
        (413, "payload_too_large"),
        "{body}"
    );
    // A gzip bomb: small on the wire, far over the limit once inflated.
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    gz.write_all(&vec![b' '; 50 << 20]).unwrap();
    let bomb = gz.finish().unwrap();
    assert!(bomb.len() < 64 * 1024);
    let r = app
        .http
        .post(app.url("/api/v1/ingest?repo=acme/shop"))
        .bearer_auth(&app.tokens.acme)
        .header("content-encoding", "gzip")
        .body(bomb)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 413);
    let body: Value = r.json().await.unwrap();
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("decompressed"),
        "{body}"
    );
    app.finish().await;

    // The rate limit: RATE_LIMIT_MAX requests per window per token, then 429 + Retry-After.
    let mut settings = test_settings();
    settings.rate_limit_max = 3;
    settings.rate_limit_window = std::time::Duration::from_secs(60);
    let app = TestApp::start_with(Backend::Sqlite, settings).await;
    for _ in 0..3 {
        assert_eq!(
            app.get("/api/v1/repos", &app.tokens.acme).await.status(),
            200
        );
    }
    let r = app.get("/api/v1/repos", &app.tokens.acme).await;
    assert_eq!(r.status(), 429);
    let retry: u64 = r.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry));
    let body: Value = r.json().await.unwrap();
    assert_eq!(error_code(&body), "rate_limited");
    // Another token has its own budget.
    assert_eq!(
        app.get("/api/v1/repos", &app.tokens.globex).await.status(),
        200
    );
    app.finish().await;
}

async fn repositories_are_created_only_when_allowed(app: &TestApp) {
    let xml = junit(&[("c", "t", "pass")]);
    // acme does not allow creation on upload.
    let (status, body) = app.ingest("repo=acme/new", &app.tokens.acme, &xml).await;
    assert_eq!((status, error_code(&body)), (404, "not_found"), "{body}");
    // globex does.
    let (status, body) = app
        .ingest("repo=globex/fresh", &app.tokens.globex, &xml)
        .await;
    assert_eq!(status, 201, "{body}");
    let (status, _) = app
        .get_json("/api/v1/repos/globex/fresh", &app.tokens.globex)
        .await;
    assert_eq!(status, 200);
    // Creating never reaches into another organization's repository.
    let (status, _) = app.ingest("repo=acme/shop", &app.tokens.globex, &xml).await;
    assert_eq!(status, 404);
    // The operator's key can create anywhere (the owner becomes an organization).
    let (status, body) = app.ingest("repo=initech/tps", API_KEY, &xml).await;
    assert_eq!(status, 201, "{body}");
    let (_, repos) = app.get_json("/api/v1/repos", API_KEY).await;
    let names: Vec<&str> = repos["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["full_name"].as_str().unwrap())
        .collect();
    assert!(
        names.contains(&"initech/tps")
            && names.contains(&"acme/shop")
            && names.contains(&"globex/secret"),
        "{names:?}"
    );
}

async fn scopes_and_tenants(app: &TestApp) {
    let xml = junit(&[("c", "t", "pass")]);
    // A read-only token may not ingest into its own organization: 403.
    let (status, body) = app
        .ingest("repo=acme/shop", &app.tokens.acme_read, &xml)
        .await;
    assert_eq!((status, error_code(&body)), (403, "forbidden"), "{body}");
    // An ingest-only token may not read: 403 inside its organization.
    let (status, body) = app
        .get_json("/api/v1/repos/acme/shop/tests", &app.tokens.acme_ingest)
        .await;
    assert_eq!((status, error_code(&body)), (403, "forbidden"));
    // Outside its organization everything is 404, exactly as for names that do not exist.
    let (status, _) = app
        .ingest("repo=globex/secret", &app.tokens.acme, &xml)
        .await;
    assert_eq!(status, 404);
    let (status, _) = app
        .ingest("repo=globex/secret", &app.tokens.acme_read, &xml)
        .await;
    assert_eq!(status, 404, "no 403 that would confirm the name");
    let (s1, b1) = app
        .get_json("/api/v1/repos/globex/secret", &app.tokens.acme)
        .await;
    let (s2, b2) = app
        .get_json("/api/v1/repos/globex/nonexistent", &app.tokens.acme)
        .await;
    assert_eq!((s1, s2), (404, 404));
    assert_eq!(
        b1["error"]["message"]
            .as_str()
            .unwrap()
            .replace("secret", "X"),
        b2["error"]["message"]
            .as_str()
            .unwrap()
            .replace("nonexistent", "X")
    );
    // Globex ingests; acme can reach none of it, by name or by id.
    let (_, ingested) = app
        .ingest(
            "repo=globex/secret",
            &app.tokens.globex,
            &junit(&[("g", "hidden", "fail")]),
        )
        .await;
    let run = ingested["run_id"].as_i64().unwrap();
    let test = ingested["failures"][0]["test_id"].as_i64().unwrap();
    for path in [
        "/api/v1/repos/globex/secret".to_owned(),
        "/api/v1/repos/globex/secret/tests".to_owned(),
        format!("/api/v1/repos/globex/secret/tests/{test}"),
        "/api/v1/repos/globex/secret/runs".to_owned(),
        format!("/api/v1/repos/globex/secret/runs/{run}"),
        // Ids of another tenant under one's own repository are not found either.
        format!("/api/v1/repos/acme/shop/tests/{test}"),
        format!("/api/v1/repos/acme/shop/runs/{run}"),
    ] {
        let (status, body) = app.get_json(&path, &app.tokens.acme).await;
        assert_eq!((status, error_code(&body)), (404, "not_found"), "{path}");
    }
    let (_, repos) = app.get_json("/api/v1/repos", &app.tokens.acme).await;
    let names: Vec<&str> = repos["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["full_name"].as_str().unwrap())
        .collect();
    assert_eq!(names, vec!["acme/api", "acme/shop"]);
    // A token limited to one repository sees only that one.
    let (_, repos) = app
        .get_json("/api/v1/repos", &app.tokens.acme_shop_only)
        .await;
    assert_eq!(repos["total"], 1);
    let (status, _) = app
        .get_json("/api/v1/repos/acme/api", &app.tokens.acme_shop_only)
        .await;
    assert_eq!(status, 404);
    let (status, _) = app
        .ingest("repo=acme/api", &app.tokens.acme_shop_only, &xml)
        .await;
    assert_eq!(status, 404);
    let (status, _) = app
        .ingest("repo=acme/shop", &app.tokens.acme_shop_only, &xml)
        .await;
    assert_eq!(status, 201);
}

async fn failures_are_classified(app: &TestApp) {
    // Five runs in which `checkout` fails and passes on retry, on the same commit: flaky.
    for i in 0..5 {
        let xml = junit(&[
            ("shop.Cart", "checkout", "flaky"),
            ("shop.Cart", "total", "pass"),
            ("shop.Cart", "tax", "pass"),
        ]);
        let (status, body) = app
            .ingest(
                &format!("repo=acme/shop&run_id={i}&commit=c{i}&branch=main"),
                &app.tokens.acme,
                &xml,
            )
            .await;
        assert_eq!(status, 201, "{body}");
        assert_eq!(
            body["failed"], 0,
            "a test that passed on retry is not a failure of the run"
        );
    }
    let (_, flaky) = app
        .get_json(
            "/api/v1/repos/acme/shop/tests?status=flaky",
            &app.tokens.acme,
        )
        .await;
    assert_eq!(flaky["items"][0]["name"], "checkout", "{flaky}");
    // Quarantine `tax`.
    let (_, all) = app
        .get_json("/api/v1/repos/acme/shop/tests?q=tax", &app.tokens.acme)
        .await;
    let tax = TestCaseId(all["items"][0]["id"].as_i64().unwrap());
    app.store
        .add_quarantine(
            app.shop,
            &NewQuarantine {
                test: tax,
                state: QuarantineState::Active,
                reason: "flaky on CI".to_owned(),
                owner: Some("@acme/payments".to_owned()),
                created_by: "test".to_owned(),
                created_at: OffsetDateTime::now_utc(),
                expires_at: None,
            },
        )
        .await
        .unwrap();
    // Now all three fail: known flaky, quarantined, new — new ones listed first.
    let xml = junit(&[
        ("shop.Cart", "checkout", "fail"),
        ("shop.Cart", "tax", "fail"),
        ("shop.Cart", "total", "fail"),
    ]);
    let (status, body) = app
        .ingest(
            "repo=acme/shop&run_id=99&commit=c99",
            &app.tokens.acme,
            &xml,
        )
        .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["failed"], 3);
    let verdicts: Vec<(String, String)> = body["failures"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            let key = f["key"].as_str().unwrap();
            let name = key.rsplit(['.', ' ', ':']).next().unwrap().to_owned();
            (name, f["status"].as_str().unwrap().to_owned())
        })
        .collect();
    assert_eq!(
        verdicts,
        vec![
            ("total".to_owned(), "new".to_owned()),
            ("checkout".to_owned(), "known_flaky".to_owned()),
            ("tax".to_owned(), "quarantined".to_owned()),
        ],
        "{body}"
    );
    let (_, quarantined) = app
        .get_json(
            "/api/v1/repos/acme/shop/tests?status=quarantined",
            &app.tokens.acme,
        )
        .await;
    assert_eq!(quarantined["total"], 1);
    assert_eq!(quarantined["items"][0]["quarantined"], true);
}

async fn read_api_lists_filters_and_paginates(app: &TestApp) {
    let cases: Vec<(String, String)> = (0..45)
        .map(|i| ("pkg.Widget".to_owned(), format!("case_{i:02}")))
        .collect();
    let refs: Vec<(&str, &str, &str)> = cases
        .iter()
        .map(|(c, n)| (c.as_str(), n.as_str(), "pass"))
        .collect();
    let (status, _) = app
        .ingest("repo=acme/shop&run_id=r1", &app.tokens.acme, &junit(&refs))
        .await;
    assert_eq!(status, 201);
    let r = app
        .get(
            "/api/v1/repos/acme/shop/tests?sort=name&per_page=20&page=2",
            &app.tokens.acme_read,
        )
        .await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-total-count"], "45");
    let link = r.headers()["link"].to_str().unwrap().to_owned();
    assert!(
        link.contains("sort=name&page=3&per_page=20>; rel=\"next\""),
        "{link}"
    );
    assert!(link.contains("page=1&per_page=20>; rel=\"prev\""), "{link}");
    assert!(link.contains("page=3&per_page=20>; rel=\"last\""), "{link}");
    let page: Value = r.json().await.unwrap();
    assert_eq!(
        (
            page["page"].as_u64(),
            page["per_page"].as_u64(),
            page["total"].as_u64()
        ),
        (Some(2), Some(20), Some(45))
    );
    let names: Vec<&str> = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(names.first(), Some(&"case_20"));
    assert_eq!(names.len(), 20);
    let (_, found) = app
        .get_json("/api/v1/repos/acme/shop/tests?q=CASE_4", &app.tokens.acme)
        .await;
    assert_eq!(found["total"], 5, "case-insensitive search");
    for bad in [
        "status=weird",
        "sort=age",
        "per_page=1000",
        "page=0",
        "colour=red",
    ] {
        let (status, body) = app
            .get_json(
                &format!("/api/v1/repos/acme/shop/tests?{bad}"),
                &app.tokens.acme,
            )
            .await;
        assert_eq!(
            (status, error_code(&body)),
            (422, "invalid_query"),
            "{bad}: {body}"
        );
    }
    let (_, detail) = app
        .get_json("/api/v1/repos/acme/shop", &app.tokens.acme)
        .await;
    assert_eq!(detail["full_name"], "acme/shop");
    assert_eq!(detail["tests"]["total"], 45);
    assert_eq!(detail["latest_run"]["workflow_run_id"], "r1");
}

async fn test_and_run_details(app: &TestApp) {
    for i in 0..3 {
        let outcome = if i == 1 { "fail" } else { "pass" };
        let xml = junit(&[
            ("shop.Pay", "refund", outcome),
            ("shop.Pay", "charge", "pass"),
        ]);
        let (status, _) = app
            .ingest(
                &format!("repo=acme/shop&run_id={i}&started_at=2026-11-2{i}T10:00:00Z"),
                &app.tokens.acme,
                &xml,
            )
            .await;
        assert_eq!(status, 201);
    }
    let (_, tests) = app
        .get_json("/api/v1/repos/acme/shop/tests?q=refund", &app.tokens.acme)
        .await;
    let id = tests["items"][0]["id"].as_i64().unwrap();
    let (status, test) = app
        .get_json(
            &format!("/api/v1/repos/acme/shop/tests/{id}"),
            &app.tokens.acme,
        )
        .await;
    assert_eq!(status, 200, "{test}");
    assert_eq!(test["name"], "refund");
    let executions = test["recent_executions"].as_array().unwrap();
    assert_eq!(executions.len(), 3);
    assert_eq!(executions[0]["workflow_run_id"], "2", "newest first");
    assert_eq!(executions[1]["outcome"], "failed");
    assert_eq!(executions[1]["message"], "expected 200, got 503");
    assert_eq!(test["signatures"].as_array().unwrap().len(), 1);
    assert_eq!(test["signatures"][0]["count"], 1);
    assert!(test["evidence"].is_array());
    assert_eq!(test["executions"], 3);
    assert_eq!(test["failures"], 1);
    let (status, _) = app
        .get_json("/api/v1/repos/acme/shop/tests/999999", &app.tokens.acme)
        .await;
    assert_eq!(status, 404);
    let (status, _) = app
        .get_json("/api/v1/repos/acme/shop/tests/abc", &app.tokens.acme)
        .await;
    assert_eq!(status, 404);

    let (_, runs) = app
        .get_json(
            "/api/v1/repos/acme/shop/runs?per_page=1&page=2",
            &app.tokens.acme,
        )
        .await;
    assert_eq!(runs["total"], 3);
    let run = runs["items"][0]["id"].as_i64().unwrap();
    assert_eq!(runs["items"][0]["workflow_run_id"], "1");
    assert_eq!(runs["items"][0]["failed"], 1);
    let (status, detail) = app
        .get_json(
            &format!("/api/v1/repos/acme/shop/runs/{run}"),
            &app.tokens.acme,
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(detail["failures"].as_array().unwrap().len(), 1);
    assert_eq!(detail["failures"][0]["outcome"], "failed");
    assert!(
        detail["failures"][0]["key"]
            .as_str()
            .unwrap()
            .contains("refund")
    );
}

async fn quarantine_list(app: &TestApp) {
    // Tests with a file (pytest-style) and without, in acme/shop; one in acme/api.
    let xml = r#"<?xml version="1.0"?>
<testsuite name="pytest">
  <testcase classname="tests.test_cart.TestCart" name="test_total[1-2]" file="tests/test_cart.py"><failure message="boom"/></testcase>
  <testcase classname="shop.Pay" name="refund"/>
  <testcase classname="shop.Pay" name="charge"/>
  <testcase classname="shop.Pay" name="void"/>
</testsuite>"#;
    let (status, body) = app
        .ingest("repo=acme/shop&run_id=q1", &app.tokens.acme, xml)
        .await;
    assert_eq!(status, 201, "{body}");
    let (status, body) = app
        .ingest(
            "repo=acme/api&run_id=q1",
            &app.tokens.acme,
            &junit(&[("api.X", "other", "pass")]),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let id = |path: &'static str| async move {
        let (_, tests) = app.get_json(path, &app.tokens.acme).await;
        TestCaseId(tests["items"][0]["id"].as_i64().unwrap())
    };
    let total = id("/api/v1/repos/acme/shop/tests?q=test_total").await;
    let refund = id("/api/v1/repos/acme/shop/tests?q=refund").await;
    let charge = id("/api/v1/repos/acme/shop/tests?q=charge").await;
    let other = id("/api/v1/repos/acme/api/tests").await;
    let now = OffsetDateTime::now_utc();
    let (_, api_repo) = app
        .get_json("/api/v1/repos/acme/api", &app.tokens.acme)
        .await;
    let api_repo = flakeguard_store::RepoId(api_repo["id"].as_i64().unwrap());
    for (repo, test, state, owner, expires, at) in [
        (
            app.shop,
            total,
            QuarantineState::Active,
            Some("@acme/cart"),
            Some(now + time::Duration::days(30)),
            now - time::Duration::minutes(3),
        ),
        (
            app.shop,
            refund,
            QuarantineState::Proposed,
            None,
            None,
            now - time::Duration::minutes(2),
        ),
        // Past its expiry, not yet marked expired: no longer listed.
        (
            app.shop,
            charge,
            QuarantineState::Active,
            None,
            Some(now - time::Duration::hours(1)),
            now - time::Duration::minutes(1),
        ),
        (api_repo, other, QuarantineState::Active, None, None, now),
    ] {
        app.store
            .add_quarantine(
                repo,
                &NewQuarantine {
                    test,
                    state,
                    reason: format!("{test} is flaky"),
                    owner: owner.map(str::to_owned),
                    created_by: "token:acme admin".to_owned(),
                    created_at: at,
                    expires_at: expires,
                },
            )
            .await
            .unwrap();
    }

    let r = app
        .get("/api/v1/repos/acme/shop/quarantine", &app.tokens.acme_read)
        .await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-total-count"], "2");
    let list: Value = r.json().await.unwrap();
    assert_eq!(
        (
            list["page"].as_u64(),
            list["per_page"].as_u64(),
            list["total"].as_u64()
        ),
        (Some(1), Some(30), Some(2))
    );
    let first = &list["items"][0];
    assert_eq!(first["test_id"], total.0, "oldest first: {list}");
    assert_eq!(first["state"], "active");
    assert_eq!(first["scope"], "tests/test_cart.py");
    assert_eq!(first["classname"], "tests.test_cart.TestCart");
    assert_eq!(first["name"], "test_total");
    assert_eq!(first["variant"], "1-2");
    assert_eq!(first["file"], "tests/test_cart.py");
    assert_eq!(
        first["key"],
        "tests/test_cart.py › tests.test_cart.TestCart › test_total[1-2]"
    );
    assert_eq!(first["owner"], "@acme/cart");
    assert_eq!(first["reason"], format!("{total} is flaky"));
    assert_eq!(first["created_by"], "token:acme admin");
    for field in ["created_at", "expires_at"] {
        let at = first[field].as_str().unwrap();
        assert!(
            OffsetDateTime::parse(at, &time::format_description::well_known::Rfc3339).is_ok(),
            "{field}: {at}"
        );
    }
    let second = &list["items"][1];
    assert_eq!(
        (second["name"].as_str(), second["state"].as_str()),
        (Some("refund"), Some("proposed"))
    );
    assert!(
        second["file"].is_null() && second["variant"].is_null() && second["expires_at"].is_null(),
        "{second}"
    );
    assert!(first["id"].as_i64().is_some());

    // Filtered by state, and paginated.
    let (_, active) = app
        .get_json(
            "/api/v1/repos/acme/shop/quarantine?state=active",
            &app.tokens.acme,
        )
        .await;
    assert_eq!(active["total"], 1);
    assert_eq!(active["items"][0]["name"], "test_total");
    let (_, proposed) = app
        .get_json(
            "/api/v1/repos/acme/shop/quarantine?state=proposed",
            &app.tokens.acme,
        )
        .await;
    assert_eq!(proposed["items"][0]["name"], "refund");
    let r = app
        .get(
            "/api/v1/repos/acme/shop/quarantine?per_page=1&page=2",
            &app.tokens.acme,
        )
        .await;
    assert!(
        r.headers()["link"]
            .to_str()
            .unwrap()
            .contains("rel=\"prev\"")
    );
    let page2: Value = r.json().await.unwrap();
    assert_eq!(page2["items"].as_array().unwrap().len(), 1);
    assert_eq!(page2["items"][0]["name"], "refund");
    // Each repository has its own list.
    let (_, api_list) = app
        .get_json("/api/v1/repos/acme/api/quarantine", &app.tokens.acme)
        .await;
    assert_eq!(api_list["total"], 1);
    assert_eq!(api_list["items"][0]["name"], "other");
    let (_, empty) = app
        .get_json("/api/v1/repos/globex/secret/quarantine", &app.tokens.globex)
        .await;
    assert_eq!(empty["items"], serde_json::json!([]));

    for bad in ["state=expired", "per_page=0", "colour=red"] {
        let (status, body) = app
            .get_json(
                &format!("/api/v1/repos/acme/shop/quarantine?{bad}"),
                &app.tokens.acme,
            )
            .await;
        assert_eq!(
            (status, error_code(&body)),
            (422, "invalid_query"),
            "{bad}: {body}"
        );
    }
    // Tenancy: another organization's repository does not exist; the read scope is needed.
    let (status, body) = app
        .get_json("/api/v1/repos/acme/shop/quarantine", &app.tokens.globex)
        .await;
    assert_eq!((status, error_code(&body)), (404, "not_found"));
    let (status, body) = app
        .get_json(
            "/api/v1/repos/acme/api/quarantine",
            &app.tokens.acme_shop_only,
        )
        .await;
    assert_eq!((status, error_code(&body)), (404, "not_found"));
    let (status, body) = app
        .get_json(
            "/api/v1/repos/acme/shop/quarantine",
            &app.tokens.acme_ingest,
        )
        .await;
    assert_eq!((status, error_code(&body)), (403, "forbidden"));
    let r = app
        .http
        .get(app.url("/api/v1/repos/acme/shop/quarantine"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let (status, _) = app
        .get_json("/api/v1/repos/acme/shop/quarantine", API_KEY)
        .await;
    assert_eq!(status, 200, "the operator sees every repository");
}

async fn quarantine_lifecycle(app: &TestApp) {
    use reqwest::Method;
    use serde_json::json;

    let (status, body) = app
        .ingest(
            "repo=acme/shop&run_id=l1",
            &app.tokens.acme,
            &junit(&[
                ("shop.Pay", "refund", "fail"),
                ("shop.Pay", "charge", "pass"),
            ]),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let (status, body) = app
        .ingest(
            "repo=acme/api&run_id=l1",
            &app.tokens.acme,
            &junit(&[("api.X", "other", "pass")]),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let id = |path: &'static str| async move {
        let (_, tests) = app.get_json(path, &app.tokens.acme).await;
        tests["items"][0]["id"].as_i64().unwrap()
    };
    let refund = id("/api/v1/repos/acme/shop/tests?q=refund").await;
    let charge = id("/api/v1/repos/acme/shop/tests?q=charge").await;
    let other = id("/api/v1/repos/acme/api/tests").await;
    let list = "/api/v1/repos/acme/shop/quarantine";
    let post = |token: &'static str, body: Value| async move {
        let token = match token {
            "acme" => &app.tokens.acme,
            "read" => &app.tokens.acme_read,
            "globex" => &app.tokens.globex,
            _ => API_KEY,
        };
        app.send_json(Method::POST, list, token, Some(&body)).await
    };

    // Created: 201 with the entry, active by default, expiring in 30 days.
    let before = OffsetDateTime::now_utc();
    let (status, created) = post(
        "acme",
        json!({"test_id": refund, "reason": "fails one run in ten", "owner": "@acme/payments"}),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["test_id"], refund);
    assert_eq!(created["name"], "refund");
    assert_eq!(created["state"], "active");
    assert_eq!(created["reason"], "fails one run in ten");
    assert_eq!(created["owner"], "@acme/payments");
    assert!(created["released_at"].is_null());
    let creator = created["created_by"].as_str().unwrap().to_owned();
    assert!(creator.starts_with("token:"), "{creator}");
    let expires = OffsetDateTime::parse(
        created["expires_at"].as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    let days = (expires - before).whole_hours();
    assert!((30 * 24 - 1..=30 * 24).contains(&days), "{created}");

    // Listed; a second live one for the test is a conflict.
    let (_, listed) = app.get_json(list, &app.tokens.acme_read).await;
    assert_eq!(listed["total"], 1);
    assert_eq!(listed["items"][0]["id"], created["id"]);
    let (status, body) = post("acme", json!({"test_id": refund, "reason": "again"})).await;
    assert_eq!((status, error_code(&body)), (409, "conflict"), "{body}");

    // A proposed one with its own expiry, by the operator.
    let (status, proposed) = post(
        "operator",
        json!({"test_id": charge, "reason": "r", "expires_in_days": 2, "state": "proposed"}),
    )
    .await;
    assert_eq!(status, 201, "{proposed}");
    assert_eq!(
        (proposed["state"].as_str(), proposed["created_by"].as_str()),
        (Some("proposed"), Some("operator"))
    );

    // Bad input names the field; unknown tests and other repositories' tests are 404.
    for (body, field) in [
        (json!({"reason": "r"}), "test_id"),
        (json!({"test_id": charge, "reason": ""}), "reason"),
        (
            json!({"test_id": charge, "reason": "r", "expires_in_days": 0}),
            "expires_in_days",
        ),
        (
            json!({"test_id": charge, "reason": "r", "state": "released"}),
            "state",
        ),
        (
            json!({"test_id": charge, "reason": "r", "colour": 1}),
            "colour",
        ),
    ] {
        let (status, answer) = post("acme", body.clone()).await;
        assert_eq!(
            (status, error_code(&answer)),
            (422, "invalid_body"),
            "{body}: {answer}"
        );
        let message = answer["error"]["message"].as_str().unwrap();
        assert!(message.contains(field), "{field} in {message}");
    }
    for test in [other, i64::MAX] {
        let (status, body) = post("acme", json!({"test_id": test, "reason": "r"})).await;
        assert_eq!((status, error_code(&body)), (404, "not_found"), "{body}");
    }

    // Tenancy and scope: another organization does not see the repository; writing needs admin.
    let (status, body) = post("globex", json!({"test_id": refund, "reason": "r"})).await;
    assert_eq!((status, error_code(&body)), (404, "not_found"));
    let (status, body) = post("read", json!({"test_id": refund, "reason": "r"})).await;
    assert_eq!((status, error_code(&body)), (403, "forbidden"));
    let release = |test: i64| format!("/api/v1/repos/acme/shop/quarantine/{test}");
    let (status, body) = app
        .send_json(Method::DELETE, &release(refund), &app.tokens.globex, None)
        .await;
    assert_eq!((status, error_code(&body)), (404, "not_found"));
    let (status, body) = app
        .send_json(
            Method::DELETE,
            &release(refund),
            &app.tokens.acme_read,
            None,
        )
        .await;
    assert_eq!((status, error_code(&body)), (403, "forbidden"));
    let (status, body) = app
        .send_json(
            Method::DELETE,
            &format!("/api/v1/repos/acme/api/quarantine/{other}"),
            &app.tokens.acme_shop_only,
            None,
        )
        .await;
    assert_eq!((status, error_code(&body)), (404, "not_found"));

    // Released: 200 with the entry, gone from the list; a second release finds nothing.
    let (status, released) = app
        .send_json(Method::DELETE, &release(refund), &app.tokens.acme, None)
        .await;
    assert_eq!(status, 200, "{released}");
    assert_eq!(
        (released["id"].clone(), released["state"].as_str()),
        (created["id"].clone(), Some("released"))
    );
    assert!(released["released_at"].is_string());
    assert_eq!(released["released_by"], creator.as_str());
    for path in [
        release(refund),
        release(other),
        "/api/v1/repos/acme/shop/quarantine/x".to_owned(),
    ] {
        let (status, body) = app
            .send_json(Method::DELETE, &path, &app.tokens.acme, None)
            .await;
        assert_eq!((status, error_code(&body)), (404, "not_found"), "{path}");
    }
    let (status, _) = app
        .send_json(Method::DELETE, &release(charge), API_KEY, None)
        .await;
    assert_eq!(status, 200);
    let (_, listed) = app.get_json(list, &app.tokens.acme).await;
    assert_eq!(listed["total"], 0, "{listed}");

    // Released, the test may be quarantined again.
    let (status, body) = post("acme", json!({"test_id": refund, "reason": "still flaky"})).await;
    assert_eq!(status, 201, "{body}");

    // Every change is in the audit log, by the principal that made it.
    let audit = app.store.list_audit(app.acme, 100).await.unwrap();
    let changes: Vec<(&str, &str, &str)> = audit
        .iter()
        .filter(|e| e.action.starts_with("quarantine."))
        .map(|e| (e.action.as_str(), e.actor.as_str(), e.target.as_str()))
        .rev()
        .collect();
    let target = |test: i64| format!("acme/shop#test:{test}");
    let (refund_target, charge_target) = (target(refund), target(charge));
    assert_eq!(
        changes,
        vec![
            (
                "quarantine.created",
                creator.as_str(),
                refund_target.as_str()
            ),
            ("quarantine.created", "operator", charge_target.as_str()),
            (
                "quarantine.released",
                creator.as_str(),
                refund_target.as_str()
            ),
            ("quarantine.released", "operator", charge_target.as_str()),
            (
                "quarantine.created",
                creator.as_str(),
                refund_target.as_str()
            ),
        ]
    );
}

async fn openapi_and_swagger_ui(app: &TestApp) {
    let doc: Value = app
        .http
        .get(app.url("/api/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(doc["openapi"].as_str().unwrap().starts_with('3'));
    for path in [
        "/health",
        "/api/v1/ingest",
        "/api/v1/repos",
        "/api/v1/repos/{owner}/{repo}/tests",
        "/api/v1/repos/{owner}/{repo}/tests/{test_id}",
        "/api/v1/repos/{owner}/{repo}/runs/{run_id}",
        "/api/v1/repos/{owner}/{repo}/quarantine",
        "/api/v1/repos/{owner}/{repo}/quarantine/{test_id}",
        "/api/v1/repos/{owner}/{repo}/quarantine/plan",
        "/api/v1/repos/{owner}/{repo}/policy",
        "/api/v1/repos/{owner}/{repo}/codeowners",
    ] {
        assert!(
            doc["paths"][path].is_object(),
            "{path} missing from the OpenAPI document"
        );
    }
    let page = app
        .http
        .get(app.url("/documentation/"))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    assert!(html.contains("swagger"), "{html}");
    assert!(
        doc["paths"]["/api/v1/repos/{owner}/{repo}/quarantine"]["post"].is_object(),
        "POST quarantine missing from the OpenAPI document"
    );
    assert!(
        doc["paths"]["/api/v1/repos/{owner}/{repo}/quarantine/{test_id}"]["delete"].is_object()
    );
    assert!(!html.contains("cdn."), "nothing from a CDN");
    let js = app
        .http
        .get(app.url("/documentation/swagger-ui-bundle.js"))
        .send()
        .await
        .unwrap();
    assert_eq!(js.status(), 200, "Swagger UI is served from the binary");
}

/// With the queue unreachable, uploads are still stored and answered (scoring deferred to the
/// outbox sweep), readiness says "degraded" (200: keep sending uploads here) and the worker's
/// health says "degraded" with 503.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_queue_degrades_but_uploads_are_kept() {
    // Nothing listens on port 1: every connection is refused.
    let queue = flakeguard_queue::RedisQueue::lazy("redis://127.0.0.1:1", "fg-nowhere").unwrap();
    let app = TestApp::start_custom(
        Backend::Sqlite,
        test_settings(),
        Some(std::sync::Arc::new(queue)),
    )
    .await;
    let xml = junit(&[("c", "a", "pass"), ("c", "b", "fail")]);
    let response = app
        .http
        .post(app.url("/api/v1/ingest?repo=acme/shop&run_id=outage"))
        .bearer_auth(&app.tokens.acme)
        .header("content-type", "application/xml")
        .body(xml)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["scoring"], "deferred", "{body}");
    let far = OffsetDateTime::now_utc() + time::Duration::days(1);
    assert_eq!(app.store.unscored_runs(far, 10).await.unwrap().len(), 1);

    let ready = app.http.get(app.url("/health/ready")).send().await.unwrap();
    assert_eq!(ready.status(), 200);
    let ready: Value = ready.json().await.unwrap();
    assert_eq!(ready["status"], "degraded", "{ready}");
    assert_eq!(ready["checks"]["database"]["status"], "ok");
    assert_eq!(ready["checks"]["queue"]["status"], "unavailable");
    assert!(
        ready["checks"]["queue"]["reason"]
            .as_str()
            .unwrap()
            .contains("127.0.0.1:1"),
        "{ready}"
    );
    let worker = app
        .http
        .get(format!("{}/health", app.worker))
        .send()
        .await
        .unwrap();
    assert_eq!(worker.status(), 503);
    let worker: Value = worker.json().await.unwrap();
    assert_eq!(worker["status"], "degraded", "{worker}");
    assert!(
        worker["reason"].as_str().unwrap().contains("queue"),
        "{worker}"
    );
    app.finish().await;
}

/// The worker's `/metrics` passes Prometheus' own linter (`promtool check metrics`), with job
/// metrics present after a job ran.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_pass_promtool() {
    let app = TestApp::start(Backend::Sqlite).await;
    let (status, _) = app
        .ingest(
            "repo=acme/shop&run_id=m1",
            &app.tokens.acme,
            &junit(&[("c", "a", "pass")]),
        )
        .await;
    assert_eq!(status, 201);
    let text = app
        .http
        .get(format!("{}/metrics", app.worker))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(text.contains("flakeguard_jobs_total{"), "{text}");
    assert!(
        text.contains("flakeguard_job_duration_seconds_bucket{"),
        "{text}"
    );
    let mut promtool = std::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("promtool must be installed (Debian package `prometheus`; .ci/run installs it)");
    promtool
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = promtool.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "promtool: {}{}\n{text}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    app.finish().await;
}

/// When the database goes away, readiness says so (503 with the reason) and the API answers 503
/// rather than hanging; liveness still answers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readiness_reports_a_lost_database() {
    let app = TestApp::start(Backend::Postgres).await;
    assert_eq!(
        app.http
            .get(app.url("/health/ready"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    app.drop_database().await;
    let started = std::time::Instant::now();
    let r = app.http.get(app.url("/health/ready")).send().await.unwrap();
    assert_eq!(r.status(), 503);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["status"], "unavailable");
    assert!(
        body["reason"]
            .as_str()
            .unwrap()
            .starts_with("database (postgres)"),
        "{body}"
    );
    assert_eq!(
        app.http
            .get(app.url("/health/live"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    assert_eq!(
        app.http
            .get(app.url("/health"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    let r = app.get("/api/v1/repos", &app.tokens.acme).await;
    assert_eq!(
        r.status(),
        503,
        "a token cannot be checked without the database"
    );
    assert!(r.headers().contains_key("retry-after"));
    assert!(
        started.elapsed() < std::time::Duration::from_secs(30),
        "answers, does not hang"
    );
    app.finish().await;
}

/// Sends a raw body with a content type; returns the status and the JSON answer.
async fn send_text(
    app: &TestApp,
    method: reqwest::Method,
    path: &str,
    token: &str,
    content_type: &str,
    body: &str,
) -> (u16, Value) {
    let response = app
        .http
        .request(method, app.url(path))
        .bearer_auth(token)
        .header("content-type", content_type)
        .body(body.to_owned())
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}")),
    )
}

async fn policy_is_read_validated_and_replaced(app: &TestApp) {
    use reqwest::Method;

    let path = "/api/v1/repos/acme/shop/policy";
    // Nothing stored: the defaults, every key.
    let (status, body) = app.get_json(path, &app.tokens.acme_read).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["source"], "default");
    assert!(body["updated_at"].is_null() && body["updated_by"].is_null() && body["text"].is_null());
    let settings = &body["settings"];
    assert_eq!(settings["flaky_threshold"], 0.6);
    assert_eq!(settings["lookback_days"], 7);
    assert_eq!(settings["auto_quarantine_enabled"], false);
    assert_eq!(settings["quarantine_duration_days"], 30);
    assert_eq!(settings["release_after_clean_runs"], 10);
    assert_eq!(settings["team_overrides"], serde_json::json!({}));
    assert!(settings["default_branch"].is_null());

    // Every problem at once, with its key path and position; nothing stored.
    let bad =
        "flaky_threshold: 1.5\nwarn_treshold: 0.2\nteam_overrides:\n  payments:\n    colour: red\n";
    let (status, body) = send_text(
        app,
        Method::PUT,
        path,
        &app.tokens.acme,
        "application/yaml",
        bad,
    )
    .await;
    assert_eq!(
        (status, error_code(&body)),
        (422, "invalid_policy"),
        "{body}"
    );
    let problems: Vec<(String, i64)> = body["error"]["problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["path"].as_str().unwrap().to_owned(),
                p["line"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        problems,
        vec![
            ("flaky_threshold".to_owned(), 1),
            ("warn_treshold".to_owned(), 2),
            ("team_overrides.payments.colour".to_owned(), 5),
        ]
    );
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("2:1: warn_treshold: unknown key"),
        "{body}"
    );
    assert_eq!(
        app.get_json(path, &app.tokens.acme).await.1["source"],
        "default"
    );

    // Scope and tenancy.
    let good = "# stricter for now\nflaky_threshold: 0.8\nauto_quarantine_enabled: true\n";
    let (status, body) = send_text(
        app,
        Method::PUT,
        path,
        &app.tokens.acme_read,
        "application/yaml",
        good,
    )
    .await;
    assert_eq!((status, error_code(&body)), (403, "forbidden"));
    let (status, body) = send_text(
        app,
        Method::PUT,
        path,
        &app.tokens.globex,
        "application/yaml",
        good,
    )
    .await;
    assert_eq!((status, error_code(&body)), (404, "not_found"));
    let (status, _) = app
        .get_json("/api/v1/repos/acme/shop/policy", &app.tokens.globex)
        .await;
    assert_eq!(status, 404);

    // Stored as written; the answer is the effective settings.
    let (status, body) = send_text(
        app,
        Method::PUT,
        path,
        &app.tokens.acme,
        "application/yaml",
        good,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["source"], "api");
    assert_eq!(body["text"], good);
    assert_eq!(body["settings"]["flaky_threshold"], 0.8);
    assert_eq!(body["settings"]["warn_threshold"], 0.3, "defaults filled");
    assert_eq!(body["settings"]["auto_quarantine_enabled"], true);
    let updater = body["updated_by"].as_str().unwrap().to_owned();
    assert!(updater.starts_with("token:"), "{updater}");
    assert!(body["updated_at"].is_string());
    let (_, read) = app.get_json(path, &app.tokens.acme_read).await;
    assert_eq!(read["settings"], body["settings"]);
    assert_eq!(read["text"], good);
    let (_, other) = app
        .get_json("/api/v1/repos/acme/api/policy", &app.tokens.acme)
        .await;
    assert_eq!(other["source"], "default", "per repository");

    // The same settings as JSON; a JSON mistake names its key.
    let (status, body) = app
        .send_json(
            Method::PUT,
            path,
            API_KEY,
            Some(&serde_json::json!({
                "min_occurrences": 8,
                "team_overrides": {"payments": {"paths": ["tests/pay/**"], "flaky_threshold": 0.9}}
            })),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["updated_by"], "operator");
    assert_eq!(body["settings"]["min_occurrences"], 8);
    assert_eq!(
        body["settings"]["flaky_threshold"], 0.6,
        "a PUT replaces the whole policy"
    );
    assert_eq!(
        body["settings"]["team_overrides"]["payments"]["flaky_threshold"],
        0.9
    );
    assert!(
        body["text"]
            .as_str()
            .unwrap()
            .contains("min_occurrences: 8"),
        "{body}"
    );
    let (status, body) = app
        .send_json(
            Method::PUT,
            path,
            API_KEY,
            Some(&serde_json::json!({"lookback_days": "two weeks", "colour": 1})),
        )
        .await;
    assert_eq!(
        (status, error_code(&body)),
        (422, "invalid_policy"),
        "{body}"
    );
    let paths: Vec<&str> = body["error"]["problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["path"].as_str().unwrap())
        .collect();
    assert_eq!(paths.len(), 2, "{body}");
    assert!(
        paths.contains(&"lookback_days") && paths.contains(&"colour"),
        "{body}"
    );
    let (status, body) = app
        .send_json(Method::PUT, path, API_KEY, Some(&serde_json::json!([1])))
        .await;
    assert_eq!((status, error_code(&body)), (422, "invalid_body"), "{body}");
    let (status, body) =
        send_text(app, Method::PUT, path, API_KEY, "application/xml", "<x/>").await;
    assert_eq!(
        (status, error_code(&body)),
        (415, "unsupported_media_type"),
        "{body}"
    );
    assert_eq!(
        app.get_json(path, &app.tokens.acme).await.1["settings"]["min_occurrences"],
        8
    );

    // Each stored change is audited, by who made it.
    let audit = app.store.list_audit(app.acme, 100).await.unwrap();
    let changes: Vec<(&str, &str, &str)> = audit
        .iter()
        .filter(|e| e.action == "policy.updated")
        .map(|e| (e.action.as_str(), e.actor.as_str(), e.target.as_str()))
        .rev()
        .collect();
    assert_eq!(
        changes,
        vec![
            ("policy.updated", updater.as_str(), "acme/shop"),
            ("policy.updated", "operator", "acme/shop"),
        ]
    );
}

async fn quarantine_plan_and_codeowners(app: &TestApp) {
    use reqwest::Method;
    use serde_json::json;

    // `refund` passes only on retry in three of six runs; `charge` always passes.
    for i in 0..6 {
        let refund = if i % 2 == 0 { "flaky" } else { "pass" };
        let (status, body) = app
            .ingest(
                &format!("repo=acme/shop&run_id=plan{i}"),
                &app.tokens.acme,
                &junit(&[
                    ("tests/test_pay.py", "refund", refund),
                    ("tests/test_pay.py", "charge", "pass"),
                ]),
            )
            .await;
        assert_eq!(status, 201, "{body}");
    }
    let plan = "/api/v1/repos/acme/shop/quarantine/plan";
    let ask = |body: Option<Value>| async move {
        app.send_json(Method::POST, plan, &app.tokens.acme_read, body.as_ref())
            .await
    };
    let (status, body) = ask(None).await;
    assert_eq!(status, 200, "{body}");
    let candidates = body["candidates"].as_array().unwrap();
    assert_eq!(candidates.len(), 1, "{body}");
    let refund = &candidates[0];
    assert!(
        refund["key"].as_str().unwrap().ends_with("refund"),
        "{refund}"
    );
    assert_eq!(refund["status"], "flaky");
    assert_eq!(refund["recommendation"], "quarantine");
    assert_eq!(refund["already_quarantined"], false);
    assert!(refund["owner"].is_null());
    assert!(refund["probability"].as_f64().unwrap() >= 0.6);
    let reasons = refund["reasons"].as_array().unwrap();
    assert!(
        reasons
            .iter()
            .any(|r| r.as_str().unwrap().contains("flaky_threshold 0.6")),
        "{refund}"
    );
    assert!(
        reasons
            .iter()
            .any(|r| r.as_str().unwrap().contains("retry evidence")),
        "{refund}"
    );
    assert_eq!(body["policy"]["flaky_threshold"], 0.6);
    let refund_id = refund["test_id"].as_i64().unwrap();

    // Overrides: each replaces its key for the plan only; bad ones are named.
    let (_, body) = ask(Some(json!({"policy": {"min_occurrences": 100}}))).await;
    assert_eq!(body["candidates"], json!([]), "{body}");
    assert_eq!(body["policy"]["min_occurrences"], 100);
    let (_, body) = ask(Some(json!({"policy": {"exempted_tests": ["refund"]}}))).await;
    assert_eq!(body["candidates"], json!([]), "{body}");
    let (_, body) = ask(Some(json!({"lookback_days": 30}))).await;
    assert_eq!(body["candidates"].as_array().unwrap().len(), 1);
    assert_eq!(body["policy"]["lookback_days"], 30);
    for bad in [
        json!({"lookback_days": 0}),
        json!({"colour": 1}),
        json!({"policy": {"flaky_threshold": 2}}),
    ] {
        let (status, body) = ask(Some(bad.clone())).await;
        assert_eq!(status, 422, "{bad}: {body}");
    }
    assert_eq!(
        app.get_json("/api/v1/repos/acme/shop/policy", &app.tokens.acme)
            .await
            .1["source"],
        "default"
    );

    // CODEOWNERS through the API: admin only; skipped lines listed with their numbers.
    let codeowners = "/api/v1/repos/acme/shop/codeowners";
    let text = "* @acme/everyone\ntests/ @acme/qa @alice\nsrc/[ab].rs @x\n";
    let (status, body) = send_text(
        app,
        Method::PUT,
        codeowners,
        &app.tokens.acme_read,
        "text/plain",
        text,
    )
    .await;
    assert_eq!((status, error_code(&body)), (403, "forbidden"));
    let (status, body) = send_text(
        app,
        Method::PUT,
        codeowners,
        &app.tokens.acme,
        "text/plain",
        text,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        (body["rules"].as_i64(), body["source"].as_str()),
        (Some(2), Some("api"))
    );
    assert_eq!(body["errors"].as_array().unwrap().len(), 1);
    assert_eq!(body["errors"][0]["line"], 3);
    let (_, policy) = app
        .get_json("/api/v1/repos/acme/shop/policy", &app.tokens.acme)
        .await;
    assert_eq!(policy["codeowners"]["rules"], 2);
    let (_, body) = ask(None).await;
    assert_eq!(body["candidates"][0]["owner"], "@acme/qa", "{body}");

    // The plan changes nothing; a quarantine without an owner takes CODEOWNERS's.
    assert!(
        app.store
            .live_quarantines(app.shop)
            .await
            .unwrap()
            .is_empty()
    );
    let (status, created) = app
        .send_json(
            Method::POST,
            "/api/v1/repos/acme/shop/quarantine",
            &app.tokens.acme,
            Some(&json!({"test_id": refund_id, "reason": "flaky"})),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["owner"], "@acme/qa");
    let (_, body) = ask(None).await;
    assert_eq!(body["candidates"][0]["already_quarantined"], true);
    let audit = app.store.list_audit(app.acme, 100).await.unwrap();
    assert!(
        audit
            .iter()
            .any(|e| e.action == "codeowners.updated" && e.target == "acme/shop")
    );
}
