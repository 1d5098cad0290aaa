//! `flakeguard jobs list|retry|purge-dead`: look into the queues and deal with dead jobs.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use flakeguard_app::jobs::JobKind;
use flakeguard_app::{Environment, Settings};
use flakeguard_queue::{JobInfo, JobQueue, JobState};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::cli::{JobStateArg, JobsCommand, UploadFormat};
use crate::database::Database;

pub(crate) fn run(command: &JobsCommand) -> Result<ExitCode> {
    let env = Environment::from_process(Path::new(".env"), Some(PathBuf::from("/run/secrets")))?;
    let settings = Settings::from_env(&env)?;
    let database = Database::from_settings(&settings)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let queue = crate::queue::open(&settings, &database).await?;
        queue.ping().await.with_context(|| {
            format!(
                "cannot reach the queue: {}",
                crate::queue::describe(&settings, &database)
            )
        })?;
        match command {
            JobsCommand::List {
                queue: only,
                state,
                limit,
                format,
            } => list(&*queue, queues(only.as_deref())?, *state, *limit, *format).await,
            JobsCommand::Retry {
                queue: only,
                all,
                ids,
            } => retry(&*queue, only.as_deref(), *all, ids).await,
            JobsCommand::PurgeDead { queue: only, id } => {
                let mut purged = 0;
                for name in queues(only.as_deref())? {
                    purged += queue.purge_dead(name, id.as_deref()).await?;
                }
                if purged == 0 && id.is_some() {
                    eprintln!(
                        "no dead job with that id in {}",
                        only.as_deref().unwrap_or("any queue")
                    );
                    return Ok(ExitCode::from(1));
                }
                println!("purged {purged} dead job{}", plural(purged));
                Ok(ExitCode::SUCCESS)
            }
        }
    })
}

/// The queues a command applies to: one named, or all.
fn queues(only: Option<&str>) -> Result<Vec<&'static str>> {
    match only {
        None => Ok(JobKind::QUEUES.to_vec()),
        Some(name) => match JobKind::parse(name) {
            Some(kind) => Ok(vec![kind.as_str()]),
            None => bail!(
                "--queue {name}: unknown queue (expected one of {})",
                JobKind::QUEUES.join(", ")
            ),
        },
    }
}

fn plural(n: u64) -> &'static str {
    if n == 1 { "" } else { "s" }
}

async fn list(
    queue: &dyn JobQueue,
    names: Vec<&'static str>,
    state: JobStateArg,
    limit: u32,
    format: UploadFormat,
) -> Result<ExitCode> {
    let states: Vec<JobState> = match state {
        JobStateArg::Pending => vec![JobState::Pending],
        JobStateArg::Running => vec![JobState::Running],
        JobStateArg::Retrying => vec![JobState::Retrying],
        JobStateArg::Dead => vec![JobState::Dead],
        JobStateArg::All => JobState::ALL.to_vec(),
    };
    let stats = queue.stats(&names).await?;
    let mut jobs: Vec<JobInfo> = Vec::new();
    for name in &names {
        for state in &states {
            jobs.extend(queue.list(name, *state, limit).await?);
        }
    }
    match format {
        UploadFormat::Json => {
            let value = serde_json::json!({
                "backend": queue.backend(),
                "queues": stats.iter().map(|s| serde_json::json!({
                    "name": s.name, "pending": s.pending, "running": s.running,
                    "failed": s.failed, "dead": s.dead,
                })).collect::<Vec<_>>(),
                "jobs": jobs.iter().map(|j| serde_json::json!({
                    "queue": j.queue, "id": j.id, "state": j.state.as_str(),
                    "attempts": j.attempts, "max_attempts": j.max_attempts,
                    "last_error": j.last_error, "payload": j.payload,
                    "created_at": timestamp(j.created_at_ms), "updated_at": timestamp(j.updated_at_ms),
                })).collect::<Vec<_>>(),
            });
            println!("{}", serde_json::to_string_pretty(&value)?);
        }
        UploadFormat::Text => {
            println!(
                "{:<16} {:>8} {:>8} {:>8} {:>8}   ({})",
                "QUEUE",
                "PENDING",
                "RUNNING",
                "FAILED",
                "DEAD",
                queue.backend()
            );
            for s in &stats {
                println!(
                    "{:<16} {:>8} {:>8} {:>8} {:>8}",
                    s.name, s.pending, s.running, s.failed, s.dead
                );
            }
            println!();
            if jobs.is_empty() {
                println!("no {} jobs", state_label(state));
            }
            for j in &jobs {
                println!(
                    "{} {} [{}] attempts {}/{} updated {}",
                    j.queue,
                    j.id,
                    j.state,
                    j.attempts,
                    j.max_attempts,
                    timestamp(j.updated_at_ms)
                );
                if let Some(error) = &j.last_error {
                    println!("    last error: {error}");
                }
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn state_label(state: JobStateArg) -> &'static str {
    match state {
        JobStateArg::Pending => "pending",
        JobStateArg::Running => "running",
        JobStateArg::Retrying => "retrying",
        JobStateArg::Dead => "dead",
        JobStateArg::All => "queued",
    }
}

fn timestamp(ms: i64) -> String {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .ok()
        .and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_else(|| ms.to_string())
}

async fn retry(
    queue: &dyn JobQueue,
    only: Option<&str>,
    all: bool,
    ids: &[String],
) -> Result<ExitCode> {
    if all {
        let mut moved = 0;
        for name in queues(only)? {
            moved += queue.retry_dead(name, None).await?;
        }
        println!("{moved} dead job{} queued again", plural(moved));
        return Ok(ExitCode::SUCCESS);
    }
    let mut missing = Vec::new();
    let mut moved = 0;
    for id in ids {
        // A job id starts with its queue's name (`score_tests:run:42`), so --queue is optional.
        let name = match only {
            Some(name) => queues(Some(name))?[0],
            None => match id.split(':').next().and_then(JobKind::parse) {
                Some(kind) => kind.as_str(),
                None => bail!("{id}: cannot tell its queue; pass --queue"),
            },
        };
        match queue.retry_dead(name, Some(id)).await? {
            0 => missing.push(id.as_str()),
            n => moved += n,
        }
    }
    println!("{moved} dead job{} queued again", plural(moved));
    if !missing.is_empty() {
        eprintln!("not dead (or unknown): {}", missing.join(", "));
        return Ok(ExitCode::from(1));
    }
    Ok(ExitCode::SUCCESS)
}
