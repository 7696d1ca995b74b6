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
use invoiced_events::{Event, HoldState, InvoiceRecord, InvoiceStatus, Label, Proposal, Rejection};

use crate::clock::Clock;
use crate::key_signer::{PaymentHash, PaymentPreimage, PaymentSecret, RevealPreimages};
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
    /// Less than the invoice asks.
    #[error("amount_msat: {got}msat is less than the invoice's {want}msat")]
    Underpaid {
        /// Offered.
        got: u64,
        /// Asked.
        want: u64,
    },
    /// More than twice the invoice's amount (Core Lightning refuses these).
    #[error("amount_msat: {got}msat is more than twice the invoice's {want}msat")]
    Overpaid {
        /// Offered.
        got: u64,
        /// Asked.
        want: u64,
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
    expiries: BTreeSet<(u64, u64)>,
    timer: Option<SpawnHandle>,
}

impl InvoiceLedger {
    /// A ledger over the live projection; it watches `committed` for changes.
    pub fn new(invoices: InvoiceReader, log: LogHandle, signer: Recipient<RevealPreimages>, clock: Arc<dyn Clock>) -> Self {
        let expiries = invoices
            .pick(|s| {
                s.invoices
                    .from_created_index(0)
                    // An accepted hold invoice is bound by its parts' CLTV (the HoldKeeper's).
                    .filter(|r| r.status == InvoiceStatus::Unpaid && r.hold_state() != Some(HoldState::Accepted))
                    .map(|r| (r.expires_at, r.created_index))
                    .collect()
            })
            .unwrap_or_default();
        InvoiceLedger { invoices, log, signer, clock, expiries, timer: None }
    }

    /// Arms the timer for the earliest unpaid expiry.
    fn schedule(&mut self, ctx: &mut Context<Self>) {
        if let Some(t) = self.timer.take() {
            ctx.cancel_future(t);
        }
        let Some(&(at, _)) = self.expiries.first() else { return };
        let delay = (at.saturating_mul(1000)).saturating_sub(self.clock.now_ms());
        self.timer = Some(ctx.run_later(Duration::from_millis(delay), |act, ctx| {
            act.timer = None;
            act.expire_due(ctx);
        }));
    }

    /// Appends an expiry for every unpaid invoice whose time has come.
    fn expire_due(&mut self, ctx: &mut Context<Self>) {
        let now = self.clock.now_secs();
        let due: Vec<(u64, u64)> = self.expiries.range(..(now + 1, 0)).copied().collect();
        for key in due {
            self.expiries.remove(&key);
            let log = self.log.clone();
            let append = actix::fut::wrap_future::<_, Self>(async move { log.append(Proposal::Expired { created_index: key.1 }).await });
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
            let key = (inv.created.expires_at, inv.created.created_index);
            match &c.record.event {
                Event::InvoiceCreated(_) | Event::HoldInvoiceCreated(_) | Event::Bolt12InvoiceCreated(_) => {
                    self.expiries.insert(key);
                }
                // Held parts are bounded by their CLTV, not the invoice's expiry (HoldKeeper).
                Event::InvoicePaid(_)
                | Event::InvoiceExpired(_)
                | Event::InvoiceDeleted(_)
                | Event::InvoiceCleaned(_)
                | Event::HoldAccepted(_)
                | Event::HoldSettled(_)
                | Event::HoldCanceled(_) => {
                    self.expiries.remove(&key);
                }
                _ => {}
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
    pub amount_msat: u64,
    /// The secret the payer sent.
    pub payment_secret: PaymentSecret,
}

impl Handler<SettleInvoice> for InvoiceLedger {
    type Result = ResponseFuture<Result<Settled, SettleError>>;

    fn handle(&mut self, msg: SettleInvoice, _: &mut Context<Self>) -> Self::Result {
        let now = self.clock.now_secs();
        let checked = self.check_settle(&msg, now);
        let (log, signer, invoices) = (self.log.clone(), self.signer.clone(), self.invoices.clone());
        Box::pin(async move {
            let rec = checked?;
            let c = &rec.created;
            let preimage = signer
                .send(RevealPreimages { seals: vec![(c.preimage.clone(), PaymentHash(c.payment_hash))] })
                .await
                .map_err(|e| SettleError::Internal(e.to_string()))?
                .pop()
                .flatten()
                .ok_or_else(|| SettleError::Internal("preimage seal does not open".into()))?;
            let paid = Proposal::Paid { created_index: c.created_index, amount_received_msat: msg.amount_msat, paid_at: now };
            let committed = log.append(paid).await.map_err(|e| match e {
                AppendError::Rejected(Rejection::NotUnpaid(s)) => SettleError::NotUnpaid(s),
                AppendError::Rejected(Rejection::UnknownInvoice(_)) => SettleError::UnknownInvoice,
                AppendError::Rejected(Rejection::IsHold(_)) => SettleError::IsHold,
                AppendError::Rejected(Rejection::Conflict(_)) => {
                    // Raced another change in the same batch: report what it became.
                    let now_status =
                        invoices.pick(|s| s.invoices.get(rec.created.created_index).map(|r| r.status)).ok().flatten();
                    now_status.map_or(SettleError::UnknownInvoice, SettleError::NotUnpaid)
                }
                other => SettleError::Store(other),
            })?;
            let invoice = std::sync::Arc::unwrap_or_clone(committed).invoice.ok_or_else(|| SettleError::Internal("no invoice in commit".into()))?;
            Ok(Settled { invoice, preimage })
        })
    }
}

impl InvoiceLedger {
    fn check_settle(&self, msg: &SettleInvoice, now: u64) -> Result<InvoiceRecord, SettleError> {
        let internal = |e: StoreError| SettleError::Internal(e.to_string());
        let entry = self.invoices.pick(|s| s.invoices.by_hash(&msg.payment_hash.0).cloned()).map_err(internal)?;
        let entry = entry.ok_or(SettleError::UnknownInvoice)?;
        if entry.status != InvoiceStatus::Unpaid {
            return Err(SettleError::NotUnpaid(entry.status));
        }
        if entry.hold.is_some() {
            return Err(SettleError::IsHold);
        }
        let rec = self.invoices.invoice(entry).map_err(internal)?;
        if now >= rec.created.expires_at {
            return Err(SettleError::NotUnpaid(InvoiceStatus::Expired));
        }
        if !crate::key_signer::secrets_equal(&msg.payment_secret.0, &rec.created.payment_secret) {
            return Err(SettleError::WrongSecret);
        }
        if let Some(want) = rec.created.amount_msat {
            if msg.amount_msat < want {
                return Err(SettleError::Underpaid { got: msg.amount_msat, want });
            }
            if msg.amount_msat > want.saturating_mul(2) {
                return Err(SettleError::Overpaid { got: msg.amount_msat, want });
            }
        }
        Ok(rec)
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
            let entry = self.invoices.pick(|s| s.invoices.by_label(&msg.label).cloned()).map_err(internal)?;
            let entry = entry.ok_or(DeleteError::UnknownInvoice)?;
            if entry.status.as_str() != msg.status {
                return Err(DeleteError::StatusMismatch { actual: entry.status.as_str().into(), expected: msg.status.clone() });
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
                Proposal::Deleted { created_index, status: rec.status }
            };
            log.append(change).await.map_err(|e| match e {
                AppendError::Rejected(Rejection::StatusChanged { actual, expected }) => DeleteError::StatusMismatch {
                    actual: actual.as_str().into(),
                    expected: expected.as_str().into(),
                },
                AppendError::Rejected(Rejection::DescriptionAlreadyRemoved) => DeleteError::DescriptionAlreadyRemoved,
                AppendError::Rejected(Rejection::UnknownInvoice(_)) => DeleteError::UnknownInvoice,
                other => DeleteError::Store(other),
            })?;
            Ok(rec)
        })
    }
}
