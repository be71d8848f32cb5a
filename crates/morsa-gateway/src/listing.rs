//! Listing keys as S3 does: a prefix, an optional delimiter that rolls keys up into common
//! prefixes, a start after a key (a marker or a continuation token), and a page size. Pure:
//! it walks keys given in order. Versions are listed likewise ([`list_versions`]).

mod versions;

pub use versions::{VersionListing, VersionQuery, list_versions};

/// What a listing asks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ListQuery<'a> {
    /// Only keys that start with this.
    pub prefix: &'a str,
    /// Keys with this after the prefix are rolled up to a common prefix ending with it.
    pub delimiter: Option<&'a str>,
    /// Only entries (keys or common prefixes) after this one.
    pub after: Option<&'a str>,
    /// At most this many entries (keys and common prefixes together).
    pub max_keys: usize,
}

impl ListQuery<'_> {
    /// The first key worth reading.
    pub fn start(&self) -> &str {
        match self.after {
            Some(after) if after > self.prefix => after,
            _ => self.prefix,
        }
    }
}

/// One page of a listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listing<T> {
    /// Keys with their values, in order.
    pub objects: Vec<(String, T)>,
    /// Common prefixes, in order.
    pub prefixes: Vec<String>,
    /// The last entry of the page if more follow (where the next page starts after).
    pub next: Option<String>,
}

impl<T> Listing<T> {
    /// The same listing with each value mapped by `f`.
    pub fn try_map<U, E>(self, mut f: impl FnMut(&str, T) -> Result<U, E>) -> Result<Listing<U>, E> {
        let objects = self
            .objects
            .into_iter()
            .map(|(key, value)| f(&key, value).map(|value| (key, value)))
            .collect::<Result<_, _>>()?;
        Ok(Listing { objects, prefixes: self.prefixes, next: self.next })
    }
}

/// Lists `keys` (in ascending order, starting at or before [`ListQuery::start`]) as `query`
/// asks.
pub fn list<T>(keys: impl Iterator<Item = (String, T)>, query: &ListQuery<'_>) -> Listing<T> {
    let mut listing = Listing { objects: Vec::new(), prefixes: Vec::new(), next: None };
    let mut last: Option<String> = None;
    let mut count = 0;
    for (key, value) in keys {
        if !key.starts_with(query.prefix) {
            continue;
        }
        let rolled = query.delimiter.filter(|delimiter| !delimiter.is_empty()).and_then(|delimiter| {
            let rest = &key[query.prefix.len()..];
            rest.find(delimiter).map(|at| key[..query.prefix.len() + at + delimiter.len()].to_string())
        });
        let entry = rolled.as_deref().unwrap_or(&key);
        if query.after.is_some_and(|after| entry <= after) || last.as_deref() == Some(entry) {
            continue;
        }
        if count == query.max_keys {
            listing.next = last;
            break;
        }
        count += 1;
        last = Some(entry.to_string());
        match rolled {
            Some(prefix) => listing.prefixes.push(prefix),
            None => listing.objects.push((key, value)),
        }
    }
    listing
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEYS: [&str; 8] = ["a", "b/1", "b/2", "b/c/3", "c", "d/1", "d/2", "e"];

    /// Every page of a listing, each asked after the previous page's `next`.
    fn pages(prefix: &str, delimiter: Option<&str>, max_keys: usize) -> Vec<(Vec<String>, Vec<String>)> {
        let mut after: Option<String> = None;
        let mut pages = Vec::new();
        loop {
            let query = ListQuery { prefix, delimiter, after: after.as_deref(), max_keys };
            let start = query.start().to_string();
            let keys = KEYS.iter().filter(|key| **key >= start.as_str()).map(|key| (key.to_string(), ()));
            let page = list(keys, &query);
            pages.push((page.objects.into_iter().map(|(key, ())| key).collect(), page.prefixes));
            match page.next {
                Some(next) => after = Some(next),
                None => return pages,
            }
        }
    }

    fn flat(pages: &[(Vec<String>, Vec<String>)]) -> (Vec<String>, Vec<String>) {
        (
            pages.iter().flat_map(|page| page.0.clone()).collect(),
            pages.iter().flat_map(|page| page.1.clone()).collect(),
        )
    }

    #[test]
    fn a_delimiter_rolls_keys_up_and_pages_never_repeat_a_prefix() {
        let whole = pages("", Some("/"), 1000);
        assert_eq!(whole.len(), 1);
        assert_eq!(whole[0].0, ["a", "c", "e"]);
        assert_eq!(whole[0].1, ["b/", "d/"]);
        for size in 1..=5 {
            let paged = pages("", Some("/"), size);
            assert_eq!(flat(&paged), whole[0], "pages of {size}");
            assert!(paged.iter().all(|page| page.0.len() + page.1.len() <= size));
        }
    }

    #[test]
    fn a_prefix_narrows_and_without_a_delimiter_every_key_is_listed() {
        assert_eq!(
            flat(&pages("b/", Some("/"), 1000)),
            (vec!["b/1".into(), "b/2".into()], vec!["b/c/".into()])
        );
        let all: Vec<String> = KEYS.iter().map(ToString::to_string).collect();
        for size in 1..=8 {
            assert_eq!(flat(&pages("", None, size)).0, all, "pages of {size}");
        }
        assert_eq!(pages("", None, 8).len(), 1, "an exact last page is not truncated");
        assert_eq!(flat(&pages("zz", None, 3)), (vec![], vec![]));
    }
}
