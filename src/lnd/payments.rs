//! Paying through the node: `SendPaymentV2` by the node's `xpay`, `TrackPaymentV2` from its
//! `listpays`, each a stream of LND's `Payment` with LND's states (`IN_FLIGHT`, then
//! `SUCCEEDED` or `FAILED` with LND's failure reason).
//!
//! A request LND refuses before it dispatches anything (an invoice that does not parse, has
//! expired, or lacks an amount none was given for) is refused the same way here, as an error
//! of the call rather than a `FAILED` payment, so that a client knows nothing was sent.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use lightning_invoice::Bolt11Invoice;
use serde_json::{json, Map, Value};
use tokio::sync::mpsc;
use tonic::Status;

use super::proto::{lnrpc, routerrpc};
use super::service::Service;
use crate::rpc_client::CallError;

use lnrpc::payment::PaymentStatus;
use lnrpc::PaymentFailureReason;

/// The updates of one payment, as they come.
pub type Updates = mpsc::Receiver<Result<lnrpc::Payment, Status>>;

fn now_ns() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
}

/// A payment of `invoice` in `status` (the deprecated `creation_date` filled, as LND fills it).
#[allow(deprecated)]
fn payment(invoice: &str, hash: &str, status: PaymentStatus) -> lnrpc::Payment {
    let ns = now_ns();
    lnrpc::Payment {
        payment_hash: hash.to_owned(),
        payment_request: invoice.to_owned(),
        status: status as i32,
        creation_date: ns / 1_000_000_000,
        creation_time_ns: ns,
        ..Default::default()
    }
}

/// The reason LND gives for a failure the node reported with `code`.
fn reason_of(code: Option<i64>) -> PaymentFailureReason {
    match code {
        Some(203) => PaymentFailureReason::FailureReasonIncorrectPaymentDetails,
        Some(205) => PaymentFailureReason::FailureReasonNoRoute,
        Some(207) => PaymentFailureReason::FailureReasonTimeout,
        _ => PaymentFailureReason::FailureReasonError,
    }
}

/// Checks a `SendPaymentV2` as LND does before dispatching, and makes the node's `xpay`
/// parameters; with the invoice's payment hash.
fn xpay_params(req: &routerrpc::SendPaymentRequest) -> Result<(Value, String), Status> {
    let invoice: Bolt11Invoice = req
        .payment_request
        .trim()
        .parse()
        .map_err(|e| Status::invalid_argument(format!("invalid payment request: {e:?}")))?;
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    if invoice.duration_since_epoch() + invoice.expiry_time() <= now {
        return Err(Status::invalid_argument("invoice expired"));
    }
    let hash = hex::encode(invoice.payment_hash().as_ref() as &[u8]);
    let mut p = Map::new();
    p.insert("invstring".into(), req.payment_request.trim().into());
    let amount_msat = match (req.amt, req.amt_msat) {
        (a, m) if a != 0 && m != 0 => {
            return Err(Status::invalid_argument(
                "amount and amount_msat are mutually exclusive",
            ))
        }
        (a, _) if a != 0 => u64::try_from(a).ok().map(|a| a * 1000),
        (_, m) if m != 0 => u64::try_from(m).ok(),
        _ => None,
    };
    match (invoice.amount_milli_satoshis(), amount_msat) {
        (None, None) => {
            return Err(Status::invalid_argument(
                "amount must be specified when paying a zero amount invoice",
            ))
        }
        (Some(_), Some(_)) => {
            return Err(Status::invalid_argument(
                "amount must not be specified when paying a non-zero amount invoice",
            ))
        }
        (None, Some(m)) => {
            p.insert("amount_msat".into(), m.into());
        }
        (Some(_), None) => {}
    }
    let fee = match (req.fee_limit_sat, req.fee_limit_msat) {
        (s, m) if s != 0 && m != 0 => {
            return Err(Status::invalid_argument(
                "fee_limit_sat and fee_limit_msat are mutually exclusive",
            ))
        }
        (s, _) if s > 0 => Some(s.saturating_mul(1000)),
        (_, m) if m > 0 => Some(m),
        _ => None,
    };
    if let Some(f) = fee {
        p.insert("maxfee".into(), f.into());
    }
    if req.timeout_seconds > 0 {
        p.insert("retry_for".into(), req.timeout_seconds.into());
    }
    Ok((Value::Object(p), hash))
}

/// `SendPaymentV2`: pays through the node, the updates streamed.
///
/// # Errors
/// LND's refusal of a request it would not dispatch.
pub fn send(service: Arc<Service>, req: routerrpc::SendPaymentRequest) -> Result<Updates, Status> {
    let (params, hash) = xpay_params(&req)?;
    let (tx, rx) = mpsc::channel(4);
    tokio::spawn(async move {
        let invoice = req.payment_request.trim().to_owned();
        if !req.no_inflight_updates {
            let _ = tx
                .send(Ok(payment(&invoice, &hash, PaymentStatus::InFlight)))
                .await;
        }
        let mut done = payment(&invoice, &hash, PaymentStatus::Succeeded);
        match service.node_raw("xpay", params).await {
            Ok(paid) => {
                let (amount, sent) = (
                    paid["amount_msat"].as_u64().unwrap_or(0),
                    paid["amount_sent_msat"].as_u64().unwrap_or(0),
                );
                fill(&mut done, amount, sent);
                done.payment_preimage = paid["payment_preimage"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned();
            }
            Err(CallError::Rpc(e)) => {
                done.status = PaymentStatus::Failed as i32;
                done.failure_reason = reason_of(e["code"].as_i64()) as i32;
            }
            Err(CallError::Unreachable(why)) => {
                let _ = tx
                    .send(Err(Status::unavailable(format!("the node: {why}"))))
                    .await;
                return;
            }
        }
        let _ = tx.send(Ok(done)).await;
    });
    Ok(rx)
}

/// Amounts and fee of a payment of `amount` msat that cost `sent` msat.
#[allow(deprecated)]
fn fill(p: &mut lnrpc::Payment, amount: u64, sent: u64) {
    let signed = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
    let fee = sent.saturating_sub(amount);
    p.value_msat = signed(amount);
    p.value_sat = signed(amount / 1000);
    p.value = p.value_sat;
    p.fee_msat = signed(fee);
    p.fee_sat = signed(fee / 1000);
    p.fee = p.fee_sat;
}

/// A payment as the node's `listpays` shows it.
#[allow(deprecated)]
fn from_listpays(pay: &Value) -> lnrpc::Payment {
    let status = match pay["status"].as_str() {
        Some("complete") => PaymentStatus::Succeeded,
        Some("failed") => PaymentStatus::Failed,
        _ => PaymentStatus::InFlight,
    };
    let mut p = payment(
        pay["bolt11"].as_str().unwrap_or_default(),
        pay["payment_hash"].as_str().unwrap_or_default(),
        status,
    );
    let created = pay["created_at"].as_i64().unwrap_or(0);
    p.creation_date = created;
    p.creation_time_ns = created.saturating_mul(1_000_000_000);
    fill(
        &mut p,
        pay["amount_msat"].as_u64().unwrap_or(0),
        pay["amount_sent_msat"].as_u64().unwrap_or(0),
    );
    p.payment_preimage = pay["preimage"].as_str().unwrap_or_default().to_owned();
    if status == PaymentStatus::Failed {
        p.failure_reason = PaymentFailureReason::FailureReasonError as i32;
    }
    p
}

/// `TrackPaymentV2`: the payment of `hash` as it is, then (unless `no_inflight_updates` asks
/// for the end only) each change, until it succeeded or failed.
///
/// # Errors
/// `NotFound` when the node has no payment of that hash (LND's "payment isn't initiated").
pub async fn track(
    service: Arc<Service>,
    hash: Vec<u8>,
    no_inflight_updates: bool,
) -> Result<Updates, Status> {
    if hash.len() != 32 {
        return Err(Status::invalid_argument("invalid hash"));
    }
    let hash = hex::encode(hash);
    let first = latest(&service, &hash)
        .await?
        .ok_or_else(|| Status::not_found("payment isn't initiated"))?;
    let (tx, rx) = mpsc::channel(4);
    tokio::spawn(async move {
        let mut last = first;
        loop {
            let final_ = last.status != PaymentStatus::InFlight as i32;
            if (final_ || !no_inflight_updates) && tx.send(Ok(last.clone())).await.is_err() {
                return;
            }
            if final_ {
                return;
            }
            // The node's `waitsendpay` covers `sendpay` payments only; a second is LND's
            // own granularity of payment updates.
            loop {
                tokio::time::sleep(Duration::from_secs(1)).await;
                match latest(&service, &hash).await {
                    Ok(Some(p)) if p.status != last.status => {
                        last = p;
                        break;
                    }
                    Ok(_) => {}
                    Err(e) => {
                        let _ = tx.send(Err(e)).await;
                        return;
                    }
                }
            }
        }
    });
    Ok(rx)
}

/// The node's latest payment of `hash`, if any.
async fn latest(service: &Service, hash: &str) -> Result<Option<lnrpc::Payment>, Status> {
    let pays = service
        .node("listpays", json!({"payment_hash": hash}))
        .await?;
    Ok(pays["pays"]
        .as_array()
        .and_then(|p| {
            p.iter()
                .max_by_key(|p| p["created_at"].as_u64().unwrap_or(0))
        })
        .map(from_listpays))
}
