//! One incoming HTLC as the `htlc_accepted` hook delivers it (`schemas/hook/htlc_accepted.json`),
//! and the BOLT 4 failure messages the plugin answers with.

use serde_json::{json, Value};

/// BOLT 4 `mpp_timeout` (23), no data.
pub const MPP_TIMEOUT: &str = "0017";

/// BOLT 4 `incorrect_or_unknown_payment_details` (PERM|15) with `htlc_msat` and `height`.
pub fn incorrect_or_unknown(htlc_msat: u64, height: u32) -> String {
    format!("400f{htlc_msat:016x}{height:08x}")
}

/// One incoming HTLC, from the hook's payload.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Htlc {
    /// `short_channel_id/id`: which HTLC this is, stable across lightningd's replays.
    pub key: String,
    /// Its payment hash.
    pub payment_hash: [u8; 32],
    /// What this part carries.
    pub amount_msat: u64,
    /// The whole payment's amount (the onion's `total_msat`, or this part's for a single part).
    pub total_msat: u64,
    /// The onion's payment secret.
    pub payment_secret: Option<[u8; 32]>,
    /// Its absolute expiry.
    pub cltv_expiry: u32,
    /// Blocks left until then.
    pub cltv_expiry_relative: u32,
    /// Whether we are the final hop (no next channel in the onion).
    pub final_hop: bool,
    /// When the plugin read it (for the time a payment spends in the plugin).
    pub read_at: std::time::Instant,
}

pub(super) fn msat(v: &Value) -> Option<u64> {
    match v {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.strip_suffix("msat").unwrap_or(s).parse().ok(),
        _ => None,
    }
}

fn hash32(v: &Value) -> Option<[u8; 32]> {
    let mut out = [0u8; 32];
    hex::decode_to_slice(v.as_str()?, &mut out).ok()?;
    Some(out)
}

impl Htlc {
    /// Reads the hook payload (`schemas/hook/htlc_accepted.json`).
    ///
    /// # Errors
    /// A message naming the missing or malformed field.
    pub fn from_payload(p: &Value) -> Result<Htlc, String> {
        let (h, onion) = (&p["htlc"], &p["onion"]);
        let field = |name: &str| format!("htlc_accepted: bad or missing htlc.{name}");
        let amount_msat = msat(&h["amount_msat"]).ok_or_else(|| field("amount_msat"))?;
        let u32_of = |name: &str| {
            h[name]
                .as_u64()
                .and_then(|v| u32::try_from(v).ok())
                .ok_or_else(|| field(name))
        };
        Ok(Htlc {
            key: format!(
                "{}/{}",
                h["short_channel_id"]
                    .as_str()
                    .ok_or_else(|| field("short_channel_id"))?,
                h["id"].as_u64().ok_or_else(|| field("id"))?
            ),
            payment_hash: hash32(&h["payment_hash"]).ok_or_else(|| field("payment_hash"))?,
            amount_msat,
            total_msat: msat(&onion["total_msat"]).unwrap_or(amount_msat),
            payment_secret: hash32(&onion["payment_secret"]),
            cltv_expiry: u32_of("cltv_expiry")?,
            cltv_expiry_relative: u32_of("cltv_expiry_relative")?,
            final_hop: onion.get("short_channel_id").is_none()
                && onion.get("next_node_id").is_none(),
            read_at: std::time::Instant::now(),
        })
    }

    /// What invoiced's `checkpart` is asked about this HTLC: what its onion and the HTLC say.
    pub fn check_params(&self) -> Value {
        let mut params = json!({
            "payment_hash": hex::encode(self.payment_hash),
            "part": self.part(),
            "cltv_expiry_relative": self.cltv_expiry_relative,
            "total_msat": self.total_msat,
        });
        if let Some(s) = self.payment_secret {
            params["payment_secret"] = json!(hex::encode(s));
        }
        params
    }

    /// The HTLC as invoiced records a part: `{htlc, amount_msat, cltv_expiry}`.
    pub fn part(&self) -> Value {
        json!({ "htlc": self.key, "amount_msat": self.amount_msat, "cltv_expiry": self.cltv_expiry })
    }

    /// The block height when lightningd called the hook.
    pub fn height(&self) -> u32 {
        self.cltv_expiry.saturating_sub(self.cltv_expiry_relative)
    }

    pub(super) fn fail(&self, height: u32) -> Value {
        json!({ "result": "fail", "failure_message": incorrect_or_unknown(self.amount_msat, height) })
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A hook payload for HTLC `103x1x0/7` of `amount` msat, `rel` blocks from expiry at height 1000.
    pub(crate) fn payload(amount: u64, total: Option<u64>, secret: &str, rel: u32) -> Value {
        let mut onion = json!({ "payload": "00", "next_onion": "00", "shared_secret": "00".repeat(32), "payment_secret": secret });
        if let Some(t) = total {
            onion["total_msat"] = json!(t);
        }
        json!({
            "onion": onion,
            "htlc": { "short_channel_id": "103x1x0", "id": 7, "amount_msat": amount, "cltv_expiry": 1000 + rel,
                      "cltv_expiry_relative": rel, "payment_hash": "11".repeat(32) }
        })
    }

    #[test]
    fn payload_fields() {
        let h = Htlc::from_payload(&payload(1000, Some(3000), &"22".repeat(32), 40)).unwrap();
        assert_eq!(
            (
                h.key.as_str(),
                h.amount_msat,
                h.total_msat,
                h.height(),
                h.final_hop
            ),
            ("103x1x0/7", 1000, 3000, 1000, true)
        );
        let single = Htlc::from_payload(&payload(1000, None, &"22".repeat(32), 40)).unwrap();
        assert_eq!(single.total_msat, 1000);
        let mut fwd = payload(1000, None, "", 40);
        fwd["onion"]["short_channel_id"] = json!("1x2x3");
        assert!(!Htlc::from_payload(&fwd).unwrap().final_hop);
        let mut bad = payload(1000, None, "", 40);
        bad["htlc"]["amount_msat"] = json!("lots");
        assert_eq!(
            Htlc::from_payload(&bad).unwrap_err(),
            "htlc_accepted: bad or missing htlc.amount_msat"
        );
    }

    fn arbitrary_json() -> impl proptest::strategy::Strategy<Value = Value> {
        use proptest::prelude::*;
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::from),
            any::<u64>().prop_map(Value::from),
            any::<i64>().prop_map(Value::from),
            "[0-9a-fx/]{0,70}".prop_map(Value::from),
            ".{0,20}".prop_map(Value::from),
        ];
        leaf.prop_recursive(4, 32, 6, |inner| {
            let keys = prop_oneof![
                Just("htlc".to_owned()),
                Just("onion".to_owned()),
                Just("amount_msat".to_owned()),
                Just("payment_hash".to_owned()),
                Just("cltv_expiry".to_owned()),
                Just("cltv_expiry_relative".to_owned()),
                Just("short_channel_id".to_owned()),
                Just("id".to_owned()),
                Just("total_msat".to_owned()),
                Just("payment_secret".to_owned()),
                "[a-z_]{1,8}",
            ];
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
                proptest::collection::btree_map(keys, inner, 0..6)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest::proptest! {
        /// Whatever lightningd sends, reading it never panics, and what is read is consistent.
        #[test]
        fn any_payload_is_read_or_refused(payload in arbitrary_json()) {
            if let Ok(h) = Htlc::from_payload(&payload) {
                if payload["onion"].get("total_msat").is_none() {
                    proptest::prop_assert_eq!(h.total_msat, h.amount_msat);
                }
                proptest::prop_assert!(h.height() <= h.cltv_expiry);
                proptest::prop_assert_eq!(h.key.split('/').count(), 2);
            }
            let _ = Htlc::from_payload(&payload).map(|h| h.check_params());
        }

        /// A well-formed payload keeps every field it carries.
        #[test]
        fn well_formed_payloads_round_trip(amount in 1u64..u64::MAX / 2, total in proptest::option::of(1u64..u64::MAX / 2),
                                           rel in 0u32..100_000, height in 0u32..1_000_000, id in proptest::prelude::any::<u64>()) {
            let mut p = payload(amount, total, &"22".repeat(32), rel);
            p["htlc"]["cltv_expiry"] = json!(height + rel);
            p["htlc"]["id"] = json!(id);
            let h = Htlc::from_payload(&p).unwrap();
            proptest::prop_assert_eq!((h.amount_msat, h.total_msat, h.height(), h.cltv_expiry_relative), (amount, total.unwrap_or(amount), height, rel));
            proptest::prop_assert_eq!(h.key, format!("103x1x0/{id}"));
        }
    }

    #[test]
    fn failure_messages_are_bolt4() {
        // PERM|15, htlc_msat u64, height u32, all big-endian.
        assert_eq!(
            incorrect_or_unknown(1000, 101),
            "400f00000000000003e800000065"
        );
        assert_eq!(MPP_TIMEOUT, "0017");
    }
}
