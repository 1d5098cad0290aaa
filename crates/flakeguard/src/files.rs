//! Finding report files: directories are searched recursively for `*.xml`, in a stable order.

use std::io;
use std::path::{Path, PathBuf};

/// Expands `path` into report files: a file is itself, a directory is every `*.xml` below it.
pub(crate) fn report_files(path: &Path) -> io::Result<Vec<PathBuf>> {
    let meta = std::fs::metadata(path)?;
    if !meta.is_dir() {
        return Ok(vec![path.to_path_buf()]);
    }
    let mut out = Vec::new();
    walk(path, &mut out)?;
    out.sort();
    Ok(out)
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let path = entry.path();
        let file_type = entry.file_type()?;
        if file_type.is_dir() {
            walk(&path, out)?;
        } else if path
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("xml"))
        {
            out.push(path);
        }
    }
    Ok(())
}

/// Whether `arg` asks for a glob expansion: it names nothing that exists and has a wildcard.
/// A file whose name really contains `*` or `?` is still read as that file.
pub(crate) fn is_pattern(arg: &Path) -> bool {
    !arg.exists() && arg.to_string_lossy().contains(['*', '?', '['])
}

/// Expands a glob pattern (`*`, `?`, `[…]`, and `**` for any depth) into report files: a
/// matched file is itself, a matched directory every `*.xml` below it. A pattern that matches
/// nothing is an error naming it, as a path that does not exist would be.
pub(crate) fn pattern_files(pattern: &str) -> anyhow::Result<Vec<PathBuf>> {
    use anyhow::Context;
    let matches = glob::glob(pattern).with_context(|| format!("invalid pattern {pattern:?}"))?;
    let mut out = Vec::new();
    let mut matched = false;
    for entry in matches {
        let path = entry.with_context(|| format!("cannot read a match of {pattern:?}"))?;
        matched = true;
        out.extend(report_files(&path).with_context(|| format!("cannot read {}", path.display()))?);
    }
    if !matched {
        anyhow::bail!("no files match {pattern:?}");
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_missing_paths_with_wildcards_are_patterns() {
        assert!(is_pattern(Path::new("/nonexistent/**/*.xml")));
        assert!(is_pattern(Path::new("/nonexistent/report-?.xml")));
        assert!(!is_pattern(Path::new("/nonexistent/report.xml")));
        assert!(!is_pattern(Path::new(env!("CARGO_MANIFEST_DIR"))));
    }

    #[test]
    fn a_pattern_matching_nothing_names_itself() {
        let err = pattern_files("/nonexistent/*.xml").unwrap_err().to_string();
        assert_eq!(err, r#"no files match "/nonexistent/*.xml""#);
    }

    #[test]
    fn an_invalid_pattern_is_an_error_not_a_panic() {
        let err = pattern_files("reports/[.xml").unwrap_err();
        assert!(
            format!("{err:#}").starts_with(r#"invalid pattern "reports/[.xml""#),
            "{err:#}"
        );
    }
}
