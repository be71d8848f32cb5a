//! Feeds arbitrary bytes to every decoder of the coordinator's HTTP bodies, query strings and
//! path texts (see `morsa_fuzz::coord_api`).

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| morsa_fuzz::coord_api::run(data));
