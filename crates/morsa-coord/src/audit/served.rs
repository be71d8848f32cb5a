//! The audit of a running replica (`morsa coord audit --url`): the same replay as for a data
//! directory, fed with the log pages the replica serves ([`LogPage`]), and a check of the
//! event chain it serves against the one the replay derived.

use morsa_api::coord::LogPage;

use super::{AuditError, AuditReport, Auditor, hex};
use crate::{Digest, EventRecord, Genesis, genesis_hash};

/// A replay fed page by page with a replica's recorded entries.
pub struct PagedAudit {
    auditor: Auditor,
    expected_genesis: String,
    next: u64,
}

impl PagedAudit {
    /// Starts a replay on top of `genesis`.
    ///
    /// # Errors
    ///
    /// As the start of [`super::audit_log`]: an invalid genesis or its first committee.
    pub fn new(genesis: &Genesis) -> Result<Self, AuditError> {
        Ok(Self { auditor: Auditor::new(genesis)?, expected_genesis: hex(&genesis_hash(genesis)), next: 0 })
    }

    /// The sequence number of the next entry to feed (ask for the page starting there).
    pub fn next(&self) -> u64 {
        self.next
    }

    /// Checks and replays the entries of `page`, which must start at [`Self::next`] and belong
    /// to the genesis; answers how many it replayed.
    ///
    /// # Errors
    ///
    /// [`AuditError::GenesisMismatch`], [`AuditError::ServedPage`] for a page that starts
    /// elsewhere or an entry that is not hex, else as [`super::audit_log`] for the entry.
    pub fn page(&mut self, page: &LogPage) -> Result<usize, AuditError> {
        if page.genesis_hash != self.expected_genesis {
            return Err(AuditError::GenesisMismatch {
                expected: self.expected_genesis.clone(),
                found: page.genesis_hash.clone(),
            });
        }
        if page.from != self.next {
            let problem = format!("the page starts at entry {} where {} was asked", page.from, self.next);
            return Err(AuditError::ServedPage { seq: self.next, problem });
        }
        for entry in &page.entries {
            let seq = self.next;
            let bytes = ::hex::decode(entry).map_err(|error| AuditError::ServedPage {
                seq,
                problem: format!("the entry is not hex: {error}"),
            })?;
            self.auditor.entry(seq, &bytes)?;
            self.next += 1;
        }
        Ok(page.entries.len())
    }

    /// What the replay found so far.
    pub fn report(&self) -> AuditReport {
        self.auditor.report()
    }
}

/// Follows the event chain a replica serves, page by page, and checks it against a replay.
#[derive(Debug, Default)]
pub struct ServedEvents {
    next: u64,
    head: Digest,
}

impl ServedEvents {
    /// A check that expects event 0 first.
    pub fn new() -> Self {
        Self::default()
    }

    /// Events checked so far.
    pub fn checked(&self) -> u64 {
        self.next
    }

    /// Checks `records`, which must continue the chain checked so far.
    ///
    /// # Errors
    ///
    /// [`AuditError::ServedEvent`] naming the first event out of place or whose hash is wrong.
    pub fn records(&mut self, records: &[EventRecord]) -> Result<(), AuditError> {
        for record in records {
            if record.seq != self.next {
                let problem = format!("served as event {} where {} comes next", record.seq, self.next);
                return Err(AuditError::ServedEvent { event: self.next, problem });
            }
            if !record.verifies_after(&self.head) {
                let problem = "its hash is wrong or it does not follow the previous event".to_owned();
                return Err(AuditError::ServedEvent { event: record.seq, problem });
            }
            self.head = record.hash;
            self.next += 1;
        }
        Ok(())
    }

    /// Checks that the served chain, up to the replay's last event, ends where the replay's
    /// does: every served event is then the one the log produced.
    ///
    /// # Errors
    ///
    /// [`AuditError::ServedEvent`] if fewer events were checked or the heads differ.
    pub fn matches(&self, report: &AuditReport) -> Result<(), AuditError> {
        if self.next != report.events {
            let problem =
                format!("the replica served {} events where the log gives {}", self.next, report.events);
            return Err(AuditError::ServedEvent { event: self.next, problem });
        }
        if hex(&self.head) != report.event_head {
            let problem = format!(
                "the served chain ends at {} where the replayed log ends at {}",
                hex(&self.head),
                report.event_head
            );
            return Err(AuditError::ServedEvent { event: self.next.saturating_sub(1), problem });
        }
        Ok(())
    }
}
