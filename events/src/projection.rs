//! The projections: a pure fold of the log into the listings.
//!
//! [`Projections::apply`] takes the records in log order, checks their sequence and chain, and
//! hands each event to the [`InvoiceBook`] or the [`ChannelBook`]. The invoice book keeps, per
//! invoice, only an [`InvoiceEntry`]: what listings filter and sort on, what admission checks, and
//! the `seq` of the record that holds the rest (bolt11, description, secrets, hints). Whoever
//! shows an invoice joins the entry with that record ([`InvoiceEntry::join`]); so a million
//! invoices cost about 200 bytes each in memory, not the whole invoice. The book indexes the
//! entries by label, payment hash, `pay_index` and `updated_index`, keeps the set of every payment
//! hash ever used (a hash is never reused, SPEC §9) and the counters (created, pay, updated,
//! deleted).
//!
//! [`Admission`] is how the log writer decides, at commit time, whether a batch of new events
//! may be written: it stamps the counters and checks each request against the state plus the
//! requests admitted before it in the same batch, so two requests that race (a payment and an
//! expiry, a payment and a deletion) are decided in one place, in commit order. Label and
//! payment-hash uniqueness is decided earlier, by the claims of the actors' LabelRegistry; here
//! (and in the fold) it is only asserted, so that no log that breaks it is ever written or
//! replayed.

use std::collections::{BTreeMap, HashSet, VecDeque};
use std::hash::BuildHasher;

use hashbrown::hash_table::Entry;
use hashbrown::{DefaultHashBuilder, HashTable};
use serde::{Deserialize, Serialize};

use crate::channel::ChannelBook;
use crate::codec::{EventRecord, GENESIS_HASH};
use crate::{Event, Hash32, InvoiceCreated, Label};

/// How an invoice was paid.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Payment {
    /// 1-based payment counter.
    pub pay_index: u64,
    /// What arrived, msat.
    pub amount_received_msat: u64,
    /// When, UNIX seconds.
    pub paid_at: u64,
}

/// What the projection keeps of one invoice (see the module docs).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InvoiceEntry {
    /// The log record holding its [`InvoiceCreated`].
    pub seq: u64,
    /// Its `created_index`.
    pub created_index: u64,
    /// Its label.
    pub label: Label,
    /// Its payment hash.
    pub payment_hash: Hash32,
    /// When it expires, UNIX seconds.
    pub expires_at: u64,
    /// Unpaid, paid or expired.
    pub status: InvoiceStatus,
    /// Set once paid.
    pub payment: Option<Payment>,
    /// Whether `delinvoice … desconly` removed the description.
    pub description_removed: bool,
    /// 0 while never updated.
    pub updated_index: u64,
}

impl InvoiceEntry {
    /// The whole invoice, given the [`InvoiceCreated`] of record `self.seq`; `None` if that event
    /// is not this invoice's (a log that contradicts the projection).
    pub fn join(&self, created: InvoiceCreated) -> Option<InvoiceRecord> {
        (created.created_index == self.created_index && created.payment_hash == self.payment_hash).then(|| InvoiceRecord {
            created,
            status: self.status,
            payment: self.payment.clone(),
            description_removed: self.description_removed,
            updated_index: self.updated_index,
        })
    }
}

/// An invoice as shown: its entry joined with its creation event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InvoiceRecord {
    /// What was decided at creation.
    pub created: InvoiceCreated,
    /// Unpaid, paid or expired.
    pub status: InvoiceStatus,
    /// Set once paid.
    pub payment: Option<Payment>,
    /// Whether `delinvoice … desconly` removed the description.
    pub description_removed: bool,
    /// 0 while never updated.
    pub updated_index: u64,
}

impl InvoiceRecord {
    /// The stored description, unless removed.
    pub fn description(&self) -> Option<&str> {
        (!self.description_removed).then_some(self.created.description.as_str())
    }
}

/// The status of an invoice.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum InvoiceStatus {
    /// Waiting for payment.
    Unpaid,
    /// Paid.
    Paid,
    /// Past its expiry without payment.
    Expired,
}

impl InvoiceStatus {
    /// The name in RPC results.
    pub fn as_str(self) -> &'static str {
        match self {
            InvoiceStatus::Unpaid => "unpaid",
            InvoiceStatus::Paid => "paid",
            InvoiceStatus::Expired => "expired",
        }
    }
}

/// Why a record could not be applied: the log contradicts itself.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ApplyError {
    /// Sequence numbers must follow each other.
    #[error("record {got} follows record {after}")]
    OutOfOrder {
        /// The last applied sequence number.
        after: u64,
        /// The one offered.
        got: u64,
    },
    /// The chain link does not match the previous record.
    #[error("record {0} does not link to the previous record")]
    BrokenChain(u64),
    /// `created_index` must be the next one.
    #[error("record {seq} has created_index {got}, expected {want}")]
    CreatedIndex {
        /// The record.
        seq: u64,
        /// Its created_index.
        got: u64,
        /// The expected one.
        want: u64,
    },
    /// A label that exists was created again.
    #[error("record {seq} creates label '{label}' which exists")]
    DuplicateLabel {
        /// The record.
        seq: u64,
        /// The label.
        label: String,
    },
    /// A payment hash was used again.
    #[error("record {0} reuses a payment hash")]
    DuplicateHash(u64),
    /// A lifecycle event contradicts the invoice it names.
    #[error("record {seq}: {rejection}")]
    Invoice {
        /// The record.
        seq: u64,
        /// What is wrong.
        rejection: Rejection,
    },
    /// A counter stamped in an event is not the next one.
    #[error("record {seq} has {counter} {got}, expected {want}")]
    Counter {
        /// The record.
        seq: u64,
        /// Which counter.
        counter: &'static str,
        /// The stamped value.
        got: u64,
        /// The expected one.
        want: u64,
    },
    /// A channel event contradicts the known channels.
    #[error("record {seq}: {what} channel {key}")]
    Channel {
        /// The record.
        seq: u64,
        /// What was wrong ("opens known", "updates unknown", "closes unknown").
        what: &'static str,
        /// The channel.
        key: String,
    },
}

/// A projection in a form that can be stored: a checkpoint. Indexes are rebuilt on load.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Snapshot {
    /// Sequence number of the last record it includes.
    pub head_seq: u64,
    /// That record's chain hash.
    pub head_hash: Hash32,
    /// The invoices from `created_index` `counters[0] + 1 - invoices.len()` to `counters[0]`,
    /// `None` where deleted (deleted ones before the first live one are left out).
    pub invoices: Vec<Option<InvoiceEntry>>,
    /// Payment hashes of deleted invoices (still never to be reused).
    pub retired_hashes: Vec<Hash32>,
    /// Counters: created, pay, updated, deleted.
    pub counters: [u64; 4],
    /// Known channels.
    pub channels: Vec<crate::ChannelInfo>,
}

impl From<&Projections> for Snapshot {
    fn from(p: &Projections) -> Self {
        let b = &p.invoices;
        let mut retired: Vec<Hash32> = b.retired_hashes.iter().copied().collect();
        retired.sort_unstable();
        Snapshot {
            head_seq: p.head_seq,
            head_hash: p.head_hash,
            invoices: b.slots.entries.iter().cloned().collect(),
            retired_hashes: retired,
            counters: [b.slots.last, b.last_pay_index, b.last_updated_index, b.last_deleted_index],
            channels: p.channels.iter().cloned().collect(),
        }
    }
}

impl TryFrom<Snapshot> for Projections {
    type Error = ApplyError;

    /// Rebuilds the projections (and their indexes) from a checkpoint, refusing one whose
    /// invoices are out of order or collide (it is then ignored and the log replayed).
    fn try_from(s: Snapshot) -> Result<Self, ApplyError> {
        let last = s.counters[0];
        let mut b = InvoiceBook {
            last_pay_index: s.counters[1],
            last_updated_index: s.counters[2],
            last_deleted_index: s.counters[3],
            ..Default::default()
        };
        b.retired_hashes.extend(s.retired_hashes);
        let seq = s.head_seq;
        let len = s.invoices.len() as u64;
        if len > last || last == u64::MAX {
            return Err(ApplyError::CreatedIndex { seq, got: len, want: last });
        }
        // The decoded vector becomes the slots as it is (no copy of a million entries).
        b.slots = Slots { entries: VecDeque::from(s.invoices), last };
        b.reserve(b.slots.entries.len());
        let first = b.slots.first();
        for i in 0..len {
            b.index(first + i, seq)?;
        }
        let mut channels = ChannelBook::default();
        for c in &s.channels {
            channels.upsert(c);
        }
        Ok(Projections { invoices: b, channels, head_seq: s.head_seq, head_hash: s.head_hash })
    }
}

/// Everything the log says: invoices and channels, and the head of the chain.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Projections {
    /// The invoices.
    pub invoices: InvoiceBook,
    /// The channels.
    pub channels: ChannelBook,
    head_seq: u64,
    head_hash: Hash32,
}

impl Default for Projections {
    fn default() -> Self {
        Self::new()
    }
}

impl Projections {
    /// The state before the first record.
    pub fn new() -> Self {
        Projections {
            invoices: InvoiceBook::default(),
            channels: ChannelBook::default(),
            head_seq: 0,
            head_hash: GENESIS_HASH,
        }
    }

    /// Folds one record in (given `hash`, its chain hash).
    ///
    /// # Errors
    /// [`ApplyError`] when the record contradicts the state; the state is then unchanged.
    pub fn apply(&mut self, record: &EventRecord, hash: Hash32) -> Result<(), ApplyError> {
        if record.seq != self.head_seq + 1 {
            return Err(ApplyError::OutOfOrder { after: self.head_seq, got: record.seq });
        }
        if record.prev_hash != self.head_hash {
            return Err(ApplyError::BrokenChain(record.seq));
        }
        let seq = record.seq;
        let channel_err = |what, key: &crate::channel::ChannelKey| ApplyError::Channel { seq, what, key: key.to_string() };
        match &record.event {
            Event::InvoiceCreated(c) => self.invoices.apply_created(seq, c)?,
            Event::ChannelOpened(info) => {
                if self.channels.get(&info.key).is_some() {
                    return Err(channel_err("opens known", &info.key));
                }
                self.channels.upsert(info);
            }
            Event::ChannelUpdated(info) => {
                if self.channels.get(&info.key).is_none() {
                    return Err(channel_err("updates unknown", &info.key));
                }
                self.channels.upsert(info);
            }
            Event::ChannelClosed(key) => {
                if !self.channels.remove(key) {
                    return Err(channel_err("closes unknown", key));
                }
            }
            lifecycle => self.invoices.apply_lifecycle(seq, lifecycle)?,
        }
        self.head_seq = seq;
        self.head_hash = hash;
        Ok(())
    }

    /// Starts deciding which requests of a new batch may be committed.
    pub fn admission(&self) -> Admission<'_> {
        Admission {
            book: &self.invoices,
            created: self.invoices.slots.last,
            pay: self.invoices.last_pay_index,
            updated: self.invoices.last_updated_index,
            deleted: self.invoices.last_deleted_index,
            labels_added: HashSet::new(),
            labels_freed: HashSet::new(),
            hashes_added: HashSet::new(),
            touched: HashSet::new(),
        }
    }

    /// Makes room for `additional` more invoices, so that replaying a long log does not grow
    /// (and rehash) the indexes step by step.
    pub fn reserve_invoices(&mut self, additional: usize) {
        self.invoices.reserve(additional);
    }

    /// The sequence number and hash of the last record applied.
    pub fn head(&self) -> (u64, Hash32) {
        (self.head_seq, self.head_hash)
    }
}

/// Why the writer refused to commit a request. Nothing of that request was written.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Rejection {
    /// The label is taken.
    #[error("Duplicate label '{0}'")]
    DuplicateLabel(Label),
    /// The payment hash was used before.
    #[error("preimage already used")]
    PreimageUsed,
    /// No invoice with that `created_index` exists (any more).
    #[error("unknown invoice {0}")]
    UnknownInvoice(u64),
    /// A payment or expiry for an invoice that is no longer unpaid.
    #[error("invoice is {} not unpaid", .0.as_str())]
    NotUnpaid(InvoiceStatus),
    /// A deletion whose expected status is no longer the invoice's.
    #[error("Invoice status is {} not {}", .actual.as_str(), .expected.as_str())]
    StatusChanged {
        /// The status the deletion expected.
        expected: InvoiceStatus,
        /// The invoice's status now.
        actual: InvoiceStatus,
    },
    /// The description was removed already.
    #[error("Invoice description already removed")]
    DescriptionAlreadyRemoved,
    /// Two events of one request name the same invoice, label or hash.
    #[error("request names invoice {0} twice")]
    Conflict(String),
}

/// Admission of the requests of one batch, in commit order (see the module docs).
#[derive(Debug)]
pub struct Admission<'a> {
    book: &'a InvoiceBook,
    created: u64,
    pay: u64,
    updated: u64,
    deleted: u64,
    labels_added: HashSet<Label>,
    labels_freed: HashSet<Label>,
    hashes_added: HashSet<Hash32>,
    /// Invoices a lifecycle event of this batch has already changed.
    touched: HashSet<u64>,
}

impl Admission<'_> {
    /// Admits one request's events (all or none), stamping their counters.
    ///
    /// # Errors
    /// [`Rejection`] when an event conflicts with the state or with an admitted request; the
    /// events are then not stamped and nothing is recorded.
    pub fn admit(&mut self, events: &mut [Event]) -> Result<(), Rejection> {
        let mut local_labels = HashSet::new();
        let mut local_touched = HashSet::new();
        for e in events.iter() {
            match e {
                Event::InvoiceCreated(c) => {
                    if self.hashes_added.contains(&c.payment_hash) || self.book.hash_used(&c.payment_hash) {
                        return Err(Rejection::PreimageUsed);
                    }
                    let taken = self.labels_added.contains(&c.label)
                        || (self.book.label_exists(&c.label) && !self.labels_freed.contains(&c.label));
                    if taken || !local_labels.insert(c.label.clone()) {
                        return Err(Rejection::DuplicateLabel(c.label.clone()));
                    }
                }
                Event::InvoicePaid(_) | Event::InvoiceExpired(_) | Event::InvoiceDeleted(_) | Event::DescriptionRemoved(_) => {
                    let idx = lifecycle_target(e);
                    if self.touched.contains(&idx) {
                        // Changed earlier in this batch: its status is no longer what the book says.
                        return Err(Rejection::Conflict(idx.to_string()));
                    }
                    if !local_touched.insert(idx) {
                        return Err(Rejection::Conflict(idx.to_string()));
                    }
                    self.book.check_lifecycle(e)?;
                }
                Event::ChannelOpened(_) | Event::ChannelUpdated(_) | Event::ChannelClosed(_) => {}
            }
        }
        for e in events.iter_mut() {
            match e {
                Event::InvoiceCreated(c) => {
                    self.created += 1;
                    c.created_index = self.created;
                    self.labels_added.insert(c.label.clone());
                    self.hashes_added.insert(c.payment_hash);
                }
                Event::InvoicePaid(p) => {
                    self.pay += 1;
                    self.updated += 1;
                    p.pay_index = self.pay;
                    p.updated_index = self.updated;
                }
                Event::InvoiceExpired(x) => {
                    self.updated += 1;
                    x.updated_index = self.updated;
                }
                Event::DescriptionRemoved(d) => {
                    self.updated += 1;
                    d.updated_index = self.updated;
                }
                Event::InvoiceDeleted(d) => {
                    self.deleted += 1;
                    d.deleted_index = self.deleted;
                    if let Some(r) = self.book.get(d.created_index) {
                        self.labels_freed.insert(r.label.clone());
                    }
                }
                Event::ChannelOpened(_) | Event::ChannelUpdated(_) | Event::ChannelClosed(_) => {}
            }
        }
        self.touched.extend(local_touched);
        Ok(())
    }
}

fn lifecycle_target(e: &Event) -> u64 {
    match e {
        Event::InvoicePaid(p) => p.created_index,
        Event::InvoiceExpired(x) => x.created_index,
        Event::InvoiceDeleted(d) => d.created_index,
        Event::DescriptionRemoved(d) => d.created_index,
        _ => 0,
    }
}

/// The entries by `created_index`: slot `i` holds invoice `last - len + 1 + i`, `None` once
/// deleted. Deleted invoices at the front are dropped, so a node that deletes its old invoices
/// does not keep a slot for each.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct Slots {
    entries: VecDeque<Option<InvoiceEntry>>,
    /// The highest `created_index` handed out.
    last: u64,
}

impl Slots {
    fn first(&self) -> u64 {
        self.last + 1 - self.entries.len() as u64
    }

    fn get(&self, created_index: u64) -> Option<&InvoiceEntry> {
        let i = usize::try_from(created_index.checked_sub(self.first())?).ok()?;
        self.entries.get(i)?.as_ref()
    }

    fn get_mut(&mut self, created_index: u64) -> Option<&mut InvoiceEntry> {
        let i = usize::try_from(created_index.checked_sub(self.first())?).ok()?;
        self.entries.get_mut(i)?.as_mut()
    }

    fn take(&mut self, created_index: u64) -> Option<InvoiceEntry> {
        let i = usize::try_from(created_index.checked_sub(self.first())?).ok()?;
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
    slots: Slots,
    /// `created_index` of each live invoice, hashed by label (the label lives in the entry).
    by_label: HashTable<u64>,
    /// `created_index` of each live invoice, hashed by payment hash.
    by_hash: HashTable<u64>,
    /// Randomly seeded per book (labels are chosen by clients).
    hasher: DefaultHashBuilder,
    /// Payment hashes of deleted invoices: never to be used again (live ones are in `by_hash`).
    retired_hashes: HashSet<Hash32>,
    by_pay_index: BTreeMap<u64, u64>,
    /// `updated_index` → `created_index`, for invoices updated at least once.
    by_updated: BTreeMap<u64, u64>,
    last_pay_index: u64,
    last_updated_index: u64,
    last_deleted_index: u64,
}

impl PartialEq for InvoiceBook {
    /// Equal when they hold the same invoices and counters (the hash tables are derived).
    fn eq(&self, other: &Self) -> bool {
        self.slots == other.slots
            && self.retired_hashes == other.retired_hashes
            && self.by_pay_index == other.by_pay_index
            && self.by_updated == other.by_updated
            && (self.last_pay_index, self.last_updated_index, self.last_deleted_index)
                == (other.last_pay_index, other.last_updated_index, other.last_deleted_index)
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
    fn reserve(&mut self, additional: usize) {
        let (slots, hasher) = (&self.slots, &self.hasher);
        self.by_label.reserve(additional, |&i| slots.get(i).map_or(0, |x| hasher.hash_one(x.label.as_str())));
        self.by_hash.reserve(additional, |&i| slots.get(i).map_or(0, |x| hasher.hash_one(x.payment_hash)));
        self.slots.entries.reserve(additional);
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
    fn index(&mut self, idx: u64, seq: u64) -> Result<(), ApplyError> {
        let (slots, hasher) = (&self.slots, &self.hasher);
        let Some(e) = slots.get(idx) else { return Ok(()) };
        if e.created_index != idx {
            return Err(ApplyError::CreatedIndex { seq, got: e.created_index, want: idx });
        }
        if self.retired_hashes.contains(&e.payment_hash) {
            return Err(ApplyError::DuplicateHash(seq));
        }
        let by_label = self.by_label.entry(
            hasher.hash_one(e.label.as_str()),
            |&i| slots.get(i).is_some_and(|x| x.label == e.label),
            |&i| slots.get(i).map_or(0, |x| hasher.hash_one(x.label.as_str())),
        );
        let Entry::Vacant(label_slot) = by_label else {
            return Err(ApplyError::DuplicateLabel { seq, label: e.label.to_string() });
        };
        let by_hash = self.by_hash.entry(
            hasher.hash_one(e.payment_hash),
            |&i| slots.get(i).is_some_and(|x| x.payment_hash == e.payment_hash),
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

    pub(crate) fn apply_created(&mut self, seq: u64, c: &InvoiceCreated) -> Result<(), ApplyError> {
        let want = self.slots.last + 1;
        if c.created_index != want {
            return Err(ApplyError::CreatedIndex { seq, got: c.created_index, want });
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
        };
        self.insert(entry, seq)
    }

    /// Checks a lifecycle event against the invoice it names (without changing anything).
    fn check_lifecycle(&self, event: &Event) -> Result<(), Rejection> {
        let (idx, want_unpaid) = match event {
            Event::InvoicePaid(p) => (p.created_index, true),
            Event::InvoiceExpired(e) => (e.created_index, true),
            Event::InvoiceDeleted(d) => (d.created_index, false),
            Event::DescriptionRemoved(d) => (d.created_index, false),
            _ => return Ok(()),
        };
        let rec = self.get(idx).ok_or(Rejection::UnknownInvoice(idx))?;
        if want_unpaid && rec.status != InvoiceStatus::Unpaid {
            return Err(Rejection::NotUnpaid(rec.status));
        }
        match event {
            Event::InvoiceDeleted(d) if d.status != rec.status => {
                Err(Rejection::StatusChanged { expected: d.status, actual: rec.status })
            }
            Event::DescriptionRemoved(_) if rec.description_removed => Err(Rejection::DescriptionAlreadyRemoved),
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

    fn apply_lifecycle(&mut self, seq: u64, event: &Event) -> Result<(), ApplyError> {
        self.check_lifecycle(event).map_err(|rejection| ApplyError::Invoice { seq, rejection })?;
        let counter = |counter: &'static str, got: u64, last: u64| {
            if got == last + 1 {
                Ok(got)
            } else {
                Err(ApplyError::Counter { seq, counter, got, want: last + 1 })
            }
        };
        match event {
            Event::InvoicePaid(p) => {
                self.last_pay_index = counter("pay_index", p.pay_index, self.last_pay_index)?;
                self.last_updated_index = counter("updated_index", p.updated_index, self.last_updated_index)?;
                self.by_pay_index.insert(p.pay_index, p.created_index);
                self.update(p.created_index, p.updated_index, |r| {
                    r.status = InvoiceStatus::Paid;
                    r.payment = Some(Payment {
                        pay_index: p.pay_index,
                        amount_received_msat: p.amount_received_msat,
                        paid_at: p.paid_at,
                    });
                });
            }
            Event::InvoiceExpired(e) => {
                self.last_updated_index = counter("updated_index", e.updated_index, self.last_updated_index)?;
                self.update(e.created_index, e.updated_index, |r| r.status = InvoiceStatus::Expired);
            }
            Event::DescriptionRemoved(d) => {
                self.last_updated_index = counter("updated_index", d.updated_index, self.last_updated_index)?;
                self.update(d.created_index, d.updated_index, |r| r.description_removed = true);
            }
            Event::InvoiceDeleted(d) => {
                self.last_deleted_index = counter("deleted_index", d.deleted_index, self.last_deleted_index)?;
                self.remove(d.created_index);
            }
            _ => {}
        }
        Ok(())
    }

    /// Removes a deleted invoice from the slots and every index; its hash stays used.
    fn remove(&mut self, idx: u64) {
        let Some(r) = self.slots.get(idx) else { return };
        let (label_h, hash_h) = (self.hasher.hash_one(r.label.as_str()), self.hasher.hash_one(r.payment_hash));
        if let Ok(found) = self.by_label.find_entry(label_h, |&i| i == idx) {
            found.remove();
        }
        if let Ok(found) = self.by_hash.find_entry(hash_h, |&i| i == idx) {
            found.remove();
        }
        let Some(r) = self.slots.take(idx) else { return };
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
        let idx = self.by_label.find(h, |&i| self.slots.get(i).is_some_and(|e| e.label == *label))?;
        self.get(*idx)
    }

    /// The invoice with this payment hash.
    pub fn by_hash(&self, hash: &Hash32) -> Option<&InvoiceEntry> {
        let h = self.hasher.hash_one(hash);
        let idx = self.by_hash.find(h, |&i| self.slots.get(i).is_some_and(|e| e.payment_hash == *hash))?;
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
        self.by_updated.range(start..).filter_map(|(_, idx)| self.get(*idx))
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::{encode_record, record_hash};
    use crate::event::PreimageSeal;

    fn created(label: &str, hash: u8) -> InvoiceCreated {
        InvoiceCreated {
            created_index: 0,
            label: Label::new(label).unwrap(),
            bolt11: format!("lnbcrt{label}"),
            payment_hash: [hash; 32],
            payment_secret: [0; 32],
            preimage: PreimageSeal::Derived { nonce: [hash; 32] },
            amount_msat: None,
            description: String::new(),
            deschashonly: false,
            created_at: 100,
            expiry: 10,
            expires_at: 110,
            cltv: 10,
            fallbacks: vec![],
            route_hints: vec![],
            warnings: vec![],
        }
    }

    /// Given a book, when `events` are stamped and appended, then the records it would store.
    fn append(book: &mut Projections, mut events: Vec<Event>) -> Result<(), ApplyError> {
        // Stamp without admission checks, so the fold's own checks are what is tested.
        let mut created = book.invoices.last_created_index();
        for e in &mut events {
            if let Event::InvoiceCreated(c) = e {
                created += 1;
                c.created_index = created;
            }
        }
        for event in events {
            let (seq, prev_hash) = book.head();
            let rec = EventRecord { seq: seq + 1, time_ms: 0, prev_hash, event };
            let hash = record_hash(&encode_record(&rec).unwrap());
            book.apply(&rec, hash)?;
        }
        Ok(())
    }

    #[test]
    fn created_index_counts_in_commit_order() {
        let mut book = Projections::new();
        append(&mut book, vec![
            Event::InvoiceCreated(created("a", 1)),
            Event::InvoiceCreated(created("b", 2)),
        ]).unwrap();
        assert_eq!(book.invoices.by_label(&Label::new("b").unwrap()).unwrap().created_index, 2);
        assert_eq!(book.invoices.by_hash(&[1; 32]).unwrap().label.as_str(), "a");
        assert_eq!(book.invoices.from_created_index(2).count(), 1);
        assert_eq!(book.head().0, 2);
    }

    #[test]
    fn refuses_contradictions_and_stays_unchanged() {
        let mut book = Projections::new();
        append(&mut book, vec![Event::InvoiceCreated(created("a", 1))]).unwrap();
        let before = book.clone();
        assert!(matches!(
            append(&mut book, vec![Event::InvoiceCreated(created("a", 2))]),
            Err(ApplyError::DuplicateLabel { .. })
        ));
        assert!(matches!(
            append(&mut book, vec![Event::InvoiceCreated(created("b", 1))]),
            Err(ApplyError::DuplicateHash(2))
        ));
        assert_eq!(book, before);
        let rec = EventRecord { seq: 2, time_ms: 0, prev_hash: [9; 32], event: Event::InvoiceCreated(created("c", 3)) };
        assert_eq!(book.apply(&rec, [0; 32]), Err(ApplyError::BrokenChain(2)));
    }

    /// Admits and appends, as the writer does.
    fn commit(book: &mut Projections, mut events: Vec<Event>) -> Result<Vec<Event>, Rejection> {
        book.admission().admit(&mut events)?;
        for event in events.clone() {
            let (seq, prev_hash) = book.head();
            let rec = EventRecord { seq: seq + 1, time_ms: 0, prev_hash, event };
            book.apply(&rec, record_hash(&encode_record(&rec).unwrap())).unwrap();
        }
        Ok(events)
    }

    fn paid(idx: u64) -> Event {
        Event::InvoicePaid(crate::InvoicePaid { created_index: idx, pay_index: 0, updated_index: 0, amount_received_msat: 5, paid_at: 105 })
    }

    #[test]
    fn lifecycle_counters_and_states() {
        let mut book = Projections::new();
        commit(&mut book, vec![Event::InvoiceCreated(created("a", 1))]).unwrap();
        commit(&mut book, vec![Event::InvoiceCreated(created("b", 2))]).unwrap();
        commit(&mut book, vec![Event::InvoiceCreated(created("c", 3))]).unwrap();
        let e = commit(&mut book, vec![paid(2)]).unwrap();
        assert!(matches!(&e[0], Event::InvoicePaid(p) if p.pay_index == 1 && p.updated_index == 1));
        assert_eq!(commit(&mut book, vec![paid(2)]), Err(Rejection::NotUnpaid(InvoiceStatus::Paid)));
        commit(&mut book, vec![Event::InvoiceExpired(crate::InvoiceExpired { created_index: 1, updated_index: 0 })]).unwrap();
        assert_eq!(commit(&mut book, vec![paid(1)]), Err(Rejection::NotUnpaid(InvoiceStatus::Expired)));
        let rec = book.invoices.get(1).unwrap();
        assert_eq!((rec.status, rec.updated_index), (InvoiceStatus::Expired, 2));
        let del = |idx, status| Event::InvoiceDeleted(crate::InvoiceDeleted { created_index: idx, deleted_index: 0, status });
        assert_eq!(
            commit(&mut book, vec![del(1, InvoiceStatus::Unpaid)]),
            Err(Rejection::StatusChanged { expected: InvoiceStatus::Unpaid, actual: InvoiceStatus::Expired })
        );
        commit(&mut book, vec![del(1, InvoiceStatus::Expired)]).unwrap();
        assert!(book.invoices.by_label(&Label::new("a").unwrap()).is_none());
        assert!(book.invoices.hash_used(&[1; 32]), "a deleted invoice's hash stays used");
        // The label is free again and created_index keeps counting.
        let e = commit(&mut book, vec![Event::InvoiceCreated(created("a", 9))]).unwrap();
        assert!(matches!(&e[0], Event::InvoiceCreated(c) if c.created_index == 4));
        assert_eq!(book.invoices.next_paid_after(0).unwrap().label.as_str(), "b");
        assert!(book.invoices.next_paid_after(1).is_none());
    }

    #[test]
    fn snapshot_round_trips() {
        let mut book = Projections::new();
        commit(&mut book, vec![Event::InvoiceCreated(created("a", 1))]).unwrap();
        commit(&mut book, vec![Event::InvoiceCreated(created("b", 2))]).unwrap();
        commit(&mut book, vec![paid(2)]).unwrap();
        let del = Event::InvoiceDeleted(crate::InvoiceDeleted { created_index: 1, deleted_index: 0, status: InvoiceStatus::Unpaid });
        commit(&mut book, vec![del]).unwrap();
        let back = Projections::try_from(Snapshot::from(&book)).unwrap();
        assert_eq!(back, book);
        assert!(back.invoices.hash_used(&[1; 32]));
    }

    fn del(idx: u64, status: InvoiceStatus) -> Event {
        Event::InvoiceDeleted(crate::InvoiceDeleted { created_index: idx, deleted_index: 0, status })
    }

    #[test]
    fn indexes_follow_growth_deletion_and_checkpoints() {
        let mut book = Projections::new();
        // Enough invoices to make the hash tables grow (and rehash through the entries) a few times.
        for i in 0..300u16 {
            let mut c = created(&format!("l{i}"), 0);
            c.payment_hash = [0; 32];
            c.payment_hash[..2].copy_from_slice(&i.to_be_bytes());
            commit(&mut book, vec![Event::InvoiceCreated(c)]).unwrap();
        }
        // Delete the first 100 and a hole at 150; pay 200, then 180.
        for idx in (1..=100).chain([150]) {
            commit(&mut book, vec![del(idx, InvoiceStatus::Unpaid)]).unwrap();
        }
        commit(&mut book, vec![paid(200)]).unwrap();
        commit(&mut book, vec![paid(180)]).unwrap();
        let inv = &book.invoices;
        assert_eq!(inv.len(), 199);
        assert_eq!(inv.slots.entries.len(), 200, "deleted invoices at the front take no slot");
        assert!(inv.get(100).is_none() && inv.get(150).is_none() && inv.get(301).is_none());
        assert_eq!(inv.by_label(&Label::new("l250").unwrap()).unwrap().created_index, 251);
        assert!(inv.by_label(&Label::new("l0").unwrap()).is_none());
        let mut h = [0; 32];
        h[..2].copy_from_slice(&299u16.to_be_bytes());
        assert_eq!(inv.by_hash(&h).unwrap().created_index, 300);
        h[..2].copy_from_slice(&149u16.to_be_bytes());
        assert!(inv.by_hash(&h).is_none() && inv.hash_used(&h));
        assert_eq!(inv.from_created_index(0).next().unwrap().created_index, 101);
        assert_eq!(inv.from_created_index(149).map(|e| e.created_index).take(2).collect::<Vec<_>>(), [149, 151]);
        assert_eq!(inv.from_updated_index(0).map(|e| e.created_index).collect::<Vec<_>>(), [200, 180]);
        assert_eq!(inv.from_updated_index(2).map(|e| e.created_index).collect::<Vec<_>>(), [180]);
        let back = Projections::try_from(Snapshot::from(&book)).unwrap();
        assert_eq!(back, book);
        assert_eq!(back.invoices.by_label(&Label::new("l299").unwrap()).unwrap().created_index, 300);
        // The restored book goes on counting from the same place.
        let mut back = back;
        let e = commit(&mut back, vec![Event::InvoiceCreated(created("new", 9))]).unwrap();
        assert!(matches!(&e[0], Event::InvoiceCreated(c) if c.created_index == 301));
    }

    #[test]
    fn a_checkpoint_that_contradicts_itself_is_refused() {
        let mut book = Projections::new();
        commit(&mut book, vec![Event::InvoiceCreated(created("a", 1))]).unwrap();
        commit(&mut book, vec![Event::InvoiceCreated(created("b", 2))]).unwrap();
        let mut snap = Snapshot::from(&book);
        snap.invoices[1].as_mut().unwrap().label = Label::new("a").unwrap();
        assert!(matches!(Projections::try_from(snap), Err(ApplyError::DuplicateLabel { .. })));
        let mut snap = Snapshot::from(&book);
        snap.invoices.swap(0, 1);
        assert!(matches!(Projections::try_from(snap), Err(ApplyError::CreatedIndex { .. })));
        let mut snap = Snapshot::from(&book);
        snap.counters[0] = 1;
        assert!(Projections::try_from(snap).is_err(), "an invoice above the created counter");
    }

    #[test]
    fn join_checks_the_record_is_the_invoices() {
        let mut book = Projections::new();
        commit(&mut book, vec![Event::InvoiceCreated(created("a", 1))]).unwrap();
        let entry = book.invoices.get(1).unwrap();
        let mut c = created("a", 1);
        c.created_index = 1;
        assert_eq!(entry.join(c.clone()).unwrap().created, c);
        c.payment_hash = [2; 32];
        assert!(entry.join(c).is_none());
    }

    #[test]
    fn admission_decides_races_within_a_batch() {
        let mut book = Projections::new();
        commit(&mut book, vec![Event::InvoiceCreated(created("a", 1))]).unwrap();
        let mut adm = book.admission();
        let mut pay = vec![paid(1)];
        let mut expire = vec![Event::InvoiceExpired(crate::InvoiceExpired { created_index: 1, updated_index: 0 })];
        assert!(adm.admit(&mut pay).is_ok());
        assert!(matches!(adm.admit(&mut expire), Err(Rejection::Conflict(_))));
        let mut same_label = vec![Event::InvoiceCreated(created("x", 7))];
        let mut same_label2 = vec![Event::InvoiceCreated(created("x", 8))];
        assert!(adm.admit(&mut same_label).is_ok());
        assert_eq!(adm.admit(&mut same_label2), Err(Rejection::DuplicateLabel(Label::new("x").unwrap())));
        let mut same_hash = vec![Event::InvoiceCreated(created("y", 7))];
        assert_eq!(adm.admit(&mut same_hash), Err(Rejection::PreimageUsed));
    }

    proptest::proptest! {
        /// Whatever a checkpoint holds, loading it does not panic, and what loads checkpoints
        /// to itself.
        #[test]
        fn any_checkpoint_loads_or_is_refused(
            last in proptest::prop_oneof![0u64..12, proptest::prelude::Just(u64::MAX)],
            slots in proptest::collection::vec(proptest::option::of((0u64..14, 0u8..4, 0u8..4, 0u64..3, proptest::prelude::any::<bool>())), 0..10),
            retired in proptest::collection::vec(0u8..4, 0..3),
        ) {
            let invoices = slots
                .into_iter()
                .map(|slot| {
                    slot.map(|(idx, label, hash, updated, paid)| InvoiceEntry {
                        seq: idx,
                        created_index: idx,
                        label: Label::new(format!("l{label}")).unwrap(),
                        payment_hash: [hash; 32],
                        expires_at: 1,
                        status: if paid { InvoiceStatus::Paid } else { InvoiceStatus::Unpaid },
                        payment: paid.then_some(Payment { pay_index: idx, amount_received_msat: 1, paid_at: 1 }),
                        description_removed: false,
                        updated_index: updated,
                    })
                })
                .collect();
            let snap = Snapshot {
                head_seq: 1,
                head_hash: [0; 32],
                invoices,
                retired_hashes: retired.into_iter().map(|h| [h; 32]).collect(),
                counters: [last, 3, 3, 0],
                channels: vec![],
            };
            if let Ok(p) = Projections::try_from(snap) {
                proptest::prop_assert_eq!(Projections::try_from(Snapshot::from(&p)).unwrap(), p);
            }
        }
    }
}
