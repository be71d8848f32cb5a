//! `morsa renew`: extends every blob of the account that expires soon, once or on a schedule,
//! so that an archive does not lapse because nobody paid for its next epochs.

use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::bail;
use clap::Args;
use serde_json::json;

use crate::blobs::{ConfigArg, runtime};

/// `morsa renew`.
#[derive(Debug, Args)]
pub struct RenewArgs {
    /// Renew the blobs whose end epoch comes within this many epochs of the current one
    /// (0: those that end with the current epoch).
    #[arg(long, value_name = "EPOCHS")]
    pub before: u32,
    /// Epochs to add to each (fewer if the system does not sell that far ahead).
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
    pub epochs: u32,
    /// Keep running, one pass every DURATION (e.g. `30m`, `6h`, `1d`); failures are reported
    /// and retried at the next pass.
    #[arg(long, value_name = "DURATION", value_parser = parse_every)]
    pub every: Option<Duration>,
    /// After each pass, write Prometheus metrics to FILE (for node_exporter's textfile
    /// collector): what was renewed, what failed, and how many blobs still end within the
    /// window (they lapse unless renewed).
    #[arg(long, value_name = "FILE")]
    pub metrics: Option<PathBuf>,
    #[command(flatten)]
    pub common: ConfigArg,
}

/// Runs `morsa renew`: exits with an error if an expiring blob could not be extended (in a
/// one-shot run).
pub fn run(args: &RenewArgs) -> anyhow::Result<()> {
    runtime()?.block_on(async {
        let client = args.common.connect().await?;
        let Some(every) = args.every else {
            let failed = pass(&client, args).await?;
            if failed > 0 {
                bail!("{failed} expiring blob(s) could not be renewed (see above)");
            }
            return Ok(());
        };
        loop {
            match pass(&client, args).await {
                Ok(0) => {}
                Ok(failed) => {
                    eprintln!("{failed} expiring blob(s) could not be renewed; retried in {every:?}")
                }
                Err(error) => eprintln!("renewal pass failed: {error:#}; retried in {every:?}"),
            }
            tokio::select! {
                () = tokio::time::sleep(every) => {}
                _ = tokio::signal::ctrl_c() => return Ok(()),
            }
        }
    })
}

/// One pass: renews what expires in the window and prints it; answers how many failed.
async fn pass(client: &morsa_client::Client, args: &RenewArgs) -> anyhow::Result<usize> {
    let started_unix = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |since| since.as_secs());
    let renewals = client.renew_expiring(args.before, args.epochs).await?;
    let failed = renewals.iter().filter(|renewal| renewal.outcome.is_err()).count();
    if let Some(path) = &args.metrics {
        let (_, still_expiring) = client.expiring_within(args.before).await?;
        let text = metrics(started_unix, renewals.len() - failed, failed, still_expiring.len(), args.before);
        crate::textfile::write_file(path, text.as_bytes())?;
    }
    if args.common.json {
        let items: Vec<_> = renewals
            .iter()
            .map(|renewal| {
                let (new_end, error) = match &renewal.outcome {
                    Ok(end) => (Some(end.0), None),
                    Err(error) => (None, Some(error.to_string())),
                };
                json!({
                    "blob_id": renewal.blob.blob_id.to_string(),
                    "object": renewal.blob.object.to_string(),
                    "end_epoch": renewal.blob.end_epoch.0,
                    "new_end_epoch": new_end,
                    "error": error,
                })
            })
            .collect();
        outln!("{}", json!({ "renewed": renewals.len() - failed, "failed": failed, "blobs": items }));
        return Ok(failed);
    }
    for renewal in &renewals {
        match &renewal.outcome {
            Ok(end) => {
                outln!("renewed {} until {end} (was {})", renewal.blob.blob_id, renewal.blob.end_epoch)
            }
            Err(error) => {
                outln!("NOT renewed {} (ends {}): {error}", renewal.blob.blob_id, renewal.blob.end_epoch)
            }
        }
    }
    outln!(
        "{} renewed, {failed} failed, of {} blob(s) ending within {} epoch(s)",
        renewals.len() - failed,
        renewals.len(),
        args.before
    );
    Ok(failed)
}

/// One pass as Prometheus metrics (text format).
fn metrics(started_unix: u64, renewed: usize, failed: usize, still_expiring: usize, window: u32) -> String {
    use crate::textfile::count;
    crate::textfile::render(&[
        (
            "morsa_renew_last_run_timestamp_seconds",
            "When the last renewal pass started.",
            morsa_core::convert::lossy_f64(started_unix),
        ),
        ("morsa_renew_blobs_renewed", "Blobs the last renewal pass extended.", count(renewed)),
        ("morsa_renew_blobs_failed", "Blobs the last renewal pass could not extend.", count(failed)),
        (
            "morsa_renew_blobs_expiring",
            "Certified blobs of the account that still end within the window after the last pass.",
            count(still_expiring),
        ),
        (
            "morsa_renew_window_epochs",
            "The window renewed: epochs ahead of the current one.",
            f64::from(window),
        ),
    ])
}

/// `30s`, `10m`, `6h`, `1d`.
pub(crate) fn parse_every(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: u64 =
        number.parse().map_err(|_| format!("expected a number and a unit, e.g. 6h, not {text:?}"))?;
    let seconds = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return Err(format!("unknown unit {unit:?} in {text:?}: use s, m, h or d")),
    };
    match number.checked_mul(seconds) {
        Some(0) | None => Err(format!("{text:?} is not a usable interval")),
        Some(seconds) => Ok(Duration::from_secs(seconds)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intervals_parse_with_their_unit_and_nonsense_is_refused() {
        assert_eq!(parse_every("30s").unwrap(), Duration::from_secs(30));
        assert_eq!(parse_every("10m").unwrap(), Duration::from_secs(600));
        assert_eq!(parse_every("6h").unwrap(), Duration::from_secs(21_600));
        assert_eq!(parse_every("1d").unwrap(), Duration::from_secs(86_400));
        for bad in ["", "h", "10", "0s", "5w", "-1h", "99999999999999999999d"] {
            assert!(parse_every(bad).is_err(), "{bad}");
        }
    }
}
