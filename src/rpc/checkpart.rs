//! `checkpart` (the node's side): the verdict on one HTLC that ends at the node, from what its
//! onion and the HTLC say. The daemon is the one place that decides a payment: `invoiced-cln`
//! sends each HTLC here as lightningd hands it over and carries the verdict out (see
//! `invoice_ledger::CheckPart` for the checks).
//!
//! Answers `{"verdict": "unknown"}` (not one of invoiced's invoices), `{"verdict": "join",
//! "hold": BOOL}` (hold it with its payment's other parts), `{"verdict": "resolve",
//! "payment_preimage"}` (a replay of an HTLC that paid it), `{"verdict": "paid_unrecorded",
//! "payment_preimage"}` (paid before HTLCs were recorded: the node's datastore knows) or
//! `{"verdict": "fail", "reason"}`.

use invoiced_actors::invoice_ledger::{CheckPart, PartVerdict};
use invoiced_events::{Msat, PaymentHash, PaymentSecret};
use serde_json::value::RawValue;
use serde_json::{json, Value};

use super::error::RpcError;
use super::params::{bind, hash32, part, required, unsigned, ParamSpec};
use super::RpcContext;

/// `checkpart` parameters.
pub const SPEC: ParamSpec = ParamSpec {
    names: &[
        "payment_hash",
        "part",
        "cltv_expiry_relative",
        "total_msat",
        "payment_secret",
    ],
    aliases: &[],
    named_only: &[],
    required: 3,
};

/// Reads `checkpart` params.
///
/// # Errors
/// -32602 naming the parameter.
pub fn parse_checkpart(params: Option<&RawValue>) -> Result<CheckPart, RpcError> {
    let (mut hash, mut the_part, mut relative, mut total, mut secret) =
        (None, None, None, None, None);
    for (name, v) in bind(params, &SPEC)? {
        match name {
            "payment_hash" => hash = Some(PaymentHash(hash32(v, "payment_hash")?)),
            "part" => {
                let obj: Value = serde_json::from_str(v.get())
                    .map_err(|_| RpcError::bad_param("part", "should be an object", v.get()))?;
                the_part = Some(part(&obj, "part")?);
            }
            "cltv_expiry_relative" => {
                relative = Some(
                    u32::try_from(unsigned(
                        v,
                        "cltv_expiry_relative",
                        "should be a number of blocks",
                        u64::from(u32::MAX),
                    )?)
                    .unwrap_or(u32::MAX),
                );
            }
            "total_msat" => {
                total = Some(unsigned(
                    v,
                    "total_msat",
                    "should be positive msat",
                    u64::MAX,
                )?)
            }
            _ => secret = Some(PaymentSecret(hash32(v, "payment_secret")?)),
        }
    }
    let part = required(the_part, "part")?;
    Ok(CheckPart {
        payment_hash: required(hash, "payment_hash")?,
        total_msat: Msat(total.unwrap_or(part.amount_msat.as_msat())),
        part,
        payment_secret: secret,
        cltv_expiry_relative: required(relative, "cltv_expiry_relative")?,
    })
}

/// Runs `checkpart`.
pub async fn checkpart(ctx: &RpcContext, params: Option<&RawValue>) -> Result<Value, RpcError> {
    let verdict = ctx.ledger.send(parse_checkpart(params)?).await??;
    Ok(match verdict {
        PartVerdict::Unknown => json!({ "verdict": "unknown" }),
        PartVerdict::Join { hold } => json!({ "verdict": "join", "hold": hold }),
        PartVerdict::Resolve(p) => {
            json!({ "verdict": "resolve", "payment_preimage": hex::encode(p.0) })
        }
        PartVerdict::PaidUnrecorded(p) => {
            json!({ "verdict": "paid_unrecorded", "payment_preimage": hex::encode(p.0) })
        }
        PartVerdict::Fail(reason) => json!({ "verdict": "fail", "reason": reason }),
    })
}
