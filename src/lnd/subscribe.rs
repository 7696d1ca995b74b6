//! `SubscribeInvoices`: invoices as they are added and as they are settled, from invoiced's
//! log, with no gap and nothing twice.
//!
//! A subscriber gives the last `add_index` and `settle_index` it saw (0: only what comes
//! next). It gets every invoice created after the one (by `listinvoices` from `created_index`
//! on, then `wait invoices created` for more) and every invoice paid after the other (by
//! `waitanyinvoice`, which answers the paid invoice with the smallest `pay_index` above the one
//! given, and then waits), each once, in its index's order. A reconnecting subscriber that gives
//! back its last indexes misses nothing and sees nothing again. The waits are calls on
//! invoiced's socket, dropped (and so ended there) when the subscriber leaves.

use std::sync::Arc;

use serde_json::json;
use tokio::sync::mpsc;
use tonic::Status;

use super::invoice;
use super::proto::lnrpc;
use super::service::Service;

/// The events of one subscription, as they come.
pub type Events = mpsc::Receiver<Result<lnrpc::Invoice, Status>>;

/// Starts a subscription from `add_index` and `settle_index`.
pub fn invoices(service: Arc<Service>, add_index: u64, settle_index: u64) -> Events {
    let (tx, rx) = mpsc::channel(64);
    tokio::spawn(follow(
        adds(service.clone(), add_index, tx.clone()),
        tx.clone(),
    ));
    tokio::spawn(follow(settles(service, settle_index, tx.clone()), tx));
    rx
}

/// Runs `task` until it fails or the subscriber leaves; a failure is the stream's last item.
async fn follow(
    task: impl std::future::Future<Output = Result<(), Status>>,
    tx: mpsc::Sender<Result<lnrpc::Invoice, Status>>,
) {
    tokio::select! {
        outcome = task => if let Err(e) = outcome {
            let _ = tx.send(Err(e)).await;
        },
        () = tx.closed() => {}
    }
}

/// Invoices created after `add_index` (0: after the last one now), then as they are created.
async fn adds(
    service: Arc<Service>,
    add_index: u64,
    tx: mpsc::Sender<Result<lnrpc::Invoice, Status>>,
) -> Result<(), Status> {
    let mut next = if add_index == 0 {
        service.wait_index("created", 0).await? + 1
    } else {
        add_index + 1
    };
    loop {
        // At once if the counter has reached `next`, else when it does.
        let now = service.wait_index("created", next).await?;
        loop {
            let listed = service
                .invoiced(
                    "listinvoices",
                    json!({"index": "created", "start": next, "limit": PAGE}),
                )
                .await?;
            let found = listed["invoices"].as_array().cloned().unwrap_or_default();
            for obj in &found {
                next = next.max(obj["created_index"].as_u64().unwrap_or(0) + 1);
                if tx.send(Ok(invoice::to_lnd(obj))).await.is_err() {
                    return Ok(());
                }
            }
            if found.len() < PAGE {
                break;
            }
        }
        // Every invoice up to `now` that still exists was listed (a deleted one leaves a gap).
        next = next.max(now + 1);
    }
}

/// Invoices listed at a time.
const PAGE: usize = 1000;

/// Invoices paid after `settle_index` (0: after the last one paid now), then as they are paid.
async fn settles(
    service: Arc<Service>,
    settle_index: u64,
    tx: mpsc::Sender<Result<lnrpc::Invoice, Status>>,
) -> Result<(), Status> {
    let mut last = if settle_index == 0 {
        last_pay_index(&service).await?
    } else {
        settle_index
    };
    loop {
        let paid = service
            .invoiced("waitanyinvoice", json!({"lastpay_index": last}))
            .await?;
        last = paid["pay_index"].as_u64().unwrap_or(last + 1);
        if tx.send(Ok(invoice::to_lnd(&paid))).await.is_err() {
            return Ok(());
        }
    }
}

/// `SubscribeSingleInvoice`: the invoice of `hash` as it is now, then each time its state
/// changes, until it is settled or canceled (LND's terminal states).
pub fn single(service: Arc<Service>, hash: Vec<u8>) -> Events {
    let (tx, rx) = mpsc::channel(8);
    tokio::spawn(follow(states(service, hash, tx.clone()), tx));
    rx
}

async fn states(
    service: Arc<Service>,
    hash: Vec<u8>,
    tx: mpsc::Sender<Result<lnrpc::Invoice, Status>>,
) -> Result<(), Status> {
    use lnrpc::invoice::InvoiceState;
    let mut updated = service.wait_index("updated", 0).await?;
    let mut sent: Option<i32> = None;
    loop {
        let now = service.lookup_invoice(&hash).await?;
        let state = now.state;
        if sent != Some(state) {
            sent = Some(state);
            if tx.send(Ok(now)).await.is_err() {
                return Ok(());
            }
        }
        if state == InvoiceState::Settled as i32 || state == InvoiceState::Canceled as i32 {
            return Ok(());
        }
        // Any change of any invoice wakes this; the lookup tells whether it was this one's.
        updated = service.wait_index("updated", updated + 1).await?;
    }
}

/// Whether an invoice was paid with a `pay_index` above `after` (`waitanyinvoice` at once).
async fn paid_after(service: &Service, after: u64) -> Result<bool, Status> {
    let r = service
        .invoiced_raw(
            "waitanyinvoice",
            json!({"lastpay_index": after, "timeout": 0}),
        )
        .await;
    match r {
        Ok(_) => Ok(true),
        // 904: timed out, nothing paid after it.
        Err(e) if e.code() == Some(904) => Ok(false),
        Err(e) => Err(super::service::status_of("invoiced", &e)),
    }
}

/// The highest `pay_index` now: found in a logarithmic number of `waitanyinvoice` probes,
/// so that a node with millions of invoices is not listed for it.
async fn last_pay_index(service: &Service) -> Result<u64, Status> {
    let (mut lo, mut hi) = (0u64, 1u64);
    while paid_after(service, hi).await? {
        lo = hi;
        hi = hi.saturating_mul(2);
    }
    // Some invoice was paid after `lo` (or `lo` is 0), none after `hi`.
    if lo == 0 && !paid_after(service, 0).await? {
        return Ok(0);
    }
    while hi - lo > 1 {
        let mid = lo + (hi - lo) / 2;
        if paid_after(service, mid).await? {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    Ok(hi)
}
