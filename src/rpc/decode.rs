//! The `decode` method for BOLT11 strings, with Core Lightning's output fields.

use bitcoin::AddressType;
use invoiced_events::ShortChannelId;
use lightning_invoice::{
    Bolt11Invoice, Bolt11InvoiceDescriptionRef, Currency, SignedRawBolt11Invoice,
};
use serde_json::value::RawValue;
use serde_json::{Map, Value};

use super::error::RpcError;
use super::listinvoices::normalise_invstring;
use super::params::{as_string, bind, required, ParamSpec};

/// Declared parameters.
pub const SPEC: ParamSpec = ParamSpec {
    names: &["string"],
    aliases: &[],
    named_only: &[],
    required: 1,
};

fn currency_hrp(c: Currency) -> &'static str {
    match c {
        Currency::Bitcoin => "bc",
        Currency::BitcoinTestnet => "tb",
        Currency::Regtest => "bcrt",
        Currency::Simnet => "sb",
        Currency::Signet => "tbs",
    }
}

/// Decodes a BOLT11 string (with or without `lightning:`) into Core Lightning's fields.
///
/// # Errors
/// -32602 on `string` when it does not parse or its signature is invalid.
pub fn decode_bolt11(text: &str, token: &str) -> Result<Value, RpcError> {
    let bad = |reason: String| RpcError::bad_param("string", &reason, token);
    let raw: SignedRawBolt11Invoice = normalise_invstring(text)
        .parse()
        .map_err(|e| bad(format!("{e}")))?;
    let signature = raw.signature().0.to_standard().serialize_der();
    let inv = Bolt11Invoice::from_signed(raw).map_err(|e| bad(format!("{e}")))?;
    let mut m = Map::new();
    m.insert("type".into(), "bolt11 invoice".into());
    m.insert("currency".into(), currency_hrp(inv.currency()).into());
    m.insert(
        "created_at".into(),
        inv.duration_since_epoch().as_secs().into(),
    );
    m.insert("expiry".into(), inv.expiry_time().as_secs().into());
    m.insert("payee".into(), inv.get_payee_pub_key().to_string().into());
    if let Some(a) = inv.amount_milli_satoshis() {
        m.insert("amount_msat".into(), a.into());
    }
    let (key, description) = description_field(&inv);
    m.insert(key.into(), description);
    m.insert(
        "min_final_cltv_expiry".into(),
        inv.min_final_cltv_expiry_delta().into(),
    );
    m.insert(
        "payment_secret".into(),
        hex::encode(inv.payment_secret().0).into(),
    );
    if let Some(f) = inv.features() {
        let be: Vec<u8> = f.le_flags().iter().rev().copied().collect();
        m.insert("features".into(), hex::encode(be).into());
    }
    if let Some(meta) = inv.payment_metadata() {
        m.insert("payment_metadata".into(), hex::encode(meta).into());
    }
    let fallbacks = fallbacks(&inv);
    if !fallbacks.is_empty() {
        m.insert("fallbacks".into(), fallbacks.into());
    }
    let routes = routes(&inv);
    if !routes.is_empty() {
        m.insert("routes".into(), routes.into());
    }
    m.insert("payment_hash".into(), inv.payment_hash().to_string().into());
    m.insert("signature".into(), hex::encode(signature).into());
    m.insert("valid".into(), true.into());
    Ok(Value::Object(m))
}

/// `description`, or `description_hash` when the invoice commits to its hash only.
fn description_field(inv: &Bolt11Invoice) -> (&'static str, Value) {
    match inv.description() {
        Bolt11InvoiceDescriptionRef::Direct(d) => ("description", d.as_inner().0.clone().into()),
        Bolt11InvoiceDescriptionRef::Hash(h) => ("description_hash", h.0.to_string().into()),
    }
}

/// The on-chain fallback addresses, each with its type, address and script.
fn fallbacks(inv: &Bolt11Invoice) -> Vec<Value> {
    inv.fallback_addresses()
        .into_iter()
        .map(|a| {
            let kind = match a.address_type() {
                Some(AddressType::P2pkh) => "P2PKH",
                Some(AddressType::P2sh) => "P2SH",
                Some(AddressType::P2wpkh) => "P2WPKH",
                Some(AddressType::P2wsh) => "P2WSH",
                Some(AddressType::P2tr) => "P2TR",
                _ => "unknown",
            };
            serde_json::json!({ "type": kind, "addr": a.to_string(), "hex": hex::encode(a.script_pubkey().as_bytes()) })
        })
        .collect()
}

/// The route hints, each a list of hops.
fn routes(inv: &Bolt11Invoice) -> Vec<Value> {
    inv.route_hints()
        .into_iter()
        .map(|r| {
            r.0.iter()
                .map(|h| {
                    serde_json::json!({
                        "pubkey": h.src_node_id.to_string(),
                        "short_channel_id": ShortChannelId::from_u64(h.short_channel_id).to_string(),
                        "fee_base_msat": h.fees.base_msat,
                        "fee_proportional_millionths": h.fees.proportional_millionths,
                        "cltv_expiry_delta": h.cltv_expiry_delta,
                    })
                })
                .collect::<Vec<_>>()
                .into()
        })
        .collect()
}

/// Runs `decode`.
pub fn decode(params: Option<&RawValue>) -> Result<Value, RpcError> {
    let mut string = None;
    for (_, v) in bind(params, &SPEC)? {
        string = Some(
            as_string(v)
                .ok_or_else(|| RpcError::bad_param("string", "should be a string", v.get()))?,
        );
    }
    let s = required(string, "string")?;
    decode_bolt11(&s, &serde_json::to_string(&s).unwrap_or_default())
}
