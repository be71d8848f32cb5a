//! The coordinator's replicas as configuration files name them: `coordinator_urls = [...]`, or
//! the older single `coordinator_url = "..."`. Every configuration that names a coordinator
//! (client, node) checks them here, so they all accept and refuse the same things.

/// Most coordinator URLs a configuration may list (a replica group is small).
pub const MAX_COORDINATOR_URLS: usize = 16;

/// Why a configuration's coordinator URLs are unusable; the message names the keys.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CoordinatorUrlsError {
    /// Neither key is given.
    #[error("coordinator_urls (or the single coordinator_url) is missing")]
    Missing,
    /// Both keys are given.
    #[error("give either coordinator_urls or coordinator_url, not both")]
    Both,
    /// The list is empty or too long.
    #[error("coordinator_urls must list 1 to {MAX_COORDINATOR_URLS} URLs, not {0}")]
    Count(usize),
    /// A URL is not `http://` or `https://`.
    #[error("coordinator URL {0:?} must start with http:// or https://")]
    Scheme(String),
    /// A URL is listed twice.
    #[error("coordinator URL {0:?} is listed twice")]
    Duplicate(String),
}

/// The coordinator URLs of a configuration with `single` (`coordinator_url`) and `list`
/// (`coordinator_urls`): exactly one of the two, each URL `http(s)://`, none twice.
pub fn coordinator_urls(
    single: Option<String>,
    list: Option<Vec<String>>,
) -> Result<Vec<String>, CoordinatorUrlsError> {
    let urls = match (single, list) {
        (Some(_), Some(_)) => return Err(CoordinatorUrlsError::Both),
        (None, None) => return Err(CoordinatorUrlsError::Missing),
        (Some(url), None) => vec![url],
        (None, Some(urls)) => urls,
    };
    if urls.is_empty() || urls.len() > MAX_COORDINATOR_URLS {
        return Err(CoordinatorUrlsError::Count(urls.len()));
    }
    for (index, url) in urls.iter().enumerate() {
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            return Err(CoordinatorUrlsError::Scheme(url.clone()));
        }
        if urls[..index].contains(url) {
            return Err(CoordinatorUrlsError::Duplicate(url.clone()));
        }
    }
    Ok(urls)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exactly_one_spelling_of_http_urls_is_accepted() {
        let url = |text: &str| text.to_owned();
        assert_eq!(coordinator_urls(Some(url("http://a")), None), Ok(vec![url("http://a")]));
        assert_eq!(
            coordinator_urls(None, Some(vec![url("http://a"), url("https://b")])),
            Ok(vec![url("http://a"), url("https://b")])
        );
        assert_eq!(coordinator_urls(None, None), Err(CoordinatorUrlsError::Missing));
        assert_eq!(
            coordinator_urls(Some(url("http://a")), Some(vec![url("http://b")])),
            Err(CoordinatorUrlsError::Both)
        );
        assert_eq!(coordinator_urls(None, Some(Vec::new())), Err(CoordinatorUrlsError::Count(0)));
        assert_eq!(
            coordinator_urls(None, Some(vec![url("http://a"), url("ftp://b")])),
            Err(CoordinatorUrlsError::Scheme(url("ftp://b")))
        );
        assert_eq!(
            coordinator_urls(None, Some(vec![url("http://a"), url("http://a")])),
            Err(CoordinatorUrlsError::Duplicate(url("http://a")))
        );
    }
}
