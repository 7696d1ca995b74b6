//! Hold invoices with the interface of daywalker90/holdinvoice 5.x — `holdinvoice`,
//! `holdinvoicesettle`, `holdinvoicecancel`, `holdinvoicelookup`, `holdinvoice-version` — and
//! the node's side, `holdaccept`, by which the plugin (or any node without it) reports parts
//! that reach a hold invoice's amount.
//!
//! Names, fields, states and messages are holdinvoice's; its codes are not (5.x answers every
//! error with -32700, the code of malformed JSON): here a bad parameter or a refused transition
//! is -32602 as in holdinvoice 4.x, a storage failure -1. Additions: `label` (unique like any
//! label; `hold-<payment_hash>` when absent), `idempotent`, and `created_index` in the answer.

use invoiced_actors::hold_keeper::{AcceptHold, CancelHold, SettleHold};
use invoiced_actors::invoice_creator::{CreateInvoice, InvoiceRequest};
use invoiced_actors::key_signer::{sha256, PreimageSource};
use invoiced_actors::policy::bolt11::Cltv;
use invoiced_events::{
    CreatedIndex, HoldState, InvoiceRecord, Label, PaymentHash, PaymentPreimage, PaymentSecret,
    PreimageSeal,
};
use serde::Serialize;
use serde_json::value::RawValue;
use serde_json::{json, Value};

use super::error::RpcError;
use super::invoice_params::{InvoiceParams, Words, DEFAULT_EXPIRY};
use super::object::reveal;
use super::params::{bind, block_height, hash32, required, ParamSpec};
use super::RpcContext;

/// The interface version answered by `holdinvoice-version`.
pub const HOLDINVOICE_VERSION: &str = "5.0.0";

/// holdinvoice's default `cltv` (not the node's `cltv-final`).
const DEFAULT_HOLD_CLTV: u64 = 144;

/// `holdinvoice` parameters, in holdinvoice 5.x's positional order, then ours.
pub const SPEC: ParamSpec = ParamSpec {
    names: &[
        "amount_msat",
        "description",
        "expiry",
        "payment_hash",
        "preimage",
        "cltv",
        "deschashonly",
        "exposeprivatechannels",
        "label",
    ],
    aliases: &[("msatoshi", "amount_msat")],
    named_only: &["idempotent", "description_hash"],
    required: 2,
};

/// `holdinvoicesettle` parameters (give one; `preimage` is needed for an invoice made from its
/// hash alone).
pub const SETTLE_SPEC: ParamSpec = ParamSpec {
    names: &["payment_hash", "preimage"],
    aliases: &[],
    named_only: &[],
    required: 0,
};
/// `holdinvoicecancel` parameters.
pub const CANCEL_SPEC: ParamSpec = ParamSpec {
    names: &["payment_hash"],
    aliases: &[],
    named_only: &[],
    required: 1,
};
/// `holdinvoicelookup` parameters.
pub const LOOKUP_SPEC: ParamSpec = ParamSpec {
    names: &["payment_hash"],
    aliases: &[],
    named_only: &[],
    required: 0,
};
/// `holdaccept` parameters (the node's side).
pub const ACCEPT_SPEC: ParamSpec = ParamSpec {
    names: &["payment_hash", "payment_secret", "parts", "blockheight"],
    aliases: &[],
    named_only: &[],
    required: 4,
};

/// How `holdinvoice` words its refusals (holdinvoice's).
const WORDS: Words = Words {
    hex32: "should be a 32 byte hex value",
    cltv: "should be an unsigned 64 bit integer",
};

/// Reads `holdinvoice` params into an invoice request.
///
/// # Errors
/// -32602 naming the first bad parameter, then the first missing one; a `payment_hash` that is
/// not the `preimage`'s in holdinvoice's words.
pub fn parse_request(params: Option<&RawValue>) -> Result<InvoiceRequest, RpcError> {
    let mut p = InvoiceParams::read(params, &SPEC, &WORDS)?;
    let amount = required(p.amount, "amount_msat")?;
    let description = p.description()?;
    let source = match (p.payment_hash, p.preimage) {
        (Some(h), Some(pre)) if PaymentHash::of(&pre) != h => {
            return Err(RpcError::invalid_params(format!(
                "payment_hash: `{h}` does not match preimage: `{}`",
                pre.to_hex()
            )))
        }
        (_, Some(pre)) => PreimageSource::Supplied(pre),
        (Some(h), None) => PreimageSource::Withheld(h),
        (None, None) => PreimageSource::Generate,
    };
    let label = match (p.label, &source) {
        (Some(l), _) => Some(l),
        (None, PreimageSource::Supplied(pre)) => Some(format!("hold-{}", PaymentHash::of(pre))),
        (None, PreimageSource::Withheld(h)) => Some(format!("hold-{h}")),
        // The hash is drawn by the signer: the creator names it then.
        (None, PreimageSource::Generate) => None,
    };
    let default_cltv =
        Cltv::new(DEFAULT_HOLD_CLTV).map_err(|e| RpcError::invalid_params(e.to_string()))?;
    Ok(InvoiceRequest {
        amount,
        label: label
            .map(Label::new)
            .transpose()
            .map_err(|e| RpcError::label(&e))?,
        description,
        expiry: p.expiry.unwrap_or(DEFAULT_EXPIRY),
        fallbacks: Vec::new(),
        preimage: source,
        expose: p.expose.unwrap_or_default(),
        cltv: p.cltv.unwrap_or(default_cltv),
        idempotent: p.idempotent.unwrap_or(false),
        hold: true,
    })
}

/// One hold invoice as holdinvoice 5.x shows it (its `HoldInvoiceResponse`), plus ours.
#[derive(Serialize)]
struct HoldJson<'a> {
    bolt11: &'a str,
    payment_hash: String,
    payment_secret: String,
    expires_at: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    preimage: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    description_hash: Option<String>,
    state: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    htlc_expiry: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    paid_at: Option<u64>,
    label: &'a str,
    created_index: u64,
}

fn hold_json<'a>(r: &'a InvoiceRecord, preimage: Option<&PaymentPreimage>) -> HoldJson<'a> {
    let c = &r.created;
    let hold = r.hold.as_ref();
    HoldJson {
        bolt11: &c.body.bolt11,
        payment_hash: hex::encode(c.body.payment_hash),
        payment_secret: hex::encode(c.body.payment_secret),
        expires_at: c.body.expires_at,
        preimage: preimage.map(|p| hex::encode(p.0)),
        description_hash: r.description_hash().map(hex::encode),
        state: hold.map_or(HoldState::Canceled, |h| h.state).as_str(),
        htlc_expiry: hold.and_then(|h| h.htlc_expiry()),
        paid_at: r.payment.as_ref().map(|p| p.paid_at),
        label: c.body.label.as_str(),
        created_index: c.created_index.get(),
    }
}

/// The hold objects of `records`, with every preimage the daemon knows (the caller's own
/// secret: holdinvoice shows it, unlike `listinvoices`, which shows a preimage only once paid).
async fn holds_json(ctx: &RpcContext, records: &[InvoiceRecord]) -> Result<Vec<Value>, RpcError> {
    let seals: Vec<(usize, &PreimageSeal)> = records
        .iter()
        .enumerate()
        .filter_map(|(i, r)| Some((i, r.preimage_seal()?)))
        .collect();
    let preimages = reveal(ctx, records, seals).await?;
    records
        .iter()
        .zip(&preimages)
        .map(|(r, p)| {
            serde_json::to_value(hold_json(r, p.as_ref()))
                .map_err(|e| RpcError::internal(super::error::Internal::Encode, e))
        })
        .collect()
}

async fn hold_value(ctx: &RpcContext, record: InvoiceRecord) -> Result<Value, RpcError> {
    let mut v = holds_json(ctx, std::slice::from_ref(&record)).await?;
    Ok(v.pop().unwrap_or(Value::Null))
}

/// Runs `holdinvoice`.
pub async fn holdinvoice(ctx: &RpcContext, params: Option<&RawValue>) -> Result<Value, RpcError> {
    let req = parse_request(params)?;
    // The invoice as committed; the signer opens its seal for the answer's preimage.
    let record = ctx.creator.send(CreateInvoice(req)).await??;
    let warnings = record.created.body.warnings.clone();
    let mut v = hold_value(ctx, record).await?;
    for w in warnings {
        v[w.field()] = w.text().into();
    }
    Ok(v)
}

/// Runs `holdinvoicesettle payment_hash | preimage`.
pub async fn holdinvoicesettle(
    ctx: &RpcContext,
    params: Option<&RawValue>,
) -> Result<Value, RpcError> {
    let (mut hash, mut preimage) = (None, None);
    for (name, v) in bind(params, &SETTLE_SPEC)? {
        match name {
            "payment_hash" => hash = Some(hash32(v, "payment_hash")?),
            _ => preimage = Some(PaymentPreimage(hash32(v, "preimage")?)),
        }
    }
    let hash = match (hash, preimage) {
        (Some(h), _) => h,
        (None, Some(p)) => sha256(&p.0),
        (None, None) => return Err(super::params::missing("payment_hash|preimage")),
    };
    let settled = ctx
        .holds
        .send(SettleHold {
            payment_hash: PaymentHash(hash),
            preimage,
        })
        .await??;
    Ok(json!({ "state": state_of(&settled) }))
}

/// Runs `holdinvoicecancel payment_hash`.
pub async fn holdinvoicecancel(
    ctx: &RpcContext,
    params: Option<&RawValue>,
) -> Result<Value, RpcError> {
    let mut hash = None;
    for (_, v) in bind(params, &CANCEL_SPEC)? {
        hash = Some(hash32(v, "payment_hash")?);
    }
    let hash = required(hash, "payment_hash")?;
    let canceled = ctx
        .holds
        .send(CancelHold {
            payment_hash: PaymentHash(hash),
        })
        .await??;
    Ok(json!({ "state": state_of(&canceled) }))
}

fn state_of(r: &InvoiceRecord) -> &'static str {
    r.hold
        .as_ref()
        .map_or(HoldState::Canceled, |h| h.state)
        .as_str()
}

/// Runs `holdinvoicelookup [payment_hash]`: `{holdinvoices: [...]}`, every hold invoice or the
/// one asked for.
pub async fn holdinvoicelookup(
    ctx: &RpcContext,
    params: Option<&RawValue>,
) -> Result<Value, RpcError> {
    let mut hash = None;
    for (_, v) in bind(params, &LOOKUP_SPEC)? {
        hash = Some(hash32(v, "payment_hash")?);
    }
    let unavailable = |e| RpcError::internal(super::error::Internal::Invoices, e);
    let entries = ctx
        .invoices
        .pick(|s| match hash {
            Some(h) => s
                .invoices
                .by_hash(&h)
                .filter(|e| e.hold.is_some())
                .cloned()
                .into_iter()
                .collect(),
            None => s
                .invoices
                .from_created_index(CreatedIndex(0))
                .filter(|e| e.hold.is_some())
                .cloned()
                .collect::<Vec<_>>(),
        })
        .map_err(unavailable)?;
    if let (Some(h), true) = (hash, entries.is_empty()) {
        return Err(RpcError::invalid_params(format!(
            "payment_hash `{}` not found",
            hex::encode(h)
        )));
    }
    let records = ctx.invoices.invoices(entries).map_err(unavailable)?;
    Ok(json!({ "holdinvoices": holds_json(ctx, &records).await? }))
}

/// Runs `holdinvoice-version`.
pub fn version(params: Option<&RawValue>) -> Result<Value, RpcError> {
    bind(params, &ParamSpec::NONE)?;
    Ok(json!({ "version": HOLDINVOICE_VERSION, "invoiced": env!("CARGO_PKG_VERSION") }))
}

/// Reads `holdaccept {payment_hash, payment_secret, parts, blockheight}` params.
///
/// # Errors
/// -32602 naming the first bad parameter (a part by its place and field), then the first
/// missing one.
pub fn parse_accept(params: Option<&RawValue>) -> Result<AcceptHold, RpcError> {
    let (mut hash, mut secret, mut parts, mut height) = (None, None, None, None);
    for (name, v) in bind(params, &ACCEPT_SPEC)? {
        match name {
            "payment_hash" => hash = Some(hash32(v, "payment_hash")?),
            "payment_secret" => secret = Some(hash32(v, "payment_secret")?),
            "parts" => parts = Some(super::params::parts(v, "parts")?),
            _ => height = Some(block_height(v, "blockheight")?),
        }
    }
    Ok(AcceptHold {
        payment_hash: PaymentHash(required(hash, "payment_hash")?),
        payment_secret: PaymentSecret(required(secret, "payment_secret")?),
        parts: required(parts, "parts")?,
        height: required(height, "blockheight")?,
    })
}

/// Runs `holdaccept` (the node's side): the parts are held; answers the hold invoice as
/// `holdinvoicelookup` shows it.
pub async fn holdaccept(ctx: &RpcContext, params: Option<&RawValue>) -> Result<Value, RpcError> {
    let record = ctx.holds.send(parse_accept(params)?).await??;
    hold_value(ctx, record).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(s: &str) -> Box<RawValue> {
        RawValue::from_string(s.to_owned()).unwrap()
    }

    #[test]
    fn holdinvoice_params_as_holdinvoice_reads_them() {
        let r = parse_request(Some(&raw(r#"{"amount_msat": 1000, "description": "d"}"#))).unwrap();
        assert_eq!(
            (r.cltv.blocks(), r.hold, r.preimage),
            (144, true, PreimageSource::Generate)
        );
        assert_eq!(
            r.label, None,
            "named hold-<payment_hash> once the signer drew it"
        );
        let h = "2a".repeat(32);
        let r = parse_request(Some(&raw(&format!(
            r#"{{"amount_msat": 1000, "description": "d", "payment_hash": "{h}"}}"#
        ))))
        .unwrap();
        assert_eq!(r.label.unwrap().as_str(), format!("hold-{h}"));
        assert_eq!(
            r.preimage,
            PreimageSource::Withheld(PaymentHash([0x2a; 32]))
        );
        let e = parse_request(Some(&raw(&format!(r#"{{"amount_msat": 1000, "description": "d", "payment_hash": "{h}", "preimage": "{h}"}}"#))))
            .unwrap_err();
        assert_eq!(
            e.message,
            format!("payment_hash: `{h}` does not match preimage: `{h}`")
        );
        let e = parse_request(Some(&raw(
            r#"{"amount_msat": 1000, "description": "d", "payment_hash": "2a2a"}"#,
        )))
        .unwrap_err();
        assert!(
            e.message
                .starts_with("payment_hash: should be a 32 byte hex value"),
            "{}",
            e.message
        );
        let e = parse_request(Some(&raw(r#"{"description": "d"}"#))).unwrap_err();
        assert_eq!(e.message, "missing required parameter: amount_msat");
        let e = parse_request(Some(&raw(r#"{"amount_msat": 1000}"#))).unwrap_err();
        assert_eq!(e.message, "missing required parameter: description");
        let e = parse_request(Some(&raw(
            r#"{"amount_msat": 1000, "description": "d", "cltv": -144}"#,
        )))
        .unwrap_err();
        assert!(
            e.message
                .starts_with("cltv: should be an unsigned 64 bit integer"),
            "{}",
            e.message
        );
        let r = parse_request(Some(&raw(
            r#"[1000, "d", 60, null, null, 40, true, false, "mine"]"#,
        )))
        .unwrap();
        assert_eq!(
            (
                r.expiry.secs(),
                r.cltv.blocks(),
                r.description.hash_only(),
                r.label.unwrap().as_str()
            ),
            (60, 40, true, "mine")
        );
    }
}
