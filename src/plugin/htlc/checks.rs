//! The final hop's checks on a part, as Core Lightning's `invoice_check_payment` makes them,
//! against what the plugin reads of one of invoiced's invoices.

use std::str::FromStr;

use lightning_invoice::SignedRawBolt11Invoice;
use serde_json::Value;

use super::payload::{msat, Htlc};

/// What the plugin needs of one of invoiced's invoices.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OurInvoice {
    /// `unpaid`, `paid` or `expired`.
    pub status: String,
    /// Its amount (`None` for `any`).
    pub amount_msat: Option<u64>,
    /// When it expires (UNIX seconds).
    pub expires_at: u64,
    /// The secret a payer must send; `None` for a BOLT12 invoice, whose secret (its blinded
    /// path's `path_id`) only invoiced knows and checks when the payment is settled.
    pub payment_secret: Option<[u8; 32]>,
    /// Its `min_final_cltv_expiry`.
    pub min_final_cltv: u32,
    /// The preimage, once paid.
    pub preimage: Option<String>,
    /// For a hold invoice, its state (`OPEN`, `ACCEPTED`, `SETTLED`, `CANCELED`).
    pub hold: Option<String>,
}

impl OurInvoice {
    /// Reads one invoice of a `listinvoices` answer; the secret and CLTV come from its bolt11,
    /// the CLTV of a BOLT12 invoice from its paths.
    ///
    /// # Errors
    /// A message if a field is missing or its invoice string does not parse.
    pub fn from_listed(inv: &Value) -> Result<OurInvoice, String> {
        let (payment_secret, min_final_cltv) = match (inv["bolt11"].as_str(), inv["bolt12"].as_str()) {
            (Some(bolt11), _) => {
                let raw = SignedRawBolt11Invoice::from_str(bolt11).map_err(|e| format!("listed bolt11 does not parse: {e}"))?;
                let raw = raw.raw_invoice();
                let secret = raw.payment_secret().ok_or("listed bolt11 has no payment secret")?.0;
                // BOLT 11: without a `c` field, min_final_cltv_expiry_delta is 18.
                (Some(secret), raw.min_final_cltv_expiry_delta().map_or(18, |c| c.0))
            }
            (None, Some(bolt12)) => {
                let inv = invoiced_actors::policy::bolt12::Invoice::decode(bolt12).map_err(|e| format!("listed bolt12 does not parse: {e}"))?;
                (None, u64::from(inv.min_path_cltv().ok_or("listed bolt12 has no blinded path")?))
            }
            (None, None) => return Err("listed invoice without bolt11 or bolt12".into()),
        };
        Ok(OurInvoice {
            status: inv["status"].as_str().ok_or("listed invoice without status")?.to_owned(),
            amount_msat: inv.get("amount_msat").and_then(msat),
            expires_at: inv["expires_at"].as_u64().ok_or("listed invoice without expires_at")?,
            payment_secret,
            min_final_cltv: u32::try_from(min_final_cltv).unwrap_or(u32::MAX),
            preimage: inv["payment_preimage"].as_str().map(str::to_owned),
            hold: inv["hold_state"].as_str().map(str::to_owned),
        })
    }
}

/// Why a part is refused (logged; the sender gets `incorrect_or_unknown_payment_details`).
pub fn check_part(inv: &OurInvoice, htlc: &Htlc, now: u64) -> Result<(), String> {
    if inv.status != "unpaid" {
        return Err(format!("invoice is {}", inv.status));
    }
    // Parts of an accepted hold invoice (replayed after a restart) are bound by their CLTV, not by
    // the invoice's expiry.
    if inv.expires_at <= now && inv.hold.as_deref() != Some("ACCEPTED") {
        return Err("invoice expired".into());
    }
    match (htlc.payment_secret, inv.payment_secret) {
        (None, _) => return Err("no payment_secret".into()),
        (Some(s), Some(want)) if !invoiced_actors::key_signer::secrets_equal(&s, &want) => return Err("wrong payment_secret".into()),
        _ => {}
    }
    if htlc.cltv_expiry_relative < inv.min_final_cltv {
        return Err(format!("cltv_expiry_relative {} < min_final_cltv_expiry {}", htlc.cltv_expiry_relative, inv.min_final_cltv));
    }
    check_amount(inv, htlc.total_msat)
}

/// The amount of a whole payment against the invoice: at least it, at most twice it.
pub fn check_amount(inv: &OurInvoice, paid: u64) -> Result<(), String> {
    match inv.amount_msat {
        Some(want) if paid < want => Err(format!("amount {paid} < {want}")),
        Some(want) if paid > want.saturating_mul(2) => Err(format!("amount {paid} > twice {want}")),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::super::payload::tests::payload;
    use super::*;

    fn invoice(amount: Option<u64>) -> OurInvoice {
        OurInvoice { status: "unpaid".into(), amount_msat: amount, expires_at: 2000, payment_secret: Some([0x22; 32]), min_final_cltv: 18, preimage: None, hold: None }
    }

    #[test]
    fn every_check_core_lightning_makes() {
        let ok = Htlc::from_payload(&payload(1000, None, &"22".repeat(32), 18)).unwrap();
        assert_eq!(check_part(&invoice(Some(1000)), &ok, 1999), Ok(()));
        assert!(check_part(&invoice(Some(1000)), &ok, 2000).unwrap_err().contains("expired"));
        let wrong = Htlc::from_payload(&payload(1000, None, &"23".repeat(32), 18)).unwrap();
        assert_eq!(check_part(&invoice(Some(1000)), &wrong, 0).unwrap_err(), "wrong payment_secret");
        let none = Htlc::from_payload(&payload(1000, None, "", 18)).unwrap();
        assert_eq!(check_part(&invoice(Some(1000)), &none, 0).unwrap_err(), "no payment_secret");
        let close = Htlc::from_payload(&payload(1000, None, &"22".repeat(32), 17)).unwrap();
        assert!(check_part(&invoice(Some(1000)), &close, 0).unwrap_err().starts_with("cltv_expiry_relative 17"));
        let little = Htlc::from_payload(&payload(999, None, &"22".repeat(32), 18)).unwrap();
        assert_eq!(check_part(&invoice(Some(1000)), &little, 0).unwrap_err(), "amount 999 < 1000");
        let much = Htlc::from_payload(&payload(2001, None, &"22".repeat(32), 18)).unwrap();
        assert_eq!(check_part(&invoice(Some(1000)), &much, 0).unwrap_err(), "amount 2001 > twice 1000");
        let twice = Htlc::from_payload(&payload(2000, None, &"22".repeat(32), 18)).unwrap();
        assert_eq!(check_part(&invoice(Some(1000)), &twice, 0), Ok(()));
        assert_eq!(check_part(&invoice(None), &much, 0), Ok(()));
        let mut paid = invoice(Some(1000));
        paid.status = "expired".into();
        assert_eq!(check_part(&paid, &ok, 0).unwrap_err(), "invoice is expired");
    }
}
