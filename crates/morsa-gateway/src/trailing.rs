//! The memory of blob encodings, bounded across the gateway. A blob's encoding (about 4.5
//! times its bytes at n = 1000) is held from the moment it is encoded until its last upload
//! ends, which is after the blob is certified: the uploads to the nodes outside the first
//! quorum go on, on a task of their own, so that stores on the gateway's one client never
//! wait for one another's uploads (`morsa_client::Client::store_blob_detached`). Every store
//! of the gateway (chunk writer, packer, blob API) first takes its encoding's share of one
//! [`EncodingBudget`], and gives it back when those trailing uploads end: a new blob waits
//! for the budget, not for a count of stores. A request storing several chunks also waits,
//! before encoding one, for the trailing uploads of all its chunks but the last certified
//! ([`Trailing`], see `crate::writer`), so one large PUT holds at most two encodings.

use std::sync::Arc;
use std::time::Duration;

use morsa_client::{Client, DetachedUploads, StoreOptions, StoreOutcome};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::GatewayError;

/// The budget is counted in units of this many bytes (a semaphore's permits are `u32`).
const UNIT: u64 = 64 << 10;

/// Bytes of blob encodings the gateway holds at once, across every store.
#[derive(Debug)]
pub struct EncodingBudget {
    units: Arc<Semaphore>,
    /// Units in all: a larger encoding takes all of them (it then runs alone).
    total: u32,
}

impl EncodingBudget {
    /// A budget of `bytes` (at least one unit).
    pub fn new(bytes: u64) -> Self {
        let total = u32::try_from(bytes.div_ceil(UNIT)).unwrap_or(u32::MAX).clamp(1, MAX_UNITS);
        Self { units: Arc::new(Semaphore::new(usize::try_from(total).unwrap_or(usize::MAX))), total }
    }

    /// Bytes in all.
    #[cfg(test)]
    fn bytes(&self) -> u64 {
        u64::from(self.total) * UNIT
    }

    /// Bytes held now by encodings.
    #[cfg(test)]
    fn held_bytes(&self) -> u64 {
        let free = u32::try_from(self.units.available_permits()).unwrap_or(self.total);
        u64::from(self.total.saturating_sub(free)) * UNIT
    }

    /// Waits until `bytes` of encoding fit the budget and takes them (all of it, if `bytes`
    /// is more than the whole budget).
    async fn take(&self, bytes: u64) -> Result<OwnedSemaphorePermit, GatewayError> {
        let units = u32::try_from(bytes.div_ceil(UNIT)).unwrap_or(u32::MAX).clamp(1, self.total);
        Arc::clone(&self.units)
            .acquire_many_owned(units)
            .await
            .map_err(|_| GatewayError::Config("the encoding budget is closed".into()))
    }

    /// Waits, at most `limit`, until every encoding is given back: the trailing uploads of
    /// every stored blob have ended. Answers whether they all did.
    pub(crate) async fn drained(&self, limit: Duration) -> bool {
        let all = tokio::time::timeout(limit, self.units.acquire_many(self.total)).await;
        matches!(all, Ok(Ok(_)))
    }
}

/// Most units of a budget (tokio's semaphores hold fewer than `usize::MAX >> 3` permits; this
/// is far above any machine's memory in units).
const MAX_UNITS: u32 = u32::MAX >> 3;

/// Stores `data` as one blob with `client` once its encoding fits `budget`; answers once it
/// is certified, with its uploads still running then, which finish on a task of their own
/// holding the encoding's share of the budget, and `held` (what else the caller counts for
/// the blob, if anything), until they end.
pub(crate) async fn store_within<P: Send + 'static>(
    client: &Client,
    budget: &EncodingBudget,
    data: Vec<u8>,
    options: &StoreOptions,
    held: P,
) -> Result<(StoreOutcome, Trailing), GatewayError> {
    let size = morsa_core::convert::saturating_u64(data.len());
    // An encoding size the client cannot compute is refused by the store itself.
    let encoded = client.encoding().encoded_size(size).unwrap_or(size);
    let share = budget.take(encoded).await?;
    let (stored, uploads) = client.store_blob_detached(data, options).await?;
    Ok((stored, finish_uploads_holding(uploads, (share, held))))
}

/// The uploads of a certified blob still running on a task of their own; dropping this
/// value lets them run on.
#[derive(Debug)]
pub(crate) struct Trailing(tokio::task::JoinHandle<()>);

impl Trailing {
    /// Waits until the uploads have ended (and their encoding is given back).
    pub(crate) async fn ended(self) {
        // The task only waits for the uploads; it ends whatever they do.
        let _ = self.0.await;
    }
}

/// Lets `uploads` finish on a task of their own, for at most their limit (a hung node is left
/// to rebuild what it lacks, see [`DetachedUploads::finish`]), holding `permit` until they end.
fn finish_uploads_holding<P: Send + 'static>(uploads: DetachedUploads, permit: P) -> Trailing {
    Trailing(tokio::spawn(async move {
        uploads.finish().await;
        drop(permit);
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_budget_makes_a_store_wait_until_earlier_encodings_are_given_back() {
        let budget = EncodingBudget::new(10 * UNIT);
        assert_eq!(budget.bytes(), 10 * UNIT);
        let first = budget.take(6 * UNIT).await.unwrap();
        assert_eq!(budget.held_bytes(), 6 * UNIT);
        let second = budget.take(5 * UNIT);
        tokio::pin!(second);
        assert!(futures_util::poll!(second.as_mut()).is_pending(), "6 + 5 units do not fit 10");
        drop(first);
        let second = second.await.unwrap();
        assert_eq!(budget.held_bytes(), 5 * UNIT);
        drop(second);
        // An encoding larger than the whole budget takes all of it instead of waiting forever.
        let whole = budget.take(50 * UNIT).await.unwrap();
        assert_eq!(budget.held_bytes(), budget.bytes());
        drop(whole);
        assert_eq!(budget.held_bytes(), 0);
    }

    #[tokio::test]
    async fn drained_waits_for_every_encoding_to_be_given_back_within_its_limit() {
        let budget = Arc::new(EncodingBudget::new(10 * UNIT));
        assert!(budget.drained(Duration::from_secs(5)).await, "nothing is held");
        let held = budget.take(3 * UNIT).await.unwrap();
        assert!(!budget.drained(Duration::from_millis(20)).await, "one encoding is still held");
        let waiting = tokio::spawn({
            let budget = Arc::clone(&budget);
            async move { budget.drained(Duration::from_secs(30)).await }
        });
        drop(held);
        assert!(waiting.await.unwrap(), "drained once it is given back");
        assert_eq!(budget.held_bytes(), 0, "and the budget is whole again");
    }
}
