//! The `invoice` method: params → a validated [`InvoiceRequest`] → the creator → the result.

use invoiced_actors::invoice_creator::{CreateInvoice, InvoiceRequest};
use invoiced_actors::key_signer::PreimageSource;
use invoiced_actors::policy::bolt11::Cltv;
use invoiced_events::{InvoiceRecord, Label};
use serde_json::value::RawValue;
use serde_json::{Map, Value};

use super::error::RpcError;
use super::invoice_params::{InvoiceParams, Words, DEFAULT_EXPIRY};
use super::params::{required, ParamSpec};
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
    named_only: &["idempotent", "description_hash"],
    required: 3,
};

/// How `invoice` words its refusals (Core Lightning's).
const WORDS: Words = Words {
    hex32: "should be 64 hex digits",
    cltv: "should be an integer",
};

/// Parses `invoice` params into a request.
///
/// # Errors
/// -32602 naming the first bad parameter in order of appearance, then the first missing one.
pub fn parse_request(
    params: Option<&RawValue>,
    default_cltv: Cltv,
) -> Result<InvoiceRequest, RpcError> {
    let mut p = InvoiceParams::read(params, &SPEC, &WORDS)?;
    let amount = required(p.amount, "amount_msat")?;
    let label = required(p.label.take(), "label")?;
    let description = p.description()?;
    let label = Some(Label::new(label).map_err(|e| RpcError::label(&e))?);
    Ok(InvoiceRequest {
        amount,
        label,
        description,
        expiry: p.expiry.unwrap_or(DEFAULT_EXPIRY),
        fallbacks: p.fallbacks.unwrap_or_default(),
        preimage: p
            .preimage
            .map_or(PreimageSource::Generate, PreimageSource::Supplied),
        expose: p.expose.unwrap_or_default(),
        cltv: p.cltv.unwrap_or(default_cltv),
        idempotent: p.idempotent.unwrap_or(false),
        hold: false,
    })
}

/// The result object, in Core Lightning's key order (plus `expiry_time`, the older man page's name).
pub fn result_json(r: &InvoiceRecord) -> Value {
    let (c, index) = (&r.created.body, r.created.created_index);
    let mut m = Map::new();
    m.insert("payment_hash".into(), c.payment_hash.to_hex().into());
    m.insert("expires_at".into(), c.expires_at.into());
    m.insert("expiry_time".into(), c.expires_at.into());
    m.insert("bolt11".into(), c.bolt11.clone().into());
    m.insert("payment_secret".into(), c.payment_secret.to_hex().into());
    m.insert("created_index".into(), index.get().into());
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
