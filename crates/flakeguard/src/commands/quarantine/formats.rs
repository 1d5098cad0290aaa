//! Skip and deselect expressions for test runners, built from quarantined tests' identities.
//! Each runner's own documented mechanism, with its own escaping:
//!
//! | format | mechanism | one test |
//! |---|---|---|
//! | pytest | `--deselect` (a node id prefix), one argument per line for `pytest @FILE` | `--deselect=tests/test_x.py::TestX::test_y[1-2]` |
//! | jest | `--testNamePattern` regex (JavaScript, matched against the full name) | `^(?!(?:cart totals include tax)$)` |
//! | nextest | `-E` filterset with equality matchers | `not ((binary_id(=shop::cart) & test(=totals::tax)))` |
//! | go | `go test -skip` regex, one alternative per test, `/`-separated per subtest level | `^TestCart$/^with_tax$` |
//! | junit5 | Maven Surefire/Failsafe `-Dtest` exclusions | `!com.acme.CartTest#checkout` |

use std::collections::HashSet;

use crate::quarantine_list::Entry;

/// What a format produced: the text to print, and the tests it could not express.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Rendered {
    pub(crate) text: String,
    pub(crate) skipped: Vec<String>,
}

/// The name as the report wrote it: the parameters split off by test identity put back.
fn raw_name(e: &Entry) -> String {
    match &e.variant {
        Some(v) => format!("{}[{v}]", e.name),
        None => e.name.clone(),
    }
}

fn label(e: &Entry) -> String {
    e.key.clone().unwrap_or_else(|| e.test_key().to_string())
}

/// Keeps the first of each distinct value, in order.
fn unique(values: impl IntoIterator<Item = String>) -> Vec<String> {
    let mut seen = HashSet::new();
    values
        .into_iter()
        .filter(|v| seen.insert(v.clone()))
        .collect()
}

// ---- pytest ---------------------------------------------------------------------------------

/// `--deselect=<node id>` lines. The node id is `path::Class::name[params]`: the path is the
/// test's file when the report names one (pytest's xunit1 family), otherwise the module in the
/// classname (`tests.test_cart.TestCart` → `tests/test_cart.py` and class `TestCart`, the class
/// being the first part that starts with a capital letter, as pytest's `Test*` classes do).
/// `--deselect` selects by node id prefix, so a test without parameters also deselects its
/// parameterized cases.
pub(crate) fn pytest(entries: &[&Entry]) -> Rendered {
    let mut out = Rendered::default();
    let mut ids = Vec::new();
    for e in entries {
        match pytest_node_id(e) {
            Some(id) if !id.contains(['\n', '\r']) => ids.push(id),
            _ => out.skipped.push(label(e)),
        }
    }
    for id in unique(ids) {
        out.text.push_str("--deselect=");
        out.text.push_str(&id);
        out.text.push('\n');
    }
    out
}

fn pytest_node_id(e: &Entry) -> Option<String> {
    let file = e
        .file
        .as_deref()
        .map(|f| f.trim().replace('\\', "/"))
        .map(|f| f.strip_prefix("./").map(str::to_owned).unwrap_or(f))
        .filter(|f| f.ends_with(".py"))
        .or_else(|| Some(e.scope.clone()).filter(|s| s.ends_with(".py")));
    let (path, classes): (String, Vec<&str>) = match file {
        Some(path) => {
            let module = path.trim_end_matches(".py").replace('/', ".");
            let classes = if e.classname.is_empty() || e.classname == module {
                Vec::new()
            } else if let Some(rest) = e.classname.strip_prefix(&format!("{module}.")) {
                rest.split('.').collect()
            } else {
                split_python_classname(&e.classname).1
            };
            (path, classes)
        }
        None => {
            let (module, classes) = split_python_classname(&e.classname);
            if module.is_empty() || module.iter().any(|m| m.is_empty()) {
                return None;
            }
            (format!("{}.py", module.join("/")), classes)
        }
    };
    let mut id = path;
    for class in classes {
        id.push_str("::");
        id.push_str(class);
    }
    id.push_str("::");
    id.push_str(&raw_name(e));
    Some(id)
}

/// `tests.test_cart.TestCart.TestNested` → (`[tests, test_cart]`, `[TestCart, TestNested]`).
fn split_python_classname(classname: &str) -> (Vec<&str>, Vec<&str>) {
    if classname.is_empty() {
        return (Vec::new(), Vec::new());
    }
    let parts: Vec<&str> = classname.split('.').collect();
    let first_class = parts
        .iter()
        .position(|p| p.starts_with(|c: char| c.is_ascii_uppercase()))
        .unwrap_or(parts.len());
    (parts[..first_class].to_vec(), parts[first_class..].to_vec())
}

// ---- jest -----------------------------------------------------------------------------------

/// A `--testNamePattern` that matches every test except the quarantined ones:
/// `^(?!(?:name one|name two)$)`. Jest matches it (case-insensitively) against a test's full
/// name — its `describe` blocks and title joined by spaces — which is what jest-junit writes as
/// the name by default; when a report's classname is not already the start of the name, the
/// classname is put before it. Regular-expression characters are escaped.
pub(crate) fn jest(entries: &[&Entry]) -> Rendered {
    let names = unique(entries.iter().map(|e| {
        let name = raw_name(e);
        if e.classname.is_empty() || name.starts_with(&e.classname) {
            name
        } else {
            format!("{} {name}", e.classname)
        }
    }));
    if names.is_empty() {
        return Rendered {
            text: "^\n".to_owned(),
            skipped: Vec::new(),
        };
    }
    let alternatives: Vec<String> = names.iter().map(|n| js_regex_escape(n)).collect();
    Rendered {
        text: format!("^(?!(?:{})$)\n", alternatives.join("|")),
        skipped: Vec::new(),
    }
}

/// Escapes JavaScript's syntax characters (and `/`, for patterns written as literals).
fn js_regex_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\\' | '^' | '$' | '.' | '*' | '+' | '?' | '(' | ')' | '[' | ']' | '{' | '}' | '|'
            | '/' => {
                out.push('\\');
                out.push(c);
            }
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            other => out.push(other),
        }
    }
    out
}

// ---- nextest --------------------------------------------------------------------------------

/// A filterset for `cargo nextest run -E` that excludes each test by binary id and name, both
/// with equality matchers: `not ((binary_id(=crate::bin) & test(=mod::name)) | …)`. nextest's
/// JUnit reports name the binary id as the suite, which is the test's scope. `all()` when
/// nothing is quarantined.
pub(crate) fn nextest(entries: &[&Entry]) -> Rendered {
    let terms = unique(entries.iter().map(|e| {
        let test = format!("test(={})", nextest_escape(&raw_name(e)));
        if e.scope.is_empty() {
            test
        } else {
            format!("(binary_id(={}) & {test})", nextest_escape(&e.scope))
        }
    }));
    let text = if terms.is_empty() {
        "all()".to_owned()
    } else {
        format!("not ({})", terms.join(" | "))
    };
    Rendered {
        text: text + "\n",
        skipped: Vec::new(),
    }
}

/// nextest's escape sequences for equality matchers: `\\`, `\)`, `\,`, `\/`, `\n`, `\r`, `\t`.
fn nextest_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\\' | ')' | ',' | '/' => {
                out.push('\\');
                out.push(c);
            }
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            other => out.push(other),
        }
    }
    out
}

// ---- go -------------------------------------------------------------------------------------

/// A regular expression for `go test -skip`: one alternative per test (`|` at the top level),
/// each a `/`-separated list of anchored, escaped elements, one per subtest level, as `go test`
/// splits `-run` and `-skip` patterns: `^TestA$|^TestB$/^with_tax$`. A subtest's alternative
/// skips only that subtest. Go names tests without their package, so a quarantined `TestA` is
/// skipped in every package that has one. Empty when nothing is quarantined.
pub(crate) fn go(entries: &[&Entry]) -> Rendered {
    let alternatives = unique(entries.iter().map(|e| {
        raw_name(e)
            .split('/')
            .map(|level| format!("^{}$", go_quote_meta(level)))
            .collect::<Vec<_>>()
            .join("/")
    }));
    Rendered {
        text: alternatives.join("|") + "\n",
        skipped: Vec::new(),
    }
}

/// Go's `regexp.QuoteMeta`: escapes `\.+*?()|[]{}^$`.
fn go_quote_meta(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(
            c,
            '\\' | '.' | '+' | '*' | '?' | '(' | ')' | '|' | '[' | ']' | '{' | '}' | '^' | '$'
        ) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

// ---- junit5 (Maven Surefire / Failsafe) ------------------------------------------------------

/// Surefire's `-Dtest` exclusions, comma-separated: `!com.acme.CartTest#checkout`. The class is
/// the report's classname (fully qualified; Surefire turns dots into directories), the method
/// the test's name without a parameter list (`checkout(int)[1]` → `checkout`, so every case of
/// a parameterized method is excluded). Tests whose class or method is not a Java name — a
/// display name such as `adds two numbers` — cannot be selected this way and are reported.
pub(crate) fn junit5(entries: &[&Entry]) -> Rendered {
    let mut out = Rendered::default();
    let mut patterns = Vec::new();
    for e in entries {
        let method = e.name.split('(').next().unwrap_or_default().trim();
        let class_ok = !e.classname.is_empty() && e.classname.split('.').all(is_java_identifier);
        if class_ok && is_java_identifier(method) {
            patterns.push(format!("!{}#{method}", e.classname));
        } else {
            out.skipped.push(label(e));
        }
    }
    out.text = unique(patterns).join(",") + "\n";
    out
}

/// A Java identifier (letters, digits, `_`, `$`; not starting with a digit). Nested classes
/// (`Outer$Inner`) are identifiers too.
fn is_java_identifier(s: &str) -> bool {
    let mut chars = s.chars();
    chars
        .next()
        .is_some_and(|c| c.is_alphabetic() || c == '_' || c == '$')
        && chars.all(|c| c.is_alphanumeric() || c == '_' || c == '$')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(scope: &str, classname: &str, name: &str, variant: Option<&str>) -> Entry {
        Entry {
            id: None,
            test_id: None,
            key: None,
            scope: scope.to_owned(),
            classname: classname.to_owned(),
            name: name.to_owned(),
            variant: variant.map(str::to_owned),
            file: None,
            state: "active".to_owned(),
            owner: None,
            reason: String::new(),
            created_by: None,
            created_at: None,
            expires_at: None,
        }
    }

    /// An entry built from a report's raw parts, exactly as ingestion keys it.
    fn reported(file: Option<&str>, suite: &str, classname: &str, name: &str) -> Entry {
        let key = flakeguard_core::TestKey::from_parts(file, suite, Some(classname), name);
        let mut e = entry(
            &key.scope,
            &key.classname,
            &key.name,
            key.variant.as_deref(),
        );
        e.file = file.map(str::to_owned);
        e
    }

    fn render(f: fn(&[&Entry]) -> Rendered, entries: &[Entry]) -> Rendered {
        let refs: Vec<&Entry> = entries.iter().collect();
        f(&refs)
    }

    #[test]
    fn pytest_node_ids_from_files_or_classnames() {
        let entries = [
            reported(
                Some("./tests/test_cart.py"),
                "pytest",
                "tests.test_cart.TestCart",
                "test_total[1-2]",
            ),
            reported(
                None,
                "pytest",
                "tests.api.test_users.TestUsers.TestNested",
                "test_create",
            ),
            reported(None, "pytest", "tests.test_math", "test_add[a::b - \"q\"]"),
            reported(
                Some("tests/test_io.py"),
                "pytest",
                "tests.test_io",
                "test_read",
            ),
            // Not a Python test: nothing to derive a path from.
            reported(None, "jest tests", "", "adds numbers"),
            // Duplicates are printed once.
            reported(None, "pytest", "tests.test_math", "test_add[a::b - \"q\"]"),
        ];
        let r = render(pytest, &entries);
        assert_eq!(
            r.text,
            "--deselect=tests/test_cart.py::TestCart::test_total[1-2]\n\
             --deselect=tests/api/test_users.py::TestUsers::TestNested::test_create\n\
             --deselect=tests/test_math.py::test_add[a::b - \"q\"]\n\
             --deselect=tests/test_io.py::test_read\n"
        );
        assert_eq!(r.skipped, vec!["jest tests › adds numbers"]);
    }

    #[test]
    fn jest_excludes_full_names_with_regex_characters_escaped() {
        let entries = [
            reported(
                None,
                "jest tests",
                "cart totals (with tax) include $5.00?",
                "cart totals (with tax) include $5.00?",
            ),
            reported(None, "jest tests", "a/b", "works [x] | {y} ^z \\ *"),
            reported(None, "jest tests", "", "plain"),
        ];
        let r = render(jest, &entries);
        assert_eq!(
            r.text,
            "^(?!(?:cart totals \\(with tax\\) include \\$5\\.00\\?|a\\/b works \\[x\\] \\| \\{y\\} \\^z \\\\ \\*|plain)$)\n"
        );
        assert!(r.skipped.is_empty());
        assert_eq!(render(jest, &[]).text, "^\n", "matches every test");
    }

    #[test]
    fn nextest_uses_equality_matchers_with_escapes() {
        let entries = [
            reported(
                None,
                "fixture-project::basic",
                "fixture-project::basic",
                "test_flaky_mod_4",
            ),
            reported(
                None,
                "my-crate",
                "my-crate",
                "tests::odd)name,with\\chars/x",
            ),
            entry("", "", "bare", None),
        ];
        let r = render(nextest, &entries);
        assert_eq!(
            r.text,
            "not ((binary_id(=fixture-project::basic) & test(=test_flaky_mod_4)) | \
             (binary_id(=my-crate) & test(=tests::odd\\)name\\,with\\\\chars\\/x)) | test(=bare))\n"
        );
        assert_eq!(render(nextest, &[]).text, "all()\n");
    }

    #[test]
    fn go_anchors_each_subtest_level_and_quotes_meta_characters() {
        let entries = [
            reported(
                None,
                "github.com/acme/shop",
                "github.com/acme/shop",
                "TestCart",
            ),
            reported(
                None,
                "github.com/acme/shop",
                "github.com/acme/shop",
                "TestParse/case_(a|b)_1.5$",
            ),
            reported(
                None,
                "github.com/acme/shop/api",
                "github.com/acme/shop/api",
                "TestTable/[x]{2}/^deep+",
            ),
        ];
        let r = render(go, &entries);
        assert_eq!(
            r.text,
            "^TestCart$|^TestParse$/^case_\\(a\\|b\\)_1\\.5\\$$|^TestTable$/^\\[x\\]\\{2\\}$/^\\^deep\\+$\n"
        );
        assert_eq!(render(go, &[]).text, "\n", "-skip '' skips nothing");
    }

    #[test]
    fn junit5_excludes_class_and_method_and_reports_display_names() {
        let entries = [
            reported(None, "com.acme.CartTest", "com.acme.CartTest", "checkout"),
            reported(None, "com.acme.CartTest", "com.acme.CartTest", "checkout()"),
            reported(
                None,
                "com.acme.ParamTest",
                "com.acme.ParamTest",
                "adds(int, int)[2]",
            ),
            reported(
                None,
                "com.acme.Outer$Inner",
                "com.acme.Outer$Inner",
                "works",
            ),
            reported(
                None,
                "com.acme.DisplayTest",
                "com.acme.DisplayTest",
                "adds two numbers",
            ),
            reported(None, "jest tests", "", "plain"),
        ];
        let r = render(junit5, &entries);
        assert_eq!(
            r.text,
            "!com.acme.CartTest#checkout,!com.acme.ParamTest#adds,!com.acme.Outer$Inner#works\n"
        );
        assert_eq!(
            r.skipped,
            vec![
                "com.acme.DisplayTest › adds two numbers",
                "jest tests › plain"
            ]
        );
        assert_eq!(render(junit5, &[]).text, "\n");
    }
}
