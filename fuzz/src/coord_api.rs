//! The coordinator's HTTP contract (`morsa_api::coord`): what it decodes from any caller
//! (signed transactions, node reports, query strings, path texts) and what nodes and clients
//! decode from it (submit answers, event pages, committee, system, account and blob status).
//!
//! An accepted transaction or report is logged as a BCS [`LogEntry`] and replayed from the
//! log on every start, so whatever the JSON decoder accepts must also come back from BCS
//! unchanged: a value that did not would make the coordinator's log unreadable.

use std::str::FromStr;

use morsa_api::ErrorBody;
use morsa_api::coord::{
    AccountBlobs, AccountBlobsQuery, AccountInfo, BlobStatus, CommitteeInfo, EventRecord, EventsPage,
    EventsQuery, Input, LogEntry, NodeReport, SignedTransaction, SubmitResponse, SystemInfo,
};
use morsa_core::AccountId;
use morsa_core::hash::Digest;

use crate::{check, node_api};

/// The chain ID transactions are signed for in these checks.
const CHAIN_ID: &str = "morsa-fuzz";

/// Feeds `data` to every decoder of the coordinator's API.
pub fn run(data: &[u8]) {
    requests(data);
    responses(data);
    if let Some(text) = check::text(data)
        && let Ok(account) = AccountId::from_str(text)
    {
        assert!(account.to_string().eq_ignore_ascii_case(text), "{account} parsed from {text:?}");
    }
}

/// What the coordinator decodes from any caller, checked as far as it goes without state.
fn requests(data: &[u8]) {
    if let Some(signed) = check::json::<SignedTransaction>(data) {
        let bytes = signed.transaction.signing_bytes(CHAIN_ID);
        let _ = signed.transaction.sender.verify(&bytes, &signed.signature);
        logged(Input::Transaction(signed));
    }
    if let Some(report) = check::json::<NodeReport>(data) {
        logged(Input::Node(report));
    }
    let _ = check::query::<EventsQuery>(data);
    let _ = check::query::<AccountBlobsQuery>(data);
}

/// An accepted input survives the command log: BCS out, the same value back in.
fn logged(input: Input) {
    let entry = LogEntry { time_ms: u64::MAX, input };
    let bytes = bcs::to_bytes(&entry).expect("an accepted input encodes for the log");
    let replayed: LogEntry = bcs::from_bytes(&bytes).expect("a logged input replays");
    assert_eq!(replayed, entry, "an input changed between the log and its replay");
}

/// What nodes and clients decode from the coordinator.
fn responses(data: &[u8]) {
    if let Some(response) = check::json::<SubmitResponse>(data) {
        chain(&response.events);
    }
    if let Some(page) = check::json::<EventsPage>(data) {
        chain(&page.events);
    }
    if let Some(info) = check::json::<CommitteeInfo>(data) {
        let _ = info.current.validate();
        if let Some(next) = &info.next {
            let _ = next.validate();
        }
    }
    let _ = check::json::<SystemInfo>(data);
    let _ = check::json::<AccountInfo>(data);
    let _ = check::json::<AccountBlobs>(data);
    let _ = check::json::<BlobStatus>(data);
    if let Some(body) = check::json::<ErrorBody>(data) {
        node_api::error_body(&body);
    }
}

/// Nodes check each page of events against the hash chain.
fn chain(events: &[EventRecord]) {
    let mut prev = events.first().map_or(Digest::default(), |record| record.prev_hash);
    for record in events {
        let follows = record.verifies_after(&prev);
        let rebuilt = EventRecord::new(record.seq, record.time_ms, record.event.clone(), record.prev_hash);
        assert_eq!(follows, rebuilt == *record && record.prev_hash == prev, "the chain check disagrees");
        prev = record.hash;
    }
}
