//! Every real GitHub webhook payload in the shared fixtures parses into its typed event,
//! with spot checks on the values FlakeGuard acts on.

use std::path::PathBuf;

use flakeguard_app::github::events::{Event, parse_event};
use flakeguard_store::AccountType;
use time::macros::datetime;

/// `shared/fixtures`, beside the repository (override with `FLAKEGUARD_FIXTURES`).
fn fixtures() -> PathBuf {
    if let Ok(dir) = std::env::var("FLAKEGUARD_FIXTURES") {
        return PathBuf::from(dir);
    }
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/fixtures")
}

fn webhook(rel: &str) -> Event {
    let path = fixtures().join("github-webhooks").join(rel);
    let event = rel.split('/').next().unwrap();
    let body = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    parse_event(event, &body).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

const EVENTS: [&str; 9] = [
    "check_run",
    "check_suite",
    "installation",
    "installation_repositories",
    "ping",
    "pull_request",
    "push",
    "workflow_job",
    "workflow_run",
];

#[test]
fn every_fixture_payload_parses_into_its_event() {
    let root = fixtures().join("github-webhooks");
    let mut parsed = 0;
    for event in EVENTS {
        let dir = root.join(event);
        let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .map(|entry| entry.unwrap().path())
            .filter(|p| p.extension().is_some_and(|x| x == "json"))
            .collect();
        files.sort();
        assert!(!files.is_empty(), "no payloads for {event}");
        for file in files {
            let body = std::fs::read(&file).unwrap();
            let parsed_event =
                parse_event(event, &body).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
            assert!(
                !matches!(parsed_event, Event::Other { .. }),
                "{}",
                file.display()
            );
            parsed += 1;
        }
    }
    // Every directory of the fixture set, nothing skipped (51 payloads when written).
    assert!(parsed >= 50, "only {parsed} payloads found");
}

#[test]
fn installation_events_carry_the_account_and_repositories() {
    let Event::Installation(created) = webhook("installation/created.payload.json") else {
        panic!("not an installation event");
    };
    assert_eq!(created.action, "created");
    assert_eq!(created.installation.id, 957_387);
    assert_eq!(created.installation.account.login, "Codertocat");
    assert_eq!(
        created.installation.account.account_type(),
        Some(AccountType::User)
    );
    assert_eq!(created.repositories.len(), 1);
    let repo = created.repositories[0].to_installed().unwrap();
    assert_eq!(
        (repo.github_id, repo.slug.to_string()),
        (186_853_002, "Codertocat/Hello-World".to_owned())
    );

    let Event::Installation(suspend) = webhook("installation/suspend.payload.json") else {
        panic!("not an installation event");
    };
    assert_eq!(
        (suspend.action.as_str(), suspend.installation.id),
        ("suspend", 16_598_467)
    );

    let Event::InstallationRepositories(added) =
        webhook("installation_repositories/added.payload.json")
    else {
        panic!("not an installation_repositories event");
    };
    assert_eq!(added.action, "added");
    assert_eq!(added.repositories_added[0].full_name, "Codertocat/Space");
    assert!(added.repositories_removed.is_empty());
    let Event::InstallationRepositories(removed) =
        webhook("installation_repositories/removed.payload.json")
    else {
        panic!("not an installation_repositories event");
    };
    assert_eq!(removed.repositories_removed[0].id, 1_296_269);
    assert_eq!(
        Event::InstallationRepositories(removed).installation_id(),
        Some(2)
    );
}

#[test]
fn workflow_runs_carry_commit_attempt_and_pull_requests() {
    let Event::WorkflowRun(run) = webhook("workflow_run/completed.with-pull-requests.payload.json")
    else {
        panic!("not a workflow_run event");
    };
    assert_eq!(run.action, "completed");
    let w = &run.workflow_run;
    assert_eq!(
        (w.id, w.run_attempt, w.workflow_id),
        (289_782_451, 1, 2_823_525)
    );
    assert_eq!(w.head_sha, "3484a3fb816e0859fd6e1cea078d76385ff50625");
    assert_eq!(w.head_branch.as_deref(), Some("master"));
    assert_eq!(w.conclusion.as_deref(), Some("success"));
    assert_eq!(w.pull_requests.len(), 1);
    assert_eq!(w.pull_requests[0].number, 2);
    assert_eq!(
        w.pull_requests[0].head.sha,
        "ec26c3e57ca3a959ca5aad62de7213c562f8c821"
    );
    assert!(
        w.artifacts_url
            .ends_with("/actions/runs/289782451/artifacts")
    );
    assert_eq!(run.repository.full_name, "octo-org/octo-repo");
    assert_eq!(run.repository.slug().unwrap().owner(), "octo-org");

    let Event::WorkflowRun(requested) = webhook("workflow_run/requested.payload.json") else {
        panic!("not a workflow_run event");
    };
    assert_eq!(requested.workflow_run.conclusion, None);
}

#[test]
fn workflow_jobs_carry_names_and_timing() {
    let Event::WorkflowJob(job) =
        webhook("workflow_job/completed.failure.with-organization.payload.json")
    else {
        panic!("not a workflow_job event");
    };
    let record = job.workflow_job.to_record();
    assert_eq!(
        (record.workflow_run_id, record.job_id),
        (2_202_229_078, 289_782_451)
    );
    assert_eq!(record.name, "linters");
    assert_eq!(record.conclusion.as_deref(), Some("failure"));
    assert_eq!(record.started_at, Some(datetime!(2021-08-05 10:34:58 UTC)));
    assert_eq!(
        record.completed_at,
        Some(datetime!(2021-08-05 10:38:16 UTC))
    );

    let Event::WorkflowJob(queued) = webhook("workflow_job/queued.payload.json") else {
        panic!("not a workflow_job event");
    };
    assert_eq!(queued.workflow_job.status, "queued");
    assert_eq!(queued.workflow_job.completed_at, None);
    assert_eq!(
        Event::WorkflowJob(queued).installation_id(),
        Some(3_456_996)
    );
}

#[test]
fn check_events_carry_pull_requests_and_requested_actions() {
    let Event::CheckSuite(suite) = webhook("check_suite/completed.payload.json") else {
        panic!("not a check_suite event");
    };
    assert_eq!(
        suite.check_suite.head_sha,
        "ec26c3e57ca3a959ca5aad62de7213c562f8c821"
    );
    assert_eq!(
        suite
            .check_suite
            .pull_requests
            .iter()
            .map(|p| p.number)
            .collect::<Vec<_>>(),
        [2]
    );

    let Event::CheckRun(action) = webhook("check_run/requested_action.payload.json") else {
        panic!("not a check_run event");
    };
    assert_eq!(action.action, "requested_action");
    assert_eq!(
        action.requested_action.map(|a| a.identifier).as_deref(),
        Some("lgtm|26764")
    );
    assert_eq!(action.check_run.id, 1_494_503_112);
    assert_eq!(action.installation.map(|i| i.id), Some(690_857));

    let Event::CheckRun(rerun) = webhook("check_run/rerequested.payload.json") else {
        panic!("not a check_run event");
    };
    assert_eq!(rerun.action, "rerequested");
    assert_eq!(rerun.requested_action, None);
}

#[test]
fn pull_requests_and_pushes_map_commits_and_branches() {
    let Event::PullRequest(pr) = webhook("pull_request/opened.with-null-body.json") else {
        panic!("not a pull_request event");
    };
    assert_eq!((pr.number, pr.pull_request.number), (2, 2));
    assert_eq!(
        pr.pull_request.head.sha,
        "ec26c3e57ca3a959ca5aad62de7213c562f8c821"
    );
    assert_eq!(pr.pull_request.base.git_ref, "master");

    let Event::Push(push) = webhook("push/with-new-branch.payload.json") else {
        panic!("not a push event");
    };
    assert_eq!(push.branch(), Some("master"));
    assert_eq!(push.repository.default_branch.as_deref(), Some("master"));
    assert!(push.is_to_default_branch());
    let Event::Push(tag) = webhook("push/payload.json") else {
        panic!("not a push event");
    };
    assert_eq!(tag.branch(), None);
    assert!(tag.deleted);

    let Event::Ping(ping) = webhook("ping/with-app_id.payload.json") else {
        panic!("not a ping event");
    };
    assert_eq!(ping.hook.and_then(|h| h.app_id), Some(29_310));
}
