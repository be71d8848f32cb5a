//! The node's copy of the coordinator's open challenge round.

use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock, RwLock};
use std::time::{Duration, Instant};

use morsa_api::client::CoordClient;
use morsa_api::coord::{ChallengeTarget, OpenChallengeRound};
use morsa_core::{Epoch, NodeId};
use redstuff::{BlobId, SliverType};

use crate::metrics::ChallengeCounts;

/// Shortest time between two refreshes asked for by requests naming an unknown round.
const MIN_REFRESH: Duration = Duration::from_millis(500);

/// The open round as last fetched, with the slivers it challenges.
#[derive(Debug)]
pub(crate) struct RoundView {
    /// The round.
    pub open: OpenChallengeRound,
    /// `(blob, sliver type, sliver index)` of every challenged sliver, of every target.
    challenged: HashSet<(BlobId, SliverType, u16)>,
}

impl RoundView {
    /// The view of `open` in a system of `n_shards`.
    pub fn new(open: OpenChallengeRound, n_shards: u16) -> Self {
        let challenged = open
            .targets
            .iter()
            .flat_map(|target| &target.items)
            .flat_map(|item| {
                [
                    (item.blob_id, SliverType::Primary, item.pair.0),
                    (item.blob_id, SliverType::Secondary, item.pair.secondary_sliver_index(n_shards)),
                ]
            })
            .collect();
        Self { open, challenged }
    }

    /// The challenges of `node` in this round, if it is challenged.
    pub fn target(&self, node: &NodeId) -> Option<&ChallengeTarget> {
        self.open.targets.iter().find(|target| target.node == *node)
    }

    /// Whether this is round `round` of `epoch`.
    pub fn is(&self, epoch: Epoch, round: u32) -> bool {
        self.open.epoch == epoch && self.open.round == round
    }
}

/// What the node has done for challenges, for `/metrics`.
#[derive(Debug, Default)]
pub(crate) struct ChallengeStats {
    pub answered: AtomicU64,
    pub audits: AtomicU64,
    pub audited_challenges: AtomicU64,
    pub failures_found: AtomicU64,
    pub disputes: AtomicU64,
    pub recovery_refused: AtomicU64,
}

/// Adds `count` to `counter`.
pub(crate) fn add(counter: &AtomicU64, count: usize) {
    counter.fetch_add(morsa_core::convert::saturating_u64(count), Ordering::Relaxed);
}

/// The coordinator's open round as this node last saw it.
pub(crate) struct Rounds {
    n_shards: u16,
    coord: OnceLock<CoordClient>,
    open: RwLock<Option<Arc<RoundView>>>,
    /// When a request last made the node refresh (serialises those refreshes, too).
    asked_refresh: tokio::sync::Mutex<Option<Instant>>,
    pub stats: ChallengeStats,
}

impl Rounds {
    /// No round known yet, in a system of `n_shards`.
    pub fn new(n_shards: u16) -> Self {
        Self {
            n_shards,
            coord: OnceLock::new(),
            open: RwLock::new(None),
            asked_refresh: tokio::sync::Mutex::new(None),
            stats: ChallengeStats::default(),
        }
    }

    /// Where rounds are fetched from; set once, by the server.
    pub fn set_coordinator(&self, coord: CoordClient) {
        let _ = self.coord.set(coord);
    }

    /// The open round as last fetched.
    pub fn current(&self) -> Option<Arc<RoundView>> {
        self.open.read().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
    }

    /// Replaces the copy (tests, and [`Rounds::refresh`]).
    pub fn set(&self, open: Option<OpenChallengeRound>) -> Option<Arc<RoundView>> {
        let view = open.map(|open| Arc::new(RoundView::new(open, self.n_shards)));
        *self.open.write().unwrap_or_else(std::sync::PoisonError::into_inner) = view.clone();
        view
    }

    /// Fetches the open round from the coordinator; keeps the old copy if it does not answer.
    pub async fn refresh(&self) -> Option<Arc<RoundView>> {
        let coord = self.coord.get()?;
        match coord.challenges(None).await {
            Ok(info) => self.set(info.open),
            Err(error) => {
                tracing::debug!(%error, "cannot fetch the open challenge round");
                self.current()
            }
        }
    }

    /// Round `round` of `epoch` if it is the open one: from the copy, or, when the copy is of
    /// an earlier round, from a refresh (at most one per [`MIN_REFRESH`]).
    pub async fn open_round(&self, epoch: Epoch, round: u32) -> Option<Arc<RoundView>> {
        let current = self.current();
        if let Some(view) = current.as_ref().filter(|view| view.is(epoch, round)) {
            return Some(Arc::clone(view));
        }
        let newer = current.as_ref().is_none_or(|view| (epoch, round) > (view.open.epoch, view.open.round));
        if !newer {
            return None;
        }
        let mut asked = self.asked_refresh.lock().await;
        if asked.is_none_or(|at| at.elapsed() >= MIN_REFRESH) {
            *asked = Some(Instant::now());
            self.refresh().await;
        }
        drop(asked);
        self.current().filter(|view| view.is(epoch, round))
    }

    /// Whether the `kind` sliver `index` of `blob_id` is challenged in the open round.
    pub fn is_challenged(&self, blob_id: &BlobId, kind: SliverType, index: u16) -> bool {
        self.current().is_some_and(|view| view.challenged.contains(&(*blob_id, kind, index)))
    }

    /// The counters, for `/metrics`.
    pub fn counts(&self) -> ChallengeCounts {
        let read = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        let stats = &self.stats;
        ChallengeCounts {
            answered: read(&stats.answered),
            audits: read(&stats.audits),
            audited_challenges: read(&stats.audited_challenges),
            failures_found: read(&stats.failures_found),
            disputes: read(&stats.disputes),
            recovery_refused: read(&stats.recovery_refused),
        }
    }
}
