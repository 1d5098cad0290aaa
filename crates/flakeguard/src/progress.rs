//! Progress bars on stderr, shown only when stderr is a terminal (and, for reading files, only
//! when there are many).

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

/// Bytes of an upload sent so far, with a status message (the attempt, a pending retry).
pub(crate) fn upload_bar(bytes: u64) -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(bytes);
    if let Ok(style) = ProgressStyle::with_template(
        "{spinner} uploading {bar:30} {bytes}/{total_bytes} {wide_msg}",
    ) {
        bar.set_style(style);
    }
    bar.enable_steady_tick(std::time::Duration::from_millis(100));
    bar
}
