//! An encoder for PostgreSQL's binary `COPY` format, used to stream large batches of test
//! cases and executions into the database. Binary avoids every text-escaping question (tabs, newlines, backslashes, `\N`)
//! and is the cheapest format for the server to parse.
//!
//! Layout (see the `COPY` reference, "Binary Format"): an 11-byte signature, a 32-bit flags
//! field and a 32-bit header-extension length; then per row a 16-bit field count and per
//! field a 32-bit length (-1 for NULL) followed by the value in the type's binary
//! representation (big-endian integers, UTF-8 text); finally a 16-bit -1 trailer.

use std::borrow::Cow;

/// `value` as PostgreSQL can store it: text cannot hold NUL characters, so each one becomes
/// U+FFFD (the caller documents this). Both ways of writing rows (binary `COPY` and the
/// arrays of a single `INSERT`) pass their text through here, so they store the same.
pub(crate) fn storable(value: &str) -> Cow<'_, str> {
    if value.contains('\0') {
        Cow::Owned(value.replace('\0', "\u{fffd}"))
    } else {
        Cow::Borrowed(value)
    }
}

/// Builds `COPY … FROM STDIN (FORMAT binary)` data in a buffer the caller drains in chunks.
#[derive(Debug)]
pub(crate) struct BinaryCopy {
    buf: Vec<u8>,
}

const SIGNATURE: &[u8; 11] = b"PGCOPY\n\xff\r\n\0";

impl BinaryCopy {
    /// Starts the data with the file header.
    pub(crate) fn new(capacity: usize) -> Self {
        let mut buf = Vec::with_capacity(capacity.max(32));
        buf.extend_from_slice(SIGNATURE);
        buf.extend_from_slice(&0i32.to_be_bytes()); // flags: no OIDs
        buf.extend_from_slice(&0i32.to_be_bytes()); // no header extension
        BinaryCopy { buf }
    }

    /// Starts a row of `fields` values.
    pub(crate) fn row(&mut self, fields: i16) {
        self.buf.extend_from_slice(&fields.to_be_bytes());
    }

    pub(crate) fn int8(&mut self, value: i64) {
        self.buf.extend_from_slice(&8i32.to_be_bytes());
        self.buf.extend_from_slice(&value.to_be_bytes());
    }

    pub(crate) fn int4(&mut self, value: i32) {
        self.buf.extend_from_slice(&4i32.to_be_bytes());
        self.buf.extend_from_slice(&value.to_be_bytes());
    }

    pub(crate) fn int2(&mut self, value: i16) {
        self.buf.extend_from_slice(&2i32.to_be_bytes());
        self.buf.extend_from_slice(&value.to_be_bytes());
    }

    pub(crate) fn null(&mut self) {
        self.buf.extend_from_slice(&(-1i32).to_be_bytes());
    }

    pub(crate) fn opt_int8(&mut self, value: Option<i64>) {
        match value {
            Some(v) => self.int8(v),
            None => self.null(),
        }
    }

    /// A `text` value, made [`storable`]; the result must fit in 1 GiB, as any text value.
    pub(crate) fn text(&mut self, value: &str) {
        let value = storable(value);
        let len = i32::try_from(value.len()).unwrap_or(i32::MAX);
        self.buf.extend_from_slice(&len.to_be_bytes());
        self.buf.extend_from_slice(value.as_bytes());
    }

    pub(crate) fn opt_text(&mut self, value: Option<&str>) {
        match value {
            Some(v) => self.text(v),
            None => self.null(),
        }
    }

    /// The bytes written since the last [`BinaryCopy::clear`].
    pub(crate) fn pending(&self) -> &[u8] {
        &self.buf
    }

    /// Forgets the bytes already sent, keeping the allocation.
    pub(crate) fn clear(&mut self) {
        self.buf.clear();
    }

    /// Appends the trailer; the data is complete once the pending bytes are sent.
    pub(crate) fn end(&mut self) {
        self.buf.extend_from_slice(&(-1i16).to_be_bytes());
    }

    /// All the bytes written since the last [`BinaryCopy::clear`].
    pub(crate) fn into_bytes(self) -> Vec<u8> {
        self.buf
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_follow_the_binary_layout() {
        let mut copy = BinaryCopy::new(0);
        copy.row(3);
        copy.int8(-2);
        copy.opt_text(None);
        copy.text("a\0b");
        copy.end();
        let bytes = copy.pending().to_vec();
        assert!(matches!(storable("plain"), Cow::Borrowed("plain")));
        assert_eq!(storable("\0a\0"), "\u{fffd}a\u{fffd}");
        let mut expected = b"PGCOPY\n\xff\r\n\0\0\0\0\0\0\0\0\0".to_vec();
        expected.extend_from_slice(&[0, 3]);
        expected.extend_from_slice(&[0, 0, 0, 8, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfe]);
        expected.extend_from_slice(&[0xff, 0xff, 0xff, 0xff]);
        expected.extend_from_slice(&[0, 0, 0, 5, b'a', 0xef, 0xbf, 0xbd, b'b']);
        expected.extend_from_slice(&[0xff, 0xff]);
        assert_eq!(bytes, expected);
    }
}
