//! Listing versions as ListObjectVersions does: like a key listing, but every version of a
//! key is an entry, and a page ends between two versions of one key (a key marker and a
//! version-ID marker).

/// What a version listing asks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VersionQuery<'a> {
    /// Only keys that start with this.
    pub prefix: &'a str,
    /// Keys with this after the prefix are rolled up to a common prefix ending with it.
    pub delimiter: Option<&'a str>,
    /// Only entries after this key (or, with `version_id_marker`, after that version of it).
    pub key_marker: Option<&'a str>,
    /// The last version of `key_marker` already listed.
    pub version_id_marker: Option<&'a str>,
    /// At most this many entries (versions and common prefixes together).
    pub max_keys: usize,
}

impl VersionQuery<'_> {
    /// The first key worth reading.
    pub fn start(&self) -> &str {
        match self.key_marker {
            Some(marker) if marker > self.prefix => marker,
            _ => self.prefix,
        }
    }
}

/// One page of a version listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VersionListing<T> {
    /// Versions with their keys, in order (keys ascending, each key's newest first).
    pub versions: Vec<(String, T)>,
    /// Common prefixes, in order.
    pub prefixes: Vec<String>,
    /// Where the next page starts if more follow: a key (or common prefix) and the last
    /// version of it listed.
    pub next: Option<(String, Option<String>)>,
}

impl<T> VersionListing<T> {
    /// The same listing with each value mapped by `f`.
    pub fn try_map<U, E>(self, mut f: impl FnMut(T) -> Result<U, E>) -> Result<VersionListing<U>, E> {
        let versions = self
            .versions
            .into_iter()
            .map(|(key, value)| f(value).map(|value| (key, value)))
            .collect::<Result<_, _>>()?;
        Ok(VersionListing { versions, prefixes: self.prefixes, next: self.next })
    }
}

/// Lists `entries` (key, version ID, value), in key order and each key's newest first,
/// starting at or before [`VersionQuery::start`], as `query` asks.
pub fn list_versions<T>(
    entries: impl Iterator<Item = (String, String, T)>,
    query: &VersionQuery<'_>,
) -> VersionListing<T> {
    let mut listing = VersionListing { versions: Vec::new(), prefixes: Vec::new(), next: None };
    let mut last: Option<(String, Option<String>)> = None;
    // Whether the version-ID marker was passed among the marker key's versions.
    let mut passed_marker = false;
    for (key, version_id, value) in entries {
        if !key.starts_with(query.prefix) {
            continue;
        }
        let rolled = query.delimiter.filter(|delimiter| !delimiter.is_empty()).and_then(|delimiter| {
            let rest = &key[query.prefix.len()..];
            rest.find(delimiter).map(|at| key[..query.prefix.len() + at + delimiter.len()].to_string())
        });
        if let Some(prefix) = rolled {
            let repeated = last.as_ref().is_some_and(|(entry, _)| *entry == prefix);
            if query.key_marker.is_some_and(|marker| prefix.as_str() <= marker) || repeated {
                continue;
            }
            if listing.versions.len() + listing.prefixes.len() == query.max_keys {
                listing.next = last;
                break;
            }
            last = Some((prefix.clone(), None));
            listing.prefixes.push(prefix);
            continue;
        }
        if let Some(marker) = query.key_marker {
            if key.as_str() < marker {
                continue;
            }
            if key == marker {
                let Some(version_marker) = query.version_id_marker else { continue };
                if !passed_marker {
                    passed_marker = version_id == version_marker;
                    continue;
                }
            }
        }
        if listing.versions.len() + listing.prefixes.len() == query.max_keys {
            listing.next = last;
            break;
        }
        last = Some((key.clone(), Some(version_id)));
        listing.versions.push((key, value));
    }
    listing
}

#[cfg(test)]
mod tests {
    use super::*;

    /// (key, version) in listing order: `b/1` and `c` have three versions each.
    const VERSIONS: [(&str, &str); 8] = [
        ("a", "1"),
        ("b/1", "3"),
        ("b/1", "2"),
        ("b/1", "1"),
        ("b/2", "1"),
        ("c", "3"),
        ("c", "2"),
        ("c", "1"),
    ];

    /// One page: its (key, version) entries and its common prefixes.
    type Page = (Vec<(String, String)>, Vec<String>);

    fn pages(delimiter: Option<&str>, max_keys: usize) -> Vec<Page> {
        let mut marker: Option<(String, Option<String>)> = None;
        let mut pages = Vec::new();
        loop {
            let query = VersionQuery {
                prefix: "",
                delimiter,
                key_marker: marker.as_ref().map(|(key, _)| key.as_str()),
                version_id_marker: marker.as_ref().and_then(|(_, version)| version.as_deref()),
                max_keys,
            };
            let start = query.start().to_string();
            let entries = VERSIONS.iter().filter(|(key, _)| *key >= start.as_str()).map(|(key, version)| {
                (key.to_string(), version.to_string(), (key.to_string(), version.to_string()))
            });
            let page = list_versions(entries, &query);
            pages.push((page.versions.into_iter().map(|(_, value)| value).collect(), page.prefixes));
            match page.next {
                Some(next) => marker = Some(next),
                None => return pages,
            }
        }
    }

    #[test]
    fn pages_split_a_keys_versions_and_never_repeat_or_skip_one() {
        let all: Vec<(String, String)> =
            VERSIONS.iter().map(|(key, version)| (key.to_string(), version.to_string())).collect();
        for size in 1..=9 {
            let paged = pages(None, size);
            let listed: Vec<_> = paged.iter().flat_map(|page| page.0.clone()).collect();
            assert_eq!(listed, all, "pages of {size}");
            assert!(paged.iter().all(|page| page.0.len() <= size));
        }
        assert_eq!(pages(None, 8).len(), 1, "an exact last page is not truncated");
    }

    #[test]
    fn a_delimiter_rolls_every_version_of_a_key_into_one_prefix() {
        for size in 1..=6 {
            let paged = pages(Some("/"), size);
            let listed: Vec<_> = paged.iter().flat_map(|page| page.0.clone()).collect();
            let keys: Vec<&str> = listed.iter().map(|(key, _)| key.as_str()).collect();
            assert_eq!(keys, ["a", "c", "c", "c"], "pages of {size}");
            let prefixes: Vec<_> = paged.iter().flat_map(|page| page.1.clone()).collect();
            assert_eq!(prefixes, ["b/"], "pages of {size}");
        }
    }
}
