//! Follows the coordinator's events: blob registrations, certifications, deletions and
//! invalidations, and epoch changes. Long-polls, applies each page durably, and backs off
//! (capped) while the coordinator is unreachable.

use std::sync::Arc;
use std::time::Duration;

use morsa_api::client::CoordClient;
use morsa_api::coord::{Event, MAX_EVENTS_PAGE};
use tokio::sync::watch;

use crate::node::{Node, View};

/// How long one long-poll waits for new events.
const POLL_WAIT_MS: u64 = 10_000;
/// Longest pause between attempts while the coordinator fails.
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// Fetches the coordinator's current committees as a [`View`].
pub async fn fetch_view(coord: &CoordClient) -> Result<View, morsa_api::client::ClientError> {
    let info = coord.committee().await?;
    Ok(View { committee: info.current, next: info.next })
}

/// Applies events until `stop` turns true.
pub async fn follow(node: Arc<Node>, coord: CoordClient, mut stop: watch::Receiver<bool>) {
    let mut backoff = Duration::from_millis(100);
    loop {
        if *stop.borrow() {
            return;
        }
        let after = match node.cursor() {
            Ok(cursor) => cursor,
            Err(error) => {
                tracing::error!(%error, "cannot read the event cursor");
                return;
            }
        };
        let page = tokio::select! {
            page = coord.events(after, POLL_WAIT_MS, MAX_EVENTS_PAGE) => page,
            _ = stop.changed() => return,
        };
        let events = match page {
            Ok(page) => {
                backoff = Duration::from_millis(100);
                page.events
            }
            Err(error) => {
                tracing::warn!(%error, retry_in_ms = backoff.as_millis(), "cannot fetch coordinator events");
                tokio::select! {
                    () = tokio::time::sleep(backoff) => {}
                    _ = stop.changed() => return,
                }
                backoff = (backoff * 2).min(MAX_BACKOFF);
                continue;
            }
        };
        let epoch_changed =
            events.iter().any(|record| matches!(record.event, Event::EpochChangeStart { .. }));
        let applier = Arc::clone(&node);
        match tokio::task::spawn_blocking(move || applier.apply_events(&events)).await {
            Ok(Ok(())) => {}
            Ok(Err(error)) => {
                tracing::error!(%error, "cannot apply coordinator events");
                return;
            }
            Err(_) => return,
        }
        if epoch_changed {
            match fetch_view(&coord).await {
                Ok(view) => node.set_view(view),
                Err(error) => tracing::warn!(%error, "cannot refresh the committee after an epoch change"),
            }
        }
    }
}
