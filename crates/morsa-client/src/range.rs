//! Range reads: only the symbols that hold the bytes asked for.
//!
//! Symbol `(row, column)` of the message matrix lies in systematic primary sliver `row` and
//! in secondary sliver `column`, which is that column of the message itself. So a range is
//! read from the primary slivers of its rows; for a row whose node cannot serve, from the
//! secondary slivers of its columns; and only if those fail too, from `kp` primary slivers
//! by decoding just the columns needed.

use std::collections::{BTreeSet, HashMap};
use std::ops::Range;
use std::sync::Arc;

use futures_util::future::join_all;
use redstuff::{BlobId, RangeError, Sliver, SliverType, VerifiedMetadata};

use crate::nodes::NodeSet;
use crate::read::{BadSliver, ReadLog, ReadOutcome};
use crate::{Client, Error};

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

    pub(crate) async fn range_with_metadata(
        &self,
        nodes: &Arc<NodeSet>,
        metadata: &Arc<VerifiedMetadata>,
        range: Range<u64>,
        log: &mut ReadLog,
    ) -> Result<Vec<u8>, Error> {
        let len = metadata.unencoded_length();
        let span = metadata.symbols_for_range(range.clone()).map_err(|error| match error {
            RangeError::OutOfBounds { .. } => Error::BadRange { start: range.start, end: range.end, len },
            other => Error::Refused(other.to_string()),
        })?;
        if range.is_empty() {
            return Ok(Vec::new());
        }
        let rows: Vec<usize> = span.rows().collect();
        let fetched =
            join_all(rows.iter().map(|row| self.one_sliver(nodes, metadata, SliverType::Primary, *row)))
                .await;
        let mut by_row: HashMap<usize, Sliver> = HashMap::new();
        for (row, result) in rows.iter().zip(fetched) {
            match result {
                Ok(sliver) => {
                    by_row.insert(*row, sliver);
                }
                Err(problem) => problem.log(nodes, log),
            }
        }
        let columns: BTreeSet<usize> =
            span.cells().filter(|(row, _)| !by_row.contains_key(row)).map(|(_, column)| column).collect();
        let fetched = join_all(
            columns.iter().map(|column| self.one_sliver(nodes, metadata, SliverType::Secondary, *column)),
        )
        .await;
        let mut by_column: HashMap<usize, Sliver> = HashMap::new();
        let mut complete = true;
        for (column, result) in columns.iter().zip(fetched) {
            match result {
                Ok(sliver) => {
                    by_column.insert(*column, sliver);
                }
                Err(problem) => {
                    problem.log(nodes, log);
                    complete = false;
                }
            }
        }
        if !complete {
            return self.range_by_decoding(nodes, metadata, range, by_row, log).await;
        }
        let s = span.symbol_size;
        let mut bytes = Vec::with_capacity((span.positions.1 - span.positions.0) * s);
        for (row, column) in span.cells() {
            let symbol = match by_row.get(&row) {
                Some(sliver) => sliver.symbol(column),
                None => by_column.get(&column).and_then(|sliver| sliver.symbol(row)),
            };
            bytes.extend_from_slice(
                symbol.ok_or_else(|| Error::Refused("a verified sliver is short".into()))?,
            );
        }
        let skip = usize::try_from(range.start - span.first_byte()).unwrap_or(0);
        let wanted = usize::try_from(range.end - range.start).unwrap_or(usize::MAX);
        bytes.drain(..skip.min(bytes.len()));
        bytes.truncate(wanted);
        Ok(bytes)
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
            .map_err(|error| Error::Refused(format!("the decoder panicked: {error}")))?
            .map_err(|error| match error {
                RangeError::Decode(redstuff::DecodeError::Inconsistent { .. }) => {
                    Error::Inconsistent(blob_id)
                }
                other => Error::Refused(format!("reading a range of {blob_id}: {other}")),
            })
    }

    /// Fetches and verifies one sliver from the node that holds it.
    async fn one_sliver(
        &self,
        nodes: &Arc<NodeSet>,
        metadata: &Arc<VerifiedMetadata>,
        kind: SliverType,
        index: usize,
    ) -> Result<Sliver, Problem> {
        let blob_id = metadata.blob_id();
        let (member, pair) = nodes.owner_of_sliver(blob_id, kind, index).ok_or(Problem::NoOwner)?;
        let pair = u16::try_from(pair).unwrap_or(u16::MAX);
        let started = std::time::Instant::now();
        let sliver = nodes
            .client(member)
            .get_sliver(blob_id, pair, kind, metadata.symbol_size())
            .await
            .map_err(|error| Problem::Node(member, error))?;
        nodes.record_latency(member, started.elapsed());
        let checked = Arc::clone(metadata);
        tokio::task::spawn_blocking(move || {
            if sliver.index() != index {
                return Err(format!("asked for {kind} sliver {index}, got {}", sliver.index()));
            }
            checked.verify_sliver(kind, &sliver).map(|()| sliver).map_err(|error| error.to_string())
        })
        .await
        .unwrap_or_else(|error| Err(format!("verification panicked: {error}")))
        .map_err(|reason| {
            Problem::Bad(BadSliver {
                node: nodes.committee().members[member].address.clone(),
                kind,
                index,
                reason,
            })
        })
    }
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
