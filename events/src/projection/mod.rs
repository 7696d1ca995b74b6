//! The projections: a pure fold of the log into the listings.
//!
//! [`Projections::apply`] takes the records in log order, checks their sequence and chain, and
//! hands each event to the [`InvoiceBook`] or the [`ChannelBook`]. The invoice book keeps, per
//! invoice, only an [`InvoiceEntry`]: what listings filter and sort on, what admission checks, and
//! the `seq` of the record that holds the rest (bolt11, description, secrets, hints). Whoever
//! shows an invoice joins the entry with that record ([`InvoiceEntry::join`]); so a million
//! invoices cost about 200 bytes each in memory, not the whole invoice. The book indexes the
//! entries by label, payment hash, `pay_index` and `updated_index`, keeps the set of every payment
//! hash ever used (a hash is never reused, not even a deleted invoice's) and the counters (created, pay, updated,
//! deleted).
//!
//! [`Admission`] is how the log writer decides, at commit time, whether a batch of new events
//! may be written: it stamps the counters and checks each request against the state plus the
//! requests admitted before it in the same batch, so two requests that race (a payment and an
//! expiry, a payment and a deletion) are decided in one place, in commit order. Label and
//! payment-hash uniqueness is decided earlier, by the claims of the actors' LabelRegistry; here
//! (and in the fold) it is only asserted, so that no log that breaks it is ever written or
//! replayed.
//!
//! Its rooms: [`entry`] (what is kept per invoice, and an invoice as shown), [`book`] (the
//! invoices and their indexes), [`lifecycle`] (the rule for each change after creation, and its
//! fold), [`admission`] (the writer's commit-time rules), [`snapshot`] (the checkpoint form);
//! this file holds the fold itself.

mod admission;
mod book;
mod entry;
mod lifecycle;
mod snapshot;

use std::collections::HashSet;

use crate::channel::ChannelBook;
use crate::codec::{EventRecord, GENESIS_HASH};
use crate::{Event, Hash32};

pub use admission::{Admission, Rejection};
pub use book::{Cleaned, InvoiceBook};
pub use entry::{Hold, InvoiceEntry, InvoiceRecord, Payment};
pub use snapshot::{Counters, Snapshot};

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
            return Err(ApplyError::OutOfOrder {
                after: self.head_seq,
                got: record.seq,
            });
        }
        if record.prev_hash != self.head_hash {
            return Err(ApplyError::BrokenChain(record.seq));
        }
        let seq = record.seq;
        let channel_err = |what, key: &crate::channel::ChannelKey| ApplyError::Channel {
            seq,
            what,
            key: key.to_string(),
        };
        match &record.event {
            Event::InvoiceCreated(c) => self.invoices.apply_created(seq, c, false)?,
            Event::HoldInvoiceCreated(c) => self.invoices.apply_created(seq, c, true)?,
            Event::Bolt12InvoiceCreated(b) => self.invoices.apply_bolt12(seq, b)?,
            Event::HashedInvoiceCreated(h) => {
                self.invoices.apply_created(seq, &h.invoice, h.hold)?
            }
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

    /// Gives back memory reserved by [`Projections::reserve_invoices`] and not used.
    pub fn shrink_to_fit(&mut self) {
        self.invoices.shrink_to_fit();
    }

    /// The sequence number and hash of the last record applied.
    pub fn head(&self) -> (u64, Hash32) {
        (self.head_seq, self.head_hash)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::{encode_record, record_hash};
    use crate::event::PreimageSeal;
    use crate::{
        CreatedIndex, DeletedIndex, InvoiceBody, InvoiceCreated, InvoiceStatus, Label, Msat,
        PayIndex, PaymentHash, PaymentSecret, UpdatedIndex,
    };

    fn created(label: &str, hash: u8) -> InvoiceCreated {
        InvoiceCreated {
            created_index: CreatedIndex(0),
            body: InvoiceBody {
                label: Label::new(label).unwrap(),
                bolt11: format!("lnbcrt{label}"),
                payment_hash: PaymentHash::from_byte_array([hash; 32]),
                payment_secret: PaymentSecret::from_byte_array([0; 32]),
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
            },
        }
    }

    /// Given a book, when `events` are stamped and appended, then the records it would store.
    fn append(book: &mut Projections, mut events: Vec<Event>) -> Result<(), ApplyError> {
        // Stamp without admission checks, so the fold's own checks are what is tested.
        let mut created = book.invoices.last_created_index();
        for e in &mut events {
            if let Event::InvoiceCreated(c) | Event::HoldInvoiceCreated(c) = e {
                created = created.next();
                c.created_index = created;
            }
        }
        for event in events {
            let (seq, prev_hash) = book.head();
            let rec = EventRecord {
                seq: seq + 1,
                time_ms: 0,
                prev_hash,
                event,
            };
            let hash = record_hash(&encode_record(&rec).unwrap());
            book.apply(&rec, hash)?;
        }
        Ok(())
    }

    #[test]
    fn a_clean_removes_only_an_old_enough_paid_or_expired_invoice_and_keeps_its_hash_used() {
        use crate::{InvoiceCleaned, InvoiceExpired, InvoicePaid};
        let clean = |created_index, deleted_index, status, age_s, now_s| {
            Event::InvoiceCleaned(InvoiceCleaned {
                created_index,
                deleted_index,
                status,
                age_s,
                now_s,
            })
        };
        let mut book = Projections::new();
        append(
            &mut book,
            vec![
                Event::InvoiceCreated(created("paid", 1)),
                Event::InvoiceCreated(created("expired", 2)),
                Event::InvoiceCreated(created("unpaid", 3)),
                Event::InvoicePaid(InvoicePaid {
                    created_index: CreatedIndex(1),
                    pay_index: PayIndex(1),
                    updated_index: UpdatedIndex(1),
                    amount_received_msat: Msat::from_msat(5),
                    paid_at: 105,
                }),
                Event::InvoiceExpired(InvoiceExpired {
                    created_index: CreatedIndex(2),
                    updated_index: UpdatedIndex(2),
                }),
            ],
        )
        .unwrap();
        let before = book.clone();
        // Paid at 105: not 100 s old at 204, nor cleanable as expired, nor with age 0.
        for refused in [
            clean(
                CreatedIndex(1),
                DeletedIndex(1),
                InvoiceStatus::Paid,
                100,
                204,
            ),
            clean(
                CreatedIndex(1),
                DeletedIndex(1),
                InvoiceStatus::Expired,
                10,
                1000,
            ),
            clean(
                CreatedIndex(1),
                DeletedIndex(1),
                InvoiceStatus::Paid,
                0,
                1000,
            ),
            clean(
                CreatedIndex(3),
                DeletedIndex(1),
                InvoiceStatus::Expired,
                10,
                1000,
            ),
            clean(
                CreatedIndex(9),
                DeletedIndex(1),
                InvoiceStatus::Paid,
                10,
                1000,
            ),
        ] {
            assert!(
                matches!(
                    append(&mut book, vec![refused.clone()]),
                    Err(ApplyError::Invoice { .. })
                ),
                "{refused:?}"
            );
            assert_eq!(book, before);
        }
        // Expired at 110 (its expires_at): 100 s old at 210.
        append(
            &mut book,
            vec![
                clean(
                    CreatedIndex(1),
                    DeletedIndex(1),
                    InvoiceStatus::Paid,
                    100,
                    205,
                ),
                clean(
                    CreatedIndex(2),
                    DeletedIndex(2),
                    InvoiceStatus::Expired,
                    100,
                    210,
                ),
            ],
        )
        .unwrap();
        assert_eq!(book.invoices.len(), 1);
        assert_eq!(
            book.invoices.last_deleted_index(),
            DeletedIndex(2),
            "a clean takes a deleted_index"
        );
        assert_eq!(
            book.invoices.cleaned(),
            crate::Cleaned {
                paid: 1,
                expired: 1
            }
        );
        assert!(
            book.invoices
                .hash_used(&PaymentHash::from_byte_array([1; 32]))
                && book
                    .invoices
                    .hash_used(&PaymentHash::from_byte_array([2; 32])),
            "their hashes stay used"
        );
        assert!(
            !book.invoices.label_exists(&Label::new("paid").unwrap()),
            "their labels are free"
        );
        // The checkpoint keeps the totals.
        let again = Projections::try_from(Snapshot::from(&book)).unwrap();
        assert_eq!(again, book);
        // The admission refuses the same rules before anything is written.
        let mut admission = book.admission();
        assert!(admission
            .admit(vec![propose(clean(
                CreatedIndex(3),
                DeletedIndex(0),
                InvoiceStatus::Expired,
                1,
                1000
            ))])
            .is_err());
    }

    #[test]
    fn created_index_counts_in_commit_order() {
        let mut book = Projections::new();
        append(
            &mut book,
            vec![
                Event::InvoiceCreated(created("a", 1)),
                Event::InvoiceCreated(created("b", 2)),
            ],
        )
        .unwrap();
        assert_eq!(
            book.invoices
                .by_label(&Label::new("b").unwrap())
                .unwrap()
                .created_index,
            CreatedIndex(2)
        );
        assert_eq!(
            book.invoices
                .by_hash(&PaymentHash::from_byte_array([1; 32]))
                .unwrap()
                .label
                .as_str(),
            "a"
        );
        assert_eq!(book.invoices.from_created_index(CreatedIndex(2)).count(), 1);
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
        let rec = EventRecord {
            seq: 2,
            time_ms: 0,
            prev_hash: [9; 32],
            event: Event::InvoiceCreated(created("c", 3)),
        };
        assert_eq!(book.apply(&rec, [0; 32]), Err(ApplyError::BrokenChain(2)));
    }

    /// The proposal a test's (unstamped) event stands for.
    fn propose(e: Event) -> crate::Proposal {
        use crate::Proposal;
        let kind = match &e {
            Event::HoldInvoiceCreated(_) => crate::InvoiceKind::Hold,
            Event::Bolt12InvoiceCreated(b) => crate::InvoiceKind::Bolt12 {
                local_offer_id: b.local_offer_id,
            },
            Event::HashedInvoiceCreated(h) => crate::InvoiceKind::Hashed {
                hold: h.hold,
                description_hash: h.description_hash,
            },
            _ => crate::InvoiceKind::Bolt11,
        };
        match e {
            Event::InvoiceCreated(c)
            | Event::HoldInvoiceCreated(c)
            | Event::HashedInvoiceCreated(crate::HashedCreated { invoice: c, .. })
            | Event::Bolt12InvoiceCreated(crate::Bolt12Created { invoice: c, .. }) => {
                Proposal::Invoice(crate::NewInvoice { body: c.body, kind })
            }
            Event::InvoicePaid(p) => Proposal::Paid {
                created_index: p.created_index,
                amount_received_msat: p.amount_received_msat,
                paid_at: p.paid_at,
                parts: vec![],
            },
            Event::HtlcsPaid(h) => Proposal::Paid {
                created_index: h.paid.created_index,
                amount_received_msat: h.paid.amount_received_msat,
                paid_at: h.paid.paid_at,
                parts: h.parts,
            },
            Event::InvoiceExpired(x) => Proposal::Expired {
                created_index: x.created_index,
            },
            Event::InvoiceDeleted(d) => Proposal::Deleted {
                created_index: d.created_index,
                status: d.status,
            },
            Event::DescriptionRemoved(d) => Proposal::DescriptionRemoved {
                created_index: d.created_index,
            },
            Event::InvoiceCleaned(c) => Proposal::Cleaned {
                created_index: c.created_index,
                status: c.status,
                age_s: c.age_s,
                now_s: c.now_s,
            },
            Event::HoldAccepted(a) => Proposal::HoldAccepted {
                created_index: a.created_index,
                parts: a.parts,
                height: a.height,
            },
            Event::HoldSettled(s) => Proposal::HoldSettled {
                created_index: s.created_index,
                amount_received_msat: s.amount_received_msat,
                paid_at: s.paid_at,
                revealed: s.revealed,
            },
            Event::HoldCanceled(c) => Proposal::HoldCanceled {
                created_index: c.created_index,
                reason: c.reason,
            },
            Event::ChannelOpened(c) => Proposal::ChannelOpened(c),
            Event::ChannelUpdated(c) => Proposal::ChannelUpdated(c),
            Event::ChannelClosed(k) => Proposal::ChannelClosed(k),
        }
    }

    /// Admits and appends, as the writer does.
    fn commit(book: &mut Projections, events: Vec<Event>) -> Result<Vec<Event>, Rejection> {
        let events = book
            .admission()
            .admit(events.into_iter().map(propose).collect())?;
        for event in events.clone() {
            let (seq, prev_hash) = book.head();
            let rec = EventRecord {
                seq: seq + 1,
                time_ms: 0,
                prev_hash,
                event,
            };
            book.apply(&rec, record_hash(&encode_record(&rec).unwrap()))
                .unwrap();
        }
        Ok(events)
    }

    fn paid(idx: u64) -> Event {
        Event::InvoicePaid(crate::InvoicePaid {
            created_index: CreatedIndex(idx),
            pay_index: PayIndex(0),
            updated_index: UpdatedIndex(0),
            amount_received_msat: Msat::from_msat(5),
            paid_at: 105,
        })
    }

    #[test]
    fn hold_invoices_move_only_as_their_state_allows_and_the_fold_agrees_with_admission() {
        use crate::{
            CancelReason, HeldPart, HoldAccepted, HoldCanceled, HoldSettled, HoldState,
            InvoiceExpired,
        };
        let hold = |label, hash, seal| {
            let mut c = created(label, hash);
            c.body.preimage = seal;
            Event::HoldInvoiceCreated(c)
        };
        let parts = vec![
            HeldPart {
                htlc: "1x1x1/0".into(),
                amount_msat: Msat::from_msat(3),
                cltv_expiry: 200,
            },
            HeldPart {
                htlc: "1x1x1/1".into(),
                amount_msat: Msat::from_msat(2),
                cltv_expiry: 190,
            },
        ];
        let accept = |idx| {
            Event::HoldAccepted(HoldAccepted {
                created_index: idx,
                updated_index: UpdatedIndex(0),
                parts: parts.clone(),
                height: 150,
            })
        };
        let settle = |idx, revealed| {
            Event::HoldSettled(HoldSettled {
                created_index: idx,
                pay_index: PayIndex(0),
                updated_index: UpdatedIndex(0),
                amount_received_msat: Msat::from_msat(5),
                paid_at: 120,
                revealed,
            })
        };
        let cancel = |idx, reason| {
            Event::HoldCanceled(HoldCanceled {
                created_index: idx,
                updated_index: UpdatedIndex(0),
                reason,
            })
        };
        let sealed = PreimageSeal::Sealed {
            nonce: [7; 32],
            ciphertext: [8; 32],
        };
        let state = |b: &Projections, idx| b.invoices.get(idx).and_then(InvoiceEntry::hold_state);
        let wrong = |s| Err(Rejection::HoldState(s));

        let mut book = Projections::new();
        commit(
            &mut book,
            vec![
                hold("known", 1, PreimageSeal::Derived { nonce: [1; 32] }),
                hold("withheld", 2, PreimageSeal::Withheld),
                Event::InvoiceCreated(created("plain", 3)),
                hold("open", 4, PreimageSeal::Derived { nonce: [4; 32] }),
            ],
        )
        .unwrap();
        // A plain invoice never carries a withheld preimage, nor takes hold transitions.
        assert!(matches!(
            append(
                &mut book.clone(),
                vec![Event::InvoiceCreated({
                    let mut c = created("x", 9);
                    c.body.preimage = PreimageSeal::Withheld;
                    c
                })]
            ),
            Err(ApplyError::Invoice {
                rejection: Rejection::NotHold(CreatedIndex(5)),
                ..
            })
        ));
        assert_eq!(
            commit(&mut book, vec![accept(CreatedIndex(3))]),
            Err(Rejection::NotHold(CreatedIndex(3)))
        );
        // OPEN: no settle, no plain payment; accept, then no second accept.
        assert_eq!(state(&book, CreatedIndex(1)), Some(HoldState::Open));
        assert_eq!(
            commit(&mut book, vec![settle(CreatedIndex(1), None)]),
            wrong(HoldState::Open)
        );
        assert_eq!(
            commit(&mut book, vec![paid(1)]),
            Err(Rejection::IsHold(CreatedIndex(1)))
        );
        commit(
            &mut book,
            vec![accept(CreatedIndex(1)), accept(CreatedIndex(2))],
        )
        .unwrap();
        assert_eq!(
            commit(&mut book, vec![accept(CreatedIndex(1))]),
            wrong(HoldState::Accepted)
        );
        let e = book.invoices.get(CreatedIndex(1)).unwrap();
        assert_eq!(
            (
                e.status,
                e.updated_index,
                e.hold.as_ref().unwrap().htlc_expiry()
            ),
            (InvoiceStatus::Unpaid, UpdatedIndex(1), Some(190))
        );
        // ACCEPTED does not expire with the invoice: the parts' CLTV bounds it.
        assert_eq!(
            commit(
                &mut book,
                vec![Event::InvoiceExpired(InvoiceExpired {
                    created_index: CreatedIndex(1),
                    updated_index: UpdatedIndex(0)
                })]
            ),
            wrong(HoldState::Accepted)
        );
        // The preimage is revealed exactly when it was withheld.
        assert_eq!(
            commit(
                &mut book,
                vec![settle(CreatedIndex(1), Some(sealed.clone()))]
            ),
            Err(Rejection::Preimage(CreatedIndex(1)))
        );
        assert_eq!(
            commit(&mut book, vec![settle(CreatedIndex(2), None)]),
            Err(Rejection::Preimage(CreatedIndex(2)))
        );
        // The block rule: due only once the earliest part (190) is within the margin.
        let by_blocks = |height| CancelReason::HtlcExpiry {
            height,
            blocks_before: 6,
        };
        assert_eq!(
            commit(&mut book, vec![cancel(CreatedIndex(2), by_blocks(183))]),
            Err(Rejection::NotDue(CreatedIndex(2)))
        );
        assert_eq!(
            commit(&mut book, vec![cancel(CreatedIndex(4), by_blocks(500))]),
            wrong(HoldState::Open),
            "an open one has no parts to guard"
        );
        commit(
            &mut book,
            vec![
                settle(CreatedIndex(1), None),
                cancel(CreatedIndex(2), by_blocks(184)),
            ],
        )
        .unwrap();
        let settled = book.invoices.get(CreatedIndex(1)).unwrap();
        assert_eq!(
            (
                settled.status,
                settled.hold_state(),
                settled.payment.as_ref().map(|p| p.pay_index)
            ),
            (
                InvoiceStatus::Paid,
                Some(HoldState::Settled),
                Some(PayIndex(1))
            )
        );
        assert_eq!(
            book.invoices
                .next_paid_after(PayIndex(0))
                .map(|e| e.created_index),
            Some(CreatedIndex(1)),
            "a settle is a payment for waitanyinvoice"
        );
        assert_eq!(
            (
                book.invoices.get(CreatedIndex(2)).unwrap().status,
                state(&book, CreatedIndex(2))
            ),
            (InvoiceStatus::Expired, Some(HoldState::Canceled))
        );
        // Nothing moves a settled or canceled one.
        assert_eq!(
            commit(&mut book, vec![settle(CreatedIndex(1), None)]),
            wrong(HoldState::Settled)
        );
        assert_eq!(
            commit(
                &mut book,
                vec![cancel(CreatedIndex(1), CancelReason::Requested)]
            ),
            wrong(HoldState::Settled)
        );
        assert_eq!(
            commit(&mut book, vec![settle(CreatedIndex(2), Some(sealed))]),
            wrong(HoldState::Canceled)
        );
        assert_eq!(
            commit(
                &mut book,
                vec![cancel(CreatedIndex(2), CancelReason::Requested)]
            ),
            wrong(HoldState::Canceled)
        );
        // An OPEN one can be canceled by request, or expires (and is then canceled).
        commit(
            &mut book,
            vec![Event::InvoiceExpired(InvoiceExpired {
                created_index: CreatedIndex(4),
                updated_index: UpdatedIndex(0),
            })],
        )
        .unwrap();
        assert_eq!(state(&book, CreatedIndex(4)), Some(HoldState::Canceled));
        // The fold refuses what admission refuses, and a checkpoint keeps the hold states.
        let before = book.clone();
        assert!(append(&mut book, vec![settle(CreatedIndex(2), None)]).is_err());
        assert_eq!(book, before);
        assert_eq!(Projections::try_from(Snapshot::from(&book)).unwrap(), book);
    }

    #[test]
    fn lifecycle_counters_and_states() {
        let mut book = Projections::new();
        commit(&mut book, vec![Event::InvoiceCreated(created("a", 1))]).unwrap();
        commit(&mut book, vec![Event::InvoiceCreated(created("b", 2))]).unwrap();
        commit(&mut book, vec![Event::InvoiceCreated(created("c", 3))]).unwrap();
        let e = commit(&mut book, vec![paid(2)]).unwrap();
        assert!(
            matches!(&e[0], Event::InvoicePaid(p) if p.pay_index == PayIndex(1) && p.updated_index == UpdatedIndex(1))
        );
        assert_eq!(
            commit(&mut book, vec![paid(2)]),
            Err(Rejection::NotUnpaid(InvoiceStatus::Paid))
        );
        commit(
            &mut book,
            vec![Event::InvoiceExpired(crate::InvoiceExpired {
                created_index: CreatedIndex(1),
                updated_index: UpdatedIndex(0),
            })],
        )
        .unwrap();
        assert_eq!(
            commit(&mut book, vec![paid(1)]),
            Err(Rejection::NotUnpaid(InvoiceStatus::Expired))
        );
        let rec = book.invoices.get(CreatedIndex(1)).unwrap();
        assert_eq!(
            (rec.status, rec.updated_index),
            (InvoiceStatus::Expired, UpdatedIndex(2))
        );
        let del = |idx, status| {
            Event::InvoiceDeleted(crate::InvoiceDeleted {
                created_index: idx,
                deleted_index: DeletedIndex(0),
                status,
            })
        };
        assert_eq!(
            commit(&mut book, vec![del(CreatedIndex(1), InvoiceStatus::Unpaid)]),
            Err(Rejection::StatusChanged {
                expected: InvoiceStatus::Unpaid,
                actual: InvoiceStatus::Expired
            })
        );
        commit(
            &mut book,
            vec![del(CreatedIndex(1), InvoiceStatus::Expired)],
        )
        .unwrap();
        assert!(book.invoices.by_label(&Label::new("a").unwrap()).is_none());
        assert!(
            book.invoices
                .hash_used(&PaymentHash::from_byte_array([1; 32])),
            "a deleted invoice's hash stays used"
        );
        // The label is free again and created_index keeps counting.
        let e = commit(&mut book, vec![Event::InvoiceCreated(created("a", 9))]).unwrap();
        assert!(matches!(&e[0], Event::InvoiceCreated(c) if c.created_index == CreatedIndex(4)));
        assert_eq!(
            book.invoices
                .next_paid_after(PayIndex(0))
                .unwrap()
                .label
                .as_str(),
            "b"
        );
        assert!(book.invoices.next_paid_after(PayIndex(1)).is_none());
    }

    /// A BOLT12 invoice is an invoice like any other (its label and hash unique with the rest,
    /// paid by the same rule) that keeps the node's offer it answers, through a checkpoint too.
    #[test]
    fn a_bolt12_invoice_keeps_its_offer() {
        let mut book = Projections::new();
        let b12 = |label, hash, offer| {
            Event::Bolt12InvoiceCreated(crate::Bolt12Created {
                invoice: created(label, hash),
                local_offer_id: offer,
            })
        };
        commit(
            &mut book,
            vec![b12("o-p-0", 1, Some([9; 32])), b12("o-p-1", 2, None)],
        )
        .unwrap();
        assert!(
            commit(&mut book, vec![Event::InvoiceCreated(created("o-p-0", 3))]).is_err(),
            "one label space"
        );
        commit(&mut book, vec![paid(1)]).unwrap();
        let first = book.invoices.get(CreatedIndex(1)).unwrap();
        assert_eq!(first.local_offer_id.as_deref(), Some(&[9; 32]));
        assert_eq!(first.status, InvoiceStatus::Paid);
        assert_eq!(
            book.invoices.get(CreatedIndex(2)).unwrap().local_offer_id,
            None
        );
        assert_eq!(Projections::try_from(Snapshot::from(&book)).unwrap(), book);
    }

    #[test]
    fn snapshot_round_trips() {
        let mut book = Projections::new();
        commit(&mut book, vec![Event::InvoiceCreated(created("a", 1))]).unwrap();
        commit(&mut book, vec![Event::InvoiceCreated(created("b", 2))]).unwrap();
        commit(&mut book, vec![paid(2)]).unwrap();
        let del = Event::InvoiceDeleted(crate::InvoiceDeleted {
            created_index: CreatedIndex(1),
            deleted_index: DeletedIndex(0),
            status: InvoiceStatus::Unpaid,
        });
        commit(&mut book, vec![del]).unwrap();
        let back = Projections::try_from(Snapshot::from(&book)).unwrap();
        assert_eq!(back, book);
        assert!(back
            .invoices
            .hash_used(&PaymentHash::from_byte_array([1; 32])));
    }

    fn del(idx: u64, status: InvoiceStatus) -> Event {
        Event::InvoiceDeleted(crate::InvoiceDeleted {
            created_index: CreatedIndex(idx),
            deleted_index: DeletedIndex(0),
            status,
        })
    }

    #[test]
    fn indexes_follow_growth_deletion_and_checkpoints() {
        let mut book = Projections::new();
        // Enough invoices to make the hash tables grow (and rehash through the entries) a few times.
        for i in 0..300u16 {
            let mut c = created(&format!("l{i}"), 0);
            let mut hash = [0; 32];
            hash[..2].copy_from_slice(&i.to_be_bytes());
            c.body.payment_hash = PaymentHash::from_byte_array(hash);
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
        assert_eq!(
            inv.slots.entries.len(),
            200,
            "deleted invoices at the front take no slot"
        );
        assert!(
            inv.get(CreatedIndex(100)).is_none()
                && inv.get(CreatedIndex(150)).is_none()
                && inv.get(CreatedIndex(301)).is_none()
        );
        assert_eq!(
            inv.by_label(&Label::new("l250").unwrap())
                .unwrap()
                .created_index,
            CreatedIndex(251)
        );
        assert!(inv.by_label(&Label::new("l0").unwrap()).is_none());
        let mut h = [0; 32];
        h[..2].copy_from_slice(&299u16.to_be_bytes());
        let h_of = PaymentHash::from_byte_array;
        assert_eq!(
            inv.by_hash(&h_of(h)).unwrap().created_index,
            CreatedIndex(300)
        );
        h[..2].copy_from_slice(&149u16.to_be_bytes());
        assert!(inv.by_hash(&h_of(h)).is_none() && inv.hash_used(&h_of(h)));
        assert_eq!(
            inv.from_created_index(CreatedIndex(0))
                .next()
                .unwrap()
                .created_index,
            CreatedIndex(101)
        );
        assert_eq!(
            inv.from_created_index(CreatedIndex(149))
                .map(|e| e.created_index.get())
                .take(2)
                .collect::<Vec<_>>(),
            [149, 151]
        );
        assert_eq!(
            inv.from_updated_index(UpdatedIndex(0))
                .map(|e| e.created_index.get())
                .collect::<Vec<_>>(),
            [200, 180]
        );
        assert_eq!(
            inv.from_updated_index(UpdatedIndex(2))
                .map(|e| e.created_index.get())
                .collect::<Vec<_>>(),
            [180]
        );
        let back = Projections::try_from(Snapshot::from(&book)).unwrap();
        assert_eq!(back, book);
        assert_eq!(
            back.invoices
                .by_label(&Label::new("l299").unwrap())
                .unwrap()
                .created_index,
            CreatedIndex(300)
        );
        // The restored book goes on counting from the same place.
        let mut back = back;
        let e = commit(&mut back, vec![Event::InvoiceCreated(created("new", 9))]).unwrap();
        assert!(matches!(&e[0], Event::InvoiceCreated(c) if c.created_index == CreatedIndex(301)));
    }

    #[test]
    fn a_checkpoint_that_contradicts_itself_is_refused() {
        let mut book = Projections::new();
        commit(&mut book, vec![Event::InvoiceCreated(created("a", 1))]).unwrap();
        commit(&mut book, vec![Event::InvoiceCreated(created("b", 2))]).unwrap();
        let mut snap = Snapshot::from(&book);
        snap.invoices[1].as_mut().unwrap().label = Label::new("a").unwrap();
        assert!(matches!(
            Projections::try_from(snap),
            Err(ApplyError::DuplicateLabel { .. })
        ));
        let mut snap = Snapshot::from(&book);
        snap.invoices.swap(0, 1);
        assert!(matches!(
            Projections::try_from(snap),
            Err(ApplyError::CreatedIndex { .. })
        ));
        let mut snap = Snapshot::from(&book);
        snap.counters.created = CreatedIndex(1);
        assert!(
            Projections::try_from(snap).is_err(),
            "an invoice above the created counter"
        );
    }

    #[test]
    fn join_checks_the_record_is_the_invoices() {
        let mut book = Projections::new();
        commit(&mut book, vec![Event::InvoiceCreated(created("a", 1))]).unwrap();
        let entry = book.invoices.get(CreatedIndex(1)).unwrap();
        let mut c = created("a", 1);
        c.created_index = CreatedIndex(1);
        let joined = entry.join(&Event::InvoiceCreated(c.clone())).unwrap();
        assert_eq!(
            (joined.created, joined.given_description_hash),
            (c.clone(), None)
        );
        let hashed = Event::HashedInvoiceCreated(crate::HashedCreated {
            invoice: c.clone(),
            hold: false,
            description_hash: [5; 32],
        });
        assert_eq!(
            entry.join(&hashed).unwrap().given_description_hash,
            Some([5; 32])
        );
        assert_eq!(
            entry.join(&hashed).unwrap().description_hash(),
            Some([5; 32])
        );
        c.body.payment_hash = PaymentHash::from_byte_array([2; 32]);
        assert!(entry.join(&Event::InvoiceCreated(c)).is_none());
        assert!(entry
            .join(&Event::ChannelClosed(crate::ChannelKey::ChannelId([0; 32])))
            .is_none());
    }

    #[test]
    fn admission_decides_races_within_a_batch() {
        let mut book = Projections::new();
        commit(&mut book, vec![Event::InvoiceCreated(created("a", 1))]).unwrap();
        let mut adm = book.admission();
        let pay = vec![propose(paid(1))];
        let expire = vec![crate::Proposal::Expired {
            created_index: CreatedIndex(1),
        }];
        let stamped = adm.admit(pay).unwrap();
        assert!(
            matches!(&stamped[..], [Event::InvoicePaid(p)] if p.pay_index == PayIndex(1) && p.updated_index == UpdatedIndex(1))
        );
        assert!(matches!(adm.admit(expire), Err(Rejection::Conflict(_))));
        let same_label = vec![propose(Event::InvoiceCreated(created("x", 7)))];
        let same_label2 = vec![propose(Event::InvoiceCreated(created("x", 8)))];
        assert!(
            matches!(&adm.admit(same_label).unwrap()[..], [Event::InvoiceCreated(c)] if c.created_index == CreatedIndex(2))
        );
        assert_eq!(
            adm.admit(same_label2),
            Err(Rejection::DuplicateLabel(Label::new("x").unwrap()))
        );
        let same_hash = vec![propose(Event::InvoiceCreated(created("y", 7)))];
        assert_eq!(adm.admit(same_hash), Err(Rejection::PreimageUsed));
    }

    proptest::proptest! {
        /// `apply` is all or nothing: whatever record comes — a wrong counter, an unknown or
        /// unpaid invoice, a label taken — a refused one leaves the projections as they were.
        #[test]
        fn a_refused_record_changes_nothing(
            steps in proptest::collection::vec((0u8..6, 1u64..5, 0u64..5, 0u64..5, 0u8..3), 1..40),
        ) {
            let mut book = Projections::new();
            for (kind, idx, pay, updated, label) in steps {
                let event = match kind {
                    0 => Event::InvoiceCreated(InvoiceCreated { created_index: CreatedIndex(idx), ..created(&format!("l{label}"), label + 10 * idx as u8) }),
                    1 => Event::InvoicePaid(crate::InvoicePaid { created_index: CreatedIndex(idx), pay_index: PayIndex(pay), updated_index: UpdatedIndex(updated), amount_received_msat: Msat::from_msat(5), paid_at: 105 }),
                    2 => Event::HtlcsPaid(crate::HtlcsPaid {
                        paid: crate::InvoicePaid { created_index: CreatedIndex(idx), pay_index: PayIndex(pay), updated_index: UpdatedIndex(updated), amount_received_msat: Msat::from_msat(5), paid_at: 105 },
                        parts: vec![crate::HeldPart { htlc: "1x1x1/1".into(), amount_msat: Msat::from_msat(5), cltv_expiry: 9 }],
                    }),
                    3 => Event::InvoiceExpired(crate::InvoiceExpired { created_index: CreatedIndex(idx), updated_index: UpdatedIndex(updated) }),
                    4 => Event::InvoiceDeleted(crate::InvoiceDeleted { created_index: CreatedIndex(idx), deleted_index: DeletedIndex(pay), status: InvoiceStatus::Unpaid }),
                    _ => Event::DescriptionRemoved(crate::DescriptionRemoved { created_index: CreatedIndex(idx), updated_index: UpdatedIndex(updated) }),
                };
                let (seq, prev_hash) = book.head();
                let rec = EventRecord { seq: seq + 1, time_ms: 0, prev_hash, event };
                let before = book.clone();
                if book.apply(&rec, record_hash(&encode_record(&rec).unwrap())).is_err() {
                    proptest::prop_assert_eq!(&book, &before);
                }
            }
        }

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
                        created_index: CreatedIndex(idx),
                        label: Label::new(format!("l{label}")).unwrap(),
                        payment_hash: PaymentHash::from_byte_array([hash; 32]),
                        expires_at: 1,
                        status: if paid { InvoiceStatus::Paid } else { InvoiceStatus::Unpaid },
                        payment: paid.then_some(Payment { pay_index: PayIndex(idx), amount_received_msat: Msat::from_msat(1), paid_at: 1, parts: vec![] }),
                        description_removed: false,
                        updated_index: UpdatedIndex(updated),
                        hold: None,
                        local_offer_id: None,
                    })
                })
                .collect();
            let snap = Snapshot {
                head_seq: 1,
                head_hash: [0; 32],
                invoices,
                retired_hashes: retired
                    .into_iter()
                    .map(|h| PaymentHash::from_byte_array([h; 32]))
                    .collect(),
                counters: Counters { created: CreatedIndex(last), pay: PayIndex(3), updated: UpdatedIndex(3), deleted: DeletedIndex(0) },
                channels: vec![],
                cleaned: crate::Cleaned::default(),
            };
            if let Ok(p) = Projections::try_from(snap) {
                proptest::prop_assert_eq!(Projections::try_from(Snapshot::from(&p)).unwrap(), p);
            }
        }
    }
}
