//! `morsa quickstart`: the whole story in one command. A local cluster of real processes,
//! a file stored and read back, then nodes holding up to `f` shards killed and the leading
//! coordinator replica too (with the default 3 replicas), and the file read back again.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::Args;
use morsa_client::{Client, ClientConfig, StoreOptions};
use morsa_cluster::{Cluster, ClusterSpec};

use crate::blobs::{bytes, runtime};

/// Options of `morsa quickstart`.
#[derive(Debug, Args)]
pub struct QuickstartArgs {
    /// The file to store (default: 16 MiB of generated data).
    pub file: Option<PathBuf>,
    /// Storage nodes.
    #[arg(long, default_value_t = 7)]
    pub nodes: usize,
    /// Shards.
    #[arg(long, default_value_t = 70)]
    pub shards: u16,
    /// Coordinator replicas (1, or 3 or more); with several, the failure step also kills the
    /// leader and the summary names the replica elected after it.
    #[arg(long, default_value_t = 3, value_name = "N")]
    pub coordinators: usize,
    /// Keep the cluster directory (keys, data, logs) here instead of a temporary one.
    #[arg(long, value_name = "DIR")]
    pub keep: Option<PathBuf>,
}

/// How long the coordinator replicas may take to elect a leader.
const ELECTION_BOUND: Duration = Duration::from_secs(30);

/// Size of the generated sample.
const SAMPLE_BYTES: usize = 16 << 20;

/// Runs the quickstart.
pub fn run(args: &QuickstartArgs) -> anyhow::Result<()> {
    if args.coordinators == 2 {
        bail!("--coordinators 2 leaves no majority once the leader is killed: use 1, or 3 or more");
    }
    let temp = tempfile::tempdir().context("cannot create a temporary directory")?;
    let dir = args.keep.clone().unwrap_or_else(|| temp.path().join("cluster"));
    let file = match &args.file {
        Some(file) => file.clone(),
        None => {
            let sample = temp.path().join("sample.bin");
            std::fs::write(&sample, morsa_cluster::sample::bytes(SAMPLE_BYTES, 1))
                .context("cannot write the sample file")?;
            sample
        }
    };
    let original = std::fs::read(&file).with_context(|| format!("cannot read {}", file.display()))?;

    let coordinators = match args.coordinators {
        1 => "a coordinator".to_owned(),
        many => format!("{many} coordinator replicas"),
    };
    outln!(
        "1/5 starting a local cluster: {coordinators} and {} storage nodes, {} shards",
        args.nodes,
        args.shards
    );
    let started = Instant::now();
    let binary = std::env::current_exe().context("cannot find the morsa executable")?;
    let spec = ClusterSpec {
        nodes: args.nodes,
        coordinators: args.coordinators,
        shards: args.shards,
        dir: dir.clone(),
        epoch_duration: Duration::from_secs(3600),
        binary,
        node_links: Default::default(),
        zones: 0,
    };
    let mut cluster = Cluster::up(spec).context("the local cluster did not start")?;
    outln!("    up in {:.1} s, in {}", started.elapsed().as_secs_f64(), dir.display());

    let config = ClientConfig::load(&cluster.client_config_path())?;
    let runtime = runtime()?;
    let client = runtime.block_on(Client::connect(&config))?;
    let encoding = client.encoding();

    outln!("2/5 storing {} ({})", file.display(), bytes(original.len() as u64));
    let started = Instant::now();
    let stored = runtime.block_on(client.store_file(&file, &StoreOptions::default()))?;
    let store_time = started.elapsed();
    let encoded: u64 = stored.blobs.iter().map(|blob| blob.encoded_size).sum();
    outln!("    blob ID {} certified in {:.2} s", stored.blob_id, store_time.as_secs_f64());

    outln!("3/5 reading it back from the nodes");
    let (read_time, _) = read_and_compare(&runtime, &client, &stored.blob_id, &original)?;
    outln!("    identical, read in {:.2} s", read_time.as_secs_f64());

    let f = encoding.f();
    let mut down = Vec::new();
    let mut down_shards = 0;
    for node in cluster.nodes() {
        if down_shards + node.shards.len() <= f {
            down_shards += node.shards.len();
            down.push(node.index);
        }
    }
    let old_leader = if args.coordinators > 1 {
        Some(cluster.coordinator_leader(ELECTION_BOUND).context("cannot find the coordinators' leader")?)
    } else {
        None
    };
    let and_leader =
        old_leader.map(|leader| format!(" and the leading coordinator replica {leader}")).unwrap_or_default();
    outln!(
        "4/5 killing {} of {} nodes{and_leader} (SIGKILL), holding {down_shards} of {} shards (up to f = {f} may fail)",
        down.len(),
        args.nodes,
        encoding.n_shards()
    );
    for index in &down {
        cluster.kill(*index).with_context(|| format!("cannot kill node {index}"))?;
    }
    if let Some(leader) = old_leader {
        cluster
            .kill_coordinator(leader)
            .with_context(|| format!("cannot kill coordinator replica {leader}"))?;
    }

    outln!("5/5 reading it again with them down");
    let (degraded_time, report) = read_and_compare(&runtime, &client, &stored.blob_id, &original)?;
    outln!(
        "    identical, read in {:.2} s (nodes that did not answer and were worked around: {})",
        degraded_time.as_secs_f64(),
        report
    );
    let new_leader = match old_leader {
        Some(_) => {
            let leader = cluster.coordinator_leader(ELECTION_BOUND).context("no new coordinator leader")?;
            outln!("    coordinator replica {leader} was elected leader in its place");
            Some(leader)
        }
        None => None,
    };
    cluster.shutdown().context("stopping the cluster")?;

    outln!();
    outln!("summary");
    outln!("  blob ID             {}", stored.blob_id);
    outln!(
        "  size                {} (encoded: {}, {:.1}x)",
        bytes(stored.size),
        bytes(encoded),
        encoded as f64 / stored.size.max(1) as f64
    );
    outln!("  time to store       {:.2} s", store_time.as_secs_f64());
    outln!("  time to read        {:.2} s", read_time.as_secs_f64());
    outln!(
        "  nodes down          {} of {} ({down_shards} of {} shards)",
        down.len(),
        args.nodes,
        encoding.n_shards()
    );
    outln!("  read with them down {:.2} s, byte-identical", degraded_time.as_secs_f64());
    if let (Some(old), Some(new)) = (old_leader, new_leader) {
        outln!("  coordinator leader  replica {old} killed, replica {new} leads now");
    }
    if let Some(keep) = &args.keep {
        outln!("  cluster directory   {} (stopped; logs in logs/)", keep.display());
    }
    Ok(())
}

/// Reads `blob_id` and checks it equals `original`; answers the time and how many nodes failed.
fn read_and_compare(
    runtime: &tokio::runtime::Runtime,
    client: &Client,
    blob_id: &redstuff::BlobId,
    original: &[u8],
) -> anyhow::Result<(Duration, usize)> {
    let started = Instant::now();
    let mut data = Vec::with_capacity(original.len());
    let summary = runtime.block_on(client.read_file(blob_id, &mut data))?;
    let elapsed = started.elapsed();
    if data != original {
        bail!("the data read back differs from the file stored ({} vs {} bytes)", data.len(), original.len());
    }
    Ok((elapsed, summary.failures.len()))
}
