//! Drives decoding, range reads, rebuilds and inconsistency proofs with slivers and recovery
//! symbols built from the fuzz input: BCS bytes, raw fields, or genuine ones with a flipped
//! byte, a wrong index, a wrong symbol size or a cut.
//!
//! None may panic, and the answers must be right:
//! - for the consistently encoded blob, a decode or range read from slivers that all verify
//!   returns the blob's bytes or an error other than an inconsistency; a rebuild that succeeds
//!   returns the genuine sliver; no rebuild reports an inconsistency, and no inconsistency
//!   proof verifies;
//! - for the inconsistently encoded blob (one sliver tampered before its metadata was
//!   computed), every inconsistency a rebuild reports comes with a proof that verifies, also
//!   after a BCS round trip.

#![no_main]

use std::sync::LazyLock;

use libfuzzer_sys::arbitrary::{self, Arbitrary};
use libfuzzer_sys::fuzz_target;
use redstuff::merkle::{MerkleNode, MerkleProof};
use redstuff::wire::{from_bcs, to_bcs};
use redstuff::{
    DecodeError, EncodingConfig, InconsistencyProof, Proofs, RangeError, RecoveryError, RecoverySymbol,
    Sliver, SliverExpansion, SliverPair, SliverType, VerifiedMetadata,
};

/// `n = 7`: `kp = 3`, `ks = 5`; 100 bytes fill 15 symbols of 8 bytes, the last 20 bytes of
/// which are padding.
const N: u16 = 7;
const BLOB: &[u8; 100] =
    b"RedStuff fuzz fixture at n = 7: a blob of 100 bytes in 15 source symbols of 8 bytes, the rest zeros.";
const LIMIT: usize = 1 << 20;

/// A blob with its metadata, slivers by kind and index, and every sliver's expansion.
struct Fixture {
    metadata: VerifiedMetadata,
    primary: Vec<Sliver>,
    secondary: Vec<Sliver>,
    expansions: [Vec<SliverExpansion>; 2],
}

impl Fixture {
    fn new(pairs: Vec<SliverPair>, metadata: VerifiedMetadata) -> Self {
        let primary: Vec<Sliver> = pairs.iter().map(|pair| pair.primary.clone()).collect();
        let mut secondary: Vec<Sliver> = pairs.iter().map(|pair| pair.secondary.clone()).collect();
        secondary.sort_by_key(|sliver| sliver.index);
        let expand = |kind, slivers: &[Sliver]| -> Vec<SliverExpansion> {
            slivers
                .iter()
                .map(|sliver| {
                    SliverExpansion::new(&metadata, kind, sliver).expect("slivers have the blob's shape")
                })
                .collect()
        };
        let expansions = [expand(SliverType::Primary, &primary), expand(SliverType::Secondary, &secondary)];
        Self { metadata, primary, secondary, expansions }
    }

    fn slivers(&self, kind: SliverType) -> &[Sliver] {
        match kind {
            SliverType::Primary => &self.primary,
            SliverType::Secondary => &self.secondary,
        }
    }

    fn expansions(&self, kind: SliverType) -> &[SliverExpansion] {
        match kind {
            SliverType::Primary => &self.expansions[0],
            SliverType::Secondary => &self.expansions[1],
        }
    }
}

fn config() -> EncodingConfig {
    EncodingConfig::new(N).expect("n is at least 4")
}

static CONSISTENT: LazyLock<Fixture> = LazyLock::new(|| {
    let encoded = redstuff::encode(config(), BLOB).expect("the blob fits the code");
    Fixture::new(encoded.pairs, encoded.metadata)
});

/// The writer flipped a byte of primary sliver 5 (non-systematic) before committing.
static INCONSISTENT: LazyLock<Fixture> = LazyLock::new(|| {
    let encoded = redstuff::encode(config(), BLOB).expect("the blob fits the code");
    let mut pairs = encoded.pairs;
    pairs[5].primary.symbols[3] ^= 0x40;
    let length = u64::try_from(BLOB.len()).expect("small");
    let metadata =
        redstuff::metadata_for_pairs(config(), length, &pairs).expect("n pairs of the blob's shape");
    Fixture::new(pairs, metadata)
});

fn kind_of(secondary: bool) -> SliverType {
    if secondary { SliverType::Secondary } else { SliverType::Primary }
}

#[derive(Arbitrary, Debug)]
enum SliverInput {
    /// A sliver in BCS.
    Bcs(Vec<u8>),
    /// Raw fields.
    Raw { symbols: Vec<u8>, symbol_size: u16, index: u16 },
    /// A genuine sliver of either kind, changed or not.
    Genuine {
        secondary: bool,
        index: u8,
        flip: Option<(u16, u8)>,
        new_index: Option<u16>,
        new_symbol_size: Option<u16>,
        cut: Option<u16>,
    },
    /// The genuine primary slivers whose bits are set in `mask`, in index order.
    GenuineSet { mask: u8 },
}

impl SliverInput {
    fn build(self, fixture: &Fixture) -> Vec<Sliver> {
        match self {
            Self::Bcs(bytes) => from_bcs(&bytes, LIMIT).ok().into_iter().collect(),
            Self::Raw { symbols, symbol_size, index } => vec![Sliver { symbols, symbol_size, index }],
            Self::GenuineSet { mask } => {
                fixture.primary.iter().filter(|sliver| mask >> sliver.index() & 1 == 1).cloned().collect()
            }
            Self::Genuine { secondary, index, flip, new_index, new_symbol_size, cut } => {
                let slivers = fixture.slivers(kind_of(secondary));
                let mut sliver = slivers[usize::from(index) % slivers.len()].clone();
                if let Some((position, mask)) = flip {
                    let len = sliver.symbols.len();
                    sliver.symbols[usize::from(position) % len] ^= mask;
                }
                if let Some(index) = new_index {
                    sliver.index = index;
                }
                if let Some(size) = new_symbol_size {
                    sliver.symbol_size = size;
                }
                if let Some(cut) = cut {
                    sliver.symbols.truncate(usize::from(cut));
                }
                vec![sliver]
            }
        }
    }
}

#[derive(Arbitrary, Debug)]
enum SymbolInput {
    /// A recovery symbol in BCS.
    Bcs(Vec<u8>),
    /// Raw fields; `None` path entries are empty nodes.
    Raw { source_index: u16, symbol: Vec<u8>, path: Vec<Option<[u8; 32]>> },
    /// The genuine symbol a sliver of the kind orthogonal to the rebuild target sends to the
    /// rebuild's target (or to `other_target`), changed or not.
    Genuine {
        source: u8,
        other_target: Option<u8>,
        flip: Option<(u8, u8)>,
        new_source_index: Option<u16>,
        drop_path: bool,
    },
    /// The genuine symbols for the rebuild's target from the sources whose bits are set in
    /// `mask`, in index order.
    GenuineSet { mask: u8 },
}

impl SymbolInput {
    fn build(self, fixture: &Fixture, target_kind: SliverType, target: usize) -> Vec<RecoverySymbol> {
        let sources = fixture.expansions(target_kind.orthogonal());
        match self {
            Self::Bcs(bytes) => from_bcs(&bytes, LIMIT).ok().into_iter().collect(),
            Self::Raw { source_index, symbol, path } => {
                let path =
                    path.into_iter().map(|node| node.map_or(MerkleNode::Empty, MerkleNode::Digest)).collect();
                vec![RecoverySymbol { source_index, symbol, proof: MerkleProof { path } }]
            }
            Self::GenuineSet { mask } => (0..sources.len())
                .filter(|source| mask >> source & 1 == 1)
                .filter_map(|source| sources[source].recovery_symbol(target))
                .collect(),
            Self::Genuine { source, other_target, flip, new_source_index, drop_path } => {
                let expansion = &sources[usize::from(source) % sources.len()];
                let target = other_target.map_or(target, |other| usize::from(other) % sources.len());
                let Some(mut symbol) = expansion.recovery_symbol(target) else {
                    return Vec::new();
                };
                if let Some((position, mask)) = flip {
                    let len = symbol.symbol.len();
                    symbol.symbol[usize::from(position) % len] ^= mask;
                }
                if let Some(index) = new_source_index {
                    symbol.source_index = index;
                }
                if drop_path {
                    symbol.proof.path.pop();
                }
                vec![symbol]
            }
        }
    }
}

/// A byte range: small numbers reach in-bounds, empty and just-out-of-bounds ranges of the
/// 100-byte blob quickly; any `u64`s reach the rest.
#[derive(Arbitrary, Debug)]
enum RangeInput {
    Small { start: u8, len: u8 },
    Any { start: u64, end: u64 },
}

impl RangeInput {
    fn range(&self) -> std::ops::Range<u64> {
        match *self {
            Self::Small { start, len } => u64::from(start)..u64::from(start) + u64::from(len),
            Self::Any { start, end } => start..end,
        }
    }
}

#[derive(Arbitrary, Debug)]
struct Input {
    inconsistent: bool,
    slivers: Vec<SliverInput>,
    range: RangeInput,
    target_secondary: bool,
    /// The rebuild target is this modulo `n + 1`: one value in eight is out of range.
    target: u8,
    symbols: Vec<SymbolInput>,
    skip_proofs: bool,
    proof_bcs: Vec<u8>,
}

/// The codec runs its heavy loops on rayon. With libFuzzer's thread and a pool as wide as
/// the machine competing for few cores, most time goes to waking workers, so each input runs
/// on a one-thread pool, handed over once.
static POOL: LazyLock<rayon::ThreadPool> = LazyLock::new(|| {
    rayon::ThreadPoolBuilder::new().num_threads(1).build().expect("a one-thread pool can be built")
});

fuzz_target!(|input: Input| POOL.install(|| run(input)));

fn run(input: Input) {
    let fixture: &Fixture = if input.inconsistent { &INCONSISTENT } else { &CONSISTENT };
    let consistent = !input.inconsistent;
    let metadata = &fixture.metadata;

    let slivers: Vec<Sliver> = input.slivers.into_iter().flat_map(|sliver| sliver.build(fixture)).collect();
    let mut all_verify = true;
    for sliver in &slivers {
        all_verify &= metadata.verify_sliver(SliverType::Primary, sliver).is_ok();
        let _ = metadata.verify_sliver(SliverType::Secondary, sliver);
        if let Ok(expansion) = SliverExpansion::new(metadata, SliverType::Primary, sliver) {
            let _ = expansion.recovery_symbol(usize::from(input.target));
        }
    }

    let decoded = metadata.decode(&slivers);
    if consistent && all_verify {
        match &decoded {
            Ok(blob) => assert_eq!(blob.as_slice(), BLOB),
            Err(DecodeError::Inconsistent { .. }) => {
                panic!("verified slivers of a consistent blob: {decoded:?}")
            }
            Err(_) => {}
        }
    }

    let range = input.range.range();
    let _ = metadata.symbols_for_range(range.clone());
    let read = metadata.read_range(range.clone(), &slivers);
    if consistent && all_verify {
        match &read {
            Ok(bytes) => {
                let start = usize::try_from(range.start).expect("within the blob");
                let end = usize::try_from(range.end).expect("within the blob");
                assert_eq!(bytes.as_slice(), &BLOB[start..end]);
            }
            Err(RangeError::Decode(DecodeError::Inconsistent { .. })) => {
                panic!("verified slivers of a consistent blob: {read:?}")
            }
            Err(_) => {}
        }
    }

    let target_kind = kind_of(input.target_secondary);
    let target = usize::from(input.target) % (usize::from(N) + 1);
    let symbols: Vec<RecoverySymbol> =
        input.symbols.into_iter().flat_map(|symbol| symbol.build(fixture, target_kind, target)).collect();
    for symbol in &symbols {
        let _ = metadata.verify_recovery_symbol(target_kind, target, symbol);
    }
    let proofs = if input.skip_proofs { Proofs::Skip } else { Proofs::Check };
    match metadata.rebuild_sliver(target_kind, target, &symbols, proofs) {
        Ok(sliver) => {
            assert_eq!(metadata.verify_sliver(target_kind, &sliver), Ok(()));
            if consistent {
                assert_eq!(&sliver, &fixture.slivers(target_kind)[target]);
            }
        }
        Err(RecoveryError::Inconsistent { kind, index, proof }) => {
            assert!(!consistent, "a consistent blob yielded an inconsistency for {kind} {index}");
            assert_eq!(proof.verify(metadata), Ok(()));
            let decoded: InconsistencyProof = from_bcs(&to_bcs(&proof), LIMIT).expect("proofs round-trip");
            assert_eq!(decoded.verify(metadata), Ok(()));
        }
        Err(_) => {}
    }

    let target_index = u16::try_from(target).expect("below n + 1");
    let built = InconsistencyProof { target_kind, target_index, symbols };
    let from_wire: Option<InconsistencyProof> = from_bcs(&input.proof_bcs, LIMIT).ok();
    for proof in std::iter::once(&built).chain(from_wire.as_ref()) {
        let verdict = proof.verify(metadata);
        if consistent {
            assert!(verdict.is_err(), "an inconsistency proof against a consistent blob verified");
        }
    }
}
