//! `help [command]`, answered as Core Lightning answers it, from the one table of methods
//! ([`super::methods::METHODS`]).
//!
//! Each method's usage line is built from the [`ParamSpec`] its handler binds with, so `help`
//! cannot drift from what a method accepts. With a command: `{"help":[{"command": USAGE}],
//! "format-hint":"simple"}` (LNbits reads `help[0].command` to see whether `invoice` takes
//! `deschashonly`); an unknown command is -32601 `Unknown command NAME`. Without one: every
//! method, sorted by name, with its usage line, category and description.

use serde_json::value::RawValue;
use serde_json::{json, Value};

use super::error::RpcError;
use super::methods::METHODS;
use super::params::{as_string, bind, ParamSpec};

/// `help` parameters.
pub const SPEC: ParamSpec = ParamSpec {
    names: &["command"],
    aliases: &[],
    named_only: &[],
    required: 0,
};

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
