//! The `[blob_api]` section of `gateway.toml`: who may store through the Walrus-style API.

use serde::Deserialize;

/// Who may store blobs through `PUT /v1/blobs` (reads are open to anyone who reaches the
/// gateway, as Walrus's aggregator is: blob contents on Morsa are readable by anyone anyway).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Publisher {
    /// Nobody: `PUT /v1/blobs` answers 403.
    Off,
    /// Clients connecting from a loopback address (127.0.0.0/8, ::1) only; the default,
    /// since every store is paid by the gateway's account.
    #[default]
    Loopback,
    /// Any client (as Walrus's public publishers are); pair it with a `token`.
    Anyone,
}

/// The Walrus-style HTTP API's settings.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BlobApiConfig {
    /// Who may store.
    #[serde(default)]
    pub publisher: Publisher,
    /// If set, a store must also carry `Authorization: Bearer TOKEN`.
    #[serde(default)]
    pub token: Option<String>,
}
