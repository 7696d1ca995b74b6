//! Waiters: `waitinvoice`, `waitanyinvoice` and `wait`, woken by committed events.
//!
//! Owns the waiting callers, indexed so that an event wakes only those it concerns: by invoice
//! for `waitinvoice`, by index and next value for `wait`. `waitanyinvoice` is Core Lightning's
//! (`wallet/invoices.c`): the paid invoice with the smallest `pay_index` above `lastpay_index` if
//! there is one, else the next invoice paid, whatever its `pay_index` — so a `lastpay_index`
//! beyond the newest (BTCPay sends 99999999999) means "the next payment from now". A caller
//! first checks the projection; since the writer updates the projection before it tells the
//! subscribers, an event not yet visible there is still on its way here, and no wake-up is lost.
//! Thousands of waiters cost a map entry each.
//!
//! Each wait answers a [`Waiting`], a future the caller awaits itself (the registry does not
//! run it): when the caller gives up — its client closed the connection — dropping it closes
//! the waiter, and the registry forgets closed waiters as new ones come ([`Waiters::len`] stays
//! within twice the live ones), so clients that wait and leave cost nothing that lasts.

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::pin::Pin;
use std::task::{Context as TaskContext, Poll};
use std::time::Duration;

use actix::prelude::*;
use invoiced_events::{
    CreatedIndex, Event, HoldCanceled, HoldSettled, InvoiceCleaned, InvoiceDeleted, InvoiceExpired,
    InvoicePaid, InvoiceRecord, InvoiceStatus, Label, PayIndex,
};
use tokio::sync::oneshot;

use crate::store::{InvoiceReader, LogHandle, Observe};

/// How a `waitinvoice` ends.
#[derive(Clone, Debug)]
pub enum WaitInvoiceError {
    /// No invoice has the label (-1 `Label not found`).
    LabelNotFound,
    /// It expired (903, with the invoice).
    Expired(Box<InvoiceRecord>),
    /// It was deleted while waiting (-1).
    Deleted,
    /// The daemon is stopping or the projection is unavailable (-1).
    Internal,
}

/// `waitanyinvoice` timed out (904).
#[derive(Clone, Debug)]
pub enum WaitAnyError {
    /// No payment in time.
    Timeout,
    /// The daemon is stopping (-1).
    Internal,
}

/// An index of the `invoices` subsystem.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum IndexName {
    /// `created`.
    Created,
    /// `updated`.
    Updated,
    /// `deleted`.
    Deleted,
}

impl IndexName {
    /// The name on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            IndexName::Created => "created",
            IndexName::Updated => "updated",
            IndexName::Deleted => "deleted",
        }
    }

    fn slot(self) -> usize {
        self as usize
    }
}

/// What woke a `wait`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IndexWake {
    /// The index.
    pub index: IndexName,
    /// Its value.
    pub value: u64,
    /// What changed: `(label, bolt11, status, description)` as Core Lightning reports them.
    pub details: Option<WakeDetails>,
}

/// The invoice details of a `wait` answer.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct WakeDetails {
    /// Label, when reported.
    pub label: Option<String>,
    /// bolt11, when reported.
    pub bolt11: Option<String>,
    /// Status, when reported.
    pub status: Option<&'static str>,
    /// Description, when reported.
    pub description: Option<String>,
}

type InvoiceOutcome = Result<InvoiceRecord, WaitInvoiceError>;

/// The outcome of a wait, for the caller to await. Dropping it gives the wait up.
#[must_use = "a wait is given up when its Waiting is dropped"]
pub struct Waiting<T>(Pin<Box<dyn Future<Output = T> + Send>>);

impl<T> Waiting<T> {
    fn ready(outcome: T) -> Self
    where
        T: Send + 'static,
    {
        Waiting(Box::pin(std::future::ready(outcome)))
    }

    fn on(outcome: impl Future<Output = T> + Send + 'static) -> Self {
        Waiting(Box::pin(outcome))
    }
}

impl<T> Future for Waiting<T> {
    type Output = T;
    fn poll(mut self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<T> {
        self.0.as_mut().poll(cx)
    }
}

/// Fewest registrations between two sweeps of closed waiters.
const SWEEP_AFTER: usize = 64;

/// The waiter registry.
pub struct Waiters {
    invoices: InvoiceReader,
    log: LogHandle,
    by_invoice: HashMap<CreatedIndex, Vec<oneshot::Sender<InvoiceOutcome>>>,
    /// `waitanyinvoice` callers, each with the last `pay_index` committed when it registered:
    /// only a later payment wakes it.
    any: Vec<(PayIndex, oneshot::Sender<InvoiceRecord>)>,
    index: [BTreeMap<u64, Vec<oneshot::Sender<IndexWake>>>; 3],
    /// Registrations since the last sweep of closed waiters, and the waiters left by it: the
    /// next sweep comes once as many have registered again, so sweeping costs O(1) a wait.
    registered: usize,
    live_after_sweep: usize,
}

impl Waiters {
    /// A registry over the live projection, fed by the log's committed batches.
    pub fn new(invoices: InvoiceReader, log: LogHandle) -> Self {
        Waiters {
            invoices,
            log,
            by_invoice: HashMap::new(),
            any: Vec::new(),
            index: Default::default(),
            registered: 0,
            live_after_sweep: 0,
        }
    }

    /// Counts a registration, and forgets the waiters whose callers gave up once enough came.
    fn registered(&mut self) {
        self.registered += 1;
        if self.registered > self.live_after_sweep.max(SWEEP_AFTER) {
            self.by_invoice.retain(|_, list| {
                list.retain(|t| !t.is_closed());
                !list.is_empty()
            });
            self.any.retain(|(_, t)| !t.is_closed());
            for map in &mut self.index {
                map.retain(|_, list| {
                    list.retain(|t| !t.is_closed());
                    !list.is_empty()
                });
            }
            self.live_after_sweep = self.len();
            self.registered = 0;
        }
    }

    /// How many callers are registered (those who gave up included, until the next sweep).
    pub fn len(&self) -> usize {
        self.by_invoice.values().map(Vec::len).sum::<usize>()
            + self.any.len()
            + self
                .index
                .iter()
                .flat_map(|m| m.values())
                .map(Vec::len)
                .sum::<usize>()
    }

    /// Whether nobody waits.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn wake_index(&mut self, index: IndexName, value: u64, details: WakeDetails) {
        let map = &mut self.index[index.slot()];
        let due: Vec<u64> = map.range(..=value).map(|(k, _)| *k).collect();
        for k in due {
            for tx in map.remove(&k).unwrap_or_default() {
                let _ = tx.send(IndexWake {
                    index,
                    value,
                    details: Some(details.clone()),
                });
            }
        }
    }
}

impl Actor for Waiters {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        self.log.forward_to::<Observe>(ctx.address().recipient());
    }
}

impl Handler<Observe> for Waiters {
    type Result = ();
    fn handle(&mut self, Observe(batch): Observe, _: &mut Context<Self>) {
        for c in batch.iter() {
            let Some(inv) = &c.invoice else { continue };
            self.observe(&c.record.event, inv);
        }
    }
}

impl Waiters {
    /// Wakes the waiters `event`, committed on the invoice now `inv`, concerns: by its kind,
    /// a creation, a payment, an expiry, an update or a deletion.
    fn observe(&mut self, event: &Event, inv: &InvoiceRecord) {
        let label = Some(inv.created.body.label.to_string());
        match event {
            Event::InvoiceCreated(_)
            | Event::HoldInvoiceCreated(_)
            | Event::HashedInvoiceCreated(_)
            | Event::Bolt12InvoiceCreated(_) => self.created(inv, label),
            // A settled hold invoice is paid, to waiters as to listings.
            Event::InvoicePaid(InvoicePaid {
                pay_index,
                updated_index,
                ..
            })
            | Event::HtlcsPaid(invoiced_events::HtlcsPaid {
                paid:
                    InvoicePaid {
                        pay_index,
                        updated_index,
                        ..
                    },
                ..
            })
            | Event::HoldSettled(HoldSettled {
                pay_index,
                updated_index,
                ..
            }) => self.paid(inv, *pay_index, updated_index.get(), label),
            // A canceled hold invoice takes no payment: it is expired to its waiters.
            Event::InvoiceExpired(InvoiceExpired { updated_index, .. })
            | Event::HoldCanceled(HoldCanceled { updated_index, .. }) => {
                self.expired(inv, updated_index.get());
            }
            // Accepted parts are an update; the invoice stays unpaid until settled.
            Event::HoldAccepted(a) => self.hold_accepted(a.updated_index.get(), label),
            Event::DescriptionRemoved(d) => {
                self.description_removed(inv, d.updated_index.get(), label);
            }
            // A clean is a deletion to waiters, as Core Lightning's autoclean deletes.
            Event::InvoiceDeleted(InvoiceDeleted {
                deleted_index,
                status,
                ..
            })
            | Event::InvoiceCleaned(InvoiceCleaned {
                deleted_index,
                status,
                ..
            }) => self.deleted(inv, deleted_index.get(), *status, label),
            Event::ChannelOpened(_) | Event::ChannelUpdated(_) | Event::ChannelClosed(_) => {}
        }
    }

    /// `inv` was created: the `wait`s on `created` up to its index wake.
    fn created(&mut self, inv: &InvoiceRecord, label: Option<String>) {
        let d = WakeDetails {
            label,
            bolt11: Some(inv.created.body.bolt11.clone()),
            status: Some("unpaid"),
            description: None,
        };
        self.wake_index(IndexName::Created, inv.created.created_index.get(), d);
    }

    /// `inv` was paid with `pay_index`: answers its `waitinvoice` callers, the `waitanyinvoice`
    /// callers registered before that payment, and the `wait`s on `updated` up to `updated`.
    fn paid(
        &mut self,
        inv: &InvoiceRecord,
        pay_index: PayIndex,
        updated: u64,
        label: Option<String>,
    ) {
        for tx in self
            .by_invoice
            .remove(&inv.created.created_index)
            .unwrap_or_default()
        {
            let _ = tx.send(Ok(inv.clone()));
        }
        let (due, waiting) = std::mem::take(&mut self.any)
            .into_iter()
            .partition(|(seen, _)| *seen < pay_index);
        self.any = waiting;
        for (_, tx) in due {
            let _ = tx.send(inv.clone());
        }
        let d = WakeDetails {
            label,
            status: Some("paid"),
            ..Default::default()
        };
        self.wake_index(IndexName::Updated, updated, d);
    }

    /// `inv` expired (or its hold was canceled): its `waitinvoice` callers get it as expired,
    /// the `wait`s on `updated` up to `updated` wake.
    fn expired(&mut self, inv: &InvoiceRecord, updated: u64) {
        for tx in self
            .by_invoice
            .remove(&inv.created.created_index)
            .unwrap_or_default()
        {
            let _ = tx.send(Err(WaitInvoiceError::Expired(Box::new(inv.clone()))));
        }
        let d = WakeDetails {
            status: Some("expired"),
            ..Default::default()
        };
        self.wake_index(IndexName::Updated, updated, d);
    }

    /// A hold invoice's parts were accepted: an update, the invoice still unpaid until settled;
    /// the `wait`s on `updated` up to `updated` wake.
    fn hold_accepted(&mut self, updated: u64, label: Option<String>) {
        let d = WakeDetails {
            label,
            status: Some("unpaid"),
            ..Default::default()
        };
        self.wake_index(IndexName::Updated, updated, d);
    }

    /// `inv`'s description was removed: the `wait`s on `updated` up to `updated` wake with the
    /// description it had.
    fn description_removed(&mut self, inv: &InvoiceRecord, updated: u64, label: Option<String>) {
        let details = WakeDetails {
            label,
            description: Some(inv.created.body.description.clone()),
            ..Default::default()
        };
        self.wake_index(IndexName::Updated, updated, details);
    }

    /// `inv` was deleted (or cleaned) in `status`: its `waitinvoice` callers learn it, the
    /// `wait`s on `deleted` up to `deleted` wake.
    fn deleted(
        &mut self,
        inv: &InvoiceRecord,
        deleted: u64,
        status: InvoiceStatus,
        label: Option<String>,
    ) {
        for tx in self
            .by_invoice
            .remove(&inv.created.created_index)
            .unwrap_or_default()
        {
            let _ = tx.send(Err(WaitInvoiceError::Deleted));
        }
        let details = WakeDetails {
            label,
            bolt11: Some(inv.created.body.bolt11.clone()),
            status: Some(status.as_str()),
            description: None,
        };
        self.wake_index(IndexName::Deleted, deleted, details);
    }
}

/// Query: how many callers are registered (see [`Waiters::len`]).
#[derive(Message)]
#[rtype(result = "usize")]
pub struct CountWaiters;

impl Handler<CountWaiters> for Waiters {
    type Result = usize;
    fn handle(&mut self, _: CountWaiters, _: &mut Context<Self>) -> usize {
        self.len()
    }
}

/// Query: wait until the invoice with `label` is paid (or expires, or is deleted).
#[derive(Message)]
#[rtype(result = "Waiting<Result<InvoiceRecord, WaitInvoiceError>>")]
pub struct WaitInvoice {
    /// The label.
    pub label: Label,
}

impl Handler<WaitInvoice> for Waiters {
    type Result = MessageResult<WaitInvoice>;
    fn handle(&mut self, msg: WaitInvoice, _: &mut Context<Self>) -> Self::Result {
        let now = (|| {
            let entry = self
                .invoices
                .pick(|s| s.invoices.by_label(&msg.label).cloned())
                .map_err(|_| WaitInvoiceError::Internal)?;
            let entry = entry.ok_or(WaitInvoiceError::LabelNotFound)?;
            let idx = entry.created_index;
            let whole = |e| {
                self.invoices
                    .invoice(e)
                    .map_err(|_| WaitInvoiceError::Internal)
            };
            match entry.status {
                InvoiceStatus::Paid => Ok((Some(whole(entry)?), idx)),
                InvoiceStatus::Expired => Err(WaitInvoiceError::Expired(Box::new(whole(entry)?))),
                InvoiceStatus::Unpaid => Ok((None, idx)),
            }
        })();
        let rx = match now {
            Ok((Some(rec), _)) => return MessageResult(Waiting::ready(Ok(rec))),
            Err(e) => return MessageResult(Waiting::ready(Err(e))),
            Ok((None, idx)) => {
                let (tx, rx) = oneshot::channel();
                self.by_invoice.entry(idx).or_default().push(tx);
                self.registered();
                rx
            }
        };
        MessageResult(Waiting::on(async move {
            rx.await.unwrap_or(Err(WaitInvoiceError::Internal))
        }))
    }
}

/// Query: the next paid invoice after `lastpay_index`, waiting up to `timeout` seconds.
#[derive(Message)]
#[rtype(result = "Waiting<Result<InvoiceRecord, WaitAnyError>>")]
pub struct WaitAnyInvoice {
    /// The last `pay_index` the caller saw (0 for none).
    pub lastpay_index: PayIndex,
    /// Seconds to wait; `None` for ever.
    pub timeout: Option<u64>,
}

impl Handler<WaitAnyInvoice> for Waiters {
    type Result = MessageResult<WaitAnyInvoice>;
    fn handle(&mut self, msg: WaitAnyInvoice, _: &mut Context<Self>) -> Self::Result {
        let found = self
            .invoices
            .pick(|s| {
                (
                    s.invoices.next_paid_after(msg.lastpay_index).cloned(),
                    s.invoices.last_pay_index(),
                )
            })
            .and_then(|(entry, last)| {
                Ok((entry.map(|e| self.invoices.invoice(e)).transpose()?, last))
            });
        let (found, last_pay_index) = match found {
            Ok(found) => found,
            Err(e) => {
                tracing::error!("waitanyinvoice: {e}");
                return MessageResult(Waiting::ready(Err(WaitAnyError::Internal)));
            }
        };
        if let Some(rec) = found {
            return MessageResult(Waiting::ready(Ok(rec)));
        }
        if msg.timeout == Some(0) {
            return MessageResult(Waiting::ready(Err(WaitAnyError::Timeout)));
        }
        let (tx, rx) = oneshot::channel();
        self.any.push((last_pay_index, tx));
        self.registered();
        MessageResult(Waiting::on(async move {
            match msg.timeout {
                Some(secs) => match tokio::time::timeout(Duration::from_secs(secs), rx).await {
                    Ok(Ok(rec)) => Ok(rec),
                    Ok(Err(_)) => Err(WaitAnyError::Internal),
                    Err(_) => Err(WaitAnyError::Timeout),
                },
                None => rx.await.map_err(|_| WaitAnyError::Internal),
            }
        }))
    }
}

/// Query: `wait invoices INDEX NEXTVALUE`.
#[derive(Message)]
#[rtype(result = "Waiting<Result<IndexWake, WaitAnyError>>")]
pub struct WaitIndex {
    /// Which counter.
    pub index: IndexName,
    /// Return once it is at least this.
    pub nextvalue: u64,
}

impl Handler<WaitIndex> for Waiters {
    type Result = MessageResult<WaitIndex>;
    fn handle(&mut self, msg: WaitIndex, _: &mut Context<Self>) -> Self::Result {
        let current = self.invoices.pick(|s| match msg.index {
            IndexName::Created => s.invoices.last_created_index().get(),
            IndexName::Updated => s.invoices.last_updated_index().get(),
            IndexName::Deleted => s.invoices.last_deleted_index().get(),
        });
        let Ok(current) = current else {
            return MessageResult(Waiting::ready(Err(WaitAnyError::Internal)));
        };
        if current >= msg.nextvalue {
            let wake = IndexWake {
                index: msg.index,
                value: current,
                details: None,
            };
            return MessageResult(Waiting::ready(Ok(wake)));
        }
        let (tx, rx) = oneshot::channel();
        self.index[msg.index.slot()]
            .entry(msg.nextvalue)
            .or_default()
            .push(tx);
        self.registered();
        MessageResult(Waiting::on(async move {
            rx.await.map_err(|_| WaitAnyError::Internal)
        }))
    }
}
