//! What a webhook receives for one record of the log, and its signature. Pure: the record and
//! the creation of the invoice it concerns in, JSON out.
//!
//! The body: `{"seq", "time_ms", "type", "invoice": {...}, "event": {...}}`, where `type` is one of
//! [`TYPES`], `invoice` says which invoice (label, payment hash, bolt11, amount, created_index)
//! and what it became by this event (status, hold state, payment), and `event` is the record's
//! own fields as `invoiced events --json` prints them. The preimage is never in it.

use bitcoin::hashes::{hmac, sha256, Hash as _, HashEngine as _};
use invoiced_events::{
    earliest_expiry, Event, EventRecord, HoldState, InvoiceCreated, InvoiceStatus, Msat, PayIndex,
};
use serde_json::{json, Map, Value};

/// Every `type` a webhook can carry.
pub const TYPES: &[&str] = &[
    "invoice_created",
    "invoice_paid",
    "invoice_accepted",
    "invoice_settled",
    "invoice_canceled",
    "invoice_expired",
    "invoice_deleted",
];

/// The `type` of a record, or `None` for a record no webhook is sent for (channels, a removed
/// description).
pub fn type_of(event: &Event) -> Option<&'static str> {
    Some(match event {
        Event::InvoiceCreated(_)
        | Event::HoldInvoiceCreated(_)
        | Event::HashedInvoiceCreated(_)
        | Event::Bolt12InvoiceCreated(_) => "invoice_created",
        Event::InvoicePaid(_) | Event::HtlcsPaid(_) => "invoice_paid",
        Event::HoldAccepted(_) => "invoice_accepted",
        Event::HoldSettled(_) => "invoice_settled",
        Event::HoldCanceled(_) => "invoice_canceled",
        Event::InvoiceExpired(_) => "invoice_expired",
        Event::InvoiceDeleted(_) | Event::InvoiceCleaned(_) => "invoice_deleted",
        Event::DescriptionRemoved(_)
        | Event::ChannelOpened(_)
        | Event::ChannelUpdated(_)
        | Event::ChannelClosed(_) => return None,
    })
}

/// The body for `rec`, given the creation of its invoice (`None` if the log has none: then only
/// its `created_index` identifies it).
pub fn body(rec: &EventRecord, created: Option<&InvoiceCreated>) -> Option<Value> {
    let kind = type_of(&rec.event)?;
    let mut inv = Map::new();
    if let Some(c) = created {
        inv.insert("label".into(), c.body.label.as_str().into());
        inv.insert("payment_hash".into(), c.body.payment_hash.to_hex().into());
        let field = if c.body.bolt11.starts_with("lni") {
            "bolt12"
        } else {
            "bolt11"
        };
        inv.insert(field.into(), c.body.bolt11.clone().into());
        if let Some(a) = c.body.amount_msat {
            inv.insert("amount_msat".into(), a.0.into());
        }
        inv.insert("expires_at".into(), c.body.expires_at.into());
    }
    inv.insert(
        "created_index".into(),
        rec.event.invoice_index().unwrap_or_default().get().into(),
    );
    let (status, hold) = match &rec.event {
        Event::InvoiceCreated(_) | Event::Bolt12InvoiceCreated(_) => (InvoiceStatus::Unpaid, None),
        Event::HoldInvoiceCreated(_) => (InvoiceStatus::Unpaid, Some(HoldState::Open)),
        Event::HashedInvoiceCreated(h) => {
            (InvoiceStatus::Unpaid, h.hold.then_some(HoldState::Open))
        }
        Event::InvoicePaid(p) | Event::HtlcsPaid(invoiced_events::HtlcsPaid { paid: p, .. }) => {
            payment(&mut inv, p.pay_index, p.amount_received_msat, p.paid_at);
            (InvoiceStatus::Paid, None)
        }
        Event::HoldAccepted(a) => {
            if let Some(expiry) = earliest_expiry(&a.parts) {
                inv.insert("htlc_expiry".into(), expiry.into());
            }
            (InvoiceStatus::Unpaid, Some(HoldState::Accepted))
        }
        Event::HoldSettled(s) => {
            payment(&mut inv, s.pay_index, s.amount_received_msat, s.paid_at);
            (InvoiceStatus::Paid, Some(HoldState::Settled))
        }
        Event::HoldCanceled(_) => (InvoiceStatus::Expired, Some(HoldState::Canceled)),
        Event::InvoiceExpired(_) => (InvoiceStatus::Expired, None),
        Event::InvoiceDeleted(d) => (d.status, None),
        Event::InvoiceCleaned(c) => (c.status, None),
        _ => return None,
    };
    inv.insert("status".into(), status.as_str().into());
    if let Some(h) = hold {
        inv.insert("hold_state".into(), h.as_str().into());
    }
    let mut event = rec.event.fields_json();
    // The seals open only with hsm_secret, but a receiver has no use for them: they stay home.
    if let Value::Object(fields) = &mut event {
        fields.remove("preimage");
        fields.remove("revealed");
    }
    Some(json!({
        "seq": rec.seq,
        "time_ms": rec.time_ms,
        "type": kind,
        "invoice": inv,
        "event": event,
    }))
}

fn payment(inv: &mut Map<String, Value>, pay_index: PayIndex, amount: Msat, paid_at: u64) {
    inv.insert("pay_index".into(), pay_index.get().into());
    inv.insert("amount_received_msat".into(), amount.0.into());
    inv.insert("paid_at".into(), paid_at.into());
}

/// HMAC-SHA256 of `body` under `secret`, in hex: the `X-Invoiced-Signature` header.
pub fn signature(secret: &[u8], body: &[u8]) -> String {
    let mut engine = hmac::HmacEngine::<sha256::Hash>::new(secret);
    engine.input(body);
    hex::encode(hmac::Hmac::<sha256::Hash>::from_engine(engine).to_byte_array())
}

#[cfg(test)]
mod tests {
    use super::*;
    use invoiced_events::{
        CreatedIndex, DeletedIndex, HoldSettled, InvoiceBody, InvoiceDeleted, Label, PaymentHash,
        PaymentSecret, PreimageSeal, UpdatedIndex,
    };

    fn created() -> InvoiceCreated {
        InvoiceCreated {
            created_index: CreatedIndex(4),
            body: InvoiceBody {
                label: Label::new("tea").unwrap(),
                bolt11: "lnbcrt1".into(),
                payment_hash: PaymentHash([7; 32]),
                payment_secret: PaymentSecret([8; 32]),
                preimage: PreimageSeal::Derived { nonce: [9; 32] },
                amount_msat: Some(Msat(1000)),
                description: "green".into(),
                deschashonly: false,
                created_at: 1,
                expiry: 10,
                expires_at: 11,
                cltv: 18,
                fallbacks: vec![],
                route_hints: vec![],
                warnings: vec![],
            },
        }
    }

    fn rec(event: Event) -> EventRecord {
        EventRecord {
            seq: 12,
            time_ms: 5,
            prev_hash: [0; 32],
            event,
        }
    }

    #[test]
    fn each_invoice_event_says_what_the_invoice_became_and_never_its_secrets() {
        let settled = rec(Event::HoldSettled(HoldSettled {
            created_index: CreatedIndex(4),
            pay_index: PayIndex(2),
            updated_index: UpdatedIndex(3),
            amount_received_msat: Msat(1000),
            paid_at: 9,
            revealed: Some(PreimageSeal::Sealed {
                nonce: [1; 32],
                ciphertext: [2; 32],
            }),
        }));
        let b = body(&settled, Some(&created())).unwrap();
        assert_eq!(b["type"], "invoice_settled");
        assert_eq!(
            b["invoice"],
            json!({"label": "tea", "payment_hash": "07".repeat(32), "bolt11": "lnbcrt1", "amount_msat": 1000,
            "expires_at": 11, "created_index": 4, "pay_index": 2, "amount_received_msat": 1000, "paid_at": 9, "status": "paid", "hold_state": "SETTLED"})
        );
        assert_eq!(b["seq"], 12);
        let text = b.to_string();
        assert!(
            !text.contains("revealed") && !text.contains(&"01".repeat(32)),
            "no seal: {text}"
        );
        let b = body(&rec(Event::InvoiceCreated(created())), None).unwrap();
        assert!(
            b["event"].get("preimage").is_none() && b["event"]["label"] == "tea",
            "{b}"
        );
        let deleted = rec(Event::InvoiceDeleted(InvoiceDeleted {
            created_index: CreatedIndex(4),
            deleted_index: DeletedIndex(1),
            status: InvoiceStatus::Expired,
        }));
        let b = body(&deleted, None).unwrap();
        assert_eq!(
            (
                b["type"].clone(),
                b["invoice"]["status"].clone(),
                b["invoice"]["created_index"].clone()
            ),
            (json!("invoice_deleted"), json!("expired"), json!(4))
        );
        assert!(body(
            &rec(Event::DescriptionRemoved(
                invoiced_events::DescriptionRemoved {
                    created_index: CreatedIndex(4),
                    updated_index: UpdatedIndex(1)
                }
            )),
            None
        )
        .is_none());
        for e in [
            Event::InvoiceCreated(created()),
            Event::HoldInvoiceCreated(created()),
        ] {
            assert!(TYPES.contains(&type_of(&e).unwrap()));
        }
    }

    #[test]
    fn the_signature_is_rfc_4231s_hmac_sha256() {
        // RFC 4231, test case 2.
        assert_eq!(
            signature(b"Jefe", b"what do ya want for nothing?"),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }
}
