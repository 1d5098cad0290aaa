//! Shared helpers for the reader's integration tests: where the third-party fixtures live
//! and a one-call way to read a report.

// Each test binary uses its own subset of these helpers.
#![allow(dead_code, unreachable_pub)]

use std::path::PathBuf;

use flakeguard_junit::{IssueLog, JunitReader, Limits, ParseError, Summary, TestCase};

/// `shared/fixtures`, beside the repository (override with `FLAKEGUARD_FIXTURES`).
pub fn fixtures() -> PathBuf {
    if let Ok(dir) = std::env::var("FLAKEGUARD_FIXTURES") {
        return PathBuf::from(dir);
    }
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/fixtures")
}

pub fn fixture(rel: &str) -> PathBuf {
    fixtures().join(rel)
}

/// Reads every testcase of a document held in memory.
pub fn read_all(xml: &[u8]) -> Result<(Vec<TestCase>, IssueLog), ParseError> {
    read_all_with(xml, Limits::default())
}

pub fn read_all_with(xml: &[u8], limits: Limits) -> Result<(Vec<TestCase>, IssueLog), ParseError> {
    let mut reader = JunitReader::new(xml, limits)?;
    let mut cases = Vec::new();
    while let Some(case) = reader.next_case()? {
        cases.push(case);
    }
    Ok((cases, reader.issues().clone()))
}

pub fn summarize_file(rel: &str) -> Result<(Summary, IssueLog, &'static str), ParseError> {
    let reader = flakeguard_junit::open(&fixture(rel), Limits::default())?;
    flakeguard_junit::summarize(reader)
}
