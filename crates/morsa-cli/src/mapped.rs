//! A regular file mapped read-only into memory, so that `morsa blob-id` hashes it where the
//! kernel's page cache holds it instead of copying it into fresh memory first: on a 256 MiB
//! file that copy (and the zeroing of the fresh pages) cost ~0.3 s of system CPU, a third of the
//! command's time (docs/PERFORMANCE.md).
//!
//! The one hazard of a mapping: reading a page past the end of a file that was truncated while
//! it is mapped is a `SIGBUS`, which ends the process. `morsa blob-id` of a file that another
//! program truncates meanwhile therefore dies of that signal instead of printing an error; a
//! file that grows meanwhile is caught afterwards ([`Mapped::unchanged`]).

#![allow(unsafe_code)]

use std::fs::File;
use std::io;

/// A whole regular file, mapped.
pub struct Mapped {
    file: File,
    /// `None` for an empty file (nothing to map).
    map: Option<memmap2::Mmap>,
}

impl Mapped {
    /// Maps all of `file`, a regular file opened for reading.
    pub fn new(file: File) -> io::Result<Self> {
        if file.metadata()?.len() == 0 {
            return Ok(Self { file, map: None });
        }
        // SAFETY: the mapping is read-only and only ever read as bytes; what `Mmap::map`
        // cannot rule out is another program changing or truncating the file meanwhile (see
        // the module's documentation), which changes the bytes read or ends the process with
        // SIGBUS, never memory safety within it.
        let map = unsafe { memmap2::Mmap::map(&file)? };
        Ok(Self { file, map: Some(map) })
    }

    /// The file's bytes.
    pub fn bytes(&self) -> &[u8] {
        self.map.as_deref().unwrap_or_default()
    }

    /// Whether the file still has the length it was mapped with.
    pub fn unchanged(&self) -> io::Result<bool> {
        let len = u64::try_from(self.bytes().len()).map_err(io::Error::other)?;
        Ok(self.file.metadata()?.len() == len)
    }
}
