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
