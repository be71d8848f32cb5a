//! Store and read blobs on a Morsa system.
//!
//! A [`Client`] encodes a blob, pays for and registers it with the coordinator, uploads each
//! storage node's sliver pairs, gathers a quorum of signed confirmations into a certificate
//! and certifies the blob. Reads fetch metadata and slivers from the nodes, verify every
//! piece against the blob ID, and decode; a range read fetches only the symbols it needs.
//! Files larger than one chunk are stored as chunks plus a small manifest and read back as
//! one file ([`files`]; the format in [`manifest`]).
//!
//! Nothing here prints: progress is reported as [`Progress`] events to a sink the caller
//! gives ([`Client::with_progress`]). Errors are typed per failure ([`Error`]); its
//! configuration and account key file are read and written through `morsa-plumbing`
//! (size-capped, durable, the key file readable by its owner only).
//!
//! ```no_run
//! # async fn example() -> Result<(), morsa_client::Error> {
//! use morsa_client::{Client, ClientConfig, StoreOptions};
//! let config = ClientConfig::load(&ClientConfig::locate(None)?)?;
//! let client = Client::connect(&config).await?;
//! let stored = client.store_blob(b"hello".to_vec(), &StoreOptions::default()).await?;
//! let read = client.read_blob(&stored.blob_id).await?;
//! assert_eq!(read.data, b"hello");
//! # Ok(())
//! # }
//! ```

mod config;
pub mod crypt;
mod error;
pub mod files;
pub mod manifest;
mod nodes;
mod ops;
mod progress;
mod range;
mod read;
mod retention;
mod sealed_view;
mod store;

use std::sync::{Arc, RwLock};
use std::time::Duration;

use morsa_api::client::{ClientOptions, CoordClient};
use morsa_api::coord::{Command, SubmitResponse, SystemInfo, Transaction};
use morsa_core::{AccountId, AccountKey};
use redstuff::EncodingConfig;

pub use config::{
    CONFIG_ENV, ClientConfig, DEFAULT_CHUNK_SIZE, load_or_create_account_key, write_account_key,
};
pub use crypt::{CryptError, Crypto};
pub use error::{Error, InternalError, NodeFailure, Refusal};
pub use ops::NodeReport;
pub use progress::{Progress, ProgressSink};
pub use read::{BadSliver, ReadOutcome};
pub use retention::Renewal;
pub use store::{StoreOptions, StoreOutcome, StoredHow};

use nodes::NodeSet;

/// Timeout of one request to a storage node (slivers of 1 GiB chunks are a few MiB).
const NODE_TIMEOUT: Duration = Duration::from_secs(30);

/// A connection to one Morsa system, acting for one account.
pub struct Client {
    coord: CoordClient,
    key: AccountKey,
    system: SystemInfo,
    encoding: EncodingConfig,
    http: reqwest::Client,
    node_options: ClientOptions,
    nodes: RwLock<Arc<NodeSet>>,
    /// The account's next nonce, once known; transactions are sent one at a time.
    nonce: tokio::sync::Mutex<Option<u64>>,
    chunk_size: u64,
    max_requests_per_node: usize,
    progress: ProgressSink,
    /// What files are encrypted to when stored and opened with when read.
    crypto: Arc<crypt::Crypto>,
    /// Uploads that go on after their blobs were certified.
    background: std::sync::Mutex<Vec<store::Background>>,
    /// Nodes whose background uploads failed, until `finish_uploads` reports them.
    late_failures: std::sync::Mutex<Vec<NodeFailure>>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("coordinator", &self.coord.base_url())
            .field("account", &self.key.id())
            .finish_non_exhaustive()
    }
}

impl Client {
    /// Connects with `config`: reads (or, on first use, creates) the account key, and asks
    /// the coordinator for the system parameters and the committee.
    pub async fn connect(config: &ClientConfig) -> Result<Self, Error> {
        let (key, _) = load_or_create_account_key(&config.account_key_file)?;
        let mut client = Self::with_key(&config.coordinator_url, key).await?;
        client.chunk_size = config.chunk_size;
        client.max_requests_per_node = config.max_requests_per_node;
        Ok(client)
    }

    /// Connects to the coordinator at `coordinator_url` acting for `key`, with default settings.
    pub async fn with_key(coordinator_url: &str, key: AccountKey) -> Result<Self, Error> {
        let coord = CoordClient::new(coordinator_url).map_err(Error::coordinator("connecting"))?;
        let system = coord.system().await.map_err(Error::coordinator("reading the system parameters"))?;
        let encoding = EncodingConfig::new(system.n_shards).map_err(Error::ShardCount)?;
        let node_options = ClientOptions { timeout: NODE_TIMEOUT, ..ClientOptions::default() };
        let http = node_options.http_client().map_err(Error::coordinator("building the HTTP client"))?;
        let committee = coord.committee().await.map_err(Error::coordinator("reading the committee"))?.current;
        let nodes = NodeSet::new(committee, encoding, &http, node_options)
            .map_err(Error::coordinator("reading node addresses"))?;
        Ok(Self {
            coord,
            key,
            system,
            encoding,
            http,
            node_options,
            nodes: RwLock::new(Arc::new(nodes)),
            nonce: tokio::sync::Mutex::new(None),
            chunk_size: DEFAULT_CHUNK_SIZE,
            max_requests_per_node: 64,
            progress: progress::ignore(),
            crypto: Arc::new(crypt::Crypto::default()),
            background: std::sync::Mutex::new(Vec::new()),
            late_failures: std::sync::Mutex::new(Vec::new()),
        })
    }

    /// Sends progress events to `sink`.
    pub fn with_progress(mut self, sink: ProgressSink) -> Self {
        self.progress = sink;
        self
    }

    /// Encrypts the files it stores and opens the files it reads with `crypto` (see
    /// [`crypt`]); without it files are stored as they are and encrypted blobs cannot be read.
    pub fn with_crypto(mut self, crypto: Crypto) -> Self {
        self.crypto = Arc::new(crypto);
        self
    }

    /// Splits files larger than `bytes` into chunks (also capped by the largest blob).
    pub fn with_chunk_size(mut self, bytes: u64) -> Self {
        self.chunk_size = bytes.max(1);
        self
    }

    /// The account the client acts for.
    pub fn account(&self) -> AccountId {
        self.key.id()
    }

    /// The system's code parameters.
    pub fn encoding(&self) -> EncodingConfig {
        self.encoding
    }

    /// The coordinator client.
    pub fn coordinator(&self) -> &CoordClient {
        &self.coord
    }

    /// The largest piece of a file stored in one blob: the chunk size, capped by the largest
    /// blob (less what encryption adds, when the client encrypts).
    pub fn effective_chunk_size(&self) -> u64 {
        self.chunk_size.min(self.crypto.plaintext_limit(self.encoding.max_blob_size())).max(1)
    }

    fn nodes(&self) -> Arc<NodeSet> {
        Arc::clone(&self.nodes.read().unwrap_or_else(std::sync::PoisonError::into_inner))
    }

    /// Fetches the committee again (after an epoch change) and answers the new node set.
    async fn refresh_nodes(&self) -> Result<Arc<NodeSet>, Error> {
        let committee =
            self.coord.committee().await.map_err(Error::coordinator("reading the committee"))?.current;
        if committee == *self.nodes().committee() {
            return Ok(self.nodes());
        }
        let nodes = Arc::new(
            NodeSet::new(committee, self.encoding, &self.http, self.node_options)
                .map_err(Error::coordinator("reading node addresses"))?,
        );
        *self.nodes.write().unwrap_or_else(std::sync::PoisonError::into_inner) = Arc::clone(&nodes);
        Ok(nodes)
    }

    fn report(&self, event: Progress) {
        (self.progress)(&event);
    }

    /// Signs and submits `command` with the account's next nonce. A nonce that went stale
    /// (another client used the account) is fetched again and the command resent once.
    async fn submit(&self, command: Command, during: &'static str) -> Result<SubmitResponse, Error> {
        let mut nonce = self.nonce.lock().await;
        let mut retried = false;
        loop {
            let next = match *nonce {
                Some(next) => next,
                None => {
                    self.coord
                        .account(&self.key.id())
                        .await
                        .map_err(Error::coordinator("reading the account"))?
                        .nonce
                }
            };
            let transaction = Transaction { sender: self.key.id(), nonce: next, command: command.clone() };
            match self.coord.submit_transaction(&transaction.sign(&self.key, &self.system.chain_id)).await {
                Ok(response) => {
                    *nonce = Some(next + 1);
                    return Ok(response);
                }
                Err(error) => {
                    *nonce = None;
                    if retried || error.code() != Some("bad_nonce") {
                        return Err(Error::Coordinator { during, source: error });
                    }
                    retried = true;
                }
            }
        }
    }
}
