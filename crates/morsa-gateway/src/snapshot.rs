//! Namespace snapshots stored on Morsa, so a gateway whose disk is lost is rebuilt from the
//! store. At a set interval and on clean shutdown, when the namespace changed, the gateway
//! reads its tables in one read transaction as a stream of rows cut into parts of a bounded
//! size ([`rows`]), seals each part ([`mod@format`]: encrypted under a key derived from its
//! account key, with a plaintext header naming the snapshot's sequence number and the part's)
//! and stores it as a blob paid for `epochs` epochs while the next part is read, then stores
//! the snapshot's head (the parts' blobs in order), and records it in its database; the
//! previous snapshot's blobs are then deleted. So a snapshot holds at most a few parts in
//! memory, whatever the namespace's size. A snapshot in the last epoch it is paid for is
//! written anew, so the newest one never lapses while the gateway runs.
//!
//! [`restore_namespace`] finds the newest snapshot without the lost disk: among the gateway
//! account's certified blobs, newest registration epoch first, it reads the header of each
//! (a range read) and opens the head (or format-1 whole snapshot) with the highest sequence
//! number; or it opens the blob it is given. It then reads the parts one at a time, writing
//! each into the new database in a transaction of its own.

pub mod format;
mod restore;
pub mod rows;
pub mod tables;

pub use restore::{Restored, restore_namespace};

use std::sync::Arc;

use morsa_client::{Client, ClientConfig, StoreOptions};
use redstuff::BlobId;
use serde::{Deserialize, Serialize};
use tokio::sync::Mutex;

use crate::GatewayError;
use crate::db::{Db, now_ms};
use format::SnapshotKey;
use rows::TableCounts;

/// The gateway's record of its last snapshot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotRecord {
    /// Its sequence number.
    pub sequence: u64,
    /// Its blob (format 2: its head).
    pub blob_id: BlobId,
    /// When it was taken (ms since the Unix epoch).
    pub created_ms: u64,
    /// SHA-256 of the tables it holds (format 2: of its parts' bytes in order; unchanged
    /// tables are not stored again).
    pub tables_sha256: [u8; 32],
    /// First epoch in which one of its blobs is no longer stored.
    pub end_epoch: u32,
    /// The blobs of its parts, in order (none for a format-1 snapshot).
    pub parts: Vec<BlobId>,
}

/// What a format-2 snapshot's head holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// The parts' blobs, in order.
    pub parts: Vec<BlobId>,
    /// SHA-256 of the parts' bytes in order.
    pub tables_sha256: [u8; 32],
    /// What the parts hold.
    pub counts: TableCounts,
}

/// Takes the gateway's snapshots (one at a time).
#[derive(Debug)]
pub struct Snapshots {
    db: Arc<Db>,
    client: Arc<Client>,
    key: SnapshotKey,
    epochs: u32,
    /// Bytes of rows in one part (its blob is a little larger, sealed).
    part_size: usize,
    /// The database's write count when the namespace was last found snapshotted.
    seen_writes: Mutex<Option<u64>>,
}

impl Snapshots {
    /// Snapshots of `db`, stored with `client` for `epochs` epochs and sealed with `key`, in
    /// parts of about `part_size` bytes (capped so that a part fits one blob).
    pub fn new(db: Arc<Db>, client: Arc<Client>, key: SnapshotKey, epochs: u32, part_size: u64) -> Self {
        // A part passes `part_size` by less than one row; rows are far smaller than the room
        // left (a record's layout of a 5 TiB object, the largest, takes a few MiB).
        let largest = client.encoding().max_blob_size() / 2;
        let part_size = morsa_core::convert::saturating_usize(part_size.clamp(1, largest.max(1)));
        Self { db, client, key, epochs, part_size, seen_writes: Mutex::new(None) }
    }

    /// Stores a snapshot if the namespace changed since the last one, or if the last one is
    /// in the last epoch it is paid for; answers it, or `None` if none was needed.
    pub async fn take_if_due(&self) -> Result<Option<SnapshotRecord>, GatewayError> {
        let mut seen_writes = self.seen_writes.lock().await;
        let writes = self.db.writes();
        let last = self.db.last_snapshot()?;
        let epoch = self.client.system().await?.epoch.0;
        let lapsing = last.as_ref().is_some_and(|last| last.end_epoch <= epoch.saturating_add(1));
        if *seen_writes == Some(writes) && !lapsing {
            return Ok(None);
        }
        if !lapsing && let Some(last) = &last {
            // Reading and hashing the namespace is CPU work: off the async threads. Only a
            // part at a time is held.
            let db = Arc::clone(&self.db);
            let part_size = self.part_size;
            let (tables_sha256, _) =
                tokio::task::spawn_blocking(move || rows::cut(&db, part_size, |_| Ok(())))
                    .await
                    .map_err(|error| GatewayError::Snapshot(format!("reading the tables: {error}")))??;
            if last.tables_sha256 == tables_sha256 {
                *seen_writes = Some(writes);
                return Ok(None);
            }
        }
        let sequence = last.as_ref().map_or(1, |last| last.sequence + 1);
        let record = self.store(sequence).await?;
        let db = Arc::clone(&self.db);
        let to_record = record.clone();
        tokio::task::spawn_blocking(move || db.record_snapshot(&to_record))
            .await
            .map_err(|error| GatewayError::Snapshot(format!("recording the snapshot: {error}")))??;
        *seen_writes = Some(writes);
        if let Some(previous) = last.filter(|previous| previous.blob_id != record.blob_id) {
            self.delete_blobs(previous.parts.iter().chain([&previous.blob_id])).await;
        }
        Ok(Some(record))
    }

    /// Stores snapshot `sequence` of the namespace as it is now: its parts as they are read,
    /// then its head.
    async fn store(&self, sequence: u64) -> Result<SnapshotRecord, GatewayError> {
        let created_ms = now_ms();
        let options = StoreOptions { epochs: self.epochs, permanent: false, force: false };
        // Parts are read (and hashed) on a blocking thread while the one before is stored: the
        // channel holds one, so at most three are in hand.
        let (parts_in, mut parts_out) = tokio::sync::mpsc::channel::<Vec<u8>>(1);
        let db = Arc::clone(&self.db);
        let part_size = self.part_size;
        let reader = tokio::task::spawn_blocking(move || {
            rows::cut(&db, part_size, |part| {
                parts_in
                    .blocking_send(part)
                    .map_err(|_| GatewayError::Snapshot("the snapshot's store stopped".into()))
            })
        });
        let mut parts = Vec::new();
        let mut end_epoch = u32::MAX;
        let mut stored = Ok(());
        while let Some(body) = parts_out.recv().await {
            let number = u32::try_from(parts.len() + 1).unwrap_or(u32::MAX);
            match self.store_piece(sequence, created_ms, format::Piece::Part(number), body, &options).await {
                Ok((blob_id, end)) => {
                    parts.push(blob_id);
                    end_epoch = end_epoch.min(end);
                }
                Err(error) => {
                    stored = Err(error);
                    break;
                }
            }
        }
        drop(parts_out);
        let read =
            reader.await.map_err(|error| GatewayError::Snapshot(format!("reading the tables: {error}")));
        let (tables_sha256, counts) = match (stored, read) {
            (Ok(()), Ok(Ok(read))) => read,
            (Err(error), _) | (Ok(()), Err(error) | Ok(Err(error))) => {
                // The parts stored so far would name no snapshot: not worth their storage.
                self.delete_blobs(parts.iter()).await;
                return Err(error);
            }
        };
        let manifest = Manifest { parts, tables_sha256, counts };
        let head = crate::db::encode(&manifest);
        let (blob_id, end) =
            match self.store_piece(sequence, created_ms, format::Piece::Head, head, &options).await {
                Ok(stored) => stored,
                Err(error) => {
                    self.delete_blobs(manifest.parts.iter()).await;
                    return Err(error);
                }
            };
        tracing::info!(
            "namespace snapshot {sequence} stored as blob {blob_id} and {} parts: {} users, {} buckets, {} objects",
            manifest.parts.len(),
            counts.users,
            counts.buckets,
            counts.objects
        );
        Ok(SnapshotRecord {
            sequence,
            blob_id,
            created_ms,
            tables_sha256,
            end_epoch: end_epoch.min(end),
            parts: manifest.parts,
        })
    }

    /// Seals `body` as `piece` of snapshot `sequence` and stores it; answers its blob and the
    /// first epoch it is no longer stored.
    async fn store_piece(
        &self,
        sequence: u64,
        created_ms: u64,
        piece: format::Piece,
        body: Vec<u8>,
        options: &StoreOptions,
    ) -> Result<(BlobId, u32), GatewayError> {
        let key = self.key.clone();
        let blob =
            tokio::task::spawn_blocking(move || format::seal(&key, sequence, created_ms, piece, &body))
                .await
                .map_err(|error| GatewayError::Snapshot(format!("sealing the tables: {error}")))?;
        let stored = self.client.store_blob(blob, options).await?;
        Ok((stored.blob_id, stored.end_epoch.0))
    }

    /// Deletes `blobs` (an earlier snapshot's, or the parts of one that failed); a failure
    /// is logged and the blob left to expire.
    async fn delete_blobs(&self, blobs: impl Iterator<Item = &BlobId>) {
        for blob_id in blobs {
            if let Err(error) = self.client.delete(blob_id).await {
                tracing::warn!(%error, %blob_id, "deleting a snapshot's blob failed");
            }
        }
    }

    /// Takes a snapshot when due every `interval` until `stop` completes; failures are
    /// logged and tried again at the next tick.
    pub async fn run_every(
        &self,
        interval: std::time::Duration,
        stop: impl std::future::Future<Output = ()>,
    ) {
        let mut ticks = tokio::time::interval(interval);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tokio::pin!(stop);
        loop {
            tokio::select! {
                _ = ticks.tick() => {
                    if let Err(error) = self.take_if_due().await {
                        tracing::warn!(%error, "taking a namespace snapshot failed");
                    }
                }
                () = &mut stop => return,
            }
        }
    }
}

/// The snapshot key of the account the client configuration `config` pays with.
pub fn snapshot_key(config: &ClientConfig) -> Result<SnapshotKey, GatewayError> {
    let path = &config.account_key_file;
    if !path.exists() {
        return Err(GatewayError::Snapshot(format!(
            "the account key {} is missing: snapshots open only with the key of the account that stored them",
            path.display()
        )));
    }
    let (key, _) = morsa_client::load_or_create_account_key(path)?;
    Ok(SnapshotKey::derive(&key))
}

/// The periodic snapshots of a running gateway; [`SnapshotTask::finish`] takes the last one.
#[derive(Debug)]
pub struct SnapshotTask {
    snapshots: Arc<Snapshots>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    periodic: Option<tokio::task::JoinHandle<()>>,
}

impl SnapshotTask {
    /// Starts taking snapshots every `interval` (none if `None`).
    pub fn start(snapshots: Snapshots, interval: Option<std::time::Duration>) -> Self {
        let snapshots = Arc::new(snapshots);
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let periodic = interval.map(|interval| {
            let snapshots = Arc::clone(&snapshots);
            tokio::spawn(async move {
                snapshots
                    .run_every(interval, async move {
                        let _ = stopped.await;
                    })
                    .await;
            })
        });
        Self { snapshots, stop: Some(stop), periodic }
    }

    /// Stops the periodic snapshots (letting one under way finish) and takes the last one,
    /// if the namespace changed since.
    pub async fn finish(mut self) -> Result<Option<SnapshotRecord>, GatewayError> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(periodic) = self.periodic.take() {
            let _ = periodic.await;
        }
        self.snapshots.take_if_due().await
    }
}
