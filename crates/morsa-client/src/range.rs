//! Range reads: only the symbols that hold the bytes asked for.
//!
//! The bytes of a range lie in the systematic primary slivers of its rows, so a range is read
//! from those slivers. A row whose node cannot serve is rebuilt from the other nodes'
//! recovery symbols (about one sliver of traffic) and checked against the row's hash; only
//! if that fails too are `kp` primary slivers fetched and the columns needed decoded. Every
//! byte returned is thus checked against a primary sliver's hash, as a full read's are: a
//! range read returns what a full read would, or fails as inconsistent.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::ops::Range;
use std::sync::Arc;

use futures_util::StreamExt;
use futures_util::future::join_all;
use futures_util::stream::FuturesUnordered;
use redstuff::{
    BlobId, Proofs, RangeError, RecoveryError, RecoverySymbol, Sliver, SliverType, VerifiedMetadata,
};

use crate::nodes::NodeSet;
use crate::range_bytes::RangeBytes;
use crate::read::{BadSliver, ReadLog, ReadOutcome};
use crate::sliver_batches::{self, SliverProblem};
use crate::{Client, Error, InternalError, NodeFailure};

impl Client {
    /// Reads bytes `range` of blob `blob_id` (not of a chunked file: see
    /// [`Client::read_file_range`]).
    pub async fn read_blob_range(&self, blob_id: &BlobId, range: Range<u64>) -> Result<ReadOutcome, Error> {
        let nodes = self.refresh_nodes().await?;
        let mut log = ReadLog::default();
        let metadata = self.verified_metadata(&nodes, blob_id, &mut log).await?;
        let data = self.range_with_metadata(&nodes, &metadata, range, &mut log).await?;
        Ok(log.into_outcome(data))
    }

    /// The size in bytes of blob `blob_id` (a blob, not a chunked file), from its verified
    /// metadata once it is known to be certified: what a reader needs to resolve a range
    /// counted from the end, or to say how long a whole read will be before it starts.
    pub async fn blob_size(&self, blob_id: &BlobId) -> Result<u64, Error> {
        let nodes = self.refresh_nodes().await?;
        let metadata = self.verified_metadata(&nodes, blob_id, &mut ReadLog::default()).await?;
        Ok(metadata.unencoded_length())
    }

    pub(crate) async fn range_with_metadata(
        &self,
        nodes: &Arc<NodeSet>,
        metadata: &Arc<VerifiedMetadata>,
        range: Range<u64>,
        log: &mut ReadLog,
    ) -> Result<Vec<u8>, Error> {
        self.range_bytes(nodes, metadata, range, log).await.map(RangeBytes::into_vec)
    }

    /// Bytes `range` of the blob of `metadata`, as they lie in its verified rows.
    pub(crate) async fn range_bytes(
        &self,
        nodes: &Arc<NodeSet>,
        metadata: &Arc<VerifiedMetadata>,
        range: Range<u64>,
        log: &mut ReadLog,
    ) -> Result<RangeBytes, Error> {
        let len = metadata.unencoded_length();
        let span = metadata.symbols_for_range(range.clone()).map_err(|error| match error {
            RangeError::OutOfBounds { .. } => Error::BadRange { start: range.start, end: range.end, len },
            source => Error::Range { blob_id: *metadata.blob_id(), source },
        })?;
        if range.is_empty() {
            return Ok(RangeBytes::default());
        }
        let rows: Vec<usize> = span.rows().collect();
        let mut by_row: HashMap<usize, Sliver> = HashMap::new();
        let mut missing = Vec::new();
        for (row, result) in self.slivers_from_owners(nodes, metadata, SliverType::Primary, &rows).await {
            match result {
                Ok(sliver) => {
                    by_row.insert(row, sliver);
                }
                Err(problem) => {
                    problem.log(nodes, log);
                    missing.push(row);
                }
            }
        }
        missing.sort_unstable();
        // A row whose node cannot serve is rebuilt from the other nodes' recovery symbols and
        // checked against its own hash, so the bytes are those a full read returns. (Taking
        // them from the secondary slivers of the columns would trust the columns alone: for
        // a blob encoded inconsistently they can hold other bytes than the rows.)
        let rebuilt = join_all(missing.iter().map(|row| self.rebuild_row(nodes, metadata, *row))).await;
        let mut complete = true;
        for (row, (result, failures)) in missing.iter().zip(rebuilt) {
            for failure in failures {
                log.add_failure(failure);
            }
            match result {
                Ok(sliver) => {
                    by_row.insert(*row, sliver);
                }
                Err(RowError::Inconsistent) => return Err(Error::Inconsistent(*metadata.blob_id())),
                Err(RowError::NotEnoughSymbols) => complete = false,
            }
        }
        if !complete {
            return self.range_by_decoding(nodes, metadata, range, by_row, log).await.map(RangeBytes::from);
        }
        // Row `row` holds the blob's bytes from `row · row_bytes` on, in order: each row's part
        // of the range is one slice of its sliver, kept where it lies.
        let row_bytes = morsa_core::convert::saturating_u64(span.row_width * span.symbol_size);
        let short = || Error::Internal(InternalError::ShortSliver);
        let mut bytes = RangeBytes::default();
        for row in span.rows() {
            let row_start = morsa_core::convert::saturating_u64(row).saturating_mul(row_bytes);
            let from = range.start.max(row_start) - row_start;
            let to = range.end.min(row_start.saturating_add(row_bytes)).saturating_sub(row_start);
            if from >= to {
                continue;
            }
            let (from, to) =
                (usize::try_from(from).map_err(|_| short())?, usize::try_from(to).map_err(|_| short())?);
            let sliver = by_row.remove(&row).ok_or_else(short)?;
            if sliver.symbols.len() < to {
                return Err(short());
            }
            bytes.push(sliver.symbols, from..to);
        }
        Ok(bytes)
    }

    /// Rebuilds primary sliver `row` from the recovery symbols of the nodes that hold
    /// secondary slivers, fastest nodes first, each symbol's proof checked as it arrives; the
    /// rebuilt sliver is checked against the row's hash. Answers the nodes that failed too.
    async fn rebuild_row(
        &self,
        nodes: &Arc<NodeSet>,
        metadata: &Arc<VerifiedMetadata>,
        row: usize,
    ) -> (Result<Sliver, RowError>, Vec<NodeFailure>) {
        let blob_id = *metadata.blob_id();
        let needed = metadata.config().ks();
        let target = morsa_core::convert::saturating_u16(row);
        // The row's own node just failed to serve it; the others hold the symbols.
        let owner = nodes.owner_of_sliver(&blob_id, SliverType::Primary, row).map(|(member, _)| member);
        let mut asked: FuturesUnordered<_> = nodes
            .readable_by_latency()
            .into_iter()
            .filter(|member| Some(*member) != owner)
            .map(|member| {
                let metadata = Arc::clone(metadata);
                async move {
                    let answer = nodes
                        .client(member)
                        .recovery_symbols(&blob_id, target, SliverType::Primary, metadata.symbol_size())
                        .await;
                    let checked = match answer {
                        Ok(symbols) => {
                            tokio::task::spawn_blocking(move || valid_symbols(&metadata, row, symbols))
                                .await
                                .unwrap_or_else(|error| Err(format!("verification panicked: {error}")))
                        }
                        Err(error) => Err(error.to_string()),
                    };
                    (member, checked)
                }
            })
            .collect();
        let mut symbols: Vec<RecoverySymbol> = Vec::new();
        let mut sources = BTreeSet::new();
        let mut failures = Vec::new();
        while sources.len() < needed {
            let Some((member, checked)) = asked.next().await else { break };
            match checked {
                Ok(valid) => {
                    for symbol in valid {
                        if sources.insert(symbol.source_index) {
                            symbols.push(symbol);
                        }
                    }
                }
                Err(reason) => {
                    nodes.record_failure(member);
                    failures.push(nodes.failure(member, format!("recovery symbols for row {row}: {reason}")));
                }
            }
        }
        drop(asked);
        if sources.len() < needed {
            return (Err(RowError::NotEnoughSymbols), failures);
        }
        // Every symbol's proof was checked as it arrived: a rebuilt row that does not match
        // its hash is then the blob's inconsistency, not a lying node.
        let metadata = Arc::clone(metadata);
        let rebuilt = tokio::task::spawn_blocking(move || {
            metadata.rebuild_sliver(SliverType::Primary, row, &symbols, Proofs::Skip)
        })
        .await;
        let result = match rebuilt {
            Ok(Ok(sliver)) => Ok(sliver),
            Ok(Err(RecoveryError::RebuiltMismatch { .. } | RecoveryError::Inconsistent { .. })) => {
                Err(RowError::Inconsistent)
            }
            Ok(Err(_)) | Err(_) => Err(RowError::NotEnoughSymbols),
        };
        (result, failures)
    }

    /// The slow path: enough primary slivers to decode the columns the range needs.
    async fn range_by_decoding(
        &self,
        nodes: &Arc<NodeSet>,
        metadata: &Arc<VerifiedMetadata>,
        range: Range<u64>,
        have: HashMap<usize, Sliver>,
        log: &mut ReadLog,
    ) -> Result<Vec<u8>, Error> {
        // Rows already in hand are asked again among the others: simpler than excluding
        // them, and this path only runs when nodes holding a row and a column both failed.
        drop(have);
        let slivers = self.primary_slivers(nodes, metadata, 0..0, self.encoding.kp(), log).await?;
        let metadata = Arc::clone(metadata);
        let blob_id = *metadata.blob_id();
        tokio::task::spawn_blocking(move || metadata.read_range(range, &slivers))
            .await
            .map_err(Error::panicked("the decoder"))?
            .map_err(|error| match error {
                RangeError::Decode(redstuff::DecodeError::Inconsistent { .. }) => {
                    Error::Inconsistent(blob_id)
                }
                source => Error::Range { blob_id, source },
            })
    }

    /// Fetches and verifies the `kind` slivers `indices` from the nodes that hold them: each
    /// node's in batched requests ([`sliver_batches::batch_capacity`] slivers each), all at
    /// once. One result per sliver, in no particular order.
    async fn slivers_from_owners(
        &self,
        nodes: &Arc<NodeSet>,
        metadata: &Arc<VerifiedMetadata>,
        kind: SliverType,
        indices: &[usize],
    ) -> Vec<(usize, Result<Sliver, Problem>)> {
        let blob_id = metadata.blob_id();
        let mut results = Vec::with_capacity(indices.len());
        let mut by_member: BTreeMap<usize, Vec<(usize, u16)>> = BTreeMap::new();
        for index in indices {
            match nodes.owner_of_sliver(blob_id, kind, *index) {
                Some((member, pair)) => by_member
                    .entry(member)
                    .or_default()
                    .push((*index, morsa_core::convert::saturating_u16(pair))),
                None => results.push((*index, Err(Problem::NoOwner))),
            }
        }
        let per_batch = sliver_batches::batch_capacity(metadata.sliver_len(kind));
        let batches = by_member.iter().flat_map(|(member, wanted)| {
            wanted.chunks(per_batch).map(move |batch| async move {
                let started = std::time::Instant::now();
                let fetched = sliver_batches::fetch_verified(nodes, metadata, *member, kind, batch).await;
                if fetched.is_ok() {
                    nodes.record_latency(*member, started.elapsed());
                }
                (*member, batch, fetched)
            })
        });
        for (member, batch, fetched) in join_all(batches).await {
            let answers = match fetched {
                Ok(answers) => answers,
                Err(error) => {
                    let failed =
                        batch.iter().map(|(index, _)| (*index, Err(Problem::Node(member, error.clone()))));
                    results.extend(failed);
                    continue;
                }
            };
            for (index, answer) in answers {
                let result = answer.map_err(|problem| match problem {
                    SliverProblem::Node(error) => Problem::Node(member, error),
                    SliverProblem::Bad(reason) => Problem::Bad(BadSliver {
                        node: nodes.committee().members[member].address.clone(),
                        kind,
                        index,
                        reason,
                    }),
                });
                results.push((index, result));
            }
        }
        results
    }
}

/// Why a row could not be rebuilt from recovery symbols.
enum RowError {
    /// The symbols, each proven, rebuild a row that does not match its hash.
    Inconsistent,
    /// Too few nodes answered with valid symbols.
    NotEnoughSymbols,
}

/// The symbols of one node's answer that are cells `row` of their source slivers; an answer
/// with any symbol that is not is refused whole (its node lies or its disk is bad).
fn valid_symbols(
    metadata: &VerifiedMetadata,
    row: usize,
    symbols: Vec<RecoverySymbol>,
) -> Result<Vec<RecoverySymbol>, String> {
    for symbol in &symbols {
        metadata
            .verify_recovery_symbol(SliverType::Primary, row, symbol)
            .map_err(|error| format!("a symbol does not verify: {error}"))?;
    }
    Ok(symbols)
}

/// Why one sliver could not be had.
enum Problem {
    NoOwner,
    Node(usize, morsa_api::client::ClientError),
    Bad(BadSliver),
}

impl Problem {
    fn log(self, nodes: &NodeSet, log: &mut ReadLog) {
        match self {
            Problem::NoOwner => {}
            Problem::Node(member, error) => log.node_failed(nodes, member, &error),
            Problem::Bad(bad) => log.bad_slivers.push(bad),
        }
    }
}
