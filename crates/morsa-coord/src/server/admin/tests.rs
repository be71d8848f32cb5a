//! The admin token's rules and refusals, and log pages replayed by the audit of a running
//! replica, through the router.
#![allow(clippy::unwrap_used)]

use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use morsa_api::coord::{LogPage, member_path, routes};
use morsa_core::AccountKey;
use serde_json::Value;
use tower::ServiceExt;

use super::AdminToken;
use crate::server::tests::genesis;
use crate::server::{Clock, Shared, router};
use crate::{AuditError, Command, Coordinator, Input, PagedAudit, ServedEvents, Transaction};

const TOKEN: &str = "0123456789abcdef-admin";

async fn call(shared: &Arc<Shared>, request: Request<Body>) -> (StatusCode, Value) {
    let response = router(Arc::clone(shared)).oneshot(request).await.unwrap();
    let status = response.status();
    let body = axum::body::to_bytes(response.into_body(), usize::MAX).await.unwrap();
    (status, serde_json::from_slice(&body).unwrap_or(Value::Null))
}

fn add_request(token: Option<&str>) -> Request<Body> {
    let mut request = Request::post(routes::RAFT_MEMBERS).header(header::CONTENT_TYPE, "application/json");
    if let Some(token) = token {
        request = request.header(header::AUTHORIZATION, format!("Bearer {token}"));
    }
    request.body(Body::from(r#"{"id": 4, "url": "http://127.0.0.1:7004"}"#)).unwrap()
}

#[test]
fn admin_tokens_are_long_single_words_compared_whole() {
    assert!(AdminToken::new("short").is_err());
    assert!(AdminToken::new("0123456789abcdef with a space").is_err());
    let token = AdminToken::new(TOKEN).unwrap();
    assert!(token.admits(TOKEN));
    assert!(!token.admits("0123456789abcdef-admiN"));
    assert!(!token.admits(&TOKEN[..TOKEN.len() - 1]));
    assert_eq!(format!("{token:?}"), "AdminToken(..)", "the token is never printed");
}

#[tokio::test]
async fn membership_changes_are_refused_without_the_admin_token() {
    let dir = tempfile::tempdir().unwrap();
    let coordinator = Coordinator::open(&genesis(), &dir.path().join("log.redb")).unwrap();
    let token = AdminToken::new(TOKEN).unwrap();
    let shared = Shared::build(
        Arc::new(Mutex::new(coordinator)),
        None,
        Clock::wall(),
        Some(token),
        crate::availability::DEFAULT_STALE_AFTER,
    );

    let (status, body) = call(&shared, add_request(None)).await;
    assert_eq!((status, body["code"].as_str()), (StatusCode::UNAUTHORIZED, Some("admin_token_required")));
    let (status, body) = call(&shared, add_request(Some("0123456789abcdef-wrong"))).await;
    assert_eq!((status, body["code"].as_str()), (StatusCode::FORBIDDEN, Some("bad_admin_token")));
    let removal = Request::delete(member_path(2))
        .header(header::AUTHORIZATION, "Bearer 0123456789abcdef-wrong")
        .body(Body::empty())
        .unwrap();
    let (status, body) = call(&shared, removal).await;
    assert_eq!((status, body["code"].as_str()), (StatusCode::FORBIDDEN, Some("bad_admin_token")));
    // With the right token the request gets past the check (and this coordinator does not
    // replicate).
    let (status, body) = call(&shared, add_request(Some(TOKEN))).await;
    assert_eq!((status, body["code"].as_str()), (StatusCode::NOT_FOUND, Some("not_replicated")));

    // A coordinator without an admin token refuses every membership change.
    let dir = tempfile::tempdir().unwrap();
    let coordinator = Coordinator::open(&genesis(), &dir.path().join("log.redb")).unwrap();
    let (status, body) = call(&Shared::new(coordinator), add_request(Some(TOKEN))).await;
    assert_eq!((status, body["code"].as_str()), (StatusCode::FORBIDDEN, Some("admin_disabled")));
}

#[tokio::test]
async fn log_pages_replay_to_the_served_state_and_event_chain() {
    let dir = tempfile::tempdir().unwrap();
    let genesis = genesis();
    let mut coordinator = Coordinator::open(&genesis, &dir.path().join("log.redb")).unwrap();
    let user = AccountKey::from_seed([9; 32]);
    let command = Command::Transfer { to: AccountKey::from_seed([10; 32]).id(), amount: 1 };
    let signed = Transaction { sender: user.id(), nonce: 0, command }.sign(&user, &genesis.chain_id);
    coordinator.submit(Input::Transaction(signed), genesis.genesis_time_ms + 1).unwrap();
    // The end of the epoch: a tick that emits events.
    coordinator.submit(Input::Tick, genesis.genesis_time_ms + genesis.epoch_duration_ms).unwrap();
    let state_hash = hex::encode(coordinator.state().hash());
    let events = coordinator.events_from(0, usize::MAX).to_vec();
    assert!(!events.is_empty());
    let shared = Shared::new(coordinator);

    // One entry per page, so that the audit pages through the log.
    let mut audit = PagedAudit::new(&genesis).unwrap();
    let mut pages = Vec::new();
    loop {
        let uri = format!("{}?from={}&limit=1", routes::LOG, audit.next());
        let (status, body) = call(&shared, Request::get(uri).body(Body::empty()).unwrap()).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let page: LogPage = serde_json::from_value(body).unwrap();
        if audit.page(&page).unwrap() == 0 || audit.next() >= page.count {
            pages.push(page);
            break;
        }
        pages.push(page);
    }
    let report = audit.report();
    assert_eq!(report.entries, shared.log_len().unwrap());
    assert!(report.entries >= 2);
    assert_eq!(report.state_hash, state_hash);

    let mut served = ServedEvents::new();
    served.records(&events).unwrap();
    served.matches(&report).unwrap();

    // An event that is not the one the log produced, a chain cut short, a page out of place,
    // another genesis: each refused.
    let mut forged = events.clone();
    forged[0].time_ms += 1;
    assert!(matches!(ServedEvents::new().records(&forged), Err(AuditError::ServedEvent { event: 0, .. })));
    let mut short = ServedEvents::new();
    short.records(&events[..events.len() - 1]).unwrap();
    assert!(matches!(short.matches(&report), Err(AuditError::ServedEvent { .. })));
    let mut skipping = PagedAudit::new(&genesis).unwrap();
    assert!(matches!(skipping.page(&pages[1]), Err(AuditError::ServedPage { seq: 0, .. })));
    let mut other = genesis.clone();
    other.chain_id = "another-chain".into();
    let mut elsewhere = PagedAudit::new(&other).unwrap();
    assert!(matches!(elsewhere.page(&pages[0]), Err(AuditError::GenesisMismatch { .. })));
}
