//! Sending signed reports to the coordinator (`POST /v1/node-reports`): one sender for every
//! report whose deadline the node knows (challenge commitments, audits, disputes, loss
//! declarations), sent again with capped backoff while the coordinator is away or busy.

use std::time::Duration;

use morsa_api::client::{ClientError, CoordClient};
use morsa_api::coord::NodeReport;
use morsa_plumbing::now_ms;

/// First pause before a report is sent again; it doubles up to [`MAX_PAUSE`].
const FIRST_PAUSE: Duration = Duration::from_millis(100);
/// Longest pause between two attempts.
const MAX_PAUSE: Duration = Duration::from_secs(2);

/// What became of a report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Submitted {
    /// The coordinator took it.
    Taken,
    /// The coordinator refused it (sending it again would not help).
    Refused,
    /// The coordinator was away or busy until the deadline.
    GaveUp,
}

/// Submits `report`, again while the coordinator is away or busy, until `until_ms`.
pub(crate) async fn submit_until(coord: &CoordClient, report: &NodeReport, until_ms: u64) -> Submitted {
    let mut pause = FIRST_PAUSE;
    loop {
        match coord.submit_node_report(report).await {
            Ok(_) => return Submitted::Taken,
            Err(error) if worth_retrying(&error) && now_ms().saturating_add(millis(pause)) < until_ms => {
                tracing::debug!(%error, "node report not taken yet");
            }
            Err(error) if worth_retrying(&error) => {
                tracing::warn!(%error, "the coordinator did not take a node report before its deadline");
                return Submitted::GaveUp;
            }
            Err(error) => {
                tracing::warn!(%error, "the coordinator refused a node report");
                return Submitted::Refused;
            }
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(MAX_PAUSE);
    }
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

/// Whether a failed call may succeed if made again: the coordinator was unreachable, slow,
/// busy or failing, not refusing the call itself.
pub(crate) fn worth_retrying(error: &ClientError) -> bool {
    match error {
        ClientError::Http { status, .. } => status.is_server_error() || status.as_u16() == 429,
        _ => error.is_unreachable(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_report_is_sent_again_when_the_coordinator_is_away_or_busy_not_when_it_refuses() {
        let http = |status: u16| ClientError::Http {
            status: axum::http::StatusCode::from_u16(status).expect("a valid status"),
            body: morsa_api::ErrorBody::new("code", "message"),
        };
        for retried in
            [ClientError::Timeout, ClientError::Transport("refused".into()), http(429), http(503), http(500)]
        {
            assert!(worth_retrying(&retried), "{retried}");
        }
        for refused in [http(400), http(401), http(409), ClientError::Decode("bad".into())] {
            assert!(!worth_retrying(&refused), "{refused}");
        }
    }
}
