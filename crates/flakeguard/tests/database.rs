//! `flakeguard migrate` and `flakeguard seed` as an operator runs them, on the embedded SQLite
//! default and on PostgreSQL (a database of the test's own on `TEST_DATABASE_URL`'s server).

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use support::servers::PgDatabase;

fn flakeguard(env: &[(&str, &str)], args: &[&str]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_flakeguard"));
    cmd.env_remove("DATABASE_URL")
        .env_remove("FLAKEGUARD_DATA_DIR");
    for var in [
        "FLAKEGUARD_SEED_ORG",
        "FLAKEGUARD_SEED_ORG_NAME",
        "FLAKEGUARD_SEED_ADMIN_EMAIL",
        "FLAKEGUARD_SEED_ADMIN_NAME",
        "FLAKEGUARD_SEED_REPO",
    ] {
        cmd.env_remove(var);
    }
    cmd.envs(env.iter().copied())
        .args(args)
        .output()
        .expect("flakeguard runs")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn scratch(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Runs the same operator story against one database configuration.
fn migrate_then_seed_twice(env: &[(&str, &str)]) {
    let status = flakeguard(env, &["migrate", "status"]);
    assert_eq!(
        status.status.code(),
        Some(1),
        "pending migrations exit 1: {}",
        stdout(&status)
    );
    assert!(
        stdout(&status).contains("pending  0001"),
        "{}",
        stdout(&status)
    );

    let deploy = flakeguard(env, &["migrate", "deploy"]);
    assert_eq!(
        deploy.status.code(),
        Some(0),
        "{}{}",
        stdout(&deploy),
        String::from_utf8_lossy(&deploy.stderr)
    );
    assert!(stdout(&deploy).contains("applied 0001"));
    let status = flakeguard(env, &["migrate", "status"]);
    assert_eq!(status.status.code(), Some(0), "{}", stdout(&status));
    assert!(stdout(&flakeguard(env, &["migrate", "deploy"])).contains("up to date"));

    let args = [
        "seed",
        "--org",
        "acme",
        "--admin-email",
        "ops@acme.test",
        "--repo",
        "acme/shop",
    ];
    let first = flakeguard(env, &args);
    assert_eq!(
        first.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
    let out = stdout(&first);
    assert!(
        out.contains("created organization acme") && out.contains("created repository acme/shop"),
        "{out}"
    );
    let token_line = out
        .lines()
        .find(|l| l.starts_with("admin API token"))
        .expect("a token is printed once");
    assert!(token_line.contains("fgt_"));
    assert!(
        out.contains("1 organization(s), 1 user(s), 1 repositories"),
        "{out}"
    );

    let second = flakeguard(env, &args);
    let out = stdout(&second);
    assert_eq!(second.status.code(), Some(0));
    assert!(
        !out.contains("created ") && !out.contains("fgt_"),
        "a second seed creates nothing: {out}"
    );
    assert!(
        out.contains("already issued")
            && out.contains("1 organization(s), 1 user(s), 1 repositories"),
        "{out}"
    );
}

#[test]
fn sqlite_is_the_zero_configuration_default() {
    let dir = scratch("db-sqlite");
    let data = dir.join("data");
    migrate_then_seed_twice(&[("FLAKEGUARD_DATA_DIR", data.to_str().unwrap())]);
    assert!(data.join("flakeguard.db").exists());
}

#[test]
fn seed_migrates_sqlite_by_itself() {
    let dir = scratch("db-sqlite-seed");
    let url = format!("sqlite:{}", dir.join("x.db").display());
    let out = flakeguard(&[("DATABASE_URL", &url)], &["seed", "--org", "solo"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout(&out).contains("created organization solo"));
}

#[test]
fn bad_database_url_is_one_clear_line() {
    let out = flakeguard(&[("DATABASE_URL", "mysql://x/y")], &["migrate", "status"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.starts_with("error: DATABASE_URL: expected") && err.lines().count() == 1,
        "{err}"
    );
}

#[test]
fn postgres_is_chosen_by_database_url() {
    let db = PgDatabase::create("flakeguard_cli");
    let url = db.url();
    migrate_then_seed_twice(&[("DATABASE_URL", &url)]);
}

#[test]
fn seeding_postgres_before_migrating_says_what_to_do() {
    let db = PgDatabase::create("flakeguard_cli");
    let url = db.url();
    let out = flakeguard(&[("DATABASE_URL", &url)], &["seed"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("flakeguard migrate deploy"), "{err}");
    assert!(
        err.contains("PostgreSQL at 127.0.0.1:5432/") || err.contains("PostgreSQL at "),
        "names the database without credentials: {err}"
    );
}

#[test]
fn rescore_rebuilds_derived_state_from_stored_history() {
    let dir = scratch("db-rescore");
    let db = dir.join("history.db");
    let mut runs: Vec<String> =
        std::fs::read_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/history"))
            .unwrap()
            .map(|e| e.unwrap().path().to_string_lossy().into_owned())
            .collect();
    runs.sort();
    let mut args = vec![
        "analyze",
        "--format",
        "json",
        "--history",
        db.to_str().unwrap(),
        "--repo",
        "acme/shop",
    ];
    args.extend(runs.iter().map(String::as_str));
    assert_eq!(flakeguard(&[], &args).status.code(), Some(0));

    let url = format!("sqlite:{}", db.display());
    let out = flakeguard(
        &[("DATABASE_URL", &url)],
        &["rescore", "--repo", "acme/shop"],
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout(&out).contains("rescored 10 tests of acme/shop over 13 runs: 1 flaky"),
        "{}",
        stdout(&out)
    );

    let missing = flakeguard(
        &[("DATABASE_URL", &url)],
        &["rescore", "--repo", "acme/none"],
    );
    assert_eq!(missing.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("repository acme/none not found"));
}
