//! The coordinator's protocol and the answers nodes sign: everything in it is signed or
//! hashed, so its BCS bytes are part of the protocol and must never change silently.
//!
//! - [`LogEntry`] and [`Input`]: what the coordinator's state machine applies, in log order
//!   (time ticks, account [`Transaction`]s with their [`Command`] or [`Command::Batch`] of
//!   commands, node [`NodeReport`]s).
//! - [`Transaction::signing_bytes`]: what an account signs (a domain separator, the chain ID
//!   and the BCS of the transaction).
//! - [`EventRecord`]: the hash-chained [`Event`]s the state machine announces.
//! - [`SignedConfirmation`] and [`InvalidBlobAttestation`]: what a storage node signs for
//!   clients, over the Walrus message bytes of [`crate::messages`].
//!
//! Not here: how the coordinator applies them (`morsa-coord`) and the routes that carry them
//! (`morsa-api`, which re-exports these types where they always were).
//!
//! ```
//! use morsa_core::AccountKey;
//! use morsa_core::protocol::{Command, Transaction};
//! let key = AccountKey::from_seed([1; 32]);
//! let transaction = Transaction { sender: key.id(), nonce: 0, command: Command::Transfer { to: key.id(), amount: 5 } };
//! let signed = transaction.sign(&key, "local");
//! let bytes = signed.transaction.signing_bytes("local");
//! assert!(bytes.starts_with(b"morsa/coord/transaction/v1"));
//! assert!(key.id().verify(&bytes, &signed.signature).is_ok());
//! ```

mod command;
mod event;
mod signed;

pub use command::{
    Command, DisputedAnswer, Input, LogEntry, MAX_BATCH_COMMANDS, MAX_ZONE_LEN, NodeReport, NodeReportKind,
    SignedTransaction, Transaction, zone_is_valid,
};
pub use event::{Event, EventRecord};
pub use signed::{InvalidBlobAttestation, SignedConfirmation, SignedMessageError};
