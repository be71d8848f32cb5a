//! The gateway's keys: objects are encrypted by default. Each chunk blob of an object is one
//! complete age file encrypted to the current recipient of the gateway's keyring (as the CLI
//! stores files, so a chunk read raw opens with `age -d -i IDENTITY`), and the object's
//! record notes it ([`crate::namespace::Sealing`]). The keyring is the one `morsa key init`
//! writes, named in `gateway.toml` (`keyring_file`, default the client configuration's) and
//! unlocked at start with the passphrase in `passphrase_file` or `$MORSA_KEY_PASSPHRASE`: a
//! gateway that encrypts and cannot unlock its keyring refuses to start and says why.
//!
//! `encrypt = false` stores new objects in plaintext; objects encrypted before still read if
//! a keyring is named (then it is unlocked at start too).

use std::path::{Path, PathBuf};

use morsa_client::{ClientConfig, Crypto};
use morsa_keys::{Keyring, PASSPHRASE_ENV, SecretString};

use crate::GatewayError;
use crate::config::GatewayConfig;

/// Largest passphrase file read.
const MAX_PASSPHRASE_BYTES: u64 = 4096;

/// What the gateway encrypts and decrypts with.
#[derive(Debug, Clone, Default)]
pub struct GatewayKeys {
    /// The keys (none: plaintext only).
    pub crypto: Crypto,
    /// Whether new objects are encrypted.
    pub seal: bool,
}

/// Unlocks the keyring `config` names: required when it encrypts, optional (for reading
/// objects encrypted before) when it does not.
pub fn load_keys(config: &GatewayConfig, client: &ClientConfig) -> Result<GatewayKeys, GatewayError> {
    if !config.encrypt && config.keyring_file.is_none() {
        return Ok(GatewayKeys::default());
    }
    let path = keyring_path(config, client)?;
    let keyring = unlock(&path, config.passphrase_file.as_deref())?;
    tracing::info!(
        keyring = %path.display(),
        recipient = %keyring.identity().to_public(),
        encrypt = config.encrypt,
        "gateway keyring unlocked"
    );
    Ok(GatewayKeys { crypto: Crypto::from_keyring(&keyring), seal: config.encrypt })
}

/// The keyring file: `gateway.toml`'s, the client configuration's, or the default one.
fn keyring_path(config: &GatewayConfig, client: &ClientConfig) -> Result<PathBuf, GatewayError> {
    config
        .keyring_file
        .clone()
        .or_else(|| client.keyring_file.clone())
        .or_else(morsa_keys::default_path)
        .ok_or_else(|| {
            no_key("no keyring location: set keyring_file in gateway.toml (or $MORSA_KEYRING)".into())
        })
}

fn unlock(path: &Path, passphrase_file: Option<&Path>) -> Result<Keyring, GatewayError> {
    if !path.exists() {
        return Err(no_key(format!(
            "no keyring at {}: create one with `morsa key init --keyring {}` (the passphrase then goes \
             in passphrase_file or ${PASSPHRASE_ENV})",
            path.display(),
            path.display()
        )));
    }
    let passphrase = passphrase(passphrase_file)?;
    Keyring::unlock(path, &passphrase).map_err(|error| no_key(error.to_string()))
}

/// The passphrase: the first line of `file`, else `$MORSA_KEY_PASSPHRASE`.
fn passphrase(file: Option<&Path>) -> Result<SecretString, GatewayError> {
    if let Some(file) = file {
        let unreadable = |error: std::io::Error| {
            no_key(format!("cannot read passphrase_file {}: {error}", file.display()))
        };
        if std::fs::metadata(file).map_err(unreadable)?.len() > MAX_PASSPHRASE_BYTES {
            return Err(no_key(format!(
                "passphrase_file {} is larger than {MAX_PASSPHRASE_BYTES} bytes",
                file.display()
            )));
        }
        let bytes = std::fs::read(file).map_err(unreadable)?;
        let text = String::from_utf8(bytes)
            .map_err(|_| no_key(format!("passphrase_file {} is not UTF-8", file.display())))?;
        let line = text.lines().next().unwrap_or_default();
        return Ok(SecretString::from(line.to_owned()));
    }
    match std::env::var(PASSPHRASE_ENV) {
        Ok(passphrase) => Ok(SecretString::from(passphrase)),
        Err(_) => Err(no_key(format!(
            "the keyring's passphrase is needed: set passphrase_file in gateway.toml or ${PASSPHRASE_ENV}"
        ))),
    }
}

/// Writes a new keyring to `keyring_file` locked with a random passphrase written to
/// `passphrase_file` (both mode 0600), for a gateway that starts unattended (`morsa cluster
/// up`); `work_factor` is the scrypt work factor (`None`: about a second of work).
pub fn create_unattended_keyring(
    keyring_file: &Path,
    passphrase_file: &Path,
    work_factor: Option<u8>,
) -> Result<(), GatewayError> {
    let passphrase = hex::encode(rand::random::<[u8; 32]>());
    morsa_plumbing::file::create_new(
        passphrase_file,
        format!("{passphrase}\n").as_bytes(),
        morsa_plumbing::Access::Secret,
    )
    .map_err(|error| no_key(format!("cannot write {}: {error}", passphrase_file.display())))?;
    Keyring::generate()
        .create(keyring_file, &SecretString::from(passphrase), work_factor)
        .map_err(|error| no_key(error.to_string()))
}

fn no_key(reason: String) -> GatewayError {
    GatewayError::Keys(format!(
        "{reason} (objects are encrypted by default; `encrypt = false` in gateway.toml stores them in plaintext)"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn configs(dir: &Path, extra: &str) -> (GatewayConfig, ClientConfig) {
        let path = dir.join("gateway.toml");
        let text = format!("listen = \"127.0.0.1:1\"\ndata_dir = \"d\"\nclient_config = \"c\"\n{extra}");
        std::fs::write(&path, text).unwrap();
        (
            GatewayConfig::load(&path).unwrap(),
            ClientConfig::new("http://127.0.0.1:1", dir.join("account.key")),
        )
    }

    #[test]
    fn an_unattended_keyring_unlocks_with_its_passphrase_file_and_its_absence_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let extra = crate::config::encryption_toml("gateway.keyring", "gateway.passphrase");
        let (config, client) = configs(dir.path(), &extra);
        let missing = load_keys(&config, &client).unwrap_err().to_string();
        assert!(missing.contains("no keyring at") && missing.contains("encrypt = false"), "{missing}");
        create_unattended_keyring(
            &dir.path().join("gateway.keyring"),
            &dir.path().join("gateway.passphrase"),
            Some(2),
        )
        .unwrap();
        let keys = load_keys(&config, &client).unwrap();
        assert!(keys.seal && keys.crypto.seals());
        std::fs::write(dir.path().join("gateway.passphrase"), "wrong\n").unwrap();
        let wrong = load_keys(&config, &client).unwrap_err().to_string();
        assert!(wrong.contains("passphrase"), "{wrong}");
    }

    #[test]
    fn a_gateway_told_not_to_encrypt_needs_no_keyring() {
        let dir = tempfile::tempdir().unwrap();
        let (config, client) = configs(dir.path(), "encrypt = false\n");
        let keys = load_keys(&config, &client).unwrap();
        assert!(!keys.seal && !keys.crypto.seals());
    }
}
