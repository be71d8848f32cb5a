//! The status page's sections on durability: the shard map by zone, the system-wide
//! availability margin (blobs by margin, the blobs most at risk, the nodes reporting) and the
//! repair backlog over time (an inline SVG: no scripts).

use std::collections::BTreeMap;
use std::fmt::Write;

use morsa_api::coord::AvailabilityView;
use morsa_core::convert::lossy_f64;

use super::page::shard_ranges;
use super::snapshot::{NodeStatus, Sample, Status};
use crate::html::escape;

/// The history plot's size, in pixels.
const PLOT_WIDTH: u32 = 600;
const PLOT_HEIGHT: u32 = 80;

/// Shards grouped by zone (every node without one in a single group).
pub fn zones(page: &mut String, nodes: &[NodeStatus]) {
    let mut by_zone: BTreeMap<Option<&str>, (usize, Vec<u16>)> = BTreeMap::new();
    for node in nodes {
        let (members, shards) = by_zone.entry(node.zone.as_deref()).or_default();
        *members += 1;
        shards.extend(&node.shards);
    }
    page.push_str(
        "<h2>Shards by zone</h2><table id=\"zones\"><tr><th>zone</th><th>nodes</th><th>shards</th></tr>",
    );
    for (zone, (members, mut shards)) in by_zone {
        shards.sort_unstable();
        let _ = write!(
            page,
            "<tr><td>{}</td><td>{members}</td><td>{}: {}</td></tr>",
            zone.map_or_else(|| "none declared".to_owned(), escape),
            shards.len(),
            escape(&shard_ranges(&shards)),
        );
    }
    page.push_str(
        "</table><p><small>Zones as the nodes' operators declared them (<code>morsa node set-zone</code>); \
         nodes without one are grouped together.</small></p>",
    );
}

/// The system-wide availability margin.
pub fn availability(page: &mut String, status: &Status) {
    page.push_str("<h2>Availability margin</h2>");
    let Some(view) = &status.availability else {
        let _ = write!(
            page,
            "<p class=\"error\" id=\"availability\">The coordinator did not give it: {}</p>",
            escape(status.availability_error.as_deref().unwrap_or("no answer"))
        );
        return;
    };
    let reporting = view.nodes.iter().filter(|node| node.reporting).count();
    let _ = write!(
        page,
        "<p id=\"availability\">Lowest margin <b>{}</b> of {} (a reader needs {} of {} shards); {} certified blobs; \
         {reporting} of {} nodes reporting{}.</p>",
        view.min_margin_shards
            .map_or_else(|| "none (no certified blob)".to_owned(), |margin| format!("{margin} shards")),
        view.full_margin_shards,
        view.needed_shards,
        view.n_shards,
        view.certified_blobs,
        view.nodes.len(),
        if view.unreachable_shards.is_empty() {
            String::new()
        } else {
            format!(
                "; shards of silent nodes, lost for every blob: {}",
                escape(&shard_ranges(&view.unreachable_shards))
            )
        },
    );
    histogram(page, view);
    at_risk(page, view);
}

fn histogram(page: &mut String, view: &AvailabilityView) {
    let most = view.histogram.iter().map(|count| count.blobs).max().unwrap_or(0).max(1);
    page.push_str("<table id=\"margin-histogram\"><tr><th>margin (shards)</th><th>blobs</th><th></th></tr>");
    for count in &view.histogram {
        // A bar of up to 300 px, proportional to the count.
        let width = lossy_f64(count.blobs) / lossy_f64(most) * 300.0;
        let _ = write!(
            page,
            "<tr data-margin=\"{margin}\"><td>{margin}</td><td>{blobs}</td>\
             <td><div style=\"background:{colour};height:10px;width:{width:.0}px\"></div></td></tr>",
            margin = count.margin_shards,
            blobs = count.blobs,
            colour = if count.margin_shards <= 1 {
                "#c00"
            } else if count.margin_shards < view.full_margin_shards {
                "#e90"
            } else {
                "#4a4"
            },
        );
    }
    page.push_str("</table>");
}

fn at_risk(page: &mut String, view: &AvailabilityView) {
    if view.at_risk.is_empty() {
        page.push_str("<p id=\"at-risk\">No blob is below the full margin.</p>");
        return;
    }
    page.push_str(
        "<table id=\"at-risk\"><tr><th>blob most at risk</th><th>margin</th><th>shards lacking it</th></tr>",
    );
    for blob in &view.at_risk {
        let _ = write!(
            page,
            "<tr><td><code>{}</code></td><td>{} shards</td><td>{}</td></tr>",
            escape(&blob.blob_id.to_string()),
            blob.margin_shards,
            escape(&shard_ranges(&blob.lost_shards)),
        );
    }
    page.push_str("</table>");
    if view.unlisted_missing_blobs > 0 {
        let _ = write!(
            page,
            "<p><small>{} more blob(s) lack slivers that nodes counted but did not list.</small></p>",
            view.unlisted_missing_blobs
        );
    }
}

/// The repair backlog over time, as a line, with the margin and the nodes down in words.
pub fn history(page: &mut String, samples: &[Sample]) {
    page.push_str("<h2>Repair backlog over time</h2>");
    let (Some(first), Some(last)) = (samples.first(), samples.last()) else {
        page.push_str("<p id=\"backlog-history\">No samples yet.</p>");
        return;
    };
    let most = samples.iter().map(|sample| sample.backlog_slivers).max().unwrap_or(0);
    let scale = lossy_f64(most.max(1));
    let step =
        f64::from(PLOT_WIDTH) / lossy_f64(morsa_core::convert::saturating_u64(samples.len().max(2) - 1));
    let mut points = String::new();
    let mut x = 0.0;
    for sample in samples {
        let y =
            f64::from(PLOT_HEIGHT) - lossy_f64(sample.backlog_slivers) / scale * f64::from(PLOT_HEIGHT - 10);
        let _ = write!(points, "{x:.1},{y:.1} ");
        x += step;
    }
    let lowest = samples.iter().filter_map(|sample| sample.min_margin_shards).min();
    let _ = write!(
        page,
        "<p id=\"backlog-history\">{} samples over {} s: backlog now <b>{}</b> slivers, at most {most}; \
         lowest margin seen {}; at most {} node(s) down.</p>\
         <svg width=\"{PLOT_WIDTH}\" height=\"{PLOT_HEIGHT}\" role=\"img\" aria-label=\"repair backlog over time\" \
         style=\"border:1px solid #ccc\"><polyline fill=\"none\" stroke=\"#36c\" stroke-width=\"2\" points=\"{}\"/></svg>",
        samples.len(),
        last.unix.saturating_sub(first.unix),
        last.backlog_slivers,
        lowest.map_or_else(|| "unknown".to_owned(), |margin| format!("{margin} shards")),
        samples.iter().map(|sample| sample.nodes_down).max().unwrap_or(0),
        points.trim_end(),
    );
}

#[cfg(test)]
mod tests {
    use morsa_api::coord::{AtRiskBlob, MarginCount, NodeAvailability};
    use morsa_core::{Epoch, NodeId};
    use redstuff::BlobId;

    use super::*;

    fn view() -> AvailabilityView {
        AvailabilityView {
            epoch: Epoch(3),
            n_shards: 10,
            needed_shards: 4,
            full_margin_shards: 6,
            unreachable_shards: vec![8, 9],
            nodes: vec![
                NodeAvailability {
                    node_id: NodeId([1; 32]),
                    shards: 8,
                    reporting: true,
                    last_report_ms: Some(5),
                    missing_blobs: 1,
                },
                NodeAvailability {
                    node_id: NodeId([2; 32]),
                    shards: 2,
                    reporting: false,
                    last_report_ms: None,
                    missing_blobs: 0,
                },
            ],
            certified_blobs: 5,
            min_margin_shards: Some(1),
            histogram: vec![
                MarginCount { margin_shards: 1, blobs: 1 },
                MarginCount { margin_shards: 4, blobs: 4 },
            ],
            at_risk: vec![AtRiskBlob {
                blob_id: BlobId([7; 32]),
                margin_shards: 1,
                lost_shards: vec![0, 1, 2, 8, 9],
            }],
            unlisted_missing_blobs: 0,
        }
    }

    #[test]
    fn the_margin_section_has_every_margin_bars_in_proportion_and_the_blobs_at_risk() {
        let mut page = String::new();
        let (view, at_risk) = (view(), BlobId([7; 32]));
        histogram(&mut page, &view);
        super::at_risk(&mut page, &view);
        // The largest count gets the whole bar, the others their share; low margins in red.
        assert!(page.contains("<tr data-margin=\"4\"><td>4</td><td>4</td>"), "{page}");
        assert!(page.contains("background:#e90;height:10px;width:300px"), "{page}");
        assert!(page.contains("background:#c00;height:10px;width:75px"), "{page}");
        assert!(
            page.contains(&format!("<code>{at_risk}</code></td><td>1 shards</td><td>0–2, 8–9</td>")),
            "{page}"
        );
    }

    #[test]
    fn the_history_draws_one_point_per_sample_scaled_to_the_largest_backlog() {
        let sample = |unix, backlog_slivers| Sample {
            unix,
            backlog_slivers,
            min_margin_shards: Some(2),
            nodes_down: 0,
        };
        let mut page = String::new();
        history(&mut page, &[sample(100, 0), sample(110, 35), sample(120, 70)]);
        // x from 0 to 600; y from the bottom (80) to 10 px below the top at the largest value.
        assert!(page.contains("points=\"0.0,80.0 300.0,45.0 600.0,10.0\""), "{page}");
        assert!(page.contains("3 samples over 20 s: backlog now <b>70</b> slivers, at most 70"), "{page}");
        let mut empty = String::new();
        history(&mut empty, &[]);
        assert!(empty.contains("No samples yet"));
    }
}
