//! `morsa coord`: run the coordination service, change its replica group, audit it.

mod membership;
mod served_audit;

use std::path::PathBuf;

use anyhow::Context as _;
use clap::{Args, Subcommand};
use morsa_coord::raft::{Replica, ReplicaSettings};
use morsa_coord::server::{AdminToken, Clock, Shared, serve};
use morsa_coord::{CoordConfig, Coordinator, Genesis};

/// What `morsa coord` can do.
#[derive(Debug, Subcommand)]
pub enum CoordCommand {
    /// Run the coordinator in the foreground until Ctrl-C or SIGTERM.
    Run(RunArgs),
    /// Replay a coordinator's log and re-verify every signature, certificate and the event
    /// chain: of a stopped replica's data directory (`--data`), or of a running replica
    /// (`--url`).
    Audit(AuditArgs),
    /// Add a replica to a running group: start it first with an empty data directory (see
    /// docs/COORDINATOR.md); it catches up, then votes.
    AddReplica(membership::AddReplicaArgs),
    /// Remove a replica from a running group.
    RemoveReplica(membership::RemoveReplicaArgs),
}

/// Options of `morsa coord run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// The configuration file (listen address, data directory, genesis file).
    #[arg(long, value_name = "FILE", env = "MORSA_COORD_CONFIG")]
    config: PathBuf,
}

/// Runs one `morsa coord` command.
pub fn run(command: &CoordCommand) -> anyhow::Result<()> {
    match command {
        CoordCommand::Run(args) => run_server(args),
        CoordCommand::Audit(args) => audit(args),
        CoordCommand::AddReplica(args) => membership::add(args),
        CoordCommand::RemoveReplica(args) => membership::remove(args),
    }
}

/// Name of the copy of the genesis kept in the data directory, so the directory alone is
/// enough to audit or restart.
const GENESIS_COPY: &str = "genesis.json";

fn run_server(args: &RunArgs) -> anyhow::Result<()> {
    morsa_plumbing::telemetry::init_logging("info");
    let config = CoordConfig::load(&args.config)?;
    let genesis = Genesis::load(&config.genesis)?;
    let admin_token = config.admin_token_file.as_deref().map(AdminToken::load).transpose()?;
    std::fs::create_dir_all(&config.data_dir)
        .with_context(|| format!("cannot create the data directory {}", config.data_dir.display()))?;
    let coordinator = Coordinator::open(&genesis, &config.log_path())
        .with_context(|| format!("cannot open the coordinator's log in {}", config.data_dir.display()))?;
    let copy = config.data_dir.join(GENESIS_COPY);
    if !copy.exists() {
        let text = serde_json::to_string_pretty(&genesis).context("cannot serialize the genesis")?;
        morsa_plumbing::file::replace(&copy, text.as_bytes(), morsa_plumbing::Access::Shared)?;
    }
    let runtime = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(config.listen)
            .await
            .with_context(|| format!("cannot listen on {}", config.listen))?;
        let address = listener.local_addr().context("cannot read the listening address")?;
        let (epoch, events) = (coordinator.state().epoch.0, coordinator.state().event_count);
        let settings = ReplicaSettings {
            id: config.id,
            replicas: config.initial_replicas(),
            raft_log: config.raft_log_path(),
            cluster_name: genesis.chain_id.clone(),
            snapshot_every: config.snapshot_every,
        };
        let replica = Replica::start(settings, coordinator).await.with_context(|| {
            format!("cannot start replica {} in {}", config.id, config.data_dir.display())
        })?;
        tracing::info!(%address, epoch, events, replica = config.id, "coordinator listening");
        outln!("coordinator listening on http://{address}");
        let clock = Clock::with_manual_epochs(config.testing.manual_epochs);
        if config.testing.manual_epochs {
            tracing::warn!("[testing] manual_epochs is on: POST /v1/testing/next-epoch ends the epoch");
        }
        let stale_after = std::time::Duration::from_millis(config.availability.stale_after_ms);
        serve(listener, Shared::replicated(replica, clock, admin_token, stale_after), shutdown_signal())
            .await
            .context("the server stopped")
    })
}

/// Resolves on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        () = terminate => {}
    }
    tracing::info!("shutting down");
}

/// Options of `morsa coord audit`.
#[derive(Debug, Args)]
pub struct AuditArgs {
    /// The coordinator's data directory (the coordinator must be stopped).
    #[arg(long, value_name = "DIR", required_unless_present = "url", conflicts_with = "url")]
    data: Option<PathBuf>,
    /// A running replica's URL: its recorded log and events are read over HTTP.
    #[arg(long, value_name = "URL")]
    url: Option<String>,
    /// The genesis file; by default the copy the coordinator keeps in its data directory
    /// (required with `--url`).
    #[arg(long, value_name = "FILE")]
    genesis: Option<PathBuf>,
    /// Print the report as one JSON object.
    #[arg(long)]
    json: bool,
}

fn audit(args: &AuditArgs) -> anyhow::Result<()> {
    if let Some(url) = &args.url {
        return audit_running(args, url);
    }
    let data = args.data.as_ref().context("give --data DIR or --url URL")?;
    let genesis_path = args.genesis.clone().unwrap_or_else(|| data.join(GENESIS_COPY));
    let genesis = Genesis::load(&genesis_path)?;
    let log = data.join(morsa_coord::LOG_FILE);
    let report = morsa_coord::audit_path(&genesis, &log)
        .with_context(|| format!("the audit of {} failed", data.display()))?;
    if args.json {
        outln!("{}", serde_json::to_string(&report)?);
    } else {
        outln!(
            "audit passed: {} log entries, {} events, epoch {}",
            report.entries,
            report.events,
            report.epoch.0
        );
        outln!("  certified blobs: {}, invalid blobs: {}", report.certified_blobs, report.invalid_blobs);
        outln!("  state hash: {}", report.state_hash);
        outln!("  event head: {}", report.event_head);
    }
    Ok(())
}

fn audit_running(args: &AuditArgs, url: &str) -> anyhow::Result<()> {
    let genesis_path = args
        .genesis
        .as_ref()
        .context("--url needs --genesis FILE: the deployment's genesis, which the audit trusts")?;
    let genesis = Genesis::load(genesis_path)?;
    let audited = crate::blobs::runtime()?
        .block_on(served_audit::audit(url, &genesis))
        .with_context(|| format!("the audit of the replica at {url} failed"))?;
    if args.json {
        outln!("{}", serde_json::to_string(&audited)?);
        return Ok(());
    }
    let report = &audited.report;
    outln!(
        "audit passed: {} log entries, {} events, epoch {} (replica at {url}, running)",
        report.entries,
        report.events,
        report.epoch.0
    );
    outln!("  certified blobs: {}, invalid blobs: {}", report.certified_blobs, report.invalid_blobs);
    outln!("  served events: the replayed chain");
    if audited.state_compared {
        outln!("  state hash: {} (the replica's)", report.state_hash);
    } else {
        outln!(
            "  state hash: {} (not compared: the replica kept applying entries during the audit)",
            report.state_hash
        );
    }
    outln!("  event head: {}", report.event_head);
    Ok(())
}
