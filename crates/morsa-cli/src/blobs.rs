//! The client commands about blobs: store, read, blob-status, list-blobs, delete, extend.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, bail};
use clap::Args;
use futures_util::StreamExt as _;
use morsa_client::{Client, ClientConfig, Crypto, StoreOptions, StoredHow};
use redstuff::BlobId;
use serde_json::json;

use crate::UsageError;
use crate::progress::Bar;
use crate::timing::Timed;

/// Where the client configuration is.
#[derive(Debug, Args)]
pub struct ConfigArg {
    /// The client configuration (default: $MORSA_CONFIG, then ~/.config/morsa/client.toml).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Print JSON for scripts instead of text.
    #[arg(long)]
    pub json: bool,
}

/// What a command needs of the keyring.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Keys {
    /// Nothing: blobs are handled as stored.
    None,
    /// Encrypt what is stored (`Some(true)`), do not (`Some(false)`), or as the configuration
    /// says (`None`).
    Store(Option<bool>),
    /// Encrypt convergently (the keyring is unlocked: its passphrase is asked for).
    StoreConvergent,
    /// Open what is read, if there is a keyring (its passphrase is asked for when the first
    /// encrypted blob is opened).
    Read,
}

impl ConfigArg {
    /// Loads the configuration and connects.
    pub async fn connect(&self) -> anyhow::Result<Client> {
        self.connect_with(Keys::None).await
    }

    /// Loads the configuration, sets up the keys `keys` asks for, and connects.
    pub async fn connect_with(&self, keys: Keys) -> anyhow::Result<Client> {
        let path = ClientConfig::locate(self.config.as_deref())?;
        let config = ClientConfig::load(&path)?;
        let crypto = crypto(&config, keys)?;
        let (_, created) = morsa_client::load_or_create_account_key(&config.account_key_file)?;
        if created {
            eprintln!("created a new account key in {}", config.account_key_file.display());
        }
        Ok(Client::connect(&config).await?.with_crypto(crypto))
    }
}

/// The keys `keys` asks for under `config`.
fn crypto(config: &ClientConfig, keys: Keys) -> anyhow::Result<Crypto> {
    match keys {
        Keys::None => Ok(Crypto::default()),
        Keys::Store(explicit) => {
            if !explicit.unwrap_or(config.encrypt) {
                return Ok(Crypto::default());
            }
            let keyring = crate::key::keyring_of(config)?;
            let public = morsa_keys::read_public(&keyring).context(
                "encryption is on (--encrypt or encrypt = true in the client configuration) but the keyring \
                 cannot be read",
            )?;
            Ok(Crypto::for_storing(&public)?)
        }
        Keys::StoreConvergent => {
            let keyring = crate::key::keyring_of(config)?;
            let unlocked = morsa_keys::Keyring::unlock(&keyring, &crate::key::keyring_passphrase()?)
                .context("--convergent derives its keys from the keyring's root secret")?;
            Ok(Crypto::convergent(&unlocked))
        }
        Keys::Read => {
            let keyring = crate::key::keyring_of(config)?;
            if !keyring.exists() {
                return Ok(Crypto::default());
            }
            // Asked only when the first encrypted blob is opened: plaintext needs no passphrase.
            Ok(Crypto::unlocking(std::sync::Arc::new(move || {
                let passphrase = crate::key::keyring_passphrase().map_err(|error| format!("{error:#}"))?;
                morsa_keys::Keyring::unlock(&keyring, &passphrase).map_err(|error| error.to_string())
            })))
        }
    }
}

/// `morsa store`.
#[derive(Debug, Args)]
pub struct StoreArgs {
    /// Files to store; `-` stores standard input (of any length, read a chunk at a time).
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<PathBuf>,
    /// Epochs to pay for, from the current one (at least 1, at most what the system sells
    /// ahead: see `morsa info`).
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..))]
    pub epochs: u32,
    /// Make the blobs permanent (they cannot be deleted before they expire).
    #[arg(long)]
    pub permanent: bool,
    /// Upload even if the blob is already certified for long enough.
    #[arg(long)]
    pub force: bool,
    /// Store every file under the directories given (in name order), one blob ID each, and
    /// print a table; a file that fails is reported and the others are still stored.
    #[arg(long, short = 'r')]
    pub recursive: bool,
    /// Encrypt with the keyring's age recipient (the default when the client configuration
    /// says encrypt = true, as `morsa key init` sets).
    #[arg(long, conflicts_with = "no_encrypt")]
    pub encrypt: bool,
    /// Store the files as they are, even if the configuration says encrypt = true.
    #[arg(long)]
    pub no_encrypt: bool,
    /// Encrypt convergently: the same file stored again under the same keyring gives the
    /// same blob ID (deduplication), at the price that whoever holds this keyring can confirm
    /// that a known file is stored (see docs/ENCRYPTION.md). Unlocks the keyring.
    #[arg(long, conflicts_with = "no_encrypt")]
    pub convergent: bool,
    /// Files stored at once when several are given. Small files gain most; files in flight
    /// together stay within 64 MiB, so a larger file is stored alone. With more than one at
    /// once there is no progress bar, and nodes that fail after a file is certified are
    /// reported at the end.
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u16).range(1..=64))]
    pub jobs: u16,
    #[command(flatten)]
    pub common: ConfigArg,
}

/// Bytes of files `morsa store` has in flight together (in MiB, the weight unit of
/// [`crate::pipeline::in_order`]).
const STORE_BUDGET_MIB: u32 = 64;

/// `morsa read`.
#[derive(Debug, Args)]
pub struct ReadArgs {
    /// The blob to read (a file stored in chunks is read through its manifest).
    #[arg(allow_hyphen_values = true)]
    pub blob_id: BlobId,
    /// Write here instead of to stdout (written to a temporary file, synced, then renamed).
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// Only bytes START up to (not including) END, e.g. `--range 0-4096`.
    #[arg(long, value_name = "START-END", value_parser = parse_range)]
    pub range: Option<std::ops::Range<u64>>,
    /// Write the blob's stored bytes as they are: not decrypted, a manifest not followed.
    #[arg(long)]
    pub raw: bool,
    #[command(flatten)]
    pub common: ConfigArg,
}

/// A command that names one blob.
#[derive(Debug, Args)]
pub struct BlobArgs {
    /// The blob.
    #[arg(allow_hyphen_values = true)]
    pub blob_id: BlobId,
    #[command(flatten)]
    pub common: ConfigArg,
}

/// `morsa extend`.
#[derive(Debug, Args)]
pub struct ExtendArgs {
    /// The blob.
    #[arg(allow_hyphen_values = true)]
    pub blob_id: BlobId,
    /// Epochs to add (at least 1; the new end may be at most what the system sells ahead).
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
    pub epochs: u32,
    #[command(flatten)]
    pub common: ConfigArg,
}

fn parse_range(text: &str) -> Result<std::ops::Range<u64>, String> {
    let (start, end) = text.split_once('-').ok_or("expected START-END, e.g. 0-4096")?;
    let start: u64 = start.trim().parse().map_err(|_| format!("bad start {start:?}"))?;
    let end: u64 = end.trim().parse().map_err(|_| format!("bad end {end:?}"))?;
    if end < start {
        return Err(format!("the end {end} is before the start {start}"));
    }
    Ok(start..end)
}

/// A tokio runtime for one command.
pub fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread().enable_all().build().context("cannot start the async runtime")
}

/// Human-readable bytes.
pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = n as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 { format!("{n} B") } else { format!("{value:.1} {}", UNITS[unit]) }
}

/// How long uploads to slow nodes may go on after a blob is certified.
const UPLOAD_GRACE: std::time::Duration = std::time::Duration::from_secs(60);

/// Runs `morsa store`.
pub fn store(args: &StoreArgs) -> anyhow::Result<()> {
    let files = files_to_store(&args.files, args.recursive)?;
    let count = files.len();
    // Standard input is one stream: with it, one file at a time.
    let jobs = match files.iter().any(|path| is_stdin(path)) {
        true => 1,
        false => usize::from(args.jobs).min(files.len()),
    };
    runtime()?.block_on(async {
        // Several stores at once would restart one bar over each other.
        let bar = Bar::new(args.common.json || jobs > 1);
        let encrypt = match (args.encrypt, args.no_encrypt) {
            (true, _) => Some(true),
            (_, true) => Some(false),
            _ => None,
        };
        let keys = if args.convergent { Keys::StoreConvergent } else { Keys::Store(encrypt) };
        let client = args.common.connect_with(keys).await?.with_progress(bar.sink());
        let options = StoreOptions { epochs: args.epochs, permanent: args.permanent, force: args.force };
        let mut results = Vec::new();
        let mut failed = 0;
        if args.recursive && !args.common.json {
            println!("{:<43}  {:>10}  {:<14}  FILE", "BLOB ID", "SIZE", "STATUS");
        }
        let limits = crate::pipeline::Limits { jobs, budget: STORE_BUDGET_MIB };
        let (client, options) = (&client, &options);
        // A store that fails ends the command, but only after the uploads of the files
        // certified before it have gone on to every node (below).
        let mut fatal = None;
        let mut stores = Box::pin(crate::pipeline::in_order(files, limits, weight_mib, |path| async move {
            let started = Instant::now();
            let stored = match is_stdin(&path) {
                true => client.store_reader(std::io::stdin(), "standard input".into(), None, options).await,
                false => client.store_file(&path, options).await,
            };
            (path, stored, started.elapsed().as_secs_f64())
        }));
        while let Some((path, stored, elapsed)) = stores.next().await {
            bar.finish();
            let stored = match stored.with_context(|| format!("storing {}", path.display())) {
                Ok(stored) => stored,
                Err(error) if args.recursive && !crate::usage::is_usage_error(&error) => {
                    failed += 1;
                    let reason = crate::usage::one_line(&error);
                    if args.common.json {
                        results.push(json!({ "file": path.display().to_string(), "error": reason }));
                    } else {
                        println!("{:<43}  {:>10}  {:<14}  {}", "-", "-", "FAILED", path.display());
                        eprintln!("error: {reason}");
                    }
                    continue;
                }
                Err(error) => {
                    fatal = Some(error);
                    break;
                }
            };
            // Certified: now let the slower nodes finish, so they need not repair (with
            // several files at once, after the last one).
            let late = match jobs {
                1 => client.finish_uploads(UPLOAD_GRACE).await,
                _ => Vec::new(),
            };
            let left_behind: Vec<String> = stored
                .blobs
                .iter()
                .flat_map(|blob| &blob.left_behind)
                .chain(&late)
                .map(ToString::to_string)
                .collect();
            warn_left_behind(&left_behind);
            let last = stored.blobs.last().context("a stored file has at least one blob")?;
            let already = stored.already_stored();
            if args.common.json {
                results.push(json!({
                    "file": path.display().to_string(),
                    "blob_id": stored.blob_id.to_string(),
                    "size": stored.size,
                    "encoded_size": stored.blobs.iter().map(|blob| blob.encoded_size).sum::<u64>(),
                    "chunks": stored.blobs.len().saturating_sub(1),
                    "already_stored": already,
                    "object": match &last.how {
                        StoredHow::NewlyCertified { object } | StoredHow::AlreadyCertified { object } => object.to_string(),
                    },
                    "end_epoch": last.end_epoch.0,
                    "seconds": elapsed,
                    "phases_ms": phases_ms(&stored),
                    "nodes_left_behind": left_behind,
                }));
            } else if args.recursive {
                let status = if already { "already stored" } else { "stored" };
                println!("{:<43}  {:>10}  {status:<14}  {}", stored.blob_id, bytes(stored.size), path.display());
            } else {
                let how = if already { "already stored" } else { "stored" };
                let chunks = match stored.blobs.len() {
                    1 => String::new(),
                    count => format!(", {} chunks", count - 1),
                };
                println!(
                    "{how} {}: blob ID {} ({}{chunks}, until {}) in {elapsed:.2} s ({:.1} MB/s)",
                    path.display(),
                    stored.blob_id,
                    bytes(stored.size),
                    last.end_epoch,
                    stored.size as f64 / 1e6 / elapsed.max(1e-9),
                );
            }
        }
        // The stores not certified yet are dropped with the pipeline; the certified ones'
        // uploads to the slower nodes finish before the process exits.
        drop(stores);
        let late: Vec<String> = client.finish_uploads(UPLOAD_GRACE).await.iter().map(ToString::to_string).collect();
        warn_left_behind(&late);
        if let Some(error) = fatal {
            return Err(error);
        }
        if args.common.json {
            println!("{}", serde_json::to_string_pretty(&results)?);
        }
        if failed > 0 {
            bail!("{failed} of {count} files could not be stored");
        }
        Ok(())
    })
}

/// Where a stored file's time went, phase by phase, summed over its blobs (milliseconds).
fn phases_ms(stored: &morsa_client::files::FileOutcome) -> serde_json::Value {
    let timings: morsa_client::StoreTimings = stored.blobs.iter().map(|blob| blob.timings).sum();
    let phases = timings.phases().map(|(name, time)| (name.to_string(), json!(time.as_secs_f64() * 1e3)));
    serde_json::Value::Object(phases.into_iter().collect())
}

/// A file's weight for the store pipeline: its size in MiB (standard input and files whose
/// size cannot be read weigh the whole budget, so they are stored alone).
fn weight_mib(path: &PathBuf) -> u32 {
    match is_stdin(path) {
        true => STORE_BUDGET_MIB,
        false => std::fs::metadata(path)
            .map(|metadata| u32::try_from(metadata.len().div_ceil(1 << 20)).unwrap_or(u32::MAX))
            .unwrap_or(STORE_BUDGET_MIB),
    }
}

fn warn_left_behind(failures: &[String]) {
    for failure in failures {
        eprintln!("warning: a node did not get its slivers (it will repair them): {failure}");
    }
}

/// The files `paths` name: directories are refused (with what to do instead) unless
/// `recursive`, which lists every regular file under them in name order. Symbolic links to
/// files are followed; links to directories are not descended into (no loops).
fn files_to_store(paths: &[PathBuf], recursive: bool) -> anyhow::Result<Vec<PathBuf>> {
    if paths.iter().filter(|path| is_stdin(path)).count() > 1 {
        return Err(UsageError("`-` (standard input) can be stored only once per command".into()).into());
    }
    let mut files = Vec::new();
    for path in paths {
        if path.is_dir() {
            if !recursive {
                return Err(UsageError(format!(
                    "{} is a directory: `morsa store --recursive {}` stores every file in it, one blob each",
                    path.display(),
                    path.display()
                ))
                .into());
            }
            walk(path, &mut files)?;
        } else {
            files.push(path.clone());
        }
    }
    Ok(files)
}

/// Whether `path` is `-`, standard input.
fn is_stdin(path: &Path) -> bool {
    path.as_os_str() == "-"
}

fn walk(dir: &Path, files: &mut Vec<PathBuf>) -> anyhow::Result<()> {
    let mut entries = std::fs::read_dir(dir)
        .and_then(|entries| entries.collect::<Result<Vec<_>, _>>())
        .with_context(|| format!("listing {}", dir.display()))?;
    entries.sort_by_key(std::fs::DirEntry::file_name);
    for entry in entries {
        let path = entry.path();
        let kind = entry.file_type().with_context(|| format!("reading {}", path.display()))?;
        if kind.is_dir() {
            walk(&path, files)?;
        } else if kind.is_file() || (kind.is_symlink() && path.is_file()) {
            files.push(path);
        }
    }
    Ok(())
}

/// Runs `morsa read`.
pub fn read(args: &ReadArgs) -> anyhow::Result<()> {
    if args.common.json && args.out.is_none() {
        return Err(UsageError("--json prints a summary, so it needs --out FILE for the data".into()).into());
    }
    if args.out.is_none() && std::io::stdout().is_terminal() {
        return Err(UsageError(
            "refusing to write a blob's bytes to the terminal: give --out FILE, or redirect stdout \
             (morsa read ID > FILE)"
                .into(),
        )
        .into());
    }
    runtime()?.block_on(async {
        // The bar is on stderr, so it may be drawn while the data goes to stdout.
        let bar = Bar::new(args.common.json);
        let keys = if args.raw { Keys::None } else { Keys::Read };
        let client = args.common.connect_with(keys).await?.with_progress(bar.sink());
        let started = Instant::now();
        // Caught from before the temporary file exists: an interrupted read removes it.
        let interrupted = interrupted()?;
        let mut output = Output::open(args.out.as_deref())?;
        let mut sink = Timed::new(output.writer(), started);
        let reading = async {
            let read = match &args.range {
                _ if args.raw => match &args.range {
                    Some(range) => client.read_blob_range(&args.blob_id, range.clone()).await?,
                    None => client.read_blob(&args.blob_id).await?,
                },
                Some(range) => client.read_file_range(&args.blob_id, range.clone()).await?,
                None => return Ok(client.read_file(&args.blob_id, &mut sink).await?),
            };
            sink.write_all(&read.data).context("writing the output")?;
            anyhow::Ok(morsa_client::files::ReadSummary {
                size: u64::try_from(read.data.len())?,
                bad_slivers: read.bad_slivers,
                failures: read.failures,
                without_coordinator: read.without_coordinator,
                stats: read.stats,
            })
        };
        let summary = tokio::select! {
            summary = reading => summary?,
            () = interrupted => bail!("interrupted: the read was abandoned, and --out left as it was"),
        };
        let timing = sink.timing();
        client.finish_reads().await;
        bar.finish();
        output.finish()?;
        let elapsed = timing.seconds;
        for bad in &summary.bad_slivers {
            eprintln!(
                "warning: node {} served a {} sliver {} that does not verify ({}); it was not used",
                bad.node, bad.kind, bad.index, bad.reason
            );
        }
        if summary.without_coordinator {
            eprintln!(
                "warning: read without a coordinator (none answered): the committee came from the cache \
                 or the storage nodes, the blob's certification from the nodes; every sliver was verified"
            );
        }
        if args.common.json {
            let bad: Vec<String> = summary.bad_slivers.iter().map(|bad| bad.node.clone()).collect();
            let failed: Vec<String> = summary.failures.iter().map(ToString::to_string).collect();
            println!(
                "{}",
                serde_json::to_string_pretty(&json!({
                    "blob_id": args.blob_id.to_string(),
                    "size": summary.size,
                    "seconds": elapsed,
                    "ttfb_seconds": timing.ttfb_seconds,
                    "bytes_per_second": timing.bytes_per_second,
                    "nodes_with_bad_data": bad,
                    "nodes_failed": failed,
                    "without_coordinator": summary.without_coordinator,
                    "slivers": summary.stats,
                }))?
            );
        } else if let Some(out) = &args.out {
            eprintln!("read {} into {} in {elapsed:.2} s", bytes(summary.size), out.display());
        }
        Ok(())
    })
}

/// Resolves on SIGINT or SIGTERM, which from this call on no longer kill the process.
fn interrupted() -> anyhow::Result<impl std::future::Future<Output = ()>> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut interrupt = signal(SignalKind::interrupt()).context("cannot catch SIGINT")?;
    let mut terminate = signal(SignalKind::terminate()).context("cannot catch SIGTERM")?;
    Ok(async move {
        tokio::select! {
            _ = interrupt.recv() => {}
            _ = terminate.recv() => {}
        }
    })
}

/// Stdout, or a temporary file renamed over the target once complete and synced.
enum Output {
    Stdout(std::io::Stdout),
    File { file: tempfile::NamedTempFile, target: PathBuf },
}

impl Output {
    fn open(target: Option<&Path>) -> anyhow::Result<Self> {
        let Some(target) = target else { return Ok(Output::Stdout(std::io::stdout())) };
        let dir = target.parent().filter(|dir| !dir.as_os_str().is_empty()).unwrap_or(Path::new("."));
        let file = tempfile::NamedTempFile::new_in(dir)
            .with_context(|| format!("cannot create a file in {}", dir.display()))?;
        Ok(Output::File { file, target: target.to_path_buf() })
    }

    fn writer(&mut self) -> &mut dyn Write {
        match self {
            Output::Stdout(stdout) => stdout,
            Output::File { file, .. } => file,
        }
    }

    fn finish(self) -> anyhow::Result<()> {
        match self {
            Output::Stdout(mut stdout) => stdout.flush().context("writing to stdout"),
            Output::File { file, target } => {
                file.as_file().sync_all().context("syncing the output")?;
                file.persist(&target).with_context(|| format!("cannot write {}", target.display()))?;
                // The new name is durable only once its directory is.
                morsa_plumbing::file::sync_parent(&target)?;
                Ok(())
            }
        }
    }
}

/// Runs `morsa blob-status`.
pub fn status(args: &BlobArgs) -> anyhow::Result<()> {
    runtime()?.block_on(async {
        let client = args.common.connect().await?;
        let status = client.blob_status(&args.blob_id).await?;
        if args.common.json {
            println!("{}", serde_json::to_string_pretty(&status)?);
            return Ok(());
        }
        println!("blob {}: {:?}", args.blob_id, status.status);
        if let Some(end) = status.end_epoch {
            println!("  stored until {end} ({})", if status.permanent { "permanent" } else { "deletable" });
        }
        for object in &status.objects {
            println!(
                "  object {} owner {} {} until {}{}",
                object.object,
                object.owner,
                if object.deletable { "deletable" } else { "permanent" },
                object.end_epoch,
                object.certified_epoch.map(|epoch| format!(", certified in {epoch}")).unwrap_or_default()
            );
        }
        Ok(())
    })
}

/// `morsa list-blobs`.
#[derive(Debug, Args)]
pub struct ListArgs {
    /// Only the certified blobs that end within this many epochs of the current one (soonest
    /// first): what `morsa renew --before EPOCHS` would extend.
    #[arg(long, value_name = "EPOCHS")]
    pub expiring_within: Option<u32>,
    #[command(flatten)]
    pub common: ConfigArg,
}

/// Runs `morsa list-blobs`.
pub fn list(args: &ListArgs) -> anyhow::Result<()> {
    let common = &args.common;
    runtime()?.block_on(async {
        let client = common.connect().await?;
        let blobs = match args.expiring_within {
            Some(epochs) => client.expiring_within(epochs).await?.1,
            None => client.list_blobs().await?,
        };
        if common.json {
            println!("{}", serde_json::to_string_pretty(&blobs)?);
            return Ok(());
        }
        if blobs.is_empty() {
            match args.expiring_within {
                Some(epochs) => {
                    println!("account {} has no blobs ending within {epochs} epoch(s)", client.account())
                }
                None => println!("account {} has no blobs", client.account()),
            }
        }
        for blob in &blobs {
            let state = match (blob.invalid, blob.certified_epoch) {
                (true, _) => "invalid",
                (false, Some(_)) => "certified",
                (false, None) => "registered",
            };
            println!(
                "{} {:>10} {state:<10} {} until {}",
                blob.blob_id,
                bytes(blob.size),
                if blob.deletable { "deletable" } else { "permanent" },
                blob.end_epoch
            );
        }
        Ok(())
    })
}

/// Runs `morsa delete`.
pub fn delete(args: &BlobArgs) -> anyhow::Result<()> {
    runtime()?.block_on(async {
        let client = args.common.connect().await?;
        let objects = client.delete(&args.blob_id).await?;
        if args.common.json {
            let objects: Vec<String> = objects.iter().map(ToString::to_string).collect();
            println!("{}", json!({ "blob_id": args.blob_id.to_string(), "deleted_objects": objects }));
        } else {
            println!("deleted {} object(s) of blob {}", objects.len(), args.blob_id);
        }
        Ok(())
    })
}

/// Runs `morsa extend`.
pub fn extend(args: &ExtendArgs) -> anyhow::Result<()> {
    runtime()?.block_on(async {
        let client = args.common.connect().await?;
        let end = client.extend(&args.blob_id, args.epochs).await?;
        if args.common.json {
            println!("{}", json!({ "blob_id": args.blob_id.to_string(), "end_epoch": end.0 }));
        } else {
            println!("blob {} is now stored until {end}", args.blob_id);
        }
        Ok(())
    })
}
