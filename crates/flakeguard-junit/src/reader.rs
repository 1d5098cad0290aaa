//! The streaming JUnit reader: pulls XML events and hands out one [`TestCase`] at a time,
//! so memory is bounded by the largest testcase, never by the document.

use std::io::BufRead;
use std::sync::Arc;

use flakeguard_core::{Outcome, TestKey};
use quick_xml::XmlVersion;
use quick_xml::events::{BytesRef, BytesStart, Event};

use crate::detect;
use crate::error::{ErrorKind, ParseError};
use crate::input::{Decoded, Encoding, Guarded, Utf16Reader, sniff_encoding};
use crate::issues::IssueLog;
use crate::limits::Limits;
use crate::model::{CappedText, Failure, FailureKind, Suite, TestCase};

/// What an open element means to the reader.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ctx {
    /// `<testsuites>` root.
    Root,
    /// A `<testsuite>`; the index into `suites`.
    Suite,
    Case,
    /// A failure-like element inside the case (its data is in `failure`).
    Result,
    /// `<stackTrace>` inside a surefire flaky/rerun element: more failure text.
    StackTrace,
    Skipped,
    Properties(Owner),
    Property(Owner),
    Output(Owner, Stream),
    /// Anything we do not read (but still count and bound).
    Ignored,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Owner {
    Suite,
    Case,
    Result,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stream {
    Out,
    Err,
}

#[derive(Debug)]
struct Frame {
    name: String,
    ctx: Ctx,
    /// 1-based index among same-named siblings.
    index: u32,
    /// Counts of child element names seen so far, for the path of later children.
    children: Vec<(String, u32)>,
}

impl Frame {
    fn next_child_index(&mut self, name: &str) -> u32 {
        if let Some((_, n)) = self.children.iter_mut().find(|(c, _)| c == name) {
            *n += 1;
            *n
        } else {
            self.children.push((name.to_owned(), 1));
            1
        }
    }
}

/// A `<testsuite>` being read.
#[derive(Debug)]
struct OpenSuite {
    suite: Suite,
    /// The shared view handed to testcases, built at the first testcase.
    shared: Option<Arc<Suite>>,
    declared: DeclaredCounts,
    seen: SeenCounts,
    offset: u64,
    path: String,
}

#[derive(Debug, Default)]
struct DeclaredCounts {
    tests: Option<u64>,
    failures: Option<u64>,
    errors: Option<u64>,
    skipped: Option<u64>,
}

#[derive(Debug, Default, Clone, Copy)]
struct SeenCounts {
    tests: u64,
    failures: u64,
    errors: u64,
    skipped: u64,
}

/// A `<testcase>` being read.
#[derive(Debug)]
struct OpenCase {
    case: TestCase,
    skipped: bool,
    status_attr_skipped: bool,
}

/// What handling one XML event produced.
#[derive(Debug)]
enum Step {
    /// A testcase finished; it waits in `JunitReader::ready`.
    Case,
    End,
}

/// Streams testcases out of one JUnit XML document.
#[derive(Debug)]
pub struct JunitReader<R: BufRead> {
    xml: quick_xml::Reader<Guarded<Decoded<R>>>,
    buf: Vec<u8>,
    limits: Limits,
    frames: Vec<Frame>,
    suites: Vec<OpenSuite>,
    /// Open testcases: more than one only when a producer nests testcases (sub-tests).
    cases: Vec<OpenCase>,
    /// The testcase just closed, handed out by `next_case`.
    ready: Option<TestCase>,
    failure: Option<Failure>,
    property: Option<(String, Option<String>, String)>,
    text: String,
    text_truncated: bool,
    root_seen: bool,
    root_closed: bool,
    elements: u64,
    testcases: u64,
    suites_seen: u64,
    dialect: &'static str,
    encoding_from_bom: Option<Encoding>,
    decl_seen: bool,
    issues: IssueLog,
    failed: bool,
    finished: bool,
    /// A testcase directly under `<testsuites>` gets this synthetic suite.
    orphan_suite: Option<Arc<Suite>>,
}

/// What the reader learned about the document once it is fully read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DocumentInfo {
    pub dialect: &'static str,
    pub testcases: u64,
    pub suites: u64,
    pub bytes: u64,
}

impl<R: BufRead> JunitReader<R> {
    /// Opens a report. Fails at once when the first bytes show it is empty, not XML, in an
    /// unsupported encoding, or a JSON report.
    pub fn new(mut input: R, limits: Limits) -> Result<Self, ParseError> {
        let early = |kind| ParseError {
            path: String::new(),
            offset: 0,
            kind,
        };
        let head = input
            .fill_buf()
            .map_err(|e| early(ErrorKind::Io(e.to_string())))?;
        if head.is_empty() {
            return Err(early(ErrorKind::Empty));
        }
        let (encoding, from_bom, bom_len) =
            sniff_encoding(head).map_err(|name| early(ErrorKind::UnsupportedEncoding(name)))?;
        input.consume(bom_len);
        let decoded = match encoding {
            Encoding::Utf8 => Decoded::Utf8(input),
            Encoding::Utf16Le => Decoded::Utf16(Utf16Reader::new(input, true)),
            Encoding::Utf16Be => Decoded::Utf16(Utf16Reader::new(input, false)),
        };
        let mut guarded = Guarded::new(decoded, limits.max_bytes, limits.max_token_len as u64);
        let head = guarded
            .fill_buf()
            .map_err(|e| early(ErrorKind::Io(e.to_string())))?;
        let head_text = String::from_utf8_lossy(&head[..head.len().min(8192)]).into_owned();
        if head_text.trim_start().starts_with("<!ENTITY") {
            return Err(early(ErrorKind::EntityDeclaration));
        }
        if let Some(kind) = detect::json_report_kind(&head_text) {
            return Err(early(ErrorKind::OtherFormat(kind.to_owned())));
        }
        if head_text.trim().is_empty() && head.len() < 8192 {
            return Err(early(ErrorKind::Empty));
        }
        let dialect = detect::junit_dialect(&head_text);
        let mut xml = quick_xml::Reader::from_reader(guarded);
        let config = xml.config_mut();
        config.check_end_names = true;
        config.check_comments = false;
        config.expand_empty_elements = false;
        config.trim_text(false);
        Ok(JunitReader {
            xml,
            buf: Vec::with_capacity(8 << 10),
            limits,
            frames: Vec::with_capacity(8),
            suites: Vec::with_capacity(4),
            cases: Vec::new(),
            ready: None,
            failure: None,
            property: None,
            text: String::new(),
            text_truncated: false,
            root_seen: false,
            root_closed: false,
            elements: 0,
            testcases: 0,
            suites_seen: 0,
            dialect,
            encoding_from_bom: from_bom.then_some(encoding),
            decl_seen: false,
            issues: IssueLog::default(),
            failed: false,
            finished: false,
            orphan_suite: None,
        })
    }

    /// The producer guessed from the document's first kilobytes (`jest`, `pytest`, …, `generic`).
    pub fn dialect(&self) -> &'static str {
        self.dialect
    }

    /// Non-fatal oddities noticed so far.
    pub fn issues(&self) -> &IssueLog {
        &self.issues
    }

    /// Counts known after the document has been read to the end.
    pub fn info(&self) -> DocumentInfo {
        DocumentInfo {
            dialect: self.dialect,
            testcases: self.testcases,
            suites: self.suites_seen,
            bytes: self.xml.get_ref().position,
        }
    }

    /// The XML path of the innermost open element.
    fn path(&self) -> String {
        let mut out = String::new();
        for (i, frame) in self.frames.iter().enumerate() {
            if i > 0 {
                out.push('/');
            }
            out.push_str(&frame.name);
            if i > 0 {
                out.push_str(&format!("[{}]", frame.index));
            }
        }
        out
    }

    /// Notes an issue at the current element; the path is only built the first time a kind
    /// is seen, so a quirk repeated on every testcase costs a counter increment.
    fn note(&mut self, kind: &'static str, message: &'static str, offset: u64) {
        if !self.issues.bump(kind) {
            let path = self.path();
            self.issues.note(kind, message, &path, offset);
        }
    }

    fn error_at(&mut self, offset: u64, kind: ErrorKind) -> ParseError {
        self.failed = true;
        ParseError {
            path: self.path(),
            offset,
            kind,
        }
    }

    /// Reads up to the next testcase. `Ok(None)` at the end of a well-formed document.
    pub fn next_case(&mut self) -> Result<Option<TestCase>, ParseError> {
        if self.failed || self.finished {
            return Ok(None);
        }
        loop {
            let start = self.xml.buffer_position();
            self.xml.get_mut().token_start = start;
            let mut buf = std::mem::take(&mut self.buf);
            buf.clear();
            let result = self.read_one(&mut buf, start);
            self.buf = buf;
            match result? {
                Some(Step::Case) => return Ok(self.ready.take()),
                Some(Step::End) => return Ok(None),
                None => {}
            }
        }
    }

    /// Reads and handles one XML event.
    fn read_one(&mut self, buf: &mut Vec<u8>, start: u64) -> Result<Option<Step>, ParseError> {
        {
            let event = match self.xml.read_event_into(buf) {
                Ok(event) => event,
                Err(err) => {
                    let offset = self.xml.error_position();
                    let kind = match (self.xml.get_ref().violation.clone(), &err) {
                        (Some(v), _) => ErrorKind::Limit(v),
                        (None, quick_xml::Error::Io(io))
                            if io.kind() == std::io::ErrorKind::InvalidData =>
                        {
                            ErrorKind::NotXml(io.to_string())
                        }
                        (None, quick_xml::Error::Io(io)) => ErrorKind::Io(io.to_string()),
                        (None, quick_xml::Error::Syntax(s))
                            if !self.root_seen && self.frames.is_empty() && offset == 0 =>
                        {
                            ErrorKind::NotXml(s.to_string())
                        }
                        (
                            None,
                            quick_xml::Error::Syntax(quick_xml::errors::SyntaxError::UnclosedCData),
                        ) => ErrorKind::Truncated("![CDATA[".to_owned()),
                        (None, other) => ErrorKind::Syntax(other.to_string()),
                    };
                    return Err(self.error_at(offset, kind));
                }
            };
            match event {
                Event::Decl(decl) => self.on_decl(&decl, start)?,
                Event::DocType(text) => {
                    if text.contains("<!ENTITY")
                        || text.contains("SYSTEM")
                        || text.contains("PUBLIC")
                    {
                        return Err(self.error_at(start, ErrorKind::EntityDeclaration));
                    }
                    self.issues.note(
                        "doctype",
                        "document type declaration ignored",
                        &self.path(),
                        start,
                    );
                }
                Event::PI(_) | Event::Comment(_) => {}
                Event::Start(e) => {
                    self.on_start(&e, start)?;
                }
                Event::Empty(e) => {
                    self.on_start(&e, start)?;
                    if let Some(case) = self.on_end(start)? {
                        self.ready = Some(case);
                        return Ok(Some(Step::Case));
                    }
                }
                Event::End(_) => {
                    if let Some(case) = self.on_end(start)? {
                        self.ready = Some(case);
                        return Ok(Some(Step::Case));
                    }
                }
                Event::Text(t) => {
                    let content = t.xml10_content();
                    self.on_text(&content, start)?;
                }
                Event::CData(c) => {
                    let content = c.xml10_content();
                    if self.frames.is_empty() {
                        return Err(self.error_at(
                            start,
                            ErrorKind::Syntax("CDATA outside the root element".to_owned()),
                        ));
                    }
                    self.append_text(&content);
                }
                Event::GeneralRef(r) => {
                    let resolved = self.resolve_ref(&r, start)?;
                    let mut tmp = [0u8; 4];
                    self.on_text(resolved.encode_utf8(&mut tmp), start)?;
                }
                Event::Eof => {
                    if let Some(frame) = self.frames.last() {
                        let name = frame.name.clone();
                        let offset = self.xml.buffer_position();
                        return Err(self.error_at(offset, ErrorKind::Truncated(name)));
                    }
                    if !self.root_seen {
                        return Err(
                            self.error_at(start, ErrorKind::NotXml("no root element".to_owned()))
                        );
                    }
                    self.finished = true;
                    return Ok(Some(Step::End));
                }
            }
        }
        Ok(None)
    }

    fn on_decl(
        &mut self,
        decl: &quick_xml::events::BytesDecl<'_>,
        offset: u64,
    ) -> Result<(), ParseError> {
        if self.root_seen || self.decl_seen {
            return Err(self.error_at(
                offset,
                ErrorKind::Syntax("XML declaration in the middle of the document".to_owned()),
            ));
        }
        self.decl_seen = true;
        if offset > 0 {
            self.issues.note(
                "decl-not-first",
                "XML declaration is not at the start of the file",
                "",
                offset,
            );
        }
        let Some(Ok(declared)) = decl.encoding() else {
            return Ok(());
        };
        let declared = declared
            .trim()
            .to_ascii_lowercase()
            .replace(['-', '_', ' '], "");
        let bom = self.encoding_from_bom;
        match (declared.as_str(), bom) {
            ("utf8", None | Some(Encoding::Utf8)) | ("usascii" | "ascii", None) => Ok(()),
            (
                "utf16" | "utf16le" | "utf16be" | "ucs2",
                Some(Encoding::Utf16Le | Encoding::Utf16Be),
            ) => {
                if !matches!(declared.as_str(), "utf16" | "utf16le" | "utf16be") {
                    self.issues.note(
                        "encoding-name",
                        "declared encoding name is not standard; read by its byte-order mark",
                        "",
                        offset,
                    );
                }
                Ok(())
            }
            ("utf16" | "utf16le" | "utf16be", _) => {
                self.issues.note(
                    "encoding-mismatch",
                    "declares UTF-16 but is stored as UTF-8",
                    "",
                    offset,
                );
                Ok(())
            }
            ("utf8", Some(_)) => {
                self.issues.note(
                    "encoding-mismatch",
                    "declares UTF-8 but has a UTF-16 byte-order mark",
                    "",
                    offset,
                );
                Ok(())
            }
            _ => {
                let raw = decl
                    .encoding()
                    .and_then(Result::ok)
                    .map(|c| c.into_owned())
                    .unwrap_or_default();
                if bom.is_some() && raw.to_ascii_lowercase().starts_with("utf") {
                    self.issues.note(
                        "encoding-name",
                        "declared encoding name is not standard; read by its byte-order mark",
                        "",
                        offset,
                    );
                    return Ok(());
                }
                Err(self.error_at(offset, ErrorKind::UnsupportedEncoding(raw)))
            }
        }
    }

    fn resolve_ref(&mut self, r: &BytesRef<'_>, offset: u64) -> Result<char, ParseError> {
        if r.is_char_ref() {
            return match r.resolve_char_ref() {
                Ok(Some(c)) => Ok(c),
                Ok(None) | Err(_) => {
                    let name = r.xml10_content().into_owned();
                    Err(self.error_at(
                        offset,
                        ErrorKind::Syntax(format!("invalid character reference &{name};")),
                    ))
                }
            };
        }
        let name = r.xml10_content();
        match name.as_ref() {
            "amp" => Ok('&'),
            "lt" => Ok('<'),
            "gt" => Ok('>'),
            "quot" => Ok('"'),
            "apos" => Ok('\''),
            other => {
                let other = other.to_owned();
                Err(self.error_at(offset, ErrorKind::UnknownEntity(other)))
            }
        }
    }

    fn on_text(&mut self, text: &str, offset: u64) -> Result<(), ParseError> {
        if self.frames.is_empty() {
            if text.trim().is_empty() {
                return Ok(());
            }
            let kind = if self.root_closed {
                ErrorKind::Syntax("text after the root element".to_owned())
            } else {
                ErrorKind::NotXml("text before the root element".to_owned())
            };
            return Err(self.error_at(offset, kind));
        }
        self.append_text(text);
        Ok(())
    }

    fn text_cap(&self) -> Option<usize> {
        match self.frames.last().map(|f| f.ctx) {
            Some(Ctx::Result | Ctx::StackTrace | Ctx::Skipped | Ctx::Property(_)) => {
                Some(self.limits.text_cap)
            }
            Some(Ctx::Output(..)) => Some(self.limits.output_cap),
            _ => None,
        }
    }

    fn append_text(&mut self, text: &str) {
        let Some(cap) = self.text_cap() else { return };
        if self.text.len() + text.len() <= cap {
            self.text.push_str(text);
        } else {
            let room = cap.saturating_sub(self.text.len());
            let mut cut = room.min(text.len());
            while !text.is_char_boundary(cut) {
                cut -= 1;
            }
            self.text.push_str(&text[..cut]);
            self.text_truncated = true;
        }
    }

    fn take_text(&mut self) -> CappedText {
        let truncated = std::mem::take(&mut self.text_truncated);
        CappedText {
            text: std::mem::take(&mut self.text),
            truncated,
        }
    }

    fn attributes<'e>(
        &mut self,
        e: &'e BytesStart<'_>,
        offset: u64,
    ) -> Result<Vec<(&'e str, std::borrow::Cow<'e, str>)>, ParseError> {
        let mut out = Vec::with_capacity(8);
        for attr in e.attributes() {
            let attr = match attr {
                Ok(a) => a,
                Err(err) => {
                    return Err(
                        self.error_at(offset, ErrorKind::Syntax(format!("bad attribute: {err}")))
                    );
                }
            };
            let key: &'e str = attr.key.0;
            if attr.value.len() > self.limits.max_attribute_len {
                let limit = self.limits.max_attribute_len;
                return Err(self.error_at(
                    offset,
                    ErrorKind::Limit(format!("attribute {key} is longer than {limit} bytes")),
                ));
            }
            if attr.value.contains('<') {
                return Err(self.error_at(offset, ErrorKind::LessThanInAttribute(key.to_owned())));
            }
            let value = match attr.normalized_value(XmlVersion::Implicit1_0) {
                Ok(v) => v,
                Err(quick_xml::Error::Escape(
                    quick_xml::escape::EscapeError::UnrecognizedEntity(_, name),
                )) => {
                    return Err(self.error_at(offset, ErrorKind::UnknownEntity(name)));
                }
                Err(err) => {
                    return Err(
                        self.error_at(offset, ErrorKind::Syntax(format!("attribute {key}: {err}")))
                    );
                }
            };
            out.push((key, value));
        }
        Ok(out)
    }

    fn on_start(&mut self, e: &BytesStart<'_>, offset: u64) -> Result<(), ParseError> {
        let name = e.name().as_ref().to_owned();
        self.elements += 1;
        if self.elements > self.limits.max_elements {
            let limit = self.limits.max_elements;
            return Err(self.error_at(
                offset,
                ErrorKind::Limit(format!("more than {limit} elements")),
            ));
        }
        if self.frames.len() >= self.limits.max_depth {
            let limit = self.limits.max_depth;
            return Err(self.error_at(
                offset,
                ErrorKind::Limit(format!("elements nested deeper than {limit}")),
            ));
        }
        if self.root_closed {
            return Err(self.error_at(
                offset,
                ErrorKind::Syntax(format!("element <{name}> after the root element")),
            ));
        }
        let parent_ctx = self.frames.last().map(|f| f.ctx);
        let index = match self.frames.last_mut() {
            Some(parent) => parent.next_child_index(&name),
            None => 1,
        };
        // Push the frame first so errors name the element they are about.
        self.frames.push(Frame {
            name: name.clone(),
            ctx: Ctx::Ignored,
            index,
            children: Vec::new(),
        });
        let ctx = match parent_ctx {
            None => self.open_root(&name, e, offset)?,
            Some(Ctx::Root | Ctx::Suite) => match name.as_str() {
                "testsuite" => self.open_suite(e, offset)?,
                "testcase" => self.open_case(e, offset)?,
                "properties" => Ctx::Properties(Owner::Suite),
                "failure" | "error" | "skipped" | "flakyFailure" | "flakyError"
                | "rerunFailure" | "rerunError" => {
                    self.note(
                        "suite-result",
                        "result element on a testsuite itself, not on a testcase (not counted)",
                        offset,
                    );
                    Ctx::Ignored
                }
                "system-out" if parent_ctx == Some(Ctx::Suite) => {
                    Ctx::Output(Owner::Suite, Stream::Out)
                }
                "system-err" if parent_ctx == Some(Ctx::Suite) => {
                    Ctx::Output(Owner::Suite, Stream::Err)
                }
                _ => Ctx::Ignored,
            },
            Some(Ctx::Case) => {
                match name.as_str() {
                    "testcase" => {
                        self.note(
                            "nested-case",
                            "testcase nested in a testcase (read as a test of its own)",
                            offset,
                        );
                        self.open_case(e, offset)?
                    }
                    "testsuite" => {
                        self.note("nested-case", "testsuite nested in a testcase (its testcases read as tests of their own)", offset);
                        self.open_suite(e, offset)?
                    }
                    "skipped" => {
                        let attrs = self.attributes(e, offset)?;
                        if let Some(case) = self.cases.last_mut() {
                            case.skipped = true;
                            case.case.skipped_message = attr(&attrs, "message").map(str::to_owned);
                        }
                        Ctx::Skipped
                    }
                    "system-out" => Ctx::Output(Owner::Case, Stream::Out),
                    "system-err" => Ctx::Output(Owner::Case, Stream::Err),
                    "properties" => Ctx::Properties(Owner::Case),
                    other => match FailureKind::from_element(other) {
                        Some(kind) => {
                            let attrs = self.attributes(e, offset)?;
                            self.failure = Some(Failure {
                                kind,
                                r#type: attr(&attrs, "type").map(str::to_owned),
                                message: attr(&attrs, "message")
                                    .map(|m| cap_str(m, self.limits.text_cap)),
                                text: CappedText::default(),
                                time: attr(&attrs, "time").and_then(|t| parse_time(t).ok()),
                                system_out: None,
                                system_err: None,
                            });
                            Ctx::Result
                        }
                        None => Ctx::Ignored,
                    },
                }
            }
            Some(Ctx::Result | Ctx::StackTrace) => match name.as_str() {
                "system-out" => Ctx::Output(Owner::Result, Stream::Out),
                "system-err" => Ctx::Output(Owner::Result, Stream::Err),
                "stackTrace" => Ctx::StackTrace,
                _ => Ctx::Ignored,
            },
            Some(Ctx::Properties(owner)) if name == "property" => {
                let attrs = self.attributes(e, offset)?;
                let prop_name = attr(&attrs, "name").map(str::to_owned);
                let value = attr(&attrs, "value").map(str::to_owned);
                match prop_name {
                    Some(n) => self.property = Some((n, value, String::new())),
                    None => {
                        self.note("property-name", "property without a name ignored", offset);
                    }
                }
                Ctx::Property(owner)
            }
            Some(_) => Ctx::Ignored,
        };
        if matches!(
            ctx,
            Ctx::Result | Ctx::StackTrace | Ctx::Skipped | Ctx::Output(..) | Ctx::Property(_)
        ) && ctx != Ctx::StackTrace
        {
            self.text.clear();
            self.text_truncated = false;
        }
        if let Some(frame) = self.frames.last_mut() {
            frame.ctx = ctx;
        }
        Ok(())
    }

    fn open_root(
        &mut self,
        name: &str,
        e: &BytesStart<'_>,
        offset: u64,
    ) -> Result<Ctx, ParseError> {
        self.root_seen = true;
        match name {
            "testsuites" => Ok(Ctx::Root),
            "testsuite" => self.open_suite(e, offset),
            _ => {
                let kind = match detect::other_format_for_root(name) {
                    Some((_, human)) => ErrorKind::OtherFormat(format!("{human} (root <{name}>)")),
                    None => ErrorKind::UnexpectedRoot(name.to_owned()),
                };
                // The path of a rejected root is just its name.
                Err(self.error_at(offset, kind))
            }
        }
    }

    fn open_suite(&mut self, e: &BytesStart<'_>, offset: u64) -> Result<Ctx, ParseError> {
        let attrs = self.attributes(e, offset)?;
        let name = attr(&attrs, "name")
            .map(flakeguard_core::key::collapse_whitespace)
            .unwrap_or_default();
        let mut path: Vec<String> = self
            .suites
            .last()
            .map(|s| s.suite.path.clone())
            .unwrap_or_default();
        path.push(name);
        let count = |key: &str| attr(&attrs, key).and_then(|v| v.trim().parse::<u64>().ok());
        let skipped = match (count("skipped"), count("skip")) {
            (Some(a), _) => Some(a),
            (None, b) => b,
        };
        let parent_file = self.suites.last().and_then(|s| s.suite.file.clone());
        let suite = Suite {
            path,
            hostname: attr(&attrs, "hostname").map(str::to_owned),
            timestamp: attr(&attrs, "timestamp").map(str::to_owned),
            file: attr(&attrs, "file")
                .or_else(|| attr(&attrs, "filepath"))
                .map(str::to_owned)
                .or(parent_file),
            properties: Vec::new(),
        };
        self.suites_seen += 1;
        let path = self.path();
        self.suites.push(OpenSuite {
            suite,
            shared: None,
            declared: DeclaredCounts {
                tests: count("tests"),
                failures: count("failures"),
                errors: count("errors"),
                skipped,
            },
            seen: SeenCounts::default(),
            offset,
            path,
        });
        Ok(Ctx::Suite)
    }

    fn current_suite(&mut self) -> Arc<Suite> {
        if let Some(open) = self.suites.last_mut() {
            return open
                .shared
                .get_or_insert_with(|| Arc::new(open.suite.clone()))
                .clone();
        }
        self.orphan_suite
            .get_or_insert_with(|| Arc::new(Suite::default()))
            .clone()
    }

    fn open_case(&mut self, e: &BytesStart<'_>, offset: u64) -> Result<Ctx, ParseError> {
        let attrs = self.attributes(e, offset)?;
        self.testcases += 1;
        if self.suites.is_empty() {
            self.note("orphan-case", "testcase outside any testsuite", offset);
        }
        let suite = self.current_suite();
        let name = match attr(&attrs, "name")
            .map(str::trim)
            .filter(|n| !n.is_empty())
        {
            Some(n) => n.to_owned(),
            None => {
                self.note(
                    "missing-name",
                    "testcase without a name (named by its position)",
                    offset,
                );
                format!(
                    "testcase[{}]",
                    self.frames.last().map(|f| f.index).unwrap_or(0)
                )
            }
        };
        let classname = match attr(&attrs, "classname").filter(|c| !c.trim().is_empty()) {
            Some(c) => Some(c.to_owned()),
            None => match attr(&attrs, "class").filter(|c| !c.trim().is_empty()) {
                Some(c) => {
                    self.note("class-attr", "classname given as `class`", offset);
                    Some(c.to_owned())
                }
                None => {
                    self.note("missing-classname", "testcase without a classname", offset);
                    None
                }
            },
        };
        let file = match attr(&attrs, "file").filter(|f| !f.trim().is_empty()) {
            Some(f) => Some(f.to_owned()),
            None => {
                if suite.file.is_some() {
                    self.note(
                        "suite-file",
                        "`file` given on the testsuite, applied to its testcases",
                        offset,
                    );
                }
                suite.file.clone()
            }
        };
        let line = attr(&attrs, "line").and_then(|l| l.trim().parse::<u32>().ok());
        let time = match attr(&attrs, "time") {
            None => {
                self.note("missing-time", "testcase without a time", offset);
                None
            }
            Some(raw) => match parse_time(raw) {
                Ok(t) if t < 0.0 => {
                    self.note("negative-time", "negative testcase time ignored", offset);
                    None
                }
                Ok(t) => Some(t),
                Err(()) => {
                    self.note("bad-time", "unreadable testcase time ignored", offset);
                    None
                }
            },
        };
        let status_attr_skipped = matches!(
            attr(&attrs, "status")
                .or_else(|| attr(&attrs, "result"))
                .map(|s| s.trim().to_ascii_lowercase())
                .as_deref(),
            Some("skipped" | "notrun" | "disabled" | "ignored" | "suppressed")
        );
        let mut key =
            TestKey::from_parts(file.as_deref(), suite.name(), classname.as_deref(), &name);
        if self.dialect == "playwright"
            && let Some(project) = suite.hostname.as_deref().filter(|h| !h.is_empty())
        {
            key = key.with_variant(Some(project.to_owned()));
        }
        self.cases.push(OpenCase {
            case: TestCase {
                suite,
                key,
                classname,
                name,
                file,
                line,
                time,
                status: Outcome::Passed,
                failures: Vec::new(),
                retries: Vec::new(),
                skipped_message: None,
                system_out: None,
                system_err: None,
                properties: Vec::new(),
                index: self.testcases,
                byte_offset: offset,
            },
            skipped: false,
            status_attr_skipped,
        });
        Ok(Ctx::Case)
    }

    fn on_end(&mut self, offset: u64) -> Result<Option<TestCase>, ParseError> {
        let Some(frame) = self.frames.last() else {
            return Err(self.error_at(
                offset,
                ErrorKind::Syntax("closing tag without an opening tag".to_owned()),
            ));
        };
        let ctx = frame.ctx;
        let mut finished_case = None;
        match ctx {
            Ctx::Root => {}
            Ctx::Suite => self.close_suite(),
            Ctx::Case => finished_case = self.close_case(),
            Ctx::Result => {
                let text = self.take_text();
                if let Some(mut failure) = self.failure.take() {
                    failure.text = text;
                    if let Some(case) = self.cases.last_mut() {
                        if failure.kind.is_flaky() || failure.kind.is_rerun() {
                            case.case.retries.push(failure);
                        } else {
                            case.case.failures.push(failure);
                        }
                    }
                }
            }
            Ctx::StackTrace => {}
            Ctx::Skipped => {
                let text = self.take_text();
                if let Some(case) = self.cases.last_mut()
                    && case.case.skipped_message.is_none()
                    && !text.text.trim().is_empty()
                {
                    case.case.skipped_message = Some(text.text.trim().to_owned());
                }
            }
            Ctx::Output(owner, stream) => {
                let text = self.take_text();
                let slot = match owner {
                    Owner::Case => self.cases.last_mut().map(|c| match stream {
                        Stream::Out => &mut c.case.system_out,
                        Stream::Err => &mut c.case.system_err,
                    }),
                    Owner::Result => self.failure.as_mut().map(|f| match stream {
                        Stream::Out => &mut f.system_out,
                        Stream::Err => &mut f.system_err,
                    }),
                    Owner::Suite => None,
                };
                if let Some(slot) = slot {
                    *slot = Some(text);
                }
            }
            Ctx::Property(owner) => {
                let text = self.take_text();
                if let Some((name, value, _)) = self.property.take() {
                    let value = value.unwrap_or_else(|| text.text.trim().to_owned());
                    match owner {
                        Owner::Case => {
                            if let Some(case) = self.cases.last_mut() {
                                case.case.properties.push((name, value));
                            }
                        }
                        Owner::Suite => {
                            if let Some(open) = self.suites.last_mut() {
                                open.suite.properties.push((name, value));
                                if open.shared.is_some() {
                                    // Testcases already handed out keep the suite as it was.
                                    open.shared = None;
                                }
                            }
                        }
                        Owner::Result => {}
                    }
                }
            }
            Ctx::Properties(_) | Ctx::Ignored => {}
        }
        self.frames.pop();
        if self.frames.is_empty() {
            self.root_closed = true;
        }
        Ok(finished_case)
    }

    fn close_suite(&mut self) {
        let Some(open) = self.suites.pop() else {
            return;
        };
        let seen = open.seen;
        let mismatch = |declared: Option<u64>, seen: u64| declared.is_some_and(|d| d != seen);
        let d = &open.declared;
        if mismatch(d.tests, seen.tests) && seen.tests > 0
            || (d.tests.is_some_and(|t| t > 0) && seen.tests == 0)
        {
            self.issues.note(
                "count-tests",
                "testsuite's `tests` attribute disagrees with its testcases",
                &open.path,
                open.offset,
            );
        } else if mismatch(d.failures, seen.failures)
            || mismatch(d.errors, seen.errors)
            || mismatch(d.skipped, seen.skipped)
        {
            // Producers disagree on whether errors count as failures; only note when the
            // totals disagree as well.
            let declared_bad = d.failures.unwrap_or(0) + d.errors.unwrap_or(0);
            if declared_bad != seen.failures + seen.errors || mismatch(d.skipped, seen.skipped) {
                self.issues.note(
                    "count-results",
                    "testsuite's failures/errors/skipped attributes disagree with its testcases",
                    &open.path,
                    open.offset,
                );
            }
        }
        if let Some(parent) = self.suites.last_mut() {
            parent.seen.tests += seen.tests;
            parent.seen.failures += seen.failures;
            parent.seen.errors += seen.errors;
            parent.seen.skipped += seen.skipped;
        }
    }

    fn close_case(&mut self) -> Option<TestCase> {
        let open = self.cases.pop()?;
        let mut case = open.case;
        let has_error = case.failures.iter().any(|f| f.kind == FailureKind::Error);
        case.status = if has_error {
            Outcome::Error
        } else if !case.failures.is_empty() {
            Outcome::Failed
        } else if open.skipped || open.status_attr_skipped {
            Outcome::Skipped
        } else {
            Outcome::Passed
        };
        if case.failures.is_empty() && case.retries.iter().any(|r| r.kind.is_rerun()) {
            // rerunFailure without a final <failure>: the last rerun is the final result.
            self.note(
                "rerun-without-failure",
                "rerunFailure without a final failure; treated as failed",
                case.byte_offset,
            );
            if let Some(pos) = case.retries.iter().rposition(|r| r.kind.is_rerun()) {
                let last = case.retries.remove(pos);
                case.status = last.kind.outcome();
                case.failures.push(last);
            }
        }
        if case.failures.len() > 1 || (!case.failures.is_empty() && open.skipped) {
            self.note(
                "multi-result",
                "testcase carries several results; error wins over failure over skipped",
                case.byte_offset,
            );
        }
        if let Some(suite) = self.suites.last_mut() {
            suite.seen.tests += 1;
            match case.status {
                Outcome::Failed => suite.seen.failures += 1,
                Outcome::Error => suite.seen.errors += 1,
                Outcome::Skipped => suite.seen.skipped += 1,
                Outcome::Passed => {}
            }
        }
        Some(case)
    }
}

impl<R: BufRead> Iterator for JunitReader<R> {
    type Item = Result<TestCase, ParseError>;

    fn next(&mut self) -> Option<Self::Item> {
        self.next_case().transpose()
    }
}

fn attr<'a>(attrs: &'a [(&str, std::borrow::Cow<'_, str>)], key: &str) -> Option<&'a str> {
    attrs
        .iter()
        .find(|(k, _)| *k == key)
        .map(|(_, v)| v.as_ref())
}

fn cap_str(s: &str, cap: usize) -> String {
    if s.len() <= cap {
        return s.to_owned();
    }
    let mut cut = cap;
    while !s.is_char_boundary(cut) {
        cut -= 1;
    }
    s[..cut].to_owned()
}

/// Seconds as written by producers: `1.5`, `1,234.5` (thousands separators), ` 2 `.
pub(crate) fn parse_time(raw: &str) -> Result<f64, ()> {
    if let Ok(t) = raw.trim().parse::<f64>() {
        return if t.is_finite() { Ok(t) } else { Err(()) };
    }
    let cleaned: String = raw.trim().chars().filter(|c| *c != ',').collect();
    let cleaned = cleaned.strip_suffix('s').unwrap_or(&cleaned);
    match cleaned.parse::<f64>() {
        Ok(t) if t.is_finite() => Ok(t),
        _ => Err(()),
    }
}
