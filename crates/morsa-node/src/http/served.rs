//! What the handlers share: the node, the self-healing engine, the pending-upload buffer,
//! the upload permits, the answer budget and the admin token.

use std::sync::{Arc, OnceLock};
use std::time::Instant;

use tokio::sync::{Semaphore, SemaphorePermit};

use crate::challenge::Rounds;
use crate::config::Limits;
use crate::disk::Disk;
use crate::error::NodeError;
use crate::heal::Repairer;
use crate::http::admin_token::AdminToken;
use crate::http::answers::{AnswerBudget, Callers};
use crate::http::reply::ApiError;
use crate::metrics::Metrics;
use crate::node::Node;
use crate::pending::PendingBuffer;

/// What the handlers share.
pub struct Served {
    pub(super) node: Arc<Node>,
    pub(super) uploads: Semaphore,
    /// Permits of `uploads` in all.
    max_uploads: usize,
    pub(super) started: Instant,
    pub(super) metrics: Metrics,
    pub(super) pending: Arc<PendingBuffer>,
    pub(super) repair: Arc<Repairer>,
    /// Memory of answers until they are written.
    pub(super) answers: AnswerBudget,
    /// Recovery-batch answers per caller.
    pub(super) callers: Callers,
    /// Inconsistency proofs verified at once.
    pub(super) proofs: Semaphore,
    /// Largest recovery-batch answer built.
    pub(super) max_recovery_answer: usize,
    /// The admin routes' token; until one is set they refuse everyone.
    pub(super) admin: OnceLock<AdminToken>,
    /// Requests being served now: the load figure every answer carries
    /// ([`morsa_api::node::LOAD_HEADER`]).
    pub(super) in_flight: std::sync::atomic::AtomicU32,
    /// The open challenge round as last fetched.
    pub(super) rounds: Arc<Rounds>,
    /// The filesystem of the database, and the room kept free on it.
    pub(super) disk: Disk,
}

impl Served {
    /// The node served.
    pub fn node(&self) -> &Arc<Node> {
        &self.node
    }

    /// The buffer of uploads waiting for their registration.
    pub(crate) fn pending(&self) -> &Arc<PendingBuffer> {
        &self.pending
    }

    /// Uploads held for blobs whose registration has not arrived yet.
    pub fn pending_uploads(&self) -> usize {
        self.pending.len()
    }

    /// The repair engine (blob sync, repair queue, scrubber, on-demand rebuilds).
    pub(crate) fn repair(&self) -> &Arc<Repairer> {
        &self.repair
    }

    /// Runs the node's background `work` (answers to peers' recovery requests, shard pages for
    /// their new owner) on its low-priority pool (see `blocking`).
    pub(super) async fn background<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> Result<T, NodeError> + Send + 'static,
    ) -> Result<T, ApiError> {
        Ok(self.repair.background.run(work).await?)
    }

    /// The open challenge round as last fetched.
    pub(crate) fn rounds(&self) -> &Arc<Rounds> {
        &self.rounds
    }

    /// Upload permits free now.
    pub fn upload_permits_available(&self) -> usize {
        self.uploads.available_permits()
    }

    /// Bytes of the answer budget free now.
    pub fn answer_budget_available(&self) -> usize {
        self.answers.available()
    }

    /// Serves `node` within `limits`; self-healing as `limits.repair` says. The admin routes
    /// refuse everyone until [`Served::set_admin_token`].
    pub fn new(node: Arc<Node>, limits: &Limits) -> Arc<Self> {
        let rounds = Arc::new(Rounds::new(u16::try_from(node.config().n_shards()).unwrap_or(u16::MAX)));
        let disk = Disk::new(node.store().path(), limits.min_free_disk_bytes);
        if let Some(figures) = disk.health()
            && figures.free_bytes < figures.reserve_bytes
        {
            tracing::warn!(
                free_bytes = figures.free_bytes,
                reserve_bytes = figures.reserve_bytes,
                "less is free on the database's disk than the node keeps (limits.min_free_disk_bytes): \
                 every upload is refused until room is made"
            );
        }
        Arc::new(Self {
            repair: Arc::new(Repairer::new(Arc::clone(&node), limits.repair)),
            node,
            uploads: Semaphore::new(limits.max_concurrent_uploads),
            max_uploads: limits.max_concurrent_uploads.max(1),
            started: Instant::now(),
            metrics: Metrics::default(),
            pending: Arc::new(PendingBuffer::new(
                limits.pending_buffer_bytes,
                limits.pending_buffer_entries,
                std::time::Duration::from_millis(limits.pending_ttl_ms),
            )),
            answers: AnswerBudget::new(limits.answer_buffer_bytes),
            callers: Callers::new(limits.max_recovery_answers_per_caller),
            proofs: Semaphore::new(limits.max_concurrent_proofs.max(1)),
            max_recovery_answer: morsa_core::convert::saturating_usize(limits.max_recovery_answer_bytes),
            admin: OnceLock::new(),
            in_flight: std::sync::atomic::AtomicU32::new(0),
            rounds,
            disk,
        })
    }

    /// Sets the token the admin routes require (see `admin`); the first one set stays.
    pub fn set_admin_token(&self, token: AdminToken) {
        let _ = self.admin.set(token);
    }

    pub(super) async fn upload_permit(&self) -> Result<SemaphorePermit<'_>, ApiError> {
        self.upload_permits(1).await
    }

    /// `count` upload permits (at most all of them): a batch upload holding as many largest
    /// slivers' worth of bytes takes as many, so uploads in memory keep their bound. Refused
    /// while the disk has less free space than the node keeps (see `disk`).
    pub(super) async fn upload_permits(&self, count: usize) -> Result<SemaphorePermit<'_>, ApiError> {
        self.disk.check_room(self.pending.bytes())?;
        let count = u32::try_from(count.clamp(1, self.max_uploads)).unwrap_or(u32::MAX);
        self.uploads.acquire_many(count).await.map_err(|_| ApiError::from(NodeError::ShuttingDown))
    }
}
