//! The node's BLS key file: 32 secret bytes as hex, readable by the owner only.

use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};

use morsa_core::{BlsPublicKey, BlsSecretKey, BlsSignature, NodeId};
use morsa_plumbing::file::{self, Access};
use serde::Serialize;

/// Why a key file could not be written or read.
#[derive(Debug, thiserror::Error)]
pub enum KeyFileError {
    /// The file already exists; refusing to overwrite a key.
    #[error("{0} already exists; refusing to overwrite a node key (move it away first)")]
    Exists(PathBuf),
    /// Writing the new key file failed.
    #[error(transparent)]
    Write(morsa_plumbing::file::WriteError),
    /// Reading failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// The file is readable by others than its owner.
    #[error("{path} is readable by group or others (mode {mode:o}); run `chmod 600 {path}`", path = .0.display(), mode = .1)]
    TooOpen(PathBuf, u32),
    /// The file does not hold a key.
    #[error("{0} does not hold a node key (64 hex characters)")]
    Malformed(PathBuf),
}

/// What an operator hands to the coordinator (genesis or `RegisterNode`).
#[derive(Debug, Clone, Serialize)]
pub struct Registration {
    /// The node ID (BLAKE2b-256 of the public key).
    pub node_id: NodeId,
    /// The BLS public key.
    pub public_key: BlsPublicKey,
    /// The proof of possession of the key.
    pub proof_of_possession: BlsSignature,
}

/// The registration data of `key`.
pub fn registration(key: &BlsSecretKey) -> Registration {
    let public_key = key.public_key();
    Registration {
        node_id: NodeId::from_public_key(&public_key),
        public_key,
        proof_of_possession: key.proof_of_possession(),
    }
}

/// Generates a key and writes it to `path` with mode 0600, durably; never overwrites.
pub fn generate_key_file(path: &Path) -> Result<BlsSecretKey, KeyFileError> {
    let key = BlsSecretKey::generate();
    file::create_new(path, hex::encode(key.to_bytes()).as_bytes(), Access::Secret).map_err(|error| {
        if error.already_exists() {
            KeyFileError::Exists(path.to_path_buf())
        } else {
            KeyFileError::Write(error)
        }
    })?;
    Ok(key)
}

/// Reads the key at `path`, refusing a file others can read.
pub fn read_key_file(path: &Path) -> Result<BlsSecretKey, KeyFileError> {
    let io = |source| KeyFileError::Io { path: path.to_path_buf(), source };
    let mode = std::fs::metadata(path).map_err(io)?.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(KeyFileError::TooOpen(path.to_path_buf(), mode));
    }
    let text = std::fs::read_to_string(path).map_err(io)?;
    let bytes: [u8; 32] = hex::decode(text.trim())
        .ok()
        .and_then(|bytes| bytes.try_into().ok())
        .ok_or_else(|| KeyFileError::Malformed(path.to_path_buf()))?;
    BlsSecretKey::from_bytes(&bytes).map_err(|_| KeyFileError::Malformed(path.to_path_buf()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_generated_key_reads_back_and_is_private() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("node.key");
        let key = generate_key_file(&path).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert_eq!(read_key_file(&path).unwrap().public_key(), key.public_key());
        assert!(matches!(generate_key_file(&path), Err(KeyFileError::Exists(_))));
        let registration = registration(&key);
        registration.public_key.verify_proof_of_possession(&registration.proof_of_possession).unwrap();
    }

    #[test]
    fn an_open_or_malformed_key_file_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("node.key");
        generate_key_file(&path).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert!(matches!(read_key_file(&path), Err(KeyFileError::TooOpen(..))));
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        std::fs::write(&path, "not hex").unwrap();
        assert!(matches!(read_key_file(&path), Err(KeyFileError::Malformed(_))));
    }
}
