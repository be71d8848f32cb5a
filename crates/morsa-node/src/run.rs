//! Running a node, the one place a node is put together: [`run`] opens one from its
//! configuration (key, store, the coordinator's committee, the listening socket, the admin
//! token) and serves it with its background tasks until shutdown; [`Listening`] does the same
//! in two steps, and [`Listening::with_node`] starts from a [`Node`] built by hand (tests,
//! benchmarks), with or without a coordinator to follow.

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use morsa_api::client::{ClientError, CoordClient};
use tokio::net::TcpListener;

use crate::config::{Limits, NodeConfig};
use crate::error::NodeError;
use crate::http::{AdminToken, Served, router};
use crate::keys::{KeyFileError, read_key_file};
use crate::node::Node;
use crate::{challenge, follower, heal, migrate, pending};

/// Why a node could not start, or stopped serving.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The key file could not be read.
    #[error(transparent)]
    Key(#[from] KeyFileError),
    /// The data directory could not be created.
    #[error("cannot create the data directory {path}: {source}")]
    DataDir {
        /// The directory.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// The node's database could not be opened.
    #[error("cannot open the node's database: {0}")]
    Store(#[from] morsa_store::StoreError),
    /// A coordinator URL is malformed, or no coordinator gave its committee and the store
    /// holds none saved by an earlier run.
    #[error("cannot fetch the committee from {url}: {source}")]
    Coordinator {
        /// The coordinator URLs, comma-separated.
        url: String,
        /// The error.
        source: ClientError,
    },
    /// The node refused its committee.
    #[error(transparent)]
    Node(#[from] NodeError),
    /// The listening address could not be bound.
    #[error("cannot listen on {address}: {source}")]
    Listen {
        /// The address.
        address: SocketAddr,
        /// The error.
        source: std::io::Error,
    },
    /// The admin token could not be written.
    #[error("cannot write the admin token in {path}: {source}")]
    AdminToken {
        /// The data directory.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// The listening socket's address could not be read.
    #[error("cannot read the listening socket's address: {0}")]
    LocalAddress(std::io::Error),
    /// The server stopped with an error.
    #[error("the server stopped: {0}")]
    Serve(std::io::Error),
}

/// Opens the node `config` describes, listens on `config.listen` and serves it with its
/// background tasks (event follower, challenge auditor, blob sync and repair, scrubber,
/// pending uploads) until `shutdown` resolves.
pub async fn run(
    config: &NodeConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), RunError> {
    Listening::open(config).await?.serve(shutdown).await
}

/// A node opened from its configuration and listening, not serving yet: [`run`] in two steps,
/// for a caller that announces the address (or binds the socket) itself.
pub struct Listening {
    listener: TcpListener,
    address: SocketAddr,
    served: Arc<Served>,
    limits: Limits,
    coord: Option<CoordClient>,
}

impl Listening {
    /// Opens the node `config` describes and binds `config.listen`.
    pub async fn open(config: &NodeConfig) -> Result<Self, RunError> {
        let coord = coordinator(config)?;
        let node = open_node(config, &coord).await?;
        let listener = TcpListener::bind(config.listen)
            .await
            .map_err(|source| RunError::Listen { address: config.listen, source })?;
        Self::with(listener, node, config, coord)
    }

    /// Opens the node `config` describes, to serve on `listener` (bound already, e.g. to learn
    /// its port first); `config.listen` is not used.
    pub async fn open_on(listener: TcpListener, config: &NodeConfig) -> Result<Self, RunError> {
        let coord = coordinator(config)?;
        let node = open_node(config, &coord).await?;
        Self::with(listener, node, config, coord)
    }

    fn with(
        listener: TcpListener,
        node: Node,
        config: &NodeConfig,
        coord: CoordClient,
    ) -> Result<Self, RunError> {
        // `NodeConfig::load` copies `[repair]` into the limits; a config built in code may not.
        let limits = Limits { repair: config.repair, ..config.limits.clone() };
        let listening = Self::with_node(listener, node, &limits, Some(coord))?;
        let token = AdminToken::create(&config.data_dir)
            .map_err(|source| RunError::AdminToken { path: config.data_dir.clone(), source })?;
        listening.served.set_admin_token(token);
        Ok(listening)
    }

    /// A node built by hand (its key, store and committee given: tests, benchmarks), to serve
    /// on `listener` within `limits`. It follows `coord`'s events and reports invalid blobs to
    /// it; with `None` it follows no coordinator and keeps the committee it was built with.
    /// Its admin routes refuse everyone until [`Served::set_admin_token`].
    pub fn with_node(
        listener: TcpListener,
        node: Node,
        limits: &Limits,
        coord: Option<CoordClient>,
    ) -> Result<Self, RunError> {
        let address = listener.local_addr().map_err(RunError::LocalAddress)?;
        let served = Served::new(Arc::new(node), limits);
        tracing::info!(
            %address,
            node_id = %served.node().id(),
            shards = served.node().owned_shards().len(),
            "node listening"
        );
        Ok(Self { listener, address, served, limits: limits.clone(), coord })
    }

    /// The address it listens on.
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// The node.
    pub fn node(&self) -> &Arc<Node> {
        self.served.node()
    }

    /// What its routes share: the node, its uploads, its repair engine, its admin token.
    pub fn served(&self) -> &Arc<Served> {
        &self.served
    }

    /// Serves until `shutdown` resolves, with the node's background tasks (event follower
    /// when it has a coordinator, blob sync and repair, scrubber, pending uploads).
    pub async fn serve(self, shutdown: impl Future<Output = ()> + Send + 'static) -> Result<(), RunError> {
        serve(self.listener, self.served, &self.limits, self.coord, shutdown).await.map_err(RunError::Serve)
    }

    /// The socket and the routes alone, for a caller that serves them itself (behind
    /// middleware of its own); no background task runs.
    pub fn into_router(self) -> (TcpListener, axum::Router) {
        let router = router(self.served, &self.limits);
        (self.listener, router)
    }
}

fn coordinator(config: &NodeConfig) -> Result<CoordClient, RunError> {
    CoordClient::with_urls(&config.coordinator_urls, morsa_api::client::ClientOptions::default())
        .map_err(|source| RunError::Coordinator { url: config.coordinator_urls.join(", "), source })
}

/// The node of `config`: its key, its store in the data directory (created if missing), and
/// the coordinator's current committees. When no coordinator answers, a node that ran before
/// starts from the committees saved in its store (it serves its slivers, and its event
/// follower keeps retrying the coordinator); a node that never ran cannot.
async fn open_node(config: &NodeConfig, coord: &CoordClient) -> Result<Node, RunError> {
    let key = read_key_file(&config.key_file)?;
    std::fs::create_dir_all(&config.data_dir)
        .map_err(|source| RunError::DataDir { path: config.data_dir.clone(), source })?;
    let cache = morsa_core::convert::saturating_usize(config.limits.store_cache_bytes);
    let store = morsa_store::NodeStore::open_with_cache(&config.store_path(), cache)?;
    let saved = crate::node::saved_view(&store);
    let view = match follower::fetch_view(coord).await {
        Ok(view) => view,
        Err(source) => match crate::node::saved_view(&store) {
            Some(saved) => {
                tracing::warn!(
                    error = %source,
                    epoch = saved.epoch().0,
                    "no coordinator answers: starting from the committee saved in the store"
                );
                saved
            }
            None => return Err(RunError::Coordinator { url: config.coordinator_urls.join(", "), source }),
        },
    };
    let node = Node::new(key, store, view)?;
    // Epoch changes missed while the node was down move shards too.
    if let Some(saved) = saved.filter(|saved| saved.epoch() < node.view().epoch()) {
        let current = node.view().committee.clone();
        node.note_committee_change(&saved.committee, &current)?;
    }
    node.save_view();
    Ok(node)
}

/// Serves `served` on `listener` within `limits`, with the node's background tasks (event
/// follower when there is a coordinator, blob sync and repair, scrubber, pending uploads),
/// until `shutdown` resolves.
async fn serve(
    listener: TcpListener,
    served: Arc<Served>,
    limits: &Limits,
    coord: Option<CoordClient>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let challenges = coord.as_ref().map(|coord| {
        served.rounds().set_coordinator(coord.clone());
        let (node, rounds) = (Arc::clone(served.node()), Arc::clone(served.rounds()));
        tokio::spawn(challenge::run(node, rounds, coord.clone(), stopped.clone()))
    });
    let follower = coord.map(|coord| {
        served.repair().set_coordinator(coord.clone());
        // A node stopped while syncing gained shards resumes them, and reports once done.
        if !served.node().moves().lock().gained.is_empty() {
            follower::report_when_synced(served.node(), &coord, &stopped);
        }
        tokio::spawn(follower::follow(Arc::clone(served.node()), coord, stopped.clone()))
    });
    let repair = tokio::spawn(heal::sync::run(Arc::clone(served.repair()), stopped.clone()));
    let migration = tokio::spawn(migrate::run(
        Arc::clone(served.node()),
        served.repair().config,
        Arc::clone(&served.repair().background),
        stopped.clone(),
    ));
    let pending =
        tokio::spawn(pending::run(Arc::clone(served.node()), Arc::clone(served.pending()), stopped));
    let app = router(served, limits);
    let result = morsa_api::server::serve(listener, app, limits.serve_limits(), shutdown).await;
    stop.send_replace(true);
    let _ = repair.await;
    let _ = migration.await;
    if let Some(follower) = follower {
        let _ = follower.await;
    }
    if let Some(challenges) = challenges {
        let _ = challenges.await;
    }
    let _ = pending.await;
    result
}
