//! Parse-throughput benchmarks for the streaming JUnit reader (divan): a generated ~100 MB
//! Surefire-like report, and every fixture in `shared/fixtures/junit` read from memory.
//! Run: `cargo bench -p flakeguard-junit --bench parse`. Figures: docs/performance.md.

use std::path::{Path, PathBuf};
use std::sync::LazyLock;

use divan::Bencher;
use divan::counter::{BytesCount, ItemsCount};
use flakeguard_junit::{JunitReader, Limits};

#[path = "support/synthetic.rs"]
mod synthetic;

/// Size of the generated report.
const BIG_REPORT_BYTES: u64 = 100 << 20;

fn main() {
    // Load (and describe) the fixture corpus before divan prints its table.
    LazyLock::force(&CORPUS);
    divan::main();
}

/// The generated report and its testcase count, built once.
static BIG: LazyLock<(Vec<u8>, u64)> =
    LazyLock::new(|| synthetic::SyntheticReport::generate(BIG_REPORT_BYTES));

/// Every fixture that reads without error, in memory, with its testcase count.
static CORPUS: LazyLock<Vec<(Vec<u8>, u64)>> = LazyLock::new(load_corpus);

/// Reads a document to the end and returns its testcase count.
fn count_cases(xml: &[u8]) -> Result<u64, flakeguard_junit::ParseError> {
    let mut reader = JunitReader::new(xml, Limits::default())?;
    let mut n = 0;
    while let Some(case) = reader.next_case()? {
        divan::black_box(&case);
        n += 1;
    }
    Ok(n)
}

/// `shared/fixtures/junit` beside the repository (override the `shared/fixtures` directory
/// with `FLAKEGUARD_FIXTURES`, as the tests do).
fn fixtures_dir() -> PathBuf {
    match std::env::var_os("FLAKEGUARD_FIXTURES") {
        Some(dir) => PathBuf::from(dir).join("junit"),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/fixtures/junit"),
    }
}

fn xml_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            xml_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "xml") {
            out.push(path);
        }
    }
}

fn load_corpus() -> Vec<(Vec<u8>, u64)> {
    let dir = fixtures_dir();
    let dir = dir.canonicalize().unwrap_or(dir);
    let mut paths = Vec::new();
    xml_files(&dir, &mut paths);
    paths.sort();
    let total = paths.len();
    let docs: Vec<(Vec<u8>, u64)> = paths
        .iter()
        .filter_map(|p| std::fs::read(p).ok())
        .filter_map(|xml| count_cases(&xml).ok().map(|n| (xml, n)))
        .collect();
    let bytes: usize = docs.iter().map(|(x, _)| x.len()).sum();
    let cases: u64 = docs.iter().map(|(_, n)| n).sum();
    eprintln!(
        "fixture corpus {}: {} of {total} files read without error, {bytes} bytes, {cases} testcases",
        dir.display(),
        docs.len(),
    );
    docs
}

/// The generated ~100 MB report, read from one in-memory buffer.
#[divan::bench(sample_count = 10, sample_size = 1)]
fn generated_100mb(bencher: Bencher) {
    let (xml, cases) = &*BIG;
    bencher
        .counter(BytesCount::of_slice(xml))
        .counter(ItemsCount::new(*cases))
        .bench(|| {
            let n = count_cases(divan::black_box(xml)).expect("the generated report is valid");
            assert_eq!(n, *cases);
        });
}

/// Every fixture that reads without error, one after another.
#[divan::bench(sample_count = 30, sample_size = 1)]
fn fixture_corpus(bencher: Bencher) {
    let docs = &*CORPUS;
    let bytes: usize = docs.iter().map(|(x, _)| x.len()).sum();
    let cases: u64 = docs.iter().map(|(_, n)| n).sum();
    bencher
        .counter(BytesCount::new(bytes))
        .counter(ItemsCount::new(cases))
        .bench(|| {
            let mut n = 0;
            for (xml, _) in docs {
                n += count_cases(divan::black_box(xml)).unwrap_or(0);
            }
            assert_eq!(n, cases);
        });
}
