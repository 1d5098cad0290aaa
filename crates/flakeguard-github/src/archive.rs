//! Reading an artifact zip in memory without trusting it: unsafe names, too many entries,
//! oversized or lying entries (sizes are counted while inflating) and encrypted entries are
//! refused with an error naming the entry.

use std::io::{Cursor, Read};

/// Caps on what one archive may hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ArchiveLimits {
    pub max_entries: usize,
    pub max_total_uncompressed: u64,
    pub max_entry_uncompressed: u64,
}

impl Default for ArchiveLimits {
    fn default() -> Self {
        ArchiveLimits {
            max_entries: 10_000,
            max_total_uncompressed: 1 << 30,
            max_entry_uncompressed: 256 << 20,
        }
    }
}

/// A regular file from an archive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArchiveFile {
    /// The name as stored, `/`-separated and relative.
    pub name: String,
    pub bytes: Vec<u8>,
}

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ArchiveError {
    #[error("not a readable zip archive: {0}")]
    Zip(String),
    #[error("archive holds {count} entries, at most {limit} allowed")]
    TooManyEntries { count: usize, limit: usize },
    #[error("entry {name:?}: unsafe name ({reason})")]
    UnsafeName { name: String, reason: &'static str },
    #[error("entry {name:?}: encrypted entries are not read")]
    Encrypted { name: String },
    #[error("entry {name:?}: more than {limit} bytes uncompressed")]
    EntryTooLarge { name: String, limit: u64 },
    #[error("entry {name:?}: archive exceeds {limit} bytes uncompressed in total")]
    TotalTooLarge { name: String, limit: u64 },
    #[error("entry {name:?}: inflates to more than its declared {declared} bytes")]
    SizeMismatch { name: String, declared: u64 },
    #[error("entry {name:?}: {message}")]
    Entry { name: String, message: String },
}

/// Whether an entry looks like a test report (ends with `.xml`, any case); the caller decides
/// the rest.
pub fn is_report_candidate(name: &str) -> bool {
    name.len() >= 4
        && name
            .get(name.len() - 4..)
            .is_some_and(|ext| ext.eq_ignore_ascii_case(".xml"))
}

/// Every regular file of `zip` (directories and symlinks are skipped), within `limits`.
pub fn read_archive(zip: &[u8], limits: &ArchiveLimits) -> Result<Vec<ArchiveFile>, ArchiveError> {
    let mut archive =
        zip::ZipArchive::new(Cursor::new(zip)).map_err(|err| ArchiveError::Zip(err.to_string()))?;
    if archive.len() > limits.max_entries {
        return Err(ArchiveError::TooManyEntries {
            count: archive.len(),
            limit: limits.max_entries,
        });
    }

    // Names, flags and declared sizes first, so a hostile archive is refused before anything
    // is inflated.
    let mut wanted = Vec::new();
    let mut declared_total: u64 = 0;
    for index in 0..archive.len() {
        let entry = archive
            .by_index_raw(index)
            .map_err(|err| ArchiveError::Zip(format!("entry #{index}: {err}")))?;
        let name = entry_name(&entry, index)?;
        check_name(&name)?;
        if entry.encrypted() {
            return Err(ArchiveError::Encrypted { name });
        }
        if entry.is_dir() || entry.is_symlink() {
            continue;
        }
        if entry.size() > limits.max_entry_uncompressed {
            return Err(ArchiveError::EntryTooLarge {
                name,
                limit: limits.max_entry_uncompressed,
            });
        }
        declared_total = declared_total.saturating_add(entry.size());
        if declared_total > limits.max_total_uncompressed {
            return Err(ArchiveError::TotalTooLarge {
                name,
                limit: limits.max_total_uncompressed,
            });
        }
        wanted.push((index, name, entry.size()));
    }

    // Then the contents, counting what actually comes out of the inflater.
    let mut files = Vec::with_capacity(wanted.len());
    let mut total: u64 = 0;
    for (index, name, declared) in wanted {
        let entry = archive.by_index(index).map_err(|err| ArchiveError::Entry {
            name: name.clone(),
            message: err.to_string(),
        })?;
        let entry_cap = limits.max_entry_uncompressed;
        let total_cap = limits.max_total_uncompressed - total;
        let cap = entry_cap.min(total_cap);
        let mut bytes = Vec::with_capacity(usize::try_from(declared.min(cap)).unwrap_or(0));
        let outcome = entry.take(cap.saturating_add(1)).read_to_end(&mut bytes);
        let read = bytes.len() as u64;
        if let Err(err) = outcome {
            // The zip reader itself stops an entry that inflates past its declared size.
            if err.kind() == std::io::ErrorKind::InvalidData
                && err.to_string().contains("declared uncompressed size")
            {
                return Err(ArchiveError::SizeMismatch { name, declared });
            }
            return Err(ArchiveError::Entry {
                name,
                message: err.to_string(),
            });
        }
        if read > entry_cap {
            return Err(ArchiveError::EntryTooLarge {
                name,
                limit: entry_cap,
            });
        }
        if read > total_cap {
            return Err(ArchiveError::TotalTooLarge {
                name,
                limit: limits.max_total_uncompressed,
            });
        }
        total += read;
        files.push(ArchiveFile { name, bytes });
    }
    Ok(files)
}

fn entry_name<R: Read>(
    entry: &zip::read::ZipFile<'_, R>,
    index: usize,
) -> Result<String, ArchiveError> {
    entry
        .name()
        .map(|name| name.into_owned())
        .map_err(|_| ArchiveError::UnsafeName {
            name: format!("#{index}: {}", String::from_utf8_lossy(entry.name_raw())),
            reason: "undecodable name",
        })
}

fn check_name(name: &str) -> Result<(), ArchiveError> {
    let refuse = |reason| {
        Err(ArchiveError::UnsafeName {
            name: name.to_owned(),
            reason,
        })
    };
    if name.is_empty() {
        return refuse("empty name");
    }
    if name.contains('\0') {
        return refuse("NUL byte");
    }
    if name.contains('\\') {
        return refuse("backslash");
    }
    if name.starts_with('/') {
        return refuse("absolute path");
    }
    let bytes = name.as_bytes();
    if bytes.len() >= 2 && bytes[0].is_ascii_alphabetic() && bytes[1] == b':' {
        return refuse("drive letter");
    }
    if name.split('/').any(|component| component == "..") {
        return refuse("parent directory component");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn report_candidates_end_in_xml_in_any_case() {
        assert!(is_report_candidate("reports/TEST-a.xml"));
        assert!(is_report_candidate("JUNIT.XML"));
        assert!(!is_report_candidate("xml"));
        assert!(!is_report_candidate("report.xml.txt"));
        assert!(!is_report_candidate("ü.xm"));
    }

    #[test]
    fn refuses_names_that_escape_or_are_absolute() {
        for bad in [
            "../evil.xml",
            "a/../../evil.xml",
            "/etc/passwd",
            "..\\evil.xml",
            "C:evil.xml",
            "c:/evil.xml",
            "a/..",
        ] {
            assert!(check_name(bad).is_err(), "{bad} accepted");
        }
        for good in ["report.xml", "a/b/c.xml", "a..b.xml", "./x.xml"] {
            assert!(check_name(good).is_ok(), "{good} refused");
        }
    }
}
