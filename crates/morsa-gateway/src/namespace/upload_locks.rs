//! The lock a multipart upload's object will have, decided when the upload is created (its
//! `x-amz-object-lock-*` headers or the bucket's default) and applied when it completes. Kept
//! in a table of its own beside the upload's record.

use redb::{ReadableTable, WriteTransaction};

use super::LockState;
use crate::GatewayError;
use crate::db::{Db, UPLOAD_LOCKS, decode, encode};

/// Keeps `lock` for upload `id` (forgets it for `None` or the default lock).
pub(super) fn store_upload_lock(
    transaction: &WriteTransaction,
    id: &str,
    lock: Option<LockState>,
) -> Result<(), GatewayError> {
    const ACTION: &str = "writing an upload's lock";
    let mut table = transaction.open_table(UPLOAD_LOCKS).map_err(GatewayError::database(ACTION))?;
    match lock.filter(|lock| *lock != LockState::default()) {
        Some(lock) => table.insert(id, encode(&lock).as_slice()).map(drop),
        None => table.remove(id).map(drop),
    }
    .map_err(GatewayError::database(ACTION))
}

fn upload_lock_of(
    table: &impl ReadableTable<&'static str, &'static [u8]>,
    id: &str,
    action: &'static str,
) -> Result<LockState, GatewayError> {
    match table.get(id).map_err(GatewayError::database(action))? {
        Some(bytes) => decode(bytes.value(), || format!("lock of upload {id}")),
        None => Ok(LockState::default()),
    }
}

/// The lock upload `id`'s object will have, in a write transaction.
pub(super) fn upload_lock_in(transaction: &WriteTransaction, id: &str) -> Result<LockState, GatewayError> {
    const ACTION: &str = "reading an upload's lock";
    let table = transaction.open_table(UPLOAD_LOCKS).map_err(GatewayError::database(ACTION))?;
    upload_lock_of(&table, id, ACTION)
}

impl Db {
    /// The lock upload `id`'s object will have (its parts' blobs are permanent under COMPLIANCE).
    pub fn upload_lock(&self, id: &str) -> Result<LockState, GatewayError> {
        const ACTION: &str = "reading an upload's lock";
        let transaction = self.read(ACTION)?;
        let table = transaction.open_table(UPLOAD_LOCKS).map_err(GatewayError::database(ACTION))?;
        upload_lock_of(&table, id, ACTION)
    }
}
