//! Binding JSON-RPC `params` to a method's declared parameters, and the typed readers for each
//! kind of value, with Core Lightning's messages.
//!
//! Params come as an array (positional, declared order) or an object (by name). A `null` means
//! "not given" either way (where Core Lightning refuses some `null`s). The result keeps the order in which values appear, because
//! Core Lightning reports the first bad value in that order; missing required parameters are
//! reported after every supplied value parsed.

use core::fmt;

use serde::de::{Deserializer, MapAccess, Visitor};
use serde::Deserialize;
use serde_json::value::RawValue;

use super::error::RpcError;
use invoiced_events::Msat;

/// A method's parameters, in declared (positional) order, with optional aliases.
pub struct ParamSpec {
    /// Declared names.
    pub names: &'static [&'static str],
    /// `(alias, name)` pairs accepted by name only.
    pub aliases: &'static [(&'static str, &'static str)],
    /// Parameters accepted by name only (our extensions).
    pub named_only: &'static [&'static str],
    /// How many of `names`, from the first, must be given (for `help`'s usage line; each
    /// method reports a missing one itself, in Core Lightning's order).
    pub required: usize,
}

impl ParamSpec {
    /// No parameters.
    pub const NONE: ParamSpec = ParamSpec {
        names: &[],
        aliases: &[],
        named_only: &[],
        required: 0,
    };

    /// Core Lightning's usage line: the method, then each parameter in order, optional ones in
    /// brackets (`getinfo ` keeps its space, as Core Lightning's does).
    pub fn usage(&self, method: &str) -> String {
        let params: Vec<String> = self
            .names
            .iter()
            .enumerate()
            .map(|(i, n)| {
                if i < self.required {
                    (*n).to_owned()
                } else {
                    format!("[{n}]")
                }
            })
            .collect();
        format!("{method} {}", params.join(" "))
    }
}

/// The supplied values, each with its declared name, in order of appearance.
pub type Bound<'a> = Vec<(&'static str, &'a RawValue)>;

struct OrderedPairs<'a>(Vec<(String, &'a RawValue)>);

impl<'de: 'a, 'a> Deserialize<'de> for OrderedPairs<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(core::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
            type Value = OrderedPairs<'a>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an object")
            }
            fn visit_map<M: MapAccess<'de>>(self, mut m: M) -> Result<Self::Value, M::Error> {
                let mut out = Vec::new();
                while let Some((k, v)) = m.next_entry::<String, &'de RawValue>()? {
                    out.push((k, v));
                }
                Ok(OrderedPairs(out))
            }
        }
        d.deserialize_map(V(core::marker::PhantomData))
    }
}

fn is_null(v: &RawValue) -> bool {
    v.get() == "null"
}

/// Binds `params` to `spec`.
///
/// # Errors
/// -32602 for params that are neither array nor object, too many positional values, an unknown
/// or repeated name.
pub fn bind<'a>(params: Option<&'a RawValue>, spec: &ParamSpec) -> Result<Bound<'a>, RpcError> {
    let Some(params) = params else {
        return Ok(Vec::new());
    };
    match params.get().as_bytes().first() {
        Some(b'[') => {
            let items: Vec<&RawValue> = serde_json::from_str(params.get())
                .map_err(|_| RpcError::invalid_params("Expected array or object for params"))?;
            if items.len() > spec.names.len() {
                return Err(RpcError::invalid_params(format!(
                    "too many parameters: got {}, expected {}",
                    items.len(),
                    spec.names.len()
                )));
            }
            Ok(spec
                .names
                .iter()
                .copied()
                .zip(items)
                .filter(|(_, v)| !is_null(v))
                .collect())
        }
        Some(b'{') => {
            let OrderedPairs(pairs) = serde_json::from_str(params.get())
                .map_err(|_| RpcError::invalid_params("Expected array or object for params"))?;
            let mut seen: Vec<&'static str> = Vec::with_capacity(pairs.len());
            let mut out = Vec::with_capacity(pairs.len());
            for (key, value) in pairs {
                let name = spec
                    .names
                    .iter()
                    .copied()
                    .chain(spec.named_only.iter().copied())
                    .find(|n| *n == key)
                    .or_else(|| {
                        spec.aliases
                            .iter()
                            .find(|(a, _)| *a == key)
                            .map(|(_, n)| *n)
                    })
                    .ok_or_else(|| RpcError::unknown_param(&key))?;
                if seen.contains(&name) {
                    return Err(RpcError::duplicate_param(&key));
                }
                seen.push(name);
                if !is_null(value) {
                    out.push((name, value));
                }
            }
            Ok(out)
        }
        _ if is_null(params) => Ok(Vec::new()),
        _ => Err(RpcError::invalid_params(
            "Expected array or object for params",
        )),
    }
}

/// -32602 `missing required parameter: NAME`.
pub fn missing(name: &str) -> RpcError {
    RpcError::invalid_params(format!("missing required parameter: {name}"))
}

/// Takes a required value out of an `Option`, or reports it missing.
pub fn required<T>(v: Option<T>, name: &str) -> Result<T, RpcError> {
    v.ok_or_else(|| missing(name))
}

/// The text of a JSON string token (unescaped), or `None` if the token is not a string.
pub fn as_string(v: &RawValue) -> Option<String> {
    if v.get().starts_with('"') {
        serde_json::from_str::<String>(v.get()).ok()
    } else {
        None
    }
}

/// The raw text of a primitive: the inner text of a string, or the token of a number.
fn primitive_text(v: &RawValue) -> Option<String> {
    match v.get().as_bytes().first() {
        Some(b'"') => as_string(v),
        Some(b'{' | b'[') | None => None,
        _ => Some(v.get().to_owned()),
    }
}

/// Whether a raw JSON string token holds a `\u` escape.
pub fn has_unicode_escape(raw: &str) -> bool {
    let mut bytes = raw.bytes();
    while let Some(b) = bytes.next() {
        if b == b'\\' && bytes.next() == Some(b'u') {
            return true;
        }
    }
    false
}

/// An unsigned decimal integer (string or number token, digits only), at most `max`.
pub fn unsigned(v: &RawValue, name: &str, reason: &str, max: u64) -> Result<u64, RpcError> {
    primitive_text(v)
        .filter(|t| !t.is_empty() && t.len() <= 20 && t.bytes().all(|b| b.is_ascii_digit()))
        .and_then(|t| t.parse::<u64>().ok())
        .filter(|n| *n <= max)
        .ok_or_else(|| RpcError::bad_param(name, reason, v.get()))
}

/// What a block height parameter must be (BOLT 2's limit on a CLTV expiry).
pub const BLOCK_HEIGHT: &str = "should be a block height below 500000000";

/// One HTLC as the node reports it, `{htlc: "scid/id", amount_msat, cltv_expiry}`; errors name
/// it `at.field`.
///
/// # Errors
/// -32602 naming the field.
pub fn part(v: &serde_json::Value, at: &str) -> Result<invoiced_events::HeldPart, RpcError> {
    let bad = |field: &str, reason: &str| {
        RpcError::bad_param(&format!("{at}.{field}"), reason, &v[field].to_string())
    };
    let htlc = v["htlc"]
        .as_str()
        .filter(|s| !s.is_empty() && s.len() <= 64)
        .ok_or_else(|| bad("htlc", "should be an HTLC id (scid/id)"))?;
    Ok(invoiced_events::HeldPart {
        htlc: htlc.to_owned(),
        amount_msat: v["amount_msat"]
            .as_u64()
            .filter(|a| *a > 0)
            .map(Msat)
            .ok_or_else(|| bad("amount_msat", "should be positive msat"))?,
        cltv_expiry: v["cltv_expiry"]
            .as_u64()
            .and_then(as_block_height)
            .ok_or_else(|| bad("cltv_expiry", BLOCK_HEIGHT))?,
    })
}

/// An array of [`part`]s, named `name[i]` in errors.
///
/// # Errors
/// -32602 naming the array or the part.
pub fn parts(v: &RawValue, name: &str) -> Result<Vec<invoiced_events::HeldPart>, RpcError> {
    let items: Vec<serde_json::Value> = serde_json::from_str(v.get())
        .map_err(|_| RpcError::bad_param(name, "should be an array", v.get()))?;
    items
        .iter()
        .enumerate()
        .map(|(i, p)| part(p, &format!("{name}[{i}]")))
        .collect()
}

/// `n` as a block height, if it could be one: at most [`invoiced_events::MAX_BLOCK_HEIGHT`].
pub fn as_block_height(n: u64) -> Option<u32> {
    u32::try_from(n)
        .ok()
        .filter(|h| *h <= invoiced_events::MAX_BLOCK_HEIGHT)
}

/// A block height parameter (see [`as_block_height`]).
pub fn block_height(v: &RawValue, name: &str) -> Result<u32, RpcError> {
    let h = unsigned(v, name, BLOCK_HEIGHT, u64::MAX)?;
    as_block_height(h).ok_or_else(|| RpcError::bad_param(name, BLOCK_HEIGHT, v.get()))
}

/// A JSON boolean literal.
pub fn boolean(v: &RawValue, name: &str) -> Result<bool, RpcError> {
    match v.get() {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err(RpcError::bad_param(
            name,
            "should be 'true' or 'false'",
            v.get(),
        )),
    }
}

/// A string label, or a JSON number made only of digits (its text).
pub fn label_text(v: &RawValue, name: &str) -> Result<String, RpcError> {
    let raw = v.get();
    if raw.starts_with('"') {
        as_string(v).ok_or_else(|| RpcError::bad_param(name, "should be a string or number", raw))
    } else if !raw.is_empty() && raw.bytes().all(|b| b.is_ascii_digit()) {
        Ok(raw.to_owned())
    } else {
        Err(RpcError::bad_param(
            name,
            "should be a string or number",
            raw,
        ))
    }
}

/// A 32-byte hash, secret or id in hex, refused as Core Lightning words it.
///
/// # Errors
/// -32602 naming `name`.
pub fn hash32<T: From<[u8; 32]>>(v: &RawValue, name: &str) -> Result<T, RpcError> {
    hex32(v, name, "should be a 32 byte hex value").map(T::from)
}

/// 32 bytes as 64 hex digits.
pub fn hex32(v: &RawValue, name: &str, reason: &str) -> Result<[u8; 32], RpcError> {
    as_string(v)
        .filter(|s| s.len() == 64)
        .and_then(|s| hex::decode(s).ok())
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| RpcError::bad_param(name, reason, v.get()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SPEC: ParamSpec = ParamSpec {
        names: &["a", "b", "c"],
        aliases: &[("alias_a", "a")],
        named_only: &[],
        required: 0,
    };

    fn raw(s: &str) -> Box<RawValue> {
        RawValue::from_string(s.to_owned()).unwrap()
    }

    fn names(b: &Bound<'_>) -> Vec<&'static str> {
        b.iter().map(|(n, _)| *n).collect()
    }

    #[test]
    fn binds_positional_and_named() {
        let p = raw(r#"[1, null, 3]"#);
        assert_eq!(names(&bind(Some(&p), &SPEC).unwrap()), ["a", "c"]);
        let n = raw(r#"{"c": 1, "alias_a": 2, "b": null}"#);
        assert_eq!(names(&bind(Some(&n), &SPEC).unwrap()), ["c", "a"]);
    }

    #[test]
    fn refuses_what_core_lightning_refuses() {
        let cases = [
            (r#"[1,2,3,4]"#, "too many parameters: got 4, expected 3"),
            (r#"{"a":1,"a":2}"#, "duplicate json names: a"),
            (r#"{"a":1,"alias_a":2}"#, "duplicate json names: alias_a"),
            (r#""x""#, "Expected array or object for params"),
        ];
        for (params, want) in cases {
            let p = raw(params);
            assert_eq!(bind(Some(&p), &SPEC).unwrap_err().message, want, "{params}");
        }
        let p = raw(r#"{"zz":1}"#);
        assert!(bind(Some(&p), &SPEC)
            .unwrap_err()
            .message
            .starts_with("unknown parameter: zz, this may be caused"));
    }

    #[test]
    fn readers() {
        assert_eq!(unsigned(&raw("3600"), "expiry", "r", u64::MAX), Ok(3600));
        assert_eq!(unsigned(&raw("\"60\""), "expiry", "r", u64::MAX), Ok(60));
        for bad in [
            "-1",
            "1.5",
            "1e3",
            "\"0x10\"",
            "true",
            "18446744073709551616",
            "\"\"",
        ] {
            assert!(
                unsigned(&raw(bad), "expiry", "r", u64::MAX).is_err(),
                "{bad}"
            );
        }
        assert_eq!(label_text(&raw("25"), "label"), Ok("25".into()));
        assert_eq!(label_text(&raw(r#""a\"b""#), "label"), Ok("a\"b".into()));
        assert!(label_text(&raw("1.0"), "label").is_err());
        assert!(label_text(&raw("-5"), "label").is_err());
        assert!(has_unicode_escape(r#""caf\u00e9""#));
        assert!(!has_unicode_escape(r#""a\\u""#));
    }
}
