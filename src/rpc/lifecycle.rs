//! After creation: `settleinvoice`, `delinvoice`, `waitinvoice`, `waitanyinvoice`, `wait`.

use invoiced_actors::invoice_ledger::{DeleteInvoice, SettleInvoice};
use invoiced_actors::waiters::{IndexName, WaitAnyInvoice, WaitIndex, WaitInvoice};
use invoiced_events::{AmountOrAny, Label};
use serde_json::value::RawValue;
use serde_json::{json, Map, Value};

use super::error::{RpcError, LIGHTNINGD};
use super::object::{invoice_json, invoices_json};
use super::params::{as_string, bind, boolean, hex32, label_text, required, unsigned, ParamSpec};
use super::RpcContext;

fn mailbox(e: actix::MailboxError) -> RpcError {
    RpcError::new(LIGHTNINGD, format!("internal actor unavailable: {e}"))
}

/// `settleinvoice` parameters.
pub const SETTLE_SPEC: ParamSpec =
    ParamSpec { names: &["payment_hash", "amount_msat", "payment_secret"], aliases: &[], named_only: &[], required: 3 };

/// Runs `settleinvoice {payment_hash, amount_msat, payment_secret}`: a payment arrived.
pub async fn settleinvoice(ctx: &RpcContext, params: Option<&RawValue>) -> Result<Value, RpcError> {
    let (mut hash, mut amount, mut secret) = (None, None, None);
    for (name, v) in bind(params, &SETTLE_SPEC)? {
        match name {
            "payment_hash" => hash = Some(hex32(v, "payment_hash", "should be a 32 byte hex value")?),
            "amount_msat" => {
                let text = as_string(v).unwrap_or_else(|| v.get().to_owned());
                let bad = || RpcError::bad_param("amount_msat", "should be a positive amount in msat", v.get());
                amount = match text.parse::<AmountOrAny>().map_err(|_| bad())? {
                    AmountOrAny::Fixed(m) => Some(m.as_msat()),
                    AmountOrAny::Any => return Err(bad()),
                };
            }
            "payment_secret" => secret = Some(hex32(v, "payment_secret", "should be a 32 byte hex value")?),
            other => return Err(RpcError::invalid_params(format!("unhandled parameter {other}"))),
        }
    }
    let msg = SettleInvoice {
        payment_hash: required(hash, "payment_hash")?,
        amount_msat: required(amount, "amount_msat")?,
        payment_secret: required(secret, "payment_secret")?,
    };
    let settled = ctx.ledger.send(msg).await.map_err(mailbox)??;
    Ok(invoice_json(&settled.invoice, Some(&settled.preimage)))
}

/// `delinvoice` parameters.
pub const DEL_SPEC: ParamSpec = ParamSpec { names: &["label", "status", "desconly"], aliases: &[], named_only: &[], required: 2 };

/// Runs `delinvoice label status [desconly]`.
pub async fn delinvoice(ctx: &RpcContext, params: Option<&RawValue>) -> Result<Value, RpcError> {
    let (mut label, mut status, mut desconly) = (None, None, None);
    for (name, v) in bind(params, &DEL_SPEC)? {
        match name {
            "label" => label = Some(label_text(v, "label")?),
            "status" => status = Some(as_string(v).ok_or_else(|| RpcError::bad_param("status", "should be a string", v.get()))?),
            "desconly" => desconly = Some(boolean(v, "desconly")?),
            other => return Err(RpcError::invalid_params(format!("unhandled parameter {other}"))),
        }
    }
    let label = required(label, "label")?;
    let status = required(status, "status")?;
    let desconly = desconly.unwrap_or(false);
    let Ok(label) = Label::new(label) else { return Err(RpcError::new(905, "Unknown invoice")) };
    let rec = ctx.ledger.send(DeleteInvoice { label, status, desconly }).await.map_err(mailbox)??;
    let mut out = invoices_json(ctx, std::slice::from_ref(&rec)).await?.pop().unwrap_or(Value::Null);
    if desconly {
        if let Value::Object(m) = &mut out {
            m.shift_remove("description");
        }
    }
    Ok(out)
}

/// `waitinvoice` parameters.
pub const WAITINVOICE_SPEC: ParamSpec = ParamSpec { names: &["label"], aliases: &[], named_only: &[], required: 1 };

/// Runs `waitinvoice label`.
pub async fn waitinvoice(ctx: &RpcContext, params: Option<&RawValue>) -> Result<Value, RpcError> {
    let mut label = None;
    for (_, v) in bind(params, &WAITINVOICE_SPEC)? {
        label = Some(label_text(v, "label")?);
    }
    let label = required(label, "label")?;
    let Ok(label) = Label::new(label) else { return Err(RpcError::new(LIGHTNINGD, "Label not found")) };
    match ctx.waiters.send(WaitInvoice { label }).await.map_err(mailbox)? {
        Ok(rec) => Ok(invoices_json(ctx, std::slice::from_ref(&rec)).await?.pop().unwrap_or(Value::Null)),
        Err(e) => Err(RpcError::from_wait(e, ctx).await),
    }
}

/// `waitanyinvoice` parameters.
pub const WAITANY_SPEC: ParamSpec = ParamSpec { names: &["lastpay_index", "timeout"], aliases: &[], named_only: &[], required: 0 };

/// Runs `waitanyinvoice [lastpay_index] [timeout]`.
pub async fn waitanyinvoice(ctx: &RpcContext, params: Option<&RawValue>) -> Result<Value, RpcError> {
    let (mut last, mut timeout) = (None, None);
    for (name, v) in bind(params, &WAITANY_SPEC)? {
        match name {
            "lastpay_index" => last = Some(unsigned(v, "lastpay_index", "should be an unsigned 64 bit integer", u64::MAX)?),
            "timeout" => timeout = Some(unsigned(v, "timeout", "should be an unsigned 64 bit integer", u64::MAX)?),
            other => return Err(RpcError::invalid_params(format!("unhandled parameter {other}"))),
        }
    }
    let msg = WaitAnyInvoice { lastpay_index: last.unwrap_or(0), timeout };
    let rec = ctx.waiters.send(msg).await.map_err(mailbox)??;
    Ok(invoices_json(ctx, std::slice::from_ref(&rec)).await?.pop().unwrap_or(Value::Null))
}

/// `wait` parameters.
pub const WAIT_SPEC: ParamSpec = ParamSpec { names: &["subsystem", "indexname", "nextvalue"], aliases: &[], named_only: &[], required: 3 };

/// Runs `wait {subsystem: invoices, indexname, nextvalue}`.
pub async fn wait(ctx: &RpcContext, params: Option<&RawValue>) -> Result<Value, RpcError> {
    let (mut subsystem, mut index, mut next) = (None, None, None);
    for (name, v) in bind(params, &WAIT_SPEC)? {
        match name {
            "subsystem" => {
                if as_string(v).as_deref() != Some("invoices") {
                    return Err(RpcError::bad_param("subsystem", "should be one of invoices", v.get()));
                }
                subsystem = Some(true);
            }
            "indexname" => {
                index = Some(match as_string(v).as_deref() {
                    Some("created") => IndexName::Created,
                    Some("updated") => IndexName::Updated,
                    Some("deleted") => IndexName::Deleted,
                    _ => return Err(RpcError::bad_param("indexname", "should be one of created, updated or deleted", v.get())),
                })
            }
            "nextvalue" => next = Some(unsigned(v, "nextvalue", "should be an unsigned 64 bit integer", u64::MAX)?),
            other => return Err(RpcError::invalid_params(format!("unhandled parameter {other}"))),
        }
    }
    required(subsystem, "subsystem")?;
    let index = required(index, "indexname")?;
    let nextvalue = required(next, "nextvalue")?;
    let wake = ctx.waiters.send(WaitIndex { index, nextvalue }).await.map_err(mailbox)??;
    let mut m = Map::new();
    m.insert("subsystem".into(), "invoices".into());
    m.insert(wake.index.as_str().into(), wake.value.into());
    if let Some(d) = wake.details {
        let mut inv = Map::new();
        if let Some(s) = d.status {
            inv.insert("status".into(), s.into());
        }
        if let Some(l) = d.label {
            inv.insert("label".into(), l.into());
        }
        if let Some(desc) = d.description {
            inv.insert("description".into(), desc.into());
        }
        if let Some(b) = d.bolt11 {
            inv.insert("bolt11".into(), b.into());
        }
        m.insert("invoices".into(), Value::Object(inv));
    }
    Ok(json!(m))
}
