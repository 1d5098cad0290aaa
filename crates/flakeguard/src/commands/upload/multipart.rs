//! The request body: a `multipart/form-data` document (RFC 7578) with one `report` part per
//! file, gzipped. Written by hand because the format is small and the body must be built once
//! and re-sent unchanged on every retry.
//!
//! ```text
//! --BOUNDARY\r\n
//! Content-Disposition: form-data; name="report"; filename="reports/junit.xml"\r\n
//! Content-Type: application/xml\r\n
//! \r\n
//! <the file's bytes>\r\n
//! --BOUNDARY--\r\n
//! ```

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use bytes::Bytes;
use flate2::Compression;
use flate2::write::GzEncoder;

/// One file to send, and the name the server is told.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Part {
    pub(super) path: PathBuf,
    pub(super) filename: String,
}

/// The finished body.
#[derive(Debug)]
pub(super) struct Payload {
    pub(super) boundary: String,
    pub(super) gzipped: Bytes,
    /// The multipart document's size before compression.
    pub(super) size: u64,
}

impl Payload {
    pub(super) fn content_type(&self) -> String {
        format!("multipart/form-data; boundary={}", self.boundary)
    }
}

/// How many random boundaries to try before believing something is wrong: a 128-bit random
/// boundary occurs in a file by chance essentially never, so a second collision means a file
/// was crafted to contain it, or the random source repeats.
const BOUNDARY_TRIES: usize = 3;

pub(super) fn build(parts: &[Part]) -> Result<Payload> {
    for _ in 0..BOUNDARY_TRIES {
        let boundary = random_boundary()?;
        let mut gzip = GzEncoder::new(Vec::new(), Compression::default());
        if let Some(size) = write(parts, &boundary, &mut gzip, |p| std::fs::read(p))? {
            let gzipped = gzip.finish().context("cannot compress the reports")?;
            return Ok(Payload {
                boundary,
                gzipped: gzipped.into(),
                size,
            });
        }
    }
    bail!("cannot find a multipart boundary that occurs in none of the reports")
}

/// Writes the document to `out` and returns its size, or `None` when `boundary` occurs in a
/// file or a name (the caller then picks another).
fn write(
    parts: &[Part],
    boundary: &str,
    out: &mut impl Write,
    read: impl Fn(&Path) -> std::io::Result<Vec<u8>>,
) -> Result<Option<u64>> {
    let needle = boundary.as_bytes();
    let mut size = 0u64;
    let mut emit = |bytes: &[u8]| -> Result<()> {
        out.write_all(bytes)
            .context("cannot compress the reports")?;
        size += bytes.len() as u64;
        Ok(())
    };
    for part in parts {
        let content =
            read(&part.path).with_context(|| format!("cannot read {}", part.path.display()))?;
        let filename = quote(&part.filename);
        if contains(&content, needle) || contains(filename.as_bytes(), needle) {
            return Ok(None);
        }
        emit(
            format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"report\"; filename=\"{filename}\"\r\nContent-Type: application/xml\r\n\r\n"
            )
            .as_bytes(),
        )?;
        emit(&content)?;
        emit(b"\r\n")?;
    }
    emit(format!("--{boundary}--\r\n").as_bytes())?;
    Ok(Some(size))
}

/// Escapes a file name for a quoted header parameter as browsers do (the HTML form encoding
/// algorithm): `"`, CR and LF are percent-encoded, everything else is sent as UTF-8.
fn quote(filename: &str) -> String {
    filename
        .replace('"', "%22")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
}

/// `flakeguard-` and 32 hex digits: 128 random bits, and only characters that need no quoting
/// in the Content-Type header.
fn random_boundary() -> Result<String> {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).context("the operating system's random source failed")?;
    let mut boundary = String::from("flakeguard-");
    for b in bytes {
        boundary.push_str(&format!("{b:02x}"));
    }
    Ok(boundary)
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    memchr::memmem::find(haystack, needle).is_some()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn part(path: &str, filename: &str) -> Part {
        Part {
            path: PathBuf::from(path),
            filename: filename.to_owned(),
        }
    }

    fn fake_read(path: &Path) -> std::io::Result<Vec<u8>> {
        match path.to_str() {
            Some("a.xml") => Ok(b"<testsuite/>".to_vec()),
            Some("b.xml") => Ok(b"<testsuites>\r\n</testsuites>\n".to_vec()),
            Some("evil.xml") => Ok(b"<a>--flakeguard-00</a>".to_vec()),
            _ => Err(std::io::Error::from(std::io::ErrorKind::NotFound)),
        }
    }

    #[test]
    fn writes_one_part_per_file_then_the_closing_delimiter() {
        let mut out = Vec::new();
        let size = write(
            &[part("a.xml", "r/a.xml"), part("b.xml", "b.xml")],
            "XYZ",
            &mut out,
            fake_read,
        )
        .unwrap();
        let expected = "--XYZ\r\nContent-Disposition: form-data; name=\"report\"; filename=\"r/a.xml\"\r\nContent-Type: application/xml\r\n\r\n<testsuite/>\r\n\
                        --XYZ\r\nContent-Disposition: form-data; name=\"report\"; filename=\"b.xml\"\r\nContent-Type: application/xml\r\n\r\n<testsuites>\r\n</testsuites>\n\r\n\
                        --XYZ--\r\n";
        assert_eq!(String::from_utf8(out).unwrap(), expected);
        assert_eq!(size, Some(expected.len() as u64));
    }

    #[test]
    fn a_boundary_found_in_a_file_or_name_is_refused() {
        let mut out = Vec::new();
        let evil = write(
            &[part("evil.xml", "e.xml")],
            "flakeguard-00",
            &mut out,
            fake_read,
        );
        assert_eq!(evil.unwrap(), None);
        let named = write(
            &[part("a.xml", "XYZ.xml")],
            "XYZ",
            &mut Vec::new(),
            fake_read,
        );
        assert_eq!(named.unwrap(), None);
    }

    #[test]
    fn an_unreadable_file_is_named_in_the_error() {
        let err = write(
            &[part("gone.xml", "gone.xml")],
            "XYZ",
            &mut Vec::new(),
            fake_read,
        )
        .unwrap_err();
        assert_eq!(err.to_string(), "cannot read gone.xml");
    }

    #[test]
    fn quotes_and_line_breaks_in_names_are_percent_encoded() {
        assert_eq!(quote("a \"b\"\r\n.xml"), "a %22b%22%0D%0A.xml");
        assert_eq!(quote("résumé.xml"), "résumé.xml");
    }

    #[test]
    fn boundaries_are_random_and_header_safe() {
        let (a, b) = (random_boundary().unwrap(), random_boundary().unwrap());
        assert_ne!(a, b);
        assert_eq!(a.len(), "flakeguard-".len() + 32);
        assert!(a.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'));
    }
}
