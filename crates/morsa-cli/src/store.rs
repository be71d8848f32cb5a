//! `morsa store`: files (and directories with `--recursive`), several at once, each result
//! printed in the order the files were given.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use clap::Args;
use futures_util::StreamExt as _;
use morsa_client::files::FileOutcome;
use morsa_client::store_many::{DEFAULT_BYTES_IN_FLIGHT, DEFAULT_JOBS};
use morsa_client::{InFlight, Source, StoreOptions, StoredFile, StoredHow};
use serde_json::json;

use crate::UsageError;
use crate::blobs::{ConfigArg, Keys, bytes, runtime};
use crate::progress::{Bar, FilesBar};

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
    /// print a table.
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
    /// Files stored at once when several are given (results are still printed in the order
    /// given). Small files gain most; files in flight together stay within 64 MiB, so a
    /// larger file (or standard input) is stored alone. With more than one at once the
    /// progress bar counts files, and nodes that fail after a file is certified are
    /// reported at the end.
    #[arg(long, default_value_t = default_jobs(), value_parser = clap::value_parser!(u16).range(1..=64))]
    pub jobs: u16,
    #[command(flatten)]
    pub common: ConfigArg,
}

/// The client's default number of stores at once, as a `--jobs` value.
fn default_jobs() -> u16 {
    u16::try_from(DEFAULT_JOBS).unwrap_or(u16::MAX)
}

/// How long uploads to slow nodes may go on after a blob is certified.
const UPLOAD_GRACE: std::time::Duration = std::time::Duration::from_secs(60);

/// Failed files named in the final error; the others are counted.
const NAMED_FAILURES: usize = 5;

/// Runs `morsa store`. Every file is stored even if others fail (each failure is reported
/// with its file's name, and the command then exits non-zero), except on a usage error
/// such as too many epochs, which ends it.
pub fn run(args: &StoreArgs) -> anyhow::Result<()> {
    let paths = files_to_store(&args.files, args.recursive)?;
    let count = paths.len();
    let jobs = usize::from(args.jobs).clamp(1, count.max(1));
    runtime()?.block_on(async {
        // One store at a time shows its own upload; several at once count the files done.
        let bar = Bar::new(args.common.json || jobs > 1);
        let sizes: Vec<u64> = paths.iter().map(|path| file_size(path)).collect();
        let files_bar = FilesBar::new(args.common.json || jobs == 1, count, sizes.iter().sum());
        let encrypt = match (args.encrypt, args.no_encrypt) {
            (true, _) => Some(true),
            (_, true) => Some(false),
            _ => None,
        };
        let keys = if args.convergent { Keys::StoreConvergent } else { Keys::Store(encrypt) };
        let client = args.common.connect_with(keys).await?.with_progress(bar.sink());
        let options = StoreOptions { epochs: args.epochs, permanent: args.permanent, force: args.force };
        let mut results = Vec::new();
        let mut failed = Vec::new();
        if args.recursive && !args.common.json {
            outln!("{:<43}  {:>10}  {:<14}  FILE", "BLOB ID", "SIZE", "STATUS");
        }
        let sources = paths.iter().map(|path| source(path)).collect();
        let limits = InFlight { jobs, bytes: DEFAULT_BYTES_IN_FLIGHT };
        // A usage error ends the command, but only after the uploads of the files certified
        // before it have gone on to every node (below).
        let mut fatal = None;
        let mut stores = Box::pin(client.store_files(sources, &options, limits));
        while let Some(StoredFile { index, outcome, elapsed }) = stores.next().await {
            bar.finish();
            files_bar.file_done(sizes[index]);
            let path = &paths[index];
            let stored = match outcome.with_context(|| format!("storing {}", path.display())) {
                Ok(stored) => stored,
                Err(error) if count > 1 && !crate::usage::is_usage_error(&error) => {
                    let reason = crate::usage::one_line(&error);
                    if args.common.json {
                        results.push(json!({ "file": path.display().to_string(), "error": reason }));
                    } else {
                        files_bar.suspend(|| {
                            if args.recursive {
                                outln!("{:<43}  {:>10}  {:<14}  {}", "-", "-", "FAILED", path.display());
                            }
                            eprintln!("error: {reason}");
                        });
                    }
                    failed.push(path.display().to_string());
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
            files_bar.suspend(|| warn_left_behind(&left_behind));
            let seconds = elapsed.as_secs_f64();
            if args.common.json {
                results.push(stored_json(path, &stored, seconds, &left_behind)?);
            } else {
                files_bar.suspend(|| print_stored(path, &stored, seconds, args.recursive));
            }
        }
        // The stores not certified yet are dropped with the pipeline; the certified ones'
        // uploads to the slower nodes finish before the process exits.
        drop(stores);
        files_bar.finish();
        let late: Vec<String> =
            client.finish_uploads(UPLOAD_GRACE).await.iter().map(ToString::to_string).collect();
        warn_left_behind(&late);
        if let Some(error) = fatal {
            return Err(error);
        }
        if args.common.json {
            outln!("{}", serde_json::to_string_pretty(&results)?);
        }
        if !failed.is_empty() {
            bail!("{} of {count} files could not be stored: {}", failed.len(), named(&failed));
        }
        Ok(())
    })
}

/// What to store for `path`: standard input for `-`, else the file.
fn source(path: &Path) -> Source {
    match is_stdin(path) {
        true => Source::Stream { reader: Box::new(std::io::stdin()), name: "standard input".into() },
        false => Source::File(path.to_path_buf()),
    }
}

/// A file's size for the progress bar (0 for standard input or a file that cannot be read).
fn file_size(path: &Path) -> u64 {
    match is_stdin(path) {
        true => 0,
        false => std::fs::metadata(path).map(|metadata| metadata.len()).unwrap_or(0),
    }
}

/// The first failed files' names, then how many more.
fn named(failed: &[String]) -> String {
    let mut text = failed.iter().take(NAMED_FAILURES).cloned().collect::<Vec<_>>().join(", ");
    if failed.len() > NAMED_FAILURES {
        text.push_str(&format!(" and {} more", failed.len() - NAMED_FAILURES));
    }
    text
}

/// One stored file as `--json` prints it.
fn stored_json(
    path: &Path,
    stored: &FileOutcome,
    seconds: f64,
    left_behind: &[String],
) -> anyhow::Result<serde_json::Value> {
    let last = stored.blobs.last().context("a stored file has at least one blob")?;
    Ok(json!({
        "file": path.display().to_string(),
        "blob_id": stored.blob_id.to_string(),
        "size": stored.size,
        "encoded_size": stored.blobs.iter().map(|blob| blob.encoded_size).sum::<u64>(),
        "chunks": stored.blobs.len().saturating_sub(1),
        "already_stored": stored.already_stored(),
        "object": match &last.how {
            StoredHow::NewlyCertified { object } | StoredHow::AlreadyCertified { object } => object.to_string(),
        },
        "end_epoch": last.end_epoch.0,
        "seconds": seconds,
        "phases_ms": phases_ms(stored),
        "nodes_left_behind": left_behind,
    }))
}

/// One stored file as text: a table row with `--recursive`, else a sentence.
fn print_stored(path: &Path, stored: &FileOutcome, seconds: f64, recursive: bool) {
    let already = stored.already_stored();
    if recursive {
        let status = if already { "already stored" } else { "stored" };
        outln!("{:<43}  {:>10}  {status:<14}  {}", stored.blob_id, bytes(stored.size), path.display());
        return;
    }
    let how = if already { "already stored" } else { "stored" };
    let chunks = match stored.blobs.len() {
        0 | 1 => String::new(),
        count => format!(", {} chunks", count - 1),
    };
    let until = stored.blobs.last().map(|last| format!(", until {}", last.end_epoch)).unwrap_or_default();
    outln!(
        "{how} {}: blob ID {} ({}{chunks}{until}) in {seconds:.2} s ({:.1} MB/s)",
        path.display(),
        stored.blob_id,
        bytes(stored.size),
        stored.size as f64 / 1e6 / seconds.max(1e-9),
    );
}

/// Where a stored file's time went, phase by phase, summed over its blobs (milliseconds).
fn phases_ms(stored: &FileOutcome) -> serde_json::Value {
    let timings: morsa_client::StoreTimings = stored.blobs.iter().map(|blob| blob.timings).sum();
    let phases = timings.phases().map(|(name, time)| (name.to_string(), json!(time.as_secs_f64() * 1e3)));
    serde_json::Value::Object(phases.into_iter().collect())
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
