//! Bounded reading of configuration files, with one error style: every [`ConfigError`] names
//! the file, and a file over its size cap is refused before it is read.
//!
//! Unknown fields are refused by the caller's type: put `#[serde(deny_unknown_fields)]` on it,
//! and [`load_toml`] reports the field with the path.
//!
//! ```
//! #[derive(Debug, serde::Deserialize)]
//! #[serde(deny_unknown_fields)]
//! struct Config { listen: String }
//! # let dir = tempfile::tempdir()?;
//! let path = dir.path().join("coord.toml");
//! std::fs::write(&path, "listen = \"127.0.0.1:7000\"\nlisten_too = 1\n")?;
//! let error = morsa_plumbing::config::load_toml::<Config>(&path, 1 << 20).unwrap_err();
//! assert!(error.to_string().starts_with(&format!("{}: unknown field `listen_too`", path.display())));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;

/// Why a configuration file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read (for example, it does not exist).
    #[error("cannot read {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file is over its size cap; it was not read.
    #[error("{}: the file is larger than {limit} bytes", path.display())]
    TooLarge {
        /// The file.
        path: PathBuf,
        /// The cap in bytes.
        limit: u64,
    },
    /// The content is not valid, or a field is missing, unknown or out of range.
    #[error("{}: {message}", path.display())]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong, naming the field.
        message: String,
    },
}

impl ConfigError {
    /// An [`Invalid`](Self::Invalid) error: for the checks a caller makes after parsing.
    pub fn invalid(path: &Path, message: impl Into<String>) -> Self {
        Self::Invalid { path: path.to_path_buf(), message: message.into() }
    }

    /// The file the error is about.
    pub fn path(&self) -> &Path {
        match self {
            Self::Read { path, .. } | Self::TooLarge { path, .. } | Self::Invalid { path, .. } => path,
        }
    }

    /// Whether the file does not exist.
    pub fn is_not_found(&self) -> bool {
        matches!(self, Self::Read { source, .. } if source.kind() == std::io::ErrorKind::NotFound)
    }
}

/// Reads `path` as UTF-8 text if it is at most `limit` bytes long.
pub fn read_limited(path: &Path, limit: u64) -> Result<String, ConfigError> {
    let read_error = |source| ConfigError::Read { path: path.to_path_buf(), source };
    if std::fs::metadata(path).map_err(read_error)?.len() > limit {
        return Err(ConfigError::TooLarge { path: path.to_path_buf(), limit });
    }
    let text = std::fs::read_to_string(path).map_err(read_error)?;
    // The file may have grown between the two calls.
    if u64::try_from(text.len()).map_or(true, |length| length > limit) {
        return Err(ConfigError::TooLarge { path: path.to_path_buf(), limit });
    }
    Ok(text)
}

/// Reads `path` (at most `limit` bytes) and parses it as TOML into `T`.
pub fn load_toml<T: DeserializeOwned>(path: &Path, limit: u64) -> Result<T, ConfigError> {
    let text = read_limited(path, limit)?;
    toml::from_str(&text).map_err(|error| ConfigError::invalid(path, error.message()))
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    use super::*;

    #[derive(Debug, PartialEq, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Example {
        listen: String,
        workers: u32,
    }

    fn write(text: &str) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("example.toml");
        std::fs::write(&path, text).unwrap();
        (dir, path)
    }

    #[test]
    fn a_valid_file_loads() {
        let (_dir, path) = write("listen = \"127.0.0.1:1\"\nworkers = 2\n");
        let loaded: Example = load_toml(&path, 1024).unwrap();
        assert_eq!(loaded, Example { listen: "127.0.0.1:1".into(), workers: 2 });
    }

    #[test]
    fn a_file_over_the_cap_is_refused_naming_it() {
        let text = "listen = \"127.0.0.1:1\"\nworkers = 2\n";
        let (_dir, path) = write(text);
        let limit = u64::try_from(text.len()).unwrap();
        assert!(load_toml::<Example>(&path, limit).is_ok(), "a file of exactly the cap is read");
        let error = load_toml::<Example>(&path, limit - 1).unwrap_err();
        assert!(matches!(error, ConfigError::TooLarge { limit: cap, .. } if cap == limit - 1), "{error:?}");
        assert_eq!(error.path(), path);
        assert_eq!(
            error.to_string(),
            format!("{}: the file is larger than {} bytes", path.display(), limit - 1)
        );
    }

    #[test]
    fn unknown_missing_and_malformed_fields_name_the_file_and_the_field() {
        for (text, field) in [
            ("listen = \"a\"\nworkers = 2\nthreads = 3\n", "unknown field `threads`"),
            ("listen = \"a\"\n", "missing field `workers`"),
            ("listen = \"a\"\nworkers = \"two\"\n", "invalid type"),
        ] {
            let (_dir, path) = write(text);
            let error = load_toml::<Example>(&path, 1024).unwrap_err();
            let message = error.to_string();
            assert!(message.starts_with(&format!("{}: ", path.display())), "{message}");
            assert!(message.contains(field), "{message}");
        }
    }

    #[test]
    fn a_missing_file_is_a_read_error_naming_it() {
        let path = Path::new("/nonexistent/morsa/example.toml");
        let error = load_toml::<Example>(path, 1024).unwrap_err();
        assert!(error.is_not_found());
        assert!(error.to_string().starts_with("cannot read /nonexistent/morsa/example.toml: "), "{error}");
    }
}
