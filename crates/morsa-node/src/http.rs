//! The node's HTTP side: the routes as Walrus's storage node has them, served by the bounded
//! accept loop of `morsa_api::server` (connection cap, header-read, idle and write timeouts).
//!
//! Uploads take their concurrency permit and have their blob's registration (or room in the
//! pending buffer) checked before their body is read, and are verified on blocking threads, at
//! most `max_concurrent_uploads` at a time; every request has a timeout. Answers that hold
//! memory until they are written (slivers, recovery symbols) hold part of the answer budget
//! until then (see `answers`).
//!
//! - `router`: every route and the layers they share; `served`: the state they share.
//! - `reply`: errors as stable codes, blocking work, bounded body reads.
//! - `uploads`, `upload_batch` (a blob's slivers in one request), `reads`, `symbols`
//!   (recovery symbols and inconsistency proofs for peers),
//!   `health` (health and metrics), `committee` (the committee it follows, for clients without
//!   a coordinator), `migration` (shard pages for a shard's new owner), `admin` with
//!   `admin_token`.
//! - `challenge`: this node's answers to the open challenge round, for its auditor.
//! - `answers`: the memory answers hold until written.

mod admin;
pub(crate) mod admin_token;
mod answers;
mod challenge;
mod committee;
mod health;
mod migration;
mod read_batch;
mod reads;
pub(crate) mod reply;
mod router;
mod served;
mod symbols;
mod upload_batch;
mod uploads;

pub use admin_token::AdminToken;
pub use router::router;
pub use served::Served;
