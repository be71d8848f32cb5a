//! The integration tests of this crate in one binary (one link instead of one per file:
//! most of a cold test build). Tests that measure the whole process (its memory, its
//! latency under load) stay in binaries of their own.
#![allow(clippy::unwrap_used)] // test helpers outside #[test] functions

#[path = "../common/mod.rs"]
mod common;

mod apportion;
mod audit;
mod batch;
mod data_dir;
mod delegation;
mod domains;
mod event_chain;
mod hardening;
mod lifecycle;
mod no_overflow;
mod rules;
mod server;
mod simulation;
