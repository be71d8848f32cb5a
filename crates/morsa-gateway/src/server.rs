//! Serving over HTTP/1.1 (hyper): the gateway's S3 service behind s3s, which parses requests,
//! verifies SigV4 signatures (header and presigned) against the users' keys and writes S3
//! XML errors, beside the blob API and the metrics ([`Router`]).

use std::future::Future;
use std::io::Write as _;
use std::sync::Arc;

use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder as ConnectionBuilder;
use morsa_client::{Client, ClientConfig};
use s3s::service::{S3Service, S3ServiceBuilder};
use tokio::net::TcpListener;

use crate::GatewayError;
use crate::blob_api::BlobApi;
use crate::config::GatewayConfig;
use crate::db::Db;
use crate::gateway::{Auth, Gateway, GatewayLimits};
use crate::router::{NameOperation, Router};

/// The S3 service of `gateway`, authenticating against `db`.
pub fn service(gateway: Gateway) -> S3Service {
    let db = Arc::clone(&gateway.db);
    let mut builder = S3ServiceBuilder::new(gateway);
    builder.set_auth(Auth { db });
    builder.set_access(NameOperation);
    builder.build()
}

/// Longest a shutdown waits for the trailing uploads of stored blobs.
const SHUTDOWN_UPLOADS_LIMIT: std::time::Duration = std::time::Duration::from_secs(30);

/// Opens the database, connects to Morsa and listens on the configured address; prints
/// `gateway listening on http://ADDR` once it accepts connections, and serves until
/// `shutdown` completes (then lets requests in flight finish, waits at most 30 s for the
/// uploads of stored blobs to the nodes outside their first quorum, and takes a last
/// namespace snapshot). Namespace snapshots are taken every `snapshot_interval` meanwhile.
pub async fn run(config: &GatewayConfig, shutdown: impl Future<Output = ()>) -> Result<(), GatewayError> {
    let db = Arc::new(Db::open(&config.database_path())?);
    let client_config = ClientConfig::load(&config.client_config)?;
    let keys = crate::encryption::load_keys(config, &client_config)?;
    // Range reads of sealed chunks open them with the client's keys.
    let client = Arc::new(Client::connect(&client_config).await?.with_crypto(keys.crypto.clone()));
    let limits = GatewayLimits {
        chunk_size: config.chunk_size,
        max_chunk_buffers: config.max_chunk_buffers,
        max_encoding_bytes: config.max_encoding_bytes,
        pack_threshold: config.pack_threshold,
        epochs: config.epochs,
        region: config.region.clone(),
    };
    let key = crate::snapshot::snapshot_key(&client_config)?;
    // A snapshot's parts are as large as the chunks.
    let snapshots = crate::snapshot::Snapshots::new(
        Arc::clone(&db),
        Arc::clone(&client),
        key,
        config.epochs,
        config.chunk_size,
    );
    let retention = config
        .retention_renew_every()
        .map(|every| crate::retention::start(Arc::clone(&db), Arc::clone(&client), config.epochs, every));
    let gateway = Gateway::new(Arc::clone(&db), Arc::clone(&client), &limits, keys);
    let reclaim = crate::reclaim::start(gateway.reclaimer(), db, client);
    let encodings = Arc::clone(&gateway.encodings);
    let blob_api = BlobApi::new(&gateway, config.blob_api.clone());
    let router = Router::new(service(gateway), blob_api);
    let listener = TcpListener::bind(config.listen)
        .await
        .map_err(|error| GatewayError::Config(format!("cannot listen on {}: {error}", config.listen)))?;
    let address = listener
        .local_addr()
        .map_err(|error| GatewayError::Config(format!("cannot read the listening address: {error}")))?;
    // A supervisor that stopped reading must not stop the gateway (`println!` would panic).
    if let Err(error) = writeln!(std::io::stdout().lock(), "gateway listening on http://{address}") {
        tracing::warn!(%error, "cannot announce the address on standard output");
    }
    let snapshots = crate::snapshot::SnapshotTask::start(snapshots, config.snapshot_every());
    serve(listener, router, shutdown).await;
    // Stored blobs' uploads to the nodes outside their first quorum may still run: a node left
    // without its slivers would rebuild them from its peers, at a cost.
    tracing::info!(limit = ?SHUTDOWN_UPLOADS_LIMIT, "waiting for the uploads of stored blobs to end");
    if !encodings.drained(SHUTDOWN_UPLOADS_LIMIT).await {
        tracing::warn!("uploads to some nodes did not end in time: those nodes will rebuild their slivers");
    }
    if let Some(retention) = retention {
        retention.abort();
    }
    reclaim.abort();
    if let Err(error) = snapshots.finish().await {
        tracing::error!(%error, "the namespace snapshot at shutdown failed");
    }
    Ok(())
}

/// Serves `router` on `listener` until `shutdown`, then waits for open connections.
pub async fn serve(listener: TcpListener, router: Arc<Router>, shutdown: impl Future<Output = ()>) {
    let connections = ConnectionBuilder::new(TokioExecutor::new());
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        let (socket, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    tracing::warn!(%error, "accepting a connection failed");
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let connection = connections.serve_connection(TokioIo::new(socket), router.connection(peer.ip()));
        let connection = graceful.watch(connection.into_owned());
        tokio::spawn(async move {
            if let Err(error) = connection.await {
                tracing::debug!(%error, "a connection ended with an error");
            }
        });
    }
    graceful.shutdown().await;
}
