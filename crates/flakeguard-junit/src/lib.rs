//! FlakeGuard's JUnit XML reader.
//!
//! [`JunitReader`] streams a report over any [`std::io::BufRead`] and hands out one
//! [`TestCase`] at a time, so memory stays bounded by the largest testcase (and the
//! [`Limits`]), never by the document. It reads every common producer's dialect — Surefire and
//! Gradle (`flakyFailure`, `rerunFailure`), nextest retries, pytest-rerunfailures repeats,
//! Jest, Playwright projects, Go, PHPUnit and the rest — in UTF-8 or UTF-16, and refuses
//! hostile input (entity declarations, oversize documents, runaway nesting) with an error
//! that names the XML path and byte offset. Oddities that do not prevent reading are
//! collected as [`Issue`]s instead of failing the file.
#![forbid(unsafe_code)]

mod detect;
mod error;
mod input;
mod issues;
mod limits;
mod model;
mod reader;
mod summary;

use std::fs::File;
use std::io::BufReader;
use std::path::Path;

pub use detect::Format;
pub use error::{ErrorKind, ParseError};
pub use issues::{Issue, IssueLog};
pub use limits::Limits;
pub use model::{Attempt, CappedText, Failure, FailureKind, Status, Suite, TestCase};
pub use reader::{DocumentInfo, JunitReader};
pub use summary::{Summary, SummaryBuilder, summarize};

impl ParseError {
    /// The report format this error identifies the file as (`Trx`, `Nunit`, … when the file is
    /// another format; `Junit` for JUnit files that are broken; `Unknown` otherwise).
    pub fn format(&self) -> Format {
        match &self.kind {
            ErrorKind::OtherFormat(what) => {
                let root = what
                    .rsplit_once("root <")
                    .map(|(_, r)| r.trim_end_matches(">)"));
                root.and_then(detect::other_format_for_root)
                    .map(|(f, _)| f)
                    .unwrap_or(Format::Unknown)
            }
            ErrorKind::UnexpectedRoot(root) if root == "testcase" => Format::Junit,
            ErrorKind::UnexpectedRoot(_) | ErrorKind::Empty | ErrorKind::NotXml(_) => {
                Format::Unknown
            }
            _ => Format::Junit,
        }
    }
}

/// Opens a report file for streaming.
pub fn open(path: &Path, limits: Limits) -> Result<JunitReader<BufReader<File>>, ParseError> {
    let file = File::open(path).map_err(|e| ParseError {
        path: String::new(),
        offset: 0,
        kind: ErrorKind::Io(e.to_string()),
    })?;
    JunitReader::new(BufReader::with_capacity(64 << 10, file), limits)
}
