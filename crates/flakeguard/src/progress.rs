//! A progress bar on stderr, shown only when many files are read and stderr is a terminal.

use std::io::IsTerminal;

use indicatif::{ProgressBar, ProgressStyle};

/// Files below this count finish too fast for a bar to help.
const MIN_FILES: usize = 50;

pub(crate) fn bar(files: usize) -> ProgressBar {
    if files < MIN_FILES || !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(files as u64);
    if let Ok(style) =
        ProgressStyle::with_template("{spinner} reading reports {bar:30} {pos}/{len} {wide_msg}")
    {
        bar.set_style(style);
    }
    bar
}
