//! The free space of the filesystem under the node's database, and the reserve kept free on it:
//! uploads are refused (`insufficient_storage`, 507) while less than the reserve is free, before
//! their bodies are read, so that the node says so early and clearly instead of failing at a
//! write (`ENOSPC`) deep in a commit. What keeps the data the node already holds (repair, shard
//! pulls, its database's own growth) is not refused: the reserve is their room.

use std::path::{Path, PathBuf};

use morsa_api::node::DiskHealth;

use crate::error::NodeError;

/// The most the reserve is when `limits.min_free_disk_bytes` is not set (it is then 1% of the
/// filesystem's size, at most this).
pub const DEFAULT_RESERVE_CAP: u64 = 1 << 30;

/// The filesystem holding the database, and the reserve kept free on it.
#[derive(Debug)]
pub struct Disk {
    path: PathBuf,
    /// `None`: 1% of the filesystem's size, at most [`DEFAULT_RESERVE_CAP`].
    reserve: Option<u64>,
}

impl Disk {
    /// The filesystem of `path` (the database file or its directory).
    pub fn new(path: &Path, reserve: Option<u64>) -> Self {
        Self { path: path.to_path_buf(), reserve }
    }

    /// Free and total bytes of the filesystem, and its reserve, now; `None` if the system
    /// cannot say (then nothing is refused for it).
    pub fn health(&self) -> Option<DiskHealth> {
        let stat = rustix::fs::statvfs(&self.path).ok()?;
        let total_bytes = stat.f_blocks.saturating_mul(stat.f_frsize);
        // What an unprivileged writer may use: blocks reserved for root are not the node's.
        let free_bytes = stat.f_bavail.saturating_mul(stat.f_frsize);
        let reserve_bytes = self.reserve.unwrap_or((total_bytes / 100).min(DEFAULT_RESERVE_CAP));
        Some(DiskHealth { free_bytes, total_bytes, reserve_bytes })
    }

    /// Refuses new data while less than the reserve is free once `promised` bytes (uploads
    /// held in memory, to be written at their registration) are written.
    pub fn check_room(&self, promised: u64) -> Result<(), NodeError> {
        match self.health() {
            Some(disk) if disk.free_bytes.saturating_sub(promised) < disk.reserve_bytes => {
                Err(NodeError::DiskFull { disk, promised })
            }
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_reserve_is_what_is_set_or_a_hundredth_of_the_filesystem_at_most_a_gibibyte() {
        let dir = tempfile::tempdir().unwrap();
        let disk = Disk::new(dir.path(), None).health().unwrap();
        assert!(disk.total_bytes > 0 && disk.free_bytes <= disk.total_bytes, "{disk:?}");
        assert_eq!(disk.reserve_bytes, (disk.total_bytes / 100).min(DEFAULT_RESERVE_CAP));
        assert_eq!(Disk::new(dir.path(), Some(0)).health().unwrap().reserve_bytes, 0);
        Disk::new(dir.path(), Some(0)).check_room(0).unwrap();
        // Bytes promised to held uploads count as written.
        let reserve = disk.free_bytes / 2;
        Disk::new(dir.path(), Some(reserve)).check_room(0).unwrap();
        let error = Disk::new(dir.path(), Some(reserve)).check_room(disk.free_bytes).unwrap_err();
        assert!(error.to_string().contains(&format!("{} of them promised", disk.free_bytes)), "{error}");

        let over = disk.free_bytes.saturating_mul(2).max(1 << 40);
        let error = Disk::new(dir.path(), Some(over)).check_room(0).unwrap_err();
        assert_eq!(error.code(), morsa_api::node::NodeErrorCode::InsufficientStorage);
        let message = error.to_string();
        assert!(message.contains(&over.to_string()) && message.contains("min_free_disk_bytes"), "{message}");
        // A path the system cannot ask about refuses nothing.
        let gone = dir.path().join("not-there");
        assert_eq!(Disk::new(&gone, Some(over)).health(), None);
        Disk::new(&gone, Some(over)).check_room(0).unwrap();
    }
}
