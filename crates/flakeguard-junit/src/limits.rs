//! Resource limits that keep a hostile or runaway report from exhausting memory or time.

/// Limits applied while reading one report. Exceeding a hard limit fails the file with a
/// located error; text over a *cap* is cut and marked truncated instead.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Largest document accepted, in bytes (after UTF-16 transcoding).
    pub max_bytes: u64,
    /// Deepest element nesting accepted.
    pub max_depth: usize,
    /// Most elements accepted in one document.
    pub max_elements: u64,
    /// Longest attribute value accepted, in bytes.
    pub max_attribute_len: usize,
    /// Longest single piece of markup or text (one tag, one text run, one CDATA section)
    /// accepted, in bytes. This bounds the reader's buffer, and so its memory.
    pub max_token_len: usize,
    /// Failure and error text (stack traces) and messages are cut at this many bytes.
    pub text_cap: usize,
    /// `system-out` / `system-err` are cut at this many bytes.
    pub output_cap: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_bytes: 1 << 30,
            max_depth: 64,
            max_elements: 20_000_000,
            max_attribute_len: 1 << 20,
            max_token_len: 64 << 20,
            text_cap: 64 << 10,
            output_cap: 64 << 10,
        }
    }
}
