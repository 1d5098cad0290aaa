//! A repository's `CODEOWNERS` file: who owns a path.
//!
//! The rules are GitHub's: one rule per line, a pattern then its owners (`@user`,
//! `@org/team` or an email address); `#` starts a comment (at the start of a line, or as a
//! word of its own after the pattern), `\#` is a literal `#` and `\ ` a literal space in a
//! pattern; blank lines are ignored. Patterns follow `.gitignore`:
//!
//! - `*` matches any run of characters within one path segment, `?` one character;
//! - `**` as a whole segment matches any number of segments (`**/logs`, `docs/**`, `a/**/b`);
//! - a pattern with a `/` at its start or in its middle is anchored at the repository root,
//!   one without matches at any depth (`*.js`, `logs`);
//! - a trailing `/` matches only directories (so the files under them), never a file;
//! - a pattern that matches a directory owns everything under it, except a pattern whose last
//!   segment is a lone `*` (`docs/*` owns `docs/a.md`, not `docs/b/c.md`, as GitHub documents).
//!
//! The **last** matching line wins; a line with a pattern and no owners makes the paths it
//! matches unowned. `!` negation and `[…]` ranges are not supported by GitHub: such lines are
//! reported (with their line number) and skipped, as GitHub skips them.

use std::fmt;

/// One problem in a CODEOWNERS file; the line is skipped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CodeownersError {
    /// 1-based.
    pub line: usize,
    pub message: String,
}

impl fmt::Display for CodeownersError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.message)
    }
}

/// One segment of a compiled pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    /// `**`: any number of segments, none included.
    AnyDepth,
    /// Characters, `*` and `?` within one segment.
    Glob(Vec<Token>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Token {
    Literal(char),
    /// `*`
    Star,
    /// `?`
    One,
}

/// One rule: a pattern and its owners (none: unowned).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    /// The pattern as written (escapes resolved).
    pub pattern: String,
    pub owners: Vec<String>,
    /// 1-based line of the rule.
    pub line: usize,
    segments: Vec<Segment>,
    /// A trailing `/`: matches directories only.
    directories_only: bool,
    /// The last segment is a lone `*`: matches no directory's contents.
    shallow: bool,
}

impl Rule {
    /// Whether the rule covers the file `path` (repository-relative, `/`-separated).
    fn covers(&self, path: &[&str]) -> bool {
        for end in 1..=path.len() {
            if !match_segments(&self.segments, &path[..end]) {
                continue;
            }
            let whole = end == path.len();
            if whole && !self.directories_only {
                return true;
            }
            if !whole && !self.shallow {
                return true;
            }
        }
        false
    }
}

/// A parsed CODEOWNERS file: its valid rules in file order and the problems of the others.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Codeowners {
    rules: Vec<Rule>,
    errors: Vec<CodeownersError>,
}

impl Codeowners {
    /// Reads a CODEOWNERS file. Never fails: invalid lines are skipped and listed in
    /// [`Codeowners::errors`].
    pub fn parse(text: &str) -> Codeowners {
        let mut out = Codeowners::default();
        for (index, raw) in text.lines().enumerate() {
            let line = index + 1;
            match parse_line(raw) {
                Ok(None) => {}
                Ok(Some((pattern, owners))) => match compile(&pattern) {
                    Ok((segments, directories_only, shallow)) => out.rules.push(Rule {
                        pattern,
                        owners,
                        line,
                        segments,
                        directories_only,
                        shallow,
                    }),
                    Err(message) => out.errors.push(CodeownersError { line, message }),
                },
                Err(message) => out.errors.push(CodeownersError { line, message }),
            }
        }
        out
    }

    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    /// The lines that were skipped, and why.
    pub fn errors(&self) -> &[CodeownersError] {
        &self.errors
    }

    /// The rule that decides `path`'s owners: the last one that matches.
    pub fn rule_for(&self, path: &str) -> Option<&Rule> {
        let path = normalize(path);
        let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
        if segments.is_empty() {
            return None;
        }
        self.rules.iter().rev().find(|r| r.covers(&segments))
    }

    /// The owners of `path`, in the order the file lists them; `None` when no rule matches
    /// or the last matching rule names no owners.
    pub fn owner_for(&self, path: &str) -> Option<Vec<String>> {
        self.rule_for(path)
            .filter(|r| !r.owners.is_empty())
            .map(|r| r.owners.clone())
    }
}

/// `./a\b.py` → `a/b.py`; a leading `/` is the root.
fn normalize(path: &str) -> String {
    let path = path.trim().replace('\\', "/");
    let path = path.strip_prefix("./").unwrap_or(&path);
    path.trim_start_matches('/').to_owned()
}

/// Splits a line into its pattern and owners; `None` for blank and comment lines.
fn parse_line(raw: &str) -> Result<Option<(String, Vec<String>)>, String> {
    let line = raw.trim();
    if line.is_empty() || line.starts_with('#') {
        return Ok(None);
    }
    // The pattern: up to the first unescaped whitespace, with `\x` meaning `x`.
    let mut pattern = String::new();
    let mut chars = line.chars().peekable();
    let mut escaped_chars = Vec::new();
    while let Some(c) = chars.peek().copied() {
        if c.is_whitespace() {
            break;
        }
        chars.next();
        if c == '\\' {
            match chars.next() {
                Some(next) => {
                    escaped_chars.push(pattern.chars().count());
                    pattern.push(next);
                }
                None => return Err("the pattern ends with a lone `\\`".to_owned()),
            }
        } else {
            pattern.push(c);
        }
    }
    let rest: String = chars.collect();
    let mut owners = Vec::new();
    for word in rest.split_whitespace() {
        if word.starts_with('#') {
            break; // A comment to the end of the line.
        }
        check_owner(word)?;
        owners.push(word.to_owned());
    }
    // Escaped characters are literal: mark them for `compile` by keeping a backslash.
    let pattern = if escaped_chars.is_empty() {
        pattern
    } else {
        pattern
            .chars()
            .enumerate()
            .flat_map(|(i, c)| {
                let escape = escaped_chars.contains(&i);
                (escape.then_some('\\'))
                    .into_iter()
                    .chain(std::iter::once(c))
            })
            .collect()
    };
    Ok(Some((pattern, owners)))
}

/// `@user`, `@org/team` or `name@example.com`.
fn check_owner(word: &str) -> Result<(), String> {
    let name_ok = |s: &str| {
        !s.is_empty()
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    };
    if let Some(handle) = word.strip_prefix('@') {
        let valid = match handle.split_once('/') {
            Some((org, team)) => name_ok(org) && name_ok(team),
            None => name_ok(handle),
        };
        if valid {
            return Ok(());
        }
        return Err(format!(
            "owner {word:?} is not a user (@name), a team (@org/team) or an email address"
        ));
    }
    match word.split_once('@') {
        Some((local, domain))
            if !local.is_empty()
                && domain.contains('.')
                && !domain.starts_with('.')
                && !domain.ends_with('.')
                && !domain.contains('@') =>
        {
            Ok(())
        }
        _ => Err(format!(
            "owner {word:?} is not a user (@name), a team (@org/team) or an email address"
        )),
    }
}

/// Compiles a pattern (escapes kept as `\x`): its segments, whether it matches directories
/// only, and whether it is shallow (last segment a lone `*`).
fn compile(pattern: &str) -> Result<(Vec<Segment>, bool, bool), String> {
    let shown = pattern.replace('\\', "");
    if pattern.starts_with('!') {
        return Err(format!(
            "pattern {shown:?}: `!` (negation) is not supported in CODEOWNERS"
        ));
    }
    let mut body = pattern;
    let anchored_at_start = body.starts_with('/');
    body = body.trim_start_matches('/');
    let directories_only = body.ends_with('/') && !body.ends_with("\\/");
    body = body.trim_end_matches('/');
    if body.is_empty() {
        return Err(format!("pattern {shown:?} matches nothing"));
    }
    let anchored = anchored_at_start || body.contains('/');
    let mut segments = Vec::new();
    if !anchored {
        segments.push(Segment::AnyDepth);
    }
    for part in body.split('/') {
        if part.is_empty() {
            return Err(format!(
                "pattern {shown:?} has an empty path segment (`//`)"
            ));
        }
        if part == "**" {
            if segments.last() != Some(&Segment::AnyDepth) {
                segments.push(Segment::AnyDepth);
            }
            continue;
        }
        let mut tokens = Vec::new();
        let mut chars = part.chars();
        while let Some(c) = chars.next() {
            match c {
                '\\' => match chars.next() {
                    Some(next) => tokens.push(Token::Literal(next)),
                    None => tokens.push(Token::Literal('\\')),
                },
                '*' => {
                    if tokens.last() != Some(&Token::Star) {
                        tokens.push(Token::Star);
                    }
                }
                '?' => tokens.push(Token::One),
                '[' | ']' => {
                    return Err(format!(
                        "pattern {shown:?}: character ranges (`[…]`) are not supported in CODEOWNERS (escape them as `\\[`)"
                    ));
                }
                other => tokens.push(Token::Literal(other)),
            }
        }
        segments.push(Segment::Glob(tokens));
    }
    let shallow = matches!(segments.last(), Some(Segment::Glob(t)) if t == &[Token::Star]);
    Ok((segments, directories_only, shallow))
}

/// Whether `segments` match exactly the whole of `path`.
fn match_segments(segments: &[Segment], path: &[&str]) -> bool {
    match segments.split_first() {
        None => path.is_empty(),
        Some((Segment::AnyDepth, rest)) => {
            (0..=path.len()).any(|skip| match_segments(rest, &path[skip..]))
        }
        Some((Segment::Glob(tokens), rest)) => match path.split_first() {
            Some((first, tail)) => {
                let chars: Vec<char> = first.chars().collect();
                match_tokens(tokens, &chars) && match_segments(rest, tail)
            }
            None => false,
        },
    }
}

/// Whether `tokens` match the whole of one segment.
fn match_tokens(tokens: &[Token], text: &[char]) -> bool {
    match tokens.split_first() {
        None => text.is_empty(),
        Some((Token::Star, rest)) => (0..=text.len()).any(|skip| match_tokens(rest, &text[skip..])),
        Some((Token::One, rest)) => !text.is_empty() && match_tokens(rest, &text[1..]),
        Some((Token::Literal(c), rest)) => {
            text.first() == Some(c) && match_tokens(rest, &text[1..])
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn owner(file: &Codeowners, path: &str) -> Option<String> {
        file.owner_for(path).map(|o| o.join(" "))
    }

    #[test]
    fn the_last_matching_line_wins() {
        let c = Codeowners::parse(
            "# Owners\n\n*       @acme/everyone\n*.js    @acme/web   # front end\n/build/logs/ @ops\napps/ @acme/apps\n/docs/ docs@acme.test\n",
        );
        assert!(c.errors().is_empty(), "{:?}", c.errors());
        assert_eq!(owner(&c, "README.md").as_deref(), Some("@acme/everyone"));
        assert_eq!(owner(&c, "src/deep/app.js").as_deref(), Some("@acme/web"));
        assert_eq!(owner(&c, "build/logs/x.log").as_deref(), Some("@ops"));
        assert_eq!(
            owner(&c, "x/build/logs/x.log").as_deref(),
            Some("@acme/everyone"),
            "anchored"
        );
        assert_eq!(
            owner(&c, "one/two/apps/three/x.py").as_deref(),
            Some("@acme/apps"),
            "any depth"
        );
        assert_eq!(
            owner(&c, "docs/guide/a.md").as_deref(),
            Some("docs@acme.test")
        );
        assert_eq!(c.rule_for("docs/a.md").map(|r| r.line), Some(7));
    }

    #[test]
    fn a_trailing_slash_matches_directories_never_files() {
        let c = Codeowners::parse("logs/ @ops\n");
        assert_eq!(owner(&c, "logs/today.txt").as_deref(), Some("@ops"));
        assert_eq!(owner(&c, "a/logs/b/today.txt").as_deref(), Some("@ops"));
        assert_eq!(owner(&c, "logs"), None, "a file named logs");
        let c = Codeowners::parse("logs @ops\n");
        assert_eq!(
            owner(&c, "logs").as_deref(),
            Some("@ops"),
            "file or directory"
        );
        assert_eq!(owner(&c, "x/logs/y").as_deref(), Some("@ops"));
    }

    #[test]
    fn a_lone_star_segment_does_not_reach_into_subdirectories() {
        let c = Codeowners::parse("docs/* @writers\n");
        assert_eq!(
            owner(&c, "docs/getting-started.md").as_deref(),
            Some("@writers")
        );
        assert_eq!(owner(&c, "docs/build-app/troubleshooting.md"), None);
        let c = Codeowners::parse("docs/** @writers\n");
        assert_eq!(
            owner(&c, "docs/build-app/troubleshooting.md").as_deref(),
            Some("@writers")
        );
        assert_eq!(owner(&c, "docs/a.md").as_deref(), Some("@writers"));
        assert_eq!(owner(&c, "other/docs/a.md"), None, "a middle slash anchors");
    }

    #[test]
    fn double_stars_cross_any_number_of_directories() {
        let c = Codeowners::parse("**/logs @ops\nsrc/**/test_*.py @qa\n");
        for path in ["logs/x", "build/logs/x", "deeply/nested/logs/x"] {
            assert_eq!(owner(&c, path).as_deref(), Some("@ops"), "{path}");
        }
        for path in ["src/test_a.py", "src/a/b/test_a.py"] {
            assert_eq!(owner(&c, path).as_deref(), Some("@qa"), "{path}");
        }
        assert_eq!(owner(&c, "src/a/b/a_test.py"), None);
        assert_eq!(owner(&c, "lib/src/test_a.py"), None);
    }

    #[test]
    fn stars_and_question_marks_stay_within_a_segment() {
        let c = Codeowners::parse("/src/*.rs @rust\n/tests/test_?.py @py\n");
        assert_eq!(owner(&c, "src/lib.rs").as_deref(), Some("@rust"));
        assert_eq!(owner(&c, "src/a/lib.rs"), None);
        assert_eq!(owner(&c, "tests/test_a.py").as_deref(), Some("@py"));
        assert_eq!(owner(&c, "tests/test_ab.py"), None);
        assert_eq!(
            owner(&c, "./src\\main.rs").as_deref(),
            Some("@rust"),
            "normalized"
        );
    }

    #[test]
    fn a_line_without_owners_unowns() {
        let c = Codeowners::parse("* @everyone\n/vendor/\n/vendor/acme/ @acme\n");
        assert_eq!(owner(&c, "vendor/x/y.go"), None);
        assert_eq!(c.rule_for("vendor/x/y.go").map(|r| r.line), Some(2));
        assert_eq!(owner(&c, "vendor/acme/y.go").as_deref(), Some("@acme"));
        assert_eq!(owner(&c, "main.go").as_deref(), Some("@everyone"));
    }

    #[test]
    fn escapes_make_hashes_and_spaces_literal() {
        let c = Codeowners::parse("\\#notes.md @hash\nmy\\ file.txt @space\n# not a rule @x\n");
        assert!(c.errors().is_empty(), "{:?}", c.errors());
        assert_eq!(c.rules().len(), 2);
        assert_eq!(owner(&c, "#notes.md").as_deref(), Some("@hash"));
        assert_eq!(owner(&c, "a/my file.txt").as_deref(), Some("@space"));
        assert_eq!(owner(&c, "notes.md"), None);
        let c = Codeowners::parse("a\\*b @lit\n");
        assert_eq!(owner(&c, "a*b").as_deref(), Some("@lit"));
        assert_eq!(owner(&c, "axxb"), None, "an escaped star is literal");
    }

    #[test]
    fn several_owners_are_kept_in_order() {
        let c = Codeowners::parse("*.py @acme/py @alice bob@acme.test\n");
        assert_eq!(
            c.owner_for("x.py"),
            Some(vec![
                "@acme/py".to_owned(),
                "@alice".to_owned(),
                "bob@acme.test".to_owned()
            ])
        );
    }

    #[test]
    fn invalid_lines_are_reported_with_their_line_and_skipped() {
        let c = Codeowners::parse(
            "* @ok\n!keep.txt @x\nsrc/[ab].rs @x\n*.md not-an-owner\n/ @x\na//b @x\n*.go @@bad\nend\\\n*.txt @fine\n",
        );
        let lines: Vec<usize> = c.errors().iter().map(|e| e.line).collect();
        assert_eq!(lines, vec![2, 3, 4, 5, 6, 7, 8], "{:?}", c.errors());
        assert!(
            c.errors()[0].message.contains("negation"),
            "{}",
            c.errors()[0]
        );
        assert!(c.errors()[1].message.contains("ranges"));
        assert!(c.errors()[2].message.contains("\"not-an-owner\""));
        assert_eq!(c.errors()[0].to_string().split(':').next(), Some("line 2"));
        assert_eq!(c.rules().len(), 2);
        assert_eq!(
            owner(&c, "a.md").as_deref(),
            Some("@ok"),
            "the bad line is skipped"
        );
        assert_eq!(owner(&c, "a.txt").as_deref(), Some("@fine"));
    }

    #[test]
    fn empty_files_and_paths_own_nothing() {
        assert_eq!(owner(&Codeowners::parse(""), "a"), None);
        let c = Codeowners::parse("* @x\n");
        assert_eq!(owner(&c, ""), None);
        assert_eq!(owner(&c, "/"), None);
    }
}
