//! The drill's report as one self-contained HTML page.

use super::Report;
use crate::html::escape;

/// The drill as one HTML page: a table and two bar plots (time to first byte, throughput),
/// inline SVG, no scripts.
pub fn html(report: &Report) -> String {
    let bars = |values: Vec<(String, f64)>, unit: &str| -> String {
        let top = values.iter().map(|(_, value)| *value).fold(0.0_f64, f64::max).max(1e-9);
        let mut svg = format!(
            r#"<svg xmlns="http://www.w3.org/2000/svg" width="640" height="{}">"#,
            22 * values.len() + 4
        );
        for (row, (label, value)) in values.iter().enumerate() {
            let y = 22 * row + 2;
            let width = (value / top * 400.0).max(1.0);
            svg.push_str(&format!(
                r##"<text x="0" y="{}" font-size="11" font-family="monospace">{}</text><rect x="130" y="{y}" width="{width:.0}" height="18" fill="#3b7dd8"/><text x="{:.0}" y="{}" font-size="11">{value:.1} {unit}</text>"##,
                y + 13,
                escape(&label.chars().take(16).collect::<String>()),
                135.0 + width,
                y + 13
            ));
        }
        svg.push_str("</svg>");
        svg
    };
    let ttfb = bars(
        report.blobs.iter().filter_map(|blob| Some((blob.blob_id.clone(), blob.ttfb_ms?))).collect(),
        "ms",
    );
    let rate = bars(
        report.blobs.iter().filter_map(|blob| Some((blob.blob_id.clone(), blob.mb_per_s?))).collect(),
        "MB/s",
    );
    let rows: String = report
        .blobs
        .iter()
        .map(|blob| {
            format!(
                "<tr class=\"{}\"><td><code>{}</code></td><td>{}</td><td>{}</td><td>{:.0}</td><td>{:.1}</td><td>{}</td><td>{}</td></tr>",
                if blob.ok { "ok" } else { "failed" },
                escape(&blob.blob_id),
                if blob.ok { "ok" } else { "FAILED" },
                blob.bytes,
                blob.ttfb_ms.unwrap_or(f64::NAN),
                blob.mb_per_s.unwrap_or(f64::NAN),
                blob.ranges.iter().filter(|range| range.ok).count(),
                escape(blob.error.as_deref().unwrap_or(""))
            )
        })
        .collect();
    let without = match &report.with_failures {
        Some(failures) => format!(
            "<p>Read as if these nodes were gone ({} shards of the {} that may be lost): {}.</p>",
            failures.excluded_shards,
            failures.tolerated_shards,
            failures
                .excluded_nodes
                .iter()
                .map(|node| format!("<code>{}</code>", escape(&node.address)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        None => String::new(),
    };
    format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>Morsa restore drill</title><style>\
         body{{font-family:sans-serif;margin:2em}}table{{border-collapse:collapse}}td,th{{border:1px solid #ccc;padding:4px 8px}}\
         tr.failed{{background:#fdd}}</style></head><body><h1>Restore drill: {} passed, {} failed</h1>\
         <p>Started at Unix time {}, seed {}.</p>{without}<table><tr><th>blob</th><th>result</th><th>bytes</th>\
         <th>first byte (ms)</th><th>MB/s</th><th>ranges ok</th><th>error</th></tr>{rows}</table>\
         <h2>Time to first byte</h2>{ttfb}<h2>Throughput</h2>{rate}</body></html>\n",
        report.passed, report.failed, report.started_unix, report.seed
    )
}
