//! A batch of recovery-symbol requests answered at once, within a byte budget decided in
//! request order before any work, each held sliver expanded once for all the items that need
//! it (see `recovery_symbols`), in the [`SymbolForm`] the asker chose.

use std::collections::HashMap;

use morsa_api::ErrorBody;
use morsa_api::node::{
    MAX_RECOVERY_BATCH, MAX_RECOVERY_BATCH_RESPONSE_BYTES, NodeErrorCode, RecoveryBatchItem,
    RecoveryBatchRequest, RecoveryBatchResponse, RecoveryItem, RecoveryOutcome,
};
use redstuff::wire::{recovery_symbol_limit, unproven_recovery_symbol_len};
use redstuff::{BlobId, Proofs, SliverType, SymbolBlock};

use crate::error::NodeError;
use crate::node::Node;
use crate::node::recovery_symbols::{Sources, blocks_towards, check_target, sources, symbols_towards};

/// Upper bound of the BCS length prefix of a sequence.
const SEQUENCE_PREFIX: usize = 5;

/// How a batch answers its symbols.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SymbolForm {
    /// A list of symbols, each with its proof.
    Proven,
    /// A list of symbols with empty proofs.
    Unproven,
    /// One [`redstuff::SymbolBlock`] per item, without proofs.
    Blocks,
}

impl SymbolForm {
    /// The form a request's query asks for (`blocks` matters only without proofs).
    pub fn asked(proofs: bool, blocks: bool) -> Self {
        match (proofs, blocks) {
            (true, _) => Self::Proven,
            (false, false) => Self::Unproven,
            (false, true) => Self::Blocks,
        }
    }
}

impl Node {
    /// Answers a batch: one item per asked item, in order, each with the symbols
    /// [`Node::recovery_symbols`] would send or the error it would answer. Items are admitted in
    /// order while the BCS answer stays within [`MAX_RECOVERY_BATCH_RESPONSE_BYTES`] (counting
    /// each symbol at its largest size); from the first one that does not fit, the rest are
    /// `over_budget`, except that an item too large for any answer is `too_large`. Each held
    /// sliver is expanded once, however many items target its blob.
    pub fn recovery_batch(&self, request: &RecoveryBatchRequest) -> Result<RecoveryBatchResponse, NodeError> {
        self.recovery_batch_within(request, MAX_RECOVERY_BATCH_RESPONSE_BYTES, SymbolForm::Proven)
    }

    /// [`Node::recovery_batch`] with an answer of at most `max_bytes` (and never more than
    /// [`MAX_RECOVERY_BATCH_RESPONSE_BYTES`]): the node's own, smaller bound on what one request
    /// may make it hold. Without proofs ([`SymbolForm::Unproven`], [`SymbolForm::Blocks`]) the
    /// symbols carry none, so no Merkle tree is built and the budget counts each symbol without
    /// one.
    pub(crate) fn recovery_batch_within(
        &self,
        request: &RecoveryBatchRequest,
        max_bytes: usize,
        form: SymbolForm,
    ) -> Result<RecoveryBatchResponse, NodeError> {
        let budget = max_bytes.min(MAX_RECOVERY_BATCH_RESPONSE_BYTES);
        let items = &request.items;
        if items.len() > MAX_RECOVERY_BATCH {
            return Err(NodeError::BatchTooLong(items.len()));
        }
        let plan = Plan::new(self, items, budget, form);
        let mut outcomes: Vec<Option<RecoveryOutcome>> = vec![None; items.len()];
        for group in plan.groups.iter().filter(|group| !group.members.is_empty()) {
            let targets: Vec<usize> =
                group.members.iter().map(|member| usize::from(items[*member].target_sliver)).collect();
            let most = |member: usize| items[member].max_symbols.map(usize::from);
            if form == SymbolForm::Blocks {
                let s = usize::from(group.sources.metadata.symbol_size());
                for (member, mut block) in
                    group.members.iter().zip(blocks_towards(self, &group.sources, &targets)?)
                {
                    if let Some(most) = most(*member) {
                        block.truncate(most, s);
                    }
                    outcomes[*member] = Some(RecoveryOutcome::Block(block));
                }
                continue;
            }
            let proofs = if form == SymbolForm::Proven { Proofs::Check } else { Proofs::Skip };
            for (member, mut answer) in
                group.members.iter().zip(symbols_towards(self, &group.sources, &targets, proofs)?)
            {
                if let Some(most) = most(*member) {
                    answer.truncate(most);
                }
                outcomes[*member] = Some(RecoveryOutcome::Symbols(answer));
            }
        }
        let items = items
            .iter()
            .zip(plan.planned)
            .zip(&mut outcomes)
            .map(|((item, planned), outcome)| RecoveryBatchItem {
                blob_id: item.blob_id,
                target_sliver: item.target_sliver,
                target_type: item.target_type,
                outcome: match planned {
                    Planned::Symbols => outcome.take().expect("admitted items are answered"),
                    Planned::Refused(body) => RecoveryOutcome::Error(body),
                },
            })
            .collect();
        let response = RecoveryBatchResponse { items };
        debug_assert!(response.encoded_len() <= budget);
        Ok(response)
    }
}

/// What a batch item will be answered with.
enum Planned {
    /// Its group's symbols.
    Symbols,
    /// An error body.
    Refused(ErrorBody),
}

/// The admitted items asking for symbols from the same held slivers.
struct Group {
    sources: Sources,
    /// Positions of the admitted items, in request order.
    members: Vec<usize>,
}

/// A batch's answer decided in request order within the byte budget, before any expansion.
struct Plan {
    planned: Vec<Planned>,
    groups: Vec<Group>,
}

impl Plan {
    fn new(node: &Node, items: &[RecoveryItem], budget: usize, form: SymbolForm) -> Self {
        let over_budget = NodeErrorCode::OverBudget
            .body("no room was left in this answer for the item; ask for it again in another batch");
        let too_large = NodeErrorCode::TooLarge
            .body("the item's symbols alone are over a batch answer's limit; ask for them with GET recovery symbols");
        // Room kept for refusing every item still to come.
        let refusal_len =
            items.first().map_or(0, |item| item_len(item, &over_budget).max(item_len(item, &too_large)));
        let mut plan = Self { planned: Vec::with_capacity(items.len()), groups: Vec::new() };
        let mut group_of: HashMap<(BlobId, SliverType), Result<usize, ErrorBody>> = HashMap::new();
        let mut used = SEQUENCE_PREFIX;
        let mut stopped = false;
        for (position, item) in items.iter().enumerate() {
            if stopped {
                plan.planned.push(Planned::Refused(over_budget.clone()));
                continue;
            }
            let group = check_target(node, item.target_sliver).map_err(|error| body(&error)).and_then(|()| {
                let key = (item.blob_id, item.target_type.orthogonal());
                group_of
                    .entry(key)
                    .or_insert_with(|| {
                        let sources = sources(node, &item.blob_id, key.1).map_err(|error| body(&error))?;
                        plan.groups.push(Group { sources, members: Vec::new() });
                        Ok(plan.groups.len() - 1)
                    })
                    .clone()
            });
            let (planned, len) = match group {
                Ok(group) => (Ok(group), symbols_item_bound(item, &plan.groups[group].sources, form)),
                Err(body) => {
                    let len = item_len(item, &body);
                    (Err(body), len)
                }
            };
            let reserved = (items.len() - position - 1) * refusal_len;
            if used + len + reserved <= budget {
                used += len;
                plan.planned.push(match planned {
                    Ok(group) => {
                        plan.groups[group].members.push(position);
                        Planned::Symbols
                    }
                    Err(body) => Planned::Refused(body),
                });
            } else {
                stopped = true;
                let alone = SEQUENCE_PREFIX + len > budget;
                plan.planned.push(Planned::Refused(if alone {
                    too_large.clone()
                } else {
                    over_budget.clone()
                }));
            }
        }
        plan
    }
}

/// The error body a batch item carries for `error`.
fn body(error: &NodeError) -> ErrorBody {
    error.code().body(error.to_string())
}

/// Exact BCS length of an item refused with `body`.
fn item_len(item: &RecoveryItem, body: &ErrorBody) -> usize {
    encoded_len(item, RecoveryOutcome::Error(body.clone()))
}

/// Upper bound of the BCS length of an item answered from `sources` in `form`: every symbol at
/// its largest size, with or without its proof, or the block's two sequences with their
/// prefixes.
fn symbols_item_bound(item: &RecoveryItem, sources: &Sources, form: SymbolForm) -> usize {
    let symbol_size = sources.metadata.symbol_size();
    let count = sources.slivers.len();
    let symbol = match form {
        SymbolForm::Proven => recovery_symbol_limit(sources.metadata.config(), symbol_size),
        SymbolForm::Unproven => unproven_recovery_symbol_len(symbol_size),
        SymbolForm::Blocks => {
            let empty = RecoveryOutcome::Block(SymbolBlock::default());
            return encoded_len(item, empty) + 2 * SEQUENCE_PREFIX + count * (2 + usize::from(symbol_size));
        }
    };
    encoded_len(item, RecoveryOutcome::Symbols(Vec::new())) + SEQUENCE_PREFIX + count * symbol
}

fn encoded_len(item: &RecoveryItem, outcome: RecoveryOutcome) -> usize {
    let answer = RecoveryBatchItem {
        blob_id: item.blob_id,
        target_sliver: item.target_sliver,
        target_type: item.target_type,
        outcome,
    };
    bcs::serialized_size(&answer).expect("batch items have no maps")
}
