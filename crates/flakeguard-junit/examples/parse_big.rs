//! Streams a generated JUnit report of any size through `JunitReader` without ever holding
//! it in memory or on disk, and prints how many testcases it read: the workload behind
//! `scripts/measure-rss.sh`, which measures the reader's peak RSS on a 1 GB report.
//!
//! Usage: `cargo run --release -p flakeguard-junit --example parse_big -- [SIZE]`, where SIZE
//! is bytes with an optional K/M/G suffix (binary units; default 1G). `--emit SIZE` writes
//! the generated report to standard output instead of reading it; `--file PATH` reads a
//! report from disk instead (to measure the reader's memory on any file).

use std::fs::File;
use std::io::{BufReader, Read};
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

fn usage(got: &[String]) -> ExitCode {
    eprintln!("usage: parse_big [SIZE[K|M|G]] | --emit SIZE | --file PATH   (got {got:?})");
    ExitCode::from(2)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let limits = Limits {
        max_bytes: u64::MAX,
        ..Default::default()
    };
    let started = Instant::now();
    let source: Box<dyn Read> = match args.as_slice() {
        [flag, path] if flag == "--file" => match File::open(path) {
            Ok(f) => Box::new(f),
            Err(e) => {
                eprintln!("error: {path}: {e}");
                return ExitCode::FAILURE;
            }
        },
        [flag, size] if flag == "--emit" => {
            let Some(size) = parse_size(size) else {
                return usage(&args);
            };
            let mut report = synthetic::SyntheticReport::new(size);
            return match std::io::copy(&mut report, &mut std::io::stdout().lock()) {
                Ok(_) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("error: {e}");
                    ExitCode::FAILURE
                }
            };
        }
        [] => Box::new(synthetic::SyntheticReport::new(1 << 30)),
        [size] => match parse_size(size) {
            Some(size) => Box::new(synthetic::SyntheticReport::new(size)),
            None => return usage(&args),
        },
        _ => return usage(&args),
    };
    let source = BufReader::with_capacity(64 << 10, source);
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
