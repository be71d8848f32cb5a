//! `node.toml`: where the node listens and keeps its data, its key, its coordinator, its limits.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

/// The node's configuration file.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeConfig {
    /// Address to listen on.
    pub listen: SocketAddr,
    /// Directory of the node's database (relative paths are relative to the config file).
    pub data_dir: PathBuf,
    /// The BLS key file (`morsa node keygen`).
    pub key_file: PathBuf,
    /// Base URLs of the coordinator's replicas, e.g. `["http://127.0.0.1:7000"]`; the event
    /// follower and the reports fail over between them. [`NodeConfig::load`] also accepts
    /// the single `coordinator_url = "..."` and puts it here.
    #[serde(default)]
    pub coordinator_urls: Vec<String>,
    /// The single-URL spelling of `coordinator_urls`: [`NodeConfig::load`] folds it in and
    /// leaves `None` here, which is what other callers set.
    #[serde(default)]
    pub coordinator_url: Option<String>,
    /// Limits; every field has a default.
    #[serde(default)]
    pub limits: Limits,
    /// Self-healing (`[repair]`); every field has a default. [`NodeConfig::load`] also copies
    /// it into [`Limits::repair`], which is what the server reads.
    #[serde(default)]
    pub repair: RepairConfig,
    /// Availability summaries (`[availability]`); every field has a default.
    /// [`NodeConfig::load`] copies it into [`RepairConfig::report_interval_ms`].
    #[serde(default)]
    pub availability: AvailabilityConfig,
}

/// `[availability]`: how often the node tells the coordinators which slivers it lacks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AvailabilityConfig {
    /// Milliseconds between two availability summaries (one also follows every scan). Keep it
    /// a few times below the coordinators' `availability.stale_after_ms` (30 s by default).
    pub report_interval_ms: u64,
}

impl Default for AvailabilityConfig {
    fn default() -> Self {
        Self { report_interval_ms: 10_000 }
    }
}

/// `[repair]`: how blob sync, repair and the scrubber run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RepairConfig {
    /// Start with background repair and scrubbing paused (resume with
    /// `POST /v1/admin/repair/resume` from the node's own machine).
    pub paused: bool,
    /// Recovery-symbol bytes per second fetched by background repair (0: no limit).
    pub bandwidth_bytes_per_sec: u64,
    /// Repair rounds running at once.
    pub concurrency: usize,
    /// Slivers rebuilt in one round (one batched request per peer serves all of them).
    pub batch_slivers: usize,
    /// Most slivers queued; more missing ones are found again by the next scan.
    pub max_queued_slivers: usize,
    /// How long after a blob's certification a missing sliver waits before it is rebuilt
    /// (uploads may still be arriving), in milliseconds. Blobs certified while the node was
    /// down are synced at once.
    pub grace_ms: u64,
    /// How often every certified blob is checked for missing slivers, in milliseconds.
    pub scan_interval_ms: u64,
    /// Timeout of every call to a peer, in milliseconds.
    pub peer_timeout_ms: u64,
    /// Attempts per sliver before it is given up until the next scan; retries back off
    /// exponentially from one second up to a minute.
    pub max_attempts: u32,
    /// Rebuilds for reads of missing slivers running at once.
    pub max_on_demand: usize,
    /// Stored bytes per second the scrubber re-verifies (0 turns scrubbing off).
    pub scrub_bytes_per_sec: u64,
    /// Pause between two scrub passes, in milliseconds.
    pub scrub_interval_ms: u64,
    /// Blobs asked per page when pulling a gained shard from its previous owner (1 to 256).
    pub pull_page_blobs: u32,
    /// Page bytes per second pulled from previous owners (0: no limit).
    pub pull_bytes_per_sec: u64,
    /// How long a gained shard's pull may make no progress (its previous owner does not
    /// answer) before the whole shard is left to recovery, in milliseconds.
    pub pull_stall_ms: u64,
    /// How long a committee member may answer nothing before this node reports it
    /// unresponsive to the coordinator, in milliseconds (0: one epoch).
    pub unresponsive_after_ms: u64,
    /// How much lower the CPU priority of the node's background work is (rebuilds, answers
    /// to peers' recovery requests, scrubbing, shard pulls): its threads' nice value is the
    /// node's plus this, at most 19, the default (0: background work runs at the node's own
    /// priority). Under contention reads and uploads then win; on an idle CPU it changes
    /// nothing. At 10 the forty background threads of ten nodes sharing two cores still
    /// outweighed a reader (docs/PERFORMANCE.md); at 19 each weighs 15 against a normal
    /// thread's 1024.
    pub background_nice: u8,
    /// Milliseconds between two availability summaries: not read from `[repair]` but copied
    /// from `[availability]` by [`NodeConfig::load`].
    #[serde(skip)]
    pub report_interval_ms: u64,
}

impl Default for RepairConfig {
    fn default() -> Self {
        Self {
            paused: false,
            bandwidth_bytes_per_sec: 64 << 20,
            concurrency: 2,
            batch_slivers: 256,
            max_queued_slivers: 100_000,
            grace_ms: 10_000,
            scan_interval_ms: 600_000,
            peer_timeout_ms: 10_000,
            max_attempts: 8,
            max_on_demand: 4,
            scrub_bytes_per_sec: 8 << 20,
            scrub_interval_ms: 3_600_000,
            pull_page_blobs: 64,
            pull_bytes_per_sec: 64 << 20,
            pull_stall_ms: 20_000,
            unresponsive_after_ms: 0,
            background_nice: crate::blocking::LOWEST_PRIORITY_NICE,
            report_interval_ms: AvailabilityConfig::default().report_interval_ms,
        }
    }
}

/// Bounds on what the node takes on at once. See docs/NODE.md ("Limits") for what each bounds
/// and the memory they add up to.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// Uploads (metadata and slivers) processed at once, bodies included; more wait.
    pub max_concurrent_uploads: usize,
    /// Bytes of uploads held for blobs whose registration has not arrived yet (every upload
    /// counts at least [`Limits::PENDING_ENTRY_OVERHEAD`] bytes).
    pub pending_buffer_bytes: u64,
    /// Uploads held for blobs whose registration has not arrived yet.
    pub pending_buffer_entries: usize,
    /// How long such uploads are held before they are dropped, in milliseconds.
    pub pending_ttl_ms: u64,
    /// Longest any request may take until its answer starts, in milliseconds.
    pub request_timeout_ms: u64,
    /// Connections held open at once; at the cap a new connection replaces the oldest one
    /// with no request in flight.
    pub max_connections: usize,
    /// From a request's first byte to the end of its headers, in milliseconds.
    pub header_read_timeout_ms: u64,
    /// A connection with no request in flight and no bytes moving is closed after this many
    /// milliseconds (keep it above the clients' pool idle timeout, 90 s for reqwest).
    pub idle_timeout_ms: u64,
    /// A connection whose peer reads none of an answer for this many milliseconds is closed
    /// (and the answer's memory freed).
    pub write_timeout_ms: u64,
    /// Bytes of answers (slivers, recovery symbols) held in memory at once, from the moment
    /// they are read or computed until they are written; more requests wait.
    pub answer_buffer_bytes: u64,
    /// Largest recovery-batch answer this node builds; the items that do not fit are answered
    /// `over_budget`, for the caller to ask again.
    pub max_recovery_answer_bytes: u64,
    /// Recovery-batch answers one caller (IP address) may have computed or unread at once; more
    /// are refused as busy.
    pub max_recovery_answers_per_caller: usize,
    /// Inconsistency proofs verified at once (apart from the recovery work peers' repairs ask
    /// for); more are refused as busy.
    pub max_concurrent_proofs: usize,
    /// Bytes of the store's page cache (redb's read cache and write buffer together): what the
    /// node keeps in memory of the slivers and metadata it read and wrote. Reads that miss it
    /// go to the file, through the operating system's page cache.
    pub store_cache_bytes: u64,
    /// Free bytes kept on the filesystem of the database: while less is free the node refuses
    /// uploads (`insufficient_storage`) and keeps the rest for repairs, shard pulls and its
    /// database's own growth. Unset: 1% of the filesystem, at most 1 GiB; 0 refuses nothing.
    pub min_free_disk_bytes: Option<u64>,
    /// Self-healing settings: not read from `[limits]` but copied from `[repair]` by
    /// [`NodeConfig::load`], so that everything given `Limits` sees them.
    #[serde(skip)]
    pub repair: RepairConfig,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_concurrent_uploads: 64,
            pending_buffer_bytes: 256 << 20,
            pending_buffer_entries: 100_000,
            pending_ttl_ms: 60_000,
            request_timeout_ms: 60_000,
            max_connections: 1024,
            header_read_timeout_ms: 10_000,
            idle_timeout_ms: 120_000,
            write_timeout_ms: 30_000,
            answer_buffer_bytes: 256 << 20,
            max_recovery_answer_bytes: 8 << 20,
            max_recovery_answers_per_caller: 16,
            max_concurrent_proofs: 2,
            store_cache_bytes: morsa_core::convert::saturating_u64(morsa_store::DEFAULT_NODE_CACHE_BYTES),
            min_free_disk_bytes: None,
            repair: RepairConfig::default(),
        }
    }
}

impl Limits {
    /// Bytes every upload held in the pending buffer counts on top of its body (its
    /// bookkeeping), so that empty bodies cannot fill the buffer for free.
    pub const PENDING_ENTRY_OVERHEAD: u64 = 256;

    /// [`Limits::request_timeout_ms`] as a duration.
    pub fn request_timeout(&self) -> Duration {
        Duration::from_millis(self.request_timeout_ms)
    }

    /// The bounds of the node's accept loop.
    pub fn serve_limits(&self) -> morsa_api::server::ServeLimits {
        morsa_api::server::ServeLimits {
            max_connections: self.max_connections,
            header_read_timeout: Duration::from_millis(self.header_read_timeout_ms),
            idle_timeout: Duration::from_millis(self.idle_timeout_ms),
            write_timeout: Duration::from_millis(self.write_timeout_ms),
        }
    }
}

/// Why the configuration could not be used: the shared configuration error, naming the file.
pub use morsa_plumbing::config::ConfigError as NodeConfigError;

/// Largest configuration file read.
const MAX_CONFIG_BYTES: u64 = 1 << 20;

impl NodeConfig {
    /// Reads `path`, resolving relative paths against its directory, and checks the values.
    pub fn load(path: &Path) -> Result<Self, NodeConfigError> {
        let invalid = |message: String| NodeConfigError::invalid(path, message);
        let mut config: Self = morsa_plumbing::config::load_toml(path, MAX_CONFIG_BYTES)?;
        let base = path.parent().unwrap_or(Path::new("."));
        config.data_dir = base.join(&config.data_dir);
        config.key_file = base.join(&config.key_file);
        let list =
            (!config.coordinator_urls.is_empty()).then(|| std::mem::take(&mut config.coordinator_urls));
        config.coordinator_urls = morsa_api::coord::coordinator_urls(config.coordinator_url.take(), list)
            .map_err(|error| invalid(error.to_string()))?;
        if config.limits.max_concurrent_uploads == 0 {
            return Err(invalid("limits.max_concurrent_uploads must be at least 1".into()));
        }
        let limits = &config.limits;
        for (value, name) in [
            (limits.request_timeout_ms, "limits.request_timeout_ms"),
            (limits.header_read_timeout_ms, "limits.header_read_timeout_ms"),
            (limits.idle_timeout_ms, "limits.idle_timeout_ms"),
            (limits.write_timeout_ms, "limits.write_timeout_ms"),
            (limits.answer_buffer_bytes, "limits.answer_buffer_bytes"),
            (limits.max_recovery_answer_bytes, "limits.max_recovery_answer_bytes"),
            (limits.store_cache_bytes, "limits.store_cache_bytes"),
        ] {
            if value == 0 {
                return Err(invalid(format!("{name} must be positive")));
            }
        }
        for (value, name) in [
            (limits.max_connections, "limits.max_connections"),
            (limits.pending_buffer_entries, "limits.pending_buffer_entries"),
            (limits.max_recovery_answers_per_caller, "limits.max_recovery_answers_per_caller"),
            (limits.max_concurrent_proofs, "limits.max_concurrent_proofs"),
        ] {
            if value == 0 {
                return Err(invalid(format!("{name} must be at least 1")));
            }
        }
        let repair = &config.repair;
        for (value, name) in [
            (repair.concurrency, "repair.concurrency"),
            (repair.batch_slivers, "repair.batch_slivers"),
            (repair.max_queued_slivers, "repair.max_queued_slivers"),
            (repair.max_on_demand, "repair.max_on_demand"),
        ] {
            if value == 0 {
                return Err(invalid(format!("{name} must be at least 1")));
            }
        }
        if config.availability.report_interval_ms == 0 {
            return Err(invalid("availability.report_interval_ms must be positive".into()));
        }
        if repair.peer_timeout_ms == 0 || repair.scan_interval_ms == 0 || repair.max_attempts == 0 {
            return Err(invalid(
                "repair.peer_timeout_ms, repair.scan_interval_ms and repair.max_attempts must be positive"
                    .into(),
            ));
        }
        if repair.background_nice > crate::blocking::LOWEST_PRIORITY_NICE {
            return Err(invalid(format!(
                "repair.background_nice must be 0 to {} (nice values stop there), not {}",
                crate::blocking::LOWEST_PRIORITY_NICE,
                repair.background_nice
            )));
        }
        config.repair.report_interval_ms = config.availability.report_interval_ms;
        config.limits.repair = config.repair;
        Ok(config)
    }

    /// The node database's file.
    pub fn store_path(&self) -> PathBuf {
        self.data_dir.join("node.redb")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(text: &str) -> Result<NodeConfig, NodeConfigError> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("node.toml");
        std::fs::write(&path, text).unwrap();
        NodeConfig::load(&path)
    }

    const GOOD: &str = "listen = \"127.0.0.1:9000\"\ndata_dir = \"data\"\nkey_file = \"node.key\"\ncoordinator_url = \"http://127.0.0.1:7000\"\n";

    #[test]
    fn a_minimal_config_gets_default_limits() {
        let config = load(GOOD).unwrap();
        assert_eq!(config.limits, Limits::default());
        assert_eq!(config.repair, RepairConfig::default());
        assert!(config.data_dir.ends_with("data"));
        assert_eq!(config.coordinator_urls, ["http://127.0.0.1:7000"]);
        let listed = GOOD.replace(
            "coordinator_url = \"http://127.0.0.1:7000\"",
            "coordinator_urls = [\"http://127.0.0.1:7000\", \"http://127.0.0.1:7001\"]",
        );
        assert_eq!(
            load(&listed).unwrap().coordinator_urls,
            ["http://127.0.0.1:7000", "http://127.0.0.1:7001"]
        );
    }

    #[test]
    fn errors_name_the_field() {
        let missing = load("listen = \"127.0.0.1:9000\"\n").unwrap_err().to_string();
        assert!(missing.contains("data_dir"), "{missing}");
        let unknown = load(&format!("{GOOD}colour = 3\n")).unwrap_err().to_string();
        assert!(unknown.contains("colour"), "{unknown}");
        let bad_url = load(&GOOD.replace("http://", "ftp://")).unwrap_err().to_string();
        assert!(bad_url.contains("ftp://127.0.0.1:7000") && bad_url.contains("http://"), "{bad_url}");
        let both = load(&format!("{GOOD}coordinator_urls = [\"http://127.0.0.1:7001\"]\n")).unwrap_err();
        assert!(both.to_string().contains("not both"), "{both}");
        let zero = load(&format!("{GOOD}[limits]\nmax_concurrent_uploads = 0\n")).unwrap_err().to_string();
        assert!(zero.contains("max_concurrent_uploads"), "{zero}");
        let zero = load(&format!("{GOOD}[repair]\nconcurrency = 0\n")).unwrap_err().to_string();
        assert!(zero.contains("repair.concurrency"), "{zero}");
        let too_nice = load(&format!("{GOOD}[repair]\nbackground_nice = 20\n")).unwrap_err().to_string();
        assert!(too_nice.contains("repair.background_nice"), "{too_nice}");
        let no_cache = load(&format!("{GOOD}[limits]\nstore_cache_bytes = 0\n")).unwrap_err().to_string();
        assert!(no_cache.contains("limits.store_cache_bytes"), "{no_cache}");
        let cache = load(&format!("{GOOD}[limits]\nstore_cache_bytes = 1048576\n")).unwrap();
        assert_eq!(cache.limits.store_cache_bytes, 1 << 20);
        let nicest = load(&format!("{GOOD}[repair]\nbackground_nice = 19\n")).unwrap();
        assert_eq!(nicest.limits.repair.background_nice, 19);
        let nicer = load(&format!("{GOOD}[repair]\nbackground_nice = 5\n")).unwrap();
        assert_eq!(nicer.limits.repair.background_nice, 5, "read, not the default (19)");
    }

    #[test]
    fn the_repair_section_reaches_the_limits() {
        let config = load(&format!("{GOOD}[repair]\npaused = true\ngrace_ms = 5\n")).unwrap();
        assert!(config.limits.repair.paused);
        assert_eq!(config.limits.repair.grace_ms, 5);
        assert_eq!(config.limits.repair.concurrency, RepairConfig::default().concurrency);
    }
}
