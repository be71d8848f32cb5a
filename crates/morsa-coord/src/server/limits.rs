//! What bounds the work a stranger can make the coordinator do: gates on expensive stages,
//! per-node report budgets, and parked long-polls.

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use tokio::sync::{Semaphore, SemaphorePermit, oneshot};

use crate::lock;

/// At most `permits` requests in a stage, and at most `max_waiting` waiting for it; the rest
/// are turned away at once.
pub(crate) struct Gate {
    permits: Semaphore,
    waiting: AtomicUsize,
    max_waiting: usize,
}

/// The stage is full.
#[derive(Debug)]
pub(crate) struct Busy;

impl Gate {
    pub(crate) fn new(permits: usize, max_waiting: usize) -> Self {
        Self { permits: Semaphore::new(permits), waiting: AtomicUsize::new(0), max_waiting }
    }

    /// Waits for a permit, unless too many already wait.
    pub(crate) async fn enter(&self) -> Result<SemaphorePermit<'_>, Busy> {
        if let Ok(permit) = self.permits.try_acquire() {
            return Ok(permit);
        }
        if self.waiting.fetch_add(1, Ordering::AcqRel) >= self.max_waiting {
            self.waiting.fetch_sub(1, Ordering::AcqRel);
            return Err(Busy);
        }
        let permit = self.permits.acquire().await;
        self.waiting.fetch_sub(1, Ordering::AcqRel);
        permit.map_err(|_| Busy)
    }
}

/// A token bucket per key (a node, a client address, or `()` for one global budget):
/// `burst` at once, then one more per `refill_ms`.
pub(crate) struct Budgets<K> {
    buckets: Mutex<HashMap<K, (f64, Instant)>>,
    burst: f64,
    per_ms: f64,
}

/// Buckets kept before full ones are forgotten (a full bucket is the same as none).
const MAX_BUCKETS: usize = 4096;

impl<K: std::hash::Hash + Eq + Copy> Budgets<K> {
    pub(crate) fn new(burst: u32, refill_ms: u32) -> Self {
        Self {
            buckets: Mutex::new(HashMap::new()),
            burst: f64::from(burst),
            per_ms: 1.0 / f64::from(refill_ms.max(1)),
        }
    }

    /// Whether `key` has a token left, without taking it.
    pub(crate) fn has(&self, key: &K) -> bool {
        let buckets = lock(&self.buckets);
        buckets
            .get(key)
            .is_none_or(|(tokens, at)| refilled(*tokens, *at, Instant::now(), self.burst, self.per_ms) >= 1.0)
    }

    /// Takes one token of `key`'s budget; false if it has none left.
    pub(crate) fn take(&self, key: &K) -> bool {
        let now = Instant::now();
        let mut buckets = lock(&self.buckets);
        if buckets.len() >= MAX_BUCKETS && !buckets.contains_key(key) {
            let (burst, per_ms) = (self.burst, self.per_ms);
            buckets.retain(|_, (tokens, at)| refilled(*tokens, *at, now, burst, per_ms) < burst);
        }
        let (tokens, at) = buckets.entry(*key).or_insert((self.burst, now));
        let available = refilled(*tokens, *at, now, self.burst, self.per_ms);
        *at = now;
        if available < 1.0 {
            *tokens = available;
            return false;
        }
        *tokens = available - 1.0;
        true
    }
}

fn refilled(tokens: f64, at: Instant, now: Instant, burst: f64, per_ms: f64) -> f64 {
    let elapsed_ms = now.saturating_duration_since(at).as_secs_f64() * 1000.0;
    (tokens + elapsed_ms * per_ms).min(burst)
}

/// Parked long-polls, keyed by the event count that answers them: a commit wakes only the
/// polls its events answer, not every poll.
pub(crate) struct Waiters {
    inner: Mutex<WaitersInner>,
    max_total: usize,
    max_per_address: usize,
}

#[derive(Default)]
struct WaitersInner {
    /// Events so far.
    count: u64,
    /// Polls waiting for the count to exceed the key.
    parked: BTreeMap<u64, Vec<(u64, oneshot::Sender<()>)>>,
    total: usize,
    per_address: HashMap<IpAddr, usize>,
    next_id: u64,
}

/// Why a poll may not park.
#[derive(Debug)]
pub(crate) enum ParkError {
    /// Too many polls are parked, in all or from this address.
    TooMany,
}

/// A parked poll: dropped, it leaves the registry.
pub(crate) struct Parked<'a> {
    waiters: &'a Waiters,
    key: u64,
    id: u64,
    address: Option<IpAddr>,
    /// Fires when the count exceeds `key`.
    pub(crate) woken: oneshot::Receiver<()>,
}

impl Waiters {
    pub(crate) fn new(count: u64, max_total: usize, max_per_address: usize) -> Self {
        let inner = WaitersInner { count, ..WaitersInner::default() };
        Self { inner: Mutex::new(inner), max_total, max_per_address }
    }

    /// Parks a poll until the count exceeds `after_count`; `None` if it already does.
    pub(crate) fn park(
        &self,
        after_count: u64,
        address: Option<IpAddr>,
    ) -> Result<Option<Parked<'_>>, ParkError> {
        let mut inner = lock(&self.inner);
        if inner.count > after_count {
            return Ok(None);
        }
        let from_address = address.map_or(0, |address| inner.per_address.get(&address).copied().unwrap_or(0));
        if inner.total >= self.max_total || from_address >= self.max_per_address {
            return Err(ParkError::TooMany);
        }
        let (wake, woken) = oneshot::channel();
        let id = inner.next_id;
        inner.next_id = inner.next_id.wrapping_add(1);
        inner.parked.entry(after_count).or_default().push((id, wake));
        inner.total += 1;
        if let Some(address) = address {
            *inner.per_address.entry(address).or_default() += 1;
        }
        Ok(Some(Parked { waiters: self, key: after_count, id, address, woken }))
    }

    /// Publishes the event count and wakes the polls it answers.
    pub(crate) fn publish(&self, count: u64) {
        let mut inner = lock(&self.inner);
        inner.count = count;
        let still_waiting = inner.parked.split_off(&count);
        let answered = std::mem::replace(&mut inner.parked, still_waiting);
        drop(inner);
        // The woken polls leave the registry when they drop their `Parked`.
        for (_, wake) in answered.into_values().flatten() {
            let _ = wake.send(());
        }
    }

    /// Polls parked now.
    pub(crate) fn parked(&self) -> usize {
        lock(&self.inner).total
    }
}

impl Drop for Parked<'_> {
    fn drop(&mut self) {
        let mut inner = lock(&self.waiters.inner);
        if let Some(list) = inner.parked.get_mut(&self.key) {
            list.retain(|(id, _)| *id != self.id);
            if list.is_empty() {
                inner.parked.remove(&self.key);
            }
        }
        inner.total = inner.total.saturating_sub(1);
        if let Some(address) = self.address
            && let Some(count) = inner.per_address.get_mut(&address)
        {
            *count = count.saturating_sub(1);
            if *count == 0 {
                inner.per_address.remove(&address);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use morsa_core::NodeId;

    use super::*;

    #[test]
    fn a_commit_wakes_only_the_polls_it_answers() {
        let waiters = Waiters::new(5, 100, 100);
        let mut near = waiters.park(5, None).unwrap().unwrap();
        let mut far = waiters.park(7, None).unwrap().unwrap();
        waiters.publish(6);
        assert!(near.woken.try_recv().is_ok(), "the poll for event 5 is answered by count 6");
        assert_eq!(
            far.woken.try_recv(),
            Err(oneshot::error::TryRecvError::Empty),
            "the poll for event 7 is not woken by count 6 (and its sender is still there)"
        );
        drop(near);
        assert_eq!(waiters.parked(), 1);
        drop(far);
        assert_eq!(waiters.parked(), 0);
        assert!(waiters.park(5, None).unwrap().is_none(), "already answered: no parking");
    }

    #[test]
    fn parked_polls_are_bounded_in_all_and_per_address() {
        let waiters = Waiters::new(0, 3, 2);
        let a = Some(IpAddr::from([10, 0, 0, 1]));
        let b = Some(IpAddr::from([10, 0, 0, 2]));
        let first = waiters.park(0, a).unwrap();
        let _second = waiters.park(0, a).unwrap();
        assert!(matches!(waiters.park(0, a), Err(ParkError::TooMany)), "per address");
        let _third = waiters.park(0, b).unwrap();
        assert!(matches!(waiters.park(0, b), Err(ParkError::TooMany)), "in all");
        drop(first);
        assert!(waiters.park(0, a).is_ok(), "a slot freed by a finished poll is reused");
    }

    #[test]
    fn a_node_budget_runs_out_and_is_per_node() {
        let budgets = Budgets::new(3, 60_000);
        let (a, b) = (NodeId([1; 32]), NodeId([2; 32]));
        assert!((0..3).all(|_| budgets.take(&a)));
        assert!(!budgets.has(&a) && !budgets.take(&a));
        assert!(budgets.has(&b) && budgets.take(&b));
    }
}
