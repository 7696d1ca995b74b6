//! `selfpay` (the node's side): a payment the node makes to itself. lightningd never calls
//! `htlc_accepted` for one (`injectpaymentonion`, which `xpay` and `pay` use, puts the payment
//! straight into the node's own invoice check), so `invoiced-cln` hands the onion it injects to
//! invoiced, which is the one that decides: the layer meant for the node is peeled with the
//! node's key; if the payment ends here, its payload is checked and settled as any payment
//! (`settleinvoice`'s rules: the payment secret, at least the amount and at most twice it, an
//! unpaid invoice) and the answer is the paid invoice with its preimage; if it goes on (a
//! circular payment leaving through a channel), `{"last_hop": false}`, and it comes back as an
//! HTLC like any other.

use invoiced_actors::invoice_ledger::SettleInvoice;
use invoiced_actors::key_signer::PeelOnion;
use invoiced_actors::policy::onion::ONION_LEN;
use invoiced_events::{Msat, PaymentHash, PaymentSecret};
use serde_json::value::RawValue;
use serde_json::{json, Value};

use super::error::{Internal, RpcError};
use super::object::invoice_json;
use super::params::{as_string, bind, hash32, required, ParamSpec};
use super::RpcContext;

/// `selfpay` parameters.
pub const SPEC: ParamSpec = ParamSpec {
    names: &["onion", "payment_hash"],
    aliases: &[],
    named_only: &[],
    required: 2,
};

/// Reads `selfpay` params: the onion's bytes and the payment hash.
///
/// # Errors
/// -32602 naming the parameter.
pub fn parse_selfpay(params: Option<&RawValue>) -> Result<(Vec<u8>, PaymentHash), RpcError> {
    let (mut onion, mut hash) = (None, None);
    for (name, v) in bind(params, &SPEC)? {
        match name {
            "onion" => {
                let bad = || {
                    RpcError::bad_param(
                        "onion",
                        &format!("should be {ONION_LEN} bytes of hex"),
                        v.get(),
                    )
                };
                // The length first: nothing longer than an onion is decoded.
                let text = as_string(v)
                    .filter(|t| t.len() == 2 * ONION_LEN)
                    .ok_or_else(bad)?;
                onion = Some(hex::decode(text).map_err(|_| bad())?);
            }
            _ => hash = Some(PaymentHash(hash32(v, "payment_hash")?)),
        }
    }
    Ok((required(onion, "onion")?, required(hash, "payment_hash")?))
}

/// Runs `selfpay {onion, payment_hash}`.
pub async fn selfpay(ctx: &RpcContext, params: Option<&RawValue>) -> Result<Value, RpcError> {
    let (onion, payment_hash) = parse_selfpay(params)?;
    // Only an invoice of ours is worth the node key's work.
    let ours = ctx
        .invoices
        .pick(|s| s.invoices.by_hash(&payment_hash).is_some())
        .map_err(|e| RpcError::internal(Internal::Invoices, e))?;
    if !ours {
        return Err(RpcError::unknown_invoice());
    }
    let peeled = ctx
        .signer
        .send(PeelOnion {
            onion,
            payment_hash,
        })
        .await
        .map_err(|e| RpcError::internal(Internal::Actor, e))?
        .map_err(|e| RpcError::invalid_params(e.to_string()))?;
    if !peeled.last_hop {
        return Ok(json!({ "last_hop": false }));
    }
    let p = peeled.payload;
    let secret = p.payment_secret.ok_or_else(|| {
        RpcError::invalid_params("onion: the last hop's payload has no payment_secret")
    })?;
    if p.total_msat.is_some_and(|total| total != p.amt_to_forward) {
        return Err(RpcError::invalid_params(
            "onion: a part of a larger payment; a payment from the node to itself is made whole",
        ));
    }
    let settle = SettleInvoice {
        payment_hash,
        amount_msat: Msat(p.amt_to_forward),
        payment_secret: PaymentSecret(secret),
        parts: vec![],
    };
    let settled = ctx.ledger.send(settle).await??;
    let mut answer = invoice_json(&settled.invoice, Some(&settled.preimage));
    answer["last_hop"] = json!(true);
    Ok(answer)
}
