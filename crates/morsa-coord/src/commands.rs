//! The account commands. Each handler checks everything first and only then mutates, so a
//! refused command leaves the state as it was.

use morsa_core::{
    AccountId, BlsPublicKey, BlsSignature, Certificate, Epoch, NodeId, ObjectId, PersistenceType, Threshold,
};
use redstuff::{BlobId, ENCODING_TYPE_RS2, EncodingConfig};

use crate::apply::Effects;
use crate::checks::Signatures;
use crate::error::{BlobStateReason, CommandError, InvalidReason, StorageMismatchReason};
use crate::state::{BlobObject, Certification, Node, State, StorageResource, add, sub};
use morsa_core::protocol::Command;
use morsa_core::protocol::Event;

const MIB: u64 = 1 << 20;

/// Price of `size` bytes at `price` per started MiB, times `epochs`.
fn cost(price: u64, size: u64, epochs: u32) -> Result<u64, CommandError> {
    let units = u128::from(size.div_ceil(MIB));
    u128::from(price)
        .checked_mul(units)
        .and_then(|total| total.checked_mul(u128::from(epochs)))
        .and_then(|total| u64::try_from(total).ok())
        .ok_or(invalid("size", InvalidReason::PriceOverflows))
}

fn invalid(what: &'static str, reason: impl Into<InvalidReason>) -> CommandError {
    CommandError::InvalidArgument { what, reason: reason.into() }
}

impl State {
    /// Runs `command` for `sender`.
    pub(crate) fn execute(
        &mut self,
        sender: AccountId,
        command: &Command,
        signatures: Signatures<'_>,
        out: &mut Effects,
    ) -> Result<(), CommandError> {
        match command {
            Command::Transfer { to, amount } => self.transfer(sender, *to, *amount),
            Command::ReserveStorage { size, epochs } => self.reserve_storage(sender, *size, *epochs, out),
            Command::SplitStorageBySize { storage, size } => self.split_by_size(sender, storage, *size, out),
            Command::SplitStorageByEpoch { storage, epoch } => {
                self.split_by_epoch(sender, storage, *epoch, out)
            }
            Command::MergeStorage { first, second } => self.merge_storage(sender, first, second),
            Command::RegisterBlob { storage, blob_id, root_hash, size, encoding_type, deletable } => {
                let blob = NewBlob { blob_id, root_hash, size: *size, encoding_type: *encoding_type };
                self.register_blob(sender, storage, &blob, *deletable, out)
            }
            Command::CertifyBlob { object, certificate } => {
                self.certify_blob(sender, object, certificate, signatures, out)
            }
            Command::ExtendBlob { object, epochs } => self.extend_blob(sender, object, *epochs, out),
            Command::DeleteBlob { object } => self.delete_blob(sender, object, out),
            Command::InvalidateBlob { blob_id, certificate } => {
                self.invalidate_blob(blob_id, certificate, signatures, out)
            }
            Command::Stake { node, amount } => self.stake(sender, node, *amount),
            Command::Unstake { node, amount } => self.unstake(sender, node, *amount),
            Command::RegisterNode { public_key, proof_of_possession, address, capacity } => {
                self.register_node(sender, public_key, proof_of_possession, address, *capacity)
            }
            Command::DeregisterNode { node } => self.deregister_node(sender, node),
            Command::SetNodeZone { node, zone } => self.set_node_zone(sender, node, zone),
            Command::Withdraw { node } => self.withdraw(sender, node),
            Command::RetireNode { node } => self.retire_node(sender, node),
            Command::SetCommission { node, commission_ppm } => {
                self.set_commission(sender, node, *commission_ppm)
            }
            // Only a transaction's own command may be a batch (`apply_transaction`).
            Command::Batch { .. } => Err(invalid("commands", InvalidReason::NestedBatch)),
        }
    }

    fn charge_check(&self, sender: AccountId, needed: u64) -> Result<(), CommandError> {
        let balance = self.account(&sender).balance;
        if balance < needed {
            return Err(CommandError::InsufficientBalance { account: sender, balance, needed });
        }
        Ok(())
    }

    /// Takes `amount` from `sender`, which `charge_check` has shown it holds.
    fn debit(&mut self, sender: AccountId, amount: u64) -> Result<(), CommandError> {
        sub(&mut self.accounts.entry(sender).or_default().balance, amount, "balance")
    }

    /// Gives `amount` to `account`. Cannot fail for an amount taken from elsewhere in the
    /// supply (which fits in a `u64`); checked all the same.
    fn credit(&mut self, account: AccountId, amount: u64) -> Result<(), CommandError> {
        add(&mut self.accounts.entry(account).or_default().balance, amount, "balance")
    }

    fn transfer(&mut self, sender: AccountId, to: AccountId, amount: u64) -> Result<(), CommandError> {
        if amount == 0 {
            return Err(invalid("amount", InvalidReason::NotPositive));
        }
        self.charge_check(sender, amount)?;
        if sender != to {
            self.account(&to)
                .balance
                .checked_add(amount)
                .ok_or(CommandError::Overflow { what: "balance" })?;
        }
        self.debit(sender, amount)?;
        self.credit(to, amount)
    }

    /// Checks there is room for `size` more bytes in every epoch of `start..end`.
    fn capacity_check(&self, start: Epoch, end: Epoch, size: u64) -> Result<(), CommandError> {
        for epoch in (start.0..end.0).map(Epoch) {
            let available = self.available_in(epoch);
            if available < size {
                return Err(CommandError::CapacityExceeded { epoch, available, requested: size });
            }
        }
        Ok(())
    }

    /// Charges `sender` for `size` bytes in epochs `start..end` if it can pay and there is room,
    /// books them, and credits each epoch's pool with its price. Checks before it changes
    /// anything.
    fn buy(&mut self, sender: AccountId, start: Epoch, end: Epoch, size: u64) -> Result<(), CommandError> {
        let price = self.params.storage_price_per_mib_epoch;
        let per_epoch = cost(price, size, 1)?;
        let epochs = end.0.checked_sub(start.0).ok_or(CommandError::Overflow { what: "epochs" })?;
        let total = cost(price, size, epochs)?;
        self.charge_check(sender, total)?;
        self.capacity_check(start, end, size)?;
        // Every pool stays below the supply, which fits in a u64: the whole price moves from the
        // balance to the pools. The capacity check bounds `used` by the capacity.
        for epoch in (start.0..end.0).map(Epoch) {
            let pool = self.reward_pools.get(&epoch).copied().unwrap_or(0);
            pool.checked_add(per_epoch).ok_or(CommandError::Overflow { what: "reward pool" })?;
        }
        self.debit(sender, total)?;
        for epoch in (start.0..end.0).map(Epoch) {
            add(self.used.entry(epoch).or_default(), size, "used capacity")?;
            add(self.reward_pools.entry(epoch).or_default(), per_epoch, "reward pool")?;
        }
        Ok(())
    }

    fn check_epochs_ahead(&self, end: Epoch) -> Result<(), CommandError> {
        let ahead = end.0.saturating_sub(self.epoch.0);
        if ahead > self.params.max_epochs_ahead {
            return Err(invalid(
                "epochs",
                InvalidReason::TooFarAhead { max_epochs_ahead: self.params.max_epochs_ahead },
            ));
        }
        Ok(())
    }

    fn reserve_storage(
        &mut self,
        sender: AccountId,
        size: u64,
        epochs: u32,
        out: &mut Effects,
    ) -> Result<(), CommandError> {
        if size == 0 {
            return Err(invalid("size", InvalidReason::NotPositive));
        }
        if epochs == 0 {
            return Err(invalid("epochs", InvalidReason::NoEpochs));
        }
        let start = self.epoch;
        let end = Epoch(start.0.checked_add(epochs).ok_or(invalid("epochs", InvalidReason::TooManyEpochs))?);
        self.check_epochs_ahead(end)?;
        self.buy(sender, start, end, size)?;
        let id = self.new_object_id(out);
        self.storage.insert(id, StorageResource { owner: sender, start, end, size });
        Ok(())
    }

    fn owned_storage(&self, sender: AccountId, id: &ObjectId) -> Result<StorageResource, CommandError> {
        let resource = self.storage.get(id).ok_or(CommandError::UnknownObject(*id))?;
        if resource.owner != sender {
            return Err(CommandError::NotOwner { object: *id, owner: resource.owner });
        }
        Ok(resource.clone())
    }

    fn split_by_size(
        &mut self,
        sender: AccountId,
        id: &ObjectId,
        size: u64,
        out: &mut Effects,
    ) -> Result<(), CommandError> {
        let resource = self.owned_storage(sender, id)?;
        if size == 0 || size >= resource.size {
            return Err(invalid("size", InvalidReason::SplitSize { max: resource.size.saturating_sub(1) }));
        }
        let rest = resource.size.checked_sub(size).ok_or(CommandError::Overflow { what: "size" })?;
        let new = StorageResource { size, ..resource.clone() };
        self.storage.insert(*id, StorageResource { size: rest, ..resource });
        let new_id = self.new_object_id(out);
        self.storage.insert(new_id, new);
        Ok(())
    }

    fn split_by_epoch(
        &mut self,
        sender: AccountId,
        id: &ObjectId,
        epoch: Epoch,
        out: &mut Effects,
    ) -> Result<(), CommandError> {
        let resource = self.owned_storage(sender, id)?;
        if epoch <= resource.start || epoch >= resource.end {
            return Err(invalid(
                "epoch",
                InvalidReason::SplitEpoch { start: resource.start.0, end: resource.end.0 },
            ));
        }
        let later = StorageResource { start: epoch, ..resource.clone() };
        self.storage.insert(*id, StorageResource { end: epoch, ..resource });
        let new_id = self.new_object_id(out);
        self.storage.insert(new_id, later);
        Ok(())
    }

    fn merge_storage(
        &mut self,
        sender: AccountId,
        first: &ObjectId,
        second: &ObjectId,
    ) -> Result<(), CommandError> {
        if first == second {
            return Err(invalid("second", InvalidReason::MergeWithItself));
        }
        let a = self.owned_storage(sender, first)?;
        let b = self.owned_storage(sender, second)?;
        let merged = if (a.start, a.end) == (b.start, b.end) {
            let size = a.size.checked_add(b.size).ok_or(invalid("size", InvalidReason::SizeOverflows))?;
            StorageResource { size, ..a }
        } else if a.size == b.size && a.end == b.start {
            StorageResource { end: b.end, ..a }
        } else if a.size == b.size && b.end == a.start {
            StorageResource { start: b.start, ..a }
        } else {
            return Err(CommandError::StorageMismatch {
                storage: *second,
                reason: StorageMismatchReason::NotMergeable,
            });
        };
        self.storage.remove(second);
        self.storage.insert(*first, merged);
        Ok(())
    }

    fn register_blob(
        &mut self,
        sender: AccountId,
        storage: &ObjectId,
        blob: &NewBlob<'_>,
        deletable: bool,
        out: &mut Effects,
    ) -> Result<(), CommandError> {
        if blob.encoding_type != ENCODING_TYPE_RS2 {
            return Err(invalid("encoding_type", InvalidReason::EncodingType(blob.encoding_type)));
        }
        let config = EncodingConfig::new(self.params.n_shards).map_err(|error| invalid("n_shards", error))?;
        let encoded_size = config.encoded_size(blob.size).map_err(|error| invalid("size", error))?;
        let derived = BlobId::from_root(blob.size, blob.root_hash);
        if derived != *blob.blob_id {
            return Err(CommandError::BlobIdMismatch { claimed: *blob.blob_id, derived });
        }
        if self.invalid_blobs.contains_key(&derived) {
            return Err(CommandError::InvalidBlob(derived));
        }
        let resource = self.owned_storage(sender, storage)?;
        if !(resource.start <= self.epoch && self.epoch < resource.end) {
            return Err(CommandError::StorageMismatch {
                storage: *storage,
                reason: StorageMismatchReason::NotCurrent {
                    start: resource.start.0,
                    end: resource.end.0,
                    current: self.epoch,
                },
            });
        }
        if resource.size < encoded_size {
            return Err(CommandError::StorageMismatch {
                storage: *storage,
                reason: StorageMismatchReason::TooSmall { size: resource.size, encoded_size },
            });
        }
        let write_cost = cost(self.params.write_price_per_mib, encoded_size, 1)?;
        self.charge_check(sender, write_cost)?;
        let pool = self.reward_pools.get(&self.epoch).copied().unwrap_or(0);
        pool.checked_add(write_cost).ok_or(CommandError::Overflow { what: "reward pool" })?;
        self.debit(sender, write_cost)?;
        add(self.reward_pools.entry(self.epoch).or_default(), write_cost, "reward pool")?;
        self.storage.remove(storage);
        let object = self.new_object_id(out);
        let end_epoch = resource.end;
        self.blobs.insert(
            object,
            BlobObject {
                blob_id: derived,
                owner: sender,
                size: blob.size,
                encoded_size,
                deletable,
                registered_epoch: self.epoch,
                storage: resource,
                certified: None,
            },
        );
        self.blob_objects.entry(derived).or_default().insert(object);
        self.owned_objects.entry(sender).or_default().insert(object);
        out.events.push(Event::BlobRegistered {
            blob_id: derived,
            object,
            size: blob.size,
            encoded_size,
            end_epoch,
            deletable,
            epoch: self.epoch,
        });
        Ok(())
    }

    fn owned_blob(&self, sender: AccountId, object: &ObjectId) -> Result<&BlobObject, CommandError> {
        let blob = self.blobs.get(object).ok_or(CommandError::UnknownObject(*object))?;
        if blob.owner != sender {
            return Err(CommandError::NotOwner { object: *object, owner: blob.owner });
        }
        Ok(blob)
    }

    fn certify_blob(
        &mut self,
        sender: AccountId,
        object: &ObjectId,
        certificate: &Certificate,
        signatures: Signatures<'_>,
        out: &mut Effects,
    ) -> Result<(), CommandError> {
        let blob = self.owned_blob(sender, object)?;
        if blob.certified.is_some() {
            return Err(CommandError::BlobState {
                object: *object,
                reason: BlobStateReason::AlreadyCertified,
            });
        }
        if self.invalid_blobs.contains_key(&blob.blob_id) {
            return Err(CommandError::InvalidBlob(blob.blob_id));
        }
        let persistence = match blob.deletable {
            true => PersistenceType::Deletable { object_id: *object },
            false => PersistenceType::Permanent,
        };
        let message = morsa_core::storage_confirmation_message(self.epoch, &blob.blob_id, &persistence);
        signatures.certificate(&self.committee, certificate, &message, Threshold::Quorum)?;
        let (blob_id, end_epoch, deletable) = (blob.blob_id, blob.storage.end, blob.deletable);
        let epoch = self.epoch;
        if let Some(blob) = self.blobs.get_mut(object) {
            blob.certified = Some(Certification { epoch, certificate: certificate.clone() });
        }
        out.events.push(Event::BlobCertified { blob_id, object: *object, end_epoch, deletable, epoch });
        Ok(())
    }

    fn extend_blob(
        &mut self,
        sender: AccountId,
        object: &ObjectId,
        epochs: u32,
        out: &mut Effects,
    ) -> Result<(), CommandError> {
        let blob = self.blobs.get(object).ok_or(CommandError::UnknownObject(*object))?;
        if blob.certified.is_none() {
            return Err(CommandError::BlobState { object: *object, reason: BlobStateReason::NotCertified });
        }
        if epochs == 0 {
            return Err(invalid("epochs", InvalidReason::NoEpochs));
        }
        let start = blob.storage.end;
        let end = Epoch(start.0.checked_add(epochs).ok_or(invalid("epochs", InvalidReason::TooManyEpochs))?);
        self.check_epochs_ahead(end)?;
        let size = blob.storage.size;
        let blob_id = blob.blob_id;
        self.buy(sender, start, end, size)?;
        if let Some(blob) = self.blobs.get_mut(object) {
            blob.storage.end = end;
        }
        out.events.push(Event::BlobExtended { blob_id, object: *object, end_epoch: end });
        Ok(())
    }

    fn delete_blob(
        &mut self,
        sender: AccountId,
        object: &ObjectId,
        out: &mut Effects,
    ) -> Result<(), CommandError> {
        let blob = self.owned_blob(sender, object)?;
        if !blob.deletable {
            return Err(CommandError::BlobState { object: *object, reason: BlobStateReason::Permanent });
        }
        let blob_id = blob.blob_id;
        let returned = StorageResource { start: blob.storage.start.max(self.epoch), ..blob.storage.clone() };
        self.forget_blob_object(object, &blob_id);
        let id = self.new_object_id(out);
        self.storage.insert(id, returned);
        out.events.push(Event::BlobDeleted { blob_id, object: *object, epoch: self.epoch });
        Ok(())
    }

    pub(crate) fn invalidate_blob(
        &mut self,
        blob_id: &BlobId,
        certificate: &Certificate,
        signatures: Signatures<'_>,
        out: &mut Effects,
    ) -> Result<(), CommandError> {
        if self.invalid_blobs.contains_key(blob_id) {
            return Err(CommandError::InvalidBlob(*blob_id));
        }
        let message = morsa_core::invalid_blob_message(self.epoch, blob_id);
        signatures.certificate(&self.committee, certificate, &message, Threshold::Validity)?;
        self.invalid_blobs.insert(*blob_id, self.epoch);
        out.events.push(Event::InvalidBlobId { blob_id: *blob_id, epoch: self.epoch });
        Ok(())
    }

    fn stake(&mut self, sender: AccountId, node: &NodeId, amount: u64) -> Result<(), CommandError> {
        if amount == 0 {
            return Err(invalid("amount", InvalidReason::NotPositive));
        }
        let total = self.nodes.get(node).ok_or(CommandError::UnknownNode(*node))?.stake;
        if self.lifecycle.retired.contains(node) {
            return Err(CommandError::NodeRetired(*node));
        }
        self.charge_check(sender, amount)?;
        // A stake is part of its node's total, which is part of the supply: both fit.
        total.checked_add(amount).ok_or(CommandError::Overflow { what: "stake" })?;
        self.debit(sender, amount)?;
        add(self.stakes.entry((sender, *node)).or_default(), amount, "stake")?;
        if let Some(node) = self.nodes.get_mut(node) {
            add(&mut node.stake, amount, "stake")?;
        }
        Ok(())
    }

    fn unstake(&mut self, sender: AccountId, node: &NodeId, amount: u64) -> Result<(), CommandError> {
        let staked = self.stakes.get(&(sender, *node)).copied().unwrap_or(0);
        if amount == 0 || amount > staked {
            return Err(invalid("amount", InvalidReason::Unstake { staked }));
        }
        let node_total = self.nodes.get(node).map_or(0, |node| node.stake);
        node_total.checked_sub(amount).ok_or(CommandError::Overflow { what: "stake" })?;
        // Paid later, by `Withdraw` (see `crate::lifecycle`).
        self.queue_withdrawal(sender, node, amount)
    }
}

impl State {
    fn register_node(
        &mut self,
        sender: AccountId,
        public_key: &BlsPublicKey,
        proof_of_possession: &BlsSignature,
        address: &str,
        capacity: u64,
    ) -> Result<(), CommandError> {
        crate::address::check_node_address(address, self.params.allow_loopback_addresses)
            .map_err(|reason| invalid("address", reason))?;
        let max = self.params.max_node_capacity;
        if !(crate::genesis::MIN_NODE_CAPACITY..=max).contains(&capacity) {
            return Err(invalid(
                "capacity",
                InvalidReason::Capacity { min: crate::genesis::MIN_NODE_CAPACITY, max },
            ));
        }
        let id = NodeId::from_public_key(public_key);
        if self.nodes.contains_key(&id) {
            return Err(invalid("public_key", InvalidReason::AlreadyRegistered(id)));
        }
        let limit = self.params.max_inactive_nodes;
        if self.inactive_nodes() >= morsa_core::convert::saturating_usize(u64::from(limit)) {
            return Err(CommandError::TooManyInactiveNodes { limit });
        }
        let deposit = self.params.node_deposit;
        self.charge_check(sender, deposit)?;
        // The pairing check last: everything cheap has been refused by now.
        public_key
            .verify_proof_of_possession(proof_of_possession)
            .map_err(|_| invalid("proof_of_possession", InvalidReason::ProofOfPossession))?;
        self.debit(sender, deposit)?;
        let node = Node {
            public_key: *public_key,
            address: address.to_string(),
            capacity,
            operator: sender,
            stake: 0,
            deposit,
            zone: String::new(),
            commission_ppm: 0,
            next_commission_ppm: None,
        };
        self.nodes.insert(id, node);
        Ok(())
    }

    /// Removes an inactive node: every stake with it becomes a pending withdrawal of its
    /// staker (due once the current epoch change is done, see [`crate::lifecycle`]), the
    /// deposit returns to the operator.
    fn deregister_node(&mut self, sender: AccountId, id: &NodeId) -> Result<(), CommandError> {
        let node = self.nodes.get(id).ok_or(CommandError::UnknownNode(*id))?;
        if node.operator != sender {
            return Err(CommandError::NotOperator { node: *id, operator: node.operator });
        }
        if self.is_active(id) {
            return Err(CommandError::NodeActive(*id));
        }
        let deposit = node.deposit;
        // The deposit is part of the supply, which fits in a u64; checked before moving any.
        self.account(&sender)
            .balance
            .checked_add(deposit)
            .ok_or(CommandError::Overflow { what: "balance" })?;
        let stakes: Vec<(AccountId, u64)> = self
            .stakes
            .iter()
            .filter(|((_, node), _)| node == id)
            .map(|((staker, _), amount)| (*staker, *amount))
            .collect();
        // Each pending withdrawal stays below the supply: moving stake into it cannot fail.
        for (staker, amount) in stakes {
            self.queue_withdrawal(staker, id, amount)?;
        }
        self.nodes.remove(id);
        self.lifecycle.retired.remove(id);
        self.credit(sender, deposit)
    }
}

/// The blob fields of a `RegisterBlob` command.
struct NewBlob<'a> {
    blob_id: &'a BlobId,
    root_hash: &'a [u8; 32],
    size: u64,
    encoding_type: u8,
}
