//! The `rpc_command` hook: the node's invoice commands are answered by invoiced.
//!
//! lightningd sends only the commands named in the hook's `filters` ([`FORWARDED`]); `wait` is
//! taken only for the `invoices` subsystem, every other `wait` continues to the node. Each is
//! sent to invoiced with its params unchanged and its answer or error returned unchanged. If
//! invoiced cannot be reached the command fails with -1 saying so: it never falls back to the
//! node's own invoice table, which would split the invoice set in two.

use serde_json::{json, Value};

use crate::rpc_client::RpcPool;

/// The commands this hook takes over.
pub const FORWARDED: &[&str] = &[
    "invoice",
    "listinvoices",
    "delinvoice",
    "waitinvoice",
    "waitanyinvoice",
    "wait",
];

/// The hold invoice commands (holdinvoice 5.x's), which the node does not have: the plugin
/// registers them as its own methods and answers each with invoiced's answer.
pub const HOLD_METHODS: &[(&str, &str)] = &[
    ("holdinvoice", "Create a hold invoice (amount_msat, description, [expiry], [payment_hash], [preimage], [cltv], [deschashonly], [exposeprivatechannels], [label])"),
    ("holdinvoicesettle", "Settle an ACCEPTED hold invoice ([payment_hash], [preimage])"),
    ("holdinvoicecancel", "Cancel a hold invoice (payment_hash): its held HTLCs fail"),
    ("holdinvoicelookup", "Show every hold invoice, or the one with [payment_hash]"),
    ("holdinvoice-version", "Show the holdinvoice interface version"),
];

/// One of [`HOLD_METHODS`], called on the node: invoiced's answer, or its error object passed
/// through unchanged (cln-plugin keeps an error whose text is a JSON-RPC error object).
///
/// # Errors
/// invoiced's error, or -1 naming its socket when it cannot be reached.
pub async fn hold_method(
    invoiced: &RpcPool,
    method: &str,
    params: Value,
) -> Result<Value, anyhow::Error> {
    let params = if params.is_null() { json!({}) } else { params };
    invoiced
        .call(method, &params)
        .await
        .map_err(|e| anyhow::anyhow!(e.to_error_object("invoiced", invoiced.path()).to_string()))
}

/// Whether `method` with `params` belongs to invoiced.
pub fn is_ours(method: &str, params: &Value) -> bool {
    match method {
        "wait" => {
            let subsystem = match params {
                Value::Array(a) => a.first(),
                Value::Object(m) => m.get("subsystem"),
                _ => None,
            };
            subsystem.and_then(Value::as_str) == Some("invoices")
        }
        m => FORWARDED.contains(&m),
    }
}

/// The label of an `invoice` request's params (named, or second positionally; a number as its
/// digits, as invoiced reads it).
pub fn invoice_label(params: &Value) -> Option<String> {
    let label = match params {
        Value::Object(m) => m.get("label")?,
        Value::Array(a) => a.get(1)?,
        _ => return None,
    };
    match label {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// The `invoiced_invoice_creation` payload: `label`, and `msat` when the invoice has an amount
/// (read from its bolt11). Never the preimage, which invoiced shows only once paid.
pub fn creation_payload(label: &str, bolt11: &str) -> Value {
    let mut payload = json!({ "label": label });
    let amount = bolt11
        .parse::<lightning_invoice::Bolt11Invoice>()
        .ok()
        .and_then(|i| i.amount_milli_satoshis());
    if let Some(msat) = amount {
        payload["msat"] = json!(msat);
    }
    payload
}

/// The hook's answer for one `rpc_command` payload (its params are moved on, not copied).
pub async fn rpc_command(invoiced: &RpcPool, mut payload: Value) -> Value {
    let cmd = &mut payload["rpc_command"];
    let params = match cmd["params"].take() {
        Value::Null => json!({}),
        p => p,
    };
    let method = cmd["method"].as_str().unwrap_or_default();
    if !is_ours(method, &params) {
        return json!({ "result": "continue" });
    }
    match invoiced.call(method, &params).await {
        Ok(result) => json!({ "return": { "result": result } }),
        Err(e) => {
            let error = e.to_error_object("invoiced", invoiced.path());
            if error["code"] == json!(-1) {
                log::warn!("{method}: {}", error["message"]);
            }
            json!({ "return": { "error": error } })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_creation_announcement_comes_from_the_request_and_its_answer() {
        assert_eq!(
            invoice_label(&json!({"amount_msat": 1, "label": "tea"})),
            Some("tea".into())
        );
        assert_eq!(invoice_label(&json!([1000, 42, "d"])), Some("42".into()));
        assert_eq!(invoice_label(&json!([1000])), None);
        let signed = |amount: Option<u64>| {
            use bitcoin::hashes::Hash as _;
            let key = secp256k1::SecretKey::from_slice(&[3; 32]).unwrap();
            let builder =
                lightning_invoice::InvoiceBuilder::new(lightning_invoice::Currency::Regtest)
                    .description("d".into())
                    .payment_hash(bitcoin::hashes::sha256::Hash::from_byte_array([1; 32]))
                    .payment_secret(lightning_invoice::PaymentSecret([2; 32]))
                    .duration_since_epoch(std::time::Duration::from_secs(1_700_000_000))
                    .min_final_cltv_expiry_delta(18);
            let sign = |h: &secp256k1::Message| {
                secp256k1::Secp256k1::new().sign_ecdsa_recoverable(h, &key)
            };
            match amount {
                Some(a) => builder
                    .amount_milli_satoshis(a)
                    .build_signed(sign)
                    .unwrap()
                    .to_string(),
                None => builder.build_signed(sign).unwrap().to_string(),
            }
        };
        assert_eq!(
            creation_payload("tea", &signed(Some(4242))),
            json!({"label": "tea", "msat": 4242})
        );
        assert_eq!(
            creation_payload("tips", &signed(None)),
            json!({"label": "tips"}),
            "an `any` invoice has no msat"
        );
    }

    #[test]
    fn only_the_invoices_wait_is_ours() {
        assert!(is_ours("invoice", &json!({})));
        assert!(is_ours("wait", &json!(["invoices", "created", 1])));
        assert!(is_ours(
            "wait",
            &json!({"subsystem": "invoices", "indexname": "created", "nextvalue": 1})
        ));
        assert!(!is_ours("wait", &json!(["forwards", "created", 1])));
        assert!(!is_ours("wait", &json!({"subsystem": "sendpays"})));
        assert!(!is_ours("getinfo", &json!({})));
    }

    #[tokio::test]
    async fn an_unreachable_invoiced_is_a_clear_error_never_a_fallback() {
        let dir = tempfile::tempdir().unwrap();
        let pool = RpcPool::new(dir.path().join("nothing-here"));
        let out = rpc_command(
            &pool,
            json!({"rpc_command": {"id": 1, "method": "invoice", "params": [1000, "l", "d"]}}),
        )
        .await;
        assert_eq!(out["return"]["error"]["code"], json!(-1));
        assert!(out["return"]["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("invoiced is unreachable at "));
        let out = rpc_command(
            &pool,
            json!({"rpc_command": {"id": 1, "method": "getinfo", "params": {}}}),
        )
        .await;
        assert_eq!(out, json!({"result": "continue"}));
    }
}
