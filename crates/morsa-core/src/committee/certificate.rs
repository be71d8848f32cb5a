//! Certificates: one aggregate BLS signature by several committee members over one message,
//! with the signers named by member index. The signers' weight (shards held) must reach a
//! threshold for the certificate to count.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::Committee;
use crate::bls::{BlsPublicKey, BlsSignature, verify_aggregate};
use crate::quorum;
use crate::signature::SignatureError;

/// How much weight a certificate needs, out of `n` shards.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Threshold {
    /// `3w ≥ 2n + 1`: enough that honest signers hold at least `f + 1` shards. Storage
    /// certificates need this.
    Quorum,
    /// `3w ≥ n + 1`: enough that at least one signer is honest. Invalid-blob certificates and
    /// epoch-sync reports need this.
    Validity,
}

impl Threshold {
    /// Whether `weight` out of `n_shards` meets this threshold.
    pub fn is_met(self, weight: usize, n_shards: usize) -> bool {
        match self {
            Threshold::Quorum => quorum::is_quorum(weight, n_shards),
            Threshold::Validity => quorum::is_validity(weight, n_shards),
        }
    }

    /// The smallest weight that meets this threshold out of `n_shards`.
    pub fn min_weight(self, n_shards: usize) -> usize {
        match self {
            Threshold::Quorum => quorum::min_quorum(n_shards),
            Threshold::Validity => quorum::min_validity(n_shards),
        }
    }
}

impl fmt::Display for Threshold {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Threshold::Quorum => "quorum",
            Threshold::Validity => "validity",
        })
    }
}

/// An aggregate signature by the committee members `signers` (indices into
/// [`Committee::members`], strictly increasing).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Certificate {
    /// The signers' member indices, strictly increasing.
    pub signers: Vec<u16>,
    /// The aggregate of the signers' signatures over one message.
    pub signature: BlsSignature,
}

/// Why a certificate was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CertificateError {
    /// The certificate names no signer.
    #[error("the certificate has no signers")]
    NoSigners,
    /// The certificate names more signers than the committee has members.
    #[error("the certificate names {signers} signers but the committee has {members} members")]
    TooManySigners {
        /// How many signers it names.
        signers: usize,
        /// How many members the committee has.
        members: usize,
    },
    /// The signer indices are not in increasing order.
    #[error("signer {next} follows signer {previous}: signers must be strictly increasing")]
    UnsortedSigners {
        /// The earlier index.
        previous: u16,
        /// The index after it, which is smaller.
        next: u16,
    },
    /// A signer index appears twice.
    #[error("signer {index} appears more than once")]
    DuplicateSigner {
        /// The repeated index.
        index: u16,
    },
    /// A signer index is not a member of the committee.
    #[error("signer {index} is not in the committee, which has {members} members")]
    SignerNotInCommittee {
        /// The index.
        index: u16,
        /// How many members the committee has.
        members: usize,
    },
    /// The signers together hold too few shards.
    #[error("the signers hold {weight} shards but {threshold} needs {needed}")]
    InsufficientWeight {
        /// The shards the signers hold.
        weight: usize,
        /// The fewest shards that meet the threshold.
        needed: usize,
        /// The threshold asked for.
        threshold: Threshold,
    },
    /// The aggregate signature is malformed, or does not verify against the signers' keys.
    #[error("bad certificate signature: {0}")]
    BadSignature(#[from] SignatureError),
}

impl Certificate {
    /// The certificate of the signatures `parts`, each `(member index, signature)`, in any
    /// order. Refuses an empty list and a member listed twice. The parts are not verified
    /// here; [`Committee::verify_certificate`] checks the result.
    pub fn aggregate(parts: &[(u16, BlsSignature)]) -> Result<Certificate, CertificateError> {
        if parts.is_empty() {
            return Err(CertificateError::NoSigners);
        }
        let mut sorted: Vec<&(u16, BlsSignature)> = parts.iter().collect();
        sorted.sort_unstable_by_key(|(index, _)| *index);
        if let Some(pair) = sorted.windows(2).find(|pair| pair[0].0 == pair[1].0) {
            return Err(CertificateError::DuplicateSigner { index: pair[0].0 });
        }
        let signers = sorted.iter().map(|(index, _)| *index).collect();
        let signatures: Vec<BlsSignature> =
            sorted.into_iter().map(|(_, signature)| signature.clone()).collect();
        Ok(Certificate { signers, signature: BlsSignature::aggregate(&signatures)? })
    }
}

impl Committee {
    /// Checks `certificate` over `message` against this (valid) committee and returns the
    /// signers' total weight. The shape, membership and weight are checked first, so a
    /// certificate that cannot count costs no pairing.
    pub fn verify_certificate(
        &self,
        certificate: &Certificate,
        message: &[u8],
        threshold: Threshold,
    ) -> Result<usize, CertificateError> {
        let signers = &certificate.signers;
        let members = self.members.len();
        if signers.is_empty() {
            return Err(CertificateError::NoSigners);
        }
        if signers.len() > members {
            return Err(CertificateError::TooManySigners { signers: signers.len(), members });
        }
        for pair in signers.windows(2) {
            let (previous, next) = (pair[0], pair[1]);
            if next == previous {
                return Err(CertificateError::DuplicateSigner { index: next });
            }
            if next < previous {
                return Err(CertificateError::UnsortedSigners { previous, next });
            }
        }
        let mut weight = 0;
        let mut public_keys: Vec<BlsPublicKey> = Vec::with_capacity(signers.len());
        for &index in signers {
            let member = self
                .members
                .get(usize::from(index))
                .ok_or(CertificateError::SignerNotInCommittee { index, members })?;
            weight += member.shards.len();
            public_keys.push(member.public_key);
        }
        let n_shards = usize::from(self.n_shards);
        if !threshold.is_met(weight, n_shards) {
            let needed = threshold.min_weight(n_shards);
            return Err(CertificateError::InsufficientWeight { weight, needed, threshold });
        }
        verify_aggregate(&public_keys, message, &certificate.signature)?;
        Ok(weight)
    }
}
