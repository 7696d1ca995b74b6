//! What the projection keeps of one invoice ([`InvoiceEntry`]), and an invoice as shown: the
//! entry joined with the record of its creation ([`InvoiceRecord`]).

use serde::{Deserialize, Serialize};

use crate::{
    earliest_expiry, CreatedIndex, Event, Hash32, HeldPart, HoldState, InvoiceCreated,
    InvoiceStatus, Label, Msat, PayIndex, PaymentHash, PreimageSeal, UpdatedIndex,
};

/// How an invoice was paid.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Payment {
    /// 1-based payment counter.
    pub pay_index: PayIndex,
    /// What arrived.
    pub amount_received_msat: Msat,
    /// When, UNIX seconds.
    pub paid_at: u64,
    /// The HTLCs that paid it, when recorded ([`crate::HtlcsPaid`]; a hold invoice keeps its
    /// parts in its [`Hold`]).
    pub parts: Vec<HeldPart>,
}

/// What a hold invoice adds to its entry.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hold {
    /// Where it is.
    pub state: HoldState,
    /// Made from its payment hash alone: the settle must reveal the preimage.
    pub withheld: bool,
    /// The parts held since it was accepted (kept once settled or canceled, for the record).
    pub parts: Vec<HeldPart>,
    /// The revealed preimage, sealed, once a withheld one is settled.
    pub revealed: Option<PreimageSeal>,
}

impl Hold {
    /// The earliest CLTV expiry of the held parts, while they are held (`ACCEPTED`).
    pub fn htlc_expiry(&self) -> Option<u32> {
        (self.state == HoldState::Accepted)
            .then(|| earliest_expiry(&self.parts))
            .flatten()
    }
}

/// What the projection keeps of one invoice (see the module docs).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InvoiceEntry {
    /// The log record holding its [`InvoiceCreated`].
    pub seq: u64,
    /// Its `created_index`.
    pub created_index: CreatedIndex,
    /// Its label.
    pub label: Label,
    /// Its payment hash.
    pub payment_hash: PaymentHash,
    /// When it expires, UNIX seconds.
    pub expires_at: u64,
    /// Unpaid, paid or expired.
    pub status: InvoiceStatus,
    /// Set once paid.
    pub payment: Option<Payment>,
    /// Whether `delinvoice … desconly` removed the description.
    pub description_removed: bool,
    /// 0 while never updated.
    pub updated_index: UpdatedIndex,
    /// Set for a hold invoice (boxed: most invoices are not).
    pub hold: Option<Box<Hold>>,
    /// For a BOLT12 invoice, the node's offer it answers (boxed: most invoices have none).
    pub local_offer_id: Option<Box<Hash32>>,
}

impl InvoiceEntry {
    /// Its hold state, for a hold invoice.
    pub fn hold_state(&self) -> Option<HoldState> {
        self.hold.as_ref().map(|h| h.state)
    }

    /// When it took `status`, if it has it and that time is known: `paid_at` when paid,
    /// `expires_at` when expired (the times retention measures an invoice's age from).
    pub fn since(&self, status: InvoiceStatus) -> Option<u64> {
        match (self.status, status, &self.payment) {
            (InvoiceStatus::Paid, InvoiceStatus::Paid, Some(p)) => Some(p.paid_at),
            (InvoiceStatus::Expired, InvoiceStatus::Expired, _) => Some(self.expires_at),
            _ => None,
        }
    }

    /// The whole invoice, given the event of record `self.seq`; `None` if that event does not
    /// create this invoice (a log that contradicts the projection).
    pub fn join(&self, event: &Event) -> Option<InvoiceRecord> {
        let created = event.created()?;
        (created.created_index == self.created_index
            && created.body.payment_hash == self.payment_hash)
            .then(|| InvoiceRecord {
                created: created.clone(),
                given_description_hash: event.given_description_hash(),
                status: self.status,
                payment: self.payment.clone(),
                description_removed: self.description_removed,
                updated_index: self.updated_index,
                hold: self.hold.as_deref().cloned(),
                local_offer_id: self.local_offer_id.as_deref().copied(),
            })
    }
}

/// An invoice as shown: its entry joined with its creation event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InvoiceRecord {
    /// What was decided at creation.
    pub created: InvoiceCreated,
    /// The hash in its `h` field when its creator gave it ([`crate::HashedCreated`]): the
    /// `description` is then a note beside it.
    pub given_description_hash: Option<Hash32>,
    /// Unpaid, paid or expired.
    pub status: InvoiceStatus,
    /// Set once paid.
    pub payment: Option<Payment>,
    /// Whether `delinvoice … desconly` removed the description.
    pub description_removed: bool,
    /// 0 while never updated.
    pub updated_index: UpdatedIndex,
    /// Set for a hold invoice.
    pub hold: Option<Hold>,
    /// For a BOLT12 invoice, the node's offer it answers.
    pub local_offer_id: Option<Hash32>,
}

impl InvoiceRecord {
    /// The seal that opens to its preimage: the creation's, or for a withheld hold invoice the
    /// one its settle revealed (`None` until then).
    pub fn preimage_seal(&self) -> Option<&PreimageSeal> {
        match (&self.created.body.preimage, &self.hold) {
            (PreimageSeal::Withheld, Some(h)) => h.revealed.as_ref(),
            (PreimageSeal::Withheld, None) => None,
            (seal, _) => Some(seal),
        }
    }

    /// Whether it is a BOLT12 invoice (its string in `created.bolt11` is an `lni1…`).
    pub fn is_bolt12(&self) -> bool {
        self.created.body.bolt11.starts_with("lni")
    }

    /// The stored description (with a given hash, the note beside it), unless removed.
    pub fn description(&self) -> Option<&str> {
        (!self.description_removed).then_some(self.created.body.description.as_str())
    }

    /// The hash in its `h` field, if it has one: the given one, or that of its description
    /// (`deschashonly`).
    pub fn description_hash(&self) -> Option<Hash32> {
        use bitcoin::hashes::{sha256, Hash as _};
        self.given_description_hash.or_else(|| {
            self.created.body.deschashonly.then(|| {
                sha256::Hash::hash(self.created.body.description.as_bytes()).to_byte_array()
            })
        })
    }
}
