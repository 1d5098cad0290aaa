//! `flakeguard analyze` as a user runs it, over the committed example history and over
//! histories built in the test.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn example_runs() -> Vec<String> {
    let mut runs: Vec<String> = std::fs::read_dir(repo().join("examples/history"))
        .unwrap()
        .map(|e| e.unwrap().path().to_string_lossy().into_owned())
        .collect();
    runs.sort();
    runs
}

fn flakeguard(args: &[String]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_flakeguard"))
        .args(args)
        .output()
        .expect("flakeguard runs")
}

fn analyze(extra: &[&str], runs: &[String]) -> Output {
    let mut args: Vec<String> = vec![
        "analyze".into(),
        "--now".into(),
        "2026-11-06T12:00:00Z".into(),
    ];
    args.extend(extra.iter().map(|s| s.to_string()));
    args.extend(runs.iter().cloned());
    flakeguard(&args)
}

fn scratch(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn test_named<'a>(json: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    json["tests"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == name)
        .unwrap_or_else(|| panic!("no test {name}"))
}

#[test]
fn example_history_finds_the_flaky_and_the_broken_test() {
    let out = analyze(&["--format", "json"], &example_runs());
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["runs"], 13);
    assert_eq!(json["generated_at"], "2026-11-06T12:00:00Z");
    let tests = json["tests"].as_array().unwrap();
    assert_eq!(tests.len(), 10);

    let flaky = test_named(&json, "applies a discount code under load");
    assert_eq!(flaky["status"], "flaky");
    assert_eq!(
        tests[0]["name"], "applies a discount code under load",
        "sorted by probability"
    );
    assert!(flaky["probability"].as_f64().unwrap() >= 0.6);
    let kinds: Vec<&str> = flaky["evidence"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    assert!(
        kinds.contains(&"retry") || kinds.contains(&"commit"),
        "re-run of ci-1005 passed on the same commit: {kinds:?}"
    );
    assert_eq!(flaky["file"], "tests/checkout.test.ts");
    assert_eq!(
        flaky["signatures"].as_array().unwrap().len(),
        1,
        "timeouts with different ports share one signature"
    );

    let broken = test_named(&json, "totals include tax");
    assert_eq!(broken["status"], "broken");
    assert_ne!(broken["recommendation"], "quarantine");

    let stable = test_named(&json, "adds an item");
    assert_eq!(stable["status"], "stable");
    assert_eq!(stable["failures"], 0);

    for t in tests {
        let keys: Vec<&str> = t.as_object().unwrap().keys().map(String::as_str).collect();
        for k in [
            "key",
            "suite",
            "classname",
            "name",
            "file",
            "executions",
            "failures",
            "status",
            "probability",
            "confidence",
            "legacy_score",
            "recommendation",
            "priority",
            "signatures",
            "evidence",
        ] {
            assert!(keys.contains(&k), "missing {k} in {t}");
        }
    }
}

#[test]
fn table_and_markdown_show_the_verdicts() {
    let table = analyze(&[], &example_runs());
    let text = String::from_utf8_lossy(&table.stdout);
    assert!(
        text.contains("flaky") && text.contains("applies a discount code under load"),
        "{text}"
    );
    assert!(text.contains("10 tests in 13 runs"), "{text}");

    let md = analyze(&["--format", "markdown"], &example_runs());
    let text = String::from_utf8_lossy(&md.stdout);
    assert!(text.starts_with("## FlakeGuard flakiness report"), "{text}");
    assert!(text.contains("| :warning: flaky | `tests/checkout.test.ts › checkout › applies a discount code under load` |"), "{text}");
}

#[test]
fn unreadable_files_are_skipped_with_a_count() {
    let dir = scratch("analyze-skips");
    let run = dir.join("run-1");
    std::fs::create_dir_all(&run).unwrap();
    std::fs::write(
        run.join("good.xml"),
        r#"<testsuite name="s"><testcase classname="c" name="t"/></testsuite>"#,
    )
    .unwrap();
    std::fs::write(run.join("bad.xml"), "not xml").unwrap();
    let out = analyze(&["--format", "json"], &[run.to_string_lossy().into_owned()]);
    assert_eq!(out.status.code(), Some(0));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("skipped 1 unreadable file"), "{stderr}");
    assert!(stderr.contains("bad.xml"), "{stderr}");
}

#[test]
fn bad_policy_and_bad_metadata_are_clear_errors() {
    let dir = scratch("analyze-policy");
    let policy = dir.join("policy.yml");
    std::fs::write(&policy, "flaky_threshold: 1.5\nwarn_treshold: 0.2\n").unwrap();
    let out = analyze(&["--policy", policy.to_str().unwrap()], &example_runs());
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("policy.yml") && stderr.contains("warn_treshold"),
        "{stderr}"
    );

    let run = dir.join("run-x");
    std::fs::create_dir_all(&run).unwrap();
    std::fs::write(run.join("flakeguard-run.json"), r#"{"commit": 12}"#).unwrap();
    let out = analyze(&[], &[run.to_string_lossy().into_owned()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("flakeguard-run.json"));
}

#[test]
fn a_policy_file_changes_the_recommendation() {
    let dir = scratch("analyze-policy-ok");
    let policy = dir.join("policy.yml");
    // 13 executions are fewer than the 50 this policy asks for before recommending anything.
    std::fs::write(&policy, "min_occurrences: 50\n").unwrap();
    let out = analyze(
        &["--format", "json", "--policy", policy.to_str().unwrap()],
        &example_runs(),
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let flaky = test_named(&json, "applies a discount code under load");
    assert_eq!(flaky["recommendation"], "none");
    assert_eq!(
        flaky["status"], "flaky",
        "the policy changes the advice, not the evidence"
    );
}

#[test]
fn single_files_are_runs_of_their_own() {
    let dir = scratch("analyze-files");
    for (i, fail) in [false, true, false, true, false, false].iter().enumerate() {
        let body = if *fail {
            "<failure message=\"boom\"/>"
        } else {
            ""
        };
        std::fs::write(dir.join(format!("r{i}.xml")), format!(r#"<testsuite name="s"><testcase classname="c" name="t">{body}</testcase></testsuite>"#)).unwrap();
    }
    let files: Vec<String> = (0..6)
        .map(|i| dir.join(format!("r{i}.xml")).to_string_lossy().into_owned())
        .collect();
    let out = analyze(&["--format", "json"], &files);
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["runs"], 6);
    assert_eq!(json["tests"][0]["executions"], 6);
    assert_eq!(json["tests"][0]["failures"], 2);
}

#[test]
fn history_file_accumulates_runs_and_gives_the_same_verdicts() {
    let dir = scratch("analyze-history");
    let db = dir.join("history.db");
    let db = db.to_str().unwrap();
    let runs = example_runs();
    let direct: serde_json::Value =
        serde_json::from_slice(&analyze(&["--format", "json"], &runs).stdout).unwrap();

    // First the older runs, then all of them: the file keeps what it was given before.
    let first = analyze(&["--format", "json", "--history", db], &runs[..6]);
    assert_eq!(
        first.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
    assert!(String::from_utf8_lossy(&first.stderr).contains("recorded 6 new run(s)"));
    let all = analyze(&["--format", "json", "--history", db], &runs);
    assert!(
        String::from_utf8_lossy(&all.stderr).contains("recorded 7 new run(s)"),
        "{}",
        String::from_utf8_lossy(&all.stderr)
    );
    let again = analyze(&["--format", "json", "--history", db], &runs[..1]);
    assert!(
        String::from_utf8_lossy(&again.stderr).contains("recorded 0 new run(s)"),
        "nothing is counted twice"
    );
    let stored: serde_json::Value = serde_json::from_slice(&again.stdout).unwrap();
    assert_eq!(
        stored["runs"], 13,
        "the stored history covers every run recorded so far"
    );

    let verdicts = |json: &serde_json::Value| -> Vec<(String, String, u64, u64)> {
        let mut v: Vec<_> = json["tests"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| {
                (
                    t["key"].as_str().unwrap().to_owned(),
                    t["status"].as_str().unwrap().to_owned(),
                    t["executions"].as_u64().unwrap(),
                    t["failures"].as_u64().unwrap(),
                )
            })
            .collect();
        v.sort();
        v
    };
    assert_eq!(verdicts(&stored), verdicts(&direct));
}

#[test]
fn repo_without_history_is_a_usage_error() {
    let out = analyze(&["--repo", "a/b"], &example_runs()[..1]);
    assert_eq!(out.status.code(), Some(2));
}
