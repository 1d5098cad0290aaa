//! Errors that make a report unreadable, each located by XML path and byte offset.

use std::fmt;

/// Why a report could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ErrorKind {
    #[error("file is empty")]
    Empty,
    #[error("not XML: {0}")]
    NotXml(String),
    #[error("not a JUnit report: {0}")]
    OtherFormat(String),
    #[error("not a JUnit report: root element is <{0}>, expected <testsuites> or <testsuite>")]
    UnexpectedRoot(String),
    #[error(
        "document type declaration with entity declarations is refused (entities are never expanded)"
    )]
    EntityDeclaration,
    #[error("reference to undeclared entity &{0};")]
    UnknownEntity(String),
    #[error("unsupported encoding {0:?} (FlakeGuard reads UTF-8 and UTF-16)")]
    UnsupportedEncoding(String),
    #[error("missing attribute {0}")]
    MissingAttribute(&'static str),
    #[error("attribute {0} contains a raw '<' (not well-formed XML)")]
    LessThanInAttribute(String),
    #[error("malformed XML: {0}")]
    Syntax(String),
    #[error("document ends before <{0}> is closed (truncated file?)")]
    Truncated(String),
    #[error("limit exceeded: {0}")]
    Limit(String),
    #[error("read failed: {0}")]
    Io(String),
}

/// A located parse error: `testsuites/testsuite[2]/testcase[14]: missing attribute name (byte 18203)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    /// XML path of the element being read, e.g. `testsuites/testsuite[2]/testcase[14]`
    /// (empty before the root element).
    pub path: String,
    /// Byte offset in the document.
    pub offset: u64,
    pub kind: ErrorKind,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            write!(f, "{} (byte {})", self.kind, self.offset)
        } else {
            write!(f, "{}: {} (byte {})", self.path, self.kind, self.offset)
        }
    }
}

impl std::error::Error for ParseError {}
