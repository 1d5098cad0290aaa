//! What each GitHub delivery does. Every handler can run twice for one delivery (a worker
//! may die after acting and before marking it done): registrations are idempotent upserts,
//! runs are stored once per (workflow run, attempt, artifact), and the check run and the
//! pull-request comment are found again and updated in place.

use std::collections::BTreeSet;

use flakeguard_core::RepoConfig;
use flakeguard_github::{
    CheckRunAction, CheckRunOutput, CheckRunRequest, GitHubError, Installation,
};
use flakeguard_store::{
    AccountType, InstallationState, NewAuditEntry, NewCheckRun, NewInstallation,
    NewInstalledRepository, NewPolicy, NewQuarantine, PolicyOrigin, QuarantineState, RepoSlug,
    Repository, StoreError, WebhookDelivery, WorkflowRunRecord,
};
use time::OffsetDateTime;

use super::GitHub;
use super::artifacts::{self, WorkflowRunRef, github_error};
use super::commit::{self, CommitView};
use super::events::{self, CheckRunEvent, Event, InstallationEvent, WorkflowRunEvent};
use super::report::{self, Classification, CommitReport, FailingTest, Totals};
use crate::RepoPolicy;
use crate::ingest::FailureVerdict;
use crate::jobs::{self, JobContext, JobError};

/// The repository's policy file, read at the commits of its default branch.
pub const POLICY_FILE: &str = ".flakeguard.yml";

/// The check run's name: what a branch protection rule requires.
pub const CHECK_RUN_NAME: &str = "FlakeGuard";

/// What became of a delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Handled {
    Processed(String),
    Ignored(String),
}

fn processed(note: impl Into<String>) -> Result<Handled, JobError> {
    Ok(Handled::Processed(note.into()))
}

fn ignored(note: impl Into<String>) -> Result<Handled, JobError> {
    Ok(Handled::Ignored(note.into()))
}

/// Acts on one stored delivery.
pub async fn process(ctx: &JobContext, delivery: &WebhookDelivery) -> Result<Handled, JobError> {
    let event = events::parse_event(&delivery.event, &delivery.payload)
        .map_err(|e| JobError::Permanent(e.to_string()))?;
    let now = ctx.now();
    match event {
        Event::Ping(_) => processed("ping answered"),
        Event::Installation(e) => installation(ctx, &e, now).await,
        Event::InstallationRepositories(e) => {
            let id = e.installation.id;
            match e.action.as_str() {
                "added" => {
                    let added = installed(&e.repositories_added)?;
                    let stored = match ctx.store.add_installed_repositories(id, &added, now).await {
                        Err(StoreError::NotFound(_)) => {
                            register(ctx, &e.installation, &added, now).await?;
                            added.len()
                        }
                        other => other?.len(),
                    };
                    processed(format!("installation {id}: {stored} repositories added"))
                }
                "removed" => {
                    let ids: Vec<i64> = e.repositories_removed.iter().map(|r| r.id).collect();
                    let n = match ctx.store.remove_installed_repositories(id, &ids, now).await {
                        Err(StoreError::NotFound(_)) => 0,
                        other => other?,
                    };
                    processed(format!("installation {id}: {n} repositories removed"))
                }
                other => ignored(format!("installation_repositories {other}")),
            }
        }
        Event::WorkflowRun(e) if e.action == "completed" => workflow_run(ctx, &e).await,
        Event::WorkflowRun(e) => ignored(format!("workflow_run {}", e.action)),
        Event::WorkflowJob(e) => {
            let Some(repo) = known_repo(ctx, &e.repository.full_name).await? else {
                return ignored(format!(
                    "{}: not an installed repository",
                    e.repository.full_name
                ));
            };
            let changed = ctx
                .store
                .record_workflow_job(repo.id, &e.workflow_job.to_record())
                .await?;
            processed(format!(
                "job {} ({}) {}{}",
                e.workflow_job.id,
                e.workflow_job.name,
                e.workflow_job.status,
                if changed { "" } else { ", already known" }
            ))
        }
        Event::CheckSuite(e) => {
            let Some(repo) = known_repo(ctx, &e.repository.full_name).await? else {
                return ignored(format!(
                    "{}: not an installed repository",
                    e.repository.full_name
                ));
            };
            let mut linked = 0;
            for pr in &e.check_suite.pull_requests {
                linked += usize::from(
                    ctx.store
                        .link_commit_pr(repo.id, &e.check_suite.head_sha, pr.number, now)
                        .await?,
                );
            }
            processed(format!(
                "check_suite {}: {linked} pull requests linked",
                e.action
            ))
        }
        Event::PullRequest(e) => {
            let Some(repo) = known_repo(ctx, &e.repository.full_name).await? else {
                return ignored(format!(
                    "{}: not an installed repository",
                    e.repository.full_name
                ));
            };
            let new = ctx
                .store
                .link_commit_pr(repo.id, &e.pull_request.head.sha, e.number, now)
                .await?;
            // Every pull_request event lists the labels as they are now.
            let labels: Vec<String> = e
                .pull_request
                .labels
                .iter()
                .map(|l| l.name.clone())
                .collect();
            ctx.store
                .set_pr_labels(repo.id, e.number, &labels, now)
                .await?;
            processed(format!(
                "pull request #{} {}: head {}{}",
                e.number,
                e.action,
                e.pull_request.head.sha,
                if new { " linked" } else { "" }
            ))
        }
        Event::Push(e) => {
            let Some(repo) = known_repo(ctx, &e.repository.full_name).await? else {
                return ignored(format!(
                    "{}: not an installed repository",
                    e.repository.full_name
                ));
            };
            match &e.repository.default_branch {
                Some(branch) => {
                    let changed = ctx.store.set_default_branch(repo.id, branch).await?;
                    processed(format!(
                        "push to {}; default branch {branch}{}",
                        e.git_ref,
                        if changed { " (changed)" } else { "" }
                    ))
                }
                None => processed(format!("push to {}", e.git_ref)),
            }
        }
        Event::CheckRun(e) => check_run(ctx, &e).await,
        Event::Other { event } => ignored(format!("{event}: not subscribed")),
    }
}

fn installed(repos: &[events::RepositoryRef]) -> Result<Vec<NewInstalledRepository>, JobError> {
    repos
        .iter()
        .map(|r| r.to_installed().map_err(JobError::Permanent))
        .collect()
}

async fn register(
    ctx: &JobContext,
    installation: &events::Installation,
    repositories: &[NewInstalledRepository],
    now: OffsetDateTime,
) -> Result<(), JobError> {
    ctx.store
        .register_installation(&NewInstallation {
            installation_id: installation.id,
            account_login: installation.account.login.clone(),
            account_type: installation
                .account
                .account_type()
                .unwrap_or(AccountType::Organization),
            repositories: repositories.to_vec(),
            at: now,
        })
        .await?;
    Ok(())
}

async fn installation(
    ctx: &JobContext,
    e: &InstallationEvent,
    now: OffsetDateTime,
) -> Result<Handled, JobError> {
    let id = e.installation.id;
    let state = match e.action.as_str() {
        "created" | "new_permissions_accepted" => {
            register(ctx, &e.installation, &installed(&e.repositories)?, now).await?;
            return processed(format!(
                "installation {id} for {} registered with {} repositories",
                e.installation.account.login,
                e.repositories.len()
            ));
        }
        "deleted" => InstallationState::Deleted,
        "suspend" => InstallationState::Suspended,
        "unsuspend" => InstallationState::Unsuspended,
        other => return ignored(format!("installation {other}")),
    };
    let changed = match ctx.store.set_installation_state(id, state, now).await {
        // An installation FlakeGuard never saw created (installed before it ran).
        Err(StoreError::NotFound(_)) => {
            register(ctx, &e.installation, &installed(&e.repositories)?, now).await?;
            ctx.store.set_installation_state(id, state, now).await?
        }
        other => other?,
    };
    processed(format!(
        "installation {id} {}{}",
        e.action,
        if changed { "" } else { " (already)" }
    ))
}

async fn known_repo(ctx: &JobContext, full_name: &str) -> Result<Option<Repository>, JobError> {
    let Ok(slug) = RepoSlug::parse(full_name) else {
        return Err(JobError::Permanent(format!(
            "{full_name:?} is not a repository name"
        )));
    };
    Ok(ctx.store.find_repository(&slug).await?)
}

/// The repository an event names, registered under its installation when FlakeGuard has
/// not seen it yet (the App was installed before FlakeGuard ran, or the installation event
/// was lost).
async fn installed_repo(
    ctx: &JobContext,
    installation_id: i64,
    repository: &events::Repository,
) -> Result<Repository, JobError> {
    let slug = repository.slug().map_err(JobError::Permanent)?;
    if ctx.store.find_installation_for_repo(&slug).await? != Some(installation_id) {
        let listed = [NewInstalledRepository {
            github_id: repository.id,
            slug: slug.clone(),
        }];
        let now = ctx.now();
        if let Err(StoreError::NotFound(_)) = ctx
            .store
            .add_installed_repositories(installation_id, &listed, now)
            .await
        {
            ctx.store
                .register_installation(&NewInstallation {
                    installation_id,
                    account_login: slug.owner().to_owned(),
                    account_type: AccountType::Organization,
                    repositories: listed.to_vec(),
                    at: now,
                })
                .await?;
        }
    }
    let repo = ctx
        .store
        .find_repository(&slug)
        .await?
        .ok_or_else(|| JobError::Permanent(format!("{slug}: not stored after registration")))?;
    match &repository.default_branch {
        Some(branch) if *branch != repo.default_branch => {
            ctx.store.set_default_branch(repo.id, branch).await?;
            Ok(Repository {
                default_branch: branch.clone(),
                ..repo
            })
        }
        _ => Ok(repo),
    }
}

fn needs_app(ctx: &JobContext) -> Result<&GitHub, Handled> {
    ctx.github.as_deref().ok_or_else(|| {
        Handled::Ignored(
            "the GitHub App is not configured (GITHUB_APP_ID and its private key): nothing \
             can be read from or written to GitHub"
                .to_owned(),
        )
    })
}

/// The repository's policy: what is stored, else the defaults.
async fn settings(ctx: &JobContext, repo: &Repository) -> Result<RepoPolicy, JobError> {
    Ok(RepoPolicy::load(&*ctx.store, repo.id).await?)
}

/// Where GitHub looks for CODEOWNERS, in its order.
const CODEOWNERS_PATHS: [&str; 3] = [".github/CODEOWNERS", "CODEOWNERS", "docs/CODEOWNERS"];

/// On a run of the default branch, reads `.flakeguard.yml` and CODEOWNERS at its commit
/// and stores them (once per commit: a stored file that came from this commit is not read
/// again). Runs of other branches use what the default branch said: a pull request cannot
/// loosen its own policy. A file that does not parse is stored as read (the defaults apply
/// and `GET …/policy` lists its problems); the returned notes say so for the check run.
/// Returns the repository's policy as it now stands, with the notes.
async fn sync_repository_files(
    ctx: &JobContext,
    client: &Installation,
    repo: &Repository,
    head_sha: &str,
    branch: Option<&str>,
) -> Result<(RepoPolicy, Vec<String>), JobError> {
    if branch != Some(repo.default_branch.as_str()) {
        return Ok((settings(ctx, repo).await?, Vec::new()));
    }
    let stored = ctx.store.repo_policy(repo.id).await?;
    let mut changed = false;
    let (owner, name) = (repo.slug.owner(), repo.slug.name());
    let now = ctx.now();
    let mut notes = Vec::new();
    let policy_current = stored.as_ref().is_some_and(|p| {
        p.origin == Some(PolicyOrigin::File) && p.commit.as_deref() == Some(head_sha)
    });
    if !policy_current
        && let Some(text) = client
            .get_file(owner, name, POLICY_FILE, head_sha)
            .await
            .map_err(github_error)?
    {
        if let Err(problems) = RepoConfig::parse(&text) {
            notes.push(format!(
                "{POLICY_FILE} at {head_sha} has {} problem{} (the defaults apply until it is fixed): {}",
                problems.len(),
                if problems.len() == 1 { "" } else { "s" },
                problems
                    .iter()
                    .take(5)
                    .map(|p| p.to_string())
                    .collect::<Vec<_>>()
                    .join("; ")
            ));
        }
        ctx.store
            .put_repo_policy(
                repo.id,
                &NewPolicy {
                    source: text,
                    origin: PolicyOrigin::File,
                    commit: Some(head_sha.to_owned()),
                    updated_at: now,
                    updated_by: format!("github:{POLICY_FILE}"),
                },
            )
            .await?;
        changed = true;
    }
    let owners_current = stored
        .as_ref()
        .and_then(|p| p.codeowners_source.as_deref())
        .is_some_and(|s| s.ends_with(&format!("@{head_sha}")));
    if !owners_current {
        for path in CODEOWNERS_PATHS {
            if let Some(text) = client
                .get_file(owner, name, path, head_sha)
                .await
                .map_err(github_error)?
            {
                ctx.store
                    .put_codeowners(repo.id, &text, &format!("file:{path}@{head_sha}"), now)
                    .await?;
                changed = true;
                break;
            }
        }
    }
    let policy = if changed {
        settings(ctx, repo).await?
    } else {
        RepoPolicy::from_stored(stored, &RepoConfig::default())
    };
    Ok((policy, notes))
}

async fn workflow_run(ctx: &JobContext, e: &WorkflowRunEvent) -> Result<Handled, JobError> {
    let gh = match needs_app(ctx) {
        Ok(gh) => gh,
        Err(handled) => return Ok(handled),
    };
    let Some(installation_id) = e.installation.as_ref().map(|i| i.id) else {
        return ignored("workflow_run without an installation: not delivered to the App");
    };
    let repo = installed_repo(ctx, installation_id, &e.repository).await?;
    let run = &e.workflow_run;
    let pull_requests: Vec<i64> = run.pull_requests.iter().map(|p| p.number).collect();
    let reference = WorkflowRunRef {
        owner: repo.slug.owner().to_owned(),
        repo: repo.slug.name().to_owned(),
        id: run.id,
        attempt: run.run_attempt,
        head_sha: run.head_sha.clone(),
        head_branch: run.head_branch.clone(),
        pull_requests: pull_requests.clone(),
        started_at: run.run_started_at,
    };
    // What triggered it and for which pull requests, beside the runs stored from it.
    ctx.store
        .record_workflow_run(
            repo.id,
            &WorkflowRunRecord {
                workflow_run_id: run.id,
                run_attempt: run.run_attempt,
                name: run.name.clone(),
                event: run.event.clone(),
                head_sha: run.head_sha.clone(),
                head_branch: run.head_branch.clone(),
                pull_requests: pull_requests.clone(),
                conclusion: run.conclusion.clone(),
                updated_at: ctx.now(),
            },
        )
        .await?;
    let client = gh.app.installation(installation_id);
    let (policy, mut notes) = sync_repository_files(
        ctx,
        &client,
        &repo,
        &run.head_sha,
        run.head_branch.as_deref(),
    )
    .await?;
    let collection = artifacts::collect(
        ctx,
        &client,
        &repo,
        &reference,
        &policy.config.artifact_patterns,
        &gh.limits,
    )
    .await?;
    if collection.runs.is_empty() && collection.skipped.is_empty() {
        return ignored(format!(
            "workflow run {}: no test reports among its artifacts",
            run.id
        ));
    }
    // Scored here rather than by their own jobs, so the check run reflects this run; their
    // queued jobs (if any) then find them scored.
    for collected in collection.runs.iter().filter(|c| c.created) {
        jobs::score_now(ctx, repo.id, collected.run).await?;
    }
    let now = ctx.now();
    for pr in &pull_requests {
        ctx.store
            .link_commit_pr(repo.id, &run.head_sha, *pr, now)
            .await?;
    }
    let fresh: Vec<FailureVerdict> = collection
        .runs
        .iter()
        .flat_map(|c| c.failures.iter().cloned())
        .collect();
    notes.extend(collection.skipped.iter().cloned());
    let published = publish(
        ctx,
        gh,
        &client,
        &repo,
        &run.head_sha,
        &fresh,
        Some(run.id),
        &notes,
    )
    .await?;
    Ok(Handled::Processed(format!(
        "workflow run {} attempt {}: {} artifacts stored ({} new), {} left out; {published}",
        run.id,
        run.run_attempt,
        collection.runs.len(),
        collection.runs.iter().filter(|c| c.created).count(),
        collection.skipped.len(),
    )))
}

fn commit_report(gh: &GitHub, repo: &Repository, view: &CommitView) -> CommitReport {
    let failures = view
        .failures
        .iter()
        .map(|f| FailingTest {
            id: f.test,
            key: f.key.clone(),
            file: f.file.clone(),
            classification: f.classification.clone(),
        })
        .collect();
    let newly_flaky = view
        .failures
        .iter()
        .filter(|f| view.newly_flaky.contains(&f.test))
        .filter_map(commit::Failure::as_flaky)
        .collect();
    CommitReport {
        repo: repo.slug.clone(),
        head_sha: view.head_sha.clone(),
        default_branch: repo.default_branch.clone(),
        totals: Totals {
            tests: view.tests,
            passed: view.passed,
            failed: view.failed,
            skipped: view.skipped,
        },
        failures,
        newly_flaky,
        dashboard_url: gh.public_url.clone(),
        quarantine_actions_enabled: gh.quarantine_actions,
    }
}

/// Creates or updates the commit's check run from its stored runs, and the comment of each
/// of its pull requests. `note` lines (files left out, what a button did) go first in the
/// check run's text.
#[allow(clippy::too_many_arguments)]
async fn publish(
    ctx: &JobContext,
    gh: &GitHub,
    client: &Installation,
    repo: &Repository,
    head_sha: &str,
    fresh: &[FailureVerdict],
    workflow_run: Option<i64>,
    notes: &[String],
) -> Result<String, JobError> {
    let view = commit::view(ctx, repo, head_sha, fresh).await?;
    let report = commit_report(gh, repo, &view);
    let rendered = report::check_run_report(&report);
    let mut text = String::new();
    for note in notes {
        if text.len() + note.len() + 3 > report::BODY_LIMIT / 2 {
            text.push_str("- …\n");
            break;
        }
        text.push_str("- ");
        text.push_str(note);
        text.push('\n');
    }
    if let Some(more) = &rendered.text {
        if !text.is_empty() {
            text.push('\n');
        }
        let room = report::BODY_LIMIT.saturating_sub(text.len());
        text.push_str(&more[..more.floor_char_boundary(room)]);
    }
    let request = CheckRunRequest {
        name: CHECK_RUN_NAME.to_owned(),
        head_sha: Some(head_sha.to_owned()),
        status: Some("completed".to_owned()),
        conclusion: Some(rendered.conclusion.to_owned()),
        details_url: gh.public_url.as_ref().map(|base| {
            format!(
                "{base}/repos/{}/{}/commits/{head_sha}",
                repo.slug.owner(),
                repo.slug.name()
            )
        }),
        external_id: Some(head_sha.to_owned()),
        output: Some(CheckRunOutput {
            title: rendered.title.clone(),
            summary: rendered.summary.clone(),
            text: (!text.is_empty()).then_some(text),
        }),
        actions: rendered
            .actions
            .iter()
            .map(|a| CheckRunAction {
                label: a.label.to_owned(),
                description: a.description.to_owned(),
                identifier: a.identifier.to_owned(),
            })
            .collect(),
    };
    let (owner, name) = (repo.slug.owner(), repo.slug.name());
    let stored = ctx.store.check_run_for_commit(repo.id, head_sha).await?;
    let mut posted = match &stored {
        Some(record) => {
            match client
                .update_check_run(owner, name, record.check_run_id, &request)
                .await
            {
                Ok(posted) => posted,
                // Deleted on GitHub (or the repository was transferred): start a new one.
                Err(e) if e.status() == Some(404) => client
                    .create_check_run(owner, name, &request)
                    .await
                    .map_err(github_error)?,
                Err(e) => return Err(github_error(e)),
            }
        }
        None => client
            .create_check_run(owner, name, &request)
            .await
            .map_err(github_error)?,
    };
    let saved = ctx
        .store
        .save_check_run(&NewCheckRun {
            repo: repo.id,
            head_sha: head_sha.to_owned(),
            check_run_id: posted.id,
            workflow_run_id: workflow_run,
            status: "completed".to_owned(),
            conclusion: Some(rendered.conclusion.to_owned()),
            at: ctx.now(),
        })
        .await?;
    if saved.check_run_id != posted.id {
        // Another worker created the commit's check run first: that one is the commit's.
        posted = client
            .update_check_run(owner, name, saved.check_run_id, &request)
            .await
            .map_err(github_error)?;
    }
    let mut prs: BTreeSet<i64> = ctx
        .store
        .prs_for_commit(repo.id, head_sha)
        .await?
        .into_iter()
        .collect();
    prs.extend(view.runs.iter().filter_map(|r| r.pr_number));
    let body = report::pr_comment_body(&report, posted.html_url.as_deref());
    for pr in &prs {
        pr_comment(ctx, client, repo, *pr, &body).await?;
    }
    Ok(format!(
        "check run {} {} ({} failures: {} new, {} known flaky, {} quarantined){}",
        posted.id,
        rendered.conclusion,
        view.failures.len(),
        view.count(|c| *c == Classification::New),
        view.count(|c| matches!(c, Classification::KnownFlaky { .. })),
        view.count(|c| matches!(c, Classification::Quarantined { .. })),
        if prs.is_empty() {
            String::new()
        } else {
            format!("; {} pull request comments", prs.len())
        }
    ))
}

/// One FlakeGuard comment per pull request, updated in place.
async fn pr_comment(
    ctx: &JobContext,
    client: &Installation,
    repo: &Repository,
    pr: i64,
    body: &str,
) -> Result<(), JobError> {
    let (owner, name) = (repo.slug.owner(), repo.slug.name());
    if let Some(stored) = ctx.store.pr_comment(repo.id, pr).await? {
        match client
            .update_issue_comment(owner, name, stored.comment_id, body)
            .await
        {
            Ok(_) => {
                ctx.store
                    .save_pr_comment(repo.id, pr, stored.comment_id, ctx.now())
                    .await?;
                return Ok(());
            }
            // Deleted by someone: post a new one.
            Err(e) if e.status() == Some(404) => {
                ctx.store
                    .forget_pr_comment(repo.id, pr, stored.comment_id)
                    .await?;
            }
            Err(e) => return Err(github_error(e)),
        }
    }
    // Not stored: perhaps posted by a worker that died before saving it. Find it by its
    // marker before posting a second one.
    let existing = client
        .list_issue_comments(owner, name, pr)
        .await
        .map_err(github_error)?
        .into_iter()
        .find(|c| c.body.contains(report::PR_COMMENT_MARKER));
    let comment = match existing {
        Some(found) => client
            .update_issue_comment(owner, name, found.id, body)
            .await
            .map_err(github_error)?,
        None => client
            .create_issue_comment(owner, name, pr, body)
            .await
            .map_err(github_error)?,
    };
    let saved = ctx
        .store
        .save_pr_comment(repo.id, pr, comment.id, ctx.now())
        .await?;
    if saved.comment_id != comment.id {
        client
            .update_issue_comment(owner, name, saved.comment_id, body)
            .await
            .map_err(github_error)?;
    }
    Ok(())
}

async fn check_run(ctx: &JobContext, e: &CheckRunEvent) -> Result<Handled, JobError> {
    if e.check_run.name != CHECK_RUN_NAME {
        return ignored(format!(
            "check run {:?}: not FlakeGuard's",
            e.check_run.name
        ));
    }
    let requested = match (e.action.as_str(), &e.requested_action) {
        ("requested_action", Some(action)) => Some(action.identifier.clone()),
        ("rerequested", _) => None,
        (other, _) => return ignored(format!("check_run {other}")),
    };
    let gh = match needs_app(ctx) {
        Ok(gh) => gh,
        Err(handled) => return Ok(handled),
    };
    let Some(installation_id) = e.installation.as_ref().map(|i| i.id) else {
        return ignored("check_run without an installation: not delivered to the App");
    };
    let repo = installed_repo(ctx, installation_id, &e.repository).await?;
    let client = gh.app.installation(installation_id);
    let head_sha = e.check_run.head_sha.as_str();
    let actor = e
        .sender
        .as_ref()
        .map(|s| format!("github:{}", s.login))
        .unwrap_or_else(|| "github:unknown".to_owned());
    let note = match requested.as_deref() {
        None => format!(
            "Re-evaluated at the request of {}.",
            actor.trim_start_matches("github:")
        ),
        Some(report::ACTION_QUARANTINE) => {
            if !gh.quarantine_actions {
                "Quarantining from the check run is switched off (ENABLE_QUARANTINE_ACTIONS=false)."
                    .to_owned()
            } else {
                quarantine_flaky(ctx, &repo, head_sha, &actor).await?
            }
        }
        Some(report::ACTION_OPEN_ISSUES) => {
            open_issues(ctx, gh, &client, &repo, head_sha, &actor).await?
        }
        Some(report::ACTION_RERUN_FAILED) => {
            rerun_failed(ctx, &client, &repo, head_sha, &actor).await?
        }
        Some(other) => {
            return ignored(format!(
                "check run action {other:?}: not one of FlakeGuard's"
            ));
        }
    };
    let published = publish(
        ctx,
        gh,
        &client,
        &repo,
        head_sha,
        &[],
        None,
        std::slice::from_ref(&note),
    )
    .await?;
    processed(format!("{note} {published}"))
}

/// The failures on the commit that are judged flaky (known or newly), not yet quarantined.
async fn flaky_failures(
    ctx: &JobContext,
    repo: &Repository,
    head_sha: &str,
) -> Result<Vec<commit::Failure>, JobError> {
    let view = commit::view(ctx, repo, head_sha, &[]).await?;
    Ok(view
        .failures
        .into_iter()
        .filter(commit::Failure::is_known_flaky)
        .collect())
}

async fn audit(
    ctx: &JobContext,
    repo: &Repository,
    actor: &str,
    action: &str,
    target: String,
    detail: serde_json::Value,
) -> Result<(), JobError> {
    ctx.store
        .audit(&NewAuditEntry {
            org: Some(repo.org),
            actor: actor.to_owned(),
            action: action.to_owned(),
            target,
            detail: detail.to_string(),
            at: ctx.now(),
        })
        .await?;
    Ok(())
}

async fn quarantine_flaky(
    ctx: &JobContext,
    repo: &Repository,
    head_sha: &str,
    actor: &str,
) -> Result<String, JobError> {
    let policy = settings(ctx, repo).await?;
    let now = ctx.now();
    let until = now + time::Duration::days(i64::from(policy.config.quarantine_duration_days));
    let mut done: Vec<String> = Vec::new();
    for failure in flaky_failures(ctx, repo, head_sha).await? {
        let added = ctx
            .store
            .add_quarantine(
                repo.id,
                &NewQuarantine {
                    test: failure.test,
                    state: QuarantineState::Active,
                    reason: format!(
                        "quarantined from the FlakeGuard check run on {head_sha}: {}",
                        failure.reason
                    ),
                    owner: policy.owner(failure.file.as_deref(), &failure.key),
                    created_by: actor.to_owned(),
                    created_at: now,
                    expires_at: Some(until),
                },
            )
            .await;
        match added {
            Ok(q) => {
                audit(
                    ctx,
                    repo,
                    actor,
                    "quarantine.created",
                    format!("{}#test:{}", repo.slug, failure.test.0),
                    serde_json::json!({
                        "quarantine": q.id.0,
                        "state": q.state.as_str(),
                        "reason": q.reason,
                        "via": "check_run",
                        "commit": head_sha,
                    }),
                )
                .await?;
                crate::quarantine::count_change("created", 1);
                done.push(failure.key.to_string());
            }
            // Quarantined meanwhile (or by an earlier attempt of this job).
            Err(StoreError::Conflict(_)) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(if done.is_empty() {
        format!(
            "Quarantine requested by {}: no flaky failure left to quarantine.",
            actor.trim_start_matches("github:")
        )
    } else {
        format!(
            "Quarantined {} flaky test{} until {} at the request of {}: {}.",
            done.len(),
            if done.len() == 1 { "" } else { "s" },
            until.date(),
            actor.trim_start_matches("github:"),
            done.join(", ")
        )
    })
}

async fn open_issues(
    ctx: &JobContext,
    gh: &GitHub,
    client: &Installation,
    repo: &Repository,
    head_sha: &str,
    actor: &str,
) -> Result<String, JobError> {
    let (owner, name) = (repo.slug.owner(), repo.slug.name());
    let (mut opened, mut found) = (Vec::new(), 0usize);
    for failure in flaky_failures(ctx, repo, head_sha).await? {
        if ctx
            .store
            .flaky_issue(repo.id, failure.test)
            .await?
            .is_some()
        {
            found += 1;
            continue;
        }
        let Some(flaky) = failure.as_flaky() else {
            continue;
        };
        let text = report::flaky_issue(&repo.slug, &flaky, gh.public_url.as_deref());
        // Opened by hand, or by an attempt that died before storing the link.
        let query = report::flaky_issue_search_query(&repo.slug, &failure.key);
        let existing = client
            .search_issues(&query)
            .await
            .map_err(github_error)?
            .into_iter()
            .find(|i| i.title == text.title);
        let issue = match existing {
            Some(issue) => {
                found += 1;
                issue
            }
            None => {
                let issue = client
                    .create_issue(
                        owner,
                        name,
                        &flakeguard_github::NewIssue {
                            title: text.title.clone(),
                            body: text.body.clone(),
                            labels: text.labels.iter().map(|l| (*l).to_owned()).collect(),
                        },
                    )
                    .await
                    .map_err(github_error)?;
                opened.push(format!("#{}", issue.number));
                audit(
                    ctx,
                    repo,
                    actor,
                    "issue.opened",
                    format!("{}#test:{}", repo.slug, failure.test.0),
                    serde_json::json!({"issue": issue.number, "url": issue.html_url, "via": "check_run"}),
                )
                .await?;
                issue
            }
        };
        ctx.store
            .save_flaky_issue(
                repo.id,
                failure.test,
                issue.number,
                &issue.html_url,
                ctx.now(),
            )
            .await?;
    }
    Ok(format!(
        "Issues for flaky tests, at the request of {}: {} opened{}, {} already open.",
        actor.trim_start_matches("github:"),
        opened.len(),
        if opened.is_empty() {
            String::new()
        } else {
            format!(" ({})", opened.join(", "))
        },
        found
    ))
}

async fn rerun_failed(
    ctx: &JobContext,
    client: &Installation,
    repo: &Repository,
    head_sha: &str,
    actor: &str,
) -> Result<String, JobError> {
    let Some(record) = ctx.store.check_run_for_commit(repo.id, head_sha).await? else {
        return Ok("Re-run requested, but no workflow run of this commit is known.".to_owned());
    };
    let (owner, name) = (repo.slug.owner(), repo.slug.name());
    let mut rerun = Vec::new();
    for run in &record.workflow_run_ids {
        match client.rerun_failed_jobs(owner, name, *run).await {
            Ok(()) => rerun.push(run.to_string()),
            // Nothing failed in that run, or it is still running: GitHub refuses with 403/422.
            Err(e @ GitHubError::Http { .. }) if matches!(e.status(), Some(403 | 409 | 422)) => {}
            Err(e) => return Err(github_error(e)),
        }
    }
    audit(
        ctx,
        repo,
        actor,
        "workflow.rerun_failed",
        format!("{}@{head_sha}", repo.slug),
        serde_json::json!({"workflow_runs": rerun}),
    )
    .await?;
    Ok(format!(
        "Re-ran the failed jobs of workflow run{} {} at the request of {}.",
        if rerun.len() == 1 { "" } else { "s" },
        if rerun.is_empty() {
            "none".to_owned()
        } else {
            rerun.join(", ")
        },
        actor.trim_start_matches("github:")
    ))
}
