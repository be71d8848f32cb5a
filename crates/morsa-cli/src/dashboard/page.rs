//! The status page: one HTML document rendered from a [`Status`], every value escaped,
//! refreshed by the browser itself (`<meta http-equiv="refresh">`, no scripts).

use std::fmt::Write;

use super::snapshot::{DrillStatus, Expiring, NodeStatus, Status};
use crate::blobs::bytes;
use crate::html::escape;

const STYLE: &str = "body{font-family:sans-serif;margin:1.5em;color:#222}\
table{border-collapse:collapse;margin-bottom:1em}td,th{border:1px solid #ccc;padding:3px 8px;text-align:left}\
tr.down{background:#fdd}tr.failed{background:#fdd}.state-up{color:#080;font-weight:bold}\
.state-down{color:#c00;font-weight:bold}.summary span{display:inline-block;margin-right:2em}\
.error{color:#c00}code{font-size:90%}";

/// The whole page for `status`, asking the browser to load it again every `refresh_secs`.
pub fn render(status: &Status, refresh_secs: u64) -> String {
    let mut page = format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><meta http-equiv=\"refresh\" content=\"{refresh_secs}\">\
         <title>Morsa status</title><style>{STYLE}</style></head><body><h1>Morsa status</h1>"
    );
    summary(&mut page, status);
    nodes(&mut page, &status.nodes);
    super::margin::zones(&mut page, &status.nodes);
    super::margin::availability(&mut page, status);
    super::margin::history(&mut page, &status.history);
    match &status.drill {
        Some(drill_status) => drill(&mut page, drill_status),
        None => page.push_str(
            "<h2>Latest drill</h2><p>No drill report given (<code>--drill-report FILE</code>).</p>",
        ),
    }
    expiring(&mut page, &status.expiring);
    let _ = writeln!(
        page,
        "<p><small>Gathered at {} for account <code>{}</code>; refreshes every {refresh_secs} s; the same data as \
         JSON at <a href=\"status.json\">status.json</a>.</small></p></body></html>",
        escape(&utc(status.generated_unix)),
        escape(&status.account)
    );
    page
}

fn summary(page: &mut String, status: &Status) {
    let system = &status.system;
    let up = status.nodes.len() - status.nodes_down;
    let _ = write!(
        page,
        "<p class=\"summary\"><span>epoch <b>{}</b></span><span>{} shards, f = {}</span>\
         <span id=\"nodes-up\"><b>{up}</b> of {} nodes up</span>\
         <span id=\"lowest-margin\">lowest availability margin: <b>{}</b></span>\
         <span id=\"repair-backlog\">repair backlog: <b>{}</b> slivers</span></p>",
        system.epoch.map_or_else(|| "unknown".to_owned(), |epoch| epoch.to_string()),
        system.n_shards,
        system.f,
        status.nodes.len(),
        lowest_margin(status),
        status.repair_backlog_slivers,
    );
    if let Some(error) = &system.error {
        let _ = write!(page, "<p class=\"error\">Coordinator: {}</p>", escape(error));
    }
}

/// The system-wide lowest margin, or else the lowest the nodes know of.
fn lowest_margin(status: &Status) -> String {
    if let Some(margin) = status.availability.as_ref().and_then(|view| view.min_margin_shards) {
        return format!("{margin} shards");
    }
    status.lowest_margin_shards.map_or_else(
        || "none known".to_owned(),
        |margin| format!("{margin} shards (nodes' estimate; the coordinator gave none)"),
    )
}

fn nodes(page: &mut String, nodes: &[NodeStatus]) {
    page.push_str(
        "<h2>Nodes and shards</h2><table id=\"nodes\"><tr><th>node</th><th>address</th><th>zone</th><th>shards</th><th>state</th>\
         <th>epoch</th><th>blobs</th><th>stored</th><th>repair backlog</th><th>lowest margin</th><th>answered in</th></tr>",
    );
    for node in nodes {
        let state = if node.up { "up" } else { "down" };
        let _ = write!(
            page,
            "<tr class=\"{state}\" data-address=\"{address}\" data-state=\"{state}\"><td><code title=\"{id}\">{short}</code></td>\
             <td><code>{address}</code></td><td>{zone}</td><td>{count}: {shards}</td><td class=\"state-{state}\">{state}</td>",
            address = escape(&node.address),
            id = escape(&node.node_id),
            short = escape(&node.node_id.chars().take(12).collect::<String>()),
            zone = node.zone.as_deref().map_or_else(|| "—".to_owned(), escape),
            count = node.shards.len(),
            shards = escape(&shard_ranges(&node.shards)),
        );
        match &node.health {
            Some(health) => {
                let repair = &health.repair;
                let _ = write!(
                    page,
                    "<td>{}</td><td>{}</td><td>{}</td><td>{} slivers ({}){}</td><td>{}</td>",
                    health.epoch.0,
                    health.blobs,
                    escape(&bytes(health.shards.iter().map(|shard| shard.bytes).sum())),
                    repair.backlog_slivers,
                    escape(&bytes(repair.backlog_bytes)),
                    if repair.paused { ", paused" } else { "" },
                    repair.lowest_margin.map_or_else(|| "—".to_owned(), |margin| format!("{margin} shards")),
                );
            }
            None => {
                let _ = write!(
                    page,
                    "<td colspan=\"5\" class=\"error\">{}</td>",
                    escape(node.error.as_deref().unwrap_or("no answer"))
                );
            }
        }
        let _ = write!(page, "<td>{:.0} ms</td></tr>", node.latency_ms);
    }
    page.push_str("</table>");
}

fn drill(page: &mut String, drill: &DrillStatus) {
    let _ = write!(
        page,
        "<h2>Latest drill</h2><p>From <code>{}</code>",
        escape(&drill.path.display().to_string())
    );
    if let Some(modified) = drill.modified_unix {
        let _ = write!(page, ", written {}", escape(&utc(modified)));
    }
    page.push_str(".</p>");
    let Some(report) = &drill.report else {
        let _ =
            write!(page, "<p class=\"error\">{}</p>", escape(drill.error.as_deref().unwrap_or("no report")));
        return;
    };
    let _ = write!(
        page,
        "<p id=\"drill\"><b>{} passed, {} failed</b>, started {}{}.</p>\
         <table><tr><th>blob</th><th>result</th><th>first byte</th><th>throughput</th><th>error</th></tr>",
        report.passed,
        report.failed,
        escape(&utc(report.started_unix)),
        report.with_failures.as_ref().map_or_else(String::new, |failures| format!(
            ", reading without nodes holding {} of the {} shards that may be lost",
            failures.excluded_shards, failures.tolerated_shards
        )),
    );
    for blob in &report.blobs {
        let _ = write!(
            page,
            "<tr class=\"{}\"><td><code>{}</code></td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            if blob.ok { "ok" } else { "failed" },
            escape(&blob.blob_id),
            if blob.ok { "ok" } else { "FAILED" },
            blob.ttfb_ms.map_or_else(|| "—".to_owned(), |ms| format!("{ms:.0} ms")),
            blob.mb_per_s.map_or_else(|| "—".to_owned(), |rate| format!("{rate:.1} MB/s")),
            escape(blob.error.as_deref().unwrap_or("")),
        );
    }
    page.push_str("</table>");
}

fn expiring(page: &mut String, expiring: &Expiring) {
    let _ = write!(
        page,
        "<h2>Blobs nearing expiry</h2><p id=\"expiring\"><b>{}</b> certified blob(s) end within {} epoch(s)</p>",
        expiring.count, expiring.within_epochs
    );
    if let Some(error) = &expiring.error {
        let _ = write!(page, "<p class=\"error\">{}</p>", escape(error));
    }
    if expiring.blobs.is_empty() {
        return;
    }
    page.push_str("<table><tr><th>blob</th><th>size</th><th>ends at epoch</th><th>kind</th></tr>");
    for blob in &expiring.blobs {
        let _ = write!(
            page,
            "<tr><td><code>{}</code></td><td>{}</td><td>{}</td><td>{}</td></tr>",
            escape(&blob.blob_id),
            escape(&bytes(blob.size)),
            blob.end_epoch,
            if blob.deletable { "deletable" } else { "permanent" },
        );
    }
    if expiring.count > expiring.blobs.len() {
        let _ = write!(
            page,
            "<tr><td colspan=\"4\">… and {} more</td></tr>",
            expiring.count - expiring.blobs.len()
        );
    }
    page.push_str("</table>");
}

/// Shard indices as runs: `[0, 1, 2, 5]` is `0–2, 5`.
pub fn shard_ranges(shards: &[u16]) -> String {
    let mut runs: Vec<(u16, u16)> = Vec::new();
    for &shard in shards {
        match runs.last_mut() {
            Some((_, end)) if end.checked_add(1) == Some(shard) => *end = shard,
            _ => runs.push((shard, shard)),
        }
    }
    let runs: Vec<String> = runs
        .into_iter()
        .map(|(start, end)| if start == end { start.to_string() } else { format!("{start}–{end}") })
        .collect();
    runs.join(", ")
}

/// Unix seconds as `YYYY-MM-DD HH:MM:SS UTC` (the proleptic Gregorian calendar).
fn utc(unix_seconds: u64) -> String {
    let (days, rest) = (unix_seconds / 86_400, unix_seconds % 86_400);
    // Howard Hinnant's `civil_from_days`, shifted so that years start on March 1st.
    let shifted = days + 719_468;
    let era = shifted / 146_097;
    let day_of_era = shifted % 146_097;
    let year_of_era = (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_index + 2) / 5 + 1;
    let month = if month_index < 10 { month_index + 3 } else { month_index - 9 };
    let year = era * 400 + year_of_era + u64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02} UTC", rest / 3600, rest % 3600 / 60, rest % 60)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dashboard::snapshot::SystemSummary;

    #[test]
    fn dates_match_known_instants() {
        // Independent references: `date -u -d @SECONDS`.
        assert_eq!(utc(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(utc(951_782_400), "2000-02-29 00:00:00 UTC");
        assert_eq!(utc(1_700_000_000), "2023-11-14 22:13:20 UTC");
        assert_eq!(utc(4_107_542_399), "2100-02-28 23:59:59 UTC");
    }

    #[test]
    fn shards_read_as_runs() {
        assert_eq!(shard_ranges(&[]), "");
        assert_eq!(shard_ranges(&[0, 1, 2, 5, 7, 8]), "0–2, 5, 7–8");
        assert_eq!(shard_ranges(&[u16::MAX]), "65535");
    }

    #[test]
    fn values_from_the_network_are_escaped() {
        let status = Status {
            generated_unix: 0,
            account: "acct".into(),
            system: SystemSummary {
                epoch: None,
                n_shards: 4,
                f: 1,
                error: Some("<script>x</script>".into()),
            },
            nodes: vec![NodeStatus {
                node_id: "id".into(),
                address: "http://<b>evil</b>".into(),
                zone: None,
                shards: vec![0, 1],
                up: false,
                error: Some("refused & \"gone\"".into()),
                latency_ms: 1.0,
                health: None,
            }],
            nodes_down: 1,
            lowest_margin_shards: None,
            repair_backlog_slivers: 0,
            availability: None,
            availability_error: Some("<i>no</i>".into()),
            history: Vec::new(),
            expiring: Expiring { within_epochs: 2, count: 0, blobs: Vec::new(), error: None },
            drill: None,
        };
        let page = render(&status, 5);
        assert!(!page.contains("<script>") && !page.contains("<b>evil") && !page.contains("<i>no"), "{page}");
        assert!(
            page.contains("&lt;script&gt;x&lt;/script&gt;")
                && page.contains("refused &amp; &quot;gone&quot;")
        );
        assert!(
            page.contains(r#"data-address="http://&lt;b&gt;evil&lt;/b&gt;" data-state="down""#),
            "{page}"
        );
        assert!(page.contains(r#"<meta http-equiv="refresh" content="5">"#));
    }
}
