//! After creation: `settleinvoice`, `delinvoice`, `waitinvoice`, `waitanyinvoice`, `wait`.

use invoiced_actors::invoice_ledger::{DeleteInvoice, SettleInvoice};
use invoiced_actors::waiters::{
    IndexName, IndexWake, WaitAnyInvoice, WaitIndex, WaitInvoice, WaitInvoiceError,
};
use invoiced_events::{AmountOrAny, Label, Msat, PayIndex, PaymentHash, PaymentSecret};
use serde_json::value::RawValue;
use serde_json::{Map, Value};

use super::error::RpcError;
use super::object::{invoice_json, invoices_json};
use super::params::{as_string, bind, boolean, hash32, label_text, required, unsigned, ParamSpec};
use super::RpcContext;

/// `settleinvoice` parameters.
pub const SETTLE_SPEC: ParamSpec = ParamSpec {
    names: &["payment_hash", "amount_msat", "payment_secret", "parts"],
    aliases: &[],
    named_only: &[],
    required: 3,
};

/// Runs `settleinvoice {payment_hash, amount_msat, payment_secret, [parts]}`: a payment arrived
/// (with the HTLCs that brought it, recorded with it; the same HTLCs again answer as before).
pub async fn settleinvoice(ctx: &RpcContext, params: Option<&RawValue>) -> Result<Value, RpcError> {
    let settled = ctx.ledger.send(parse_settle(params)?).await??;
    Ok(invoice_json(&settled.invoice, Some(&settled.preimage)))
}

/// Reads `settleinvoice` params.
///
/// # Errors
/// -32602 naming the parameter.
pub fn parse_settle(params: Option<&RawValue>) -> Result<SettleInvoice, RpcError> {
    let (mut hash, mut amount, mut secret, mut parts) = (None, None, None, None);
    for (name, v) in bind(params, &SETTLE_SPEC)? {
        match name {
            "payment_hash" => hash = Some(PaymentHash(hash32(v, "payment_hash")?)),
            "amount_msat" => {
                let text = as_string(v).unwrap_or_else(|| v.get().to_owned());
                let bad = || {
                    RpcError::bad_param(
                        "amount_msat",
                        "should be a positive amount in msat",
                        v.get(),
                    )
                };
                amount = match text.parse::<AmountOrAny>().map_err(|_| bad())? {
                    AmountOrAny::Fixed(m) => Some(m.as_msat()),
                    AmountOrAny::Any => return Err(bad()),
                };
            }
            "payment_secret" => secret = Some(PaymentSecret(hash32(v, "payment_secret")?)),
            "parts" => parts = Some(super::params::parts(v, "parts")?),
            other => {
                return Err(RpcError::invalid_params(format!(
                    "unhandled parameter {other}"
                )))
            }
        }
    }
    Ok(SettleInvoice {
        payment_hash: required(hash, "payment_hash")?,
        amount_msat: Msat(required(amount, "amount_msat")?),
        payment_secret: required(secret, "payment_secret")?,
        parts: parts.unwrap_or_default(),
    })
}

/// `delinvoice` parameters.
pub const DEL_SPEC: ParamSpec = ParamSpec {
    names: &["label", "status", "desconly"],
    aliases: &[],
    named_only: &[],
    required: 2,
};

/// Runs `delinvoice label status [desconly]`.
pub async fn delinvoice(ctx: &RpcContext, params: Option<&RawValue>) -> Result<Value, RpcError> {
    let DelQuery {
        label,
        status,
        desconly,
    } = parse_delete(params)?;
    let Ok(label) = Label::any(label) else {
        return Err(RpcError::unknown_invoice());
    };
    let rec = ctx
        .ledger
        .send(DeleteInvoice {
            label,
            status,
            desconly,
        })
        .await??;
    let mut out = invoices_json(ctx, std::slice::from_ref(&rec))
        .await?
        .pop()
        .unwrap_or(Value::Null);
    if desconly {
        if let Value::Object(m) = &mut out {
            m.shift_remove("description");
        }
    }
    Ok(out)
}

/// A `delinvoice` request, read and checked.
#[derive(Debug)]
pub struct DelQuery {
    /// The label (a label no invoice can have is 905, not a parameter error).
    pub label: String,
    /// The status it must have.
    pub status: String,
    /// Only remove its description.
    pub desconly: bool,
}

/// Reads `delinvoice` params.
///
/// # Errors
/// -32602 naming the parameter.
pub fn parse_delete(params: Option<&RawValue>) -> Result<DelQuery, RpcError> {
    let (mut label, mut status, mut desconly) = (None, None, None);
    for (name, v) in bind(params, &DEL_SPEC)? {
        match name {
            "label" => label = Some(label_text(v, "label")?),
            "status" => {
                status =
                    Some(as_string(v).ok_or_else(|| {
                        RpcError::bad_param("status", "should be a string", v.get())
                    })?)
            }
            "desconly" => desconly = Some(boolean(v, "desconly")?),
            other => {
                return Err(RpcError::invalid_params(format!(
                    "unhandled parameter {other}"
                )))
            }
        }
    }
    Ok(DelQuery {
        label: required(label, "label")?,
        status: required(status, "status")?,
        desconly: desconly.unwrap_or(false),
    })
}

/// `waitinvoice` parameters.
pub const WAITINVOICE_SPEC: ParamSpec = ParamSpec {
    names: &["label"],
    aliases: &[],
    named_only: &[],
    required: 1,
};

/// Runs `waitinvoice label`.
pub async fn waitinvoice(ctx: &RpcContext, params: Option<&RawValue>) -> Result<Value, RpcError> {
    let Ok(label) = Label::any(parse_waitinvoice(params)?) else {
        return Err(RpcError::label_not_found());
    };
    match ctx.waiters.send(WaitInvoice { label }).await?.await {
        Ok(rec) => Ok(invoices_json(ctx, std::slice::from_ref(&rec))
            .await?
            .pop()
            .unwrap_or(Value::Null)),
        Err(e) => {
            let expired = match &e {
                WaitInvoiceError::Expired(rec) => invoices_json(ctx, std::slice::from_ref(rec))
                    .await
                    .ok()
                    .and_then(|mut v| v.pop()),
                _ => None,
            };
            Err(RpcError::from_wait(&e, expired))
        }
    }
}

/// Reads `waitinvoice` params: the label.
///
/// # Errors
/// -32602 naming the parameter.
pub fn parse_waitinvoice(params: Option<&RawValue>) -> Result<String, RpcError> {
    let mut label = None;
    for (_, v) in bind(params, &WAITINVOICE_SPEC)? {
        label = Some(label_text(v, "label")?);
    }
    required(label, "label")
}

/// `waitanyinvoice` parameters.
pub const WAITANY_SPEC: ParamSpec = ParamSpec {
    names: &["lastpay_index", "timeout"],
    aliases: &[],
    named_only: &[],
    required: 0,
};

/// Runs `waitanyinvoice [lastpay_index] [timeout]`.
pub async fn waitanyinvoice(
    ctx: &RpcContext,
    params: Option<&RawValue>,
) -> Result<Value, RpcError> {
    let rec = ctx.waiters.send(parse_waitany(params)?).await?.await?;
    Ok(invoices_json(ctx, std::slice::from_ref(&rec))
        .await?
        .pop()
        .unwrap_or(Value::Null))
}

/// Reads `waitanyinvoice` params.
///
/// # Errors
/// -32602 naming the parameter.
pub fn parse_waitany(params: Option<&RawValue>) -> Result<WaitAnyInvoice, RpcError> {
    let (mut last, mut timeout) = (None, None);
    for (name, v) in bind(params, &WAITANY_SPEC)? {
        match name {
            "lastpay_index" => {
                last = Some(unsigned(
                    v,
                    "lastpay_index",
                    "should be an unsigned 64 bit integer",
                    u64::MAX,
                )?)
            }
            "timeout" => {
                timeout = Some(unsigned(
                    v,
                    "timeout",
                    "should be an unsigned 64 bit integer",
                    u64::MAX,
                )?)
            }
            other => {
                return Err(RpcError::invalid_params(format!(
                    "unhandled parameter {other}"
                )))
            }
        }
    }
    Ok(WaitAnyInvoice {
        lastpay_index: PayIndex(last.unwrap_or(0)),
        timeout,
    })
}

/// `wait` parameters.
pub const WAIT_SPEC: ParamSpec = ParamSpec {
    names: &["subsystem", "indexname", "nextvalue"],
    aliases: &[],
    named_only: &[],
    required: 3,
};

/// Runs `wait {subsystem: invoices, indexname, nextvalue}`.
pub async fn wait(ctx: &RpcContext, params: Option<&RawValue>) -> Result<Value, RpcError> {
    let wake = ctx.waiters.send(parse_wait(params)?).await?.await?;
    Ok(wake_json(wake))
}

/// Reads `wait` params.
///
/// # Errors
/// -32602 naming the parameter.
pub fn parse_wait(params: Option<&RawValue>) -> Result<WaitIndex, RpcError> {
    let (mut subsystem, mut index, mut next) = (None, None, None);
    for (name, v) in bind(params, &WAIT_SPEC)? {
        match name {
            "subsystem" => {
                if as_string(v).as_deref() != Some("invoices") {
                    return Err(RpcError::bad_param(
                        "subsystem",
                        "should be one of invoices",
                        v.get(),
                    ));
                }
                subsystem = Some(true);
            }
            "indexname" => {
                index = Some(match as_string(v).as_deref() {
                    Some("created") => IndexName::Created,
                    Some("updated") => IndexName::Updated,
                    Some("deleted") => IndexName::Deleted,
                    _ => {
                        return Err(RpcError::bad_param(
                            "indexname",
                            "should be one of created, updated or deleted",
                            v.get(),
                        ))
                    }
                })
            }
            "nextvalue" => {
                next = Some(unsigned(
                    v,
                    "nextvalue",
                    "should be an unsigned 64 bit integer",
                    u64::MAX,
                )?)
            }
            other => {
                return Err(RpcError::invalid_params(format!(
                    "unhandled parameter {other}"
                )))
            }
        }
    }
    required(subsystem, "subsystem")?;
    Ok(WaitIndex {
        index: required(index, "indexname")?,
        nextvalue: required(next, "nextvalue")?,
    })
}

/// A `wait` answer: the index's value and, when an event woke it, what changed.
fn wake_json(wake: IndexWake) -> Value {
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
            let field = if b.starts_with("lni") {
                "bolt12"
            } else {
                "bolt11"
            };
            inv.insert(field.into(), b.into());
        }
        m.insert("invoices".into(), Value::Object(inv));
    }
    Value::Object(m)
}
