//! The admin routes' guard: a token the node writes at start to `admin.token` in its data
//! directory (mode 0600, so only its user can read it), sent as `Authorization: Bearer TOKEN`.
//! Requests carrying an `Origin` header are refused whatever they carry: a web page can send a
//! request to a loopback port without a preflight, never one without `Origin`. Callers must
//! also be on the node's own machine (loopback).

use std::path::{Path, PathBuf};

use axum::http::{HeaderMap, header};

/// Name of the token file in the data directory.
pub const TOKEN_FILE: &str = "admin.token";

/// Why an admin request is refused.
#[derive(Debug, thiserror::Error)]
pub enum AdminRefusal {
    /// The request came from another machine.
    #[error("admin routes answer only callers on the node's own machine (loopback)")]
    NotLoopback,
    /// The request carries an `Origin` header (it comes from a web page).
    #[error("admin routes refuse requests from web pages (an Origin header was sent)")]
    FromBrowser,
    /// The token is missing or wrong.
    #[error("admin routes need `Authorization: Bearer TOKEN` with the token in the node's {TOKEN_FILE}")]
    BadToken,
}

/// The admin token, once written.
#[derive(Clone)]
pub struct AdminToken(String);

impl std::fmt::Debug for AdminToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AdminToken(..)")
    }
}

impl AdminToken {
    /// A new random token, written to `admin.token` in `dir` with mode 0600 (replacing the
    /// previous one: a restart invalidates old tokens).
    pub fn create(dir: &Path) -> std::io::Result<Self> {
        Self::create_at(&token_path(dir))
    }

    /// A new random token, written to `path` with mode 0600 (replacing what was there).
    pub fn create_at(path: &Path) -> std::io::Result<Self> {
        use rand::RngCore as _;
        let mut bytes = [0u8; 32];
        rand::rng().fill_bytes(&mut bytes);
        let token = Self(hex::encode(bytes));
        morsa_plumbing::file::replace(path, token.0.as_bytes(), morsa_plumbing::file::Access::Secret)
            .map_err(std::io::Error::other)?;
        Ok(token)
    }

    /// The token in `path` (surrounding whitespace ignored).
    pub fn read(path: &Path) -> std::io::Result<Self> {
        Ok(Self(std::fs::read_to_string(path)?.trim().to_string()))
    }

    /// The token's text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Checks an admin request's headers (the loopback check is the caller's).
    pub fn check(&self, headers: &HeaderMap) -> Result<(), AdminRefusal> {
        if headers.contains_key(header::ORIGIN) {
            return Err(AdminRefusal::FromBrowser);
        }
        let sent = headers
            .get(header::AUTHORIZATION)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.strip_prefix("Bearer "));
        match sent {
            Some(sent) if constant_time_eq(sent.as_bytes(), self.0.as_bytes()) => Ok(()),
            _ => Err(AdminRefusal::BadToken),
        }
    }
}

/// The token file of a node whose data directory is `dir`.
pub fn token_path(dir: &Path) -> PathBuf {
    dir.join(TOKEN_FILE)
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt as _;

    use super::*;

    #[test]
    fn the_token_file_is_private_and_only_the_token_without_origin_passes() {
        let dir = tempfile::tempdir().unwrap();
        let token = AdminToken::create(dir.path()).unwrap();
        let mode = std::fs::metadata(token_path(dir.path())).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        assert_eq!(AdminToken::read(&token_path(dir.path())).unwrap().as_str(), token.as_str());
        let mut headers = HeaderMap::new();
        assert!(matches!(token.check(&headers), Err(AdminRefusal::BadToken)));
        headers.insert(header::AUTHORIZATION, "Bearer nope".parse().unwrap());
        assert!(matches!(token.check(&headers), Err(AdminRefusal::BadToken)));
        headers.insert(header::AUTHORIZATION, format!("Bearer {}", token.as_str()).parse().unwrap());
        assert!(token.check(&headers).is_ok());
        headers.insert(header::ORIGIN, "http://evil.example".parse().unwrap());
        assert!(matches!(token.check(&headers), Err(AdminRefusal::FromBrowser)));
        let again = AdminToken::create(dir.path()).unwrap();
        assert_ne!(again.as_str(), token.as_str(), "a restart makes a new token");
    }
}
