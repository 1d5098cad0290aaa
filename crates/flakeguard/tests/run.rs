//! `flakeguard run` wrapping a real test command: a small shell test suite made for these tests
//! that prints its progress, writes a JUnit report and exits 3 when a test fails. Offline
//! against a saved quarantine list, against an unreachable server, and against the real
//! server (`flakeguard serve` on SQLite) whose quarantine list comes from the API; and
//! `flakeguard quarantine export` from the same sources.

mod support;

use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::{Duration, SystemTime};

use flakeguard_store::{
    NewQuarantine, PageRequest, QuarantineState, RepoSlug, Store, TestQuery, TestSort,
};
use flakeguard_store_sqlite::SqliteStore;
use support::{Server, http, run, scratch};
use time::OffsetDateTime;

/// The suite: three tests of `shop.Cart`; those named in `$FAIL` fail. `$NO_REPORT` makes it
/// fail before writing any report (as a compile error would), `$REPORT` moves the report.
const SUITE: &str = r#"#!/bin/sh
mkdir -p reports
if [ -n "$NO_REPORT" ]; then
  echo "error: could not compile" >&2
  exit 5
fi
failures=0
cases=""
for t in cart_total cart_tax login; do
  case " $FAIL " in
    *" $t "*)
      echo "test shop.Cart.$t ... FAILED"
      failures=$((failures + 1))
      cases="$cases<testcase classname=\"shop.Cart\" name=\"$t\" time=\"0.01\"><failure message=\"expected 2, got 3\">at cart.rs:10</failure></testcase>"
      ;;
    *)
      echo "test shop.Cart.$t ... ok"
      cases="$cases<testcase classname=\"shop.Cart\" name=\"$t\" time=\"0.01\"/>"
      ;;
  esac
done
printf '<?xml version="1.0"?>\n<testsuite name="shop" tests="3" failures="%s">%s</testsuite>\n' "$failures" "$cases" > "${REPORT:-reports/junit.xml}"
echo "$failures failed" >&2
[ "$failures" -eq 0 ] || exit 3
"#;

/// A project folder with the suite in it.
fn project(name: &str) -> PathBuf {
    let dir = scratch(name);
    std::fs::write(dir.join("suite.sh"), SUITE).unwrap();
    dir
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// `flakeguard run <flags> -- sh suite.sh` in `dir`, with `env`.
fn run_suite(dir: &Path, env: &[(&str, &str)], flags: &[&str]) -> Output {
    let mut args = vec!["run"];
    args.extend_from_slice(flags);
    args.extend_from_slice(&["--", "sh", "suite.sh"]);
    run(dir, env, &args)
}

/// A saved list (the API's JSON) quarantining `cart_tax`; `login` is only proposed and
/// `cart_total`'s quarantine has expired.
const SAVED_LIST: &str = r#"{"items": [
  {"id": 1, "test_id": 2, "key": "shop › shop.Cart › cart_tax", "scope": "shop", "classname": "shop.Cart",
   "name": "cart_tax", "variant": null, "file": null, "state": "active", "owner": "@acme/cart",
   "reason": "times out on CI", "created_by": "user:ann@acme.test", "created_at": "2026-11-01T10:00:00Z",
   "expires_at": null},
  {"id": 2, "test_id": 3, "scope": "shop", "classname": "shop.Cart", "name": "login", "state": "proposed",
   "owner": null, "reason": "", "expires_at": null},
  {"id": 3, "test_id": 1, "scope": "shop", "classname": "shop.Cart", "name": "cart_total", "state": "active",
   "owner": null, "reason": "", "expires_at": "2020-01-01T00:00:00Z"}
], "page": 1, "per_page": 30, "total": 3}"#;

fn offline(name: &str) -> PathBuf {
    let dir = project(name);
    std::fs::write(dir.join("quarantine.json"), SAVED_LIST).unwrap();
    dir
}

#[test]
fn only_quarantined_failures_exit_0_and_are_listed() {
    let dir = offline("run-offline-quarantined");
    let out = run_suite(
        &dir,
        &[("FAIL", "cart_tax")],
        &["--quarantine-file", "quarantine.json"],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let (out_text, err) = (stdout(&out), stderr(&out));
    assert!(
        out_text.contains("test shop.Cart.cart_tax ... FAILED"),
        "the command's output is streamed: {out_text}"
    );
    assert!(err.contains("1 failed"), "its stderr too: {err}");
    assert!(
        err.contains(
            "flakeguard: the command failed (exit 3), but its only failing test is quarantined; exiting 0. Ignored failure:\n  shop › shop.Cart › cart_tax  (owner @acme/cart, no expiry: times out on CI)\n"
        ),
        "{err}"
    );
}

#[test]
fn a_failure_that_is_not_quarantined_keeps_the_commands_exit_code() {
    let dir = offline("run-offline-blocking");
    let out = run_suite(
        &dir,
        &[("FAIL", "cart_tax login")],
        &["--quarantine-file", "quarantine.json"],
    );
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains(
            "flakeguard: 1 failing test not quarantined; exiting 3 (the command's exit code):\n  shop › shop.Cart › login\n"
        ),
        "a proposed quarantine does not excuse: {err}"
    );
    assert!(
        err.contains("1 other failing test quarantined (not blocking on its own):\n  shop › shop.Cart › cart_tax"),
        "{err}"
    );
    // An expired quarantine does not excuse either.
    let out = run_suite(
        &dir,
        &[("FAIL", "cart_total")],
        &["--quarantine-file", "quarantine.json"],
    );
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
}

#[test]
fn a_passing_command_exits_0_and_a_missing_report_keeps_the_failure() {
    let dir = offline("run-offline-pass");
    let out = run_suite(&dir, &[], &["--quarantine-file", "quarantine.json"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stdout(&out).contains("cart_tax ... ok"));

    // A report from an earlier run is not this run's: the failure stands.
    let old = std::fs::File::options()
        .write(true)
        .open(dir.join("reports/junit.xml"))
        .unwrap();
    old.set_modified(SystemTime::now() - Duration::from_secs(3600))
        .unwrap();
    let out = run_suite(
        &dir,
        &[("NO_REPORT", "1")],
        &["--quarantine-file", "quarantine.json"],
    );
    assert_eq!(out.status.code(), Some(5), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains("could not compile"), "{err}");
    assert!(
        err.contains("flakeguard: ignored 1 matching report file older than this run"),
        "{err}"
    );
    assert!(
        err.contains("flakeguard: the command failed (exit 5) and wrote no JUnit report matching **/*junit*.xml, **/TEST-*.xml; exiting 5"),
        "{err}"
    );
}

#[test]
fn junit_patterns_choose_the_reports() {
    let dir = offline("run-offline-patterns");
    let out = run_suite(
        &dir,
        &[("FAIL", "cart_tax"), ("REPORT", "reports/results.xml")],
        &["--quarantine-file", "quarantine.json"],
    );
    assert_eq!(
        out.status.code(),
        Some(3),
        "results.xml is not a default name: {}",
        stderr(&out)
    );
    let out = run_suite(
        &dir,
        &[("FAIL", "cart_tax"), ("REPORT", "reports/results.xml")],
        &[
            "--quarantine-file",
            "quarantine.json",
            "--junit",
            "reports/*.xml",
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    // A report that cannot be read cannot excuse anything.
    std::fs::write(
        dir.join("suite.sh"),
        "printf '<testsuite><testcase' > reports/junit.xml; exit 3\n",
    )
    .unwrap();
    let out = run_suite(&dir, &[], &["--quarantine-file", "quarantine.json"]);
    assert_eq!(out.status.code(), Some(3));
    assert!(
        stderr(&out).contains("cannot read the reports (reports/junit.xml: "),
        "{}",
        stderr(&out)
    );
}

#[test]
fn usage_errors_stop_before_the_command_runs() {
    let dir = offline("run-usage");
    std::fs::write(dir.join("bad.json"), "{\"items\": 3}").unwrap();
    for (env, flags, expected) in [
        (
            vec![],
            vec!["--quarantine-file", "bad.json"],
            "error: bad.json: not a quarantine list",
        ),
        (
            vec![],
            vec!["--quarantine-file", "nope.json"],
            "error: cannot read the quarantine list nope.json",
        ),
        (
            vec![("FLAKEGUARD_TOKEN", "fgt_x")],
            vec![],
            "error: missing --server (or FLAKEGUARD_SERVER), --repo (or GITHUB_REPOSITORY) and --commit (or GITHUB_SHA)",
        ),
        (
            vec![],
            vec![
                "--quarantine-file",
                "quarantine.json",
                "--junit",
                "reports/[x.xml",
            ],
            "error: --junit \"reports/[x.xml\": invalid pattern",
        ),
    ] {
        let _ = std::fs::remove_dir_all(dir.join("reports"));
        let out = run_suite(&dir, &env, &flags);
        assert_eq!(out.status.code(), Some(2), "{flags:?}: {}", stderr(&out));
        assert!(
            stderr(&out).starts_with(expected),
            "{flags:?}: {}",
            stderr(&out)
        );
        assert!(!dir.join("reports").exists(), "the suite did not run");
    }
    let out = run(&dir, &[], &["run", "--quarantine-file", "quarantine.json"]);
    assert_eq!(out.status.code(), Some(2), "no command");
    let out = run(
        &dir,
        &[],
        &[
            "run",
            "--quarantine-file",
            "quarantine.json",
            "--",
            "no-such-test-runner",
        ],
    );
    assert_eq!(out.status.code(), Some(127));
    assert!(
        stderr(&out).contains("cannot run no-such-test-runner: command not found"),
        "{}",
        stderr(&out)
    );
}

/// A port nothing listens on.
fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

fn online_flags(server: &str) -> Vec<String> {
    [
        "--server",
        server,
        "--repo",
        "acme/shop",
        "--commit",
        "abc123",
        "--retries",
        "1",
        "--backoff-ms",
        "10",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect()
}

#[test]
fn an_unreachable_server_falls_back_to_the_commands_exit_code_or_fails_closed() {
    let dir = project("run-unreachable");
    let server = format!("http://127.0.0.1:{}", closed_port());
    let flags = online_flags(&server);
    let mut flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    let env = [("FLAKEGUARD_TOKEN", "fgt_test"), ("FAIL", "cart_tax")];
    let out = run_suite(&dir, &env, &flags);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("flakeguard: the upload failed: upload failed after 2 attempts; last error: cannot connect to 127.0.0.1:"),
        "{err}"
    );
    assert!(
        err.contains("flakeguard: cannot fetch the quarantine list: quarantine list request failed after 2 attempts")
            && err.contains("falling back to the command's exit code 3"),
        "{err}"
    );
    // The tests pass: the unreachable server is a warning, or a failure when failing closed.
    let out = run_suite(&dir, &[("FLAKEGUARD_TOKEN", "fgt_test")], &flags);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("the upload failed"),
        "{}",
        stderr(&out)
    );
    flags.push("--fail-closed");
    let out = run_suite(&dir, &[("FLAKEGUARD_TOKEN", "fgt_test")], &flags);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains(
            "the tests passed, but the upload failed and --fail-closed is set; exiting 1"
        ),
        "{}",
        stderr(&out)
    );
}

/// The test's id in the server's database.
fn test_id(
    rt: &tokio::runtime::Runtime,
    store: &SqliteStore,
    name: &str,
) -> flakeguard_store::TestCaseId {
    rt.block_on(async {
        let repo = store
            .find_repository(&RepoSlug::parse("acme/shop").unwrap())
            .await
            .unwrap()
            .unwrap();
        let page = store
            .list_tests(
                repo.id,
                &TestQuery {
                    filter: None,
                    text: Some(name.to_owned()),
                    sort: TestSort::Name,
                    page: PageRequest {
                        offset: 0,
                        limit: 10,
                    },
                },
            )
            .await
            .unwrap();
        page.items[0].id
    })
}

#[test]
fn the_real_server_decides_from_its_quarantine_list() {
    let dir = project("run-real-server");
    let out = run(&dir, &[], &["seed", "--org", "acme", "--repo", "acme/shop"]);
    assert!(out.status.success(), "{}", stderr(&out));
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
            "ingest,read",
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let token = stdout(&out).trim().to_owned();
    let server = Server::start(&dir, &[]);
    let url = format!("http://{}", server.api());
    let flags = online_flags(&url);
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    let suite = |fail: &str, run_id: &str, extra: &[&str]| {
        let vars = [
            ("FLAKEGUARD_TOKEN", token.as_str()),
            ("FAIL", fail),
            ("GITHUB_RUN_ID", run_id),
        ];
        let mut all = flags.clone();
        all.extend_from_slice(extra);
        run_suite(&dir, &vars, &all)
    };

    // A first, passing run is uploaded: the server now knows the tests.
    let out = suite("", "1", &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("uploaded 1 report"),
        "the upload's summary, on stderr: {}",
        stderr(&out)
    );

    // Nothing is quarantined yet: a failure keeps the suite's exit code.
    let out = suite("cart_tax", "2", &[]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("1 failed — 1 new"),
        "{}",
        stderr(&out)
    );

    // Quarantine cart_tax (active, owned, expiring) and propose login, in the server's
    // database (the API to quarantine is another issue's).
    let rt = tokio::runtime::Runtime::new().unwrap();
    let store = rt
        .block_on(SqliteStore::open(&dir.join("data/flakeguard.db")))
        .unwrap();
    let repo = rt
        .block_on(store.find_repository(&RepoSlug::parse("acme/shop").unwrap()))
        .unwrap()
        .unwrap();
    let now = OffsetDateTime::now_utc();
    for (name, state) in [
        ("cart_tax", QuarantineState::Active),
        ("login", QuarantineState::Proposed),
    ] {
        let test = test_id(&rt, &store, name);
        rt.block_on(store.add_quarantine(
            repo.id,
            &NewQuarantine {
                test,
                state,
                reason: "times out on CI".to_owned(),
                owner: Some("@acme/cart".to_owned()),
                created_by: "user:ann@acme.test".to_owned(),
                created_at: now,
                expires_at: Some(now + time::Duration::days(30)),
            },
        ))
        .unwrap();
    }
    rt.block_on(store.close());

    let out = suite("cart_tax", "3", &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("1 failed — 0 new, 0 known flaky, 1 quarantined"),
        "{err}"
    );
    assert!(
        err.contains("but its only failing test is quarantined; exiting 0. Ignored failure:\n  shop › shop.Cart › cart_tax  (owner @acme/cart, until "),
        "{err}"
    );
    let out = suite("cart_tax login", "4", &[]);
    assert_eq!(
        out.status.code(),
        Some(3),
        "a proposed quarantine does not excuse: {}",
        stderr(&out)
    );
    assert!(
        stderr(&out).contains("  shop › shop.Cart › login\n"),
        "{}",
        stderr(&out)
    );

    // Every run was uploaded, failing or not.
    let (status, body) = http(
        server.api(),
        &format!(
            "GET /api/v1/repos/acme/shop/runs HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer {token}\r\nConnection: close\r\n\r\n"
        ),
    );
    assert_eq!(status, 200);
    let runs: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(runs["total"], 4, "{body}");

    // The same list exported for runners and saved for offline use.
    let export = |format: &str| {
        let out = run(
            &dir,
            &[("FLAKEGUARD_TOKEN", token.as_str())],
            &[
                "quarantine",
                "export",
                "--server",
                &url,
                "--repo",
                "acme/shop",
                "--format",
                format,
            ],
        );
        assert_eq!(out.status.code(), Some(0), "{format}: {}", stderr(&out));
        stdout(&out)
    };
    assert_eq!(
        export("nextest"),
        "not ((binary_id(=shop) & test(=cart_tax)))\n",
        "only the active quarantine"
    );
    assert_eq!(export("go"), "^cart_tax$\n");
    assert_eq!(export("junit5"), "!shop.Cart#cart_tax\n");
    let saved = export("json");
    let list: serde_json::Value = serde_json::from_str(&saved).unwrap();
    assert_eq!(list["total"], 2, "json keeps every live entry: {saved}");
    std::fs::write(dir.join("saved.json"), &saved).unwrap();
    server.terminate();
    assert_eq!(server.wait().0, Some(0));

    // With the server gone, the saved list still decides, offline.
    let out = suite("cart_tax", "5", &["--quarantine-file", "saved.json"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        !stderr(&out).contains("upload"),
        "nothing is sent offline: {}",
        stderr(&out)
    );
    let out = run(
        &dir,
        &[],
        &[
            "quarantine",
            "export",
            "--quarantine-file",
            "saved.json",
            "--format",
            "jest",
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(stdout(&out), "^(?!(?:shop\\.Cart cart_tax)$)\n");
}

#[test]
fn export_needs_a_source() {
    let dir = scratch("export-usage");
    let out = run(&dir, &[], &["quarantine", "export", "--format", "go"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).starts_with("error: missing --server (or FLAKEGUARD_SERVER)"),
        "{}",
        stderr(&out)
    );
    let out = run(
        &dir,
        &[("FLAKEGUARD_TOKEN", "fgt_x")],
        &[
            "quarantine",
            "export",
            "--format",
            "go",
            "--server",
            &format!("http://127.0.0.1:{}", closed_port()),
            "--repo",
            "acme/shop",
            "--retries",
            "0",
        ],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("error: cannot fetch the quarantine list: quarantine list request failed after 1 attempt; last error: cannot connect"),
        "{}",
        stderr(&out)
    );
    let out = run(
        &dir,
        &[],
        &[
            "quarantine",
            "export",
            "--format",
            "rspec",
            "--quarantine-file",
            "x.json",
        ],
    );
    assert_eq!(out.status.code(), Some(2), "unknown format");
}
