//! Streams a generated JUnit report of any size through `JunitReader` without ever holding
//! it in memory or on disk, and prints how many testcases it read: the workload behind
//! `scripts/measure-rss.sh`, which measures the reader's peak RSS on a 1 GB report.
//!
//! Usage: `cargo run --release -p flakeguard-junit --example parse_big -- [SIZE]`, where SIZE
//! is bytes with an optional K/M/G suffix (binary units; default 1G). With `--emit SIZE` it
//! writes the generated report to standard output instead of reading it.

use std::io::BufReader;
use std::process::ExitCode;
use std::time::Instant;

use flakeguard_junit::{JunitReader, Limits};

#[path = "../benches/support/synthetic.rs"]
mod synthetic;

fn parse_size(arg: &str) -> Option<u64> {
    let arg = arg.trim();
    let (digits, shift) = match arg.as_bytes().last()? {
        b'K' | b'k' => (&arg[..arg.len() - 1], 10),
        b'M' | b'm' => (&arg[..arg.len() - 1], 20),
        b'G' | b'g' => (&arg[..arg.len() - 1], 30),
        _ => (arg, 0),
    };
    digits.parse::<u64>().ok()?.checked_mul(1 << shift)
}

fn main() -> ExitCode {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let emit = args.first().is_some_and(|a| a == "--emit");
    if emit {
        args.remove(0);
    }
    let arg = args.first().cloned().unwrap_or_else(|| "1G".to_owned());
    let Some(size) = parse_size(&arg) else {
        eprintln!("usage: parse_big [--emit] [SIZE[K|M|G]]  (got {arg:?})");
        return ExitCode::from(2);
    };
    if emit {
        let mut report = synthetic::SyntheticReport::new(size);
        return match std::io::copy(&mut report, &mut std::io::stdout().lock()) {
            Ok(_) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::FAILURE
            }
        };
    }
    let limits = Limits {
        max_bytes: u64::MAX,
        ..Default::default()
    };
    let started = Instant::now();
    let source = BufReader::with_capacity(64 << 10, synthetic::SyntheticReport::new(size));
    let mut reader = match JunitReader::new(source, limits) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    let mut testcases = 0u64;
    let mut failed = 0u64;
    loop {
        match reader.next_case() {
            Ok(Some(case)) => {
                testcases += 1;
                failed += u64::from(case.status.is_failure());
            }
            Ok(None) => break,
            Err(e) => {
                eprintln!("error after {testcases} testcases: {e}");
                return ExitCode::FAILURE;
            }
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    let bytes = reader.info().bytes;
    println!(
        "read {bytes} bytes, {testcases} testcases ({failed} failed) in {elapsed:.2} s: \
         {:.0} MB/s, {:.0} testcases/s",
        bytes as f64 / 1e6 / elapsed,
        testcases as f64 / elapsed,
    );
    ExitCode::SUCCESS
}
