//! The keyring: the root secret and how many data-identity generations it has, kept in a
//! file whose secret part is encrypted with a passphrase (age scrypt).
//!
//! The file is JSON (`morsa-keyring-v1`): the public part in the clear (each generation's
//! age recipient, the key-check value) so that storing, which only encrypts, needs no
//! passphrase; and the root secret as a binary age file encrypted to the passphrase, in
//! base64 (`jq -r .root KEYRING | base64 -d | age -d` opens it with the age tool).

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use age::secrecy::SecretString;
use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::root::{ROOT_BYTES, RootSecret};

/// The format tag of keyring files.
pub const FORMAT: &str = "morsa-keyring-v1";

/// Environment variable holding the keyring passphrase, for scripts.
pub const PASSPHRASE_ENV: &str = "MORSA_KEY_PASSPHRASE";

/// Environment variable naming the keyring file.
pub const KEYRING_ENV: &str = "MORSA_KEYRING";

/// Environment variable setting the scrypt work factor (log2 N) of keyrings written; the
/// default (about one second of work) suits people, tests use a small one.
pub const WORK_FACTOR_ENV: &str = "MORSA_KEY_WORK_FACTOR";

/// Largest keyring file read.
const MAX_FILE_BYTES: u64 = 1 << 20;

/// Why a keyring cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum KeyringError {
    /// There is no keyring file.
    #[error(
        "no keyring at {0}: create one with `morsa key init` or rebuild it from shares with `morsa key recover`"
    )]
    Missing(PathBuf),
    /// A keyring file is already there (and is not overwritten).
    #[error("a keyring already exists at {0}; it is not overwritten (move it away first if you mean it)")]
    Exists(PathBuf),
    /// The passphrase does not open the keyring.
    #[error("wrong passphrase: it does not open the keyring {0}")]
    WrongPassphrase(PathBuf),
    /// The file opens but its content does not check out.
    #[error("keyring {path} is damaged: {reason}")]
    Damaged {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// Reading or writing the file failed.
    #[error("keyring {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
}

/// Generations beyond the current one that reading also tries ([`Keyring::reading_identities`]).
pub const READ_AHEAD: u32 = 32;

/// The public part of a keyring: readable without the passphrase.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PublicKeyring {
    /// Always [`FORMAT`].
    pub format: String,
    /// The age recipient of each generation, oldest (generation 1) first; the last is current.
    pub recipients: Vec<String>,
    /// The root's key-check value, hex.
    pub key_check: String,
}

impl PublicKeyring {
    /// The current generation (from 1).
    pub fn generation(&self) -> u32 {
        u32::try_from(self.recipients.len()).unwrap_or(u32::MAX)
    }

    /// The current generation's recipient, to encrypt to.
    pub fn recipient(&self) -> Result<age::x25519::Recipient, String> {
        let text = self.recipients.last().ok_or("no generations")?;
        text.parse().map_err(|error| format!("recipient {text:?}: {error}"))
    }
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct KeyringFile {
    #[serde(flatten)]
    public: PublicKeyring,
    /// The root secret, an age file encrypted to the passphrase, base64.
    root: String,
}

/// An unlocked keyring: the root secret and its generations.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Keyring {
    root: RootSecret,
    generations: u32,
}

impl Keyring {
    /// A new keyring: a fresh root, one generation.
    pub fn generate() -> Self {
        Self { root: RootSecret::generate(), generations: 1 }
    }

    /// The keyring of `root` with `generations` generations (at least 1).
    pub fn from_root(root: RootSecret, generations: u32) -> Self {
        Self { root, generations: generations.max(1) }
    }

    /// The root secret.
    pub fn root(&self) -> &RootSecret {
        &self.root
    }

    /// The current generation (from 1).
    pub fn generation(&self) -> u32 {
        self.generations
    }

    /// Adds a generation: new data is encrypted to it, older ones stay readable.
    pub fn rotate(&mut self) {
        self.generations += 1;
    }

    /// The current generation's identity.
    pub fn identity(&self) -> age::x25519::Identity {
        self.root.identity(self.generations)
    }

    /// Every generation's identity, newest first (what reading tries).
    pub fn identities(&self) -> Vec<age::x25519::Identity> {
        (1..=self.generations).rev().map(|generation| self.root.identity(generation)).collect()
    }

    /// What reading tries: every generation's identity, newest first, then the next
    /// [`READ_AHEAD`] generations' (derived from the root like the others), so that a keyring
    /// rebuilt from shares without knowing how often it was rotated still opens every file.
    pub fn reading_identities(&self) -> Vec<age::x25519::Identity> {
        let ahead = (1..=READ_AHEAD).map(|step| self.root.identity(self.generations.saturating_add(step)));
        self.identities().into_iter().chain(ahead).collect()
    }

    /// The public part.
    pub fn public(&self) -> PublicKeyring {
        PublicKeyring {
            format: FORMAT.into(),
            recipients: (1..=self.generations)
                .map(|generation| self.root.identity(generation).to_public().to_string())
                .collect(),
            key_check: hex::encode(self.root.key_check()),
        }
    }

    /// Writes the keyring to `path` durably (mode 0600), its root encrypted with `passphrase`
    /// at scrypt work factor `work_factor` (log2 N; `None`: about a second of work here).
    pub fn save(
        &self,
        path: &Path,
        passphrase: &SecretString,
        work_factor: Option<u8>,
    ) -> Result<(), KeyringError> {
        let io = |source| KeyringError::Io { path: path.to_path_buf(), source };
        let mut recipient = age::scrypt::Recipient::new(passphrase.clone());
        if let Some(log_n) = work_factor {
            recipient.set_work_factor(log_n);
        }
        let encryptor = age::Encryptor::with_recipients(std::iter::once(&recipient as &dyn age::Recipient))
            .map_err(|error| io(std::io::Error::other(error.to_string())))?;
        let mut sealed = Vec::new();
        let mut writer = encryptor.wrap_output(&mut sealed).map_err(io)?;
        writer.write_all(self.root.expose()).map_err(io)?;
        writer.finish().map_err(io)?;
        let file = KeyringFile { public: self.public(), root: BASE64.encode(&sealed) };
        let mut text = serde_json::to_string_pretty(&file).expect("a keyring serializes");
        text.push('\n');
        if let Some(dir) = path.parent().filter(|dir| !dir.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(io)?;
        }
        morsa_plumbing::file::replace(path, text.as_bytes(), morsa_plumbing::Access::Secret)
            .map_err(|error| io(std::io::Error::other(error)))
    }

    /// Writes a new keyring to `path`, refusing to replace one.
    pub fn create(
        &self,
        path: &Path,
        passphrase: &SecretString,
        work_factor: Option<u8>,
    ) -> Result<(), KeyringError> {
        if path.exists() {
            return Err(KeyringError::Exists(path.to_path_buf()));
        }
        self.save(path, passphrase, work_factor)
    }

    /// Opens the keyring at `path` with `passphrase`; checks the root against the key-check
    /// value and the recipients the file lists.
    pub fn unlock(path: &Path, passphrase: &SecretString) -> Result<Self, KeyringError> {
        let file = read_file(path)?;
        let damaged = |reason: String| KeyringError::Damaged { path: path.to_path_buf(), reason };
        let sealed = BASE64.decode(file.root.trim()).map_err(|error| damaged(format!("root: {error}")))?;
        let decryptor = age::Decryptor::new_buffered(sealed.as_slice())
            .map_err(|error| damaged(format!("root: {error}")))?;
        let identity = age::scrypt::Identity::new(passphrase.clone());
        let mut reader = decryptor
            .decrypt(std::iter::once(&identity as &dyn age::Identity))
            .map_err(|_| KeyringError::WrongPassphrase(path.to_path_buf()))?;
        let mut bytes = Zeroizing::new(Vec::with_capacity(ROOT_BYTES));
        reader.read_to_end(&mut bytes).map_err(|error| damaged(format!("root: {error}")))?;
        let root: [u8; ROOT_BYTES] =
            bytes.as_slice().try_into().map_err(|_| damaged(format!("a root of {} bytes", bytes.len())))?;
        let keyring = Self::from_root(RootSecret::from_bytes(root), file.public.generation());
        if keyring.public() != file.public {
            return Err(damaged("its root does not match its key-check value and recipients".into()));
        }
        Ok(keyring)
    }
}

/// The public part of the keyring at `path` (no passphrase needed).
pub fn read_public(path: &Path) -> Result<PublicKeyring, KeyringError> {
    read_file(path).map(|file| file.public)
}

fn read_file(path: &Path) -> Result<KeyringFile, KeyringError> {
    let io = |source| KeyringError::Io { path: path.to_path_buf(), source };
    let metadata = std::fs::metadata(path).map_err(|error| match error.kind() {
        std::io::ErrorKind::NotFound => KeyringError::Missing(path.to_path_buf()),
        _ => io(error),
    })?;
    let damaged = |reason: String| KeyringError::Damaged { path: path.to_path_buf(), reason };
    if metadata.len() > MAX_FILE_BYTES {
        return Err(damaged(format!("larger than {MAX_FILE_BYTES} bytes")));
    }
    let text = std::fs::read_to_string(path).map_err(io)?;
    let file: KeyringFile = serde_json::from_str(&text).map_err(|error| damaged(error.to_string()))?;
    if file.public.format != FORMAT {
        return Err(damaged(format!("format {:?}, expected {FORMAT:?}", file.public.format)));
    }
    if file.public.recipients.is_empty() {
        return Err(damaged("no generations".into()));
    }
    Ok(file)
}

/// The scrypt work factor `$MORSA_KEY_WORK_FACTOR` asks for (1–30), if any.
pub fn work_factor_from_env() -> Option<u8> {
    std::env::var(WORK_FACTOR_ENV).ok()?.parse().ok().filter(|log_n| (1..=30).contains(log_n))
}

/// Where the keyring is: `$MORSA_KEYRING`, else `$XDG_CONFIG_HOME/morsa/keyring.json` or
/// `~/.config/morsa/keyring.json`.
pub fn default_path() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os(KEYRING_ENV).filter(|path| !path.is_empty()) {
        return Some(PathBuf::from(path));
    }
    std::env::var_os("XDG_CONFIG_HOME")
        .filter(|path| !path.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".config")))
        .map(|base| base.join("morsa").join("keyring.json"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn passphrase(text: &str) -> SecretString {
        SecretString::from(text.to_string())
    }

    #[test]
    fn a_saved_keyring_unlocks_with_its_passphrase_only_and_keeps_its_generations() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keyring.json");
        let mut keyring = Keyring::generate();
        keyring.rotate();
        keyring.create(&path, &passphrase("right"), Some(8)).unwrap();
        assert!(matches!(keyring.create(&path, &passphrase("right"), Some(8)), Err(KeyringError::Exists(_))));
        assert_eq!(Keyring::unlock(&path, &passphrase("right")).unwrap(), keyring);
        assert!(matches!(
            Keyring::unlock(&path, &passphrase("wrong")),
            Err(KeyringError::WrongPassphrase(_))
        ));
        let public = read_public(&path).unwrap();
        assert_eq!(public.generation(), 2);
        assert_eq!(public.recipient().unwrap().to_string(), keyring.identity().to_public().to_string());
        assert_eq!(keyring.identities().len(), 2);
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(!text.contains(&hex::encode(keyring.root().expose())), "the root is not in the clear");
    }

    #[test]
    fn a_keyring_whose_public_part_was_altered_is_reported_damaged() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keyring.json");
        let keyring = Keyring::generate();
        keyring.save(&path, &passphrase("p"), Some(8)).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        let check = keyring.public().key_check;
        std::fs::write(&path, text.replace(&check, "00000000")).unwrap();
        let error = Keyring::unlock(&path, &passphrase("p")).unwrap_err().to_string();
        assert!(error.contains("damaged") && error.contains("key-check"), "{error}");
        assert!(matches!(
            Keyring::unlock(&dir.path().join("none"), &passphrase("p")),
            Err(KeyringError::Missing(_))
        ));
    }
}
