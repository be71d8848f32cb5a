//! Morsa's key material: what encrypts a user's data and how it survives the loss of any one
//! person or machine.
//!
//! - [`RootSecret`]: 32 random bytes; every age data identity is derived from it, one per
//!   *generation* (rotation adds one; old generations stay readable).
//! - [`Keyring`]: the root and its generation count, kept in a file encrypted with a
//!   passphrase (age scrypt), public part in the clear.
//! - [`slip39`]: SLIP-39 mnemonic shares, how the root is split among people.
//!
//! This crate owns secrets and their formats; it does no network I/O and knows nothing of
//! blobs (encrypting blobs is `morsa-client`'s).
//!
//! ```
//! use morsa_keys::{Keyring, RootSecret};
//! let keyring = Keyring::generate();
//! let shares = keyring.root().split(3, 5, b"").unwrap();
//! let root = RootSecret::recover(&[&shares[4], &shares[0], &shares[2]], b"").unwrap();
//! assert_eq!(&root, keyring.root());
//! ```

mod keyring;
mod root;
pub mod slip39;

/// The passphrase type keyrings are locked with (age's).
pub use age::secrecy::SecretString;
pub use keyring::{
    FORMAT, KEYRING_ENV, Keyring, KeyringError, PASSPHRASE_ENV, PublicKeyring, READ_AHEAD, WORK_FACTOR_ENV,
    default_path, read_public, work_factor_from_env,
};
pub use root::{CHECK_BYTES, ROOT_BYTES, RecoverError, RootSecret, SALT};
