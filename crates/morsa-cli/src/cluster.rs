//! `morsa cluster`: a local cluster of real processes (a coordinator and storage nodes on
//! loopback), supervised in the foreground by `cluster up` and driven by the other commands
//! through the supervisor's control API.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use anyhow::{Context as _, bail};
use clap::{Args, Subcommand};
use morsa_cluster::control::{self, Control, ControlClient, ControlError};
use morsa_cluster::netem::LinkShape;
use morsa_cluster::pids::{self, Signal};
use morsa_cluster::{Cluster, ClusterSpec, ClusterState, STOP_TIMEOUT};
use tokio::signal::unix::{SignalKind, signal};

/// What `morsa cluster` can do.
#[derive(Debug, Subcommand)]
pub enum ClusterCommand {
    /// Start a coordinator and N storage nodes in DIR and supervise them in the foreground
    /// until Ctrl-C, SIGTERM or `morsa cluster down`.
    Up(UpArgs),
    /// Stop the cluster in DIR: every node, then the coordinator, then the supervisor.
    Down(DirArgs),
    /// Crash one node or coordinator replica (SIGKILL).
    Kill(NodeArgs),
    /// Stop one node or coordinator replica cleanly (SIGTERM).
    Stop(NodeArgs),
    /// Restart a killed or stopped node (and wait until it is ready) or coordinator replica
    /// on its data.
    Start(NodeArgs),
    /// Change the delay (and bandwidth) of a node's shaped link while the cluster runs; the
    /// node must have been started behind one (`up --node-delay` or `--node-rate`).
    Slow(SlowArgs),
    /// Add a storage node to the running cluster through the real transactions: a fresh
    /// operator account funded from the cluster's, RegisterNode, its zone, a stake; the node
    /// starts at once and joins the committee at the next selection.
    AddNode(AddNodeArgs),
    /// Retire node I through the real path: its operator sends RetireNode, which unstakes the
    /// operator's stake; the node leaves the committee at the next selection, and the stake is
    /// withdrawable once the change that moves its shards away is done.
    Retire(RetireArgs),
}

/// Options of `morsa cluster add-node`.
#[derive(Debug, Args)]
pub struct AddNodeArgs {
    /// The cluster's directory (as given to `cluster up`).
    #[arg(long, value_name = "DIR")]
    dir: PathBuf,
    /// The node's zone (default: none, a zone of its own).
    #[arg(long, value_name = "ZONE")]
    zone: Option<String>,
}

/// Options of `morsa cluster retire`.
#[derive(Debug, Args)]
pub struct RetireArgs {
    /// The cluster's directory (as given to `cluster up`).
    #[arg(long, value_name = "DIR")]
    dir: PathBuf,
    /// The node's index.
    #[arg(long, value_name = "I")]
    node: usize,
}

/// Options of `morsa cluster slow`.
#[derive(Debug, Args)]
pub struct SlowArgs {
    /// The cluster's directory (as given to `cluster up`).
    #[arg(long, value_name = "DIR")]
    dir: PathBuf,
    /// The node's index, 0 to N-1.
    #[arg(long, value_name = "I")]
    node: usize,
    /// One-way delay in each direction, in milliseconds (0: none).
    #[arg(long, value_name = "MS")]
    delay: u64,
    /// Up to this many more milliseconds of delay, at random.
    #[arg(long, value_name = "MS", default_value_t = 0)]
    jitter: u64,
    /// Bandwidth of each direction in megabits per second (default: unlimited).
    #[arg(long, value_name = "MBPS")]
    rate: Option<u64>,
}

/// Options of `morsa cluster up`.
#[derive(Debug, Args)]
pub struct UpArgs {
    /// Storage nodes.
    #[arg(long, default_value_t = 7)]
    nodes: usize,
    /// Coordinator replicas (one Raft group; 3 survive the loss of any one).
    #[arg(long, default_value_t = 1)]
    coordinators: usize,
    /// Shards (at least 4, and at least --nodes).
    #[arg(long, default_value_t = 70)]
    shards: u16,
    /// The cluster's directory; it must not exist or be empty.
    #[arg(long, value_name = "DIR")]
    dir: PathBuf,
    /// Length of an epoch: a number and a unit (ms, s, m, h).
    #[arg(long, value_name = "D", default_value = "1h", value_parser = morsa_cluster::parse_duration)]
    epoch_duration: Duration,
    /// Do not start the S3 gateway (by default one runs, with its keys in DIR/s3.env).
    #[arg(long)]
    no_gateway: bool,
    /// Put node I behind a shaped link of ours: a one-way delay of MS milliseconds in each
    /// direction, plus up to JITTER more at random (repeat for more nodes).
    #[arg(long, value_name = "I=MS[/JITTER]", value_parser = morsa_cluster::parse_node_delay)]
    node_delay: Vec<(usize, u64, u64)>,
    /// Limit node I's link to MBPS megabits per second in each direction (repeat for more
    /// nodes).
    #[arg(long, value_name = "I=MBPS", value_parser = morsa_cluster::parse_node_rate)]
    node_rate: Vec<(usize, u64)>,
    /// Spread the nodes over this many zones (`zone-0`, `zone-1`, …), round robin; committee
    /// selection keeps each zone to at most f shards where it can (0: no zones declared).
    #[arg(long, value_name = "Z", default_value_t = 0)]
    zones: usize,
}

/// The cluster directory.
#[derive(Debug, Args)]
pub struct DirArgs {
    /// The cluster's directory (as given to `cluster up`).
    #[arg(long, value_name = "DIR")]
    dir: PathBuf,
}

/// A node or a coordinator replica of the cluster.
#[derive(Debug, Args)]
pub struct NodeArgs {
    /// The cluster's directory (as given to `cluster up`).
    #[arg(long, value_name = "DIR")]
    dir: PathBuf,
    /// The node's index, 0 to N-1.
    #[arg(long, value_name = "I", required_unless_present = "coordinator", conflicts_with = "coordinator")]
    node: Option<usize>,
    /// The coordinator replica's index, 0 to C-1.
    #[arg(long, value_name = "I")]
    coordinator: Option<usize>,
}

/// Runs one `morsa cluster` command.
pub fn run(command: &ClusterCommand) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    match command {
        ClusterCommand::Up(args) => runtime.block_on(up(args)),
        ClusterCommand::Down(args) => runtime.block_on(down(&args.dir)),
        ClusterCommand::Kill(args) => runtime.block_on(node_command(args, NodeAction::Kill)),
        ClusterCommand::Stop(args) => runtime.block_on(node_command(args, NodeAction::Stop)),
        ClusterCommand::Start(args) => runtime.block_on(node_command(args, NodeAction::Start)),
        ClusterCommand::Slow(args) => runtime.block_on(slow(args)),
        ClusterCommand::AddNode(args) => runtime.block_on(add_node(args)),
        ClusterCommand::Retire(args) => {
            let node = morsa_cluster::retire_node(&args.dir, args.node)?;
            outln!(
                "node {} ({node}) is retired: it leaves the committee at the next selection; its operator's stake \
                 is withdrawable once the change that moves its shards away is done",
                args.node
            );
            Ok(())
        }
    }
}

async fn up(args: &UpArgs) -> anyhow::Result<()> {
    // Catch Ctrl-C and SIGTERM from now on: the children run in their own process groups, so
    // the supervisor must stop them itself, even when interrupted while starting them.
    let mut interrupt = signal(SignalKind::interrupt()).context("cannot catch SIGINT")?;
    let mut terminate = signal(SignalKind::terminate()).context("cannot catch SIGTERM")?;
    let binary = std::env::current_exe().context("cannot find the morsa executable")?;
    let spec = ClusterSpec {
        nodes: args.nodes,
        coordinators: args.coordinators,
        shards: args.shards,
        dir: args.dir.clone(),
        epoch_duration: args.epoch_duration,
        binary,
        node_links: morsa_cluster::node_links(&args.node_delay, &args.node_rate),
        zones: args.zones,
    };
    spec.validate()?;
    say(&format!("starting {} nodes with {} shards in {}", spec.nodes, spec.shards, spec.dir.display()));
    let with_gateway = !args.no_gateway;
    let mut starting = tokio::task::spawn_blocking(move || {
        let mut cluster = Cluster::up(spec)?;
        if with_gateway {
            cluster.start_gateway()?;
        }
        Ok::<_, morsa_cluster::ClusterError>(cluster)
    });
    let (cluster, interrupted) = tokio::select! {
        started = &mut starting => (started, false),
        _ = interrupt.recv() => (starting.await, true),
        _ = terminate.recv() => (starting.await, true),
    };
    let mut cluster = cluster.context("the start-up thread failed")?.context("cannot start the cluster")?;
    if interrupted {
        cluster.shutdown().context("interrupted while starting; the cluster was stopped")?;
        return Ok(());
    }
    let listener =
        tokio::net::TcpListener::bind(("127.0.0.1", 0)).await.context("cannot listen on 127.0.0.1")?;
    let control_url = format!("http://{}", listener.local_addr().context("cannot read the control address")?);
    cluster.set_control_url(Some(control_url.clone()))?;
    print_endpoints(&cluster, &args.epoch_duration);
    let cluster = Arc::new(Mutex::new(cluster));
    let control = Control::new(Arc::clone(&cluster), &args.dir).context("cannot write the control token")?;
    say(&format!(
        "cluster is up (control API {control_url}); stop it with Ctrl-C or `morsa cluster down --dir {}`",
        args.dir.display()
    ));
    let until = {
        let control = control.clone();
        async move {
            tokio::select! {
                _ = interrupt.recv() => {}
                _ = terminate.recv() => {}
                () = control.down_requested() => {}
            }
        }
    };
    morsa_api::server::serve(
        listener,
        control::router(control),
        morsa_api::server::ServeLimits::default(),
        until,
    )
    .await
    .context("the control API stopped")?;
    say("stopping the cluster");
    let stopped = tokio::task::spawn_blocking(move || {
        cluster.lock().unwrap_or_else(PoisonError::into_inner).shutdown()
    });
    stopped.await.context("the shutdown thread failed")??;
    say("cluster stopped");
    Ok(())
}

/// Prints a line of the supervisor's progress; a closed stdout (the terminal went away) must
/// not stop it from shutting the cluster down, so write errors are ignored.
fn say(line: &str) {
    use std::io::Write as _;
    let _ = writeln!(std::io::stdout().lock(), "{line}");
}

fn print_endpoints(cluster: &Cluster, epoch: &Duration) {
    let dir = cluster.dir().display();
    say(&format!("coordinator  {}  (log {dir}/logs/coord.log, epoch {epoch:?})", cluster.coordinator_url()));
    for (index, url) in cluster.coordinator_urls().iter().enumerate().skip(1) {
        say(&format!("coordinator {index}  {url}  (log {dir}/logs/coord{index}.log)"));
    }
    say(&format!(
        "coordinator admin token {}  (for morsa coord add-replica / remove-replica --admin-token-file)",
        cluster.coord_admin_token_path().display()
    ));
    for node in cluster.nodes() {
        let shards: Vec<String> = node.shards.iter().map(|shard| shard.0.to_string()).collect();
        let link = match (cluster.link(node.index), &node.direct_url) {
            (Some(shape), Some(direct)) => format!("  (shaped link: {shape}; the node itself on {direct})"),
            _ => String::new(),
        };
        say(&format!("node {:<7} {}  shards {}{link}", node.index, node.url, shards.join(",")));
    }
    let client = cluster.client_config_path();
    say(&format!(
        "client config {}  (account key {})",
        client.display(),
        cluster.account_key_path().display()
    ));
    say(&format!("try: MORSA_CONFIG={} morsa store FILE", client.display()));
    if let Some(url) = cluster.gateway_url() {
        say(&format!("S3 gateway   {url}  (log {dir}/logs/gateway.log, keys in {dir}/s3.env)"));
        say(&format!("try: . {}; aws s3 mb s3://backups", cluster.s3_env_path().display()));
    }
}

/// How long `down` waits for a supervisor to exit after it stopped the cluster.
const SUPERVISOR_EXIT: Duration = Duration::from_secs(30);

async fn down(dir: &Path) -> anyhow::Result<()> {
    let state = ClusterState::load(dir)?;
    let supervisor_alive = pids::is_alive(state.supervisor_pid);
    // Without the control token (a cluster of an older version) the supervisor is stopped by
    // its pid below.
    if supervisor_alive
        && let Some(url) = &state.control_url
        && let Ok(client) = ControlClient::for_cluster(dir, url)
    {
        match client.down().await {
            Ok(done) => {
                outln!("{done}");
                let pid = state.supervisor_pid;
                let gone = tokio::task::spawn_blocking(move || pids::wait_gone(pid, SUPERVISOR_EXIT)).await?;
                if !gone {
                    bail!(
                        "the cluster stopped but its supervisor (pid {pid}) did not exit within {SUPERVISOR_EXIT:?}"
                    );
                }
                return Ok(());
            }
            Err(ControlError::Unreachable { .. }) => {}
            Err(error) => return Err(error.into()),
        }
    }
    // No supervisor to ask: stop what cluster.json says is running, if it is ours.
    let needle = state.dir.to_string_lossy().into_owned();
    let ours: Vec<u32> = state
        .child_pids()
        .into_iter()
        .filter(|pid| pids::is_alive(*pid) && pids::command_line_mentions(*pid, &needle))
        .collect();
    if ours.is_empty() && !supervisor_alive {
        outln!("the cluster in {} is not running", dir.display());
        return Ok(());
    }
    let supervisor = supervisor_alive.then_some(state.supervisor_pid);
    tokio::task::spawn_blocking(move || stop_by_pid(supervisor, &ours)).await??;
    outln!("the cluster in {} is stopped", dir.display());
    Ok(())
}

/// SIGTERMs the supervisor (if any) and `children`, waits, and SIGKILLs the stragglers.
fn stop_by_pid(supervisor: Option<u32>, children: &[u32]) -> anyhow::Result<()> {
    for pid in supervisor.iter().chain(children) {
        pids::send(*pid, Signal::Term);
    }
    let mut killed = Vec::new();
    for pid in children.iter().chain(&supervisor) {
        if !pids::wait_gone(*pid, STOP_TIMEOUT) {
            pids::send(*pid, Signal::Kill);
            killed.push(pid.to_string());
        }
    }
    if !killed.is_empty() {
        bail!("processes {} did not stop on SIGTERM and were killed", killed.join(", "));
    }
    Ok(())
}

/// What `kill`, `stop` and `start` ask of the supervisor.
#[derive(Debug, Clone, Copy)]
enum NodeAction {
    Kill,
    Stop,
    Start,
}

/// A client of the running supervisor of the cluster in `dir`.
fn supervisor(dir: &Path) -> anyhow::Result<ControlClient> {
    let state = ClusterState::load(dir)?;
    let url = match &state.control_url {
        Some(url) if state.running && pids::is_alive(state.supervisor_pid) => url,
        _ => bail!(
            "the cluster in {dir} has no running supervisor; `morsa cluster down --dir {dir}` stops \
             whatever is left of it, `morsa cluster up` starts a new one",
            dir = dir.display()
        ),
    };
    Ok(ControlClient::for_cluster(dir, url)?)
}

async fn add_node(args: &AddNodeArgs) -> anyhow::Result<()> {
    outln!("{}", supervisor(&args.dir)?.add_node(args.zone.clone()).await?);
    Ok(())
}

async fn slow(args: &SlowArgs) -> anyhow::Result<()> {
    let shape = LinkShape {
        delay_ms: args.delay,
        jitter_ms: args.jitter,
        rate_bytes_per_second: args.rate.map(LinkShape::mbit_per_second),
    };
    outln!("{}", supervisor(&args.dir)?.shape_link(args.node, shape).await?);
    Ok(())
}

async fn node_command(args: &NodeArgs, action: NodeAction) -> anyhow::Result<()> {
    let client = supervisor(&args.dir)?;
    let done = match (args.node, args.coordinator, action) {
        (Some(node), _, NodeAction::Kill) => client.kill(node).await,
        (Some(node), _, NodeAction::Stop) => client.stop(node).await,
        (Some(node), _, NodeAction::Start) => client.start(node).await,
        (None, Some(replica), NodeAction::Kill) => client.kill_coordinator(replica).await,
        (None, Some(replica), NodeAction::Stop) => client.stop_coordinator(replica).await,
        (None, Some(replica), NodeAction::Start) => client.start_coordinator(replica).await,
        (None, None, _) => bail!("name a --node or a --coordinator"),
    }?;
    outln!("{done}");
    Ok(())
}
