//! Payments the node makes to itself: `pay`, `xpay` or `sendpay` of one of invoiced's invoices.
//!
//! lightningd settles such a payment on its own: `injectpaymentonion` (how `xpay`, and `pay`,
//! which `xpay` takes over, send) and `sendpay` with an empty route look the invoice up in the
//! node's own table and never call `htlc_accepted`. So the plugin takes both commands in the
//! `rpc_command` hook, before lightningd acts:
//!
//! 1. invoiced decides. For `injectpaymentonion` it is given the onion (`selfpay`): it peels the
//!    node's layer with the node's key, and a payment that ends here is checked and settled like
//!    any other; one that goes on (a circular payment) is left alone and comes back as an HTLC.
//!    For `sendpay` with an empty route, the command's own amount and payment secret are
//!    settled (`settleinvoice`). A payment to another node — an `injectpaymentonion` whose
//!    `invstring` is another node's or whose `destination` is another node, a `sendpay` with a
//!    route — never waits on invoiced.
//! 2. Once invoiced has made the payment durable, the invoice is copied into the node's table
//!    (`createinvoice` with its bolt11, label and preimage): a twin that exists only so that
//!    lightningd completes the payment it was asked for, records it in its payments (`listpays`,
//!    `waitsendpay`) and hands the preimage to the payer.
//! 3. The command continues in lightningd. When lightningd reports the twin paid
//!    (`invoice_payment`), the twin is deleted from the node's table: invoiced's log stays the
//!    only record of the invoice.
//!
//! The payment is announced as `invoiced_invoice_payment`, as every payment the plugin settles.
//! A payment invoiced refuses (unknown, paid, expired, a wrong secret or amount) makes no twin,
//! and lightningd refuses it as a node without the plugin does: `incorrect_or_unknown_payment_details`.

use std::path::Path;
use std::str::FromStr as _;

use super::htlc::{Paid, Payments};
use crate::rpc_client::{call_with_id, CallError, RpcPool};
use serde_json::{json, Value};

/// The commands taken for self-payments.
pub const INTERCEPTED: &[&str] = &["injectpaymentonion", "sendpay"];

/// The id of the plugin's own calls to lightningd's invoice table, which the `rpc_command`
/// hook lets through instead of sending them to invoiced.
pub const OWN_CALL: &str = "invoiced-cln/twin";

/// Whether an `rpc_command` with this id is one of the plugin's own calls.
pub fn is_own_call(id: &Value) -> bool {
    id.as_str().is_some_and(|s| s.contains(OWN_CALL))
}

/// `params`' value named `name`, or at `position` when they are positional.
pub(super) fn param<'a>(params: &'a Value, name: &str, position: usize) -> Option<&'a Value> {
    match params {
        Value::Object(m) => m.get(name),
        Value::Array(a) => a.get(position),
        _ => None,
    }
    .filter(|v| !v.is_null())
}

/// Whether an `injectpaymentonion` may pay this node (`node_id`): its `invstring`'s payee or its
/// `destination` is this node, or it names neither (a raw onion, which only invoiced can read).
/// A payment to another node never waits on invoiced.
fn may_pay_us(params: &Value, node_id: &str) -> bool {
    let named = |name: &str| params.get(name).and_then(Value::as_str);
    if let Some(invstring) = named("invstring") {
        if invstring
            .to_ascii_lowercase()
            .starts_with(invoiced_actors::policy::bolt12::HRP)
        {
            let payee = invoiced_actors::policy::bolt12::Invoice::decode(invstring)
                .ok()
                .and_then(|i| i.node_id());
            return payee.is_none_or(|p| p.to_string() == node_id);
        }
        let payee = lightning_invoice::SignedRawBolt11Invoice::from_str(invstring)
            .ok()
            .and_then(|raw| raw.recover_payee_pub_key().ok())
            .map(|key| key.0.to_string());
        return payee.is_none_or(|p| p == node_id);
    }
    named("destination").is_none_or(|d| d == node_id)
}

/// What invoiced says of the command: the paid invoice when it is a payment to one of its
/// invoices that ends at this node, or `None`.
async fn settled_by_invoiced(
    invoiced: &RpcPool,
    node_id: &str,
    method: &str,
    params: &Value,
) -> Option<Value> {
    if method == "injectpaymentonion" && !may_pay_us(params, node_id) {
        return None;
    }
    let hash = param(params, "payment_hash", 1)?;
    let (call, asked) = match method {
        "injectpaymentonion" => (
            "selfpay",
            json!({ "onion": param(params, "onion", 0)?, "payment_hash": hash }),
        ),
        // Only an empty route pays this node itself; any other leaves through a channel.
        _ if param(params, "route", 0)
            .and_then(Value::as_array)
            .is_some_and(Vec::is_empty) =>
        {
            let (amount, secret) = (
                param(params, "amount_msat", 3)?,
                param(params, "payment_secret", 5)?,
            );
            (
                "settleinvoice",
                json!({ "payment_hash": hash, "amount_msat": amount, "payment_secret": secret }),
            )
        }
        _ => return None,
    };
    match invoiced.call(call, &asked).await {
        Ok(paid) if paid["last_hop"] != json!(false) => Some(paid),
        Ok(_) => None,
        // Not one of invoiced's invoices: the node's own business.
        Err(e) if e.code() == Some(905) => None,
        Err(e) => {
            log::info!("{method} to this node for {hash}: invoiced refused it ({e}); lightningd will refuse it too");
            None
        }
    }
}

/// The hook's answer for `injectpaymentonion` or `sendpay`: always to continue, after making the
/// twin of an invoice invoiced has just settled for a payment from the node to itself.
pub async fn intercept(
    invoiced: &RpcPool,
    node: &Path,
    node_id: &str,
    payments: &Payments,
    method: &str,
    params: &Value,
) -> Value {
    if let Some(paid) = settled_by_invoiced(invoiced, node_id, method, params).await {
        let label = paid["label"].as_str().unwrap_or_default();
        // Plugins listening for invoiced's payments hear of this one too.
        payments.announce(Paid {
            label: label.to_owned(),
            msat: paid["amount_received_msat"].as_u64().unwrap_or_default(),
            preimage: paid["payment_preimage"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
        });
        match make_twin(node, &paid).await {
            Ok(()) => log::info!("{method}: {label} paid by this node itself; settled in invoiced, completed by lightningd"),
            Err(e) => log::error!("{method}: {label} is paid in invoiced but lightningd could not be given it to complete the payment: {e}"),
        }
    }
    json!({ "result": "continue" })
}

/// Copies the paid invoice into the node's table; a twin left by an earlier attempt under the
/// same label is replaced.
async fn make_twin(node: &Path, paid: &Value) -> Result<(), String> {
    let invstring = match (paid["bolt11"].as_str(), paid["bolt12"].as_str()) {
        (Some(bolt11), _) => bolt11.to_owned(),
        // lightningd signs only an unsigned invoice: the same, unsigned, without its paths.
        (None, Some(bolt12)) => invoiced_actors::policy::bolt12::Invoice::decode(bolt12)
            .map_err(|e| e.to_string())?
            .unsigned_without_paths()
            .encode(),
        (None, None) => return Err("the paid invoice has no invoice string".into()),
    };
    let create = json!({ "invstring": invstring, "label": paid["label"], "preimage": paid["payment_preimage"] });
    match own_call(node, "createinvoice", &create).await {
        Err(e) if e.code() == Some(900) => {
            delete_twin(node, paid["label"].as_str().unwrap_or_default()).await;
            own_call(node, "createinvoice", &create)
                .await
                .map(drop)
                .map_err(|e| e.to_string())
        }
        other => other.map(drop).map_err(|e| e.to_string()),
    }
}

/// Deletes the twin `label` from the node's table, whatever its status.
pub async fn delete_twin(node: &Path, label: &str) {
    for status in ["paid", "unpaid", "expired"] {
        match own_call(
            node,
            "delinvoice",
            &json!({ "label": label, "status": status }),
        )
        .await
        {
            Ok(_) => return,
            // 906: another status; 905: none.
            Err(e) if e.code() == Some(906) => continue,
            Err(_) => return,
        }
    }
}

/// Calls lightningd with the id that marks the plugin's own calls ([`OWN_CALL`]).
pub(super) async fn own_call(
    node: &Path,
    method: &str,
    params: &Value,
) -> Result<Value, CallError> {
    call_with_id(node, &format!("{OWN_CALL}:{method}"), method, params).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_plugins_own_calls_are_told_apart() {
        assert!(is_own_call(&json!("invoiced-cln/twin:delinvoice")));
        assert!(is_own_call(&json!(
            "invoiced-cln/twin:createinvoice/cln:createinvoice#5"
        )));
        assert!(!is_own_call(&json!(7)));
        assert!(!is_own_call(&json!("cln:delinvoice#3")));
    }

    #[tokio::test]
    async fn only_a_payment_to_an_invoice_of_invoiceds_asks_it() {
        // No invoiced at this path: any call would fail, so what is not asked answers None at once.
        let nowhere = RpcPool::new("/nonexistent/invoiced");
        let routed = json!({"route": [{"id": "02aa", "channel": "1x1x1"}], "payment_hash": "11", "amount_msat": 1, "payment_secret": "22"});
        assert_eq!(
            settled_by_invoiced(&nowhere, "02aa", "sendpay", &routed).await,
            None,
            "a route leaves the node"
        );
        assert_eq!(
            settled_by_invoiced(&nowhere, "02aa", "sendpay", &json!([[], "11"])).await,
            None,
            "no amount or secret: lightningd refuses it"
        );
        assert_eq!(
            settled_by_invoiced(
                &nowhere,
                "02aa",
                "injectpaymentonion",
                &json!({"payment_hash": "11"})
            )
            .await,
            None
        );
        assert_eq!(
            param(&json!([[], "h", null, 5]), "amount_msat", 3),
            Some(&json!(5))
        );
    }

    #[test]
    fn a_payment_to_another_node_never_asks_invoiced() {
        use bitcoin::hashes::Hash as _;
        let key = secp256k1::SecretKey::from_slice(&[3; 32]).unwrap();
        let payee =
            secp256k1::PublicKey::from_secret_key(&secp256k1::Secp256k1::new(), &key).to_string();
        let bolt11 = lightning_invoice::InvoiceBuilder::new(lightning_invoice::Currency::Regtest)
            .description("d".into())
            .payment_hash(bitcoin::hashes::sha256::Hash::from_byte_array([1; 32]))
            .payment_secret(lightning_invoice::PaymentSecret([2; 32]))
            .duration_since_epoch(std::time::Duration::from_secs(1_700_000_000))
            .min_final_cltv_expiry_delta(18)
            .build_signed(|h| secp256k1::Secp256k1::new().sign_ecdsa_recoverable(h, &key))
            .unwrap()
            .to_string();
        let other = "02".to_owned() + &"11".repeat(32);
        assert!(
            may_pay_us(&json!({"invstring": bolt11}), &payee),
            "our own invoice"
        );
        assert!(
            !may_pay_us(&json!({"invstring": bolt11}), &other),
            "another node's invoice"
        );
        let bolt12 = include_str!("../../actors/tests/data/cln_bolt12_invoice.txt").trim();
        let issuer = "02234f82617ab4cb1962c958ddc23ba4a392c1c49a78ee87f26160f150657ceb43";
        assert!(
            may_pay_us(&json!({"invstring": bolt12}), issuer),
            "our own BOLT12 invoice"
        );
        assert!(
            !may_pay_us(&json!({"invstring": bolt12}), &other),
            "another node's BOLT12 invoice"
        );
        assert!(
            !may_pay_us(&json!({"destination": other}), &payee),
            "keysend elsewhere"
        );
        assert!(may_pay_us(&json!({"destination": payee.clone()}), &payee));
        assert!(
            may_pay_us(&json!({"onion": "00"}), &payee),
            "a raw onion: only invoiced can tell"
        );
        assert_eq!(param(&json!({"amount_msat": null}), "amount_msat", 3), None);
    }
}
