//! The one error type of every signature operation, ed25519 and BLS alike.

/// Why a key, a signature or a verification was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    /// The public key bytes do not encode a usable key: not a point of the curve, not in the
    /// prime-order subgroup, not in canonical form, or the identity / a small-order point
    /// (such a key would accept forged signatures).
    #[error(
        "malformed public key: not a canonical point of the prime-order group, or the identity \
         or a small-order point"
    )]
    MalformedPublicKey,
    /// The signature bytes do not encode a usable signature: not a point of the curve, not in
    /// the prime-order subgroup, not in canonical form, or the identity.
    #[error("malformed signature: not a canonical point of the prime-order group, or the identity")]
    MalformedSignature,
    /// The secret key bytes are not a scalar in `1..r` (BLS secret keys only).
    #[error("malformed secret key: not a non-zero scalar below the group order")]
    MalformedSecretKey,
    /// The key and signature are well formed but the signature is not over this message by
    /// this key (or, for an aggregate, not by exactly these keys).
    #[error("invalid signature: it was not made over this message by this key")]
    InvalidSignature,
    /// An aggregate of no signatures, or a verification against no public keys, was asked for.
    #[error("empty aggregate: at least one signature and one public key are needed")]
    EmptyAggregate,
}
