//! The integration tests of this crate in one binary (one link instead of one per file:
//! most of a cold test build). Tests that measure the whole process (its memory, its
//! latency under load) stay in binaries of their own.
#![allow(clippy::unwrap_used)] // test helpers outside #[test] functions

mod common;
#[path = "../hardened/mod.rs"]
mod hardened;

mod challenges;
mod claims;
mod disk_reserve;
mod hardening;
mod read_batch;
mod recovery;
mod repair;
mod routes;
mod stored_corruption;
mod upload_batch;
