//! The clients against tiny servers on real loopback sockets: a fake storage node and a fake
//! coordinator built from axum routers on the API's own routes and parameter types.

mod coord;
mod failover;

use std::collections::HashMap;
use std::io::{Read, Write};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::http::header::CONTENT_TYPE;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, put};
use redstuff::wire::{from_bcs, to_bcs};
use redstuff::{BlobId, EncodingConfig, MetadataWithId, RecoverySymbol, Sliver, SliverExpansion, SliverType};

use super::*;
use crate::node::{self, NodeErrorCode, PutSliverQuery, RecoverySymbolsQuery, SliverPath, routes};

/// Serves `router` on 127.0.0.1 and returns its base URL.
pub(super) async fn serve(router: Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    format!("http://{address}")
}

/// Options with a short timeout, so a hanging call fails the test quickly.
pub(super) fn short(timeout_ms: u64) -> ClientOptions {
    ClientOptions { timeout: Duration::from_millis(timeout_ms), ..ClientOptions::default() }
}

fn bcs_answer(bytes: Vec<u8>) -> Response {
    ([(CONTENT_TYPE, http::OCTET_STREAM)], bytes).into_response()
}

fn error(code: NodeErrorCode, message: &str) -> Response {
    (code.status(), axum::Json(code.body(message))).into_response()
}

type Store = Arc<Mutex<HashMap<String, Vec<u8>>>>;

/// A fake node: stores metadata and slivers as sent; serves the recovery symbols the test put
/// in the store under `symbols/{blob_id}/{target_type}/{target_sliver}`.
fn fake_node(store: Store) -> Router {
    async fn put_sliver(
        State(store): State<Store>,
        Path(path): Path<SliverPath>,
        Query(query): Query<PutSliverQuery>,
        body: Bytes,
    ) -> Response {
        let Ok(sliver) = from_bcs::<Sliver>(&body, 1 << 20) else {
            return error(NodeErrorCode::BadRequest, "not a BCS sliver");
        };
        if !query.pending {
            return error(NodeErrorCode::NotRegistered, "upload with pending=true");
        }
        let key = node::sliver_path(&path.blob_id, path.sliver_pair_index, path.sliver_type);
        store.lock().unwrap().insert(key, to_bcs(&sliver));
        StatusCode::OK.into_response()
    }
    async fn get_stored(State(store): State<Store>, uri: axum::http::Uri) -> Response {
        match store.lock().unwrap().get(uri.path()) {
            Some(bytes) => bcs_answer(bytes.clone()),
            None => error(NodeErrorCode::NotFound, "not stored here"),
        }
    }
    async fn put_metadata(State(store): State<Store>, uri: axum::http::Uri, body: Bytes) -> Response {
        store.lock().unwrap().insert(uri.path().to_owned(), body.to_vec());
        StatusCode::CREATED.into_response()
    }
    async fn symbols(
        State(store): State<Store>,
        Path(blob_id): Path<BlobId>,
        Query(query): Query<RecoverySymbolsQuery>,
    ) -> Response {
        let key = format!("symbols/{blob_id}/{}/{}", query.target_type, query.target_sliver);
        match store.lock().unwrap().get(&key) {
            Some(bytes) => bcs_answer(bytes.clone()),
            None => error(NodeErrorCode::NotFound, "no symbols"),
        }
    }
    Router::new()
        .route(routes::SLIVER, put(put_sliver).get(get_stored))
        .route(routes::METADATA, put(put_metadata).get(get_stored))
        .route(routes::RECOVERY_SYMBOLS, get(symbols))
        .with_state(store)
}

#[tokio::test]
async fn bcs_bodies_round_trip_through_a_node() {
    let config = EncodingConfig::new(4).unwrap();
    let encoded = redstuff::encode(config, &[0x42; 300]).unwrap();
    let metadata = &encoded.metadata;
    let blob_id = *metadata.blob_id();
    let store = Store::default();
    let base = serve(fake_node(Arc::clone(&store))).await;
    let client = NodeClient::with_http(reqwest::Client::new(), &base, config, short(5_000)).unwrap();

    let with_id = MetadataWithId { blob_id, metadata: metadata.metadata().clone() };
    client.put_metadata(&blob_id, &with_id).await.unwrap();
    assert_eq!(client.get_metadata(&blob_id).await.unwrap(), with_id);

    let pair = &encoded.pairs[1];
    let refused =
        client.put_sliver(&blob_id, 1, SliverType::Primary, &pair.primary, false).await.unwrap_err();
    assert_eq!(refused.node_code(), Some(NodeErrorCode::NotRegistered));
    for (kind, sliver) in [(SliverType::Primary, &pair.primary), (SliverType::Secondary, &pair.secondary)] {
        client.put_sliver(&blob_id, 1, kind, sliver, true).await.unwrap();
        let back = client.get_sliver(&blob_id, 1, kind, metadata.symbol_size()).await.unwrap();
        assert_eq!(&back, sliver);
        metadata.verify_sliver(kind, &back).unwrap();
    }

    // The symbols of every secondary sliver towards primary sliver 0.
    let symbols: Vec<RecoverySymbol> = encoded
        .pairs
        .iter()
        .map(|pair| SliverExpansion::new(metadata, SliverType::Secondary, &pair.secondary).unwrap())
        .map(|expansion| expansion.recovery_symbol(0).unwrap())
        .collect();
    store.lock().unwrap().insert(format!("symbols/{blob_id}/primary/0"), to_bcs(&symbols));
    let fetched =
        client.recovery_symbols(&blob_id, 0, SliverType::Primary, metadata.symbol_size()).await.unwrap();
    assert_eq!(fetched, symbols);
    let missing = client.recovery_symbols(&blob_id, 1, SliverType::Primary, metadata.symbol_size()).await;
    assert_eq!(missing.unwrap_err().node_code(), Some(NodeErrorCode::NotFound));
}

#[tokio::test]
async fn an_error_answer_becomes_http_with_its_code() {
    let router = Router::new()
        .route(routes::SLIVER, get(|| async { error(NodeErrorCode::WrongShard, "ask the owner of shard 3") }))
        .route(routes::HEALTH, get(|| async { (StatusCode::BAD_GATEWAY, "<html>proxy down</html>") }));
    let base = serve(router).await;
    let client =
        NodeClient::with_http(reqwest::Client::new(), &base, EncodingConfig::new(4).unwrap(), short(5_000))
            .unwrap();
    let blob_id = BlobId([1; 32]);
    match client.get_sliver(&blob_id, 0, SliverType::Primary, 2).await {
        Err(ClientError::Http { status, body }) => {
            assert_eq!(status, StatusCode::MISDIRECTED_REQUEST);
            assert_eq!(body.code, "wrong_shard");
            assert_eq!(body.message, "ask the owner of shard 3");
        }
        other => panic!("expected an HTTP error, got {other:?}"),
    }
    let error = client.health().await.unwrap_err();
    assert_eq!(error.code(), Some(UNKNOWN_ERROR_CODE));
    assert!(error.to_string().contains("proxy down"), "{error}");
    assert_eq!(error.node_code(), None);
}

#[tokio::test]
async fn an_announced_oversized_answer_is_refused() {
    let router = Router::new().route(routes::SLIVER, get(|| async { bcs_answer(vec![0; 1 << 20]) }));
    let base = serve(router).await;
    let config = EncodingConfig::new(4).unwrap();
    let client = NodeClient::with_http(reqwest::Client::new(), &base, config, short(5_000)).unwrap();
    let limit = node::sliver_limit(config, SliverType::Primary, 2);
    let result = client.get_sliver(&BlobId([1; 32]), 0, SliverType::Primary, 2).await;
    assert_eq!(result.unwrap_err(), ClientError::TooLarge { limit });
}

/// A server that answers every request with a chunked body that never ends (a plain thread:
/// axum needs a stream crate for an endless body).
fn endless_server() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for mut socket in listener.incoming().map_while(Result::ok) {
            std::thread::spawn(move || {
                let _ = socket.read(&mut [0; 4096]);
                let head = "HTTP/1.1 200 OK\r\ncontent-type: application/octet-stream\r\ntransfer-encoding: chunked\r\n\r\n";
                let mut chunk = b"10000\r\n".to_vec();
                chunk.extend_from_slice(&[0; 0x10000]);
                chunk.extend_from_slice(b"\r\n");
                let _ = socket.write_all(head.as_bytes());
                while socket.write_all(&chunk).is_ok() {}
            });
        }
    });
    format!("http://{address}")
}

#[tokio::test]
async fn an_endless_answer_is_refused_once_past_the_limit() {
    let base = endless_server();
    let config = EncodingConfig::new(4).unwrap();
    let client = NodeClient::with_http(reqwest::Client::new(), &base, config, short(10_000)).unwrap();
    let limit = node::metadata_limit(config);
    assert_eq!(client.get_metadata(&BlobId([1; 32])).await.unwrap_err(), ClientError::TooLarge { limit });
}

#[tokio::test]
async fn a_server_that_never_answers_times_out() {
    let router = Router::new().route(routes::HEALTH, get(std::future::pending::<()>));
    let base = serve(router).await;
    let client =
        NodeClient::with_http(reqwest::Client::new(), &base, EncodingConfig::new(4).unwrap(), short(200))
            .unwrap();
    let started = Instant::now();
    assert_eq!(client.health().await.unwrap_err(), ClientError::Timeout);
    assert!(started.elapsed() < Duration::from_secs(5), "the timeout did not bound the call");
}

#[test]
fn base_urls_are_checked_and_normalised() {
    let config = EncodingConfig::new(4).unwrap();
    assert_eq!(NodeClient::new("127.0.0.1:9000", config).unwrap().base_url(), "http://127.0.0.1:9000");
    assert_eq!(
        NodeClient::new("http://node.example/morsa/", config).unwrap().base_url(),
        "http://node.example/morsa"
    );
    for bad in ["ftp://node.example", "http://", "http://node.example/?a=b", "not a url at all"] {
        assert!(matches!(NodeClient::new(bad, config), Err(ClientError::InvalidUrl(_))), "{bad}");
    }
}
