//! A regular file mapped read-only into memory, so that `morsa blob-id` hashes it where the
//! kernel's page cache holds it instead of copying it into fresh memory first: on a 256 MiB
//! file that copy (and the zeroing of the fresh pages) cost ~0.3 s of system CPU, a third of the
//! command's time (docs/PERFORMANCE.md).
//!
//! The hazards of a mapping: reading a page past the end of a file that another program
//! truncated meanwhile is a `SIGBUS`, which ends the process; and bytes another program writes
//! meanwhile show through, so the codec's passes may see different bytes. `morsa blob-id` of a
//! file truncated while its ID is computed therefore dies of that signal instead of printing an
//! error, and one written to meanwhile is reported ([`Mapped::unchanged`]: its length or
//! modification time moved).

#![allow(unsafe_code)]

use std::fs::File;
use std::io;
use std::time::SystemTime;

/// A whole regular file, mapped.
pub struct Mapped {
    file: File,
    map: memmap2::Mmap,
    /// The file's modification time when it was mapped, where the file system keeps one.
    modified: Option<SystemTime>,
}

impl Mapped {
    /// Maps `file` (opened for reading) if it is a non-empty regular file the kernel can map;
    /// otherwise answers it back, to be read instead: some pseudo-files report a length of 0
    /// and still have bytes, and some file systems cannot map files.
    pub fn new(file: File) -> io::Result<Result<Self, File>> {
        let metadata = file.metadata()?;
        if !metadata.is_file() || metadata.len() == 0 {
            return Ok(Err(file));
        }
        // SAFETY: `Mmap::map` is `unsafe` because the bytes behind the slice it gives can change
        // or vanish while it lives if another program writes or truncates the file. Here the
        // bytes are only read as data (no length, index or pointer is derived from them): a
        // write gives a blob ID of no single version of the file, which `unchanged` reports;
        // a truncation ends the process with SIGBUS (module documentation).
        match unsafe { memmap2::Mmap::map(&file) } {
            Ok(map) => Ok(Ok(Self { file, map, modified: metadata.modified().ok() })),
            Err(_) => Ok(Err(file)),
        }
    }

    /// The file's bytes.
    pub fn bytes(&self) -> &[u8] {
        &self.map
    }

    /// Whether the file still has the length and modification time it was mapped with.
    pub fn unchanged(&self) -> io::Result<bool> {
        let metadata = self.file.metadata()?;
        let len = u64::try_from(self.map.len()).map_err(io::Error::other)?;
        Ok(metadata.len() == len && metadata.modified().ok() == self.modified)
    }
}
