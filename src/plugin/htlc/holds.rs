//! Hold invoices' parts: a complete set reported to invoiced (`holdaccept`) and kept unanswered,
//! and the watcher that resolves or fails them once invoiced settles or cancels the invoice.

use std::sync::{Arc, PoisonError};
use std::time::Duration;

use serde_json::{json, Value};

use super::{HeldPart, Paid, Payments};
use crate::rpc_client::CallError;

/// How long the hold watcher waits on invoiced before looking at the held invoices anyway.
const HOLD_RECHECK: Duration = Duration::from_secs(30);

impl Payments {
    /// A complete set for a hold invoice: reported to invoiced, then held (or resolved at once
    /// if invoiced says it was settled already, as after a restart).
    pub(super) async fn hold(&self, parts: Vec<HeldPart>) {
        let Some(first) = parts.first() else { return };
        let (hash, secret) = (
            first.htlc.payment_hash,
            hex::encode(first.htlc.payment_secret.unwrap_or_default()),
        );
        let earliest = parts.iter().map(|p| p.htlc.cltv_expiry).min().unwrap_or(0);
        let sum: u64 = parts
            .iter()
            .map(|p| p.htlc.amount_msat)
            .fold(0, u64::saturating_add);
        let listed: Vec<Value> = parts.iter().map(|p| p.htlc.part()).collect();
        let accept = json!({ "payment_hash": hex::encode(hash), "payment_secret": secret, "parts": listed, "blockheight": self.height() });
        match self
            .retrying(earliest, || self.invoiced.call("holdaccept", &accept))
            .await
        {
            Ok(v) if v["state"] == "ACCEPTED" => {
                log::info!(
                    "hold invoice {}: {sum} msat in {} part(s) held",
                    hex::encode(hash),
                    parts.len()
                );
                self.held
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .entry(hash)
                    .or_default()
                    .extend(parts);
                self.holding.notify_one();
            }
            Ok(v) if v["state"] == "SETTLED" => self.resolve(parts, v["preimage"].as_str()),
            Ok(v) => {
                log::info!(
                    "failing payment {}: the hold invoice is {}",
                    hex::encode(hash),
                    v["state"]
                );
                self.resolve(parts, None);
            }
            Err(e) => {
                log::info!(
                    "failing payment {}: invoiced refused to hold it: {e}",
                    hex::encode(hash)
                );
                self.resolve(parts, None);
            }
        }
    }

    /// Answers every part: resolved with `preimage`, or failed.
    fn resolve(&self, parts: Vec<HeldPart>, preimage: Option<&str>) {
        let height = self.height();
        for p in parts {
            let answer = match preimage {
                Some(preimage) => json!({ "result": "resolve", "payment_key": preimage }),
                None => p.htlc.fail(height),
            };
            let _ = p.reply.send(answer);
        }
    }

    /// Follows invoiced's `updated` index for as long as the plugin runs, and answers the held
    /// parts of every hold invoice that was settled or canceled.
    pub async fn watch_holds(self: Arc<Self>) {
        let mut next = 0u64;
        loop {
            if self
                .held
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .is_empty()
            {
                self.holding.notified().await;
            }
            let wait =
                json!({ "subsystem": "invoices", "indexname": "updated", "nextvalue": next });
            match tokio::time::timeout(HOLD_RECHECK, self.invoiced.call("wait", &wait)).await {
                Ok(Ok(v)) => next = v["updated"].as_u64().map_or(next, |u| u + 1),
                Ok(Err(e)) => {
                    log::debug!("hold watcher: {e}");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
                // Nothing changed for a while: look anyway (the height may have moved).
                Err(_) => {}
            }
            self.answer_decided_holds().await;
        }
    }

    async fn answer_decided_holds(&self) {
        let hashes: Vec<[u8; 32]> = self
            .held
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .keys()
            .copied()
            .collect();
        for hash in hashes {
            let looked = self
                .invoiced
                .call(
                    "holdinvoicelookup",
                    &json!({ "payment_hash": hex::encode(hash) }),
                )
                .await;
            let mut label = None;
            let decision = match &looked {
                Ok(v) => match v["holdinvoices"][0]["state"].as_str() {
                    Some("ACCEPTED") => continue,
                    Some("SETTLED") => {
                        label = v["holdinvoices"][0]["label"].as_str().map(str::to_owned);
                        Some(v["holdinvoices"][0]["preimage"].as_str().map(str::to_owned))
                    }
                    _ => Some(None),
                },
                // Gone (deleted): nothing will settle it.
                Err(CallError::Rpc(_)) => Some(None),
                Err(CallError::Unreachable(_)) => None,
            };
            let parts = {
                let mut held = self.held.lock().unwrap_or_else(PoisonError::into_inner);
                let earliest = held
                    .get(&hash)
                    .and_then(|ps| ps.iter().map(|p| p.htlc.cltv_expiry).min())
                    .unwrap_or(0);
                match decision {
                    Some(_) => held.remove(&hash),
                    // invoiced is unreachable: hold on, unless the parts near their expiry.
                    None if self.height().saturating_add(self.cltv_safety) >= earliest => {
                        held.remove(&hash)
                    }
                    None => None,
                }
            };
            let Some(parts) = parts else { continue };
            let preimage = decision.flatten();
            log::info!(
                "hold invoice {}: {} part(s) {}",
                hex::encode(hash),
                parts.len(),
                if preimage.is_some() {
                    "settled"
                } else {
                    "failed"
                }
            );
            if let (Some(preimage), Some(label)) = (&preimage, label) {
                let msat = parts
                    .iter()
                    .map(|p| p.htlc.amount_msat)
                    .fold(0, u64::saturating_add);
                let _ = self.paid.send(Paid {
                    label,
                    msat,
                    preimage: preimage.clone(),
                });
            }
            self.resolve(parts, preimage.as_deref());
        }
    }
}
