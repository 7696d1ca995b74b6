//! Retention: `autoclean-once subsystem age` and `autoclean-status [subsystem]`, as Core
//! Lightning's autoclean plugin answers them, for the two subsystems invoiced keeps
//! (`paidinvoices`, `expiredinvoices`). The decisions are the Autoclean actor's.

use invoiced_actors::autoclean::{CleanOnce, GetStatus, Subsystem};
use serde_json::value::RawValue;
use serde_json::{json, Map, Value};

use super::error::RpcError;
use super::params::{as_string, bind, required, unsigned, ParamSpec};
use super::RpcContext;

/// `autoclean-once` parameters.
pub const ONCE_SPEC: ParamSpec = ParamSpec {
    names: &["subsystem", "age"],
    aliases: &[],
    named_only: &[],
    required: 2,
};
/// `autoclean-status` parameters.
pub const STATUS_SPEC: ParamSpec = ParamSpec {
    names: &["subsystem"],
    aliases: &[],
    named_only: &[],
    required: 0,
};

/// Runs `autoclean-once`: one sweep of one subsystem.
pub async fn once(ctx: &RpcContext, params: Option<&RawValue>) -> Result<Value, RpcError> {
    let request = parse_once(params)?;
    let subsystem = request.subsystem;
    let report = ctx.autoclean.send(request).await??;
    Ok(
        json!({ "autoclean": { subsystem.name(): { "cleaned": report.cleaned, "uncleaned": report.uncleaned } } }),
    )
}

/// Runs `autoclean-status`: each subsystem's age option and how many were cleaned so far.
pub async fn status(ctx: &RpcContext, params: Option<&RawValue>) -> Result<Value, RpcError> {
    let only = parse_status(params)?;
    let mut out = Map::new();
    for s in ctx.autoclean.send(GetStatus).await? {
        if only.is_some_and(|o| o != s.subsystem) {
            continue;
        }
        let mut line = Map::new();
        line.insert("enabled".into(), json!(s.age_s != 0));
        if s.age_s != 0 {
            line.insert("age".into(), json!(s.age_s));
        }
        line.insert("cleaned".into(), json!(s.cleaned));
        out.insert(s.subsystem.name().into(), Value::Object(line));
    }
    Ok(json!({ "autoclean": out }))
}

fn subsystem(v: &RawValue) -> Result<Subsystem, RpcError> {
    as_string(v)
        .as_deref()
        .and_then(Subsystem::from_name)
        .ok_or_else(|| {
            RpcError::bad_param("subsystem", "should be a valid subsystem name", v.get())
        })
}

/// Reads `autoclean-once` params.
///
/// # Errors
/// -32602 naming the parameter (an age of 0 too, as Core Lightning).
pub fn parse_once(params: Option<&RawValue>) -> Result<CleanOnce, RpcError> {
    let (mut which, mut age) = (None, None);
    for (name, v) in bind(params, &ONCE_SPEC)? {
        match name {
            "subsystem" => which = Some(subsystem(v)?),
            "age" => {
                let n = unsigned(v, "age", "should be an unsigned 64 bit integer", u64::MAX)?;
                if n == 0 {
                    return Err(RpcError::bad_param("age", "Must be non-zero", v.get()));
                }
                age = Some(n);
            }
            other => {
                return Err(RpcError::invalid_params(format!(
                    "unhandled parameter {other}"
                )))
            }
        }
    }
    Ok(CleanOnce {
        subsystem: required(which, "subsystem")?,
        age_s: required(age, "age")?,
    })
}

/// Reads `autoclean-status` params.
///
/// # Errors
/// -32602 naming the parameter.
pub fn parse_status(params: Option<&RawValue>) -> Result<Option<Subsystem>, RpcError> {
    let mut which = None;
    for (name, v) in bind(params, &STATUS_SPEC)? {
        match name {
            "subsystem" => which = Some(subsystem(v)?),
            other => {
                return Err(RpcError::invalid_params(format!(
                    "unhandled parameter {other}"
                )))
            }
        }
    }
    Ok(which)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn raw(s: &str) -> Box<RawValue> {
        RawValue::from_string(s.to_owned()).unwrap()
    }

    #[test]
    fn parameters_are_read_as_core_lightning_reads_them() {
        let once = parse_once(Some(&raw(r#"["expiredinvoices", 3600]"#))).unwrap();
        assert_eq!(
            (once.subsystem, once.age_s),
            (Subsystem::ExpiredInvoices, 3600)
        );
        let once = parse_once(Some(&raw(r#"{"age": "60", "subsystem": "paidinvoices"}"#))).unwrap();
        assert_eq!((once.subsystem, once.age_s), (Subsystem::PaidInvoices, 60));
        let e = parse_once(Some(&raw(r#"["paidinvoices", 0]"#))).unwrap_err();
        assert_eq!(
            (e.code, e.message.as_str()),
            (-32602, "age: Must be non-zero: invalid token '0'")
        );
        let e = parse_once(Some(&raw(r#"["succeededforwards", 10]"#))).unwrap_err();
        assert_eq!(
            e.message,
            "subsystem: should be a valid subsystem name: invalid token '\"succeededforwards\"'"
        );
        assert_eq!(
            parse_once(Some(&raw(r#"["paidinvoices"]"#)))
                .unwrap_err()
                .message,
            "missing required parameter: age"
        );
        assert_eq!(parse_status(None).unwrap(), None);
        assert_eq!(
            parse_status(Some(&raw(r#"["expiredinvoices"]"#))).unwrap(),
            Some(Subsystem::ExpiredInvoices)
        );
        assert!(parse_status(Some(&raw(r#"[7]"#))).is_err());
    }
}
