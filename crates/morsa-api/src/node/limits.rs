//! Size limits of the storage node's bodies, shared by the server (requests it accepts) and
//! the client (answers it reads). Sliver, metadata and symbol limits come from
//! [`redstuff::wire`], so both sides agree with the codec on the largest genuine value.

use redstuff::{EncodingConfig, SliverType, wire};

/// Most items one [`super::RecoveryBatchRequest`] may hold.
pub const MAX_RECOVERY_BATCH: usize = 1024;

/// Largest BCS [`super::RecoveryBatchResponse`]. The server answers the items that fit and
/// marks the rest [`super::NodeErrorCode::OverBudget`], to be asked for again.
pub const MAX_RECOVERY_BATCH_RESPONSE_BYTES: usize = 32 << 20;

/// Largest JSON request body the node accepts (a full recovery batch is about 110 KiB).
pub const MAX_JSON_REQUEST_BYTES: usize = 256 << 10;

/// Largest small JSON answer: stored status, confirmations, attestations, blob status.
pub const MAX_SMALL_JSON_BYTES: usize = 64 << 10;

/// Largest [`super::NodeHealth`] answer: one entry per shard, up to 65535 shards.
pub const MAX_HEALTH_BYTES: usize = 8 << 20;

/// Most filler bytes a [`super::routes::PROBE`] answer carries: enough for a link's bandwidth
/// to show (a quarter of a second at 32 Mbit/s), little enough for a health check.
pub const MAX_PROBE_BYTES: usize = 1 << 20;

/// Largest [`super::NodeCommittee`] answer: two committees of up to 65535 shards.
pub const MAX_COMMITTEE_BYTES: usize = 8 << 20;

/// Largest error body a client reads (anything longer is cut, not decoded).
pub const MAX_ERROR_BODY_BYTES: usize = 64 << 10;

/// BCS length prefix of a sequence, at most.
const SEQUENCE_PREFIX: usize = 5;

/// Largest BCS [`redstuff::MetadataWithId`] for `config`.
pub fn metadata_limit(config: EncodingConfig) -> usize {
    wire::metadata_limit(config)
}

/// Largest BCS sliver of `kind` for a blob with `symbol_size` under `config`.
pub fn sliver_limit(config: EncodingConfig, kind: SliverType, symbol_size: u16) -> usize {
    wire::sliver_limit(config, kind, symbol_size)
}

/// Largest BCS `Vec<RecoverySymbol>` from one node: one symbol from each of at most `n`
/// source slivers, for a blob with `symbol_size` under `config`.
pub fn recovery_symbols_limit(config: EncodingConfig, symbol_size: u16) -> usize {
    config
        .n_shards()
        .saturating_mul(wire::recovery_symbol_limit(config, symbol_size))
        .saturating_add(SEQUENCE_PREFIX)
}

/// Largest BCS [`redstuff::InconsistencyProof`] of a blob with `symbol_size` under `config`:
/// one symbol from each of at most `n` source slivers (a proof needs `kp` or `ks` of them).
/// Before the metadata is known, use [`redstuff::MAX_SYMBOL_SIZE`].
pub fn inconsistency_proof_limit(config: EncodingConfig, symbol_size: u16) -> usize {
    config
        .n_shards()
        .saturating_mul(wire::recovery_symbol_limit(config, symbol_size))
        .saturating_add(SEQUENCE_PREFIX + 8)
}

#[cfg(test)]
mod tests {
    use redstuff::{EncodingConfig, InconsistencyProof, MetadataWithId, Proofs, SliverType, wire};

    use super::*;

    #[test]
    fn genuine_values_fit_their_limits() {
        let config = EncodingConfig::new(7).unwrap();
        let blob = vec![0x5a; 5000];
        let encoded = redstuff::encode(config, &blob).unwrap();
        let metadata = &encoded.metadata;
        let symbol_size = metadata.symbol_size();
        let with_id = MetadataWithId { blob_id: *metadata.blob_id(), metadata: metadata.metadata().clone() };
        assert!(wire::to_bcs(&with_id).len() <= metadata_limit(config));
        for pair in &encoded.pairs {
            assert!(
                wire::to_bcs(&pair.primary).len() <= sliver_limit(config, SliverType::Primary, symbol_size)
            );
            let secondary = wire::to_bcs(&pair.secondary).len();
            assert!(secondary <= sliver_limit(config, SliverType::Secondary, symbol_size));
        }
        // Every node's symbols towards primary sliver 2: one per secondary sliver.
        let symbols: Vec<_> = (0..7)
            .map(|index| {
                let sliver = &encoded.pairs[6 - index].secondary;
                let expansion =
                    redstuff::SliverExpansion::new(metadata, SliverType::Secondary, sliver).unwrap();
                expansion.recovery_symbol(2).unwrap()
            })
            .collect();
        assert!(wire::to_bcs(&symbols).len() <= recovery_symbols_limit(config, symbol_size));
        let rebuilt = metadata.rebuild_sliver(SliverType::Primary, 2, &symbols, Proofs::Check).unwrap();
        assert_eq!(rebuilt, encoded.pairs[2].primary);
        let proof = InconsistencyProof { target_kind: SliverType::Primary, target_index: 2, symbols };
        assert!(wire::to_bcs(&proof).len() <= inconsistency_proof_limit(config, symbol_size));
    }

    #[test]
    fn limits_never_overflow() {
        let config = EncodingConfig::new(u16::MAX).unwrap();
        assert!(
            recovery_symbols_limit(config, redstuff::MAX_SYMBOL_SIZE) > MAX_RECOVERY_BATCH_RESPONSE_BYTES
        );
        assert!(inconsistency_proof_limit(config, redstuff::MAX_SYMBOL_SIZE) > 0);
    }
}
