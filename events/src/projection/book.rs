//! The invoices as the log says: one [`InvoiceEntry`] per live invoice in slots by
//! `created_index`, hash-table indexes by label and payment hash whose keys live in the entries,
//! ordered indexes by `pay_index` and `updated_index`, every payment hash ever used, and the
//! counters. Written only by the fold ([`super::Projections::apply`]) and the checkpoint loader.

use std::collections::{BTreeMap, HashSet, VecDeque};
use std::hash::BuildHasher;

use hashbrown::hash_table::Entry;
use hashbrown::{DefaultHashBuilder, HashTable};

use super::{ApplyError, Hold, InvoiceEntry, Payment, Rejection};
use crate::{
    Bolt12Created, CancelReason, Event, Hash32, HoldState, InvoiceCreated, InvoiceStatus, Label,
    PreimageSeal,
};

/// The entries by `created_index`: slot `i` holds invoice `last - len + 1 + i`, `None` once
/// deleted. Deleted invoices at the front are dropped, so a node that deletes its old invoices
/// does not keep a slot for each.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(super) struct Slots {
    pub(super) entries: VecDeque<Option<InvoiceEntry>>,
    /// The highest `created_index` handed out.
    pub(super) last: u64,
}

impl Slots {
    pub(super) fn first(&self) -> u64 {
        self.last + 1 - self.entries.len() as u64
    }

    pub(super) fn get(&self, created_index: u64) -> Option<&InvoiceEntry> {
        let i = usize::try_from(created_index.checked_sub(self.first())?).ok()?;
        self.entries.get(i)?.as_ref()
    }

    pub(super) fn get_mut(&mut self, created_index: u64) -> Option<&mut InvoiceEntry> {
        let i = usize::try_from(created_index.checked_sub(self.first())?).ok()?;
        self.entries.get_mut(i)?.as_mut()
    }

    pub(super) fn take(&mut self, created_index: u64) -> Option<InvoiceEntry> {
        let i = usize::try_from(created_index.checked_sub(self.first())?).ok()?;
        let e = self.entries.get_mut(i)?.take();
        while matches!(self.entries.front(), Some(None)) {
            self.entries.pop_front();
        }
        e
    }
}

/// A change to one invoice, as [`InvoiceBook::check_change`] checks it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Change {
    /// Paid: it must be unpaid and not a hold invoice.
    Pay,
    /// Expired: it must be unpaid, and not hold parts (`ACCEPTED`).
    Expire,
    /// A hold invoice accepts parts: it must be `OPEN` (and unpaid).
    Accept,
    /// A hold invoice is settled: it must be `ACCEPTED`, and the preimage revealed exactly when
    /// it was withheld.
    Settle {
        /// Whether the settle reveals a preimage.
        reveals: bool,
    },
    /// A hold invoice is canceled: it must be `OPEN` or `ACCEPTED`; by the block rule, only
    /// `ACCEPTED` with its earliest part within `blocks_before` of `height`.
    Cancel(CancelReason),
    /// Deleted: it must have this status.
    Delete(InvoiceStatus),
    /// Its description removed: once only.
    RemoveDescription,
    /// Cleaned by retention: it must have this status (paid or expired) and have had it for
    /// at least `age_s` at `now_s`.
    Clean {
        /// `Paid` or `Expired`.
        status: InvoiceStatus,
        /// The age rule, seconds.
        age_s: u64,
        /// Now, UNIX seconds.
        now_s: u64,
    },
}

/// All invoices, as the log says (see the module docs).
#[derive(Clone, Default)]
pub struct InvoiceBook {
    pub(super) slots: Slots,
    /// `created_index` of each live invoice, hashed by label (the label lives in the entry).
    pub(super) by_label: HashTable<u64>,
    /// `created_index` of each live invoice, hashed by payment hash.
    pub(super) by_hash: HashTable<u64>,
    /// Randomly seeded per book (labels are chosen by clients).
    pub(super) hasher: DefaultHashBuilder,
    /// Payment hashes of deleted invoices: never to be used again (live ones are in `by_hash`).
    pub(super) retired_hashes: HashSet<Hash32>,
    pub(super) by_pay_index: BTreeMap<u64, u64>,
    /// `updated_index` → `created_index`, for invoices updated at least once.
    pub(super) by_updated: BTreeMap<u64, u64>,
    pub(super) last_pay_index: u64,
    pub(super) last_updated_index: u64,
    pub(super) last_deleted_index: u64,
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
        let idx = e.created_index;
        self.slots.entries.push_back(Some(e));
        self.slots.last = idx;
        if let Err(err) = self.index(idx, seq) {
            self.slots.entries.pop_back();
            self.slots.last -= 1;
            return Err(err);
        }
        Ok(())
    }

    /// Indexes the entry in slot `idx` (none there: nothing to do), unless it is in the wrong
    /// slot or its label or payment hash is taken (then nothing is indexed).
    pub(super) fn index(&mut self, idx: u64, seq: u64) -> Result<(), ApplyError> {
        let (slots, hasher) = (&self.slots, &self.hasher);
        let Some(e) = slots.get(idx) else {
            return Ok(());
        };
        if e.created_index != idx {
            return Err(ApplyError::CreatedIndex {
                seq,
                got: e.created_index,
                want: idx,
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
        if e.updated_index != 0 {
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
        let want = self.slots.last + 1;
        if c.created_index != want {
            return Err(ApplyError::CreatedIndex {
                seq,
                got: c.created_index,
                want,
            });
        }
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
            updated_index: 0,
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

    /// Checks a change to invoice `idx` against it (without changing anything): the one rule
    /// that admission (on proposals) and the fold (on records) both apply.
    pub(super) fn check_change(&self, idx: u64, change: Change) -> Result<(), Rejection> {
        let rec = self.get(idx).ok_or(Rejection::UnknownInvoice(idx))?;
        let hold = rec.hold.as_deref();
        match change {
            Change::Pay | Change::Expire if rec.status != InvoiceStatus::Unpaid => {
                Err(Rejection::NotUnpaid(rec.status))
            }
            Change::Pay if hold.is_some() => Err(Rejection::IsHold(idx)),
            Change::Expire => match hold.map(|h| h.state) {
                Some(s @ HoldState::Accepted) => Err(Rejection::HoldState(s)),
                _ => Ok(()),
            },
            Change::Accept | Change::Settle { .. } | Change::Cancel(_) => {
                let h = hold.ok_or(Rejection::NotHold(idx))?;
                let allowed = match change {
                    Change::Accept => h.state == HoldState::Open,
                    Change::Settle { .. } => h.state == HoldState::Accepted,
                    Change::Cancel(CancelReason::Requested) => {
                        matches!(h.state, HoldState::Open | HoldState::Accepted)
                    }
                    _ => h.state == HoldState::Accepted,
                };
                if !allowed || rec.status != InvoiceStatus::Unpaid {
                    return Err(Rejection::HoldState(h.state));
                }
                match change {
                    Change::Settle { reveals } if reveals != h.withheld => {
                        Err(Rejection::Preimage(idx))
                    }
                    Change::Cancel(CancelReason::HtlcExpiry {
                        height,
                        blocks_before,
                    }) => match h.htlc_expiry() {
                        Some(expiry) if height.saturating_add(blocks_before) >= expiry => Ok(()),
                        _ => Err(Rejection::NotDue(idx)),
                    },
                    _ => Ok(()),
                }
            }
            Change::Delete(expected) if expected != rec.status => Err(Rejection::StatusChanged {
                expected,
                actual: rec.status,
            }),
            Change::RemoveDescription if rec.description_removed => {
                Err(Rejection::DescriptionAlreadyRemoved)
            }
            Change::Clean {
                status,
                age_s,
                now_s,
            } => {
                let since = rec.since(status).ok_or(Rejection::NotCleanable(idx))?;
                if age_s == 0 || since > now_s.saturating_sub(age_s) {
                    return Err(Rejection::NotCleanable(idx));
                }
                Ok(())
            }
            _ => Ok(()),
        }
    }

    /// Marks invoice `idx` updated with `updated_index` and changes it with `change`.
    fn update(&mut self, idx: u64, updated_index: u64, change: impl FnOnce(&mut InvoiceEntry)) {
        if let Some(r) = self.slots.get_mut(idx) {
            if r.updated_index != 0 {
                self.by_updated.remove(&r.updated_index);
            }
            r.updated_index = updated_index;
            change(r);
            self.by_updated.insert(updated_index, idx);
        }
    }

    /// Records a payment whose counters (`pay`, `updated`) were checked: the entry paid, then
    /// `also` (a hold invoice's state).
    fn record_payment(
        &mut self,
        p: &crate::InvoicePaid,
        pay: u64,
        updated: u64,
        parts: Vec<crate::HeldPart>,
        also: impl FnOnce(&mut InvoiceEntry),
    ) {
        self.last_pay_index = pay;
        self.last_updated_index = updated;
        self.by_pay_index.insert(p.pay_index, p.created_index);
        self.update(p.created_index, p.updated_index, |r| {
            r.status = InvoiceStatus::Paid;
            r.payment = Some(Payment {
                pay_index: p.pay_index,
                amount_received_msat: p.amount_received_msat,
                paid_at: p.paid_at,
                parts,
            });
            also(r);
        });
    }

    pub(super) fn apply_lifecycle(&mut self, seq: u64, event: &Event) -> Result<(), ApplyError> {
        let (idx, change) = match event {
            Event::InvoicePaid(p) | Event::HtlcsPaid(crate::HtlcsPaid { paid: p, .. }) => {
                (p.created_index, Change::Pay)
            }
            Event::InvoiceExpired(e) => (e.created_index, Change::Expire),
            Event::InvoiceDeleted(d) => (d.created_index, Change::Delete(d.status)),
            Event::DescriptionRemoved(d) => (d.created_index, Change::RemoveDescription),
            Event::InvoiceCleaned(c) => (
                c.created_index,
                Change::Clean {
                    status: c.status,
                    age_s: c.age_s,
                    now_s: c.now_s,
                },
            ),
            Event::HoldAccepted(a) => (a.created_index, Change::Accept),
            Event::HoldSettled(s) => (
                s.created_index,
                Change::Settle {
                    reveals: s.revealed.is_some(),
                },
            ),
            Event::HoldCanceled(c) => (c.created_index, Change::Cancel(c.reason)),
            _ => return Ok(()),
        };
        self.check_change(idx, change)
            .map_err(|rejection| ApplyError::Invoice { seq, rejection })?;
        let counter = |counter: &'static str, got: u64, last: u64| {
            if got == last + 1 {
                Ok(got)
            } else {
                Err(ApplyError::Counter {
                    seq,
                    counter,
                    got,
                    want: last + 1,
                })
            }
        };
        // Every check before any change: a record that fails leaves the book as it was.
        if let Some((p, parts)) = event.paid() {
            let pay = counter("pay_index", p.pay_index, self.last_pay_index)?;
            let updated = counter("updated_index", p.updated_index, self.last_updated_index)?;
            self.record_payment(p, pay, updated, parts.to_vec(), |_| {});
            return Ok(());
        }
        match event {
            Event::InvoiceExpired(e) => {
                self.last_updated_index =
                    counter("updated_index", e.updated_index, self.last_updated_index)?;
                self.update(e.created_index, e.updated_index, |r| {
                    r.status = InvoiceStatus::Expired;
                    // An open hold invoice that expires takes no payment any more.
                    if let Some(h) = r.hold.as_deref_mut() {
                        h.state = HoldState::Canceled;
                    }
                });
            }
            Event::HoldAccepted(a) => {
                self.last_updated_index =
                    counter("updated_index", a.updated_index, self.last_updated_index)?;
                self.update(a.created_index, a.updated_index, |r| {
                    if let Some(h) = r.hold.as_deref_mut() {
                        h.state = HoldState::Accepted;
                        h.parts.clone_from(&a.parts);
                    }
                });
            }
            Event::HoldSettled(s) => {
                let pay = counter("pay_index", s.pay_index, self.last_pay_index)?;
                let updated = counter("updated_index", s.updated_index, self.last_updated_index)?;
                let paid = crate::InvoicePaid {
                    created_index: s.created_index,
                    pay_index: s.pay_index,
                    updated_index: s.updated_index,
                    amount_received_msat: s.amount_received_msat,
                    paid_at: s.paid_at,
                };
                // A hold invoice keeps its parts in its Hold.
                self.record_payment(&paid, pay, updated, vec![], |r| {
                    if let Some(h) = r.hold.as_deref_mut() {
                        h.state = HoldState::Settled;
                        h.revealed.clone_from(&s.revealed);
                    }
                });
            }
            Event::HoldCanceled(c) => {
                self.last_updated_index =
                    counter("updated_index", c.updated_index, self.last_updated_index)?;
                self.update(c.created_index, c.updated_index, |r| {
                    r.status = InvoiceStatus::Expired;
                    if let Some(h) = r.hold.as_deref_mut() {
                        h.state = HoldState::Canceled;
                    }
                });
            }
            Event::DescriptionRemoved(d) => {
                self.last_updated_index =
                    counter("updated_index", d.updated_index, self.last_updated_index)?;
                self.update(d.created_index, d.updated_index, |r| {
                    r.description_removed = true
                });
            }
            Event::InvoiceDeleted(d) => {
                self.last_deleted_index =
                    counter("deleted_index", d.deleted_index, self.last_deleted_index)?;
                self.remove(d.created_index);
            }
            Event::InvoiceCleaned(c) => {
                self.last_deleted_index =
                    counter("deleted_index", c.deleted_index, self.last_deleted_index)?;
                self.remove(c.created_index);
                match c.status {
                    InvoiceStatus::Paid => self.cleaned.paid += 1,
                    _ => self.cleaned.expired += 1,
                }
            }
            _ => {}
        }
        Ok(())
    }

    /// Removes a deleted invoice from the slots and every index; its hash stays used.
    fn remove(&mut self, idx: u64) {
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
        if r.updated_index != 0 {
            self.by_updated.remove(&r.updated_index);
        }
    }

    /// The invoice with this `created_index`.
    pub fn get(&self, created_index: u64) -> Option<&InvoiceEntry> {
        self.slots.get(created_index)
    }

    /// The highest `pay_index` (0 before the first payment).
    pub fn last_pay_index(&self) -> u64 {
        self.last_pay_index
    }

    /// The highest `updated_index`.
    pub fn last_updated_index(&self) -> u64 {
        self.last_updated_index
    }

    /// How many invoices retention has cleaned.
    pub fn cleaned(&self) -> Cleaned {
        self.cleaned
    }

    /// The highest `deleted_index`.
    pub fn last_deleted_index(&self) -> u64 {
        self.last_deleted_index
    }

    /// The paid invoice with the smallest `pay_index` above `after`.
    pub fn next_paid_after(&self, after: u64) -> Option<&InvoiceEntry> {
        let (_, idx) = self.by_pay_index.range(after.checked_add(1)?..).next()?;
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
    pub fn by_hash(&self, hash: &Hash32) -> Option<&InvoiceEntry> {
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
    pub fn hash_used(&self, hash: &Hash32) -> bool {
        self.by_hash(hash).is_some() || self.retired_hashes.contains(hash)
    }

    /// Invoices with `created_index >= start`, ascending.
    pub fn from_created_index(&self, start: u64) -> impl Iterator<Item = &InvoiceEntry> {
        let skip = usize::try_from(start.saturating_sub(self.slots.first())).unwrap_or(usize::MAX);
        self.slots.entries.iter().skip(skip).flatten()
    }

    /// Invoices with `updated_index >= start`, by ascending `updated_index`.
    pub fn from_updated_index(&self, start: u64) -> impl Iterator<Item = &InvoiceEntry> {
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
    pub fn last_created_index(&self) -> u64 {
        self.slots.last
    }
}
