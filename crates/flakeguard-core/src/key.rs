//! Stable test identity.
//!
//! A test is the same test across runs, shards, machines and report producers when its
//! [`TestKey`] is equal. The key is built from the test's *scope* (its file when the producer
//! names one, otherwise its suite), its classname and its name, each normalized so that
//! cosmetic differences between runs do not split one test's history in two:
//!
//! - whitespace is trimmed and every run of whitespace becomes one space;
//! - shard and iteration suffixes are removed: ` (3/8)`, `[shard 2]`, `[shard 2/8]`,
//!   ` (shard 3 of 8)`, `@stress-4`;
//! - a trailing parameter list such as `[param-1]` (pytest, JUnit 4/5) or a browser project is
//!   kept apart as the [`TestKey::variant`], so `test_add[1-2]` and `test_add[3-4]` share a name
//!   but stay two tests.
//!
//! See `docs/test-identity.md` for the full rules and examples.

use std::fmt;

use serde::{Deserialize, Serialize};

/// The identity of one test, stable across runs.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct TestKey {
    /// The file that holds the test when known, otherwise the (innermost) suite name.
    pub scope: String,
    /// The class or module; empty when the producer wrote none.
    pub classname: String,
    /// The test's name without its parameters.
    pub name: String,
    /// Parameters or project (`[chromium]`, `[1-2]`), when the name carried them.
    pub variant: Option<String>,
}

impl TestKey {
    /// Builds a normalized key from the raw parts of a report.
    ///
    /// `file` wins over `suite` as the scope because file paths survive suite renames and
    /// sharding; the suite is the fallback for producers that write no file.
    pub fn from_parts(
        file: Option<&str>,
        suite: &str,
        classname: Option<&str>,
        name: &str,
    ) -> Self {
        let scope = match file.map(str::trim).filter(|f| !f.is_empty()) {
            Some(file) => normalize_path(file),
            None => strip_shard(&collapse_whitespace(suite)),
        };
        let classname = classname
            .map(|c| strip_shard(&collapse_whitespace(c)))
            .unwrap_or_default();
        let name = strip_shard(&collapse_whitespace(name));
        let (name, variant) = split_variant(&name);
        TestKey {
            scope,
            classname,
            name,
            variant,
        }
    }

    /// Returns the key with `variant` set (replacing any parsed from the name).
    #[must_use]
    pub fn with_variant(mut self, variant: Option<String>) -> Self {
        if let Some(v) = variant {
            let v = collapse_whitespace(&v);
            self.variant = Some(match self.variant.take() {
                Some(existing) => format!("{v}, {existing}"),
                None => v,
            });
        }
        self
    }

    /// A stable 64-bit id of the key (FNV-1a over its parts), the same on every platform and
    /// version, so stores can index tests by it.
    pub fn stable_id(&self) -> u64 {
        let mut bytes =
            Vec::with_capacity(self.scope.len() + self.classname.len() + self.name.len() + 8);
        for part in [&self.scope, &self.classname, &self.name] {
            bytes.extend_from_slice(part.as_bytes());
            bytes.push(0);
        }
        if let Some(variant) = &self.variant {
            bytes.push(1);
            bytes.extend_from_slice(variant.as_bytes());
        }
        crate::signature::fnv1a(&bytes)
    }

    /// A single-line, human-readable and unique rendering: `scope › classname › name[variant]`,
    /// omitting an empty classname or a classname equal to the scope.
    pub fn display_name(&self) -> String {
        self.to_string()
    }
}

impl fmt::Display for TestKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if !self.scope.is_empty() {
            write!(f, "{}", self.scope)?;
        }
        if !self.classname.is_empty() && self.classname != self.scope {
            if !self.scope.is_empty() {
                f.write_str(" › ")?;
            }
            write!(f, "{}", self.classname)?;
        }
        if !self.scope.is_empty() || (!self.classname.is_empty() && self.classname != self.scope) {
            f.write_str(" › ")?;
        }
        write!(f, "{}", self.name)?;
        if let Some(variant) = &self.variant {
            write!(f, "[{variant}]")?;
        }
        Ok(())
    }
}

/// Trims and collapses every run of whitespace (including newlines and tabs) to one space.
pub fn collapse_whitespace(s: &str) -> String {
    let b = s.as_bytes();
    let clean = !b.is_empty()
        && b[0] != b' '
        && b[b.len() - 1] != b' '
        && b.iter()
            .all(|&c| c.is_ascii() && !matches!(c, b'\t' | b'\n' | b'\r' | 0x0b | 0x0c))
        && !s.contains("  ");
    if clean {
        return s.to_owned();
    }
    let mut out = String::with_capacity(s.len());
    for word in s.split_whitespace() {
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(word);
    }
    out
}

fn normalize_path(path: &str) -> String {
    let path = collapse_whitespace(&path.replace('\\', "/"));
    path.strip_prefix("./").map(str::to_owned).unwrap_or(path)
}

/// Removes one trailing shard or iteration marker.
fn strip_shard(s: &str) -> String {
    let trimmed = s.trim_end();
    // ` (3/8)`, ` (shard 3/8)`, ` (shard 3 of 8)`
    if let Some(inner) = trailing_group(trimmed, '(', ')')
        && is_shard_marker(inner)
    {
        return trimmed[..trimmed.len() - inner.len() - 2]
            .trim_end()
            .to_owned();
    }
    // `[shard 2]`, `[shard 2/8]`
    if let Some(inner) = trailing_group(trimmed, '[', ']')
        && inner.to_ascii_lowercase().starts_with("shard")
        && is_shard_marker(inner)
    {
        return trimmed[..trimmed.len() - inner.len() - 2]
            .trim_end()
            .to_owned();
    }
    // nextest stress iterations: `suite@stress-4`
    if trimmed.contains('@')
        && let Some(at) = trimmed.rfind("@stress-")
        && trimmed[at + 8..].chars().all(|c| c.is_ascii_digit())
        && at + 8 < trimmed.len()
    {
        return trimmed[..at].to_owned();
    }
    trimmed.to_owned()
}

/// The text between a trailing `open … close` group, if the string ends with one.
fn trailing_group(s: &str, open: char, close: char) -> Option<&str> {
    let body = s.strip_suffix(close)?;
    let start = body.rfind(open)?;
    Some(&body[start + open.len_utf8()..])
}

/// `3/8`, `shard 3`, `shard 3/8`, `shard 3 of 8`.
fn is_shard_marker(inner: &str) -> bool {
    let lower = inner.trim().to_ascii_lowercase();
    let (had_word, rest) = match lower.strip_prefix("shard") {
        Some(rest) => (true, rest.trim_start_matches([' ', '-', '_', '#'])),
        None => (false, lower.as_str()),
    };
    let parts: Vec<&str> = if let Some((a, b)) = rest.split_once('/') {
        vec![a.trim(), b.trim()]
    } else if let Some((a, b)) = rest.split_once(" of ") {
        vec![a.trim(), b.trim()]
    } else if had_word {
        vec![rest.trim()]
    } else {
        return false;
    };
    parts
        .iter()
        .all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_digit()))
}

/// Splits a trailing `[parameters]` off a test name.
fn split_variant(name: &str) -> (String, Option<String>) {
    if let Some(inner) = trailing_group(name, '[', ']') {
        let base = &name[..name.len() - inner.len() - 2];
        if !base.trim().is_empty() && !inner.trim().is_empty() {
            return (base.trim_end().to_owned(), Some(inner.trim().to_owned()));
        }
    }
    (name.to_owned(), None)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(file: Option<&str>, suite: &str, class: Option<&str>, name: &str) -> TestKey {
        TestKey::from_parts(file, suite, class, name)
    }

    #[test]
    fn whitespace_is_collapsed_and_trimmed() {
        let k = key(None, "  my   suite\n", Some("a.B"), "  does\tthings  ");
        assert_eq!(k.scope, "my suite");
        assert_eq!(k.name, "does things");
    }

    #[test]
    fn shard_suffixes_do_not_split_identity() {
        let plain = key(None, "integration", Some("c"), "t");
        for suite in [
            "integration (3/8)",
            "integration [shard 2]",
            "integration [shard 2/8]",
            "integration (shard 3 of 8)",
        ] {
            assert_eq!(key(None, suite, Some("c"), "t"), plain, "{suite}");
        }
        assert_eq!(
            key(None, "s", Some("c"), "t (1/4)"),
            key(None, "s", Some("c"), "t")
        );
    }

    #[test]
    fn parenthesised_text_that_is_not_a_shard_is_kept() {
        assert_eq!(key(None, "s", None, "adds (slowly)").name, "adds (slowly)");
        assert_eq!(key(None, "s", None, "ratio (1/x)").name, "ratio (1/x)");
    }

    #[test]
    fn parameters_become_the_variant() {
        let k = key(None, "pytest", Some("tests.test_math"), "test_add[1-2]");
        assert_eq!(k.name, "test_add");
        assert_eq!(k.variant.as_deref(), Some("1-2"));
        assert_ne!(
            k,
            key(None, "pytest", Some("tests.test_math"), "test_add[3-4]")
        );
    }

    #[test]
    fn file_wins_over_suite_and_is_normalized() {
        let a = key(Some("./tests/test_x.py"), "suite-a", None, "t");
        let b = key(Some("tests\\test_x.py"), "suite-b", None, "t");
        assert_eq!(a, b);
        assert_eq!(a.scope, "tests/test_x.py");
    }

    #[test]
    fn stress_iterations_share_one_identity() {
        assert_eq!(
            key(None, "m::match@stress-0", Some("m"), "t"),
            key(None, "m::match@stress-11", Some("m"), "t")
        );
    }

    #[test]
    fn stable_id_separates_parts_and_variants() {
        let a = key(None, "ab", Some("c"), "t");
        let b = key(None, "a", Some("bc"), "t");
        assert_ne!(a.stable_id(), b.stable_id());
        assert_ne!(
            key(None, "s", None, "t[1]").stable_id(),
            key(None, "s", None, "t").stable_id()
        );
        // Pinned: stored ids must never change between versions.
        assert_eq!(
            key(None, "s", Some("c"), "t").stable_id(),
            0x7040_85a6_9704_8a01
        );
    }

    #[test]
    fn display_is_readable() {
        assert_eq!(
            key(None, "s", Some("c"), "t[1]").to_string(),
            "s › c › t[1]"
        );
        assert_eq!(key(None, "c", Some("c"), "t").to_string(), "c › t");
        assert_eq!(key(None, "", None, "t").to_string(), "t");
    }
}
