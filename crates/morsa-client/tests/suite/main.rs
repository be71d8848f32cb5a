//! The integration tests of this crate in one binary (one link instead of one per file:
//! most of a cold test build). Tests that measure the whole process (its memory, its
//! latency under load) stay in binaries of their own.
#![allow(clippy::unwrap_used)] // test helpers outside #[test] functions

mod common;

mod batch_reads;
mod batch_uploads;
mod hardening;
mod lying_node;
mod manifest_tag;
mod store_read;
mod stream_read;
