//! `morsa coord audit --url`: audits a running replica over HTTP without stopping it. Its
//! recorded log is fetched page by page and replayed from genesis with every check of the
//! data-directory audit; the event chain it serves must be the replay's, and its state hash
//! the replay's once the replica applied nothing while the audit read it.

use anyhow::Context as _;
use morsa_api::client::{ClientOptions, CoordClient};
use morsa_api::coord::{MAX_EVENTS_PAGE, MAX_LOG_PAGE};
use morsa_coord::{AuditError, AuditReport, Genesis, PagedAudit, ServedEvents};

/// Times the audit reads the whole log again when the replica applied entries meanwhile.
const ATTEMPTS: usize = 3;

/// What the audit of a running replica found.
#[derive(Debug, serde::Serialize)]
pub struct ServedAuditReport {
    /// The replay's report.
    #[serde(flatten)]
    pub report: AuditReport,
    /// The URL audited.
    pub url: String,
    /// Whether the replica's state hash was compared (it was not when the replica kept
    /// applying entries while the audit read its log).
    pub state_compared: bool,
}

/// Audits the replica at `url` against `genesis`.
pub async fn audit(url: &str, genesis: &Genesis) -> anyhow::Result<ServedAuditReport> {
    let client = CoordClient::with_urls(&[url], ClientOptions::default()).context("invalid --url")?;
    let mut attempt = 1;
    loop {
        let before = client.system().await.context("reading the replica's /v1/system")?;
        let report = replay(&client, genesis).await?;
        let after = client.system().await.context("reading the replica's /v1/system")?;
        check_events(&client, &report).await?;
        let quiet = before.state_hash == after.state_hash;
        if quiet && after.state_hash != report.state_hash {
            return Err(
                AuditError::ServedState { served: after.state_hash, replayed: report.state_hash }.into()
            );
        }
        if quiet || attempt == ATTEMPTS {
            return Ok(ServedAuditReport { report, url: url.to_owned(), state_compared: quiet });
        }
        attempt += 1;
    }
}

/// Replays the replica's recorded log as it is now.
async fn replay(client: &CoordClient, genesis: &Genesis) -> anyhow::Result<AuditReport> {
    let mut audit = PagedAudit::new(genesis)?;
    let first = client.log_page(0, MAX_LOG_PAGE).await.context("reading the replica's log")?;
    let count = first.count;
    audit.page(&first)?;
    while audit.next() < count {
        let page = client.log_page(audit.next(), MAX_LOG_PAGE).await.context("reading the replica's log")?;
        if audit.page(&page)? == 0 {
            anyhow::bail!("the replica's log ends at entry {} although it said it had {count}", audit.next());
        }
    }
    Ok(audit.report())
}

/// Checks the event chain the replica serves, up to the replay's last event.
async fn check_events(client: &CoordClient, report: &AuditReport) -> anyhow::Result<()> {
    let mut served = ServedEvents::new();
    while served.checked() < report.events {
        let after = served.checked().checked_sub(1);
        let page = client.events(after, 0, MAX_EVENTS_PAGE).await.context("reading the replica's events")?;
        let wanted = usize::try_from(report.events - served.checked()).unwrap_or(usize::MAX);
        let records = &page.events[..page.events.len().min(wanted)];
        if records.is_empty() {
            break;
        }
        served.records(records)?;
    }
    served.matches(report)?;
    Ok(())
}
