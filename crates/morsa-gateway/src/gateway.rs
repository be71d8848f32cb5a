//! [`Gateway`]: the state every S3 request shares (the database, the Morsa client, the chunk
//! limits), and the authentication s3s asks it for.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use morsa_client::{Client, Crypto};
use s3s::auth::{S3Auth, SecretKey};
use s3s::dto::Timestamp;
use s3s::{S3Error, S3ErrorCode, S3Request, S3Result};
use tokio::sync::Semaphore;

use crate::GatewayError;
use crate::db::Db;
use crate::trailing::EncodingBudget;

/// The S3 gateway: implements [`s3s::S3`] over a Morsa client and its namespace.
#[derive(Debug, Clone)]
pub struct Gateway {
    pub(crate) db: Arc<Db>,
    pub(crate) client: Arc<Client>,
    /// Largest chunk blob, in bytes.
    pub(crate) chunk_size: usize,
    /// Largest last chunk of a body (half a chunk more, within the largest blob).
    pub(crate) last_chunk_limit: usize,
    /// Epochs each chunk is paid for.
    pub(crate) epochs: u32,
    /// One permit per chunk buffer held, across all requests.
    pub(crate) buffers: Arc<Semaphore>,
    /// Bytes of blob encodings held, across every store.
    pub(crate) encodings: Arc<EncodingBudget>,
    /// The region reported by GetBucketLocation.
    pub(crate) region: String,
    /// The keys chunks are sealed to and opened with.
    pub(crate) crypto: Arc<Crypto>,
    /// Whether new chunks are sealed.
    pub(crate) seal: bool,
    /// Bodies smaller than this are packed (0: none).
    pub(crate) pack_threshold: usize,
    /// Where small bodies are packed.
    pub(crate) packer: Arc<crate::packer::Packer>,
    /// Writes in flight and the blobs they hold, for deleting blobs nothing names.
    pub(crate) reclaimer: Arc<crate::reclaim::Reclaimer>,
}

/// How a gateway stores.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GatewayLimits {
    /// Largest chunk blob, in bytes (capped by the system's largest blob).
    pub chunk_size: u64,
    /// Chunk buffers held at once across all requests.
    pub max_chunk_buffers: usize,
    /// Bytes of blob encodings held at once across every store (`None`: a full chunk's per
    /// chunk buffer: the encodings of `max_chunk_buffers` full chunks).
    pub max_encoding_bytes: Option<u64>,
    /// Bodies smaller than this are packed several to a blob (0: never).
    pub pack_threshold: u64,
    /// Epochs each chunk is paid for.
    pub epochs: u32,
    /// The region.
    pub region: String,
}

impl Gateway {
    /// A gateway over `db` storing with `client`, sealing chunks with `keys`. A range of a
    /// sealed chunk is read with the client's segment range read, so `client` must open with
    /// the same keys (`Client::with_crypto(keys.crypto.clone())`, as [`crate::server::run`]
    /// builds it). Starts the packer of small bodies on the current tokio runtime.
    pub fn new(
        db: Arc<Db>,
        client: Arc<Client>,
        limits: &GatewayLimits,
        keys: crate::encryption::GatewayKeys,
    ) -> Self {
        // A sealed chunk must fit one blob.
        let largest = match keys.seal {
            true => keys.crypto.plaintext_limit(client.encoding().max_blob_size()),
            false => client.encoding().max_blob_size(),
        };
        let chunk_size = limits.chunk_size.min(largest).max(1);
        let last_chunk_limit = chunk_size.saturating_add(chunk_size / 2).min(largest).max(1);
        let last_chunk_limit = morsa_core::convert::saturating_usize(last_chunk_limit);
        let chunk_size = morsa_core::convert::saturating_usize(chunk_size);
        let encoding_bytes = limits
            .max_encoding_bytes
            .unwrap_or_else(|| default_encoding_budget(&client, chunk_size, limits.max_chunk_buffers));
        let encodings = Arc::new(EncodingBudget::new(encoding_bytes));
        let packer = crate::packer::Packer::start(
            chunk_size,
            store_pack(Arc::clone(&client), Arc::clone(&encodings), limits.epochs),
        );
        Self {
            db,
            client,
            chunk_size,
            last_chunk_limit,
            epochs: limits.epochs,
            // The global bound on chunk buffers, shared by every request.
            buffers: Arc::new(tokio::sync::Semaphore::new(limits.max_chunk_buffers)),
            encodings,
            region: limits.region.clone(),
            crypto: Arc::new(keys.crypto),
            seal: keys.seal,
            // A packed body must leave room for the others in its pack.
            pack_threshold: morsa_core::convert::saturating_usize(limits.pack_threshold).min(chunk_size / 2),
            packer: Arc::new(packer),
            reclaimer: Arc::new(crate::reclaim::Reclaimer::default()),
        }
    }

    /// The writes in flight and the passes deleting blobs nothing names
    /// ([`crate::reclaim::start`] runs them).
    pub fn reclaimer(&self) -> Arc<crate::reclaim::Reclaimer> {
        Arc::clone(&self.reclaimer)
    }

    /// What this gateway's chunks are read with.
    pub fn chunk_reader(&self) -> crate::reader::ChunkReader {
        crate::reader::ChunkReader { client: Arc::clone(&self.client), crypto: Arc::clone(&self.crypto) }
    }

    /// The name of the user who signed `req` (s3s has verified the signature).
    pub(crate) fn owner<T>(&self, req: &S3Request<T>) -> S3Result<String> {
        let credentials = req.credentials.as_ref().ok_or_else(|| {
            S3Error::with_message(S3ErrorCode::AccessDenied, "Every request must be signed.")
        })?;
        let user = self.db.user_by_key(&credentials.access_key).map_err(S3Error::from)?;
        user.map(|user| user.name).ok_or_else(|| S3Error::new(S3ErrorCode::InvalidAccessKeyId))
    }

    /// Runs a database write on a blocking thread (commits wait for fsync).
    pub(crate) async fn blocking<T: Send + 'static>(
        &self,
        work: impl FnOnce(&Db) -> Result<T, GatewayError> + Send + 'static,
    ) -> S3Result<T> {
        let db = Arc::clone(&self.db);
        tokio::task::spawn_blocking(move || work(&db))
            .await
            .map_err(|error| S3Error::internal_error(std::io::Error::other(error.to_string())))?
            .map_err(S3Error::from)
    }
}

/// The default [`GatewayLimits::max_encoding_bytes`]: the encodings of `max_chunk_buffers`
/// full chunks of `chunk_size` bytes (sealing adds well under 1%), as many stores as there are
/// buffers to fill.
pub fn default_encoding_budget(client: &Client, chunk_size: usize, max_chunk_buffers: usize) -> u64 {
    let chunk = morsa_core::convert::saturating_u64(chunk_size);
    let buffers = u64::try_from(max_chunk_buffers).unwrap_or(u64::MAX);
    client.encoding().encoded_size(chunk).unwrap_or(chunk).saturating_mul(buffers)
}

/// How the packer stores a pack: as one blob paid for the gateway's epochs, within the
/// gateway's encoding budget.
fn store_pack(client: Arc<Client>, encodings: Arc<EncodingBudget>, epochs: u32) -> crate::packer::StorePack {
    let slots = Arc::new(Semaphore::new(crate::packer::CONCURRENT_PACKS));
    Arc::new(move |bytes| {
        let client = Arc::clone(&client);
        let encodings = Arc::clone(&encodings);
        let slots = Arc::clone(&slots);
        Box::pin(async move {
            // The packer stores at most this many packs at once; a slot is held until the
            // pack's last uploads end.
            let slot = slots.acquire_owned().await.map_err(|error| error.to_string())?;
            let options = morsa_client::StoreOptions { epochs, permanent: false, force: false };
            let (stored, _) = crate::trailing::store_within(&client, &encodings, bytes, &options, slot)
                .await
                .map_err(|error| error.to_string())?;
            Ok(stored.blob_id)
        })
    })
}

/// Looks access keys up in the gateway's database.
#[derive(Debug)]
pub(crate) struct Auth {
    pub(crate) db: Arc<Db>,
}

#[async_trait::async_trait]
impl S3Auth for Auth {
    async fn get_secret_key(&self, access_key: &str) -> S3Result<SecretKey> {
        match self.db.user_by_key(access_key).map_err(S3Error::from)? {
            Some(user) => Ok(SecretKey::from(user.secret_access_key)),
            None => Err(S3Error::with_message(
                S3ErrorCode::InvalidAccessKeyId,
                "The AWS Access Key Id you provided does not exist in our records.",
            )),
        }
    }
}

/// A timestamp from milliseconds since the Unix epoch.
pub(crate) fn timestamp(ms: u64) -> Timestamp {
    Timestamp::from(SystemTime::UNIX_EPOCH + Duration::from_millis(ms))
}
