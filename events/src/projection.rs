//! The projections: a pure fold of the log into the listings.
//!
//! [`Projections::apply`] takes the records in log order, checks their sequence and chain, and
//! hands each event to the [`InvoiceBook`] or the [`ChannelBook`]. The invoice book keeps the invoices by
//! `created_index`, with indexes by label and payment hash, the set of every payment hash ever
//! used (a hash is never reused, SPEC §9) and the next `created_index`. It reads no clock: the
//! status an invoice shows at a given time is asked with [`InvoiceRecord::status_at`].

use std::collections::{BTreeMap, HashMap, HashSet};

use crate::channel::ChannelBook;
use crate::codec::{EventRecord, GENESIS_HASH};
use crate::{Event, Hash32, InvoiceCreated, Label};

/// An invoice as listed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InvoiceRecord {
    /// What was decided at creation.
    pub created: InvoiceCreated,
    /// 0 while never updated.
    pub updated_index: u64,
}

/// The status of an invoice.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
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

impl InvoiceRecord {
    /// The status as seen at UNIX time `now`.
    pub fn status_at(&self, now: u64) -> InvoiceStatus {
        if now >= self.created.expires_at {
            InvoiceStatus::Expired
        } else {
            InvoiceStatus::Unpaid
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
        }
        self.head_seq = seq;
        self.head_hash = hash;
        Ok(())
    }

    /// Gives each `InvoiceCreated` of a batch about to be committed its `created_index`, in order.
    pub fn stamp(&self, events: &mut [&mut Event]) {
        let mut next = self.invoices.last_created_index;
        for event in events {
            if let Event::InvoiceCreated(c) = event {
                next += 1;
                c.created_index = next;
            }
        }
    }

    /// The sequence number and hash of the last record applied.
    pub fn head(&self) -> (u64, Hash32) {
        (self.head_seq, self.head_hash)
    }
}

/// All invoices, as the log says.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct InvoiceBook {
    invoices: BTreeMap<u64, InvoiceRecord>,
    by_label: HashMap<Label, u64>,
    by_hash: HashMap<Hash32, u64>,
    used_hashes: HashSet<Hash32>,
    last_created_index: u64,
}

impl InvoiceBook {
    pub(crate) fn apply_created(&mut self, seq: u64, c: &InvoiceCreated) -> Result<(), ApplyError> {
        let want = self.last_created_index + 1;
        if c.created_index != want {
            return Err(ApplyError::CreatedIndex { seq, got: c.created_index, want });
        }
        if self.by_label.contains_key(&c.label) {
            return Err(ApplyError::DuplicateLabel { seq, label: c.label.to_string() });
        }
        if self.used_hashes.contains(&c.payment_hash) {
            return Err(ApplyError::DuplicateHash(seq));
        }
        self.last_created_index = want;
        self.by_label.insert(c.label.clone(), want);
        self.by_hash.insert(c.payment_hash, want);
        self.used_hashes.insert(c.payment_hash);
        self.invoices.insert(want, InvoiceRecord { created: c.clone(), updated_index: 0 });
        Ok(())
    }

    /// The invoice with this label.
    pub fn by_label(&self, label: &Label) -> Option<&InvoiceRecord> {
        self.by_label.get(label).and_then(|i| self.invoices.get(i))
    }

    /// The invoice with this payment hash.
    pub fn by_hash(&self, hash: &Hash32) -> Option<&InvoiceRecord> {
        self.by_hash.get(hash).and_then(|i| self.invoices.get(i))
    }

    /// Whether a label is taken by an existing invoice.
    pub fn label_exists(&self, label: &Label) -> bool {
        self.by_label.contains_key(label)
    }

    /// Whether a payment hash was ever used, even by a deleted invoice.
    pub fn hash_used(&self, hash: &Hash32) -> bool {
        self.used_hashes.contains(hash)
    }

    /// Invoices with `created_index >= start`, ascending.
    pub fn from_created_index(&self, start: u64) -> impl Iterator<Item = &InvoiceRecord> {
        self.invoices.range(start..).map(|(_, r)| r)
    }

    /// How many invoices exist.
    pub fn len(&self) -> usize {
        self.invoices.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.invoices.is_empty()
    }

    /// The highest `created_index` handed out (0 before the first invoice).
    pub fn last_created_index(&self) -> u64 {
        self.last_created_index
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
        book.stamp(&mut events.iter_mut().collect::<Vec<_>>());
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
        assert_eq!(book.invoices.by_label(&Label::new("b").unwrap()).unwrap().created.created_index, 2);
        assert_eq!(book.invoices.by_hash(&[1; 32]).unwrap().created.label.as_str(), "a");
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

    #[test]
    fn status_follows_expiry() {
        let r = InvoiceRecord { created: created("a", 1), updated_index: 0 };
        assert_eq!(r.status_at(109), InvoiceStatus::Unpaid);
        assert_eq!(r.status_at(110), InvoiceStatus::Expired);
    }
}
