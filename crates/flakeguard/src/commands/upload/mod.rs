//! `flakeguard upload`: send one CI run's reports to a FlakeGuard server, all in one gzipped
//! multipart request, and say what the server made of them.

mod multipart;
pub(crate) mod send;
pub(crate) mod target;

use std::collections::HashSet;
use std::io::{IsTerminal, Write};
use std::path::{Component, Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use bytes::Bytes;
use serde::Deserialize;

use crate::cli::{UploadArgs, UploadFormat};
use crate::files;
use crate::progress;
use multipart::Part;
use send::Retry;
use target::Target;

/// The server's answer to a stored (or already stored) run.
#[derive(Debug, Deserialize)]
pub(crate) struct Stored {
    run_id: i64,
    created: bool,
    repo: String,
    testcases: u64,
    failed: u64,
    #[serde(default)]
    failures: Vec<Failure>,
    #[serde(default)]
    url: Option<String>,
}

#[derive(Debug, Deserialize)]
struct Failure {
    key: String,
    status: String,
}

/// More failures than this are counted but not listed: the server's page has them all.
const MAX_LISTED_FAILURES: usize = 50;

pub(crate) fn run(args: &UploadArgs) -> Result<ExitCode> {
    let target = Target::resolve(&args.options, |name| std::env::var(name).ok())?;
    let files = report_paths(&args.paths)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let uploaded = runtime.block_on(upload(
        &target,
        Retry::from_args(&args.options.server),
        files,
    ))?;
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    match args.format {
        UploadFormat::Json => {
            out.write_all(uploaded.body.trim_ascii_end())?;
            out.write_all(b"\n")?;
        }
        UploadFormat::Text => uploaded.write_summary(&mut out, std::io::stdout().is_terminal())?,
    }
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}

/// A run's reports, stored by the server (or already stored), and what it made of them.
#[derive(Debug)]
pub(crate) struct Uploaded {
    pub(crate) stored: Stored,
    /// The server's JSON answer as it came.
    pub(crate) body: Bytes,
    reports: usize,
    payload: multipart::Payload,
}

impl Uploaded {
    /// `uploaded 3 reports (…) to acme/shop: run 17, 412 tests, 2 failed — …`, the failures
    /// by status, and the run's address.
    pub(crate) fn write_summary(&self, out: &mut impl Write, color: bool) -> std::io::Result<()> {
        write_summary(out, &self.stored, self.reports, &self.payload, color)
    }
}

/// Sends one run's report files to the target's server in one gzipped multipart request,
/// retrying as `retry` says; a progress bar shows on a terminal.
pub(crate) async fn upload(target: &Target, retry: Retry, files: Vec<PathBuf>) -> Result<Uploaded> {
    let parts = named_parts(files);
    let payload = multipart::build(&parts)?;
    let upload = send::Upload {
        url: target.ingest_url(),
        token: &target.endpoint.token,
        content_type: payload.content_type(),
        body: payload.gzipped.clone(),
        retry,
    };
    let bar = progress::upload_bar(payload.gzipped.len() as u64);
    bar.set_message(format!(
        "{} to {}",
        plural(parts.len(), "report"),
        target.endpoint.repo
    ));
    let answer = send::send(&upload, &bar).await;
    bar.finish_and_clear();
    let answer = answer?;
    let stored: Stored = serde_json::from_slice(&answer.body).with_context(|| {
        format!(
            "the server answered HTTP {} but not with the expected JSON",
            answer.status.as_u16()
        )
    })?;
    Ok(Uploaded {
        stored,
        body: answer.body,
        reports: parts.len(),
        payload,
    })
}

/// Every file named by the arguments, once each, in the order given.
fn report_paths(paths: &[PathBuf]) -> Result<Vec<PathBuf>> {
    let mut files: Vec<PathBuf> = Vec::new();
    let mut seen = HashSet::new();
    for path in paths {
        let found = if files::is_pattern(path) {
            files::pattern_files(&path.to_string_lossy())?
        } else {
            let found = files::report_files(path)
                .with_context(|| format!("cannot read {}", path.display()))?;
            if found.is_empty() {
                eprintln!("warning: no *.xml files in {}", path.display());
            }
            found
        };
        for file in found {
            if seen.insert(file.clone()) {
                files.push(file);
            }
        }
    }
    if files.is_empty() {
        bail!("no report files to upload");
    }
    Ok(files)
}

/// The files with the names the server is told.
fn named_parts(files: Vec<PathBuf>) -> Vec<Part> {
    let cwd = std::env::current_dir().ok();
    files
        .into_iter()
        .map(|path| Part {
            filename: filename(&path, cwd.as_deref()),
            path,
        })
        .collect()
}

/// The name the server is told: the path as given, with `/` separators and no `./`; an absolute
/// path inside the working directory is made relative to it.
fn filename(path: &Path, cwd: Option<&Path>) -> String {
    let relative = cwd
        .and_then(|cwd| path.strip_prefix(cwd).ok())
        .filter(|r| !r.as_os_str().is_empty())
        .unwrap_or(path);
    let mut parts = Vec::new();
    let mut absolute = false;
    for component in relative.components() {
        match component {
            Component::CurDir => {}
            Component::RootDir => absolute = parts.is_empty(),
            other => parts.push(other.as_os_str().to_string_lossy()),
        }
    }
    let joined = parts.join("/");
    if absolute {
        format!("/{joined}")
    } else {
        joined
    }
}

fn write_summary(
    out: &mut impl Write,
    stored: &Stored,
    reports: usize,
    payload: &multipart::Payload,
    color: bool,
) -> std::io::Result<()> {
    let (red, yellow, dim, reset) = if color {
        ("\x1b[31m", "\x1b[33m", "\x1b[2m", "\x1b[0m")
    } else {
        ("", "", "", "")
    };
    let count = |status: &str| {
        stored
            .failures
            .iter()
            .filter(|f| f.status == status)
            .count()
    };
    write!(
        out,
        "uploaded {} ({}, {} gzipped) to {}: run {}{}, {}, {} failed",
        plural(reports, "report"),
        human_bytes(payload.size),
        human_bytes(payload.gzipped.len() as u64),
        stored.repo,
        stored.run_id,
        if stored.created {
            ""
        } else {
            " (already stored)"
        },
        plural(
            usize::try_from(stored.testcases).unwrap_or(usize::MAX),
            "test"
        ),
        stored.failed,
    )?;
    if !stored.failures.is_empty() {
        write!(
            out,
            " — {} new, {} known flaky, {} quarantined",
            count("new"),
            count("known_flaky"),
            count("quarantined")
        )?;
    }
    writeln!(out)?;
    for failure in stored.failures.iter().take(MAX_LISTED_FAILURES) {
        let (label, paint) = match failure.status.as_str() {
            "new" => ("new", red),
            "known_flaky" => ("known flaky", yellow),
            "quarantined" => ("quarantined", dim),
            other => (other, ""),
        };
        writeln!(out, "  {paint}{label:<12}{reset} {}", failure.key)?;
    }
    if stored.failures.len() > MAX_LISTED_FAILURES {
        let more = stored.failures.len() - MAX_LISTED_FAILURES;
        writeln!(out, "  … and {more} more")?;
    }
    if let Some(url) = &stored.url {
        writeln!(out, "{url}")?;
    }
    Ok(())
}

pub(crate) fn plural(n: usize, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}

/// `812 B`, `84 KiB`, `1.2 MiB`, `3.0 GiB`.
fn human_bytes(bytes: u64) -> String {
    const KIB: f64 = 1024.0;
    let b = bytes as f64;
    if bytes < 1024 {
        format!("{bytes} B")
    } else if b < KIB * KIB {
        format!("{:.0} KiB", b / KIB)
    } else if b < KIB * KIB * KIB {
        format!("{:.1} MiB", b / (KIB * KIB))
    } else {
        format!("{:.1} GiB", b / (KIB * KIB * KIB))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_the_paths_as_given_with_slashes() {
        let cwd = Path::new("/work/repo");
        assert_eq!(
            filename(Path::new("./reports/a.xml"), Some(cwd)),
            "reports/a.xml"
        );
        assert_eq!(
            filename(Path::new("/work/repo/reports/a.xml"), Some(cwd)),
            "reports/a.xml"
        );
        assert_eq!(filename(Path::new("/tmp/a.xml"), Some(cwd)), "/tmp/a.xml");
        assert_eq!(filename(Path::new("../up/a.xml"), Some(cwd)), "../up/a.xml");
        assert_eq!(filename(Path::new("a.xml"), None), "a.xml");
    }

    #[test]
    fn sizes_read_like_a_person_would_write_them() {
        assert_eq!(human_bytes(812), "812 B");
        assert_eq!(human_bytes(84 * 1024 + 100), "84 KiB");
        assert_eq!(human_bytes(1_258_291), "1.2 MiB");
        assert_eq!(human_bytes(3 * 1024 * 1024 * 1024), "3.0 GiB");
    }

    #[test]
    fn the_summary_counts_failures_by_status_and_lists_them() {
        let stored: Stored = serde_json::from_str(
            r#"{"run_id": 17, "created": true, "repo": "acme/shop", "testcases": 412, "failed": 2,
                "failures": [{"key": "shop::cart::total", "status": "new"},
                             {"key": "shop::login", "status": "known_flaky"}],
                "url": "https://fg.example.com/acme/shop/runs/17"}"#,
        )
        .unwrap();
        let payload = multipart::Payload {
            boundary: "b".to_owned(),
            gzipped: vec![0; 84 * 1024].into(),
            size: 1_258_291,
        };
        let mut out = Vec::new();
        write_summary(&mut out, &stored, 3, &payload, false).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "uploaded 3 reports (1.2 MiB, 84 KiB gzipped) to acme/shop: run 17, 412 tests, 2 failed — 1 new, 1 known flaky, 0 quarantined\n\
             \x20 new          shop::cart::total\n\
             \x20 known flaky  shop::login\n\
             https://fg.example.com/acme/shop/runs/17\n"
        );
    }
}
