//! Progress bars for long stores and reads, on stderr, only when it is a terminal.

use std::io::IsTerminal;
use std::sync::Arc;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use morsa_client::{Progress, ProgressSink};

/// Blobs smaller than this get no bar: they are done before one would be useful.
const MIN_BAR_BYTES: u64 = 8 << 20;

/// A bar that follows a client's progress events, or nothing when hidden.
pub struct Bar {
    bar: Option<ProgressBar>,
}

impl Bar {
    /// A bar, drawn only if stderr is a terminal and `quiet` is false.
    pub fn new(quiet: bool) -> Self {
        if quiet || !std::io::stderr().is_terminal() {
            return Self { bar: None };
        }
        let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::hidden());
        bar.set_style(
            ProgressStyle::with_template(
                "{msg:>10} [{bar:30}] {bytes}/{total_bytes} {binary_bytes_per_sec} eta {eta}",
            )
            .expect("the template is valid")
            .progress_chars("=> "),
        );
        Self { bar: Some(bar) }
    }

    /// The sink to give the client.
    pub fn sink(&self) -> ProgressSink {
        let Some(bar) = self.bar.clone() else { return Arc::new(|_| {}) };
        Arc::new(move |event: &Progress| match event {
            Progress::UploadStarted { total, .. } => show(&bar, *total, "uploading"),
            Progress::SliverUploaded { bytes } => bar.inc(*bytes),
            Progress::ReadStarted { total, .. } => show(&bar, *total, "reading"),
            Progress::BytesRead { bytes } => bar.inc(*bytes),
            Progress::ChunkDone { index, count } => {
                bar.println(format!("chunk {} of {count} done", index + 1))
            }
            _ => {}
        })
    }

    /// Removes the bar from the terminal.
    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

/// Restarts `bar` for `total` bytes, drawn only if that is large enough to be worth it.
fn show(bar: &ProgressBar, total: u64, what: &'static str) {
    bar.reset();
    bar.set_length(total);
    bar.set_message(what);
    bar.set_draw_target(match total >= MIN_BAR_BYTES {
        true => ProgressDrawTarget::stderr(),
        false => ProgressDrawTarget::hidden(),
    });
}

/// Files stored at once get one bar for all of them, moved as each file is done: the
/// client's upload events of concurrent stores would restart one bar over each other.
pub struct FilesBar {
    bar: Option<ProgressBar>,
    count: usize,
    done: std::sync::atomic::AtomicUsize,
}

/// Fewer files than this, of fewer than [`MIN_BAR_BYTES`] together, get no bar.
const MIN_BAR_FILES: usize = 10;

impl FilesBar {
    /// A bar over `count` files of `total` bytes, drawn only if stderr is a terminal,
    /// `quiet` is false and there is enough work for it to be useful.
    pub fn new(quiet: bool, count: usize, total: u64) -> Self {
        let worth_it = count >= MIN_BAR_FILES || total >= MIN_BAR_BYTES;
        let done = std::sync::atomic::AtomicUsize::new(0);
        if quiet || !worth_it || !std::io::stderr().is_terminal() {
            return Self { bar: None, count, done };
        }
        let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
        bar.set_style(
            ProgressStyle::with_template(
                "{msg:>14} [{bar:30}] {bytes}/{total_bytes} {binary_bytes_per_sec} eta {eta}",
            )
            .expect("the template is valid")
            .progress_chars("=> "),
        );
        bar.set_message(format!("0/{count} files"));
        Self { bar: Some(bar), count, done }
    }

    /// One more file is done (stored or failed), of `bytes` bytes.
    pub fn file_done(&self, bytes: u64) {
        let done = self.done.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
        if let Some(bar) = &self.bar {
            bar.inc(bytes);
            bar.set_message(format!("{done}/{} files", self.count));
        }
    }

    /// Runs `print` with the bar out of the way, so that lines do not mix with it.
    pub fn suspend<R>(&self, print: impl FnOnce() -> R) -> R {
        match &self.bar {
            Some(bar) => bar.suspend(print),
            None => print(),
        }
    }

    /// Removes the bar from the terminal.
    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}
