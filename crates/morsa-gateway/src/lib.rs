//! An S3-compatible gateway in front of Morsa, so restic, rclone, aws cli and boto3 store
//! backups unchanged.
//!
//! It owns: users and their access keys ([`users`]), the durable namespace of buckets,
//! objects and multipart uploads on redb ([`namespace`]), cutting request bodies into chunk
//! blobs with bounded memory while verifying their digests ([`writer`], [`checksum`]),
//! packing small objects several to a blob ([`packer`]), encrypting every object's chunks with age by default ([`encryption`]), streaming
//! objects and ranges back from Morsa and decrypting them ([`reader`]), S3 listings ([`listing`]) and
//! the S3 operations themselves (`s3`, on [s3s](https://crates.io/crates/s3s), which parses
//! requests, verifies SigV4 and writes XML), the Walrus-style HTTP API ([`blob_api`]),
//! metrics ([`metrics`]), what routes each request to which ([`router`]), and snapshots of
//! the namespace stored on Morsa to rebuild a lost disk from ([`snapshot`]), and keeping
//! the blobs of objects under Object Lock retention paid until it ends ([`retention`]), and
//! deleting chunk blobs nothing names any more ([`reclaim`]). It does not own
//! storing or reading blobs: that is `morsa-client`.
//!
//! An object is recorded only after every chunk blob it names is certified; a body whose
//! `Content-MD5` or `x-amz-checksum-*` does not match is refused (`BadDigest`) before its last
//! chunk is stored, and never recorded.
//!
//! ```no_run
//! # async fn example() -> Result<(), morsa_gateway::GatewayError> {
//! use morsa_gateway::{Db, GatewayConfig};
//! let config = GatewayConfig::load("gateway.toml".as_ref())?;
//! let user = Db::open(&config.database_path())?.create_user("backups")?;
//! println!("{} {}", user.access_key_id, user.secret_access_key);
//! morsa_gateway::server::run(&config, async { let _ = tokio::signal::ctrl_c().await; }).await?;
//! # Ok(())
//! # }
//! ```

pub mod blob_api;
pub mod checksum;
mod config;
mod db;
pub mod encryption;
mod error;
mod gateway;
pub mod listing;
pub mod metrics;
pub mod namespace;
pub mod packer;
pub mod reader;
pub mod reclaim;
pub mod retention;
pub mod router;
mod s3;
pub mod server;
pub mod snapshot;
mod trailing;
pub mod users;
pub mod writer;

pub use config::{DEFAULT_CHUNK_SIZE, GatewayConfig, encryption_toml, gateway_toml};
pub use db::Db;
pub use error::GatewayError;
pub use gateway::{Gateway, GatewayLimits};
