//! The invoice and payment counts, from the committed batches: each event counted once, as the
//! log records it, and the hold invoices' states followed from the state each event leaves.

use std::collections::HashMap;
use std::sync::Arc;

use invoiced_actors::store::CommittedBatch;
use invoiced_events::{CreatedIndex, Event, HoldState, InvoiceRecord, Projections};

use super::Metrics;

/// The kind of an invoice, as the metrics name it: `hold`, `bolt12`, `keysend` (the invoice
/// Core Lightning's keysend plugin makes for a payment it receives) or `bolt11`.
pub fn kind_of(inv: &InvoiceRecord) -> &'static str {
    if inv.hold.is_some() {
        "hold"
    } else if inv.is_bolt12() {
        "bolt12"
    } else if inv.created.body.label.as_str().starts_with("keysend-") {
        "keysend"
    } else {
        "bolt11"
    }
}

fn state_name(s: HoldState) -> &'static str {
    match s {
        HoldState::Open => "open",
        HoldState::Accepted => "accepted",
        HoldState::Settled => "settled",
        HoldState::Canceled => "canceled",
    }
}

/// Counts the committed events into the metrics.
pub struct Observer {
    metrics: Arc<Metrics>,
    /// Each hold invoice's state as last counted.
    holds: HashMap<CreatedIndex, HoldState>,
}

impl Observer {
    /// Starts from the hold invoices `state` holds (the other counts start at zero).
    pub fn new(metrics: Arc<Metrics>, state: &Projections) -> Self {
        let mut o = Observer {
            metrics,
            holds: HashMap::new(),
        };
        for e in state.invoices.from_created_index(CreatedIndex(0)) {
            if let Some(s) = e.hold_state() {
                o.track(e.created_index, Some(s));
            }
        }
        o
    }

    /// Counts every event of `batch`.
    pub fn observe(&mut self, batch: &CommittedBatch) {
        for c in batch.iter() {
            if let Some(inv) = &c.invoice {
                self.count(&c.record.event, inv);
            }
        }
    }

    fn count(&mut self, event: &Event, inv: &InvoiceRecord) {
        let m = &self.metrics;
        let kind = [kind_of(inv)];
        match event {
            Event::InvoiceCreated(_)
            | Event::HoldInvoiceCreated(_)
            | Event::HashedInvoiceCreated(_)
            | Event::Bolt12InvoiceCreated(_) => {
                m.invoices_created.with_label_values(&kind).inc();
            }
            Event::InvoicePaid(_) | Event::HtlcsPaid(_) | Event::HoldSettled(_) => {
                m.invoices_paid.inc();
                m.payments.with_label_values(&kind).inc();
                let msat = inv.payment.as_ref().map_or(0, |p| p.amount_received_msat.0);
                m.received_msat.with_label_values(&kind).inc_by(msat);
            }
            Event::InvoiceExpired(_) => {
                m.invoices_expired.inc();
            }
            Event::InvoiceDeleted(_) => {
                m.invoices_deleted.inc();
            }
            Event::InvoiceCleaned(_) => {
                m.invoices_cleaned.inc();
            }
            Event::HoldAccepted(_)
            | Event::HoldCanceled(_)
            | Event::DescriptionRemoved(_)
            | Event::ChannelOpened(_)
            | Event::ChannelUpdated(_)
            | Event::ChannelClosed(_) => {}
        }
        if inv.hold.is_some() {
            let gone = matches!(event, Event::InvoiceDeleted(_) | Event::InvoiceCleaned(_));
            let now = (!gone)
                .then(|| inv.hold.as_ref().map(|h| h.state))
                .flatten();
            self.track(inv.created.created_index, now);
        }
    }

    /// Moves hold invoice `idx` from the state last counted to `now` (`None`: gone).
    fn track(&mut self, idx: CreatedIndex, now: Option<HoldState>) {
        let before = match now {
            Some(s) => self.holds.insert(idx, s),
            None => self.holds.remove(&idx),
        };
        if before == now {
            return;
        }
        let gauge = |s: HoldState| {
            self.metrics
                .hold_invoices
                .with_label_values(&[state_name(s)])
        };
        if let Some(b) = before {
            gauge(b).dec();
        }
        if let Some(n) = now {
            gauge(n).inc();
        }
    }
}

/// Counts every batch committed from now on, on the current (actix) arbiter.
pub fn start(metrics: Arc<Metrics>, state: &Projections, log: &invoiced_actors::store::LogHandle) {
    let mut observer = Observer::new(metrics, state);
    let mut commits = log.subscribe();
    actix::spawn(async move {
        while let Some(batch) = commits.recv().await {
            observer.observe(&batch);
        }
    });
}
