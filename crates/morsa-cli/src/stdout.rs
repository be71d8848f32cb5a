//! Standard output for commands whose reader may leave early (`morsa list-blobs | head -1`,
//! `morsa read BLOB | tar t` that stops reading): a pipe closed by its reader ends the command
//! quietly with status 141, what a shell reports for a tool killed by `SIGPIPE`, instead of a
//! panic (`println!`) or a message blaming the reader's choice. Any other failure to write (a
//! full disk behind a redirect) ends the command with a message and status 1, never silently.
//!
//! `SIGPIPE` itself stays ignored, as Rust sets it: a node that closes its connection during a
//! store must be an error the store handles, not the death of the process.

use std::fmt;
use std::io::{self, Write};

/// The status of a command whose standard output was closed by its reader: 128 + `SIGPIPE`.
pub const CLOSED: i32 = 141;

/// Status 1, as [`crate::main`] exits with for any other runtime error.
const FAILED: i32 = 1;

/// `println!` to standard output, ending the command as the module says if it cannot.
macro_rules! outln {
    () => {
        $crate::stdout::write(format_args!("\n"))
    };
    ($($arg:tt)*) => {
        $crate::stdout::write(format_args!("{}\n", format_args!($($arg)*)))
    };
}

/// `print!` to standard output, ending the command as the module says if it cannot.
macro_rules! out {
    ($($arg:tt)*) => {
        $crate::stdout::write(format_args!($($arg)*))
    };
}

/// Writes `args` to standard output (line-buffered: a line reaches the reader at its end).
pub fn write(args: fmt::Arguments<'_>) {
    if let Err(error) = io::stdout().lock().write_fmt(args) {
        failed(&error);
    }
}

/// Ends the command after a failed write to standard output: quietly with [`CLOSED`] if its
/// reader went away, else with a message and status 1.
pub fn failed(error: &io::Error) -> ! {
    if error.kind() == io::ErrorKind::BrokenPipe {
        std::process::exit(CLOSED);
    }
    // Nothing sensible is left to do if stderr is gone too.
    let _ = writeln!(io::stderr().lock(), "error: cannot write to standard output: {error}");
    std::process::exit(FAILED)
}

/// Standard output as a writer for bulk data (a blob's bytes, a completion script): errors
/// end the command as [`failed`] does, so callers only ever see successful writes.
pub struct Writer(io::Stdout);

impl Writer {
    pub fn new() -> Self {
        Self(io::stdout())
    }
}

impl Write for Writer {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        self.0.write(bytes).or_else(fail_unless_interrupted)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.0.flush().or_else(fail_unless_interrupted)
    }
}

/// An interrupted write is retried by the caller (`write_all`); any other error ends the command.
fn fail_unless_interrupted<T>(error: io::Error) -> io::Result<T> {
    if error.kind() == io::ErrorKind::Interrupted {
        return Err(error);
    }
    failed(&error)
}
