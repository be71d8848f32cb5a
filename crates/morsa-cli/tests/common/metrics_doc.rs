//! docs/METRICS.md as tests read it: the metrics its tables document, and the names in
//! Prometheus text or in PromQL, to check that nothing exported or used is undocumented.

use std::collections::{BTreeMap, BTreeSet};

/// The repository's docs/METRICS.md.
pub fn doc() -> String {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/METRICS.md");
    std::fs::read_to_string(path).unwrap_or_else(|error| panic!("{path}: {error}"))
}

/// Name → type of every metric the doc's tables list (rows whose first cell is `` `morsa_…` ``).
pub fn documented() -> BTreeMap<String, String> {
    doc()
        .lines()
        .filter_map(|line| {
            let mut cells = line.strip_prefix('|')?.split('|').map(str::trim);
            let name = cells.next()?.strip_prefix('`')?.strip_suffix('`')?;
            let kind = cells.next()?;
            name.starts_with("morsa_").then(|| (name.to_string(), kind.to_string()))
        })
        .collect()
}

/// The metrics a Prometheus text exposition declares (its `# TYPE` lines), with their types.
pub fn exported(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .filter_map(|line| {
            let mut words = line.strip_prefix("# TYPE ")?.split_whitespace();
            Some((words.next()?.to_string(), words.next()?.to_string()))
        })
        .collect()
}

/// The `morsa_` metric names in `text` (PromQL, YAML, JSON), a histogram's `_bucket`,
/// `_sum` and `_count` series named by the histogram's name when the doc has it.
pub fn named_in(text: &str, documented: &BTreeMap<String, String>) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let mut rest = text;
    while let Some(start) = rest.find("morsa_") {
        let tail = &rest[start..];
        let end = tail.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).unwrap_or(tail.len());
        let name = &tail[..end];
        let base = ["_bucket", "_sum", "_count"]
            .iter()
            .filter_map(|suffix| name.strip_suffix(suffix))
            .find(|base| documented.get(*base).is_some_and(|kind| kind == "histogram"));
        names.insert(base.unwrap_or(name).to_string());
        rest = &tail[end..];
    }
    names
}

/// What of `exported` the doc lacks or lists with another type, as lines for a message.
pub fn mismatches(exported: &BTreeMap<String, String>, documented: &BTreeMap<String, String>) -> Vec<String> {
    exported
        .iter()
        .filter_map(|(name, kind)| match documented.get(name) {
            None => Some(format!("{name} ({kind}) is not in docs/METRICS.md")),
            Some(listed) if listed != kind => {
                Some(format!("{name} is a {kind}, docs/METRICS.md says {listed}"))
            }
            Some(_) => None,
        })
        .collect()
}
