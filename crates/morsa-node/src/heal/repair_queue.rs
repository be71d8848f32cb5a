//! The queue of missing slivers, by blob, most at risk first.
//!
//! Risk is the blob's *availability margin* where it is known: the shards not known to be
//! failing, minus the `n − 2f` a reader needs. Two estimates are kept and the smaller one
//! counts:
//!
//! - the **system-wide** margin the coordinator answers this node's availability summaries
//!   with (`availability`): it counts the shards every node reports lacking the blob and the
//!   shards of nodes not reporting, so it is known before the first attempt;
//! - the margin the last **attempt** saw: `n` minus the shards of the peers that did not answer
//!   (failed, timed out, or did not hold the blob) minus this node's own missing shards, minus
//!   `n − 2f`.
//!
//! Due blobs with the smallest known margin go first, then blobs of unknown margin, each group
//! by due time.
//!
//! Bounded: at most `max_slivers` slivers are queued or in flight; the rest are dropped and
//! counted, and found again by the next scan. A failed sliver comes back with exponential
//! backoff (one second doubling up to a minute) and is dropped after `max_attempts`.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::time::{Duration, Instant};

use morsa_store::SliverKind;
use redstuff::BlobId;

/// One missing sliver of an owned shard.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Missing {
    /// The blob.
    pub blob_id: BlobId,
    /// The shard it is missing in.
    pub shard: u16,
    /// Which sliver of the shard's pair.
    pub kind: SliverKind,
}

/// Slivers of one blob taken from the queue to rebuild.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Job {
    /// The blob.
    pub blob_id: BlobId,
    /// Its missing slivers: shard and kind.
    pub missing: Vec<(u16, SliverKind)>,
    /// Failed attempts so far.
    pub attempts: u32,
    /// Bytes of one sliver of each kind (estimated), for the backlog's byte count.
    pub sliver_bytes: u64,
}

#[derive(Debug)]
struct Entry {
    missing: BTreeSet<(u16, SliverKind)>,
    due: Instant,
    attempts: u32,
    sliver_bytes: u64,
    /// The system-wide margin, as last answered.
    system_margin: Option<u32>,
    /// The margin the last attempt saw.
    tried_margin: Option<u32>,
}

impl Entry {
    /// The smaller known margin.
    fn margin(&self) -> Option<u32> {
        match (self.system_margin, self.tried_margin) {
            (Some(system), Some(tried)) => Some(system.min(tried)),
            (system, tried) => system.or(tried),
        }
    }
}

type Key = (u32, Instant, BlobId);

fn key(blob_id: BlobId, entry: &Entry) -> Key {
    (entry.margin().unwrap_or(u32::MAX), entry.due, blob_id)
}

/// The queue (see the module docs).
#[derive(Debug)]
pub struct RepairQueue {
    entries: HashMap<BlobId, Entry>,
    order: BTreeMap<Key, ()>,
    in_flight: HashSet<Missing>,
    /// The system-wide margins last answered (replaced as a whole by each answer).
    system_margins: HashMap<BlobId, u32>,
    queued: usize,
    max_slivers: usize,
    max_attempts: u32,
    /// Slivers dropped because the queue was full.
    pub dropped: u64,
    /// Slivers dropped after their last attempt.
    pub given_up: u64,
}

/// First and longest pause before a failed sliver is tried again.
const FIRST_RETRY: Duration = Duration::from_secs(1);
const MAX_RETRY: Duration = Duration::from_secs(60);

impl RepairQueue {
    /// An empty queue of at most `max_slivers`, trying each at most `max_attempts` times.
    pub fn new(max_slivers: usize, max_attempts: u32) -> Self {
        Self {
            entries: HashMap::new(),
            order: BTreeMap::new(),
            in_flight: HashSet::new(),
            system_margins: HashMap::new(),
            queued: 0,
            max_slivers: max_slivers.max(1),
            max_attempts: max_attempts.max(1),
            dropped: 0,
            given_up: 0,
        }
    }

    /// Queues `missing` slivers of `blob_id`, due at `due` (an earlier due time of slivers
    /// already queued wins). Slivers queued or in flight already are skipped. Returns how many
    /// were added.
    pub fn push(
        &mut self,
        blob_id: BlobId,
        missing: impl IntoIterator<Item = (u16, SliverKind)>,
        due: Instant,
        sliver_bytes: u64,
    ) -> usize {
        let mut added = 0;
        let (queued, max_slivers, in_flight) = (&mut self.queued, self.max_slivers, &self.in_flight);
        let mut entry = match self.entries.remove(&blob_id) {
            Some(entry) => {
                self.order.remove(&key(blob_id, &entry));
                entry
            }
            None => Entry {
                missing: BTreeSet::new(),
                due,
                attempts: 0,
                sliver_bytes,
                system_margin: self.system_margins.get(&blob_id).copied(),
                tried_margin: None,
            },
        };
        entry.due = entry.due.min(due);
        for (shard, kind) in missing {
            if in_flight.contains(&Missing { blob_id, shard, kind }) || entry.missing.contains(&(shard, kind))
            {
                continue;
            }
            if *queued + in_flight.len() >= max_slivers {
                self.dropped += 1;
                continue;
            }
            entry.missing.insert((shard, kind));
            *queued += 1;
            added += 1;
        }
        if !entry.missing.is_empty() {
            self.order.insert(key(blob_id, &entry), ());
            self.entries.insert(blob_id, entry);
        }
        added
    }

    /// Takes due slivers, most at risk first, at most `max` of them (whole blobs, except that
    /// one larger blob may be split), and counts them in flight.
    pub fn take_due(&mut self, now: Instant, max: usize) -> Vec<Job> {
        let mut jobs = Vec::new();
        let mut taken = 0;
        let due: Vec<Key> =
            self.order.keys().filter(|(_, due, _)| *due <= now).take(max.max(1)).copied().collect();
        for order_key in due {
            if taken >= max {
                break;
            }
            let blob_id = order_key.2;
            let Some(mut entry) = self.entries.remove(&blob_id) else { continue };
            self.order.remove(&order_key);
            let mut missing = Vec::new();
            while taken < max {
                let Some(sliver) = entry.missing.pop_first() else { break };
                missing.push(sliver);
                taken += 1;
            }
            self.queued -= missing.len();
            for (shard, kind) in &missing {
                self.in_flight.insert(Missing { blob_id, shard: *shard, kind: *kind });
            }
            jobs.push(Job { blob_id, missing, attempts: entry.attempts, sliver_bytes: entry.sliver_bytes });
            if !entry.missing.is_empty() {
                self.order.insert(key(blob_id, &entry), ());
                self.entries.insert(blob_id, entry);
            }
        }
        jobs
    }

    /// Ends the flight of `job`'s slivers: those in `failed` come back with backoff (or are
    /// given up), with the blob's margin now `margin` if known.
    pub fn finish(&mut self, job: &Job, failed: &[(u16, SliverKind)], margin: Option<u32>, now: Instant) {
        for (shard, kind) in &job.missing {
            self.in_flight.remove(&Missing { blob_id: job.blob_id, shard: *shard, kind: *kind });
        }
        if failed.is_empty() {
            return;
        }
        let attempts = job.attempts + 1;
        if attempts >= self.max_attempts {
            self.given_up += morsa_core::convert::saturating_u64(failed.len());
            return;
        }
        let backoff = FIRST_RETRY.saturating_mul(1 << (attempts - 1).min(6)).min(MAX_RETRY);
        self.push(job.blob_id, failed.iter().copied(), now + backoff, job.sliver_bytes);
        if let Some(mut entry) = self.entries.remove(&job.blob_id) {
            self.order.remove(&key(job.blob_id, &entry));
            entry.attempts = entry.attempts.max(attempts);
            entry.tried_margin = margin.or(entry.tried_margin);
            self.order.insert(key(job.blob_id, &entry), ());
            self.entries.insert(job.blob_id, entry);
        }
    }

    /// Takes the system-wide margins of an availability answer: queued blobs are ordered by
    /// them from now on, and so are blobs queued later, until the next answer replaces them.
    pub fn set_system_margins(&mut self, margins: HashMap<BlobId, u32>) {
        for (blob_id, entry) in &mut self.entries {
            let margin = margins.get(blob_id).copied();
            if entry.system_margin != margin {
                self.order.remove(&key(*blob_id, entry));
                entry.system_margin = margin;
                self.order.insert(key(*blob_id, entry), ());
            }
        }
        self.system_margins = margins;
    }

    /// The system-wide margins last answered.
    pub fn system_margins(&self) -> &HashMap<BlobId, u32> {
        &self.system_margins
    }

    /// Removes `blob_id`'s queued slivers (it is no longer certified, or proven invalid).
    pub fn forget(&mut self, blob_id: &BlobId) {
        if let Some(entry) = self.entries.remove(blob_id) {
            self.order.remove(&key(*blob_id, &entry));
            self.queued -= entry.missing.len();
        }
    }

    /// When the next queued sliver is due.
    pub fn next_due(&self) -> Option<Instant> {
        self.entries.values().map(|entry| entry.due).min()
    }

    /// Slivers queued (not in flight).
    pub fn len(&self) -> usize {
        self.queued
    }

    /// Whether nothing is queued.
    pub fn is_empty(&self) -> bool {
        self.queued == 0
    }

    /// Slivers in flight.
    pub fn is_in_flight(&self, target: &Missing) -> bool {
        self.in_flight.contains(target)
    }

    /// Slivers being rebuilt now.
    pub fn in_flight(&self) -> usize {
        self.in_flight.len()
    }

    /// Estimated bytes of the queued slivers.
    pub fn bytes(&self) -> u64 {
        self.entries
            .values()
            .map(|entry| entry.sliver_bytes.saturating_mul(u64::try_from(entry.missing.len()).unwrap_or(0)))
            .sum()
    }

    /// The smallest known margin of a queued blob.
    pub fn lowest_margin(&self) -> Option<u32> {
        self.order.keys().next().map(|(margin, _, _)| *margin).filter(|margin| *margin != u32::MAX)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const P: SliverKind = SliverKind::Primary;
    const S: SliverKind = SliverKind::Secondary;

    #[test]
    fn due_blobs_go_most_at_risk_first_and_failures_come_back_later() {
        let now = Instant::now();
        let mut queue = RepairQueue::new(5, 2);
        let (a, b, c) = (BlobId([1; 32]), BlobId([2; 32]), BlobId([3; 32]));
        assert_eq!(queue.push(a, [(0, P), (0, S)], now, 10), 2);
        assert_eq!(queue.push(b, [(1, P)], now, 10), 1);
        // Not due yet: in its grace period.
        assert_eq!(queue.push(c, [(2, P)], now + Duration::from_secs(10), 10), 1);
        // Full: one more is dropped, a duplicate is skipped.
        assert_eq!(queue.push(c, [(2, P), (3, P), (4, P)], now, 10), 1);
        assert_eq!((queue.len(), queue.dropped, queue.bytes()), (5, 1, 50));

        let jobs = queue.take_due(now, 2);
        assert_eq!(jobs.len(), 1);
        assert_eq!(jobs[0].missing, [(0, P), (0, S)]);
        assert_eq!((queue.len(), queue.in_flight()), (3, 2));
        // While in flight, a scan does not queue them again.
        assert_eq!(queue.push(a, [(0, P)], now, 10), 0);
        // One failed: it comes back after a second, with a known low margin.
        queue.finish(&jobs[0], &[(0, S)], Some(1), now);
        assert_eq!((queue.len(), queue.in_flight()), (4, 0));
        assert_eq!(queue.lowest_margin(), Some(1));
        let later = now + Duration::from_secs(2);
        let order: Vec<BlobId> = queue.take_due(later, 10).iter().map(|job| job.blob_id).collect();
        assert_eq!(order, [a, b, c], "the blob with a known low margin first");
    }

    #[test]
    fn the_system_wide_margin_orders_blobs_before_any_attempt_and_the_smaller_estimate_counts() {
        let now = Instant::now();
        let mut queue = RepairQueue::new(100, 4);
        // Blob `wide` lacks slivers on many nodes (system margin 1), `here` only on this one
        // (margin 5), `unknown` was not in the answer. `here` has the earlier due time and the
        // smaller ID, so without the system view it would go first.
        let (here, wide, unknown) = (BlobId([1; 32]), BlobId([2; 32]), BlobId([0; 32]));
        queue.set_system_margins(HashMap::from([(wide, 1), (here, 5)]));
        queue.push(unknown, [(0, P)], now, 10);
        queue.push(here, [(0, P)], now, 10);
        queue.push(wide, [(0, P)], now + Duration::from_millis(1), 10);
        let later = now + Duration::from_secs(1);
        let first: Vec<BlobId> = queue.take_due(later, 1).iter().map(|job| job.blob_id).collect();
        assert_eq!(first, [wide], "the blob missing in most places goes first, on its first attempt");
        let rest: Vec<BlobId> = queue.take_due(later, 10).iter().map(|job| job.blob_id).collect();
        assert_eq!(rest, [here, unknown]);

        // A new answer re-orders what is queued; an attempt that saw a smaller margin wins.
        let mut queue = RepairQueue::new(100, 4);
        queue.push(here, [(0, P)], now, 10);
        queue.push(wide, [(0, P)], now, 10);
        queue.set_system_margins(HashMap::from([(wide, 0), (here, 3)]));
        assert_eq!(queue.lowest_margin(), Some(0));
        let order: Vec<BlobId> = queue.take_due(now, 10).iter().map(|job| job.blob_id).collect();
        assert_eq!(order, [wide, here]);
        let job = Job { blob_id: here, missing: vec![(0, P)], attempts: 0, sliver_bytes: 10 };
        queue.finish(&job, &[(0, P)], Some(2), now);
        queue.set_system_margins(HashMap::from([(here, 4)]));
        assert_eq!(queue.lowest_margin(), Some(2), "the attempt's smaller margin counts");
    }

    #[test]
    fn slivers_are_given_up_after_their_last_attempt() {
        let now = Instant::now();
        let mut queue = RepairQueue::new(10, 2);
        let blob = BlobId([1; 32]);
        queue.push(blob, [(0, P)], now, 1);
        let job = queue.take_due(now, 10).remove(0);
        queue.finish(&job, &[(0, P)], None, now);
        let job = queue.take_due(now + MAX_RETRY, 10).remove(0);
        assert_eq!(job.attempts, 1);
        queue.finish(&job, &[(0, P)], None, now);
        assert!(queue.is_empty());
        assert_eq!(queue.given_up, 1);
    }
}
