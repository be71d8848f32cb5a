//! File writes that are durable before they return: the bytes are fsync'd, and so is the
//! directory entry that names them, so an acknowledged write survives a crash or power loss.
//!
//! - [`replace`]: readers see the old content or the new one, never a mix: the bytes go to
//!   `PATH.tmp`, which is fsync'd and renamed over `PATH`; then the directory is fsync'd.
//! - [`create_new`]: writes a file that must not exist yet (an existing one is never
//!   overwritten), fsyncs it and the directory.
//!
//! With [`Access::Secret`] the file is created with mode `0600` (on Unix), so it is never
//! readable by others, not even for a moment.

use std::io::Write as _;
use std::path::{Path, PathBuf};

/// Who may read a written file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Readable by everyone, writable by its owner: mode `0644` (less what the umask removes).
    Shared,
    /// Only its owner may read or write it: mode `0600`. For keys and tokens.
    Secret,
}

impl Access {
    #[cfg(unix)]
    fn mode(self) -> u32 {
        match self {
            Self::Shared => 0o644,
            Self::Secret => 0o600,
        }
    }
}

/// Why a durable write failed: which step, on which path, and the I/O error. The target is
/// unchanged unless the step is [`WriteStep::SyncDirectory`] (then the new content is in place
/// but may not survive a crash).
#[derive(Debug, thiserror::Error)]
#[error("cannot {step} {path}: {source}", step = .step.verb(), path = .path.display())]
pub struct WriteError {
    /// The step that failed.
    pub step: WriteStep,
    /// The path it failed on (the temporary file, the target or its directory).
    pub path: PathBuf,
    /// The I/O error.
    #[source]
    pub source: std::io::Error,
}

/// A step of a durable write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteStep {
    /// Creating the file (for [`create_new`], also: it already exists) or its directory.
    Create,
    /// Writing the bytes and fsyncing them.
    Write,
    /// Renaming the temporary file over the target.
    Rename,
    /// Fsyncing the directory.
    SyncDirectory,
}

impl WriteStep {
    fn verb(self) -> &'static str {
        match self {
            Self::Create => "create",
            Self::Write => "write",
            Self::Rename => "rename into place",
            Self::SyncDirectory => "sync the directory",
        }
    }
}

impl WriteError {
    /// Whether the write failed because [`create_new`] found the file already there.
    pub fn already_exists(&self) -> bool {
        self.step == WriteStep::Create && self.source.kind() == std::io::ErrorKind::AlreadyExists
    }
}

fn failed(step: WriteStep, path: &Path) -> impl FnOnce(std::io::Error) -> WriteError + '_ {
    move |source| WriteError { step, path: path.to_path_buf(), source }
}

/// Replaces `path` with `bytes` atomically and durably: temporary file `PATH.tmp`, fsync,
/// rename, fsync of the directory. A temporary file left by a crash is overwritten.
pub fn replace(path: &Path, bytes: &[u8], access: Access) -> Result<(), WriteError> {
    let temporary = temporary_path(path);
    // A leftover from a crash may have other permissions; start from nothing so the mode of
    // the new file is the one asked for.
    match std::fs::remove_file(&temporary) {
        Err(error) if error.kind() != std::io::ErrorKind::NotFound => {
            return Err(failed(WriteStep::Create, &temporary)(error));
        }
        _ => {}
    }
    write_synced(&temporary, bytes, access)?;
    std::fs::rename(&temporary, path).map_err(failed(WriteStep::Rename, path))?;
    sync_parent(path)
}

/// Writes `bytes` to a new file at `path` and makes it durable; fails (see
/// [`WriteError::already_exists`]) if `path` exists. Creates missing parent directories.
pub fn create_new(path: &Path, bytes: &[u8], access: Access) -> Result<(), WriteError> {
    if let Some(parent) = parent(path).filter(|parent| !parent.exists()) {
        std::fs::create_dir_all(parent).map_err(failed(WriteStep::Create, parent))?;
    }
    write_synced(path, bytes, access)?;
    sync_parent(path)
}

/// Fsyncs the directory holding `path`, so that a file created or renamed there keeps its
/// name after a crash. For files written by other means (a persisted temporary file).
pub fn sync_parent(path: &Path) -> Result<(), WriteError> {
    let directory = parent(path).unwrap_or(Path::new("."));
    std::fs::File::open(directory)
        .and_then(|directory| directory.sync_all())
        .map_err(failed(WriteStep::SyncDirectory, directory))
}

/// Creates `path` (which must not exist) with `access`, writes `bytes` and fsyncs them.
fn write_synced(path: &Path, bytes: &[u8], access: Access) -> Result<(), WriteError> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, access.mode());
    #[cfg(not(unix))]
    let _ = access;
    let mut file = options.open(path).map_err(failed(WriteStep::Create, path))?;
    file.write_all(bytes).and_then(|()| file.sync_all()).map_err(failed(WriteStep::Write, path))
}

/// `PATH.tmp`, beside `path` (so the rename stays within one file system).
fn temporary_path(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".tmp");
    PathBuf::from(name)
}

/// The directory of `path`, if it names one (`None` for a bare file name).
fn parent(path: &Path) -> Option<&Path> {
    path.parent().filter(|parent| !parent.as_os_str().is_empty())
}

#[cfg(test)]
mod tests;
