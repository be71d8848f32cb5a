//! Feeds arbitrary bytes to the decoder of every record Morsa's stores hold: command log
//! entries, blob info, metadata and the event cursor (see `morsa_fuzz::store_records`).

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| morsa_fuzz::store_records::run(data));
