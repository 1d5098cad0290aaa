//! Fuzz target for `flakeguard_junit::JunitReader`: any byte string, read to the end under
//! small limits, must produce test cases or a located error — never a panic, a hang or
//! unbounded memory. Errors and issues are formatted too, since `Display` runs on every
//! report `flakeguard validate` prints.
#![no_main]

use std::io::{BufRead, BufReader};

use flakeguard_junit::{JunitReader, Limits, TestCase, summarize};
use libfuzzer_sys::fuzz_target;

/// Limits small enough that the fuzzer reaches them, large enough for real reports.
fn small_limits() -> Limits {
    Limits {
        max_bytes: 1 << 20,
        max_depth: 32,
        max_elements: 20_000,
        max_attribute_len: 4 << 10,
        max_token_len: 64 << 10,
        text_cap: 1 << 10,
        output_cap: 1 << 10,
    }
}

/// Tiny limits: every cap and limit is within a few bytes, so truncation at character
/// boundaries and every limit error are exercised on ordinary-sized inputs.
fn tiny_limits() -> Limits {
    Limits {
        max_bytes: 4 << 10,
        max_depth: 6,
        max_elements: 64,
        max_attribute_len: 33,
        max_token_len: 257,
        text_cap: 7,
        output_cap: 5,
    }
}

/// Touches everything a consumer reads from a test case.
fn inspect(case: &TestCase) -> usize {
    let mut n = case.key.to_string().len() + case.key.display_name().len();
    n += case.suite.name().len() + case.name.len();
    for attempt in case.attempts() {
        n += usize::from(attempt.outcome.is_failure());
        if let Some(f) = attempt.failure {
            n += f.summary().len() + usize::from(f.kind.is_flaky() || f.kind.is_rerun());
        }
    }
    if let Some(f) = case.final_failure() {
        n += f.summary().len() + f.text.text.len();
    }
    for f in case.failures.iter().chain(&case.retries) {
        n += f.summary().len();
    }
    n + usize::from(case.is_flaky_within())
}

/// Drains one reader, formatting whatever error ends it.
fn drain<R: BufRead>(input: R, limits: Limits) {
    let mut reader = match JunitReader::new(input, limits) {
        Ok(r) => r,
        Err(e) => {
            let _ = e.to_string();
            let _ = e.format();
            return;
        }
    };
    let mut touched = 0usize;
    loop {
        match reader.next_case() {
            Ok(Some(case)) => touched = touched.wrapping_add(inspect(&case)),
            Ok(None) => break,
            Err(e) => {
                let _ = e.to_string();
                let _ = e.format();
                // After an error the reader is done.
                let _ = reader.next_case();
                break;
            }
        }
    }
    let _ = reader.issues().lines();
    let _ = reader.info();
    let _ = reader.dialect();
    std::hint::black_box(touched);
}

/// Counts the whole report the way `flakeguard validate` does.
fn count<R: BufRead>(input: R, limits: Limits) {
    match JunitReader::new(input, limits).and_then(summarize) {
        Ok((summary, issues, dialect)) => {
            std::hint::black_box((summary, issues.lines(), dialect));
        }
        Err(e) => {
            let _ = e.to_string();
        }
    }
}

fuzz_target!(|data: &[u8]| {
    // The whole input in one buffer, as for a file read into memory.
    drain(data, small_limits());
    count(data, small_limits());
    // Small, odd-sized chunks: UTF-16 code units, BOMs, tokens and limits split across reads.
    drain(BufReader::with_capacity(7, data), tiny_limits());
});
