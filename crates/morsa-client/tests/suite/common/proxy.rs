//! A storage node that lies: an HTTP proxy on its own 127.0.0.1 port in front of a real
//! server. It forwards every request and, for the routes it is told to, rewrites the answer,
//! answers with something else, or never answers. Tests put its address in the committee (or
//! rewrite the committee to it), so that clients reach the real node only through it.
//!
//! It also records every request it receives, so that a test can see which nodes were asked.
#![allow(dead_code, missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use morsa_api::node::{ReadBatchAnswer, ReadBatchItem, parse_read_batch};
use redstuff::merkle::MerkleNode;
use redstuff::wire::{from_bcs, to_bcs};
use redstuff::{EncodedBlob, MetadataWithId, Sliver};
use tokio::net::TcpListener;

/// The routes a proxy tells apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Route {
    /// `GET /v1/blobs/{blob_id}/metadata`.
    GetMetadata,
    /// `GET /v1/blobs/{blob_id}/slivers/{pair}/{kind}`.
    GetSliver,
    /// `GET /v1/blobs/{blob_id}/sliverBatch/{kind}?pairs=…` (several slivers in one answer).
    GetSliverBatch,
    /// `PUT /v1/blobs/{blob_id}/slivers/{pair}/{kind}`.
    PutSliver,
    /// `PUT /v1/blobs/{blob_id}/slivers` (a batch of slivers, maybe with the metadata).
    PutSliverBatch,
    /// `GET /v1/committee` (a coordinator route).
    Committee,
    /// Everything else.
    Other,
}

impl Route {
    fn of(method: &Method, path: &str) -> Self {
        let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
        match (method, segments.as_slice()) {
            (&Method::GET, ["v1", "blobs", _, "metadata"]) => Route::GetMetadata,
            (&Method::GET, ["v1", "blobs", _, "slivers", _, _]) => Route::GetSliver,
            (&Method::GET, ["v1", "blobs", _, "sliverBatch", _]) => Route::GetSliverBatch,
            (&Method::PUT, ["v1", "blobs", _, "slivers", _, _]) => Route::PutSliver,
            (&Method::PUT, ["v1", "blobs", _, "slivers"]) => Route::PutSliverBatch,
            (&Method::GET, ["v1", "committee"]) => Route::Committee,
            _ => Route::Other,
        }
    }
}

/// A body rewrite.
pub type Rewrite = Arc<dyn Fn(&[u8]) -> Vec<u8> + Send + Sync>;

/// How a proxy answers one route.
#[derive(Clone)]
pub enum Lie {
    /// Metadata with one sliver hash replaced: well-formed, but it does not hash to the ID.
    WrongMetadata,
    /// The sliver with one symbol byte flipped (in a batched read: every sliver of the answer).
    WrongSliver,
    /// In a batched read, the first sliver of the answer with one symbol byte flipped, the
    /// others as they are.
    OneWrongSliver,
    /// The same sliver of another blob (same size, other content; in a batched read, every
    /// sliver of the answer); the node is not asked.
    SliverOf(Arc<EncodedBlob>),
    /// The first half of the real answer's body.
    Truncated,
    /// The request is held and never answered.
    Stall,
    /// The real answer's body, rewritten.
    Rewrite(Rewrite),
    /// 404 with no body, as a server without the route answers; the node is not asked.
    NoRoute,
}

/// A request the proxy received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seen {
    pub route: Route,
    /// The path, and the query if any.
    pub path: String,
}

struct Shared {
    target: String,
    http: reqwest::Client,
    lies: Mutex<HashMap<Route, Lie>>,
    seen: Mutex<Vec<Seen>>,
    stalled: AtomicUsize,
    /// Sliver requests (single or batched) answered with a wrong sliver so far.
    lied: AtomicUsize,
}

/// A running proxy; it stops when the runtime it was started on shuts down.
#[derive(Clone)]
pub struct Proxy {
    /// `127.0.0.1:port`, as committees list addresses.
    pub address: String,
    shared: Arc<Shared>,
}

impl Proxy {
    /// Starts a proxy in front of the server at `target` (`127.0.0.1:port`), honest until told.
    pub async fn start(target: &str) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap().to_string();
        let http = reqwest::Client::builder().no_proxy().timeout(Duration::from_secs(120)).build().unwrap();
        let shared = Arc::new(Shared {
            target: target.to_string(),
            http,
            lies: Mutex::new(HashMap::new()),
            seen: Mutex::new(Vec::new()),
            stalled: AtomicUsize::new(0),
            lied: AtomicUsize::new(0),
        });
        let router = axum::Router::new().fallback(handle).with_state(Arc::clone(&shared));
        tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        Self { address, shared }
    }

    /// From now on, answers `route` with `lie`.
    pub fn lie(&self, route: Route, lie: Lie) {
        self.shared.lies.lock().unwrap().insert(route, lie);
    }

    /// From now on, never answers an upload of slivers, single or batched.
    pub fn stall_sliver_uploads(&self) {
        self.lie(Route::PutSliver, Lie::Stall);
        self.lie(Route::PutSliverBatch, Lie::Stall);
    }

    /// From now on, answers reads of slivers, single or batched, with `lie`.
    pub fn lie_on_sliver_reads(&self, lie: Lie) {
        self.lie(Route::GetSliver, lie.clone());
        self.lie(Route::GetSliverBatch, lie);
    }

    /// From now on, answers `route` honestly.
    pub fn honest(&self, route: Route) {
        self.shared.lies.lock().unwrap().remove(&route);
    }

    /// Paths (with their queries) of the requests received on `route`, in order.
    pub fn seen(&self, route: Route) -> Vec<String> {
        self.shared
            .seen
            .lock()
            .unwrap()
            .iter()
            .filter(|seen| seen.route == route)
            .map(|seen| seen.path.clone())
            .collect()
    }

    /// Requests held by [`Lie::Stall`] so far.
    pub fn stalled(&self) -> usize {
        self.shared.stalled.load(Ordering::SeqCst)
    }

    /// Sliver requests answered with a wrong sliver so far.
    pub fn lied(&self) -> usize {
        self.shared.lied.load(Ordering::SeqCst)
    }
}

/// The sliver pair index in a sliver path `/v1/blobs/{id}/slivers/{pair}/{kind}`, and the kind.
pub fn sliver_of_path(path: &str) -> (usize, String) {
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    (segments[4].parse().unwrap(), segments[5].to_string())
}

/// The sliver pair indices and the kind a batched read's path and query
/// `/v1/blobs/{id}/sliverBatch/{kind}?pairs=…` asks for.
pub fn slivers_of_batch_path(path_and_query: &str) -> (Vec<usize>, String) {
    let (path, query) = path_and_query.split_once('?').unwrap();
    let kind = path.rsplit('/').next().unwrap().to_string();
    let pairs = query.strip_prefix("pairs=").unwrap().split(',').map(|pair| pair.parse().unwrap()).collect();
    (pairs, kind)
}

/// A batched read's answer with each of its slivers (all, or only the first) passed
/// through `change`.
fn rewrite_batch(
    body: &[u8],
    path_and_query: &str,
    only_first: bool,
    change: impl Fn(usize, &str, &mut Sliver),
) -> Vec<u8> {
    let (pairs, kind) = slivers_of_batch_path(path_and_query);
    let asked: Vec<u16> = pairs.iter().map(|pair| u16::try_from(*pair).unwrap()).collect();
    let items = parse_read_batch(body, &asked).unwrap();
    let mut answer = ReadBatchAnswer::with_capacity(body.len());
    let mut changed = false;
    for (pair, item) in asked.iter().zip(items) {
        match item {
            ReadBatchItem::Sliver(range) => {
                let mut sliver: Sliver = from_bcs(&body[range], usize::MAX).unwrap();
                if !(only_first && changed) {
                    change(usize::from(*pair), &kind, &mut sliver);
                    changed = true;
                }
                answer.push_sliver(*pair, &to_bcs(&sliver));
            }
            ReadBatchItem::Refused(error) => answer.push_refused(*pair, &error),
        }
    }
    answer.into_bytes()
}

fn flip_first_byte(_: usize, _: &str, sliver: &mut Sliver) {
    sliver.symbols[0] ^= 0xff;
}

async fn handle(State(shared): State<Arc<Shared>>, request: Request) -> Response {
    let method = request.method().clone();
    let path = request.uri().path().to_string();
    let path_and_query = request.uri().path_and_query().map_or_else(|| path.clone(), ToString::to_string);
    let route = Route::of(&method, &path);
    shared.seen.lock().unwrap().push(Seen { route, path: path_and_query.clone() });
    let lie = shared.lies.lock().unwrap().get(&route).cloned();
    match &lie {
        Some(Lie::Stall) => {
            shared.stalled.fetch_add(1, Ordering::SeqCst);
            std::future::pending::<()>().await;
        }
        Some(Lie::NoRoute) => return StatusCode::NOT_FOUND.into_response(),
        Some(Lie::SliverOf(other)) if route == Route::GetSliverBatch => {
            let (pairs, kind) = slivers_of_batch_path(&path_and_query);
            let mut answer = ReadBatchAnswer::with_capacity(0);
            for pair in pairs {
                let slivers = &other.pairs[pair];
                let sliver = if kind == "primary" { &slivers.primary } else { &slivers.secondary };
                answer.push_sliver(u16::try_from(pair).unwrap(), &to_bcs(sliver));
            }
            shared.lied.fetch_add(1, Ordering::SeqCst);
            return bcs_response(answer.into_bytes());
        }
        Some(Lie::SliverOf(other)) => {
            let (pair, kind) = sliver_of_path(&path);
            let sliver = match kind.as_str() {
                "primary" => &other.pairs[pair].primary,
                _ => &other.pairs[pair].secondary,
            };
            shared.lied.fetch_add(1, Ordering::SeqCst);
            return bcs_response(to_bcs(sliver));
        }
        _ => {}
    }

    let content_type = request.headers().get(header::CONTENT_TYPE).cloned();
    let body = axum::body::to_bytes(request.into_body(), 1 << 30).await.unwrap();
    let mut forwarded =
        shared.http.request(method, format!("http://{}{path_and_query}", shared.target)).body(body.to_vec());
    if let Some(content_type) = content_type {
        forwarded = forwarded.header(header::CONTENT_TYPE, content_type);
    }
    let answer = match forwarded.send().await {
        Ok(answer) => answer,
        Err(error) => return (StatusCode::BAD_GATEWAY, error.to_string()).into_response(),
    };
    let status = answer.status();
    let content_type = answer.headers().get(header::CONTENT_TYPE).cloned();
    let mut body = answer.bytes().await.map(|bytes| bytes.to_vec()).unwrap_or_default();
    if status.is_success() {
        body = match &lie {
            Some(Lie::WrongMetadata) => {
                let mut metadata: MetadataWithId = from_bcs(&body, usize::MAX).unwrap();
                metadata.metadata.hashes[0].primary = MerkleNode::Digest([0xab; 32]);
                to_bcs(&metadata)
            }
            Some(Lie::WrongSliver) if route == Route::GetSliverBatch => {
                shared.lied.fetch_add(1, Ordering::SeqCst);
                rewrite_batch(&body, &path_and_query, false, flip_first_byte)
            }
            Some(Lie::OneWrongSliver) if route == Route::GetSliverBatch => {
                shared.lied.fetch_add(1, Ordering::SeqCst);
                rewrite_batch(&body, &path_and_query, true, flip_first_byte)
            }
            Some(Lie::WrongSliver) => {
                let mut sliver: Sliver = from_bcs(&body, usize::MAX).unwrap();
                sliver.symbols[0] ^= 0xff;
                shared.lied.fetch_add(1, Ordering::SeqCst);
                to_bcs(&sliver)
            }
            Some(Lie::Truncated) => body[..body.len() / 2].to_vec(),
            Some(Lie::Rewrite(rewrite)) => rewrite(&body),
            _ => body,
        };
    }
    let mut response = Response::builder().status(status);
    if let Some(content_type) = content_type {
        response = response.header(header::CONTENT_TYPE, content_type);
    }
    response.body(Body::from(body)).unwrap()
}

fn bcs_response(body: Vec<u8>) -> Response {
    Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, "application/octet-stream")
        .body(Body::from(body))
        .unwrap()
}
