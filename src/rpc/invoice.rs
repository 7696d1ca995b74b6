//! The `invoice` method: params → a validated [`InvoiceRequest`] → the creator → the result.

use invoiced_actors::invoice_creator::{CreateInvoice, InvoiceRequest, IssuedInvoice};
use invoiced_actors::key_signer::{PaymentPreimage, PreimageSource};
use invoiced_actors::policy::bolt11::{Cltv, Expiry, InvoiceAmount};
use invoiced_events::{AmountOrAny, Description, ExposePrivateChannels, Label, ShortChannelId};
use serde_json::value::RawValue;
use serde_json::{Map, Value};

use super::error::RpcError;
use super::params::{
    as_string, bind, boolean, has_unicode_escape, hex32, label_text, required, unsigned, ParamSpec,
};
use super::RpcContext;

/// Declared parameters, in positional order (`msatoshi` is the older `invoice` man page's name for `amount_msat`).
pub const SPEC: ParamSpec = ParamSpec {
    names: &[
        "amount_msat",
        "label",
        "description",
        "expiry",
        "fallbacks",
        "preimage",
        "exposeprivatechannels",
        "cltv",
        "deschashonly",
    ],
    aliases: &[("msatoshi", "amount_msat")],
    named_only: &["idempotent"],
    required: 3,
};

/// Default relative expiry: one week.
pub(super) const DEFAULT_EXPIRY: Expiry = Expiry::WEEK;

pub(super) fn amount(v: &RawValue) -> Result<InvoiceAmount, RpcError> {
    let bad = || RpcError::bad_param("amount_msat", "should be positive msat or 'any'", v.get());
    let text = match v.get().as_bytes().first() {
        Some(b'"') => as_string(v).ok_or_else(bad)?,
        Some(b'0'..=b'9') => v.get().to_owned(),
        _ => return Err(bad()),
    };
    let amount: AmountOrAny = text.parse().map_err(|_| bad())?;
    InvoiceAmount::new(amount)
        .map_err(|e| RpcError::bad_param("amount_msat", &e.to_string(), v.get()))
}

/// A relative expiry in seconds (`invoice`'s and `holdinvoice`'s `expiry`).
pub(super) fn expiry_param(v: &RawValue) -> Result<Expiry, RpcError> {
    let e = unsigned(
        v,
        "expiry",
        "should be an unsigned 64 bit integer",
        u64::MAX,
    )?;
    Expiry::new(e).map_err(|e| RpcError::bad_param("expiry", &e.to_string(), v.get()))
}

pub(super) fn description(v: &RawValue) -> Result<String, RpcError> {
    let raw = v.get();
    let bad = || RpcError::bad_param("description", "should be a string (without \\u)", raw);
    if has_unicode_escape(raw) {
        return Err(bad());
    }
    as_string(v).ok_or_else(bad)
}

fn scid(v: &RawValue, reason: &str) -> Result<ShortChannelId, RpcError> {
    as_string(v)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| RpcError::bad_param("exposeprivatechannels", reason, v.get()))
}

pub(super) fn expose(v: &RawValue) -> Result<ExposePrivateChannels, RpcError> {
    match v.get() {
        "true" => Ok(ExposePrivateChannels::Always),
        "false" => Ok(ExposePrivateChannels::Never),
        raw if raw.starts_with('[') => {
            let items: Vec<&RawValue> = serde_json::from_str(raw).map_err(|_| {
                RpcError::bad_param("exposeprivatechannels", "should be a short channel id", raw)
            })?;
            items
                .into_iter()
                .map(|i| scid(i, "should be a short channel id"))
                .collect::<Result<_, _>>()
                .map(ExposePrivateChannels::Only)
        }
        _ => Ok(ExposePrivateChannels::Only(vec![scid(
            v,
            "should be a short_channel_id of form NxNxN",
        )?])),
    }
}

fn fallbacks(v: &RawValue) -> Result<Vec<String>, RpcError> {
    let items: Vec<&RawValue> = if v.get().starts_with('[') {
        serde_json::from_str(v.get())
            .map_err(|_| RpcError::bad_param("fallbacks", "should be an array", v.get()))?
    } else {
        return Err(RpcError::bad_param(
            "fallbacks",
            "should be an array",
            v.get(),
        ));
    };
    // A non-string element is an invalid address (-1), as in Core Lightning.
    Ok(items
        .into_iter()
        .map(|i| as_string(i).unwrap_or_default())
        .collect())
}

/// Parses `invoice` params into a request.
///
/// # Errors
/// -32602 naming the first bad parameter in order of appearance, then the first missing one.
pub fn parse_request(
    params: Option<&RawValue>,
    default_cltv: Cltv,
) -> Result<InvoiceRequest, RpcError> {
    let (
        mut amount_msat,
        mut label,
        mut desc,
        mut expiry,
        mut fallback_list,
        mut preimage,
        mut expose_private,
        mut cltv,
        mut deschashonly,
    ) = (None, None, None, None, None, None, None, None, None);
    let mut idem = None;
    for (name, v) in bind(params, &SPEC)? {
        match name {
            "amount_msat" => amount_msat = Some(amount(v)?),
            "label" => label = Some(label_text(v, "label")?),
            "description" => desc = Some(description(v)?),
            "expiry" => expiry = Some(expiry_param(v)?),
            "fallbacks" => fallback_list = Some(fallbacks(v)?),
            "preimage" => {
                preimage = Some(PaymentPreimage(hex32(
                    v,
                    "preimage",
                    "should be 64 hex digits",
                )?))
            }
            "exposeprivatechannels" => expose_private = Some(expose(v)?),
            "cltv" => {
                let c = unsigned(v, "cltv", "should be an integer", u64::from(u32::MAX))?;
                cltv = Some(
                    Cltv::new(c)
                        .map_err(|e| RpcError::bad_param("cltv", &e.to_string(), v.get()))?,
                );
            }
            "deschashonly" => deschashonly = Some(boolean(v, "deschashonly")?),
            "idempotent" => idem = Some(boolean(v, "idempotent")?),
            other => {
                return Err(RpcError::invalid_params(format!(
                    "unhandled parameter {other}"
                )))
            }
        }
    }
    let amount = required(amount_msat, "amount_msat")?;
    let label = required(label, "label")?;
    let desc = required(desc, "description")?;
    let label = Some(Label::new(label).map_err(|e| RpcError::label(&e))?);
    let description = Description::new(desc, deschashonly.unwrap_or(false))
        .map_err(|e| RpcError::invalid_params(e.to_string()))?;
    Ok(InvoiceRequest {
        amount,
        label,
        description,
        expiry: expiry.unwrap_or(DEFAULT_EXPIRY),
        fallbacks: fallback_list.unwrap_or_default(),
        preimage: preimage.map_or(PreimageSource::Generate, PreimageSource::Supplied),
        expose: expose_private.unwrap_or_default(),
        cltv: cltv.unwrap_or(default_cltv),
        idempotent: idem.unwrap_or(false),
        hold: false,
    })
}

/// The result object, in Core Lightning's key order (plus `expiry_time`, the older man page's name).
pub fn result_json(c: &IssuedInvoice) -> Value {
    let mut m = Map::new();
    m.insert("payment_hash".into(), hex::encode(c.payment_hash.0).into());
    m.insert("expires_at".into(), c.expires_at.into());
    m.insert("expiry_time".into(), c.expires_at.into());
    m.insert("bolt11".into(), c.bolt11.clone().into());
    m.insert(
        "payment_secret".into(),
        hex::encode(c.payment_secret.0).into(),
    );
    m.insert("created_index".into(), c.created_index.into());
    for w in &c.warnings {
        m.insert(w.field().into(), w.text().into());
    }
    Value::Object(m)
}

/// Runs `invoice`.
pub async fn invoice(ctx: &RpcContext, params: Option<&RawValue>) -> Result<Value, RpcError> {
    let req = parse_request(params, ctx.cltv_final)?;
    let created = ctx.creator.send(CreateInvoice(req)).await??;
    Ok(result_json(&created))
}
