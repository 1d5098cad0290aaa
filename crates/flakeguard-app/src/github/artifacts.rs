//! From a completed workflow run to stored runs: list the run's artifacts, pick those that
//! hold test reports, download each within its caps, read the reports out of the zip and
//! record one run per (workflow run, attempt, artifact).

use flakeguard_core::config::Glob;
use flakeguard_github::{ArchiveLimits, Artifact, GitHubError, Installation, read_archive};
use flakeguard_store::{Repository, Source};
use time::OffsetDateTime;

use crate::ingest::{FailureVerdict, IngestError, ReportFile, RunMeta, ingest_reports};
use crate::jobs::{JobContext, JobError};
use flakeguard_store::StoredRunId;

/// What FlakeGuard reads of a workflow run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkflowRunRef {
    pub owner: String,
    pub repo: String,
    pub id: i64,
    pub attempt: u32,
    pub head_sha: String,
    pub head_branch: Option<String>,
    pub pull_requests: Vec<i64>,
    pub started_at: Option<OffsetDateTime>,
}

/// Caps on what one workflow run may make FlakeGuard download and inflate.
#[derive(Debug, Clone)]
pub struct ArtifactLimits {
    /// Largest zip downloaded (compressed).
    pub max_download: u64,
    /// Largest total of the artifacts downloaded for one run.
    pub max_run_download: u64,
    pub archive: ArchiveLimits,
}

impl Default for ArtifactLimits {
    fn default() -> Self {
        ArtifactLimits {
            max_download: 512 << 20,
            max_run_download: 2 << 30,
            archive: ArchiveLimits::default(),
        }
    }
}

/// One artifact's stored run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CollectedArtifact {
    pub artifact: String,
    pub run: StoredRunId,
    pub created: bool,
    pub testcases: u64,
    pub failed: u64,
    pub failures: Vec<FailureVerdict>,
}

/// What a workflow run gave.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Collection {
    pub runs: Vec<CollectedArtifact>,
    /// Files and artifacts left out, each with the reason (for the check run's summary).
    pub skipped: Vec<String>,
}

/// Retry what may pass later; give up on what will not.
pub(crate) fn github_error(e: GitHubError) -> JobError {
    if e.is_transient() {
        JobError::Retry(e.to_string())
    } else {
        JobError::Permanent(e.to_string())
    }
}

/// The artifacts that hold test reports: those whose name matches a pattern (ignoring
/// case). When none does, every artifact is a candidate and only those that contain XML
/// reports count.
pub fn choose<'a>(artifacts: &'a [Artifact], patterns: &[Glob]) -> (Vec<&'a Artifact>, bool) {
    let live: Vec<&Artifact> = artifacts.iter().filter(|a| !a.expired).collect();
    let named: Vec<&Artifact> = live
        .iter()
        .copied()
        .filter(|a| patterns.iter().any(|p| p.matches_ignoring_case(&a.name)))
        .collect();
    if named.is_empty() {
        (live, false)
    } else {
        (named, true)
    }
}

/// Downloads, reads and records the test reports of one workflow run.
pub async fn collect(
    ctx: &JobContext,
    installation: &Installation,
    repo: &Repository,
    run: &WorkflowRunRef,
    patterns: &[Glob],
    limits: &ArtifactLimits,
) -> Result<Collection, JobError> {
    let artifacts = installation
        .list_run_artifacts(&run.owner, &run.repo, run.id)
        .await
        .map_err(github_error)?;
    let (chosen, by_name) = choose(&artifacts, patterns);
    let mut collection = Collection::default();
    let mut downloaded = 0u64;
    for artifact in chosen {
        if artifact.size_in_bytes > limits.max_download {
            collection.skipped.push(format!(
                "artifact {}: {} bytes, over the {} byte cap",
                artifact.name, artifact.size_in_bytes, limits.max_download
            ));
            continue;
        }
        if downloaded + artifact.size_in_bytes > limits.max_run_download {
            collection.skipped.push(format!(
                "artifact {}: the run's artifacts exceed {} bytes in all",
                artifact.name, limits.max_run_download
            ));
            continue;
        }
        let zip = match installation
            .download_artifact(&run.owner, &run.repo, artifact.id, limits.max_download)
            .await
        {
            Ok(zip) => zip,
            Err(e @ GitHubError::TooLarge { .. }) => {
                collection
                    .skipped
                    .push(format!("artifact {}: {e}", artifact.name));
                continue;
            }
            Err(e) => return Err(github_error(e)),
        };
        downloaded += zip.len() as u64;
        let files = match read_archive(&zip, &limits.archive) {
            Ok(files) => files,
            Err(e) => {
                collection
                    .skipped
                    .push(format!("artifact {}: refused: {e}", artifact.name));
                continue;
            }
        };
        let mut reports: Vec<ReportFile> = files
            .into_iter()
            .filter(|f| flakeguard_github::is_report_candidate(&f.name))
            .map(|f| ReportFile {
                name: format!("{}/{}", artifact.name, f.name),
                bytes: f.bytes,
            })
            .collect();
        if reports.is_empty() {
            if by_name {
                collection
                    .skipped
                    .push(format!("artifact {}: no XML report in it", artifact.name));
            }
            continue;
        }
        let meta = RunMeta {
            repo: repo.slug.clone(),
            commit: Some(run.head_sha.clone()),
            branch: run.head_branch.clone(),
            run_id: Some(run.id.to_string()),
            attempt: run.attempt.max(1),
            job: artifact.name.clone(),
            pr: run.pull_requests.first().copied(),
            started_at: run.started_at,
            source: Source::GithubArtifact,
        };
        // A file that is not a JUnit report (coverage, lint output) or cannot be read is left
        // out with its reason; the rest of the artifact still counts.
        loop {
            if reports.is_empty() {
                break;
            }
            match ingest_reports(&*ctx.store, repo, &meta, &reports, ctx.now()).await {
                Ok(result) => {
                    collection.runs.push(CollectedArtifact {
                        artifact: artifact.name.clone(),
                        run: result.run,
                        created: result.created,
                        testcases: result.testcases,
                        failed: result.failed,
                        failures: result.failures,
                    });
                    break;
                }
                Err(IngestError::Report { file, error }) => {
                    let what = match error.format() {
                        flakeguard_junit::Format::Junit => "unreadable JUnit report",
                        _ => "not a JUnit report",
                    };
                    collection.skipped.push(format!("{file}: {what}: {error}"));
                    reports.retain(|r| r.name != file);
                }
                Err(IngestError::NoReports) => break,
                Err(IngestError::Store(e)) => return Err(e.into()),
            }
        }
    }
    Ok(collection)
}
