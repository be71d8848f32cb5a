//! Memory held by answers until they are written: slivers and recovery symbols read or computed
//! for a caller stay in memory until its connection takes them, which a caller that never reads
//! can delay until the write timeout. A byte budget bounds them all, and each recovery-batch
//! caller (IP address) may hold only a few answers at once, since one small request asks for a
//! large answer.
//!
//! A budget permit travels with the answer's bytes ([`morsa_api::server::owned_bytes`]) and is
//! given back when they are freed: written, or dropped with a closed connection.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, PoisonError};

use axum::http::header;
use axum::response::{IntoResponse, Response};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::error::NodeError;

/// Bytes of answers held at once.
pub struct AnswerBudget {
    bytes: Arc<Semaphore>,
    max: u32,
}

impl AnswerBudget {
    /// A budget of `bytes` (at most `u32::MAX`).
    pub fn new(bytes: u64) -> Self {
        let max = u32::try_from(bytes).unwrap_or(u32::MAX).max(1);
        Self { bytes: Arc::new(Semaphore::new(usize::try_from(max).unwrap_or(usize::MAX))), max }
    }

    /// Waits until `bytes` (at most the whole budget) may be held, and holds them.
    pub async fn reserve(&self, bytes: usize) -> Result<Reserved, NodeError> {
        let wanted = u32::try_from(bytes).unwrap_or(u32::MAX).clamp(1, self.max);
        let permit =
            Arc::clone(&self.bytes).acquire_many_owned(wanted).await.map_err(|_| NodeError::ShuttingDown)?;
        Ok(Reserved { permit, budget: Arc::clone(&self.bytes) })
    }

    /// Bytes free now.
    pub fn available(&self) -> usize {
        self.bytes.available_permits()
    }
}

/// Bytes reserved in an [`AnswerBudget`] for one answer.
pub struct Reserved {
    permit: OwnedSemaphorePermit,
    budget: Arc<Semaphore>,
}

impl Reserved {
    /// `bytes` as an `application/octet-stream` answer holding exactly their length of the
    /// budget, and `also`, until they are freed (the unused rest is given back now; a longer
    /// answer takes what more it can get without waiting).
    pub fn octets<G: Send + 'static>(mut self, bytes: Vec<u8>, also: G) -> Response {
        let len = bytes.len().max(1);
        let held = self.permit.num_permits();
        if held > len {
            drop(self.permit.split(held - len));
        } else if held < len
            && let Ok(more) = Arc::clone(&self.budget)
                .try_acquire_many_owned(morsa_core::convert::saturating_u32(len - held))
        {
            self.permit.merge(more);
        }
        let body = morsa_api::server::owned_bytes(bytes, (self.permit, also));
        ([(header::CONTENT_TYPE, "application/octet-stream")], body).into_response()
    }
}

/// Recovery-batch answers per caller, computed or unread.
pub struct Callers {
    held: Arc<Mutex<HashMap<IpAddr, usize>>>,
    max: usize,
}

impl Callers {
    /// At most `max` answers per caller.
    pub fn new(max: usize) -> Self {
        Self { held: Arc::default(), max: max.max(1) }
    }

    /// Counts one more answer for `caller` until the returned guard drops; refuses past the
    /// bound. Callers of unknown address (in-process tests) share one count.
    pub fn enter(&self, caller: Option<IpAddr>) -> Result<CallerGuard, NodeError> {
        let caller = caller.unwrap_or(IpAddr::from([0, 0, 0, 0]));
        let mut held = self.held.lock().unwrap_or_else(PoisonError::into_inner);
        let count = held.entry(caller).or_default();
        if *count >= self.max {
            return Err(NodeError::CallerBusy { caller, max: self.max });
        }
        *count += 1;
        Ok(CallerGuard { held: Arc::clone(&self.held), caller })
    }
}

/// One answer counted for a caller.
pub struct CallerGuard {
    held: Arc<Mutex<HashMap<IpAddr, usize>>>,
    caller: IpAddr,
}

impl Drop for CallerGuard {
    fn drop(&mut self) {
        let mut held = self.held.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(count) = held.get_mut(&self.caller) {
            *count -= 1;
            if *count == 0 {
                held.remove(&self.caller);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn an_answer_holds_its_length_until_its_bytes_are_freed() {
        let budget = AnswerBudget::new(1000);
        let reserved = budget.reserve(600).await.unwrap();
        assert_eq!(budget.available(), 400);
        let response = reserved.octets(vec![1; 100], ());
        assert_eq!(budget.available(), 900, "the unused part goes back at once");
        drop(response);
        assert_eq!(budget.available(), 1000);
    }

    #[test]
    fn a_caller_holds_at_most_its_share() {
        let callers = Callers::new(2);
        let caller = Some(IpAddr::from([10, 0, 0, 1]));
        let first = callers.enter(caller).unwrap();
        let _second = callers.enter(caller).unwrap();
        assert!(matches!(callers.enter(caller), Err(NodeError::CallerBusy { .. })));
        assert!(callers.enter(Some(IpAddr::from([10, 0, 0, 2]))).is_ok(), "others are not affected");
        drop(first);
        assert!(callers.enter(caller).is_ok());
    }
}
