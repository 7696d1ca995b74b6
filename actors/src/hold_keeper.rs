//! HoldKeeper: the transitions of hold invoices — accept, settle, cancel — and the safety
//! cancel by block height.
//!
//! A hold invoice is `OPEN` until parts that reach its amount arrive: the node's side
//! ([`AcceptHold`], from the plugin's `htlc_accepted` or any node without it) makes it
//! `ACCEPTED`, and the parts stay held. The caller then settles it with the preimage
//! ([`SettleHold`]: `SETTLED`, paid) or cancels it ([`CancelHold`]: `CANCELED`, the parts fail).
//! Every transition is an event made durable before the answer; the writer's admission re-checks
//! it at commit, so a settle racing a cancel is decided once, in commit order.
//!
//! The keeper also knows the node's block height ([`BlockHeight`], from the channel feed, and
//! the height each `holdaccept` reports) and every `ACCEPTED` invoice's earliest held CLTV
//! expiry, learnt from the committed batches: an `ACCEPTED` invoice neither settled nor canceled
//! by `cancel_before` blocks before that expiry is canceled automatically, so a forgotten hold
//! never ends in a force-close. The rule is recorded in the event, and the fold checks it. The
//! height is the node's latest report, lower too (a reorg); a part that would be canceled at once
//! (its expiry at or within the margin of the height) is refused instead, and the invoice stays
//! `OPEN` for a payer who gives it time.
//!
//! Each HTLC counts once: a part listed twice (the same `scid/id`) is one part, so the parts
//! held are the parts paid.

use std::collections::{BTreeSet, HashSet};
use std::sync::Arc;

use actix::prelude::*;
use invoiced_events::{
    CancelReason, CreatedIndex, Event, HeldPart, HoldState, InvoiceRecord, Msat, PaymentHash,
    PaymentPreimage, PaymentSecret, PreimageSeal, Proposal, Rejection,
};

use crate::clock::Clock;
use crate::key_signer::SealPreimage;
use crate::store::{AppendError, InvoiceReader, LogHandle, Observe, StoreError};

/// Why a hold operation was refused. Nothing changed.
#[derive(Debug, thiserror::Error)]
pub enum HoldError {
    /// No hold invoice has this payment hash (holdinvoice's words).
    #[error("payment_hash `{}` not found", hex::encode(.0))]
    NotFound(PaymentHash),
    /// The invoice's state does not allow it (holdinvoice's words).
    #[error("Holdinvoice is in wrong state: `{}`", .0.as_str())]
    WrongState(HoldState),
    /// The preimage does not hash to the payment hash.
    #[error("payment_hash: `{}` does not match preimage: `{}`", hex::encode(.hash), hex::encode(.preimage))]
    PreimageMismatch {
        /// The invoice's hash.
        hash: PaymentHash,
        /// The preimage given.
        preimage: PaymentPreimage,
    },
    /// Made from its hash alone: the settle must give the preimage.
    #[error("preimage: required, the hold invoice was created from its payment_hash alone")]
    PreimageRequired,
    /// A part's payment secret is not the invoice's.
    #[error("payment_secret: does not match the invoice's payment secret")]
    WrongSecret,
    /// The parts do not reach the amount, or exceed twice it.
    #[error("parts: {got} does not pay the invoice's {want} (at least it, at most twice it)")]
    Amount {
        /// What the parts carry.
        got: Msat,
        /// What the invoice asks.
        want: Msat,
    },
    /// Parts for an invoice past its expiry.
    #[error("payment_hash: the hold invoice expired")]
    Expired,
    /// One HTLC listed twice, with different amounts or expiries.
    #[error("parts: HTLC {0} is listed twice with different amounts or expiries")]
    ConflictingPart(String),
    /// A part that would be canceled as soon as it was held.
    #[error(
        "parts: HTLC {htlc} expires at block {cltv_expiry}, not more than {margin} blocks after the node's height {height}: too late to hold"
    )]
    ExpiresTooSoon {
        /// The part.
        htlc: String,
        /// Its CLTV expiry.
        cltv_expiry: u32,
        /// The node's height.
        height: u32,
        /// The keeper's cancel margin.
        margin: u32,
    },
    /// No parts.
    #[error("parts: at least one part is needed")]
    NoParts,
    /// The log could not record it.
    #[error(transparent)]
    Store(AppendError),
    /// An actor or the projection is unavailable.
    #[error("internal: {0}")]
    Internal(String),
}

impl From<StoreError> for HoldError {
    fn from(e: StoreError) -> Self {
        HoldError::Internal(e.to_string())
    }
}

impl From<MailboxError> for HoldError {
    fn from(e: MailboxError) -> Self {
        HoldError::Internal(e.to_string())
    }
}

/// Options of the keeper.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HoldConfig {
    /// Cancel an `ACCEPTED` invoice this many blocks before its earliest part's CLTV expiry.
    pub cancel_before_blocks: u32,
}

impl Default for HoldConfig {
    /// holdinvoice's default: 6 blocks.
    fn default() -> Self {
        HoldConfig {
            cancel_before_blocks: 6,
        }
    }
}

/// The keeper.
pub struct HoldKeeper {
    invoices: InvoiceReader,
    log: LogHandle,
    /// The KeySigner, as the one message the keeper sends it (a mock in unit tests).
    sealer: Recipient<SealPreimage>,
    clock: Arc<dyn Clock>,
    config: HoldConfig,
    /// The node's block height (0 until the feed says).
    height: u32,
    /// `ACCEPTED` invoices by (earliest held CLTV expiry, created_index).
    accepted: BTreeSet<(u32, CreatedIndex)>,
}

impl HoldKeeper {
    /// A keeper over the live projection; it watches the committed batches.
    pub fn new(
        invoices: InvoiceReader,
        log: LogHandle,
        sealer: Recipient<SealPreimage>,
        clock: Arc<dyn Clock>,
        config: HoldConfig,
    ) -> Self {
        let accepted = invoices
            .pick(|s| {
                s.invoices
                    .from_created_index(CreatedIndex::default())
                    .filter_map(|e| Some((e.hold.as_ref()?.htlc_expiry()?, e.created_index)))
                    .collect()
            })
            .unwrap_or_default();
        HoldKeeper {
            invoices,
            log,
            sealer,
            clock,
            config,
            height: 0,
            accepted,
        }
    }

    /// Appends a cancel for every `ACCEPTED` invoice whose earliest part is within the margin.
    fn cancel_due(&mut self, ctx: &mut Context<Self>) {
        if self.height == 0 {
            return;
        }
        let blocks_before = self.config.cancel_before_blocks;
        let limit = self.height.saturating_add(blocks_before);
        let due: Vec<(u32, CreatedIndex)> = self
            .accepted
            .range(..=(limit, CreatedIndex(u64::MAX)))
            .copied()
            .collect();
        for key in due {
            self.accepted.remove(&key);
            let (log, height) = (self.log.clone(), self.height);
            let cancel = Proposal::HoldCanceled {
                created_index: key.1,
                reason: CancelReason::HtlcExpiry {
                    height,
                    blocks_before,
                },
            };
            let append =
                actix::fut::wrap_future::<_, Self>(async move { log.append(cancel).await });
            ctx.spawn(append.map(move |outcome, act, _| match outcome {
                Ok(_) => tracing::warn!(
                    "hold invoice {} canceled at block {height}: its earliest held part expires at block {}",
                    key.1,
                    key.0
                ),
                // Settled or canceled first: nothing to do.
                Err(AppendError::Rejected(_)) => {}
                // A standby: the primary cancels; should this one be promoted, the next block does.
                Err(AppendError::Standby) => {
                    act.accepted.insert(key);
                }
                Err(e) => tracing::error!("cannot record the automatic cancel of hold invoice {}: {e}", key.1),
            }));
        }
    }

    /// Takes the node's report of its height (the truth, lower too after a reorg); a rise may
    /// bring accepted invoices within the cancel margin.
    fn saw_height(&mut self, height: u32, ctx: &mut Context<Self>) {
        let rose = height > self.height;
        self.height = height;
        if rose {
            self.cancel_due(ctx);
        }
    }

    /// The hold invoice with this hash, whole.
    fn find(&self, hash: &PaymentHash) -> Result<InvoiceRecord, HoldError> {
        let entry = self.invoices.pick(|s| {
            s.invoices
                .by_hash(hash)
                .filter(|e| e.hold.is_some())
                .cloned()
        })?;
        Ok(self
            .invoices
            .invoice(entry.ok_or(HoldError::NotFound(*hash))?)?)
    }
}

impl Actor for HoldKeeper {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        self.log.forward_to::<Observe>(ctx.address().recipient());
    }
}

impl Handler<Observe> for HoldKeeper {
    type Result = ();
    fn handle(&mut self, Observe(batch): Observe, ctx: &mut Context<Self>) {
        let mut new = false;
        for c in batch.iter() {
            match &c.record.event {
                Event::HoldAccepted(a) => {
                    if let Some(expiry) = a.htlc_expiry() {
                        self.accepted.insert((expiry, a.created_index));
                        new = true;
                    }
                }
                Event::HoldSettled(_)
                | Event::HoldCanceled(_)
                | Event::InvoiceDeleted(_)
                | Event::InvoiceCleaned(_) => {
                    if let Some(idx) = c.record.event.invoice_index() {
                        self.accepted.retain(|&(_, i)| i != idx);
                    }
                }
                _ => {}
            }
        }
        if new {
            self.cancel_due(ctx);
        }
    }
}

/// The node's block height (from the channel feed).
#[derive(Message)]
#[rtype(result = "()")]
pub struct BlockHeight(pub u32);

impl Handler<BlockHeight> for HoldKeeper {
    type Result = ();
    fn handle(&mut self, BlockHeight(h): BlockHeight, ctx: &mut Context<Self>) {
        self.saw_height(h, ctx);
    }
}

/// Command: parts that reach a hold invoice's amount are held (the node's side).
#[derive(Message)]
#[rtype(result = "Result<InvoiceRecord, HoldError>")]
pub struct AcceptHold {
    /// The invoice's payment hash.
    pub payment_hash: PaymentHash,
    /// The secret the payer sent.
    pub payment_secret: PaymentSecret,
    /// The parts.
    pub parts: Vec<HeldPart>,
    /// The node's block height.
    pub height: u32,
}

impl Handler<AcceptHold> for HoldKeeper {
    type Result = ResponseFuture<Result<InvoiceRecord, HoldError>>;

    fn handle(&mut self, msg: AcceptHold, ctx: &mut Context<Self>) -> Self::Result {
        self.saw_height(msg.height, ctx);
        let now = self.clock.now_secs();
        let margin = self.config.cancel_before_blocks;
        let checked = (|| {
            let parts =
                invoiced_events::distinct_parts(msg.parts).map_err(HoldError::ConflictingPart)?;
            let rec = self.find(&msg.payment_hash)?;
            let Some(hold) = &rec.hold else {
                return Err(HoldError::NotFound(msg.payment_hash));
            };
            if msg.payment_secret != rec.created.body.payment_secret {
                return Err(HoldError::WrongSecret);
            }
            // lightningd replays undecided HTLCs after a restart: the parts it held already
            // are accepted again without a new event; any other part is refused.
            let held: HashSet<&str> = hold.parts.iter().map(|p| p.htlc.as_str()).collect();
            let replayed = parts.iter().all(|p| held.contains(p.htlc.as_str()));
            match hold.state {
                HoldState::Accepted | HoldState::Settled if replayed => return Ok(Err(rec)),
                HoldState::Open => {}
                other => return Err(HoldError::WrongState(other)),
            }
            if parts.is_empty() {
                return Err(HoldError::NoParts);
            }
            if now >= rec.created.body.expires_at {
                return Err(HoldError::Expired);
            }
            if let Some(p) = parts
                .iter()
                .find(|p| p.cltv_expiry <= msg.height.saturating_add(margin))
            {
                return Err(HoldError::ExpiresTooSoon {
                    htlc: p.htlc.clone(),
                    cltv_expiry: p.cltv_expiry,
                    height: msg.height,
                    margin,
                });
            }
            let got = parts.iter().map(|p| p.amount_msat).sum::<Msat>();
            rec.created
                .body
                .check_payment(got)
                .map_err(|_| HoldError::Amount {
                    got,
                    want: rec.created.body.amount_msat.unwrap_or_default(),
                })?;
            Ok(Ok((rec, parts)))
        })();
        let log = self.log.clone();
        Box::pin(async move {
            let (rec, parts) = match checked? {
                Ok(accepted) => accepted,
                Err(already) => return Ok(already),
            };
            let accept = Proposal::HoldAccepted {
                created_index: rec.created.created_index,
                parts,
                height: msg.height,
            };
            committed_invoice(log.append(accept).await)
        })
    }
}

/// Command: `holdinvoicesettle`: settle an `ACCEPTED` hold invoice with its preimage.
#[derive(Message)]
#[rtype(result = "Result<InvoiceRecord, HoldError>")]
pub struct SettleHold {
    /// Its payment hash.
    pub payment_hash: PaymentHash,
    /// The preimage, if given (required when the invoice was made from its hash alone).
    pub preimage: Option<PaymentPreimage>,
}

impl Handler<SettleHold> for HoldKeeper {
    type Result = ResponseFuture<Result<InvoiceRecord, HoldError>>;

    fn handle(&mut self, msg: SettleHold, _: &mut Context<Self>) -> Self::Result {
        let now = self.clock.now_secs();
        let checked = (|| {
            let hash = msg.payment_hash;
            if let Some(p) = msg.preimage.filter(|p| PaymentHash::of(p) != hash) {
                return Err(HoldError::PreimageMismatch { hash, preimage: p });
            }
            let rec = self.find(&hash)?;
            let state = rec.hold.as_ref().map_or(HoldState::Canceled, |h| h.state);
            if state != HoldState::Accepted {
                return Err(HoldError::WrongState(state));
            }
            let withheld = rec.created.body.preimage == PreimageSeal::Withheld;
            let reveal = match (withheld, msg.preimage) {
                (true, None) => return Err(HoldError::PreimageRequired),
                (true, Some(p)) => Some(p),
                (false, _) => None,
            };
            Ok((rec, reveal))
        })();
        let (log, sealer) = (self.log.clone(), self.sealer.clone());
        Box::pin(async move {
            let (rec, reveal) = checked?;
            let revealed = match reveal {
                Some(p) => Some(sealer.send(SealPreimage(p)).await?),
                None => None,
            };
            let parts = rec
                .hold
                .as_ref()
                .map(|h| h.parts.as_slice())
                .unwrap_or_default();
            let amount_received_msat = parts.iter().map(|p| p.amount_msat).sum::<Msat>();
            let settle = Proposal::HoldSettled {
                created_index: rec.created.created_index,
                amount_received_msat,
                paid_at: now,
                revealed,
            };
            committed_invoice(log.append(settle).await)
        })
    }
}

/// Command: `holdinvoicecancel`: cancel an `OPEN` or `ACCEPTED` hold invoice.
#[derive(Message)]
#[rtype(result = "Result<InvoiceRecord, HoldError>")]
pub struct CancelHold {
    /// Its payment hash.
    pub payment_hash: PaymentHash,
}

impl Handler<CancelHold> for HoldKeeper {
    type Result = ResponseFuture<Result<InvoiceRecord, HoldError>>;

    fn handle(&mut self, msg: CancelHold, _: &mut Context<Self>) -> Self::Result {
        let checked =
            self.find(&msg.payment_hash)
                .and_then(|rec| match rec.hold.as_ref().map(|h| h.state) {
                    Some(HoldState::Open | HoldState::Accepted) => Ok(rec),
                    state => Err(HoldError::WrongState(state.unwrap_or(HoldState::Canceled))),
                });
        let log = self.log.clone();
        Box::pin(async move {
            let rec = checked?;
            let cancel = Proposal::HoldCanceled {
                created_index: rec.created.created_index,
                reason: CancelReason::Requested,
            };
            committed_invoice(log.append(cancel).await)
        })
    }
}

/// The invoice after a committed hold transition; a refusal at commit (a race lost to another
/// transition in the same batch) is reported in holdinvoice's words.
fn committed_invoice(
    appended: Result<std::sync::Arc<crate::store::Committed>, AppendError>,
) -> Result<InvoiceRecord, HoldError> {
    match appended {
        Ok(c) => std::sync::Arc::unwrap_or_clone(c)
            .invoice
            .ok_or_else(|| HoldError::Internal("no invoice in commit".into())),
        Err(AppendError::Rejected(Rejection::HoldState(s))) => Err(HoldError::WrongState(s)),
        Err(AppendError::Rejected(Rejection::UnknownInvoice(_) | Rejection::Conflict(_))) => {
            Err(HoldError::Internal(
                "the invoice changed while this request was being committed; look it up again"
                    .into(),
            ))
        }
        Err(e) => Err(HoldError::Store(e)),
    }
}
