//! Namespace snapshots stored on Morsa, so a gateway whose disk is lost is rebuilt from the
//! store. At a set interval and on clean shutdown, when the namespace changed, the gateway
//! reads its tables in one transaction ([`tables`]), seals them ([`mod@format`]: encrypted under a
//! key derived from its account key, with a plaintext header naming the snapshot's sequence
//! number), stores them as one blob paid for `epochs` epochs, and records it in its database;
//! the previous snapshot's blob is then deleted. A snapshot in the last epoch it is paid for is
//! written anew, so the newest one never lapses while the gateway runs.
//!
//! [`restore_namespace`] finds the newest snapshot without the lost disk: among the gateway
//! account's certified blobs, newest registration epoch first, it reads the header of each
//! (a range read) and opens the one with the highest sequence number; or it opens the blob
//! it is given.

pub mod format;
pub mod tables;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use morsa_client::{Client, ClientConfig, StoreOptions};
use redstuff::BlobId;
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};
use tokio::sync::Mutex;

use crate::GatewayError;
use crate::db::{Db, now_ms};
use format::{HEADER_LEN, Header, SnapshotKey};
use tables::{TableCounts, Tables};

/// The gateway's record of its last snapshot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotRecord {
    /// Its sequence number.
    pub sequence: u64,
    /// Its blob.
    pub blob_id: BlobId,
    /// When it was taken (ms since the Unix epoch).
    pub created_ms: u64,
    /// SHA-256 of the tables it holds (unchanged tables are not stored again).
    pub tables_sha256: [u8; 32],
    /// First epoch in which its blob is no longer stored.
    pub end_epoch: u32,
}

/// Takes the gateway's snapshots (one at a time).
#[derive(Debug)]
pub struct Snapshots {
    db: Arc<Db>,
    client: Arc<Client>,
    key: SnapshotKey,
    epochs: u32,
    /// The database's write count when the namespace was last found snapshotted.
    seen_writes: Mutex<Option<u64>>,
}

impl Snapshots {
    /// Snapshots of `db`, stored with `client` for `epochs` epochs and sealed with `key`.
    pub fn new(db: Arc<Db>, client: Arc<Client>, key: SnapshotKey, epochs: u32) -> Self {
        Self { db, client, key, epochs, seen_writes: Mutex::new(None) }
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
        // Reading, encoding, hashing and sealing the whole namespace are CPU work: off the
        // async threads.
        let db = Arc::clone(&self.db);
        let (body, tables_sha256, counts) = tokio::task::spawn_blocking(move || {
            let tables = db.snapshot_tables()?;
            let body = tables.to_bytes();
            let tables_sha256: [u8; 32] = Sha256::digest(&body).into();
            Ok::<_, GatewayError>((body, tables_sha256, tables.counts()))
        })
        .await
        .map_err(|error| GatewayError::Snapshot(format!("reading the tables: {error}")))??;
        if !lapsing && last.as_ref().is_some_and(|last| last.tables_sha256 == tables_sha256) {
            *seen_writes = Some(writes);
            return Ok(None);
        }
        let sequence = last.as_ref().map_or(1, |last| last.sequence + 1);
        let created_ms = now_ms();
        let key = self.key.clone();
        let blob = tokio::task::spawn_blocking(move || format::seal(&key, sequence, created_ms, &body))
            .await
            .map_err(|error| GatewayError::Snapshot(format!("sealing the tables: {error}")))?;
        let largest = self.client.encoding().max_blob_size();
        if u64::try_from(blob.len()).unwrap_or(u64::MAX) > largest {
            return Err(GatewayError::Snapshot(format!(
                "the namespace takes {} bytes sealed, more than the largest blob ({largest} bytes)",
                blob.len()
            )));
        }
        let options = StoreOptions { epochs: self.epochs, permanent: false, force: false };
        let stored = self.client.store_blob(blob, &options).await?;
        let record = SnapshotRecord {
            sequence,
            blob_id: stored.blob_id,
            created_ms,
            tables_sha256,
            end_epoch: stored.end_epoch.0,
        };
        let db = Arc::clone(&self.db);
        let to_record = record.clone();
        tokio::task::spawn_blocking(move || db.record_snapshot(&to_record))
            .await
            .map_err(|error| GatewayError::Snapshot(format!("recording the snapshot: {error}")))??;
        *seen_writes = Some(writes);
        tracing::info!(
            "namespace snapshot {sequence} stored as blob {}: {} users, {} buckets, {} objects",
            record.blob_id,
            counts.users,
            counts.buckets,
            counts.objects
        );
        if let Some(previous) = last.filter(|previous| previous.blob_id != record.blob_id)
            && let Err(error) = self.client.delete(&previous.blob_id).await
        {
            tracing::warn!(%error, blob_id = %previous.blob_id, "deleting the previous snapshot failed");
        }
        Ok(Some(record))
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

/// What [`restore_namespace`] restored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Restored {
    /// The snapshot.
    pub record: SnapshotRecord,
    /// What it held.
    pub counts: TableCounts,
}

/// Rebuilds the database at `database` (which must not exist) from the snapshot `blob`, or
/// else from the newest snapshot among the account's blobs.
pub async fn restore_namespace(
    client: &Client,
    key: &SnapshotKey,
    database: &Path,
    blob: Option<BlobId>,
) -> Result<Restored, GatewayError> {
    if database.exists() {
        return Err(GatewayError::Snapshot(format!(
            "{} exists: restore-namespace rebuilds a lost database; move it away first",
            database.display()
        )));
    }
    let (blob_id, header, body, end_epoch) = match blob {
        Some(blob_id) => {
            let (header, body) = format::open(key, &client.read_blob(&blob_id).await?.data)?;
            (blob_id, header, body, end_epoch_of(client, &blob_id).await?)
        }
        None => newest(client, key).await?,
    };
    let tables = Tables::from_bytes(&body)?;
    let record = SnapshotRecord {
        sequence: header.sequence,
        blob_id,
        created_ms: header.created_ms,
        tables_sha256: Sha256::digest(&body).into(),
        end_epoch,
    };
    let counts = tables.counts();
    let path = database.to_path_buf();
    let to_record = record.clone();
    tokio::task::spawn_blocking(move || tables::write_database(&path, &tables, &to_record))
        .await
        .map_err(|error| GatewayError::Snapshot(format!("writing the database: {error}")))??;
    Ok(Restored { record, counts })
}

async fn end_epoch_of(client: &Client, blob_id: &BlobId) -> Result<u32, GatewayError> {
    let status = client.blob_status(blob_id).await?;
    Ok(status.objects.iter().map(|object| object.end_epoch.0).max().unwrap_or(0))
}

/// The newest snapshot among the account's certified blobs: epochs of registration are
/// searched newest first; within one, every blob's header is read, and the snapshots found are
/// opened by descending sequence number until one opens (a blob that merely starts like a
/// snapshot — an object's chunk — does not open under the account's key).
async fn newest(client: &Client, key: &SnapshotKey) -> Result<(BlobId, Header, Vec<u8>, u32), GatewayError> {
    let mut by_epoch: BTreeMap<u32, BTreeMap<BlobId, u32>> = BTreeMap::new();
    let header_len = u64::try_from(HEADER_LEN).unwrap_or(u64::MAX);
    for blob in client.list_blobs().await? {
        if blob.certified_epoch.is_some() && !blob.invalid && blob.size > header_len {
            let end = by_epoch.entry(blob.registered_epoch.0).or_default().entry(blob.blob_id).or_default();
            *end = (*end).max(blob.end_epoch.0);
        }
    }
    let mut looked_at = 0usize;
    for blobs in by_epoch.values().rev() {
        let mut found = Vec::new();
        for (blob_id, end_epoch) in blobs {
            looked_at += 1;
            let start = client.read_blob_range(blob_id, 0..header_len).await?;
            if let Ok(header) = Header::parse(&start.data) {
                found.push((header, *blob_id, *end_epoch));
            }
        }
        found.sort_by_key(|(header, _, _)| std::cmp::Reverse((header.sequence, header.created_ms)));
        for (_, blob_id, end_epoch) in found {
            match format::open(key, &client.read_blob(&blob_id).await?.data) {
                Ok((header, body)) => return Ok((blob_id, header, body, end_epoch)),
                Err(error) => tracing::warn!("passed over blob {blob_id}: {error}"),
            }
        }
    }
    Err(GatewayError::Snapshot(format!(
        "no namespace snapshot among the {looked_at} certified blobs of account {}",
        client.account()
    )))
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
