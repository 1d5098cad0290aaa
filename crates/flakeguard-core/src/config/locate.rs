//! Where each key of a YAML document is, as `line:column`, found by reading the text.
//!
//! The YAML parser gives positions only with its errors, so the positions of keys that parse
//! fine but hold bad values are recovered here from the source: block mappings (`key: value`,
//! one per line, nested by indentation) and block sequences (`- item`), which is how
//! configuration files are written. Keys inside flow collections (`{a: 1}`, `[x, y]`) are not
//! located; a problem there is reported at the nearest enclosing key that is.

use std::collections::HashMap;

/// A 1-based line and column.
pub(crate) type Position = (usize, usize);

/// Key paths (`team_overrides.payments.flaky_threshold`, `exempted_tests[2]`) and where their
/// key (or sequence item) starts.
#[derive(Debug, Default)]
pub(crate) struct Locations {
    positions: HashMap<String, Position>,
}

impl Locations {
    /// The position of `path`, or of its nearest located ancestor.
    pub(crate) fn find(&self, path: &str) -> Option<Position> {
        let mut path = path;
        loop {
            if let Some(p) = self.positions.get(path) {
                return Some(*p);
            }
            path = parent(path)?;
        }
    }

    pub(crate) fn scan(text: &str) -> Locations {
        let mut positions = HashMap::new();
        // Open containers, innermost last: the column where their children start (for keys)
        // or where their `-` is (for items), their path, and the next item index.
        let mut stack: Vec<Frame> = Vec::new();
        for (index, raw) in text.lines().enumerate() {
            let line = index + 1;
            let body = raw.trim_start_matches(' ');
            let mut column = raw.len() - body.len();
            if body.is_empty()
                || body.starts_with('#')
                || body.starts_with('\t')
                || body.starts_with("---")
                || body.starts_with("...")
                || body.starts_with('%')
            {
                continue;
            }
            let mut rest = body;
            // A sequence item: `- value` or `- key: value`.
            if let Some(after) = item_body(rest) {
                while stack
                    .last()
                    .is_some_and(|f| f.column > column || (f.column == column && f.item))
                {
                    stack.pop();
                }
                let Some(parent) = stack.last_mut() else {
                    continue;
                };
                let path = format!("{}[{}]", parent.path, parent.next_item);
                parent.next_item += 1;
                positions.entry(path.clone()).or_insert((line, column + 1));
                let skipped = rest.len() - after.len();
                column += skipped;
                rest = after;
                stack.push(Frame {
                    column,
                    path,
                    next_item: 0,
                    item: true,
                });
            }
            let Some(key) = mapping_key(rest) else {
                continue;
            };
            while stack
                .last()
                .is_some_and(|f| f.column > column || (f.column == column && !f.item))
            {
                stack.pop();
            }
            let path = match stack.last() {
                Some(parent) => format!("{}.{key}", parent.path),
                None => key,
            };
            positions.entry(path.clone()).or_insert((line, column + 1));
            stack.push(Frame {
                column,
                path,
                next_item: 0,
                item: false,
            });
        }
        Locations { positions }
    }
}

#[derive(Debug)]
struct Frame {
    column: usize,
    path: String,
    next_item: usize,
    item: bool,
}

/// `a.b[2]` → `a.b`, `a.b` → `a`, `a` → none.
fn parent(path: &str) -> Option<&str> {
    if let Some(stripped) = path.strip_suffix(']')
        && let Some(open) = stripped.rfind('[')
    {
        return Some(&path[..open]);
    }
    path.rfind('.').map(|dot| &path[..dot])
}

/// After `- `, the item's text (possibly empty); `None` when the line is not an item.
fn item_body(text: &str) -> Option<&str> {
    let after = text.strip_prefix('-')?;
    if after.is_empty() {
        return Some(after);
    }
    if after.starts_with(' ') {
        return Some(after.trim_start_matches(' '));
    }
    None
}

/// The key of a `key: value` line (unquoted), if the line starts with one.
fn mapping_key(text: &str) -> Option<String> {
    let (key, after) = if let Some(quoted) = text.strip_prefix('"') {
        let mut key = String::new();
        let mut chars = quoted.char_indices();
        let mut end = None;
        while let Some((i, c)) = chars.next() {
            match c {
                '\\' => {
                    if let Some((_, escaped)) = chars.next() {
                        key.push(escaped);
                    }
                }
                '"' => {
                    end = Some(i + 1);
                    break;
                }
                other => key.push(other),
            }
        }
        (key, &quoted[end?..])
    } else if let Some(quoted) = text.strip_prefix('\'') {
        let mut key = String::new();
        let mut rest = quoted;
        loop {
            let close = rest.find('\'')?;
            key.push_str(&rest[..close]);
            rest = &rest[close + 1..];
            match rest.strip_prefix('\'') {
                Some(more) => {
                    key.push('\'');
                    rest = more;
                }
                None => break,
            }
        }
        (key, rest)
    } else {
        if text.starts_with(['[', '{', '&', '*', '!', '|', '>', '?']) {
            return None;
        }
        // A plain key ends at the first `: ` (or a `:` ending the line).
        let bytes = text.as_bytes();
        let colon = (0..bytes.len()).find(|&i| {
            bytes[i] == b':' && (i + 1 == bytes.len() || matches!(bytes[i + 1], b' ' | b'\t'))
        })?;
        let key = text[..colon].trim_end();
        if key.contains(" #") {
            return None;
        }
        (key.to_owned(), &text[colon..])
    };
    let after = after.trim_start_matches([' ', '\t']);
    if after.starts_with(':') && (after.len() == 1 || after[1..].starts_with([' ', '\t'])) {
        Some(key)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nested_keys_and_items_are_found() {
        let text = "\
# comment
flaky_threshold: 0.8
exempted_tests:
  - 'a*'
  - b
team_overrides:
  \"@acme/payments\":
    paths:
    - services/payments/**
    flaky_threshold: 2
  'it''s':
    warn_threshold: 1
artifact_patterns: [x, y]
";
        let l = Locations::scan(text);
        assert_eq!(l.find("flaky_threshold"), Some((2, 1)));
        assert_eq!(l.find("exempted_tests[0]"), Some((4, 3)));
        assert_eq!(l.find("exempted_tests[1]"), Some((5, 3)));
        assert_eq!(l.find("team_overrides.@acme/payments"), Some((7, 3)));
        assert_eq!(
            l.find("team_overrides.@acme/payments.paths[0]"),
            Some((9, 5))
        );
        assert_eq!(
            l.find("team_overrides.@acme/payments.flaky_threshold"),
            Some((10, 5))
        );
        assert_eq!(l.find("team_overrides.it's.warn_threshold"), Some((12, 5)));
        // Flow items fall back to their key.
        assert_eq!(l.find("artifact_patterns[1]"), Some((13, 1)));
        assert_eq!(l.find("nowhere"), None);
    }

    #[test]
    fn mappings_inside_sequence_items_are_followed() {
        let text = "list:\n  - name: a\n    value: 1\n  - name: b\nnext: 1\n";
        let l = Locations::scan(text);
        assert_eq!(l.find("list[0].name"), Some((2, 5)));
        assert_eq!(l.find("list[0].value"), Some((3, 5)));
        assert_eq!(l.find("list[1].name"), Some((4, 5)));
        assert_eq!(l.find("next"), Some((5, 1)));
    }

    #[test]
    fn values_with_colons_are_not_keys() {
        assert_eq!(mapping_key("url: http://x:80"), Some("url".to_owned()));
        assert_eq!(mapping_key("http://x:80"), None);
        assert_eq!(mapping_key("a b: c"), Some("a b".to_owned()));
        assert_eq!(mapping_key("[a]: b"), None);
        assert_eq!(mapping_key("\"a:b\": c"), Some("a:b".to_owned()));
        assert_eq!(mapping_key("key:"), Some("key".to_owned()));
    }
}
