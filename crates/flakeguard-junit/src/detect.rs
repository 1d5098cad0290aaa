//! Recognising what a file is before (and while) reading it: which report format, and for
//! JUnit XML, which producer wrote it.

use std::fmt;

/// The report format a file holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    Junit,
    Trx,
    Nunit,
    Xunit,
    Unknown,
}

impl Format {
    pub fn as_str(self) -> &'static str {
        match self {
            Format::Junit => "junit",
            Format::Trx => "trx",
            Format::Nunit => "nunit",
            Format::Xunit => "xunit",
            Format::Unknown => "unknown",
        }
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Classifies a document by its root element when it is not JUnit: the format and a
/// human name for the error message. `None` means "not a format we know".
pub(crate) fn other_format_for_root(root: &str) -> Option<(Format, &'static str)> {
    Some(match root {
        "TestRun" => (Format::Trx, "a TRX (Visual Studio / MSTest) report"),
        "test-run" => (Format::Nunit, "an NUnit 3 report"),
        "test-results" => (Format::Nunit, "an NUnit 2 report"),
        "test-suite" => (Format::Nunit, "an NUnit report"),
        "assemblies" => (Format::Xunit, "an xUnit.net v2 report"),
        "assembly" => (Format::Xunit, "an xUnit.net v1 report"),
        "robot" => (Format::Unknown, "a Robot Framework output file"),
        "Site" => (Format::Unknown, "a CTest (CDash) native report"),
        "Result" => (Format::Unknown, "an Android CTS result"),
        "testng-results" => (Format::Unknown, "a TestNG native report"),
        "checkstyle" => (Format::Unknown, "a Checkstyle report"),
        _ => return None,
    })
}

/// Recognises JSON test reports from their first bytes; returns a human name.
pub(crate) fn json_report_kind(head: &str) -> Option<&'static str> {
    let trimmed = head.trim_start();
    if !(trimmed.starts_with('{') || trimmed.starts_with('[')) {
        return None;
    }
    Some(if trimmed.contains("\"protocolVersion\"") {
        "a Dart test JSON report"
    } else if trimmed.contains("\"Action\"") && trimmed.contains("\"Package\"") {
        "a `go test -json` stream"
    } else if trimmed.contains("\"examples\"") || trimmed.contains("\"summary_line\"") {
        "an RSpec JSON report"
    } else if trimmed.contains("\"stats\"")
        && (trimmed.contains("\"passes\"") || trimmed.contains("\"pending\""))
    {
        "a Mocha JSON report"
    } else if trimmed.contains("\"numTotalTests\"") || trimmed.contains("\"testResults\"") {
        "a Jest JSON report"
    } else {
        "a JSON document"
    })
}

/// Guesses the producer of a JUnit report from its first kilobytes. Purely descriptive:
/// parsing never depends on it, except that Playwright's `hostname` names a project.
pub(crate) fn junit_dialect(head: &str) -> &'static str {
    let has = |needle: &str| head.contains(needle);
    if has("name=\"nextest-run\"") {
        "nextest"
    } else if has("name=\"jest tests\"") || has("jest-junit") {
        "jest"
    } else if has("name=\"vitest tests\"") {
        "vitest"
    } else if has("<testsuites id=\"\" name=\"\"") {
        "playwright"
    } else if has("cypress") || has("Cypress") {
        "cypress"
    } else if has("name=\"Mocha Tests\"") {
        "mocha"
    } else if has("name=\"pytest\"") {
        "pytest"
    } else if has("surefire") {
        "surefire"
    } else if has("name=\"rspec") {
        "rspec"
    } else if has("name=\"AllTests\"") {
        "googletest"
    } else if has("go.version") {
        "go"
    } else if has("hostname=\"tbd\"") {
        "catch2"
    } else if has("name=\"phpunit") || (has("assertions=\"") && has(".php")) {
        "phpunit"
    } else if has("minitest") || has("Minitest") {
        "minitest"
    } else if has("<testsuite name=\"behave") || has("features.") && has("behave") {
        "behave"
    } else if has("gradle") || has("Gradle") {
        "gradle"
    } else if has("java.version") || has("java.vendor") {
        "java"
    } else if has("ctest") || has("CTest") {
        "ctest"
    } else {
        "generic"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognises_json_reports() {
        assert_eq!(
            json_report_kind("  {\"stats\": {\"passes\": 1}}"),
            Some("a Mocha JSON report")
        );
        assert_eq!(
            json_report_kind("{\"Time\":\"x\",\"Action\":\"run\",\"Package\":\"p\"}"),
            Some("a `go test -json` stream")
        );
        assert_eq!(json_report_kind("<testsuites/>"), None);
    }

    #[test]
    fn names_other_xml_formats() {
        assert_eq!(other_format_for_root("TestRun").unwrap().0, Format::Trx);
        assert_eq!(other_format_for_root("test-run").unwrap().0, Format::Nunit);
        assert_eq!(
            other_format_for_root("assemblies").unwrap().0,
            Format::Xunit
        );
        assert!(other_format_for_root("suites").is_none());
    }

    #[test]
    fn guesses_common_producers() {
        assert_eq!(
            junit_dialect("<testsuites name=\"nextest-run\" tests=\"3\">"),
            "nextest"
        );
        assert_eq!(
            junit_dialect("<testsuites id=\"\" name=\"\" tests=\"93\">"),
            "playwright"
        );
        assert_eq!(
            junit_dialect("<testsuite name=\"pytest\" errors=\"0\">"),
            "pytest"
        );
        assert_eq!(
            junit_dialect("<testsuites><testsuite name=\"x\">"),
            "generic"
        );
    }
}
