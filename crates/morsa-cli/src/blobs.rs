//! The client commands about blobs: read, blob-status, list-blobs, delete, extend (and what
//! they share with `morsa store`: the configuration, the keys, the runtime).

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, bail};
use clap::Args;
use morsa_client::{Client, ClientConfig, Crypto};
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
            outln!(
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
    Stdout(crate::stdout::Writer),
    File { file: tempfile::NamedTempFile, target: PathBuf },
}

impl Output {
    fn open(target: Option<&Path>) -> anyhow::Result<Self> {
        let Some(target) = target else { return Ok(Output::Stdout(crate::stdout::Writer::new())) };
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
            outln!("{}", serde_json::to_string_pretty(&status)?);
            return Ok(());
        }
        outln!("blob {}: {:?}", args.blob_id, status.status);
        if let Some(end) = status.end_epoch {
            outln!("  stored until {end} ({})", if status.permanent { "permanent" } else { "deletable" });
        }
        for object in &status.objects {
            outln!(
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
            outln!("{}", serde_json::to_string_pretty(&blobs)?);
            return Ok(());
        }
        if blobs.is_empty() {
            match args.expiring_within {
                Some(epochs) => {
                    outln!("account {} has no blobs ending within {epochs} epoch(s)", client.account())
                }
                None => outln!("account {} has no blobs", client.account()),
            }
        }
        for blob in &blobs {
            let state = match (blob.invalid, blob.certified_epoch) {
                (true, _) => "invalid",
                (false, Some(_)) => "certified",
                (false, None) => "registered",
            };
            outln!(
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
            outln!("{}", json!({ "blob_id": args.blob_id.to_string(), "deleted_objects": objects }));
        } else {
            outln!("deleted {} object(s) of blob {}", objects.len(), args.blob_id);
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
            outln!("{}", json!({ "blob_id": args.blob_id.to_string(), "end_epoch": end.0 }));
        } else {
            outln!("blob {} is now stored until {end}", args.blob_id);
        }
        Ok(())
    })
}
