//! `morsa bench gateway`: restic backup and restore of a generated tree through the S3
//! gateway of a local cluster, against restic to a local directory in the same run, and the
//! gateway's peak resident memory during one large single PUT.
//!
//! The gateway is the one `morsa cluster up` starts (16 MiB chunks, every object encrypted);
//! restic and the aws cli are the real programs, found on `PATH`. The tree holds many small
//! files, some of a few MiB and a few large ones (above the chunk size when the tree is large
//! enough), all incompressible. Every restore is compared with the tree byte for byte.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::Context as _;
use clap::Args;
use serde::Serialize;

/// Options of `morsa bench gateway`.
#[derive(Debug, Args)]
pub struct GatewayArgs {
    /// Storage nodes.
    #[arg(long, default_value_t = 10)]
    nodes: usize,
    /// Shards n.
    #[arg(long, default_value_t = 1000)]
    shards: u16,
    /// Bytes in the generated tree, and in the single PUT whose memory is measured.
    #[arg(long, default_value_t = 1 << 30)]
    size: u64,
    /// Backup and restore runs of each kind (each through a new repository); medians are
    /// reported.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..=100))]
    runs: u32,
    /// Where the cluster lives (default: a temporary directory).
    #[arg(long)]
    dir: Option<PathBuf>,
    /// Print one JSON object instead of lines.
    #[arg(long)]
    json: bool,
}

/// Targets of issue 13: backup through the gateway at half the local-directory speed or
/// better, restore at 0.7 or better, and a 1 GiB PUT within 400 MiB of gateway memory.
const BACKUP_RATIO_TARGET: f64 = 0.5;
const RESTORE_RATIO_TARGET: f64 = 0.7;
const PUT_PEAK_RSS_TARGET: u64 = 400 << 20;

/// Seconds of one restic backup and one restore, each to one repository.
#[derive(Debug, Serialize)]
struct Timings {
    backup_seconds: Vec<f64>,
    restore_seconds: Vec<f64>,
    backup_mb_s: f64,
    restore_mb_s: f64,
}

#[derive(Debug, Serialize)]
struct GatewayReport {
    nodes: usize,
    shards: u16,
    tree_bytes: u64,
    tree_files: usize,
    runs: u32,
    local_directory: Timings,
    gateway: Timings,
    /// Gateway over local-directory throughput.
    backup_ratio: f64,
    restore_ratio: f64,
    backup_ratio_target: f64,
    restore_ratio_target: f64,
    put_bytes: u64,
    put_seconds: f64,
    /// The gateway's `VmHWM` after the PUT (it is the first request the gateway serves).
    put_peak_rss_bytes: Option<u64>,
    put_peak_rss_target_bytes: u64,
}

/// Runs the benchmark.
pub fn run(args: &GatewayArgs) -> anyhow::Result<()> {
    for (program, version) in [("restic", "version"), ("aws", "--version")] {
        let found = Command::new(program).arg(version).output();
        anyhow::ensure!(
            found.is_ok_and(|output| output.status.success()),
            "`morsa bench gateway` runs {program}, which is not on PATH"
        );
    }
    let (temp, mut cluster) = super::local_cluster(args.nodes, args.shards, args.dir.as_deref())?;
    let url = cluster.start_gateway().context("the gateway did not start")?;
    let pid = cluster.state().gateway.and_then(|gateway| gateway.pid).context("the gateway has no pid")?;
    let work = temp.path().join("work");
    std::fs::create_dir_all(&work)?;
    let clients = Clients::new(&work, &cluster.s3_env_path())?;

    // The PUT first: the gateway's peak memory then covers only its start and this request.
    let put_file = work.join("put.bin");
    write_file(&put_file, args.size, u64::MAX)?;
    clients.aws(&["s3", "mb", "s3://put"])?;
    let started = Instant::now();
    let put_arg = put_file.to_str().context("a temporary path is not UTF-8")?;
    clients.aws(&["s3api", "put-object", "--bucket", "put", "--key", "one.bin", "--body", put_arg])?;
    let put_seconds = started.elapsed().as_secs_f64();
    let put_peak_rss_bytes = peak_rss_of(pid);
    std::fs::remove_file(&put_file)?;
    // Deleted objects' blobs are deleted by the gateway: the nodes' disks do not hold every
    // run's data at once.
    clients.aws(&["s3", "rm", "s3://put/one.bin"])?;

    let tree = work.join("tree");
    let files = generate_tree(&tree, args.size)?;
    let mut local = Runs::default();
    let mut gateway = Runs::default();
    for run in 0..args.runs {
        let repository = work.join(format!("local-repo-{run}"));
        local.push(clients.backup_and_restore(&repository.display().to_string(), &tree, &work)?);
        std::fs::remove_dir_all(&repository)?;
        let bucket = format!("restic-{run}");
        gateway.push(clients.backup_and_restore(&format!("s3:{url}/{bucket}"), &tree, &work)?);
        clients.aws(&["s3", "rm", "--recursive", "--quiet", &format!("s3://{bucket}")])?;
    }
    cluster.shutdown().context("stopping the cluster")?;

    let local_directory = local.timings(args.size);
    let gateway = gateway.timings(args.size);
    let report = GatewayReport {
        nodes: args.nodes,
        shards: args.shards,
        tree_bytes: args.size,
        tree_files: files,
        runs: args.runs,
        backup_ratio: gateway.backup_mb_s / local_directory.backup_mb_s,
        restore_ratio: gateway.restore_mb_s / local_directory.restore_mb_s,
        local_directory,
        gateway,
        backup_ratio_target: BACKUP_RATIO_TARGET,
        restore_ratio_target: RESTORE_RATIO_TARGET,
        put_bytes: args.size,
        put_seconds,
        put_peak_rss_bytes,
        put_peak_rss_target_bytes: PUT_PEAK_RSS_TARGET,
    };
    print(&report, args.json)
}

fn print(report: &GatewayReport, json: bool) -> anyhow::Result<()> {
    if json {
        println!("{}", serde_json::to_string_pretty(report)?);
        return Ok(());
    }
    let mb = morsa_core::convert::lossy_f64(report.tree_bytes) / 1e6;
    println!(
        "gateway: {} nodes, n = {}, restic on a tree of {mb:.0} MB in {} files, {} runs (medians)",
        report.nodes, report.shards, report.tree_files, report.runs
    );
    let rows = [
        ("backup", &report.local_directory.backup_mb_s, &report.gateway.backup_mb_s, report.backup_ratio),
        ("restore", &report.local_directory.restore_mb_s, &report.gateway.restore_mb_s, report.restore_ratio),
    ];
    for (what, local, gateway, ratio) in rows {
        println!("  {what:<8} local directory {local:>8.1} MB/s, gateway {gateway:>8.1} MB/s: {ratio:.2}x");
    }
    println!(
        "  targets: backup >= {:.1}x, restore >= {:.1}x",
        report.backup_ratio_target, report.restore_ratio_target
    );
    let put_mb = morsa_core::convert::lossy_f64(report.put_bytes) / 1e6;
    println!("  single PUT of {put_mb:.0} MB: {:.1} s", report.put_seconds);
    if let Some(rss) = report.put_peak_rss_bytes {
        println!(
            "  gateway peak RSS during it: {} MiB (target <= {} MiB)",
            rss >> 20,
            report.put_peak_rss_target_bytes >> 20
        );
    }
    Ok(())
}

/// The seconds of each run of one kind.
#[derive(Debug, Default)]
struct Runs {
    backup: Vec<f64>,
    restore: Vec<f64>,
}

impl Runs {
    fn push(&mut self, (backup, restore): (f64, f64)) {
        self.backup.push(backup);
        self.restore.push(restore);
    }

    fn timings(self, bytes: u64) -> Timings {
        let mb = morsa_core::convert::lossy_f64(bytes) / 1e6;
        Timings {
            backup_mb_s: mb / median(&self.backup),
            restore_mb_s: mb / median(&self.restore),
            backup_seconds: self.backup,
            restore_seconds: self.restore,
        }
    }
}

/// restic and the aws cli with the gateway's keys and endpoint (`DIR/s3.env`), and nothing
/// of this machine's own AWS configuration.
struct Clients {
    env: HashMap<String, String>,
}

impl Clients {
    fn new(work: &Path, s3_env: &Path) -> anyhow::Result<Self> {
        let text =
            std::fs::read_to_string(s3_env).with_context(|| format!("reading {}", s3_env.display()))?;
        let mut env: HashMap<String, String> = text
            .lines()
            .filter_map(|line| line.strip_prefix("export ")?.split_once('='))
            .map(|(name, value)| (name.to_string(), value.to_string()))
            .collect();
        let aws_config = work.join("aws-config");
        std::fs::write(&aws_config, "[default]\n")?;
        env.insert("AWS_CONFIG_FILE".into(), aws_config.display().to_string());
        env.insert("AWS_SHARED_CREDENTIALS_FILE".into(), work.join("aws-credentials").display().to_string());
        env.insert("RESTIC_PASSWORD".into(), "bench".into());
        Ok(Self { env })
    }

    fn run(&self, program: &str, args: &[&str]) -> anyhow::Result<String> {
        let output = Command::new(program)
            .args(args)
            .envs(&self.env)
            .env_remove("AWS_CA_BUNDLE")
            .env_remove("AWS_PROFILE")
            .output()
            .with_context(|| format!("running {program}"))?;
        anyhow::ensure!(
            output.status.success(),
            "{program} {args:?} failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    }

    fn aws(&self, args: &[&str]) -> anyhow::Result<String> {
        self.run("aws", args)
    }

    /// Backs `tree` up to a new `repository` and restores it under `work`, checking it comes
    /// back identical; answers the seconds of the backup and of the restore.
    fn backup_and_restore(&self, repository: &str, tree: &Path, work: &Path) -> anyhow::Result<(f64, f64)> {
        let cache = work.join("restic-cache");
        let target = work.join("restored");
        let cache_arg = format!("--cache-dir={}", cache.display());
        let utf8 = |path: &Path| path.to_str().map(str::to_owned).context("a temporary path is not UTF-8");
        let (tree_arg, target_arg) = (utf8(tree)?, utf8(&target)?);
        self.run("restic", &["-r", repository, "init", "--quiet", &cache_arg])?;
        let started = Instant::now();
        self.run("restic", &["-r", repository, "backup", "--quiet", &cache_arg, &tree_arg])?;
        let backup = started.elapsed().as_secs_f64();
        let started = Instant::now();
        let restore = ["-r", repository, "restore", "latest", "--quiet", &cache_arg, "--target", &target_arg];
        self.run("restic", &restore)?;
        let restore_seconds = started.elapsed().as_secs_f64();
        let restored = target.join(tree.strip_prefix("/").unwrap_or(tree));
        let diff =
            Command::new("diff").arg("-rq").arg(tree).arg(&restored).output().context("running diff")?;
        anyhow::ensure!(
            diff.status.success(),
            "restic restored a different tree from {repository}: {}",
            String::from_utf8_lossy(&diff.stdout)
        );
        std::fs::remove_dir_all(&target)?;
        std::fs::remove_dir_all(&cache)?;
        Ok((backup, restore_seconds))
    }
}

/// The files of a tree of `size` bytes: paths and lengths. About 2% of the bytes are small
/// files (1–32 KiB), 28% files of 1–8 MiB, the rest large files of an eighth of the tree
/// (at most 96 MiB, so a 1 GiB tree holds files larger than a chunk, even one of 64 MiB).
fn tree_files(size: u64) -> Vec<(PathBuf, u64)> {
    let mut files = Vec::new();
    let mut fill = |dir: &str, budget: u64, length: &dyn Fn(u64) -> u64| {
        let mut left = budget;
        let mut index = 0u64;
        while left > 0 {
            let len = length(index).clamp(1, left);
            files.push((Path::new(dir).join(format!("d{}", index % 16)).join(format!("f{index}")), len));
            left -= len;
            index += 1;
        }
    };
    let small = size / 50;
    let medium = size / 100 * 28;
    fill("small", small, &|index| 1024 + (index * 7919) % (31 << 10));
    fill("medium", medium, &|index| (1 << 20) + (index * 1_048_583) % (7 << 20));
    let large_len = (size / 8).clamp(1, 96 << 20);
    fill("large", size - small - medium, &|_| large_len);
    files
}

/// Writes the tree of [`tree_files`] under `root`; answers its number of files.
fn generate_tree(root: &Path, size: u64) -> anyhow::Result<usize> {
    let files = tree_files(size);
    for (seed, (path, len)) in (0u64..).zip(&files) {
        write_file(&root.join(path), *len, seed)?;
    }
    Ok(files.len())
}

/// `len` pseudo-random bytes from `seed` into `path`, a few MiB at a time.
fn write_file(path: &Path, len: u64, seed: u64) -> anyhow::Result<()> {
    use std::io::Write as _;
    const PIECE: u64 = 8 << 20;
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    let mut file = std::io::BufWriter::new(std::fs::File::create(path)?);
    let mut written = 0;
    while written < len {
        let piece = (len - written).min(PIECE);
        let bytes = morsa_cluster::sample::bytes(usize::try_from(piece)?, seed ^ written);
        file.write_all(&bytes)?;
        written += piece;
    }
    file.flush()?;
    Ok(())
}

/// Peak resident set size (`VmHWM`) of process `pid`, if known.
fn peak_rss_of(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    super::vm_hwm(&status)
}

fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    sorted.get(sorted.len() / 2).copied().unwrap_or(f64::NAN)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tree_adds_up_to_its_size_with_small_medium_and_large_files() {
        let size = 1 << 30;
        let files = tree_files(size);
        assert_eq!(files.iter().map(|(_, len)| len).sum::<u64>(), size);
        assert!(files.iter().filter(|(_, len)| *len <= 32 << 10).count() > 500);
        assert!(files.iter().any(|(_, len)| *len > 64 << 20), "a file larger than a chunk");
        let small = tree_files(10 << 20);
        assert_eq!(small.iter().map(|(_, len)| len).sum::<u64>(), 10 << 20);
        assert!(small.iter().all(|(_, len)| *len > 0));
    }
}
