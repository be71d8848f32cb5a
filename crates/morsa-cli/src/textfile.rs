//! What the CLI's scheduled jobs (`morsa drill`, `morsa renew`) leave behind for monitoring:
//! gauges in the Prometheus text format, for node_exporter's textfile collector, and reports,
//! each file replaced atomically so that a scrape never reads half of one.

use std::path::Path;

use anyhow::Context;
use morsa_plumbing::metrics::Registry;

/// A gauge: its name, its help text and its value.
pub type Gauge = (&'static str, &'static str, f64);

/// `gauges` in the Prometheus text format.
pub fn render(gauges: &[Gauge]) -> String {
    let registry = Registry::new();
    for (name, help, value) in gauges {
        registry.gauge(name, help, &[]).set(*value);
    }
    registry.render()
}

/// Replaces `path` with `bytes` (written to a temporary file, synced, renamed).
pub fn write_file(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    morsa_plumbing::file::replace(path, bytes, morsa_plumbing::file::Access::Shared)
        .with_context(|| format!("cannot write {}", path.display()))
}

/// A count as a gauge value.
pub fn count(value: usize) -> f64 {
    morsa_core::convert::lossy_f64(morsa_core::convert::saturating_u64(value))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gauges_render_with_their_help_and_type() {
        let text = render(&[("morsa_test_things", "Things.", count(3)), ("morsa_test_ok", "Whether.", 1.0)]);
        for line in [
            "# HELP morsa_test_things Things.",
            "# TYPE morsa_test_things gauge",
            "morsa_test_things 3",
            "morsa_test_ok 1",
        ] {
            assert!(text.lines().any(|got| got == line), "{line:?} missing from:\n{text}");
        }
    }
}
