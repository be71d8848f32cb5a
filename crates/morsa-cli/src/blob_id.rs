//! `morsa blob-id`: the blob ID and sizes of a file, as `walrus blob-id` computes them.
//!
//! The size limit is checked before any byte is read: a regular file by its length on disk,
//! anything else (standard input, a pipe) by reading at most one byte more than the limit.

use std::fs;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use clap::Args;
use redstuff::{EncodingConfig, MIN_SHARDS};
use serde::Serialize;

use crate::mapped::Mapped;

/// Arguments of `morsa blob-id`.
#[derive(Debug, Args)]
pub struct BlobIdArgs {
    /// The file to compute the blob ID of; `-` reads standard input.
    #[arg(value_name = "FILE")]
    file: PathBuf,
    /// Number of shards of the system the blob would be stored in (at least 4).
    #[arg(
        long,
        value_name = "N",
        default_value_t = 1000,
        value_parser = clap::value_parser!(u16).range(i64::from(MIN_SHARDS)..),
    )]
    n_shards: u16,
    /// Print one JSON object instead of lines for people.
    #[arg(long)]
    json: bool,
}

/// What `morsa blob-id` reports; also its JSON form.
#[derive(Debug, Serialize)]
struct Report {
    blob_id: String,
    unencoded_size: u64,
    symbol_size: u16,
    encoded_size: u64,
    n_shards: u16,
}

/// Computes and prints the blob ID and sizes of `args.file`.
pub fn run(args: &BlobIdArgs) -> anyhow::Result<()> {
    let config = EncodingConfig::new(args.n_shards)?;
    let input = Input::new(&args.file);
    let blob = input.read(config)?;
    let metadata = redstuff::compute_metadata(config, blob.bytes())
        .with_context(|| format!("cannot compute the blob ID of {input}"))?;
    if let Blob::Mapped(mapped) = &blob
        && !mapped.unchanged().map_err(|error| input.io_error(&error))?
    {
        bail!("{input} was written to while its blob ID was computed; run again once it is written");
    }
    let unencoded_size = metadata.unencoded_length();
    let report = Report {
        blob_id: metadata.blob_id().to_string(),
        unencoded_size,
        symbol_size: metadata.symbol_size(),
        encoded_size: config.encoded_size(unencoded_size)?,
        n_shards: args.n_shards,
    };
    let text = if args.json { serde_json::to_string(&report)? } else { human(&report) };
    outln!("{text}");
    Ok(())
}

/// The blob's bytes: a regular file mapped where the page cache holds it, anything else read.
enum Blob {
    Mapped(Mapped),
    Read(Vec<u8>),
}

impl Blob {
    fn bytes(&self) -> &[u8] {
        match self {
            Self::Mapped(mapped) => mapped.bytes(),
            Self::Read(bytes) => bytes,
        }
    }
}

/// Where the blob comes from.
enum Input<'a> {
    Stdin,
    File(&'a Path),
}

impl<'a> Input<'a> {
    fn new(path: &'a Path) -> Self {
        if path.as_os_str() == "-" { Self::Stdin } else { Self::File(path) }
    }

    /// Reads (or maps) the whole blob, refusing one over the largest blob `config` can hold.
    fn read(&self, config: EncodingConfig) -> anyhow::Result<Blob> {
        let max = config.max_blob_size();
        let blob = match self {
            Self::Stdin => read_capped(io::stdin().lock(), max),
            Self::File(path) => {
                let metadata = fs::metadata(path).map_err(|error| self.io_error(&error))?;
                if metadata.is_dir() {
                    bail!("{self} is a directory; give the path of a file");
                }
                if metadata.is_file() {
                    if metadata.len() > max {
                        return Err(self.too_large(Some(metadata.len()), max, config));
                    }
                    let file = fs::File::open(path).map_err(|error| self.io_error(&error))?;
                    match Mapped::new(file).map_err(|error| self.io_error(&error))? {
                        Ok(mapped) => {
                            let len = u64::try_from(mapped.bytes().len()).expect("usize fits in u64");
                            if len > max {
                                // It grew since its length was checked.
                                return Err(self.too_large(Some(len), max, config));
                            }
                            return Ok(Blob::Mapped(mapped));
                        }
                        // Empty, or not mappable: read it.
                        Err(file) => read_capped(file, max),
                    }
                } else {
                    // A pipe or device: its length on disk says nothing, so read with a cap.
                    fs::File::open(path).and_then(|file| read_capped(file, max))
                }
            }
        };
        let blob = blob.map_err(|error| self.io_error(&error))?;
        let len = u64::try_from(blob.len()).expect("usize fits in u64 on every supported target");
        if len > max {
            // Read with a cap (or a file that grew since its length was checked).
            return Err(self.too_large(None, max, config));
        }
        Ok(Blob::Read(blob))
    }

    fn io_error(&self, error: &io::Error) -> anyhow::Error {
        let hint = match error.kind() {
            io::ErrorKind::NotFound => "; check the path",
            io::ErrorKind::PermissionDenied => "; check its permissions",
            io::ErrorKind::IsADirectory => "; give the path of a file",
            _ => "",
        };
        anyhow::anyhow!("cannot read {self}: {error}{hint}")
    }

    fn too_large(&self, len: Option<u64>, max: u64, config: EncodingConfig) -> anyhow::Error {
        let size = len.map_or_else(String::new, |len| format!(" ({len} bytes)"));
        anyhow::anyhow!(
            "{self} is too large{size}: the maximum for {n} shards is {max} bytes ({human_max}); \
             use more shards (--n-shards) or split the blob",
            n = config.n_shards(),
            human_max = human_bytes(max),
        )
    }
}

impl std::fmt::Display for Input<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Stdin => f.write_str("standard input"),
            Self::File(path) => write!(f, "'{}'", path.display()),
        }
    }
}

/// Reads `reader` to its end, but never more than `max + 1` bytes: enough to tell it is too long.
fn read_capped(reader: impl Read, max: u64) -> io::Result<Vec<u8>> {
    let mut blob = Vec::new();
    reader.take(max.saturating_add(1)).read_to_end(&mut blob)?;
    Ok(blob)
}

/// The report as aligned `key: value` lines.
fn human(report: &Report) -> String {
    let lines = [
        ("blob ID", report.blob_id.clone()),
        ("unencoded size", size(report.unencoded_size)),
        ("symbol size", size(u64::from(report.symbol_size))),
        ("encoded size", size(report.encoded_size)),
        ("shards (n)", report.n_shards.to_string()),
    ];
    let width = lines.iter().map(|(key, _)| key.len()).max().unwrap_or(0) + 1;
    lines
        .iter()
        .map(|(key, value)| format!("{:<width$} {value}", format!("{key}:")))
        .collect::<Vec<_>>()
        .join("\n")
}

/// `bytes` as a byte count, followed by binary units from 1 KiB on: `268435456 bytes (256.0 MiB)`.
fn size(bytes: u64) -> String {
    if bytes < 1024 { format!("{bytes} bytes") } else { format!("{bytes} bytes ({})", human_bytes(bytes)) }
}

/// `bytes` in the largest binary unit that keeps the number under 1024, to one decimal.
fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 6] = ["KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let bytes = u128::from(bytes);
    let mut unit_size = 1u128;
    for (position, unit) in UNITS.iter().enumerate() {
        unit_size *= 1024;
        // Tenths of the unit, rounded to nearest.
        let tenths = (bytes * 10 + unit_size / 2) / unit_size;
        if tenths < 10 * 1024 || position == UNITS.len() - 1 {
            return format!("{}.{} {unit}", tenths / 10, tenths % 10);
        }
    }
    unreachable!("the last unit always returns")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn human_sizes() {
        let table = [
            (0, "0 B"),
            (1023, "1023 B"),
            (1024, "1.0 KiB"),
            (1536, "1.5 KiB"),
            (1024 * 1024 - 1, "1.0 MiB"),
            (256 << 20, "256.0 MiB"),
            (334 * 667 * 65534, "13.6 GiB"),
            (u64::MAX, "16.0 EiB"),
        ];
        for (bytes, text) in table {
            assert_eq!(human_bytes(bytes), text, "{bytes} bytes");
        }
    }

    #[test]
    fn human_report_is_aligned() {
        let report = Report {
            blob_id: "RcU82Mwf-CFkv1LaI_2qcpANwpGUuG3TMwnVzZxD2kY".into(),
            unencoded_size: 33,
            symbol_size: 2,
            encoded_size: 6940,
            n_shards: 10,
        };
        let expected = "\
blob ID:        RcU82Mwf-CFkv1LaI_2qcpANwpGUuG3TMwnVzZxD2kY
unencoded size: 33 bytes
symbol size:    2 bytes
encoded size:   6940 bytes (6.8 KiB)
shards (n):     10";
        assert_eq!(human(&report), expected);
    }
}
