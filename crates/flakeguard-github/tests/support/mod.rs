//! Shared helpers for the integration tests: fixtures, clients pointed at the fake, zips.

// Each test binary uses its own subset of these helpers.
#![allow(dead_code, unreachable_pub)]

use std::io::Write as _;
use std::path::PathBuf;
use std::time::Duration;

use flakeguard_github::fake::FakeGitHub;
use flakeguard_github::{ClientOptions, GitHubApp, Installation};

/// `shared/fixtures`, beside the repository (override with `FLAKEGUARD_FIXTURES`).
pub fn fixtures() -> PathBuf {
    if let Ok(dir) = std::env::var("FLAKEGUARD_FIXTURES") {
        return PathBuf::from(dir);
    }
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/fixtures")
}

pub fn fixture_bytes(rel: &str) -> Vec<u8> {
    let path = fixtures().join(rel);
    std::fs::read(&path).unwrap_or_else(|err| panic!("read {}: {err}", path.display()))
}

pub fn fixture_json(rel: &str) -> serde_json::Value {
    serde_json::from_slice(&fixture_bytes(rel)).unwrap_or_else(|err| panic!("parse {rel}: {err}"))
}

/// Options that keep tests quick: millisecond backoff, a breaker that needs many failures.
pub fn quick_options() -> ClientOptions {
    ClientOptions {
        max_rate_limit_wait: Duration::from_secs(5),
        retries: 3,
        retry_base: Duration::from_millis(1),
        breaker_threshold: 50,
        breaker_cool_off: Duration::from_millis(200),
        timeout: Duration::from_secs(10),
    }
}

pub const INSTALLATION: i64 = 77;
pub const OWNER: &str = "octo-org";
pub const REPO: &str = "octo-repo";

/// A fake with one installation, and that installation's client.
pub async fn setup_with(options: ClientOptions) -> (FakeGitHub, GitHubApp, Installation) {
    let fake = FakeGitHub::start().await;
    fake.add_installation(INSTALLATION, OWNER);
    let app = GitHubApp::new(fake.app_config(), options).expect("client for the fake");
    let installation = app.installation(INSTALLATION);
    (fake, app, installation)
}

pub async fn setup() -> (FakeGitHub, GitHubApp, Installation) {
    setup_with(quick_options()).await
}

/// Requests that reached the fake for paths ending in `suffix`.
pub fn requests_to(fake: &FakeGitHub, suffix: &str) -> usize {
    fake.requests()
        .iter()
        .filter(|r| r.path.ends_with(suffix))
        .count()
}

/// A deflated zip of `(name, contents)` written with the `zip` crate.
pub fn zip_of(entries: &[(&str, &[u8])]) -> Vec<u8> {
    let mut writer = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated);
    for (name, contents) in entries {
        writer.start_file(*name, options).expect("start zip entry");
        writer.write_all(contents).expect("write zip entry");
    }
    writer.finish().expect("finish zip").into_inner()
}

/// One entry of a hand-made zip, for what the `zip` writer will not produce (lying sizes,
/// hostile names, the encryption flag).
pub struct RawEntry {
    pub name: String,
    /// 0 stored, 8 deflated.
    pub method: u16,
    pub flags: u16,
    /// The bytes as stored (already deflated for method 8).
    pub data: Vec<u8>,
    pub declared_uncompressed: u32,
    pub crc32: u32,
}

impl RawEntry {
    pub fn stored(name: &str, contents: &[u8]) -> RawEntry {
        let mut crc = flate2::Crc::new();
        crc.update(contents);
        RawEntry {
            name: name.to_owned(),
            method: 0,
            flags: 0,
            data: contents.to_vec(),
            declared_uncompressed: contents.len() as u32,
            crc32: crc.sum(),
        }
    }
}

/// Writes local headers, data, the central directory and its end record.
pub fn raw_zip(entries: &[RawEntry]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut central = Vec::new();
    for entry in entries {
        let offset = out.len() as u32;
        let name = entry.name.as_bytes();
        out.extend_from_slice(&0x0403_4b50u32.to_le_bytes());
        out.extend_from_slice(&20u16.to_le_bytes());
        out.extend_from_slice(&entry.flags.to_le_bytes());
        out.extend_from_slice(&entry.method.to_le_bytes());
        out.extend_from_slice(&0u16.to_le_bytes()); // time
        out.extend_from_slice(&0x21u16.to_le_bytes()); // date: 1980-01-01
        out.extend_from_slice(&entry.crc32.to_le_bytes());
        out.extend_from_slice(&(entry.data.len() as u32).to_le_bytes());
        out.extend_from_slice(&entry.declared_uncompressed.to_le_bytes());
        out.extend_from_slice(&(name.len() as u16).to_le_bytes());
        out.extend_from_slice(&0u16.to_le_bytes());
        out.extend_from_slice(name);
        out.extend_from_slice(&entry.data);

        central.extend_from_slice(&0x0201_4b50u32.to_le_bytes());
        central.extend_from_slice(&0x031eu16.to_le_bytes()); // made by: unix, 3.0
        central.extend_from_slice(&20u16.to_le_bytes());
        central.extend_from_slice(&entry.flags.to_le_bytes());
        central.extend_from_slice(&entry.method.to_le_bytes());
        central.extend_from_slice(&0u16.to_le_bytes());
        central.extend_from_slice(&0x21u16.to_le_bytes());
        central.extend_from_slice(&entry.crc32.to_le_bytes());
        central.extend_from_slice(&(entry.data.len() as u32).to_le_bytes());
        central.extend_from_slice(&entry.declared_uncompressed.to_le_bytes());
        central.extend_from_slice(&(name.len() as u16).to_le_bytes());
        central.extend_from_slice(&0u16.to_le_bytes()); // extra
        central.extend_from_slice(&0u16.to_le_bytes()); // comment
        central.extend_from_slice(&0u16.to_le_bytes()); // disk
        central.extend_from_slice(&0u16.to_le_bytes()); // internal attributes
        let mode: u32 = if entry.name.ends_with('/') {
            0o040755
        } else {
            0o100644
        };
        central.extend_from_slice(&(mode << 16).to_le_bytes());
        central.extend_from_slice(&offset.to_le_bytes());
        central.extend_from_slice(name);
    }
    let central_offset = out.len() as u32;
    out.extend_from_slice(&central);
    out.extend_from_slice(&0x0605_4b50u32.to_le_bytes());
    out.extend_from_slice(&0u16.to_le_bytes());
    out.extend_from_slice(&0u16.to_le_bytes());
    out.extend_from_slice(&(entries.len() as u16).to_le_bytes());
    out.extend_from_slice(&(entries.len() as u16).to_le_bytes());
    out.extend_from_slice(&(central.len() as u32).to_le_bytes());
    out.extend_from_slice(&central_offset.to_le_bytes());
    out.extend_from_slice(&0u16.to_le_bytes());
    out
}

/// A raw deflate stream that inflates to `mib` MiB of zeros while staying about a thousand
/// times smaller: one MiB compressed with a full flush (byte-aligned, no back-references
/// across it) repeated, then an empty final block.
pub fn zeros_deflate_stream(mib: usize) -> Vec<u8> {
    let chunk = vec![0u8; 1 << 20];
    let mut compress = flate2::Compress::new(flate2::Compression::best(), false);
    let mut block = Vec::with_capacity(64 << 10);
    compress
        .compress_vec(&chunk, &mut block, flate2::FlushCompress::Full)
        .expect("deflate a MiB of zeros");
    assert_eq!(
        compress.total_in(),
        chunk.len() as u64,
        "the whole MiB went in"
    );
    let mut stream = Vec::with_capacity(block.len() * mib + 2);
    for _ in 0..mib {
        stream.extend_from_slice(&block);
    }
    // BFINAL=1, fixed Huffman, end of block.
    stream.extend_from_slice(&[0x03, 0x00]);
    stream
}
