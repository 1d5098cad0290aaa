//! Reading artifact zips: real reports round-trip, hostile archives are refused naming the
//! entry.

mod support;

use flakeguard_github::{ArchiveError, ArchiveLimits, is_report_candidate, read_archive};
use support::{RawEntry, fixture_bytes, raw_zip, zeros_deflate_stream, zip_of};

const REPORTS: &[&str] = &[
    "junit/pytest/dorny-test-reporter__python-xunit-pytest.xml",
    "junit/jest/dorny-test-reporter__jest-junit.xml",
    "junit/nextest/nextest__fixture-project-junit.xml",
];

#[test]
fn real_reports_round_trip_through_a_zip() {
    let reports: Vec<(String, Vec<u8>)> = REPORTS
        .iter()
        .map(|rel| {
            (
                format!("reports/{}", rel.rsplit('/').next().unwrap()),
                fixture_bytes(rel),
            )
        })
        .collect();
    let mut entries: Vec<(&str, &[u8])> = reports
        .iter()
        .map(|(name, bytes)| (name.as_str(), bytes.as_slice()))
        .collect();
    entries.push(("logs/output.txt", b"not a report"));
    let zip = zip_of(&entries);

    let files = read_archive(&zip, &ArchiveLimits::default()).unwrap();
    assert_eq!(files.len(), 4);
    for (name, bytes) in &reports {
        let file = files.iter().find(|f| &f.name == name).expect(name);
        assert_eq!(&file.bytes, bytes, "{name}");
    }
    let candidates: Vec<_> = files
        .iter()
        .filter(|f| is_report_candidate(&f.name))
        .map(|f| f.name.as_str())
        .collect();
    assert_eq!(candidates.len(), 3, "{candidates:?}");
}

#[test]
fn directories_are_skipped() {
    let zip = raw_zip(&[
        RawEntry::stored("reports/", b""),
        RawEntry::stored("reports/a.xml", b"<testsuites/>"),
    ]);
    let files = read_archive(&zip, &ArchiveLimits::default()).unwrap();
    assert_eq!(files.len(), 1);
    assert_eq!(files[0].name, "reports/a.xml");
}

#[test]
fn refuses_an_entry_that_climbs_out_with_dot_dot() {
    let zip = zip_of(&[("ok.xml", b"<a/>"), ("../evil.xml", b"<a/>")]);
    let err = read_archive(&zip, &ArchiveLimits::default()).unwrap_err();
    assert!(
        matches!(err, ArchiveError::UnsafeName { ref name, .. } if name == "../evil.xml"),
        "{err}"
    );
    assert!(err.to_string().contains("../evil.xml"), "{err}");
}

#[test]
fn refuses_absolute_paths_and_backslash_tricks() {
    for name in [
        "/etc/evil.xml",
        "..\\evil.xml",
        "reports\\..\\..\\evil.xml",
        "C:/evil.xml",
    ] {
        let zip = raw_zip(&[RawEntry::stored(name, b"<a/>")]);
        let err = read_archive(&zip, &ArchiveLimits::default()).unwrap_err();
        assert!(
            matches!(err, ArchiveError::UnsafeName { .. }),
            "{name}: {err}"
        );
    }
}

#[test]
fn refuses_more_entries_than_allowed() {
    let names: Vec<String> = (0..11).map(|i| format!("r{i}.xml")).collect();
    let entries: Vec<RawEntry> = names.iter().map(|n| RawEntry::stored(n, b"<a/>")).collect();
    let zip = raw_zip(&entries);
    let limits = ArchiveLimits {
        max_entries: 10,
        ..ArchiveLimits::default()
    };
    let err = read_archive(&zip, &limits).unwrap_err();
    assert!(
        matches!(
            err,
            ArchiveError::TooManyEntries {
                count: 11,
                limit: 10
            }
        ),
        "{err}"
    );
    let limits = ArchiveLimits {
        max_entries: 11,
        ..ArchiveLimits::default()
    };
    assert_eq!(read_archive(&zip, &limits).unwrap().len(), 11);
}

#[test]
fn refuses_encrypted_entries() {
    let mut entry = RawEntry::stored("secret.xml", b"<a/>");
    entry.flags = 1;
    let err = read_archive(&raw_zip(&[entry]), &ArchiveLimits::default()).unwrap_err();
    assert!(
        matches!(err, ArchiveError::Encrypted { ref name } if name == "secret.xml"),
        "{err}"
    );
}

fn bomb(name: &str, declared: u32) -> Vec<u8> {
    raw_zip(&[RawEntry {
        name: name.to_owned(),
        method: 8,
        flags: 0,
        data: zeros_deflate_stream(2048),
        declared_uncompressed: declared,
        crc32: 0,
    }])
}

#[test]
fn refuses_a_zip_bomb_that_lies_about_its_size_while_inflating() {
    // 2 GiB of zeros in about 2 MiB, declaring 1 KiB uncompressed.
    let zip = bomb("bomb.xml", 1024);
    assert!(zip.len() < 8 << 20, "{} bytes", zip.len());
    let err = read_archive(&zip, &ArchiveLimits::default()).unwrap_err();
    assert!(
        matches!(err, ArchiveError::SizeMismatch { ref name, declared: 1024 } if name == "bomb.xml"),
        "{err}"
    );
}

#[test]
fn refuses_a_declared_size_over_the_cap_before_inflating() {
    // Declares the 2 GiB honestly: refused from the central directory alone.
    let err = read_archive(&bomb("big.xml", u32::MAX / 2), &ArchiveLimits::default()).unwrap_err();
    assert!(
        matches!(err, ArchiveError::EntryTooLarge { ref name, .. } if name == "big.xml"),
        "{err}"
    );
}

#[test]
fn refuses_archives_whose_entries_add_up_over_the_total_cap() {
    let zip = zip_of(&[("a.xml", &[b'a'; 600]), ("b.xml", &[b'b'; 600])]);
    let limits = ArchiveLimits {
        max_entries: 10,
        max_total_uncompressed: 1000,
        max_entry_uncompressed: 1000,
    };
    let err = read_archive(&zip, &limits).unwrap_err();
    assert!(
        matches!(err, ArchiveError::TotalTooLarge { ref name, .. } if name == "b.xml"),
        "{err}"
    );
}

#[test]
fn refuses_bytes_that_are_not_a_zip() {
    let err = read_archive(b"<testsuites/>", &ArchiveLimits::default()).unwrap_err();
    assert!(matches!(err, ArchiveError::Zip(_)), "{err}");
}
