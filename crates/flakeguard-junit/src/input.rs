//! The byte stream under the XML reader: byte-order marks, UTF-16 transcoding, and the
//! counters that enforce the document-size and token-size limits.

use std::io::{self, BufRead, Read};

/// How the document's bytes are encoded, judged from its first bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Encoding {
    Utf8,
    Utf16Le,
    Utf16Be,
}

/// Looks at the first bytes: returns the encoding, whether it came from a byte-order mark,
/// and how many BOM bytes to skip. UTF-32 and EBCDIC are refused by the caller.
pub(crate) fn sniff_encoding(head: &[u8]) -> Result<(Encoding, bool, usize), String> {
    match head {
        [0x00, 0x00, 0xFE, 0xFF, ..] | [0xFF, 0xFE, 0x00, 0x00, ..] => Err("UTF-32".to_owned()),
        [0xEF, 0xBB, 0xBF, ..] => Ok((Encoding::Utf8, true, 3)),
        [0xFF, 0xFE, ..] => Ok((Encoding::Utf16Le, true, 2)),
        [0xFE, 0xFF, ..] => Ok((Encoding::Utf16Be, true, 2)),
        [
            b'<',
            0x00,
            b'?' | b'!' | b'a'..=b'z' | b'A'..=b'Z',
            0x00,
            ..,
        ] => Ok((Encoding::Utf16Le, false, 0)),
        [
            0x00,
            b'<',
            0x00,
            b'?' | b'!' | b'a'..=b'z' | b'A'..=b'Z',
            ..,
        ] => Ok((Encoding::Utf16Be, false, 0)),
        [0x4C, 0x6F, 0xA7, 0x94, ..] => Err("EBCDIC".to_owned()),
        _ => Ok((Encoding::Utf8, false, 0)),
    }
}

/// `Read::read` for a type whose real interface is `BufRead`.
fn read_through_buffer(reader: &mut impl BufRead, out: &mut [u8]) -> io::Result<usize> {
    let available = reader.fill_buf()?;
    let n = available.len().min(out.len());
    out[..n].copy_from_slice(&available[..n]);
    reader.consume(n);
    Ok(n)
}

/// Either the raw UTF-8 stream or a UTF-16 stream transcoded to UTF-8.
#[derive(Debug)]
pub(crate) enum Decoded<R> {
    Utf8(R),
    Utf16(Utf16Reader<R>),
}

impl<R: BufRead> Read for Decoded<R> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        read_through_buffer(self, out)
    }
}

impl<R: BufRead> BufRead for Decoded<R> {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        match self {
            Decoded::Utf8(r) => r.fill_buf(),
            Decoded::Utf16(r) => r.fill_buf(),
        }
    }

    fn consume(&mut self, amt: usize) {
        match self {
            Decoded::Utf8(r) => r.consume(amt),
            Decoded::Utf16(r) => r.consume(amt),
        }
    }
}

/// Transcodes UTF-16 (either byte order) to UTF-8, chunk by chunk.
#[derive(Debug)]
pub(crate) struct Utf16Reader<R> {
    inner: R,
    little_endian: bool,
    out: Vec<u8>,
    out_pos: usize,
    /// An odd byte left over from the previous chunk.
    carry: Option<u8>,
    /// A high surrogate waiting for its low half.
    high: Option<u16>,
}

impl<R: BufRead> Utf16Reader<R> {
    pub(crate) fn new(inner: R, little_endian: bool) -> Self {
        Utf16Reader {
            inner,
            little_endian,
            out: Vec::with_capacity(16 << 10),
            out_pos: 0,
            carry: None,
            high: None,
        }
    }

    fn unit(&self, a: u8, b: u8) -> u16 {
        if self.little_endian {
            u16::from_le_bytes([a, b])
        } else {
            u16::from_be_bytes([a, b])
        }
    }

    fn push_unit(&mut self, unit: u16) -> io::Result<()> {
        let invalid = || {
            io::Error::new(
                io::ErrorKind::InvalidData,
                "invalid UTF-16 (unpaired surrogate)",
            )
        };
        let c = match (self.high.take(), unit) {
            (None, 0xD800..=0xDBFF) => {
                self.high = Some(unit);
                return Ok(());
            }
            (None, 0xDC00..=0xDFFF) => return Err(invalid()),
            (None, u) => char::from_u32(u32::from(u)).ok_or_else(invalid)?,
            (Some(h), 0xDC00..=0xDFFF) => {
                let code = 0x10000 + ((u32::from(h) - 0xD800) << 10) + (u32::from(unit) - 0xDC00);
                char::from_u32(code).ok_or_else(invalid)?
            }
            (Some(_), _) => return Err(invalid()),
        };
        let mut tmp = [0u8; 4];
        self.out
            .extend_from_slice(c.encode_utf8(&mut tmp).as_bytes());
        Ok(())
    }

    fn refill(&mut self) -> io::Result<()> {
        self.out.clear();
        self.out_pos = 0;
        while self.out.is_empty() {
            let chunk = self.inner.fill_buf()?.to_vec();
            if chunk.is_empty() {
                if self.carry.is_some() || self.high.is_some() {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        "truncated UTF-16 sequence at end of file",
                    ));
                }
                return Ok(());
            }
            self.inner.consume(chunk.len());
            let mut bytes = chunk.as_slice();
            if let Some(first) = self.carry.take() {
                let unit = self.unit(first, bytes[0]);
                self.push_unit(unit)?;
                bytes = &bytes[1..];
            }
            let mut pairs = bytes.chunks_exact(2);
            for pair in pairs.by_ref() {
                let unit = self.unit(pair[0], pair[1]);
                self.push_unit(unit)?;
            }
            self.carry = pairs.remainder().first().copied();
        }
        Ok(())
    }
}

impl<R: BufRead> Read for Utf16Reader<R> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        read_through_buffer(self, out)
    }
}

impl<R: BufRead> BufRead for Utf16Reader<R> {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        if self.out_pos >= self.out.len() {
            self.refill()?;
        }
        Ok(&self.out[self.out_pos..])
    }

    fn consume(&mut self, amt: usize) {
        self.out_pos = (self.out_pos + amt).min(self.out.len());
    }
}

/// Counts the bytes handed to the XML reader and refuses to hand out more once the
/// document or the current token is over its limit.
#[derive(Debug)]
pub(crate) struct Guarded<R> {
    inner: R,
    pub(crate) position: u64,
    pub(crate) token_start: u64,
    max_bytes: u64,
    max_token: u64,
    /// Set when a limit stopped the stream, so the parser can report it by name.
    pub(crate) violation: Option<String>,
}

impl<R: BufRead> Guarded<R> {
    pub(crate) fn new(inner: R, max_bytes: u64, max_token: u64) -> Self {
        Guarded {
            inner,
            position: 0,
            token_start: 0,
            max_bytes,
            max_token,
            violation: None,
        }
    }
}

impl<R: BufRead> Read for Guarded<R> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        read_through_buffer(self, out)
    }
}

impl<R: BufRead> BufRead for Guarded<R> {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        if self.position.saturating_sub(self.token_start) > self.max_token {
            let msg = format!(
                "a single tag or text run is longer than {} bytes",
                self.max_token
            );
            self.violation = Some(msg.clone());
            return Err(io::Error::other(msg));
        }
        let over = self.position >= self.max_bytes;
        let max_bytes = self.max_bytes;
        // Hand out no more than the limits allow, so the next call sees the overrun even
        // when the source holds the whole document in one buffer.
        let token_room = self.max_token + 1 - self.position.saturating_sub(self.token_start);
        let room = token_room.min(self.max_bytes.saturating_sub(self.position).max(1));
        let buf = self.inner.fill_buf()?;
        if over && !buf.is_empty() {
            let msg = format!("document is larger than {max_bytes} bytes");
            self.violation = Some(msg.clone());
            return Err(io::Error::other(msg));
        }
        let room = usize::try_from(room).unwrap_or(usize::MAX);
        Ok(&buf[..buf.len().min(room)])
    }

    fn consume(&mut self, amt: usize) {
        self.position += amt as u64;
        self.inner.consume(amt);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utf16(s: &str, le: bool) -> Vec<u8> {
        s.encode_utf16()
            .flat_map(|u| if le { u.to_le_bytes() } else { u.to_be_bytes() })
            .collect()
    }

    #[test]
    fn transcodes_utf16_in_both_byte_orders_across_chunk_edges() {
        let text = "<a>héllo 𝄞 wörld</a>";
        for le in [true, false] {
            let bytes = utf16(text, le);
            // A 3-byte buffer splits code units and surrogate pairs across chunks.
            let inner = io::BufReader::with_capacity(3, bytes.as_slice());
            let mut out = String::new();
            Utf16Reader::new(inner, le)
                .read_to_string(&mut out)
                .unwrap();
            assert_eq!(out, text);
        }
    }

    #[test]
    fn unpaired_surrogate_is_an_error() {
        let bytes = [0x00u8, 0xD8, 0x41, 0x00];
        let mut out = String::new();
        assert!(
            Utf16Reader::new(&bytes[..], true)
                .read_to_string(&mut out)
                .is_err()
        );
    }

    #[test]
    fn sniffs_boms_and_bomless_utf16() {
        assert_eq!(
            sniff_encoding(b"\xEF\xBB\xBF<a/>").unwrap(),
            (Encoding::Utf8, true, 3)
        );
        assert_eq!(
            sniff_encoding(b"\xFF\xFE<\x00").unwrap(),
            (Encoding::Utf16Le, true, 2)
        );
        assert_eq!(
            sniff_encoding(b"<\x00?\x00").unwrap(),
            (Encoding::Utf16Le, false, 0)
        );
        assert_eq!(
            sniff_encoding(b"\x00<\x00?").unwrap(),
            (Encoding::Utf16Be, false, 0)
        );
        assert!(sniff_encoding(b"\xFF\xFE\x00\x00").is_err());
    }

    #[test]
    fn guard_stops_at_the_byte_limit() {
        let data = vec![b'a'; 100];
        let mut g = Guarded::new(io::BufReader::with_capacity(10, data.as_slice()), 50, 1000);
        let mut out = Vec::new();
        assert!(g.read_to_end(&mut out).is_err());
        assert!(g.violation.unwrap().contains("larger than 50"));
    }
}
