//! The events of the log: every state change of invoiced, with everything decided when it
//! happened.
//!
//! # Invariants
//! [`Event`] is append-only: variants are never reordered or removed, because bincode writes the
//! variant index as the tag. A changed shape gets a new variant (or a new codec version with a
//! typed upcast); old logs stay readable forever.

use serde::{Deserialize, Serialize};

use crate::channel::{ChannelInfo, ChannelKey};
use crate::ids::{hex32, hex32_opt, CreatedIndex, DeletedIndex, NodeId, PayIndex, PaymentHash};
use crate::ids::{PaymentSecret, UpdatedIndex};
use crate::{Hash32, Label, Msat, PaymentAmountError, ShortChannelId};

/// One state change.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Event {
    /// An invoice was created (tag 0).
    InvoiceCreated(InvoiceCreated),
    /// The node reported a channel we did not know (tag 1).
    ChannelOpened(ChannelInfo),
    /// A known channel changed (tag 2).
    ChannelUpdated(ChannelInfo),
    /// A known channel is gone from the node's list (tag 3).
    ChannelClosed(ChannelKey),
    /// An unpaid invoice was paid (tag 4).
    InvoicePaid(InvoicePaid),
    /// An unpaid invoice reached its expiry (tag 5).
    InvoiceExpired(InvoiceExpired),
    /// An invoice was deleted (tag 6).
    InvoiceDeleted(InvoiceDeleted),
    /// An invoice's description was removed (tag 7).
    DescriptionRemoved(DescriptionRemoved),
    /// An old paid or expired invoice was cleaned by retention (tag 8; codec version 2).
    InvoiceCleaned(InvoiceCleaned),
    /// A hold invoice was created: its payments are held until settled or canceled (tag 9;
    /// codec version 3).
    HoldInvoiceCreated(InvoiceCreated),
    /// A hold invoice's parts reached its amount and are held (tag 10; codec version 3).
    HoldAccepted(HoldAccepted),
    /// A held payment was settled with the preimage (tag 11; codec version 3).
    HoldSettled(HoldSettled),
    /// A hold invoice was canceled: held parts are failed, no payment is taken (tag 12; codec
    /// version 3).
    HoldCanceled(HoldCanceled),
    /// A BOLT12 invoice issued for an `invoice_request` of one of the node's offers (format
    /// version 4).
    Bolt12InvoiceCreated(Bolt12Created),
    /// An invoice paid by the HTLCs the node received, recorded with them (format version 4):
    /// a replayed HTLC is resolved again exactly when it is one of these.
    HtlcsPaid(HtlcsPaid),
    /// An invoice, plain or hold, whose `h` field is a hash its creator gave (format version 5).
    HashedInvoiceCreated(HashedCreated),
}

impl Event {
    /// A short name of the event kind, as shown by the offline tools.
    pub fn kind(&self) -> &'static str {
        match self {
            Event::InvoiceCreated(_) => "invoice_created",
            Event::ChannelOpened(_) => "channel_opened",
            Event::ChannelUpdated(_) => "channel_updated",
            Event::ChannelClosed(_) => "channel_closed",
            Event::InvoicePaid(_) => "invoice_paid",
            Event::InvoiceExpired(_) => "invoice_expired",
            Event::InvoiceDeleted(_) => "invoice_deleted",
            Event::DescriptionRemoved(_) => "description_removed",
            Event::InvoiceCleaned(_) => "invoice_cleaned",
            Event::HoldInvoiceCreated(_) => "hold_invoice_created",
            Event::HoldAccepted(_) => "hold_accepted",
            Event::HoldSettled(_) => "hold_settled",
            Event::HoldCanceled(_) => "hold_canceled",
            Event::Bolt12InvoiceCreated(_) => "bolt12_invoice_created",
            Event::HtlcsPaid(_) => "htlcs_paid",
            Event::HashedInvoiceCreated(_) => "hashed_invoice_created",
        }
    }

    /// The creation an event records, plain or hold.
    pub fn created(&self) -> Option<&InvoiceCreated> {
        match self {
            Event::InvoiceCreated(c) | Event::HoldInvoiceCreated(c) => Some(c),
            Event::Bolt12InvoiceCreated(b) => Some(&b.invoice),
            Event::HashedInvoiceCreated(h) => Some(&h.invoice),
            _ => None,
        }
    }

    /// The description hash a creation event records as given (see [`HashedCreated`]).
    pub fn given_description_hash(&self) -> Option<Hash32> {
        match self {
            Event::HashedInvoiceCreated(h) => Some(h.description_hash),
            _ => None,
        }
    }

    /// The `created_index` of the invoice an event concerns (`None` for a channel event).
    pub fn invoice_index(&self) -> Option<CreatedIndex> {
        match self {
            Event::InvoiceCreated(c) | Event::HoldInvoiceCreated(c) => Some(c.created_index),
            Event::Bolt12InvoiceCreated(b) => Some(b.invoice.created_index),
            Event::HashedInvoiceCreated(h) => Some(h.invoice.created_index),
            Event::InvoicePaid(p) | Event::HtlcsPaid(HtlcsPaid { paid: p, .. }) => {
                Some(p.created_index)
            }
            Event::InvoiceExpired(e) => Some(e.created_index),
            Event::InvoiceDeleted(d) => Some(d.created_index),
            Event::InvoiceCleaned(c) => Some(c.created_index),
            Event::DescriptionRemoved(d) => Some(d.created_index),
            Event::HoldAccepted(a) => Some(a.created_index),
            Event::HoldSettled(s) => Some(s.created_index),
            Event::HoldCanceled(c) => Some(c.created_index),
            Event::ChannelOpened(_) | Event::ChannelUpdated(_) | Event::ChannelClosed(_) => None,
        }
    }

    /// Its fields as people read them (the JSON of `invoiced events` and of webhooks): hashes and
    /// node ids in hex, scids as `BxTxO`, amounts and counters as numbers.
    pub fn fields_json(&self) -> serde_json::Value {
        // An externally tagged variant: `{"Kind": fields}`; the kind is `kind()`'s to name.
        match serde_json::to_value(self) {
            Ok(serde_json::Value::Object(m)) => m
                .into_iter()
                .next()
                .map_or(serde_json::Value::Null, |(_, v)| v),
            Ok(v) => v,
            Err(_) => serde_json::Value::Null,
        }
    }

    /// The codec version that introduced this kind of event: its records are written with it
    /// as both version and oldest reader, so an older invoiced stops at them with a clear error
    /// instead of failing to decode (and the records of older kinds stay byte for byte).
    pub fn format_version(&self) -> u8 {
        match self {
            Event::InvoiceCleaned(_) => 2,
            Event::HoldInvoiceCreated(_)
            | Event::HoldAccepted(_)
            | Event::HoldSettled(_)
            | Event::HoldCanceled(_) => 3,
            Event::Bolt12InvoiceCreated(_) | Event::HtlcsPaid(_) => 4,
            Event::HashedInvoiceCreated(_) => 5,
            _ => 1,
        }
    }
}

/// How the preimage of an invoice can be recovered by the key holder, without the log ever
/// holding it in plaintext.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum PreimageSeal {
    /// Generated: the preimage is HMAC(preimage key, nonce), the key derived from `hsm_secret`.
    Derived {
        /// Per-invoice random value.
        #[serde(with = "hex32")]
        nonce: Hash32,
    },
    /// Supplied by the caller: `ciphertext` = preimage XOR HMAC(seal key, nonce).
    Sealed {
        /// Per-invoice random value.
        #[serde(with = "hex32")]
        nonce: Hash32,
        /// The encrypted preimage.
        #[serde(with = "hex32")]
        ciphertext: Hash32,
    },
    /// Withheld: a hold invoice made from a payment hash alone. The preimage is not known until
    /// the caller settles; the settle's event then carries it sealed ([`HoldSettled::revealed`]).
    Withheld,
}

impl core::fmt::Debug for PreimageSeal {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            PreimageSeal::Derived { .. } => f.write_str("PreimageSeal::Derived(..)"),
            PreimageSeal::Sealed { .. } => f.write_str("PreimageSeal::Sealed(..)"),
            PreimageSeal::Withheld => f.write_str("PreimageSeal::Withheld"),
        }
    }
}

/// One hop of a route hint (the peer's policy towards us).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RouteHintHop {
    /// The peer's node id.
    pub node_id: NodeId,
    /// The scid written into the hint.
    pub short_channel_id: ShortChannelId,
    /// Peer's base fee, msat.
    pub fee_base_msat: u32,
    /// Peer's proportional fee, millionths.
    pub fee_proportional_millionths: u32,
    /// Peer's CLTV delta.
    pub cltv_expiry_delta: u16,
}

/// A warning returned with a created invoice (Core Lightning's `warning_*` fields).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Warning {
    /// `warning_capacity`.
    Capacity,
    /// `warning_offline`.
    Offline,
    /// `warning_deadends`.
    Deadends,
    /// `warning_private_unused`.
    PrivateUnused,
    /// `warning_mpp`.
    Mpp,
}

impl Warning {
    /// The result field name.
    pub fn field(self) -> &'static str {
        match self {
            Warning::Capacity => "warning_capacity",
            Warning::Offline => "warning_offline",
            Warning::Deadends => "warning_deadends",
            Warning::PrivateUnused => "warning_private_unused",
            Warning::Mpp => "warning_mpp",
        }
    }

    /// Core Lightning's text for it.
    pub fn text(self) -> &'static str {
        match self {
            Warning::Capacity => "Insufficient incoming channel capacity to pay invoice",
            Warning::Offline => "Insufficient incoming capacity, once offline peers were excluded",
            Warning::Deadends => "Insufficient incoming capacity, once dead-end peers were excluded",
            Warning::PrivateUnused => "Insufficient incoming capacity, once private channels were excluded (try exposeprivatechannels=true?)",
            Warning::Mpp => "The invoice is only payable by MPP-capable payers.",
        }
    }

    /// The order Core Lightning emits them in.
    pub const EMIT_ORDER: [Warning; 5] = [
        Warning::Mpp,
        Warning::Capacity,
        Warning::Deadends,
        Warning::Offline,
        Warning::PrivateUnused,
    ];
}

/// An invoice was created: everything needed to list it, settle it and audit it, including the
/// exact BOLT11 string, so replay never re-signs or re-encodes.
///
/// The codec writes a nested struct as its fields, so this record is byte for byte what it was
/// when the body's fields sat here; formats for people show them beside `created_index` too.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InvoiceCreated {
    /// 1-based creation counter, stamped in commit order; never reused.
    pub created_index: CreatedIndex,
    /// The invoice.
    pub body: InvoiceBody,
}

/// [`InvoiceCreated`] as the codec writes it.
#[derive(Serialize, Deserialize)]
struct CreatedNested<B> {
    created_index: CreatedIndex,
    body: B,
}

/// [`InvoiceCreated`] as people read it: one object.
#[derive(Serialize, Deserialize)]
struct CreatedFlat<B> {
    created_index: CreatedIndex,
    #[serde(flatten)]
    body: B,
}

impl Serialize for InvoiceCreated {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let (created_index, body) = (self.created_index, &self.body);
        if s.is_human_readable() {
            CreatedFlat {
                created_index,
                body,
            }
            .serialize(s)
        } else {
            CreatedNested {
                created_index,
                body,
            }
            .serialize(s)
        }
    }
}

impl<'de> Deserialize<'de> for InvoiceCreated {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let (created_index, body) = if d.is_human_readable() {
            let c = CreatedFlat::<InvoiceBody>::deserialize(d)?;
            (c.created_index, c.body)
        } else {
            let c = CreatedNested::<InvoiceBody>::deserialize(d)?;
            (c.created_index, c.body)
        };
        Ok(InvoiceCreated {
            created_index,
            body,
        })
    }
}

/// An invoice as its creator makes it: everything but the counter the log stamps.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InvoiceBody {
    /// The caller's label.
    pub label: Label,
    /// The signed BOLT11 string.
    pub bolt11: String,
    /// SHA256 of the preimage.
    pub payment_hash: PaymentHash,
    /// The payment secret (`s` field).
    pub payment_secret: PaymentSecret,
    /// How the key holder recovers the preimage.
    pub preimage: PreimageSeal,
    /// The amount asked for; `None` for `any`.
    pub amount_msat: Option<Msat>,
    /// The full description (also with `deschashonly`).
    pub description: String,
    /// Whether only the description's hash is in the invoice.
    pub deschashonly: bool,
    /// The invoice timestamp, UNIX seconds.
    pub created_at: u64,
    /// Relative expiry, seconds.
    pub expiry: u64,
    /// `created_at + expiry`.
    pub expires_at: u64,
    /// `min_final_cltv_expiry` written in the `c` field.
    pub cltv: u32,
    /// The fallback addresses, as given.
    pub fallbacks: Vec<String>,
    /// The route hints chosen, one hop each.
    pub route_hints: Vec<RouteHintHop>,
    /// The warnings returned to the caller.
    pub warnings: Vec<Warning>,
}

impl InvoiceBody {
    /// Whether `got` pays this invoice: the one amount rule ([`Msat::pays`]).
    ///
    /// # Errors
    /// [`PaymentAmountError`] saying which bound `got` breaks.
    pub fn check_payment(&self, got: Msat) -> Result<(), PaymentAmountError> {
        got.pays(self.amount_msat)
    }
}

/// A BOLT12 invoice as issued: the same fields as any invoice, with the signed `lni1…` string in
/// `bolt11`, the `path_id` of its blinded path (what the payer's onion carries back) as
/// `payment_secret`, the offer's description, and its blinded path's `cltv_expiry_delta` as `cltv`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Bolt12Created {
    /// The invoice.
    pub invoice: InvoiceCreated,
    /// The node's own offer it answers (Core Lightning's `local_offer_id`); `None` when the offer
    /// is not one the node has.
    #[serde(with = "hex32_opt")]
    pub local_offer_id: Option<Hash32>,
}

/// An invoice whose `h` field holds a hash its creator gave, with no text of it known (LND's
/// `description_hash` without its text): the body's `description` is a note beside it (LND's
/// `memo`, possibly empty) and `deschashonly` is true. A hash of the note itself is recorded as
/// an ordinary `deschashonly` invoice instead.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HashedCreated {
    /// The invoice.
    pub invoice: InvoiceCreated,
    /// A hold invoice (else a plain one).
    pub hold: bool,
    /// The hash in its `h` field.
    #[serde(with = "hex32")]
    pub description_hash: Hash32,
}

/// An invoice was paid. `pay_index` and `updated_index` are stamped in commit order.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InvoicePaid {
    /// The invoice.
    pub created_index: CreatedIndex,
    /// 1-based payment counter.
    pub pay_index: PayIndex,
    /// The shared update counter's new value.
    pub updated_index: UpdatedIndex,
    /// What arrived.
    pub amount_received_msat: Msat,
    /// When, UNIX seconds.
    pub paid_at: u64,
}

/// An invoice paid, with the HTLCs that paid it (each `scid/id` once).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HtlcsPaid {
    /// The payment, as [`InvoicePaid`] records one.
    pub paid: InvoicePaid,
    /// The HTLCs, as the node reported them.
    pub parts: Vec<HeldPart>,
}

impl Event {
    /// The payment of an [`Event::InvoicePaid`] or [`Event::HtlcsPaid`], with its parts (none
    /// for the former).
    pub fn paid(&self) -> Option<(&InvoicePaid, &[HeldPart])> {
        match self {
            Event::InvoicePaid(p) => Some((p, &[])),
            Event::HtlcsPaid(h) => Some((&h.paid, &h.parts)),
            _ => None,
        }
    }
}

/// An unpaid invoice expired. `updated_index` is stamped in commit order.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InvoiceExpired {
    /// The invoice.
    pub created_index: CreatedIndex,
    /// The shared update counter's new value.
    pub updated_index: UpdatedIndex,
}

/// An invoice was deleted while it had `status`. `deleted_index` is stamped in commit order.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InvoiceDeleted {
    /// The invoice.
    pub created_index: CreatedIndex,
    /// 1-based deletion counter.
    pub deleted_index: DeletedIndex,
    /// Its status when deleted (the commit is refused if it changed).
    pub status: InvoiceStatus,
}

/// An invoice's description was removed (`delinvoice … desconly`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DescriptionRemoved {
    /// The invoice.
    pub created_index: CreatedIndex,
    /// The shared update counter's new value.
    pub updated_index: UpdatedIndex,
}

/// An old invoice cleaned by retention (`autoclean`): it leaves the listings like a deleted one
/// (and takes a `deleted_index`, as Core Lightning's autoclean deletes), its payment hash stays
/// used, and the record says by which rule, so an audit can check that it was old enough.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InvoiceCleaned {
    /// The invoice.
    pub created_index: CreatedIndex,
    /// 1-based deletion counter.
    pub deleted_index: DeletedIndex,
    /// Its status: `Paid` or `Expired`.
    pub status: InvoiceStatus,
    /// The rule: at least this many seconds since it was paid (`paid_at`) or expired
    /// (`expires_at`)…
    pub age_s: u64,
    /// …at this time, UNIX seconds.
    pub now_s: u64,
}

/// One HTLC of a held payment.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeldPart {
    /// Which HTLC: `short_channel_id/id`, stable across the node's replays.
    pub htlc: String,
    /// What it carries.
    pub amount_msat: Msat,
    /// Its absolute CLTV expiry (block height).
    pub cltv_expiry: u32,
}

/// A hold invoice's parts reached its amount: they are held, the invoice is `ACCEPTED`.
/// `updated_index` is stamped in commit order.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HoldAccepted {
    /// The invoice.
    pub created_index: CreatedIndex,
    /// The shared update counter's new value.
    pub updated_index: UpdatedIndex,
    /// The parts held.
    pub parts: Vec<HeldPart>,
    /// The node's block height when they were accepted.
    pub height: u32,
}

impl HoldAccepted {
    /// The earliest CLTV expiry of the parts (what the automatic cancel guards).
    pub fn htlc_expiry(&self) -> Option<u32> {
        earliest_expiry(&self.parts)
    }
}

/// The highest block height there can be: BOLT 2 refuses an HTLC whose `cltv_expiry` is
/// 500,000,000 or more (from there Bitcoin's lock times count seconds, not blocks), so no
/// height a node reports, and no part's expiry, can reach it.
pub const MAX_BLOCK_HEIGHT: u32 = 499_999_999;

/// `parts` with each HTLC once: listed again with the same amount and expiry it is the same
/// part; listed again differently, the list cannot be true and is refused (`Err` names the HTLC).
///
/// # Errors
/// The id of an HTLC listed twice with different amounts or expiries.
pub fn distinct_parts(parts: Vec<HeldPart>) -> Result<Vec<HeldPart>, String> {
    let mut first: std::collections::HashMap<String, usize> =
        std::collections::HashMap::with_capacity(parts.len());
    let mut out: Vec<HeldPart> = Vec::with_capacity(parts.len());
    for p in parts {
        match first.get(&p.htlc) {
            Some(&i) if out[i] == p => {}
            Some(_) => return Err(p.htlc),
            None => {
                first.insert(p.htlc.clone(), out.len());
                out.push(p);
            }
        }
    }
    Ok(out)
}

/// The earliest CLTV expiry of some held parts.
pub fn earliest_expiry(parts: &[HeldPart]) -> Option<u32> {
    parts.iter().map(|p| p.cltv_expiry).min()
}

/// A held payment was settled: the hold invoice is paid (`pay_index`, `updated_index`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HoldSettled {
    /// The invoice.
    pub created_index: CreatedIndex,
    /// 1-based payment counter.
    pub pay_index: PayIndex,
    /// The shared update counter's new value.
    pub updated_index: UpdatedIndex,
    /// What the held parts carry.
    pub amount_received_msat: Msat,
    /// When, UNIX seconds.
    pub paid_at: u64,
    /// For an invoice made from its hash alone, the preimage the caller revealed, sealed
    /// ([`PreimageSeal::Sealed`]); `None` when the creation's seal holds it.
    pub revealed: Option<PreimageSeal>,
}

/// Why a hold invoice was canceled.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum CancelReason {
    /// `holdinvoicecancel`.
    Requested,
    /// Automatically: at block `height` its earliest held part was within `blocks_before`
    /// blocks of its CLTV expiry, and neither settle nor cancel had come.
    HtlcExpiry {
        /// The node's block height.
        height: u32,
        /// The safety margin in force, blocks.
        blocks_before: u32,
    },
}

/// A hold invoice was canceled. `updated_index` is stamped in commit order.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HoldCanceled {
    /// The invoice.
    pub created_index: CreatedIndex,
    /// The shared update counter's new value.
    pub updated_index: UpdatedIndex,
    /// By whom, or by which rule.
    pub reason: CancelReason,
}

/// Where a hold invoice is: holdinvoice 5.x's `Holdstate`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum HoldState {
    /// Waiting for parts that reach its amount.
    Open,
    /// Parts that reach its amount are held.
    Accepted,
    /// Settled with the preimage: paid.
    Settled,
    /// Canceled (or expired while open): no payment will be taken.
    Canceled,
}

impl HoldState {
    /// The name holdinvoice uses (upper case).
    pub fn as_str(self) -> &'static str {
        match self {
            HoldState::Open => "OPEN",
            HoldState::Accepted => "ACCEPTED",
            HoldState::Settled => "SETTLED",
            HoldState::Canceled => "CANCELED",
        }
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
