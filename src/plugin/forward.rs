//! The `rpc_command` hook: the node's invoice commands are answered by invoiced.
//!
//! lightningd sends only the commands named in the hook's `filters` ([`FORWARDED`]); `wait` is
//! taken only for the `invoices` subsystem, every other `wait` continues to the node. Each is
//! sent to invoiced with its params unchanged and its answer or error returned unchanged. If
//! invoiced cannot be reached the command fails with -1 saying so: it never falls back to the
//! node's own invoice table, which would split the invoice set in two.

use serde_json::{json, Value};

use super::client::RpcPool;

/// The commands this hook takes over.
pub const FORWARDED: &[&str] = &["invoice", "listinvoices", "delinvoice", "waitinvoice", "waitanyinvoice", "wait"];

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
pub async fn hold_method(invoiced: &RpcPool, method: &str, params: Value) -> Result<Value, anyhow::Error> {
    let params = if params.is_null() { json!({}) } else { params };
    invoiced.call(method, &params).await.map_err(|e| anyhow::anyhow!(e.to_error_object("invoiced", invoiced.path()).to_string()))
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
    fn only_the_invoices_wait_is_ours() {
        assert!(is_ours("invoice", &json!({})));
        assert!(is_ours("wait", &json!(["invoices", "created", 1])));
        assert!(is_ours("wait", &json!({"subsystem": "invoices", "indexname": "created", "nextvalue": 1})));
        assert!(!is_ours("wait", &json!(["forwards", "created", 1])));
        assert!(!is_ours("wait", &json!({"subsystem": "sendpays"})));
        assert!(!is_ours("getinfo", &json!({})));
    }

    #[tokio::test]
    async fn an_unreachable_invoiced_is_a_clear_error_never_a_fallback() {
        let dir = tempfile::tempdir().unwrap();
        let pool = RpcPool::new(dir.path().join("nothing-here"));
        let out = rpc_command(&pool, json!({"rpc_command": {"id": 1, "method": "invoice", "params": [1000, "l", "d"]}})).await;
        assert_eq!(out["return"]["error"]["code"], json!(-1));
        assert!(out["return"]["error"]["message"].as_str().unwrap().starts_with("invoiced is unreachable at "));
        let out = rpc_command(&pool, json!({"rpc_command": {"id": 1, "method": "getinfo", "params": {}}})).await;
        assert_eq!(out, json!({"result": "continue"}));
    }
}
