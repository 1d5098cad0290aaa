//! The reader's behaviour on hand-written documents: encodings, escapes, retries, limits,
//! hostile input and the location carried by every error.

mod support;

use flakeguard_core::Outcome;
use flakeguard_junit::{ErrorKind, FailureKind, JunitReader, Limits};
use support::{read_all, read_all_with};

fn utf16(s: &str, little_endian: bool) -> Vec<u8> {
    let mut out = if little_endian {
        vec![0xFF, 0xFE]
    } else {
        vec![0xFE, 0xFF]
    };
    for unit in s.encode_utf16() {
        out.extend_from_slice(&if little_endian {
            unit.to_le_bytes()
        } else {
            unit.to_be_bytes()
        });
    }
    out
}

const SMALL: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<testsuites>
  <testsuite name="math" hostname="ci-1" timestamp="2026-01-01T00:00:00Z">
    <properties><property name="os" value="linux"/></properties>
    <testcase classname="m.Add" name="adds" time="0.5" file="tests/add.rs" line="12"/>
    <testcase classname="m.Add" name="overflows" time="1,234.5">
      <failure message="expected 4 &amp; got 5" type="AssertionError"><![CDATA[at add.rs:12 <raw>]]> &lt;tail&gt; &#x41;</failure>
      <system-out>hello</system-out>
    </testcase>
    <testcase classname="m.Add" name="skips"><skipped message="not today"/></testcase>
    <testcase classname="m.Add" name="errs"><error type="Panic">boom</error></testcase>
  </testsuite>
</testsuites>"#;

#[test]
fn reads_fields_escapes_and_cdata() {
    let (cases, _) = read_all(SMALL.as_bytes()).unwrap();
    assert_eq!(cases.len(), 4);
    let adds = &cases[0];
    assert_eq!(adds.suite.name(), "math");
    assert_eq!(adds.suite.hostname.as_deref(), Some("ci-1"));
    assert_eq!(
        adds.suite.properties,
        vec![("os".to_owned(), "linux".to_owned())]
    );
    assert_eq!(
        (adds.file.as_deref(), adds.line, adds.time),
        (Some("tests/add.rs"), Some(12), Some(0.5))
    );
    assert_eq!(adds.status, Outcome::Passed);
    let overflow = &cases[1];
    assert_eq!(overflow.time, Some(1234.5));
    assert_eq!(overflow.status, Outcome::Failed);
    let failure = overflow.final_failure().unwrap();
    assert_eq!(failure.message.as_deref(), Some("expected 4 & got 5"));
    assert_eq!(failure.r#type.as_deref(), Some("AssertionError"));
    assert_eq!(failure.text.text, "at add.rs:12 <raw> <tail> A");
    assert_eq!(overflow.system_out.as_ref().unwrap().text, "hello");
    assert_eq!(cases[2].status, Outcome::Skipped);
    assert_eq!(cases[2].skipped_message.as_deref(), Some("not today"));
    assert_eq!(cases[3].status, Outcome::Error);
}

#[test]
fn utf16_with_either_byte_order_reads_like_utf8() {
    let expected = read_all(SMALL.as_bytes()).unwrap().0;
    for le in [true, false] {
        let doc = SMALL.replace("UTF-8", "UTF-16");
        let (cases, _) = read_all(&utf16(&doc, le)).unwrap();
        assert_eq!(cases.len(), expected.len());
        for (a, b) in cases.iter().zip(&expected) {
            assert_eq!(
                (&a.key, a.status, &a.failures),
                (&b.key, b.status, &b.failures)
            );
        }
    }
}

#[test]
fn bom_and_crlf_are_handled() {
    let doc = format!("\u{FEFF}{}", SMALL.replace('\n', "\r\n"));
    let (cases, _) = read_all(doc.as_bytes()).unwrap();
    assert_eq!(cases.len(), 4);
    let doc = "<testsuite name=\"s\"><testcase name=\"t\"><failure>line1\r\nline2</failure></testcase></testsuite>";
    let (cases, _) = read_all(doc.as_bytes()).unwrap();
    assert_eq!(cases[0].failures[0].text.text, "line1\nline2");
}

#[test]
fn other_encodings_are_refused_by_name() {
    let doc = "<?xml version=\"1.0\" encoding=\"windows-1252\"?><testsuite/>";
    let err = read_all(doc.as_bytes()).unwrap_err();
    assert!(
        matches!(err.kind, ErrorKind::UnsupportedEncoding(ref e) if e == "windows-1252"),
        "{err}"
    );
    let err = read_all(b"\x00\x00\xFE\xFF\x00\x00\x00<").unwrap_err();
    assert!(err.to_string().contains("UTF-32"), "{err}");
}

#[test]
fn rejects_report_with_xml_entities() {
    let bomb = r#"<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;">]>
<testsuite name="x"><testcase name="&lol2;"/></testsuite>"#;
    let err = read_all(bomb.as_bytes()).unwrap_err();
    assert_eq!(err.kind, ErrorKind::EntityDeclaration);
    let external = r#"<!DOCTYPE r [<!ENTITY xxe SYSTEM "file:///etc/passwd">]><testsuite><testcase name="&xxe;"/></testsuite>"#;
    assert_eq!(
        read_all(external.as_bytes()).unwrap_err().kind,
        ErrorKind::EntityDeclaration
    );
}

#[test]
fn undeclared_entity_is_a_located_error() {
    let doc = "<testsuites><testsuite name=\"a\"/><testsuite name=\"b\"><testcase name=\"x\"/><testcase name=\"y\"><failure>&nope;</failure></testcase></testsuite></testsuites>";
    let err = read_all(doc.as_bytes()).unwrap_err();
    assert_eq!(err.kind, ErrorKind::UnknownEntity("nope".to_owned()));
    assert_eq!(err.path, "testsuites/testsuite[2]/testcase[2]/failure[1]");
    let offset = doc.find("&nope;").unwrap() as u64;
    assert_eq!(err.offset, offset);
    assert_eq!(
        err.to_string(),
        format!(
            "testsuites/testsuite[2]/testcase[2]/failure[1]: reference to undeclared entity &nope; (byte {offset})"
        )
    );
}

#[test]
fn plain_doctype_is_ignored_with_an_issue() {
    let doc = "<!DOCTYPE testsuite><testsuite name=\"s\"><testcase name=\"t\"/></testsuite>";
    let (cases, issues) = read_all(doc.as_bytes()).unwrap();
    assert_eq!(cases.len(), 1);
    assert!(issues.has("doctype"));
}

#[test]
fn truncated_document_names_the_unclosed_element() {
    let doc = "<testsuites><testsuite name=\"s\"><testcase name=\"t\"><failure>oops";
    let err = read_all(doc.as_bytes()).unwrap_err();
    assert_eq!(err.kind, ErrorKind::Truncated("failure".to_owned()));
    assert!(err.path.ends_with("testcase[1]/failure[1]"), "{err}");
}

#[test]
fn flaky_failures_are_attempts_before_the_final_pass() {
    let doc = r#"<testsuite name="s"><testcase classname="c" name="t" time="3">
        <flakyFailure message="first" time="1"/><flakyError message="second" time="1"/>
    </testcase></testsuite>"#;
    let (cases, _) = read_all(doc.as_bytes()).unwrap();
    let case = &cases[0];
    assert_eq!(case.status, Outcome::Passed);
    assert!(case.is_flaky_within());
    let outcomes: Vec<Outcome> = case.attempts().iter().map(|a| a.outcome).collect();
    assert_eq!(
        outcomes,
        vec![Outcome::Failed, Outcome::Error, Outcome::Passed]
    );
    assert_eq!(case.retries[0].kind, FailureKind::FlakyFailure);
}

#[test]
fn rerun_failures_are_further_failed_attempts() {
    let doc = r#"<testsuite name="s"><testcase classname="c" name="t">
        <failure message="1"/><rerunFailure message="2"><stackTrace>at x</stackTrace></rerunFailure><rerunError message="3"/>
    </testcase></testsuite>"#;
    let (cases, _) = read_all(doc.as_bytes()).unwrap();
    let attempts = cases[0].attempts();
    assert_eq!(cases[0].status, Outcome::Failed);
    assert_eq!(
        attempts.iter().map(|a| a.outcome).collect::<Vec<_>>(),
        vec![Outcome::Failed, Outcome::Failed, Outcome::Error]
    );
    assert_eq!(attempts[1].failure.unwrap().text.text, "at x");
}

#[test]
fn repeated_testcases_are_attempts_and_flaky_when_fail_then_pass() {
    let doc = r#"<testsuite name="pytest">
        <testcase classname="t" name="a"><failure/></testcase>
        <testcase classname="t" name="a"/>
        <testcase classname="t" name="b"/>
        <testcase classname="t" name="b"><failure/></testcase>
    </testsuite>"#;
    let (summary, _, _) =
        flakeguard_junit::summarize(JunitReader::new(doc.as_bytes(), Limits::default()).unwrap())
            .unwrap();
    assert_eq!((summary.testcases, summary.tests, summary.flaky), (4, 2, 1));
    assert_eq!((summary.passed, summary.failed), (2, 2));
}

#[test]
fn nested_suites_build_a_suite_path() {
    let doc = r#"<testsuites><testsuite name="outer"><testsuite name="inner"><testcase name="t"/></testsuite></testsuite></testsuites>"#;
    let (cases, _) = read_all(doc.as_bytes()).unwrap();
    assert_eq!(
        cases[0].suite.path,
        vec!["outer".to_owned(), "inner".to_owned()]
    );
    assert_eq!(cases[0].key.scope, "inner");
}

#[test]
fn quirks_become_issues_not_failures() {
    let doc = r#"<testsuite name="s" tests="5" file="spec/a_spec.rb">
        <testcase name="t" time="-1"/>
        <testcase classname="c" name="u" time="&lt;&lt;computed&gt;&gt;"/>
    </testsuite>"#;
    let (cases, issues) = read_all(doc.as_bytes()).unwrap();
    assert_eq!(cases.len(), 2);
    assert_eq!(cases[0].file.as_deref(), Some("spec/a_spec.rb"));
    for kind in [
        "missing-classname",
        "negative-time",
        "bad-time",
        "suite-file",
        "count-tests",
    ] {
        assert!(
            issues.has(kind),
            "expected issue {kind}: {:?}",
            issues.lines()
        );
    }
}

#[test]
fn text_over_the_cap_is_cut_and_marked() {
    let long = "x".repeat(1000);
    let doc = format!(
        "<testsuite><testcase name=\"t\"><failure>{long}é</failure><system-out>{long}</system-out></testcase></testsuite>"
    );
    let limits = Limits {
        text_cap: 100,
        output_cap: 10,
        ..Limits::default()
    };
    let (cases, _) = read_all_with(doc.as_bytes(), limits).unwrap();
    let failure = &cases[0].failures[0];
    assert_eq!(
        (failure.text.text.len(), failure.text.truncated),
        (100, true)
    );
    let out = cases[0].system_out.as_ref().unwrap();
    assert_eq!((out.text.len(), out.truncated), (10, true));
}

#[test]
fn limits_refuse_runaway_documents() {
    let deep = format!(
        "<testsuites>{}{}</testsuites>",
        "<testsuite>".repeat(100),
        "</testsuite>".repeat(100)
    );
    let err = read_all(deep.as_bytes()).unwrap_err();
    assert!(
        matches!(err.kind, ErrorKind::Limit(ref m) if m.contains("nested deeper than 64")),
        "{err}"
    );

    let many = format!(
        "<testsuite>{}</testsuite>",
        "<testcase name=\"t\"/>".repeat(50)
    );
    let err = read_all_with(
        many.as_bytes(),
        Limits {
            max_elements: 10,
            ..Limits::default()
        },
    )
    .unwrap_err();
    assert!(
        matches!(err.kind, ErrorKind::Limit(ref m) if m.contains("more than 10 elements")),
        "{err}"
    );

    let err = read_all_with(
        many.as_bytes(),
        Limits {
            max_bytes: 200,
            ..Limits::default()
        },
    )
    .unwrap_err();
    assert!(
        matches!(err.kind, ErrorKind::Limit(ref m) if m.contains("larger than 200 bytes")),
        "{err}"
    );

    let attr = format!(
        "<testsuite><testcase name=\"{}\"/></testsuite>",
        "n".repeat(5000)
    );
    let err = read_all_with(
        attr.as_bytes(),
        Limits {
            max_attribute_len: 1000,
            ..Limits::default()
        },
    )
    .unwrap_err();
    assert!(
        matches!(err.kind, ErrorKind::Limit(ref m) if m.contains("attribute name")),
        "{err}"
    );

    let text = format!(
        "<testsuite><testcase name=\"t\"><system-out>{}</system-out></testcase></testsuite>",
        "o".repeat(500_000)
    );
    let err = read_all_with(
        text.as_bytes(),
        Limits {
            max_token_len: 100_000,
            ..Limits::default()
        },
    )
    .unwrap_err();
    assert!(
        matches!(err.kind, ErrorKind::Limit(ref m) if m.contains("single tag or text run")),
        "{err}"
    );
}

#[test]
fn empty_and_non_xml_inputs_are_refused_clearly() {
    assert_eq!(read_all(b"").unwrap_err().kind, ErrorKind::Empty);
    assert_eq!(read_all(b"   \n ").unwrap_err().kind, ErrorKind::Empty);
    assert!(matches!(
        read_all(b"hello world").unwrap_err().kind,
        ErrorKind::NotXml(_)
    ));
    assert!(matches!(
        read_all(b"{\"stats\":{\"passes\":1}}").unwrap_err().kind,
        ErrorKind::OtherFormat(_)
    ));
    assert!(matches!(
        read_all(b"<suites/>").unwrap_err().kind,
        ErrorKind::UnexpectedRoot(_)
    ));
    assert!(matches!(
        read_all(b"<testsuite></testsuite><testsuite/>")
            .unwrap_err()
            .kind,
        ErrorKind::Syntax(_)
    ));
    assert!(matches!(
        read_all(b"<testsuite><testcase name=\"a<b\"/></testsuite>")
            .unwrap_err()
            .kind,
        ErrorKind::LessThanInAttribute(_)
    ));
}

#[test]
fn invalid_utf8_is_refused_not_replaced() {
    let doc = b"<testsuite><testcase name=\"\xFF\xFE\"/></testsuite>";
    assert!(read_all(doc).is_err());
}
