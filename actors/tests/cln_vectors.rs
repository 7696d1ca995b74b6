//! Core Lightning's own invoices, reproduced byte for byte: same key, same inputs, same second.
#![allow(clippy::unwrap_used)]

use invoiced_actors::key_signer::{payment_secret_for, sha256, EntropySource, KeySigner};
use invoiced_actors::policy::bolt11::{build_raw, parse_fallback, InvoiceDraft};
use invoiced_events::{AmountOrAny, Network};
use serde_json::Value;

struct NoEntropy;
impl EntropySource for NoEntropy {
    fn fill(&mut self, buf: &mut [u8]) {
        buf.fill(0);
    }
}

#[test]
fn reproduces_every_core_lightning_invoice() {
    let fixture: Value = serde_json::from_str(include_str!("data/cln-invoices.json")).unwrap();
    let secret: [u8; 32] = core::array::from_fn(|i| i as u8 + 1);
    let signer = KeySigner::new(&secret, Box::new(NoEntropy)).unwrap();
    let cases = fixture["cases"].as_array().unwrap();
    assert_eq!(cases.len(), 7);
    for case in cases {
        let p = &case["params"];
        let amount: AmountOrAny = match &p["amount_msat"] {
            Value::String(s) => s.parse().unwrap(),
            n => n.to_string().parse().unwrap(),
        };
        let preimage: [u8; 32] = hex::decode(p["preimage"].as_str().unwrap())
            .unwrap()
            .try_into()
            .unwrap();
        let fallbacks = p["fallbacks"]
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|f| parse_fallback(f.as_str().unwrap(), Network::Regtest).unwrap())
                    .collect()
            })
            .unwrap_or_default();
        let draft = InvoiceDraft {
            network: Network::Regtest,
            amount: invoiced_actors::policy::bolt11::InvoiceAmount::new(amount).unwrap(),
            timestamp: case["decode"]["created_at"].as_u64().unwrap(),
            description: invoiced_events::Description::new(
                p["description"].as_str().unwrap().to_owned(),
                p["deschashonly"].as_bool().unwrap_or(false),
            )
            .unwrap(),
            expiry: invoiced_actors::policy::bolt11::Expiry::new(
                p["expiry"].as_u64().unwrap_or(604_800),
            )
            .unwrap(),
            cltv: invoiced_actors::policy::bolt11::Cltv::new(p["cltv"].as_u64().unwrap_or(10))
                .unwrap(),
            fallbacks,
            route_hints: vec![],
        };
        let bolt11 = signer
            .sign_invoice(
                build_raw(
                    &draft,
                    &invoiced_events::PaymentHash(sha256(&preimage)),
                    &payment_secret_for(&invoiced_events::PaymentPreimage(preimage)),
                )
                .unwrap(),
            )
            .to_string();
        assert_eq!(
            bolt11,
            case["result"]["bolt11"].as_str().unwrap(),
            "case {}",
            p["label"]
        );
        assert_eq!(
            payment_secret_for(&invoiced_events::PaymentPreimage(preimage)).to_hex(),
            case["result"]["payment_secret"].as_str().unwrap()
        );
        // lightning-invoice's own parser accepts it and recovers our node id.
        let parsed: lightning_invoice::Bolt11Invoice = bolt11.parse().unwrap();
        assert!(parsed.check_signature().is_ok());
        assert_eq!(parsed.recover_payee_pub_key(), signer.node_id());
    }
}
