//! InvoiceLedger: everything that happens to an invoice after it is created — payment,
//! expiry, deletion, description removal — each as an event.
//!
//! Owns the checks of `settleinvoice` and `delinvoice` and the expiry timer. Checks run against
//! the live projection; the writer's admission re-checks at commit time, so a payment racing an
//! expiry (or a deletion) is decided once, in commit order, and the loser is told what the
//! invoice became. The timer keeps every unpaid invoice by expiry time, learns of new, paid and
//! deleted ones from the committed batches, and on start-up expires at once those whose time
//! passed while the daemon was down.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use invoiced_events::{
    CreatedIndex, Event, HeldPart, HoldState, InvoiceRecord, InvoiceStatus, Label, Msat,
    PaymentAmountError, PaymentHash, PaymentPreimage, PaymentSecret, Proposal, Rejection,
};

use crate::clock::Clock;
use crate::key_signer::RevealPreimages;
use crate::store::{AppendError, InvoiceReader, LogHandle, Observe, StoreError};

/// How soon a standby looks again at the expiries the primary has not recorded yet.
const STANDBY_RETRY: Duration = Duration::from_secs(5);

/// Why a payment was refused. Nothing changed.
#[derive(Debug, thiserror::Error)]
pub enum SettleError {
    /// No invoice has this payment hash.
    #[error("Unknown invoice")]
    UnknownInvoice,
    /// The invoice is paid or expired (also: past its expiry, not yet marked).
    #[error("Invoice status is {} not unpaid", .0.as_str())]
    NotUnpaid(InvoiceStatus),
    /// The payment secret does not match.
    #[error("payment_secret: does not match the invoice's payment secret")]
    WrongSecret,
    /// A hold invoice: its parts are held (`holdaccept`), not settled at once.
    #[error("payment_hash: a hold invoice's payment is accepted with holdaccept and settled with holdinvoicesettle")]
    IsHold,
    /// One HTLC listed twice, with different amounts or expiries.
    #[error("parts: HTLC {0} is listed twice with different amounts or expiries")]
    ConflictingPart(String),
    /// The parts' amounts do not sum to `amount_msat`.
    #[error("parts: they sum to {parts}, not amount_msat {amount}")]
    PartsSum {
        /// Their sum.
        parts: Msat,
        /// `amount_msat`.
        amount: Msat,
    },
    /// Less than the invoice asks.
    #[error("amount_msat: {got} is less than the invoice's {want}")]
    Underpaid {
        /// Offered.
        got: Msat,
        /// Asked.
        want: Msat,
    },
    /// More than twice the invoice's amount (Core Lightning refuses these).
    #[error("amount_msat: {got} is more than twice the invoice's {want}")]
    Overpaid {
        /// Offered.
        got: Msat,
        /// Asked.
        want: Msat,
    },
    /// The log could not record it.
    #[error(transparent)]
    Store(AppendError),
    /// An actor or the projection is unavailable.
    #[error("internal: {0}")]
    Internal(String),
}

/// Why a deletion was refused. Nothing changed.
#[derive(Debug, thiserror::Error)]
pub enum DeleteError {
    /// No invoice has this label (905).
    #[error("Unknown invoice")]
    UnknownInvoice,
    /// The status differs from the one given (906, with both in `data`).
    #[error("Invoice status is {actual} not {expected}")]
    StatusMismatch {
        /// The invoice's status.
        actual: String,
        /// The one given.
        expected: String,
    },
    /// `desconly` on an invoice without description (908).
    #[error("Invoice description already removed")]
    DescriptionAlreadyRemoved,
    /// The log could not record it (-1).
    #[error(transparent)]
    Store(AppendError),
    /// The projection is unavailable (-1).
    #[error("internal: {0}")]
    Internal(String),
}

/// A paid invoice with its preimage.
#[derive(Clone, Debug)]
pub struct Settled {
    /// The invoice after payment.
    pub invoice: InvoiceRecord,
    /// The preimage, now revealed to the payer.
    pub preimage: PaymentPreimage,
}

/// The ledger.
pub struct InvoiceLedger {
    invoices: InvoiceReader,
    log: LogHandle,
    /// The KeySigner, as the one message the ledger sends it (a mock in unit tests).
    signer: Recipient<RevealPreimages>,
    clock: Arc<dyn Clock>,
    /// Unpaid invoices by (expires_at, created_index).
    expiries: BTreeSet<(u64, CreatedIndex)>,
    timer: Option<SpawnHandle>,
}

impl InvoiceLedger {
    /// A ledger over the live projection; it watches `committed` for changes.
    pub fn new(
        invoices: InvoiceReader,
        log: LogHandle,
        signer: Recipient<RevealPreimages>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        let expiries = invoices
            .pick(|s| {
                s.invoices
                    .from_created_index(CreatedIndex::default())
                    // An accepted hold invoice is bound by its parts' CLTV (the HoldKeeper's).
                    .filter(|r| {
                        r.status == InvoiceStatus::Unpaid
                            && r.hold_state() != Some(HoldState::Accepted)
                    })
                    .map(|r| (r.expires_at, r.created_index))
                    .collect()
            })
            .unwrap_or_default();
        InvoiceLedger {
            invoices,
            log,
            signer,
            clock,
            expiries,
            timer: None,
        }
    }

    /// Arms the timer for the earliest unpaid expiry.
    fn schedule(&mut self, ctx: &mut Context<Self>) {
        if let Some(t) = self.timer.take() {
            ctx.cancel_future(t);
        }
        let Some(&(at, _)) = self.expiries.first() else {
            return;
        };
        let delay = (at.saturating_mul(1000)).saturating_sub(self.clock.now_ms());
        self.timer = Some(ctx.run_later(Duration::from_millis(delay), |act, ctx| {
            act.timer = None;
            act.expire_due(ctx);
        }));
    }

    /// Appends an expiry for every unpaid invoice whose time has come.
    fn expire_due(&mut self, ctx: &mut Context<Self>) {
        let now = self.clock.now_secs();
        let due: Vec<(u64, CreatedIndex)> = self
            .expiries
            .range(..(now + 1, CreatedIndex::default()))
            .copied()
            .collect();
        for key in due {
            self.expiries.remove(&key);
            let log = self.log.clone();
            let append = actix::fut::wrap_future::<_, Self>(async move {
                log.append(Proposal::Expired {
                    created_index: key.1,
                })
                .await
            });
            ctx.spawn(append.map(move |outcome, act, ctx| match outcome {
                // A refusal means it was paid or deleted first: nothing to do.
                Ok(_) | Err(AppendError::Rejected(_)) => {}
                // A standby: the primary expires it. Should this one be promoted, it does.
                Err(AppendError::Standby) => {
                    act.expiries.insert(key);
                    if act.timer.is_none() {
                        act.timer = Some(ctx.run_later(STANDBY_RETRY, |act, ctx| {
                            act.timer = None;
                            act.expire_due(ctx);
                        }));
                    }
                }
                Err(e) => tracing::error!("cannot record expiry of invoice {}: {e}", key.1),
            }));
        }
        self.schedule(ctx);
    }
}

impl Actor for InvoiceLedger {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        self.log.forward_to::<Observe>(ctx.address().recipient());
        self.expire_due(ctx);
    }
}

impl Handler<Observe> for InvoiceLedger {
    type Result = ();
    fn handle(&mut self, Observe(batch): Observe, ctx: &mut Context<Self>) {
        let before = self.expiries.first().copied();
        for c in batch.iter() {
            let Some(inv) = &c.invoice else { continue };
            let key = (inv.created.body.expires_at, inv.created.created_index);
            match &c.record.event {
                Event::InvoiceCreated(_)
                | Event::HoldInvoiceCreated(_)
                | Event::HashedInvoiceCreated(_)
                | Event::Bolt12InvoiceCreated(_) => {
                    self.expiries.insert(key);
                }
                // Held parts are bounded by their CLTV, not the invoice's expiry (HoldKeeper).
                Event::InvoicePaid(_)
                | Event::HtlcsPaid(_)
                | Event::InvoiceExpired(_)
                | Event::InvoiceDeleted(_)
                | Event::InvoiceCleaned(_)
                | Event::HoldAccepted(_)
                | Event::HoldSettled(_)
                | Event::HoldCanceled(_) => {
                    self.expiries.remove(&key);
                }
                Event::DescriptionRemoved(_)
                | Event::ChannelOpened(_)
                | Event::ChannelUpdated(_)
                | Event::ChannelClosed(_) => {}
            }
        }
        if self.expiries.first().copied() != before || self.timer.is_none() {
            self.schedule(ctx);
        }
    }
}

/// Command: a payment arrived for `payment_hash`.
#[derive(Message)]
#[rtype(result = "Result<Settled, SettleError>")]
pub struct SettleInvoice {
    /// The invoice's payment hash.
    pub payment_hash: PaymentHash,
    /// What arrived, msat.
    pub amount_msat: Msat,
    /// The secret the payer sent.
    pub payment_secret: PaymentSecret,
    /// The HTLCs that brought it (their amounts sum to `amount_msat`), recorded with the
    /// payment; none for a payment that came no other way (the node paying itself). The same
    /// HTLCs again, once paid, are answered as the payment was: the node replays HTLCs it had
    /// no verdict for.
    pub parts: Vec<HeldPart>,
}

/// What [`InvoiceLedger::check_settle`] found.
enum SettleCheck {
    /// Unpaid, and this payment pays it.
    Pays(InvoiceRecord, Vec<HeldPart>),
    /// Paid already, by these very HTLCs.
    PaidByThese(InvoiceRecord),
}

impl Handler<SettleInvoice> for InvoiceLedger {
    type Result = ResponseFuture<Result<Settled, SettleError>>;

    fn handle(&mut self, msg: SettleInvoice, _: &mut Context<Self>) -> Self::Result {
        let now = self.clock.now_secs();
        let amount_received_msat = msg.amount_msat;
        let checked = self.check_settle(msg, now);
        let (log, signer, invoices) =
            (self.log.clone(), self.signer.clone(), self.invoices.clone());
        Box::pin(async move {
            let (rec, parts) = match checked? {
                SettleCheck::PaidByThese(rec) => {
                    let preimage = reveal(&signer, &rec).await?;
                    return Ok(Settled {
                        invoice: rec,
                        preimage,
                    });
                }
                SettleCheck::Pays(rec, parts) => (rec, parts),
            };
            let preimage = reveal(&signer, &rec).await?;
            let c = &rec.created;
            let paid = Proposal::Paid {
                created_index: c.created_index,
                amount_received_msat,
                paid_at: now,
                parts,
            };
            let committed = log.append(paid).await.map_err(|e| match e {
                AppendError::Rejected(Rejection::NotUnpaid(s)) => SettleError::NotUnpaid(s),
                AppendError::Rejected(Rejection::UnknownInvoice(_)) => SettleError::UnknownInvoice,
                AppendError::Rejected(Rejection::IsHold(_)) => SettleError::IsHold,
                AppendError::Rejected(Rejection::Conflict(_)) => {
                    // Raced another change in the same batch: report what it became.
                    let now_status = invoices
                        .pick(|s| s.invoices.get(rec.created.created_index).map(|r| r.status))
                        .ok()
                        .flatten();
                    now_status.map_or(SettleError::UnknownInvoice, SettleError::NotUnpaid)
                }
                other => SettleError::Store(other),
            })?;
            let invoice = std::sync::Arc::unwrap_or_clone(committed)
                .invoice
                .ok_or_else(|| SettleError::Internal("no invoice in commit".into()))?;
            Ok(Settled { invoice, preimage })
        })
    }
}

/// The preimage of a paid (or being paid) invoice.
async fn reveal(
    signer: &Recipient<RevealPreimages>,
    rec: &InvoiceRecord,
) -> Result<PaymentPreimage, SettleError> {
    let seal = rec
        .preimage_seal()
        .cloned()
        .ok_or_else(|| SettleError::Internal("preimage not revealed yet".into()))?;
    signer
        .send(RevealPreimages {
            seals: vec![(seal, rec.created.body.payment_hash)],
        })
        .await
        .map_err(|e| SettleError::Internal(e.to_string()))?
        .pop()
        .flatten()
        .ok_or_else(|| SettleError::Internal("preimage seal does not open".into()))
}

impl InvoiceLedger {
    fn check_settle(&self, msg: SettleInvoice, now: u64) -> Result<SettleCheck, SettleError> {
        let internal = |e: StoreError| SettleError::Internal(e.to_string());
        let parts =
            invoiced_events::distinct_parts(msg.parts).map_err(SettleError::ConflictingPart)?;
        let sum = parts.iter().map(|p| p.amount_msat).sum::<Msat>();
        if !parts.is_empty() && sum != msg.amount_msat {
            return Err(SettleError::PartsSum {
                parts: sum,
                amount: msg.amount_msat,
            });
        }
        let entry = self
            .invoices
            .pick(|s| s.invoices.by_hash(&msg.payment_hash).cloned())
            .map_err(internal)?;
        let entry = entry.ok_or(SettleError::UnknownInvoice)?;
        if entry.hold.is_some() {
            return Err(SettleError::IsHold);
        }
        let recorded = entry
            .payment
            .as_ref()
            .map(|p| p.parts.as_slice())
            .unwrap_or_default();
        let again = !parts.is_empty() && parts.iter().all(|p| recorded.contains(p));
        if entry.status != InvoiceStatus::Unpaid && !again {
            return Err(SettleError::NotUnpaid(entry.status));
        }
        let rec = self.invoices.invoice(entry).map_err(internal)?;
        if msg.payment_secret != rec.created.body.payment_secret {
            return Err(SettleError::WrongSecret);
        }
        if again {
            return Ok(SettleCheck::PaidByThese(rec));
        }
        if now >= rec.created.body.expires_at {
            return Err(SettleError::NotUnpaid(InvoiceStatus::Expired));
        }
        rec.created
            .body
            .check_payment(msg.amount_msat)
            .map_err(|e| match e {
                PaymentAmountError::Under { got, want } => SettleError::Underpaid { got, want },
                PaymentAmountError::Over { got, want } => SettleError::Overpaid { got, want },
            })?;
        Ok(SettleCheck::Pays(rec, parts))
    }
}

/// What to do with one HTLC that ends at the node ([`CheckPart`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PartVerdict {
    /// Not one of invoiced's invoices: the node's business.
    Unknown,
    /// It may pay the invoice: hold it with the payment's other parts until they reach
    /// `total_msat`, then settle them (a hold invoice's with `holdaccept`).
    Join {
        /// A hold invoice.
        hold: bool,
    },
    /// The invoice was paid by this very HTLC (a replay): resolve it again.
    Resolve(PaymentPreimage),
    /// The invoice was paid before its HTLCs were recorded with payments (an older log): the
    /// node's datastore, where the plugin then kept them, says whether this is one.
    PaidUnrecorded(PaymentPreimage),
    /// Refuse it; the reason is for the node's log (the payer learns only
    /// `incorrect_or_unknown_payment_details`, as BOLT 4 says).
    Fail(String),
}

/// Query: the verdict on one HTLC, from what its onion and the HTLC say — the checks Core
/// Lightning's `invoice_check_payment` and `handle_localpay` make, made here for every payment
/// the node receives, so that the plugin only carries the verdict out.
#[derive(Message)]
#[rtype(result = "Result<PartVerdict, SettleError>")]
pub struct CheckPart {
    /// The payment hash.
    pub payment_hash: PaymentHash,
    /// The HTLC (`scid/id`, amount, expiry).
    pub part: HeldPart,
    /// The onion's `total_msat` (the part's amount when it has none).
    pub total_msat: Msat,
    /// The onion's payment secret (a BOLT12 payment's `path_id`), if any.
    pub payment_secret: Option<PaymentSecret>,
    /// Blocks from the node's height to the HTLC's expiry.
    pub cltv_expiry_relative: u32,
}

impl Handler<CheckPart> for InvoiceLedger {
    type Result = ResponseFuture<Result<PartVerdict, SettleError>>;

    fn handle(&mut self, msg: CheckPart, _: &mut Context<Self>) -> Self::Result {
        let checked = self.check_part(&msg, self.clock.now_secs());
        let signer = self.signer.clone();
        Box::pin(async move {
            Ok(match checked? {
                Verdict::Now(v) => v,
                Verdict::Resolve(rec) => PartVerdict::Resolve(reveal(&signer, &rec).await?),
                Verdict::Unrecorded(rec) => {
                    PartVerdict::PaidUnrecorded(reveal(&signer, &rec).await?)
                }
            })
        })
    }
}

/// [`InvoiceLedger::check_part`]'s finding, before any preimage is revealed.
enum Verdict {
    Now(PartVerdict),
    Resolve(InvoiceRecord),
    Unrecorded(InvoiceRecord),
}

impl InvoiceLedger {
    fn check_part(&self, msg: &CheckPart, now: u64) -> Result<Verdict, SettleError> {
        let internal = |e: StoreError| SettleError::Internal(e.to_string());
        let fail = |why: String| Ok(Verdict::Now(PartVerdict::Fail(why)));
        let Some(entry) = self
            .invoices
            .pick(|s| s.invoices.by_hash(&msg.payment_hash).cloned())
            .map_err(internal)?
        else {
            return Ok(Verdict::Now(PartVerdict::Unknown));
        };
        let hold = entry.hold.as_deref();
        let held = hold.is_some_and(|h| h.parts.iter().any(|p| p.htlc == msg.part.htlc));
        match (entry.status, hold.map(|h| h.state)) {
            // A part an ACCEPTED hold invoice holds already, replayed: held again.
            (InvoiceStatus::Unpaid, Some(HoldState::Accepted)) if held => {
                return Ok(Verdict::Now(PartVerdict::Join { hold: true }))
            }
            (InvoiceStatus::Paid, Some(_)) if held => {
                return Ok(Verdict::Resolve(
                    self.invoices.invoice(entry).map_err(internal)?,
                ))
            }
            (InvoiceStatus::Paid, None) => {
                let recorded = entry
                    .payment
                    .as_ref()
                    .map(|p| p.parts.as_slice())
                    .unwrap_or_default();
                let rec = || self.invoices.invoice(entry.clone()).map_err(internal);
                if recorded.iter().any(|p| p.htlc == msg.part.htlc) {
                    return Ok(Verdict::Resolve(rec()?));
                }
                if recorded.is_empty() {
                    return Ok(Verdict::Unrecorded(rec()?));
                }
                return fail("invoice already paid".into());
            }
            (InvoiceStatus::Unpaid, _) => {}
            (status, _) => return fail(format!("invoice is {}", status.as_str())),
        }
        let accepted = hold.is_some_and(|h| h.state == HoldState::Accepted);
        if accepted {
            return fail("hold invoice already holds its payment".into());
        }
        let rec = self.invoices.invoice(entry).map_err(internal)?;
        let c = &rec.created;
        if now >= c.body.expires_at {
            return fail("invoice expired".into());
        }
        match &msg.payment_secret {
            None => return fail("no payment_secret".into()),
            Some(s) if *s != c.body.payment_secret => return fail("wrong payment_secret".into()),
            Some(_) => {}
        }
        if msg.cltv_expiry_relative < c.body.cltv {
            return fail(format!(
                "cltv_expiry_relative {} < min_final_cltv_expiry {}",
                msg.cltv_expiry_relative, c.body.cltv
            ));
        }
        if let Err(e) = c.body.check_payment(msg.total_msat) {
            return fail(format!("total_msat: {e}"));
        }
        Ok(Verdict::Now(PartVerdict::Join {
            hold: rec.hold.is_some(),
        }))
    }
}

/// Command: `delinvoice label status [desconly]`.
#[derive(Message)]
#[rtype(result = "Result<InvoiceRecord, DeleteError>")]
pub struct DeleteInvoice {
    /// The label.
    pub label: Label,
    /// The status the caller expects (compared literally).
    pub status: String,
    /// Only remove the description.
    pub desconly: bool,
}

impl Handler<DeleteInvoice> for InvoiceLedger {
    type Result = ResponseFuture<Result<InvoiceRecord, DeleteError>>;

    fn handle(&mut self, msg: DeleteInvoice, _: &mut Context<Self>) -> Self::Result {
        let checked = (|| {
            let internal = |e: StoreError| DeleteError::Internal(e.to_string());
            let entry = self
                .invoices
                .pick(|s| s.invoices.by_label(&msg.label).cloned())
                .map_err(internal)?;
            let entry = entry.ok_or(DeleteError::UnknownInvoice)?;
            if entry.status.as_str() != msg.status {
                return Err(DeleteError::StatusMismatch {
                    actual: entry.status.as_str().into(),
                    expected: msg.status.clone(),
                });
            }
            if msg.desconly && entry.description_removed {
                return Err(DeleteError::DescriptionAlreadyRemoved);
            }
            // Core Lightning answers with the invoice as it was before the change.
            self.invoices.invoice(entry).map_err(internal)
        })();
        let log = self.log.clone();
        Box::pin(async move {
            let rec = checked?;
            let created_index = rec.created.created_index;
            let change = if msg.desconly {
                Proposal::DescriptionRemoved { created_index }
            } else {
                Proposal::Deleted {
                    created_index,
                    status: rec.status,
                }
            };
            log.append(change).await.map_err(|e| match e {
                AppendError::Rejected(Rejection::StatusChanged { actual, expected }) => {
                    DeleteError::StatusMismatch {
                        actual: actual.as_str().into(),
                        expected: expected.as_str().into(),
                    }
                }
                AppendError::Rejected(Rejection::DescriptionAlreadyRemoved) => {
                    DeleteError::DescriptionAlreadyRemoved
                }
                AppendError::Rejected(Rejection::UnknownInvoice(_)) => DeleteError::UnknownInvoice,
                other => DeleteError::Store(other),
            })?;
            Ok(rec)
        })
    }
}
