//! What a request asks the log to record, before the writer has decided where it goes.
//!
//! An [`Event`] is a record's content: it carries the counters (`created_index`, `pay_index`,
//! `updated_index`, `deleted_index`) that the writer's admission stamps in commit order. A
//! [`Proposal`] is the same change as a request makes it, with no counter at all, so no request
//! can carry a placeholder and no record can lack a counter: the only way from one to the other
//! is [`Proposal::stamp`], which admission calls with the counters it assigns.

use crate::channel::{ChannelInfo, ChannelKey};
use crate::event::{
    Bolt12Created, CancelReason, DescriptionRemoved, Event, HashedCreated, HeldPart, HoldAccepted,
    HoldCanceled, HoldSettled, HtlcsPaid, InvoiceBody, InvoiceCleaned, InvoiceCreated,
    InvoiceDeleted, InvoiceExpired, InvoicePaid, InvoiceStatus, PreimageSeal,
};
use crate::ids::{CreatedIndex, DeletedIndex, PayIndex, UpdatedIndex};
use crate::{Hash32, Msat};

/// A new invoice, as the creator makes it: the body of an [`InvoiceCreated`], and which kind
/// of event will record it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewInvoice {
    /// The invoice.
    pub body: InvoiceBody,
    /// Which kind, and so which event records it.
    pub kind: InvoiceKind,
}

/// The kinds of invoice, each recorded by its own event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InvoiceKind {
    /// A BOLT11 invoice ([`Event::InvoiceCreated`]).
    Bolt11,
    /// A hold invoice ([`Event::HoldInvoiceCreated`]).
    Hold,
    /// A BOLT12 invoice ([`Event::Bolt12InvoiceCreated`]), answering `local_offer_id` when that
    /// is one of the node's offers.
    Bolt12 {
        /// The node's offer.
        local_offer_id: Option<Hash32>,
    },
    /// A BOLT11 invoice, plain or hold, whose `h` field is a hash its creator gave
    /// ([`Event::HashedInvoiceCreated`]).
    Hashed {
        /// A hold invoice.
        hold: bool,
        /// The hash.
        description_hash: Hash32,
    },
}

impl NewInvoice {
    /// The event, with the `created_index` admission assigned.
    pub fn stamp(self, created_index: CreatedIndex) -> InvoiceCreated {
        InvoiceCreated {
            created_index,
            body: self.body,
        }
    }
}

/// One change a request asks for (see the module docs).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Proposal {
    /// A new invoice.
    Invoice(NewInvoice),
    /// Invoice `created_index` was paid.
    Paid {
        /// The invoice.
        created_index: CreatedIndex,
        /// What arrived.
        amount_received_msat: Msat,
        /// When, UNIX seconds.
        paid_at: u64,
        /// The HTLCs that paid it, when the node reported them (then recorded as
        /// [`Event::HtlcsPaid`]; otherwise as [`Event::InvoicePaid`]).
        parts: Vec<HeldPart>,
    },
    /// Invoice `created_index` expired.
    Expired {
        /// The invoice.
        created_index: CreatedIndex,
    },
    /// Invoice `created_index` is deleted, if its status is still `status`.
    Deleted {
        /// The invoice.
        created_index: CreatedIndex,
        /// The status the caller expects it to have.
        status: InvoiceStatus,
    },
    /// Invoice `created_index` is cleaned by retention, if it still has `status` and is at
    /// least `age_s` old at `now_s`.
    Cleaned {
        /// The invoice.
        created_index: CreatedIndex,
        /// `Paid` or `Expired`.
        status: InvoiceStatus,
        /// The age rule, seconds.
        age_s: u64,
        /// Now, UNIX seconds.
        now_s: u64,
    },
    /// Invoice `created_index` loses its description.
    DescriptionRemoved {
        /// The invoice.
        created_index: CreatedIndex,
    },
    /// Hold invoice `created_index` holds `parts`, which reach its amount.
    HoldAccepted {
        /// The invoice.
        created_index: CreatedIndex,
        /// The parts.
        parts: Vec<HeldPart>,
        /// The node's block height.
        height: u32,
    },
    /// Hold invoice `created_index` is settled.
    HoldSettled {
        /// The invoice.
        created_index: CreatedIndex,
        /// What the held parts carry.
        amount_received_msat: Msat,
        /// When, UNIX seconds.
        paid_at: u64,
        /// The revealed preimage, sealed, for an invoice made from its hash alone.
        revealed: Option<PreimageSeal>,
    },
    /// Hold invoice `created_index` is canceled.
    HoldCanceled {
        /// The invoice.
        created_index: CreatedIndex,
        /// Why.
        reason: CancelReason,
    },
    /// The node reported a channel we did not know.
    ChannelOpened(ChannelInfo),
    /// A known channel changed.
    ChannelUpdated(ChannelInfo),
    /// A known channel is no longer reported.
    ChannelClosed(ChannelKey),
}

/// The counters admission assigns to one proposal (each used by the kinds that have it).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stamp {
    /// `created_index` of a new invoice.
    pub created: CreatedIndex,
    /// `pay_index` of a payment.
    pub pay: PayIndex,
    /// `updated_index` of a payment, expiry or description removal.
    pub updated: UpdatedIndex,
    /// `deleted_index` of a deletion.
    pub deleted: DeletedIndex,
}

impl Proposal {
    /// The invoice a lifecycle proposal names (`None` for a new invoice or a channel).
    pub fn target(&self) -> Option<CreatedIndex> {
        match self {
            Proposal::Paid { created_index, .. }
            | Proposal::Expired { created_index }
            | Proposal::Deleted { created_index, .. }
            | Proposal::Cleaned { created_index, .. }
            | Proposal::DescriptionRemoved { created_index }
            | Proposal::HoldAccepted { created_index, .. }
            | Proposal::HoldSettled { created_index, .. }
            | Proposal::HoldCanceled { created_index, .. } => Some(*created_index),
            _ => None,
        }
    }

    /// The event to record, with its counters.
    pub fn stamp(self, s: Stamp) -> Event {
        match self {
            Proposal::Invoice(n) => match n.kind {
                InvoiceKind::Bolt11 => Event::InvoiceCreated(n.stamp(s.created)),
                InvoiceKind::Hold => Event::HoldInvoiceCreated(n.stamp(s.created)),
                InvoiceKind::Bolt12 { local_offer_id } => {
                    Event::Bolt12InvoiceCreated(Bolt12Created {
                        invoice: n.stamp(s.created),
                        local_offer_id,
                    })
                }
                InvoiceKind::Hashed {
                    hold,
                    description_hash,
                } => Event::HashedInvoiceCreated(HashedCreated {
                    invoice: n.stamp(s.created),
                    hold,
                    description_hash,
                }),
            },
            Proposal::Paid {
                created_index,
                amount_received_msat,
                paid_at,
                parts,
            } => {
                let paid = InvoicePaid {
                    created_index,
                    pay_index: s.pay,
                    updated_index: s.updated,
                    amount_received_msat,
                    paid_at,
                };
                if parts.is_empty() {
                    Event::InvoicePaid(paid)
                } else {
                    Event::HtlcsPaid(HtlcsPaid { paid, parts })
                }
            }
            Proposal::Expired { created_index } => Event::InvoiceExpired(InvoiceExpired {
                created_index,
                updated_index: s.updated,
            }),
            Proposal::Deleted {
                created_index,
                status,
            } => Event::InvoiceDeleted(InvoiceDeleted {
                created_index,
                deleted_index: s.deleted,
                status,
            }),
            Proposal::Cleaned {
                created_index,
                status,
                age_s,
                now_s,
            } => Event::InvoiceCleaned(InvoiceCleaned {
                created_index,
                deleted_index: s.deleted,
                status,
                age_s,
                now_s,
            }),
            Proposal::DescriptionRemoved { created_index } => {
                Event::DescriptionRemoved(DescriptionRemoved {
                    created_index,
                    updated_index: s.updated,
                })
            }
            Proposal::HoldAccepted {
                created_index,
                parts,
                height,
            } => Event::HoldAccepted(HoldAccepted {
                created_index,
                updated_index: s.updated,
                parts,
                height,
            }),
            Proposal::HoldSettled {
                created_index,
                amount_received_msat,
                paid_at,
                revealed,
            } => Event::HoldSettled(HoldSettled {
                created_index,
                pay_index: s.pay,
                updated_index: s.updated,
                amount_received_msat,
                paid_at,
                revealed,
            }),
            Proposal::HoldCanceled {
                created_index,
                reason,
            } => Event::HoldCanceled(HoldCanceled {
                created_index,
                updated_index: s.updated,
                reason,
            }),
            Proposal::ChannelOpened(c) => Event::ChannelOpened(c),
            Proposal::ChannelUpdated(c) => Event::ChannelUpdated(c),
            Proposal::ChannelClosed(k) => Event::ChannelClosed(k),
        }
    }
}
