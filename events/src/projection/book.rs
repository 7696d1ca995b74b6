//! The invoices as the log says: one [`InvoiceEntry`] per live invoice in slots by
//! `created_index`, hash-table indexes by label and payment hash whose keys live in the entries,
//! ordered indexes by `pay_index` and `updated_index`, every payment hash ever used, and the
//! counters. Written only by the fold ([`super::Projections::apply`]) and the checkpoint loader.

use std::collections::{BTreeMap, HashSet, VecDeque};
use std::hash::BuildHasher;

use hashbrown::hash_table::Entry;
use hashbrown::{DefaultHashBuilder, HashTable};

use super::{ApplyError, Hold, InvoiceEntry, Rejection};
use crate::{
    Bolt12Created, CreatedIndex, DeletedIndex, HoldState, InvoiceCreated, InvoiceStatus, Label,
    PayIndex, PaymentHash, PreimageSeal, UpdatedIndex,
};

/// The entries by `created_index`: slot `i` holds invoice `last - len + 1 + i`, `None` once
/// deleted. Deleted invoices at the front are dropped, so a node that deletes its old invoices
/// does not keep a slot for each.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(super) struct Slots {
    pub(super) entries: VecDeque<Option<InvoiceEntry>>,
    /// The highest `created_index` handed out.
    pub(super) last: CreatedIndex,
}

impl Slots {
    /// The `created_index` of the first slot.
    pub(super) fn first(&self) -> CreatedIndex {
        CreatedIndex(self.last.0 + 1 - self.entries.len() as u64)
    }

    fn slot(&self, created_index: CreatedIndex) -> Option<usize> {
        usize::try_from(created_index.0.checked_sub(self.first().0)?).ok()
    }

    pub(super) fn get(&self, created_index: CreatedIndex) -> Option<&InvoiceEntry> {
        self.entries.get(self.slot(created_index)?)?.as_ref()
    }

    pub(super) fn get_mut(&mut self, created_index: CreatedIndex) -> Option<&mut InvoiceEntry> {
        let i = self.slot(created_index)?;
        self.entries.get_mut(i)?.as_mut()
    }

    pub(super) fn take(&mut self, created_index: CreatedIndex) -> Option<InvoiceEntry> {
        let i = self.slot(created_index)?;
        let e = self.entries.get_mut(i)?.take();
        while matches!(self.entries.front(), Some(None)) {
            self.entries.pop_front();
        }
        e
    }
}

/// All invoices, as the log says (see the module docs).
#[derive(Clone, Default)]
pub struct InvoiceBook {
    pub(super) slots: Slots,
    /// `created_index` of each live invoice, hashed by label (the label lives in the entry).
    pub(super) by_label: HashTable<CreatedIndex>,
    /// `created_index` of each live invoice, hashed by payment hash.
    pub(super) by_hash: HashTable<CreatedIndex>,
    /// Randomly seeded per book (labels are chosen by clients).
    pub(super) hasher: DefaultHashBuilder,
    /// Payment hashes of deleted invoices: never to be used again (live ones are in `by_hash`).
    pub(super) retired_hashes: HashSet<PaymentHash>,
    pub(super) by_pay_index: BTreeMap<PayIndex, CreatedIndex>,
    /// `updated_index` → `created_index`, for invoices updated at least once.
    pub(super) by_updated: BTreeMap<UpdatedIndex, CreatedIndex>,
    pub(super) last_pay_index: PayIndex,
    pub(super) last_updated_index: UpdatedIndex,
    pub(super) last_deleted_index: DeletedIndex,
    /// Invoices cleaned by retention so far, paid and expired (Core Lightning's `autoclean`
    /// totals, here derived from the log).
    pub(super) cleaned: Cleaned,
}

/// How many invoices retention has cleaned, by status.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Cleaned {
    /// Paid ones.
    pub paid: u64,
    /// Expired ones.
    pub expired: u64,
}

impl PartialEq for InvoiceBook {
    /// Equal when they hold the same invoices and counters (the hash tables are derived).
    fn eq(&self, other: &Self) -> bool {
        self.slots == other.slots
            && self.retired_hashes == other.retired_hashes
            && self.by_pay_index == other.by_pay_index
            && self.by_updated == other.by_updated
            && (
                self.last_pay_index,
                self.last_updated_index,
                self.last_deleted_index,
            ) == (
                other.last_pay_index,
                other.last_updated_index,
                other.last_deleted_index,
            )
            && self.cleaned == other.cleaned
    }
}

impl Eq for InvoiceBook {}

impl core::fmt::Debug for InvoiceBook {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("InvoiceBook")
            .field("invoices", &self.len())
            .field("last_created_index", &self.slots.last)
            .field("last_pay_index", &self.last_pay_index)
            .field("last_updated_index", &self.last_updated_index)
            .field("last_deleted_index", &self.last_deleted_index)
            .finish_non_exhaustive()
    }
}

impl InvoiceBook {
    pub(super) fn reserve(&mut self, additional: usize) {
        let (slots, hasher) = (&self.slots, &self.hasher);
        self.by_label.reserve(additional, |&i| {
            slots
                .get(i)
                .map_or(0, |x| hasher.hash_one(x.label.as_str()))
        });
        self.by_hash.reserve(additional, |&i| {
            slots.get(i).map_or(0, |x| hasher.hash_one(x.payment_hash))
        });
        self.slots.entries.reserve(additional);
    }

    /// Gives back what a replay reserved beyond what it holds (it reserves a slot per record, and
    /// a log with many cleaned or deleted invoices holds far fewer).
    pub(super) fn shrink_to_fit(&mut self) {
        let (slots, hasher) = (&self.slots, &self.hasher);
        self.by_label.shrink_to_fit(|&i| {
            slots
                .get(i)
                .map_or(0, |x| hasher.hash_one(x.label.as_str()))
        });
        self.by_hash
            .shrink_to_fit(|&i| slots.get(i).map_or(0, |x| hasher.hash_one(x.payment_hash)));
        self.slots.entries.shrink_to_fit();
        self.retired_hashes.shrink_to_fit();
    }

    /// Appends `e` (the next `created_index`) and indexes it, unless its label or payment hash
    /// is taken by a live invoice (then nothing changes). `seq` names the record in the error.
    fn insert(&mut self, e: InvoiceEntry, seq: u64) -> Result<(), ApplyError> {
        let (idx, before) = (e.created_index, self.slots.last);
        self.slots.entries.push_back(Some(e));
        self.slots.last = idx;
        if let Err(err) = self.index(idx, seq) {
            self.slots.entries.pop_back();
            self.slots.last = before;
            return Err(err);
        }
        Ok(())
    }

    /// Indexes the entry in slot `idx` (none there: nothing to do), unless it is in the wrong
    /// slot or its label or payment hash is taken (then nothing is indexed).
    pub(super) fn index(&mut self, idx: CreatedIndex, seq: u64) -> Result<(), ApplyError> {
        let (slots, hasher) = (&self.slots, &self.hasher);
        let Some(e) = slots.get(idx) else {
            return Ok(());
        };
        if e.created_index != idx {
            return Err(ApplyError::CreatedIndex {
                seq,
                got: e.created_index.get(),
                want: idx.get(),
            });
        }
        if self.retired_hashes.contains(&e.payment_hash) {
            return Err(ApplyError::DuplicateHash(seq));
        }
        let by_label = self.by_label.entry(
            hasher.hash_one(e.label.as_str()),
            |&i| slots.get(i).is_some_and(|x| x.label == e.label),
            |&i| {
                slots
                    .get(i)
                    .map_or(0, |x| hasher.hash_one(x.label.as_str()))
            },
        );
        let Entry::Vacant(label_slot) = by_label else {
            return Err(ApplyError::DuplicateLabel {
                seq,
                label: e.label.to_string(),
            });
        };
        let by_hash = self.by_hash.entry(
            hasher.hash_one(e.payment_hash),
            |&i| {
                slots
                    .get(i)
                    .is_some_and(|x| x.payment_hash == e.payment_hash)
            },
            |&i| slots.get(i).map_or(0, |x| hasher.hash_one(x.payment_hash)),
        );
        let Entry::Vacant(hash_slot) = by_hash else {
            return Err(ApplyError::DuplicateHash(seq));
        };
        label_slot.insert(idx);
        hash_slot.insert(idx);
        if let Some(p) = &e.payment {
            self.by_pay_index.insert(p.pay_index, idx);
        }
        if e.updated_index != UpdatedIndex::default() {
            self.by_updated.insert(e.updated_index, idx);
        }
        Ok(())
    }

    pub(crate) fn apply_created(
        &mut self,
        seq: u64,
        c: &InvoiceCreated,
        hold: bool,
    ) -> Result<(), ApplyError> {
        let want = self.slots.last.next();
        if c.created_index != want {
            return Err(ApplyError::CreatedIndex {
                seq,
                got: c.created_index.get(),
                want: want.get(),
            });
        }
        let c = &c.body;
        let withheld = c.preimage == PreimageSeal::Withheld;
        if withheld && !hold {
            return Err(ApplyError::Invoice {
                seq,
                rejection: Rejection::NotHold(want),
            });
        }
        let entry = InvoiceEntry {
            seq,
            created_index: want,
            label: c.label.clone(),
            payment_hash: c.payment_hash,
            expires_at: c.expires_at,
            status: InvoiceStatus::Unpaid,
            payment: None,
            description_removed: false,
            updated_index: UpdatedIndex::default(),
            hold: hold.then(|| {
                Box::new(Hold {
                    state: HoldState::Open,
                    withheld,
                    parts: Vec::new(),
                    revealed: None,
                })
            }),
            local_offer_id: None,
        };
        self.insert(entry, seq)
    }

    /// Folds a BOLT12 invoice in: an invoice like any other, that remembers the node's offer it
    /// answers (for `listinvoices offer_id`).
    pub(crate) fn apply_bolt12(&mut self, seq: u64, b: &Bolt12Created) -> Result<(), ApplyError> {
        self.apply_created(seq, &b.invoice, false)?;
        if let (Some(offer), Some(entry)) = (
            b.local_offer_id,
            self.slots.get_mut(b.invoice.created_index),
        ) {
            entry.local_offer_id = Some(Box::new(offer));
        }
        Ok(())
    }

    /// Removes a deleted invoice from the slots and every index; its hash stays used.
    pub(super) fn remove(&mut self, idx: CreatedIndex) {
        let Some(r) = self.slots.get(idx) else { return };
        let (label_h, hash_h) = (
            self.hasher.hash_one(r.label.as_str()),
            self.hasher.hash_one(r.payment_hash),
        );
        if let Ok(found) = self.by_label.find_entry(label_h, |&i| i == idx) {
            found.remove();
        }
        if let Ok(found) = self.by_hash.find_entry(hash_h, |&i| i == idx) {
            found.remove();
        }
        let Some(r) = self.slots.take(idx) else {
            return;
        };
        self.retired_hashes.insert(r.payment_hash);
        if let Some(p) = &r.payment {
            self.by_pay_index.remove(&p.pay_index);
        }
        if r.updated_index != UpdatedIndex::default() {
            self.by_updated.remove(&r.updated_index);
        }
    }

    /// The invoice with this `created_index`.
    pub fn get(&self, created_index: CreatedIndex) -> Option<&InvoiceEntry> {
        self.slots.get(created_index)
    }

    /// The highest `pay_index` (0 before the first payment).
    pub fn last_pay_index(&self) -> PayIndex {
        self.last_pay_index
    }

    /// The highest `updated_index`.
    pub fn last_updated_index(&self) -> UpdatedIndex {
        self.last_updated_index
    }

    /// How many invoices retention has cleaned.
    pub fn cleaned(&self) -> Cleaned {
        self.cleaned
    }

    /// The highest `deleted_index`.
    pub fn last_deleted_index(&self) -> DeletedIndex {
        self.last_deleted_index
    }

    /// The paid invoice with the smallest `pay_index` above `after`.
    pub fn next_paid_after(&self, after: PayIndex) -> Option<&InvoiceEntry> {
        let (_, idx) = self.by_pay_index.range(after.next()..).next()?;
        self.get(*idx)
    }

    /// The invoice with this label.
    pub fn by_label(&self, label: &Label) -> Option<&InvoiceEntry> {
        let h = self.hasher.hash_one(label.as_str());
        let idx = self
            .by_label
            .find(h, |&i| self.slots.get(i).is_some_and(|e| e.label == *label))?;
        self.get(*idx)
    }

    /// The invoice with this payment hash.
    pub fn by_hash(&self, hash: &PaymentHash) -> Option<&InvoiceEntry> {
        let h = self.hasher.hash_one(hash);
        let idx = self.by_hash.find(h, |&i| {
            self.slots.get(i).is_some_and(|e| e.payment_hash == *hash)
        })?;
        self.get(*idx)
    }

    /// Whether a label is taken by an existing invoice.
    pub fn label_exists(&self, label: &Label) -> bool {
        self.by_label(label).is_some()
    }

    /// Whether a payment hash was ever used, even by a deleted invoice.
    pub fn hash_used(&self, hash: &PaymentHash) -> bool {
        self.by_hash(hash).is_some() || self.retired_hashes.contains(hash)
    }

    /// Invoices with `created_index >= start`, ascending.
    pub fn from_created_index(&self, start: CreatedIndex) -> impl Iterator<Item = &InvoiceEntry> {
        let skip =
            usize::try_from(start.0.saturating_sub(self.slots.first().0)).unwrap_or(usize::MAX);
        self.slots.entries.iter().skip(skip).flatten()
    }

    /// Invoices with `updated_index >= start`, by ascending `updated_index`.
    pub fn from_updated_index(&self, start: UpdatedIndex) -> impl Iterator<Item = &InvoiceEntry> {
        self.by_updated
            .range(start..)
            .filter_map(|(_, idx)| self.get(*idx))
    }

    /// How many invoices exist.
    pub fn len(&self) -> usize {
        self.by_label.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.by_label.is_empty()
    }

    /// The highest `created_index` handed out (0 before the first invoice).
    pub fn last_created_index(&self) -> CreatedIndex {
        self.slots.last
    }
}
