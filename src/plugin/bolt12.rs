//! BOLT12 invoices go to invoiced: the node's offers plugin answers an `invoice_request` with
//! `createinvoice {invstring, label, preimage}` on lightningd's socket, and the `rpc_command`
//! hook hands a BOLT12 one (`lni1…`) to invoiced, which completes, signs and records it
//! (`rpc/createinvoice.rs`). The node keeps its offers: before invoiced is asked, the node's
//! `listoffers` says whether the invoice answers one of them, and lightningd's 907 "offer not
//! active" is given here when that offer is disabled; an active one is passed on as
//! `local_offer_id`. A BOLT11 `createinvoice` goes on to lightningd unchanged.

use serde_json::{json, Value};

use super::selfpay::{own_call, param};
use crate::rpc_client::RpcPool;
use invoiced_actors::policy::bolt12::{Invoice, HRP};

/// Core Lightning's `INVOICE_OFFER_INACTIVE`.
pub const OFFER_INACTIVE: i64 = 907;

/// The invoice string of a `createinvoice`, when it is a BOLT12 one.
pub fn bolt12_invstring(params: &Value) -> Option<&str> {
    param(params, "invstring", 0)
        .and_then(Value::as_str)
        .filter(|s| {
            s.get(..HRP.len())
                .is_some_and(|p| p.eq_ignore_ascii_case(HRP))
        })
}

/// The hook's answer for a BOLT12 `createinvoice` (`invstring` its invoice string): invoiced's
/// answer or error, or 907 when the node's offer is not active.
pub async fn createinvoice(
    invoiced: &RpcPool,
    node: &std::path::Path,
    invstring: &str,
    params: &Value,
) -> Value {
    let mut asked = match params {
        Value::Array(a) => {
            json!({ "invstring": a.first(), "label": a.get(1), "preimage": a.get(2) })
        }
        other => other.clone(),
    };
    // An unparsable string is invoiced's to refuse, in lightningd's words.
    let offer = Invoice::decode(invstring)
        .ok()
        .filter(Invoice::names_an_offer)
        .map(|i| hex::encode(i.offer_id()));
    if let Some(offer_id) = offer {
        match own_call(node, "listoffers", &json!({ "offer_id": offer_id })).await {
            Ok(found) => match found["offers"].as_array().and_then(|a| a.first()) {
                Some(o) if o["active"] == json!(false) => {
                    return json!({ "return": { "error": { "code": OFFER_INACTIVE, "message": "offer not active" } } });
                }
                Some(_) => asked["local_offer_id"] = json!(offer_id),
                None => {}
            },
            Err(e) => {
                return json!({ "return": { "error": e.to_error_object("lightningd", node) } })
            }
        }
    }
    match invoiced.call("createinvoice", &asked).await {
        Ok(result) => json!({ "return": { "result": result } }),
        Err(e) => json!({ "return": { "error": e.to_error_object("invoiced", invoiced.path()) } }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_bolt12_invoice_is_ours() {
        assert_eq!(
            bolt12_invstring(&json!({"invstring": "lni1qq", "label": "l"})),
            Some("lni1qq")
        );
        assert_eq!(
            bolt12_invstring(&json!(["LNI1QQ", "l", "00"])),
            Some("LNI1QQ")
        );
        assert_eq!(
            bolt12_invstring(&json!({"invstring": "lnbcrt1p"})),
            None,
            "BOLT11 stays lightningd's"
        );
        assert_eq!(bolt12_invstring(&json!({"invstring": "ln"})), None);
        assert_eq!(bolt12_invstring(&json!({"label": "l"})), None);
    }
}
