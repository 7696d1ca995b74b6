//! The parameters `invoice` and `holdinvoice` share, read once: each value by one reader, and
//! both methods' parameter lists by one loop ([`InvoiceParams::read`]). What differs between the
//! two is only the wording of some refusals (Core Lightning's or holdinvoice's), in [`Words`].

use invoiced_actors::policy::bolt11::{Cltv, Expiry, InvoiceAmount};
use invoiced_events::{
    AmountOrAny, Description, ExposePrivateChannels, Hash32, PaymentHash, PaymentPreimage,
    ShortChannelId,
};
use serde_json::value::RawValue;

use super::error::RpcError;
use super::params::{
    as_string, bind, boolean, has_unicode_escape, hex32, label_text, required, unsigned, ParamSpec,
};

/// Default relative expiry: one week.
pub const DEFAULT_EXPIRY: Expiry = Expiry::WEEK;

fn amount(v: &RawValue) -> Result<InvoiceAmount, RpcError> {
    let bad = || RpcError::bad_param("amount_msat", "should be positive msat or 'any'", v.get());
    let text = match v.get().as_bytes().first() {
        Some(b'"') => as_string(v).ok_or_else(bad)?,
        Some(b'0'..=b'9') => v.get().to_owned(),
        _ => return Err(bad()),
    };
    let amount: AmountOrAny = text.parse().map_err(|_| bad())?;
    InvoiceAmount::new(amount)
        .map_err(|e| RpcError::bad_param("amount_msat", &e.to_string(), v.get()))
}

/// A relative expiry in seconds (`invoice`'s and `holdinvoice`'s `expiry`).
fn expiry_param(v: &RawValue) -> Result<Expiry, RpcError> {
    let e = unsigned(
        v,
        "expiry",
        "should be an unsigned 64 bit integer",
        u64::MAX,
    )?;
    Expiry::new(e).map_err(|e| RpcError::bad_param("expiry", &e.to_string(), v.get()))
}

fn description(v: &RawValue) -> Result<String, RpcError> {
    let raw = v.get();
    let bad = || RpcError::bad_param("description", "should be a string (without \\u)", raw);
    if has_unicode_escape(raw) {
        return Err(bad());
    }
    as_string(v).ok_or_else(bad)
}

fn scid(v: &RawValue, reason: &str) -> Result<ShortChannelId, RpcError> {
    as_string(v)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| RpcError::bad_param("exposeprivatechannels", reason, v.get()))
}

fn expose(v: &RawValue) -> Result<ExposePrivateChannels, RpcError> {
    match v.get() {
        "true" => Ok(ExposePrivateChannels::Always),
        "false" => Ok(ExposePrivateChannels::Never),
        raw if raw.starts_with('[') => {
            let items: Vec<&RawValue> = serde_json::from_str(raw).map_err(|_| {
                RpcError::bad_param("exposeprivatechannels", "should be a short channel id", raw)
            })?;
            items
                .into_iter()
                .map(|i| scid(i, "should be a short channel id"))
                .collect::<Result<_, _>>()
                .map(ExposePrivateChannels::Only)
        }
        _ => Ok(ExposePrivateChannels::Only(vec![scid(
            v,
            "should be a short_channel_id of form NxNxN",
        )?])),
    }
}

fn fallbacks(v: &RawValue) -> Result<Vec<String>, RpcError> {
    let items: Vec<&RawValue> = if v.get().starts_with('[') {
        serde_json::from_str(v.get())
            .map_err(|_| RpcError::bad_param("fallbacks", "should be an array", v.get()))?
    } else {
        return Err(RpcError::bad_param(
            "fallbacks",
            "should be an array",
            v.get(),
        ));
    };
    // A non-string element is an invalid address (-1), as in Core Lightning.
    Ok(items
        .into_iter()
        .map(|i| as_string(i).unwrap_or_default())
        .collect())
}

/// How a method words the refusals that differ between Core Lightning's `invoice` and
/// holdinvoice's `holdinvoice`.
pub struct Words {
    /// Why a `preimage` (or `payment_hash`) is refused.
    pub hex32: &'static str,
    /// Why a `cltv` that is not a number is refused.
    pub cltv: &'static str,
}

/// Every parameter either method takes, as read (each `None` until given).
#[derive(Default)]
pub struct InvoiceParams {
    /// `amount_msat`.
    pub amount: Option<InvoiceAmount>,
    /// `label`.
    pub label: Option<String>,
    /// `description`.
    pub description: Option<String>,
    /// `expiry`.
    pub expiry: Option<Expiry>,
    /// `fallbacks` (`invoice` only).
    pub fallbacks: Option<Vec<String>>,
    /// `preimage`.
    pub preimage: Option<PaymentPreimage>,
    /// `payment_hash` (`holdinvoice` only).
    pub payment_hash: Option<PaymentHash>,
    /// `exposeprivatechannels`.
    pub expose: Option<ExposePrivateChannels>,
    /// `cltv`.
    pub cltv: Option<Cltv>,
    /// `deschashonly`.
    pub deschashonly: Option<bool>,
    /// `description_hash` (ours, by name only): the hash the invoice commits to, its text not
    /// given (LND's `description_hash`).
    pub description_hash: Option<Hash32>,
    /// `idempotent`.
    pub idempotent: Option<bool>,
}

impl InvoiceParams {
    /// Reads the parameters `spec` declares, in order of appearance.
    ///
    /// # Errors
    /// -32602 naming the first bad parameter.
    pub fn read(
        params: Option<&RawValue>,
        spec: &ParamSpec,
        words: &Words,
    ) -> Result<Self, RpcError> {
        let mut p = InvoiceParams::default();
        for (name, v) in bind(params, spec)? {
            match name {
                "amount_msat" => p.amount = Some(amount(v)?),
                "label" => p.label = Some(label_text(v, "label")?),
                "description" => p.description = Some(description(v)?),
                "expiry" => p.expiry = Some(expiry_param(v)?),
                "fallbacks" => p.fallbacks = Some(fallbacks(v)?),
                "preimage" => {
                    p.preimage = Some(PaymentPreimage(hex32(v, "preimage", words.hex32)?))
                }
                "payment_hash" => {
                    p.payment_hash = Some(PaymentHash(hex32(v, "payment_hash", words.hex32)?));
                }
                "exposeprivatechannels" => p.expose = Some(expose(v)?),
                "cltv" => p.cltv = Some(cltv(v, words.cltv)?),
                "deschashonly" => p.deschashonly = Some(boolean(v, "deschashonly")?),
                "description_hash" => {
                    p.description_hash = Some(hex32(v, "description_hash", words.hex32)?);
                }
                "idempotent" => p.idempotent = Some(boolean(v, "idempotent")?),
                other => {
                    return Err(RpcError::invalid_params(format!(
                        "unhandled parameter {other}"
                    )))
                }
            }
        }
        Ok(p)
    }

    /// The description: `description` (required unless `description_hash` is given), as text
    /// or, with `deschashonly`, its hash; or the given `description_hash`, with `description`
    /// as a note beside it.
    ///
    /// # Errors
    /// -32602: `description` missing or too long, or `deschashonly=false` with a hash.
    pub fn description(&mut self) -> Result<Description, RpcError> {
        match (self.description_hash, self.description.take()) {
            (Some(_), _) if self.deschashonly == Some(false) => Err(RpcError::invalid_params(
                "description_hash: the invoice carries this hash, so deschashonly cannot be false"
                    .to_owned(),
            )),
            (Some(hash), note) => Ok(Description::with_hash(hash, note.unwrap_or_default())),
            (None, text) => {
                let text = required(text, "description")?;
                Description::new(text, self.deschashonly.unwrap_or(false))
                    .map_err(|e| RpcError::invalid_params(e.to_string()))
            }
        }
    }
}

fn cltv(v: &RawValue, reason: &str) -> Result<Cltv, RpcError> {
    let c = unsigned(v, "cltv", reason, u64::from(u32::MAX))?;
    Cltv::new(c).map_err(|e| RpcError::bad_param("cltv", &e.to_string(), v.get()))
}
