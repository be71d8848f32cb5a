//! Feeds arbitrary bytes to every decoder of the storage node's HTTP bodies, query strings
//! and path texts (see `morsa_fuzz::node_api`).

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| morsa_fuzz::node_api::run(data));
