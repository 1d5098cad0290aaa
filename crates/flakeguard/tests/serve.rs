//! `flakeguard serve` as a process: zero configuration, the runbook's variables and their
//! one-line errors, `.env`, SIGTERM draining an in-flight upload; and `flakeguard token`.

mod support;

use std::io::Write;
use std::net::TcpStream;
use std::path::Path;
use std::time::Duration;

use support::{API_KEY, Server, get, http, read_response, run, scratch};

#[test]
fn zero_configuration_serves_the_health_contracts_and_sigterm_drains() {
    let dir = scratch("serve-zero-config");
    let server = Server::start(&dir, &[("API_KEY", API_KEY)]);
    assert!(
        dir.join("data/flakeguard.db").exists(),
        "SQLite in ./data by default"
    );

    let (status, body) = get(server.api(), "/health");
    assert_eq!(status, 200);
    assert!(
        body.contains("\"status\":\"ok\"") && body.contains("\"timestamp\":\""),
        "{body}"
    );
    let (status, body) = get(server.api(), "/health/ready");
    assert_eq!(status, 200, "{body}");
    let (status, body) = get(server.worker(), "/health");
    assert_eq!(status, 200, "{body}");
    // The runbook's check matches the text: status first, then the queues with their counts.
    assert!(
        body.starts_with("{\"status\":\"ok\",\"queues\":[{\"name\":\"score_tests\",\"pending\":"),
        "{body}"
    );
    for queue in ["process_webhook", "notify", "maintenance"] {
        assert!(body.contains(&format!("{{\"name\":\"{queue}\",")), "{body}");
    }
    let (status, metrics) = get(server.worker(), "/metrics");
    assert_eq!(status, 200);
    assert!(metrics.contains("flakeguard_queue_jobs"), "{metrics}");
    let (status, body) = get(server.web(), "/health");
    assert_eq!((status, body.as_str()), (200, "OK"));

    // An upload is half-sent when SIGTERM arrives: it is still answered, then the server exits 0.
    let xml = "<testsuite name=\"s\"><testcase classname=\"c\" name=\"t\"/></testsuite>";
    let mut stream = TcpStream::connect(server.api()).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let head = format!(
        "POST /api/v1/ingest?repo=local/app&run_id=1 HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer {API_KEY}\r\n\
         Content-Type: application/xml\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        xml.len()
    );
    stream.write_all(head.as_bytes()).unwrap();
    stream.write_all(&xml.as_bytes()[..10]).unwrap();
    std::thread::sleep(Duration::from_millis(300));
    server.terminate();
    std::thread::sleep(Duration::from_millis(300));
    stream.write_all(&xml.as_bytes()[10..]).unwrap();
    let (status, body) = read_response(&mut stream);
    assert_eq!(status, 201, "the in-flight request completes: {body}");
    let api = server.api().to_owned();
    let (code, lines) = server.wait();
    assert_eq!(code, Some(0), "{lines:?}");
    assert!(
        lines.iter().any(|l| l.contains("shutdown requested")),
        "{lines:?}"
    );
    assert!(
        TcpStream::connect(&api).is_err(),
        "nothing listens once stopped"
    );
}

#[test]
fn bad_settings_fail_with_one_line_naming_the_variable() {
    let dir = scratch("serve-bad-settings");
    for (env, expected) in [
        (
            vec![("PORT", "eighty")],
            "invalid PORT=\"eighty\": expected a port number from 0 to 65535",
        ),
        (
            vec![("LOG_LEVEL", "chatty")],
            "invalid LOG_LEVEL=\"chatty\"",
        ),
        (
            vec![("RATE_LIMIT_WINDOW_MS", "soon")],
            "invalid RATE_LIMIT_WINDOW_MS=\"soon\"",
        ),
        (
            vec![("DATABASE_URL", "mysql://db/x")],
            "DATABASE_URL: expected postgres://",
        ),
        (
            vec![("NODE_ENV", "production")],
            "JWT_SECRET is required in production",
        ),
        (
            vec![
                ("NODE_ENV", "production"),
                ("JWT_SECRET", "changeme-changeme-changeme-changeme!"),
                ("API_KEY", API_KEY),
            ],
            "JWT_SECRET looks like a placeholder",
        ),
        (
            vec![
                ("NODE_ENV", "production"),
                ("JWT_SECRET", "Xk29dL0qP8vB3nM5wZ7cR1tY6uH4jG2s"),
                ("API_KEY", "short-key"),
            ],
            "API_KEY is too short",
        ),
    ] {
        let out = run(&dir, &env, &["serve"]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{env:?}: {stderr}");
        assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");
        assert!(
            stderr.starts_with(&format!("error: {expected}")),
            "{env:?}: {stderr}"
        );
    }
}

#[test]
fn dotenv_and_file_secrets_are_read() {
    let dir = scratch("serve-dotenv");
    std::fs::write(dir.join(".env"), "# local settings\nPORT=not-a-port\n").unwrap();
    let out = run(&dir, &[], &["serve"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("invalid PORT=\"not-a-port\""),
        "the .env file is read: {stderr}"
    );
    // The process environment wins over .env.
    std::fs::write(dir.join("key"), format!("{API_KEY}\n")).unwrap();
    let key_file = dir.join("key");
    let server = Server::start(&dir, &[("API_KEY_FILE", key_file.to_str().unwrap())]);
    let (status, body) = http(
        server.api(),
        &format!(
            "GET /api/v1/repos HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer {API_KEY}\r\nConnection: close\r\n\r\n"
        ),
    );
    assert_eq!(status, 200, "API_KEY_FILE holds the operator key: {body}");
    server.terminate();
    assert_eq!(server.wait().0, Some(0));
}

#[test]
fn tokens_are_created_listed_and_revoked() {
    let dir = scratch("token-commands");
    let out = run(&dir, &[], &["seed", "--org", "acme", "--repo", "acme/shop"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let out = run(
        &dir,
        &[],
        &[
            "token",
            "create",
            "--org",
            "acme",
            "--name",
            "ci",
            "--scopes",
            "ingest",
            "--repo",
            "acme/shop",
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let secret = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    assert!(
        secret.starts_with("fgt_") && secret.len() == 44,
        "only the secret on stdout: {secret}"
    );

    let out = run(
        &dir,
        &[],
        &["token", "list", "--org", "acme", "--format", "json"],
    );
    let listed: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let ci = listed
        .iter()
        .find(|t| t["name"] == "ci")
        .expect("the new token is listed");
    assert_eq!(ci["scopes"], serde_json::json!(["ingest"]));
    assert!(
        !String::from_utf8_lossy(&out.stdout).contains(&secret[4..]),
        "secrets are never listed"
    );
    let id = ci["id"].as_i64().unwrap().to_string();

    // The token works against a server on the same database, and stops working once revoked.
    let server = Server::start(&dir, &[]);
    let ingest = |token: &str| {
        let xml = "<testsuite name=\"s\"><testcase name=\"t\"/></testsuite>";
        http(
            server.api(),
            &format!(
                "POST /api/v1/ingest?repo=acme/shop HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer {token}\r\n\
                 Content-Type: application/xml\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{xml}",
                xml.len()
            ),
        )
    };
    assert_eq!(ingest(&secret).0, 201);
    let out = run(&dir, &[], &["token", "revoke", "--org", "acme", &id]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(ingest(&secret).0, 401);
    server.terminate();
    assert_eq!(server.wait().0, Some(0));

    let out = run(&dir, &[], &["token", "revoke", "--org", "acme", &id]);
    assert_eq!(out.status.code(), Some(1), "revoking twice fails");
    for (args, expected) in [
        (
            vec!["token", "create", "--org", "nope", "--name", "x"],
            "organization \"nope\" not found",
        ),
        (
            vec![
                "token", "create", "--org", "acme", "--name", "x", "--scopes", "write",
            ],
            "--scopes: unknown scope \"write\"",
        ),
        (
            vec![
                "token",
                "create",
                "--org",
                "acme",
                "--name",
                "x",
                "--repo",
                "other/repo",
            ],
            "--repo: repository other/repo not found",
        ),
    ] {
        let out = run(&dir, &[], &args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        assert!(stderr.contains(expected), "{args:?}: {stderr}");
    }
}

#[test]
fn production_mode_logs_json_lines() {
    let dir = scratch("serve-production-logs");
    let server = Server::start(
        &dir,
        &[
            ("NODE_ENV", "production"),
            ("JWT_SECRET", "Xk29dL0qP8vB3nM5wZ7cR1tY6uH4jG2s"),
            ("API_KEY", API_KEY),
            ("LOG_LEVEL", "info"),
        ],
    );
    let (status, _) = get(server.api(), "/health");
    assert_eq!(status, 200);
    server.terminate();
    let (code, lines) = server.wait();
    assert_eq!(code, Some(0));
    assert!(!lines.is_empty());
    for line in &lines {
        let value: serde_json::Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("not a JSON log line ({e}): {line}"));
        assert!(
            value["level"].is_string() && value["timestamp"].is_string(),
            "{line}"
        );
    }
    // Each request is logged once, inside its span, with the request id.
    let answered: Vec<&String> = lines
        .iter()
        .filter(|l| l.contains("\"answered\""))
        .collect();
    assert_eq!(answered.len(), 1, "{lines:?}");
    assert!(answered[0].contains("\"request_id\""), "{}", answered[0]);
}

/// `flakeguard upload` against the real server: one run from a folder of real reports, stored
/// once however often it is sent, readable through the API.
#[test]
fn upload_reaches_a_real_server_once() {
    let dir = scratch("upload-e2e");
    let reports = dir.join("reports");
    std::fs::create_dir_all(&reports).unwrap();
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/fixtures/junit");
    for name in [
        "jest/dorny-test-reporter__jest-junit.xml",
        "nextest/nextest__fixture-project-junit.xml",
    ] {
        let from = fixtures.join(name);
        let to = reports.join(from.file_name().unwrap());
        std::fs::write(&to, std::fs::read(&from).unwrap()).unwrap();
    }
    let out = run(&dir, &[], &["seed", "--org", "acme", "--repo", "acme/shop"]);
    assert!(out.status.success());
    let out = run(
        &dir,
        &[],
        &["token", "create", "--org", "acme", "--name", "ci"],
    );
    let token = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    let server = Server::start(&dir, &[]);
    let url = format!("http://{}", server.api());
    let upload = || {
        run(
            &dir,
            &[
                ("FLAKEGUARD_TOKEN", token.as_str()),
                ("GITHUB_REPOSITORY", "acme/shop"),
                ("GITHUB_SHA", "0123456789abcdef"),
                ("GITHUB_RUN_ID", "4242"),
            ],
            &["upload", "--server", &url, "reports"],
        )
    };
    let first = upload();
    let text = String::from_utf8_lossy(&first.stdout).into_owned();
    assert!(
        first.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&first.stderr)
    );
    assert!(text.starts_with("uploaded 2 reports"), "{text}");
    assert!(text.contains("to acme/shop: run "), "{text}");
    let second = upload();
    let again = String::from_utf8_lossy(&second.stdout).into_owned();
    assert!(second.status.success(), "{again}");
    assert!(again.contains("(already stored)"), "{again}");
    let (status, body) = http(
        server.api(),
        &format!(
            "GET /api/v1/repos/acme/shop/runs HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer {token}\r\nConnection: close\r\n\r\n"
        ),
    );
    assert_eq!(status, 200);
    let runs: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(runs["total"], 1, "{body}");
    assert_eq!(runs["items"][0]["workflow_run_id"], "4242");
    assert_eq!(runs["items"][0]["commit"], "0123456789abcdef");
    server.terminate();
    assert_eq!(server.wait().0, Some(0));
}
