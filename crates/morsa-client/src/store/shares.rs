//! A blob's encoding as its uploads hold it: every sliver pair behind a reference count of
//! its own, and each node's upload holding only the pairs of its own shards. A pair is freed
//! as soon as nothing needs it any more: the store holds every pair until the blob is
//! certified (an upload round that the epoch ends under is done again with the next
//! committee, whose nodes hold other shards); after that only the uploads still running
//! hold theirs, and each drops its pairs once they are sent. So the uploads that go on after
//! certification (to the nodes outside the first quorum) hold those nodes' slivers only, not
//! the whole encoding, and their memory shrinks as they end.

use std::collections::BTreeMap;
use std::sync::Arc;

use bytes::Bytes;
use redstuff::{BlobId, EncodedBlob, MetadataWithId, Sliver, SliverPair, SliverType};

/// A blob's metadata and its sliver pairs, each held apart.
pub(super) struct Encoding {
    metadata: Arc<MetadataWithId>,
    pairs: Vec<Arc<SliverPair>>,
}

impl Encoding {
    /// `encoded`, its pairs taken apart (nothing is copied).
    pub(super) fn new(encoded: EncodedBlob) -> Self {
        let EncodedBlob { metadata, pairs } = encoded;
        let metadata = MetadataWithId { blob_id: *metadata.blob_id(), metadata: metadata.metadata().clone() };
        Self { metadata: Arc::new(metadata), pairs: pairs.into_iter().map(Arc::new).collect() }
    }

    /// The blob ID.
    pub(super) fn blob_id(&self) -> BlobId {
        self.metadata.blob_id
    }

    /// The metadata, with the blob ID.
    pub(super) fn metadata(&self) -> &Arc<MetadataWithId> {
        &self.metadata
    }

    /// Symbol bytes of all the slivers (what progress counts).
    pub(super) fn symbol_bytes(&self) -> u64 {
        let bytes = self.pairs.iter().map(|pair| pair.primary.symbols.len() + pair.secondary.symbols.len());
        morsa_core::convert::saturating_u64(bytes.sum::<usize>())
    }

    /// A share of pairs `pairs` (indices past the last pair are left out), holding them
    /// until it is dropped.
    pub(super) fn share(&self, pairs: impl IntoIterator<Item = usize>) -> Share {
        let pairs =
            pairs.into_iter().filter_map(|index| Some((index, Arc::clone(self.pairs.get(index)?)))).collect();
        Share { pairs }
    }
}

/// The sliver pairs one node gets, held until this is dropped.
pub(super) struct Share {
    pairs: BTreeMap<usize, Arc<SliverPair>>,
}

impl Share {
    /// The `kind` sliver of pair `pair`, if the share holds the pair.
    pub(super) fn sliver(&self, pair: u16, kind: SliverType) -> Option<&Sliver> {
        let pair = self.pairs.get(&usize::from(pair))?;
        Some(match kind {
            SliverType::Primary => &pair.primary,
            SliverType::Secondary => &pair.secondary,
        })
    }

    /// The symbols of the `kind` sliver of pair `pair`, shared (not copied): they stay
    /// allocated while the bytes are alive, however the share ends.
    pub(super) fn symbols(&self, pair: u16, kind: SliverType) -> Option<Bytes> {
        let pair = Arc::clone(self.pairs.get(&usize::from(pair))?);
        Some(Bytes::from_owner(Symbols { pair, kind }))
    }

    /// The indices of the pairs held, in order.
    pub(super) fn pairs(&self) -> impl Iterator<Item = usize> + '_ {
        self.pairs.keys().copied()
    }
}

/// One sliver's symbols, owned through its pair.
struct Symbols {
    pair: Arc<SliverPair>,
    kind: SliverType,
}

impl AsRef<[u8]> for Symbols {
    fn as_ref(&self) -> &[u8] {
        match self.kind {
            SliverType::Primary => &self.pair.primary.symbols,
            SliverType::Secondary => &self.pair.secondary.symbols,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pair_is_freed_once_the_encoding_and_every_share_holding_it_are_dropped() {
        let config = redstuff::EncodingConfig::new(10).unwrap();
        let encoded = redstuff::encode(config, &[3u8; 5000]).unwrap();
        let expected = encoded.pairs[2].primary.symbols.clone();
        let encoding = Encoding::new(encoded);
        let weak: Vec<_> = encoding.pairs.iter().map(Arc::downgrade).collect();
        let first = encoding.share([0, 1, 2]);
        let second = encoding.share([2, 3, 99]);
        assert_eq!(first.sliver(2, SliverType::Primary).unwrap().symbols, expected);
        let shared = first.symbols(2, SliverType::Primary).unwrap();
        assert_eq!(shared, expected);
        let held = first.sliver(2, SliverType::Primary).unwrap().symbols.as_ptr();
        assert_eq!(shared.as_ptr(), held, "the sliver's own memory, not a copy");
        assert!(first.sliver(3, SliverType::Primary).is_none(), "not the first share's pair");
        assert_eq!(second.pairs().collect::<Vec<_>>(), [2, 3], "an index past the last pair is left out");
        // Certified: the store lets go of the whole encoding; the shares still running hold
        // their own pairs, and nothing else is kept.
        drop(encoding);
        let alive = |weak: &[std::sync::Weak<SliverPair>]| {
            weak.iter()
                .enumerate()
                .filter(|(_, pair)| pair.strong_count() > 0)
                .map(|(i, _)| i)
                .collect::<Vec<_>>()
        };
        assert_eq!(alive(&weak), [0, 1, 2, 3]);
        drop(first);
        assert_eq!(alive(&weak), [2, 3], "pair 2 is still the second share's");
        drop(second);
        assert_eq!(alive(&weak), [2], "bytes still being sent keep their pair");
        drop(shared);
        assert!(alive(&weak).is_empty());
    }
}
