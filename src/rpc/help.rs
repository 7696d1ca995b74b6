//! `help [command]`, answered as Core Lightning answers it, from the one table of methods.
//!
//! Each method's usage line is built from the [`ParamSpec`] its handler binds with, so `help`
//! cannot drift from what a method accepts. With a command: `{"help":[{"command": USAGE}],
//! "format-hint":"simple"}` (LNbits reads `help[0].command` to see whether `invoice` takes
//! `deschashonly`); an unknown command is -32601 `Unknown command NAME`. Without one: every
//! method, sorted by name, with its usage line, category and description.

use serde_json::value::RawValue;
use serde_json::{json, Value};

use super::error::RpcError;
use super::params::{as_string, bind, ParamSpec};
use super::{
    autoclean, channels, checkpart, createinvoice, decode, hold, invoice, lifecycle, listinvoices,
    selfpay,
};

/// `help` parameters.
pub const SPEC: ParamSpec = ParamSpec {
    names: &["command"],
    aliases: &[],
    named_only: &[],
    required: 0,
};

/// `updatechannel` takes one listpeerchannels entry, positionally or as `channel`.
const UPDATECHANNEL_SPEC: ParamSpec = ParamSpec {
    names: &["channel"],
    aliases: &[],
    named_only: &[],
    required: 1,
};

/// A method as `help` shows it.
pub struct Method {
    /// Its name.
    pub name: &'static str,
    /// The parameters its handler binds.
    pub spec: &'static ParamSpec,
    /// Core Lightning's category for it (ours: `invoiced`).
    pub category: &'static str,
    /// One line saying what it does.
    pub description: &'static str,
}

/// Every method the daemon answers, sorted by name.
pub const METHODS: &[Method] = &[
    Method { name: "autoclean-once", spec: &autoclean::ONCE_SPEC, category: "utility", description: "Clean the {subsystem} (paidinvoices, expiredinvoices) of invoices at least {age} seconds old, once" },
    Method { name: "autoclean-status", spec: &autoclean::STATUS_SPEC, category: "utility", description: "Show each [subsystem]'s autoclean age and how many were cleaned" },
    Method { name: "checkpart", spec: &checkpart::SPEC, category: "invoiced", description: "The verdict on one HTLC {part} for {payment_hash} with {cltv_expiry_relative} [total_msat] [payment_secret]: unknown, join, resolve, paid_unrecorded or fail" },
    Method { name: "createinvoice", spec: &createinvoice::SPEC, category: "payment", description: "Sign and record the unsigned BOLT12 invoice {invstring} with {label} and {preimage} (the offers plugin's answer to an invoice_request)" },
    Method { name: "decode", spec: &decode::SPEC, category: "utility", description: "Decode a BOLT11 {string}" },
    Method { name: "delinvoice", spec: &lifecycle::DEL_SPEC, category: "payment", description: "Delete the invoice {label} if its status is {status} [desconly: only its description]" },
    Method { name: "getinfo", spec: &ParamSpec::NONE, category: "utility", description: "Show the node id, network, version, invoice count and event log head" },
    Method { name: "help", spec: &SPEC, category: "utility", description: "List the methods, or show one [command]'s usage" },
    Method { name: "holdaccept", spec: &hold::ACCEPT_SPEC, category: "invoiced", description: "Hold the {parts} of a payment to the hold invoice {payment_hash} with {payment_secret} at {blockheight}: ACCEPTED" },
    Method { name: "holdinvoice", spec: &hold::SPEC, category: "payment", description: "Create a hold invoice for {amount_msat} with {description}; [payment_hash] alone withholds the preimage until settle" },
    Method { name: "holdinvoice-version", spec: &ParamSpec::NONE, category: "payment", description: "Show the holdinvoice interface version" },
    Method { name: "holdinvoicecancel", spec: &hold::CANCEL_SPEC, category: "payment", description: "Cancel the hold invoice {payment_hash}: its held parts fail" },
    Method { name: "holdinvoicelookup", spec: &hold::LOOKUP_SPEC, category: "payment", description: "Show every hold invoice, or the one with [payment_hash]" },
    Method { name: "holdinvoicesettle", spec: &hold::SETTLE_SPEC, category: "payment", description: "Settle the ACCEPTED hold invoice [payment_hash] with its [preimage]" },
    Method { name: "invoice", spec: &invoice::SPEC, category: "payment", description: "Create an invoice for {amount_msat} with {label} and {description}" },
    Method { name: "listincoming", spec: &ParamSpec::NONE, category: "invoiced", description: "Show every channel's incoming capacity and whether it can be a route hint, and why not" },
    Method { name: "listinvoices", spec: &listinvoices::SPEC, category: "payment", description: "Show invoices [label | invstring | payment_hash] or page them by [index] [start] [limit]" },
    Method { name: "notifications", spec: &ParamSpec::NONE, category: "utility", description: "Accepted for pyln-client compatibility; does nothing" },
    Method { name: "promote", spec: &ParamSpec::NONE, category: "invoiced", description: "On a standby: take over the node's log from its primary (the epoch moves on)" },
    Method { name: "selfpay", spec: &selfpay::SPEC, category: "invoiced", description: "A payment the node injects to itself: peel its {onion} for {payment_hash}; if it ends here, settle it" },
    Method { name: "settleinvoice", spec: &lifecycle::SETTLE_SPEC, category: "invoiced", description: "Record a payment that arrived: {payment_hash} {amount_msat} {payment_secret} [parts], the HTLCs recorded with it" },
    Method { name: "syncchannels", spec: &channels::SYNC_SPEC, category: "invoiced", description: "Replace the known channels with the node's {channels} (listpeerchannels entries) at [blockheight]" },
    Method { name: "updatechannel", spec: &UPDATECHANNEL_SPEC, category: "invoiced", description: "Add or update one channel (a listpeerchannels entry)" },
    Method { name: "wait", spec: &lifecycle::WAIT_SPEC, category: "utility", description: "Wait until the invoices {indexname} (created, updated, deleted) index reaches {nextvalue}" },
    Method { name: "waitanyinvoice", spec: &lifecycle::WAITANY_SPEC, category: "payment", description: "Wait for the next paid invoice after [lastpay_index], for at most [timeout] seconds" },
    Method { name: "waitinvoice", spec: &lifecycle::WAITINVOICE_SPEC, category: "payment", description: "Wait until the invoice {label} is paid (903 if it expires)" },
];

/// Runs `help [command]`.
pub fn help(params: Option<&RawValue>) -> Result<Value, RpcError> {
    let mut command = None;
    for (_, v) in bind(params, &SPEC)? {
        // Core Lightning names a non-string token as it was sent: `Unknown command 5`.
        command = Some(as_string(v).unwrap_or_else(|| v.get().to_owned()));
    }
    match command {
        Some(name) => {
            let m = METHODS
                .iter()
                .find(|m| m.name == name)
                .ok_or_else(|| RpcError::unknown_help_command(&name))?;
            Ok(json!({ "help": [{ "command": m.spec.usage(m.name) }], "format-hint": "simple" }))
        }
        None => {
            let all: Vec<Value> = METHODS
                .iter()
                .map(|m| json!({ "command": m.spec.usage(m.name), "category": m.category, "description": m.description }))
                .collect();
            Ok(json!({ "help": all, "format-hint": "simple" }))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(s: &str) -> Box<RawValue> {
        RawValue::from_string(s.to_owned()).unwrap()
    }

    #[test]
    fn usage_lines_are_core_lightnings() {
        // The lines the real lightningd v26.06.6 prints, less its developer-only `dev-routes`.
        let expect = [
            ("invoice", "invoice amount_msat label description [expiry] [fallbacks] [preimage] [exposeprivatechannels] [cltv] [deschashonly]"),
            ("listinvoices", "listinvoices [label] [invstring] [payment_hash] [offer_id] [index] [start] [limit]"),
            ("delinvoice", "delinvoice label status [desconly]"),
            ("waitinvoice", "waitinvoice label"),
            ("waitanyinvoice", "waitanyinvoice [lastpay_index] [timeout]"),
            ("wait", "wait subsystem indexname nextvalue"),
            ("decode", "decode string"),
            ("getinfo", "getinfo "),
            ("help", "help [command]"),
        ];
        for (name, line) in expect {
            let v = help(Some(&raw(&format!("[\"{name}\"]")))).unwrap();
            assert_eq!(
                v,
                json!({ "help": [{ "command": line }], "format-hint": "simple" }),
                "{name}"
            );
        }
    }

    #[test]
    fn unknown_command_and_bad_params() {
        let e = help(Some(&raw(r#"{"command":"nosuch"}"#))).unwrap_err();
        assert_eq!(
            (e.code, e.message.as_str()),
            (-32601, "Unknown command nosuch")
        );
        assert_eq!(
            help(Some(&raw("[5]"))).unwrap_err().message,
            "Unknown command 5"
        );
        assert_eq!(
            help(Some(&raw(r#"["invoice", 1]"#))).unwrap_err().message,
            "too many parameters: got 2, expected 1"
        );
        assert!(help(Some(&raw(r#"{"cmd":"x"}"#)))
            .unwrap_err()
            .message
            .starts_with("unknown parameter: cmd"));
    }

    #[test]
    fn the_full_list_is_sorted_and_complete() {
        let v = help(None).unwrap();
        let names: Vec<&str> = v["help"]
            .as_array()
            .unwrap()
            .iter()
            .map(|h| h["command"].as_str().unwrap().split(' ').next().unwrap())
            .collect();
        let mut sorted = names.clone();
        sorted.sort_unstable();
        assert_eq!(names, sorted);
        assert_eq!(names.len(), METHODS.len());
        assert!(v["help"]
            .as_array()
            .unwrap()
            .iter()
            .all(|h| h["category"].is_string() && h["description"].is_string()));
    }
}
