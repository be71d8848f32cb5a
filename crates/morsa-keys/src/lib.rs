//! Morsa's key material.
//!
//! - [`slip39`]: SLIP-39 mnemonic shares, so that the root secret survives the loss of any
//!   one person or machine.
//!
//! This crate owns secrets and their formats; it does no network I/O and knows nothing of
//! blobs (encrypting blobs is `morsa-client`'s).

pub mod slip39;
