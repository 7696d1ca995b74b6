//! An invoice of invoiced as LND's `Invoice`, and LND's `AddInvoice` as invoiced's `invoice`.
//!
//! The mapping (docs/LND.md): `memo` ↔ description, `value`/`value_msat` ↔ `amount_msat`,
//! `r_hash` ↔ `payment_hash`, `r_preimage` ↔ the preimage (shown once paid, as invoiced shows
//! it), `add_index` ↔ `created_index`, `settle_index` ↔ `pay_index`, `state` from the status
//! (and a hold invoice's own state), `amt_paid_*` from `amount_received_msat`, `settle_date`
//! from `paid_at`; the rest (creation date, expiry, CLTV, payment address, description hash,
//! route hints, fallback) is read from the signed invoice itself. An invoice made through LND's
//! API is labelled `lnd-<payment hash>`: a name no Core Lightning client gets by chance, and
//! shown as such to Core Lightning's clients.

use lightning_invoice::{Bolt11Invoice, Bolt11InvoiceDescriptionRef};
use serde_json::{json, Map, Value};

use super::proto::lnrpc::{self, invoice::InvoiceState};

/// The label of an invoice made through LND's API.
pub fn label_of(payment_hash: &[u8; 32]) -> String {
    format!("lnd-{}", hex::encode(payment_hash))
}

/// LND's default relative expiry of a new invoice: one day.
pub const DEFAULT_EXPIRY: i64 = 86_400;

/// Why an `AddInvoice` cannot become an `invoice`, in LND's words.
#[derive(Debug, thiserror::Error)]
pub enum AddError {
    /// Both amounts given.
    #[error("value and value_msat are mutually exclusive")]
    BothAmounts,
    /// An amount below zero.
    #[error("payment of {0} msat is not positive")]
    Negative(i64),
    /// A preimage that is not 32 bytes.
    #[error("payment preimage must be exactly 32 bytes")]
    PreimageLength,
    /// A hash given with a preimage that is not its.
    #[error("r_hash does not match the preimage")]
    HashMismatch,
    /// A description hash that is not 32 bytes.
    #[error("description hash is {0} bytes, must be 32")]
    DescriptionHashLength(usize),
    /// An expiry below zero.
    #[error("expiry must be positive")]
    Expiry,
}

/// The `invoice` parameters of an `AddInvoice`, with the preimage it uses (its own, or the
/// one drawn here) and so the payment hash that names it.
pub fn add_params(inv: &lnrpc::Invoice, preimage: [u8; 32]) -> Result<(Value, [u8; 32]), AddError> {
    use bitcoin::hashes::{sha256, Hash as _};
    let amount = match (inv.value, inv.value_msat) {
        (v, m) if v != 0 && m != 0 => return Err(AddError::BothAmounts),
        (v, _) if v < 0 => return Err(AddError::Negative(v.saturating_mul(1000))),
        (_, m) if m < 0 => return Err(AddError::Negative(m)),
        (0, 0) => json!("any"),
        (v, 0) => json!(u64::try_from(v).unwrap_or_default().saturating_mul(1000)),
        (_, m) => json!(m),
    };
    let hash = sha256::Hash::hash(&preimage).to_byte_array();
    if !inv.r_hash.is_empty() && inv.r_hash != hash {
        return Err(AddError::HashMismatch);
    }
    if inv.expiry < 0 {
        return Err(AddError::Expiry);
    }
    let mut p = Map::new();
    p.insert("amount_msat".into(), amount);
    p.insert("label".into(), label_of(&hash).into());
    p.insert("description".into(), inv.memo.clone().into());
    if !inv.description_hash.is_empty() {
        if inv.description_hash.len() != 32 {
            return Err(AddError::DescriptionHashLength(inv.description_hash.len()));
        }
        // The memo is kept beside the hash, as LND keeps it; the invoice carries the hash.
        p.insert(
            "description_hash".into(),
            hex::encode(&inv.description_hash).into(),
        );
    }
    let expiry = if inv.expiry == 0 {
        DEFAULT_EXPIRY
    } else {
        inv.expiry
    };
    p.insert("expiry".into(), expiry.into());
    p.insert("preimage".into(), hex::encode(preimage).into());
    if inv.cltv_expiry != 0 {
        p.insert("cltv".into(), inv.cltv_expiry.into());
    }
    if inv.private {
        p.insert("exposeprivatechannels".into(), true.into());
    }
    if !inv.fallback_addr.is_empty() {
        p.insert("fallbacks".into(), json!([inv.fallback_addr]));
    }
    Ok((Value::Object(p), hash))
}

/// The `holdinvoice` parameters of an `AddHoldInvoice` (given as the `Invoice` it describes)
/// for payment hash `hash`.
pub fn hold_params(inv: &lnrpc::Invoice, hash: [u8; 32]) -> Result<Value, AddError> {
    let (mut p, _) = add_params(inv, [0; 32])?;
    if let Value::Object(m) = &mut p {
        m.remove("preimage");
        m.remove("fallbacks");
        m.insert("payment_hash".into(), hex::encode(hash).into());
        m.insert("label".into(), label_of(&hash).into());
    }
    Ok(p)
}

/// The preimage of an `AddInvoice`: its own (checked), or `drawn`.
pub fn preimage_of(inv: &lnrpc::Invoice, drawn: [u8; 32]) -> Result<[u8; 32], AddError> {
    if inv.r_preimage.is_empty() {
        return Ok(drawn);
    }
    <[u8; 32]>::try_from(inv.r_preimage.as_slice()).map_err(|_| AddError::PreimageLength)
}

/// The bytes of a hex field of invoiced's answer (none if absent or not hex).
pub fn hex_bytes(v: &Value) -> Vec<u8> {
    v.as_str()
        .and_then(|s| hex::decode(s).ok())
        .unwrap_or_default()
}

fn i64_of(v: &Value) -> i64 {
    v.as_u64().and_then(|n| i64::try_from(n).ok()).unwrap_or(0)
}

/// An invoice object of invoiced (`listinvoices`) as LND's `Invoice` (the deprecated `settled`
/// and `amt_paid` filled as LND still fills them, for older clients).
#[allow(deprecated)]
pub fn to_lnd(obj: &Value) -> lnrpc::Invoice {
    let bolt11 = obj["bolt11"].as_str().unwrap_or_default();
    let decoded: Option<Bolt11Invoice> = bolt11.parse().ok();
    let value_msat = i64_of(&obj["amount_msat"]);
    let paid_msat = i64_of(&obj["amount_received_msat"]);
    let state = match (obj["hold_state"].as_str(), obj["status"].as_str()) {
        (Some("ACCEPTED"), _) => InvoiceState::Accepted,
        (Some("SETTLED"), _) | (None, Some("paid")) => InvoiceState::Settled,
        (Some("CANCELED"), _) | (None, Some("expired")) => InvoiceState::Canceled,
        _ => InvoiceState::Open,
    };
    let mut inv = lnrpc::Invoice {
        memo: obj["description"].as_str().unwrap_or_default().to_owned(),
        r_preimage: hex_bytes(&obj["payment_preimage"]),
        r_hash: hex_bytes(&obj["payment_hash"]),
        value: value_msat / 1000,
        value_msat,
        settled: state == InvoiceState::Settled,
        settle_date: i64_of(&obj["paid_at"]),
        payment_request: bolt11.to_owned(),
        add_index: obj["created_index"].as_u64().unwrap_or(0),
        settle_index: obj["pay_index"].as_u64().unwrap_or(0),
        amt_paid: paid_msat,
        amt_paid_sat: paid_msat / 1000,
        amt_paid_msat: paid_msat,
        state: state as i32,
        ..Default::default()
    };
    if let Some(d) = decoded {
        inv.creation_date = i64::try_from(d.duration_since_epoch().as_secs()).unwrap_or(0);
        inv.expiry = i64::try_from(d.expiry_time().as_secs()).unwrap_or(0);
        inv.cltv_expiry = d.min_final_cltv_expiry_delta();
        inv.payment_addr = d.payment_secret().0.to_vec();
        if let Bolt11InvoiceDescriptionRef::Hash(h) = d.description() {
            inv.description_hash = AsRef::<[u8; 32]>::as_ref(&h.0).to_vec();
        }
        inv.fallback_addr = d
            .fallback_addresses()
            .first()
            .map(ToString::to_string)
            .unwrap_or_default();
        inv.route_hints = d
            .route_hints()
            .into_iter()
            .map(|r| lnrpc::RouteHint {
                hop_hints: r
                    .0
                    .iter()
                    .map(|h| lnrpc::HopHint {
                        node_id: h.src_node_id.to_string(),
                        chan_id: h.short_channel_id,
                        fee_base_msat: h.fees.base_msat,
                        fee_proportional_millionths: h.fees.proportional_millionths,
                        cltv_expiry_delta: u32::from(h.cltv_expiry_delta),
                    })
                    .collect(),
            })
            .collect();
        inv.private = !inv.route_hints.is_empty();
    }
    inv
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_add_invoice_becomes_invoice_params_named_by_its_hash() {
        let inv = lnrpc::Invoice {
            memo: "tea".into(),
            value: 5,
            expiry: 0,
            private: true,
            ..Default::default()
        };
        let (p, hash) = add_params(&inv, [1; 32]).unwrap();
        assert_eq!(p["amount_msat"], json!(5000));
        assert_eq!(p["label"], json!(label_of(&hash)));
        assert_eq!(p["expiry"], json!(DEFAULT_EXPIRY));
        assert_eq!(p["exposeprivatechannels"], json!(true));
        assert_eq!(p["preimage"], json!("01".repeat(32)));
        let both = lnrpc::Invoice {
            value: 1,
            value_msat: 1000,
            ..Default::default()
        };
        assert!(matches!(
            add_params(&both, [1; 32]),
            Err(AddError::BothAmounts)
        ));
        let any = add_params(&lnrpc::Invoice::default(), [1; 32]).unwrap().0;
        assert_eq!(any["amount_msat"], json!("any"));
        let wrong = lnrpc::Invoice {
            r_hash: vec![9; 32],
            ..Default::default()
        };
        assert!(matches!(
            add_params(&wrong, [1; 32]),
            Err(AddError::HashMismatch)
        ));
    }

    #[test]
    fn states_follow_the_status_and_a_hold_invoices_own_state() {
        let state = |o: Value| to_lnd(&o).state;
        assert_eq!(
            state(json!({"status": "unpaid"})),
            InvoiceState::Open as i32
        );
        assert_eq!(
            state(json!({"status": "paid"})),
            InvoiceState::Settled as i32
        );
        assert_eq!(
            state(json!({"status": "expired"})),
            InvoiceState::Canceled as i32
        );
        assert_eq!(
            state(json!({"status": "unpaid", "hold_state": "ACCEPTED"})),
            InvoiceState::Accepted as i32
        );
        let paid = to_lnd(
            &json!({"status": "paid", "amount_received_msat": 2500, "pay_index": 3, "created_index": 7}),
        );
        assert_eq!(
            (
                paid.amt_paid_sat,
                paid.amt_paid_msat,
                paid.settle_index,
                paid.add_index
            ),
            (2, 2500, 3, 7)
        );
    }
}
