//! Standard output for commands whose reader may leave early (`morsa list-blobs | head -1`,
//! `morsa read BLOB | tar t` that stops reading). A write that fails never ends the command
//! where it happens: the failure is kept, later lines are dropped, and the command's work goes
//! on to its end (a cluster it started is stopped, a key it made is put to use, a node keeps
//! serving). [`finish`] then gives the status: quietly 141 if the reader went away, what a
//! shell reports for a tool killed by `SIGPIPE`; a message and status 1 for any other failure
//! (a full disk behind a redirect), never silence. Bulk data ([`Writer`]: a blob's bytes)
//! does stop at the failure, as an error, since nobody reads the rest.
//!
//! `SIGPIPE` itself stays ignored, as Rust sets it: a node that closes its connection during a
//! store must be an error the store handles, not the death of the process.

use std::fmt;
use std::io::{self, Write};
use std::process::ExitCode;
use std::sync::OnceLock;

/// The status of a command whose standard output was closed by its reader: 128 + `SIGPIPE`.
pub const CLOSED: u8 = 141;

/// The first failed write to standard output, if any.
static FAILED: OnceLock<io::Error> = OnceLock::new();

/// `println!` to standard output; a failure is kept for [`finish`] (see the module docs).
macro_rules! outln {
    () => {
        $crate::stdout::write(format_args!("\n"))
    };
    ($($arg:tt)*) => {
        $crate::stdout::write(format_args!("{}\n", format_args!($($arg)*)))
    };
}

/// `print!` to standard output; a failure is kept for [`finish`] (see the module docs).
macro_rules! out {
    ($($arg:tt)*) => {
        $crate::stdout::write(format_args!($($arg)*))
    };
}

/// Writes `args` to standard output (line-buffered: a line reaches the reader at its end),
/// unless a write failed before.
pub fn write(args: fmt::Arguments<'_>) {
    if FAILED.get().is_some() {
        return;
    }
    if let Err(error) = io::stdout().lock().write_fmt(args) {
        keep(error);
    }
}

/// Keeps the first failure.
fn keep(error: io::Error) {
    let _ = FAILED.set(error);
}

/// The exit status once the command's work is done, after flushing what is buffered:
/// `None` if every write went out (the command's own result decides), else 141 quietly for a
/// reader that went away, or 1 after saying what failed.
pub fn finish() -> Option<ExitCode> {
    if FAILED.get().is_none()
        && let Err(error) = io::stdout().lock().flush()
    {
        keep(error);
    }
    let error = FAILED.get()?;
    if error.kind() == io::ErrorKind::BrokenPipe {
        return Some(ExitCode::from(CLOSED));
    }
    // Nothing sensible is left to do if stderr is gone too.
    let _ = writeln!(io::stderr().lock(), "error: cannot write to standard output: {error}");
    Some(ExitCode::FAILURE)
}

/// Standard output as a writer for bulk data (a blob's bytes): a failed
/// write is kept for [`finish`] and answered as an error, so that the caller stops.
pub struct Writer(io::Stdout);

impl Writer {
    pub fn new() -> Self {
        Self(io::stdout())
    }
}

impl Write for Writer {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        self.0.write(bytes).inspect_err(keep_unless_interrupted)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.0.flush().inspect_err(keep_unless_interrupted)
    }
}

/// An interrupted write is retried by the caller (`write_all`); any other failure is kept.
fn keep_unless_interrupted(error: &io::Error) {
    if error.kind() != io::ErrorKind::Interrupted {
        keep(io::Error::new(error.kind(), error.to_string()));
    }
}
