//! The `htlc_accepted` hook: payments to invoiced's invoices, held and settled.
//!
//! When a plugin resolves an HTLC, lightningd makes none of its own final-hop checks. invoiced
//! makes all of them, as Core Lightning's `invoice_check_payment` and `handle_localpay` do — the
//! payment secret (a BOLT12 payment's `path_id`), the amount (at least the invoice's, at most
//! twice it; any for `any`), the HTLC's remaining CLTV, expiry, and that the invoice is unpaid —
//! from what this module sends of each HTLC (`checkpart`); the module carries the verdict out.
//! Parts of a multi-part payment are held until they reach `total_msat`; then the payment is
//! settled once in invoiced (`settleinvoice` with its parts: the paid event, with the HTLCs,
//! durable first) and every part resolved with the preimage. A set that does not complete in
//! time fails with `mpp_timeout`; every other failure is `incorrect_or_unknown_payment_details`
//! with the part's amount and the block height.
//!
//! lightningd replays undecided HTLCs when it starts, so every step is idempotent: an HTLC that
//! paid an invoice is resolved again (invoiced recorded it with the payment; for payments
//! settled by earlier versions, the node's datastore still says), any other HTLC for a paid
//! invoice fails, and a settle retried after a lost answer is answered as it was. While invoiced
//! cannot be reached, a payable HTLC is held and the call retried, until the HTLC comes within
//! `cltv_safety` blocks of its expiry.
//!
//! A hold invoice's complete set is reported to invoiced (`holdaccept`, which records the parts)
//! and kept unanswered: one watcher task follows invoiced's `wait invoices updated` index and,
//! when a held invoice is settled or canceled (by its owner, or by invoiced's safety cancel
//! before the parts' CLTV expiry), resolves every part with the preimage or fails it. After a
//! restart the replayed parts are reported again; invoiced recognises them (the same HTLC ids)
//! and they are held, or resolved at once if the invoice was settled meanwhile.
//!
//! The rooms: `payload` reads the hook's HTLC and words BOLT 4's failures; `arrival` keeps
//! each payment's parts in the order lightningd sent them; `holds` holds hold invoices' parts
//! and resolves them when invoiced decides; this module gathers the sets and settles them.

mod arrival;
mod holds;
mod payload;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use serde_json::{json, Value};
use tokio::sync::{oneshot, Notify};

use crate::rpc_client::{CallError, RpcPool};
pub use arrival::{Arrival, ArrivalOrder, Place};
pub use payload::{incorrect_or_unknown, Htlc, MPP_TIMEOUT};

/// The datastore key under which earlier versions kept the parts of each settled payment
/// (read, never written: invoiced records them with the payment now).
const DATASTORE_ROOT: &str = "invoiced-cln";

/// A payment the plugin settled, for the `invoiced_invoice_payment` notification.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Paid {
    /// The invoice's label.
    pub label: String,
    /// What its parts carried, msat.
    pub msat: u64,
    /// Its preimage, hex.
    pub preimage: String,
}

struct HeldPart {
    htlc: Htlc,
    reply: oneshot::Sender<Value>,
}

struct PartSet {
    total_msat: u64,
    generation: u64,
    parts: Vec<HeldPart>,
}

enum Added {
    /// Wait for the answer; a new set needs its timeout started.
    Held { new_set: Option<u64> },
    /// This part completed the set: settle it.
    Complete(Vec<HeldPart>),
    /// Its `total_msat` differs from the set's.
    Mismatch,
}

/// The plugin's payment state: the sets being held, and what it knows of the chain.
pub struct Payments {
    invoiced: Arc<RpcPool>,
    node: Arc<RpcPool>,
    sets: Mutex<HashMap<[u8; 32], PartSet>>,
    /// The parts of accepted hold invoices, unanswered until settled or canceled.
    held: Mutex<HashMap<[u8; 32], Vec<HeldPart>>>,
    /// Wakes the hold watcher when parts are added.
    holding: Notify,
    generation: AtomicU64,
    arrivals: Arc<ArrivalOrder>,
    height: Arc<AtomicU32>,
    mpp_timeout: Duration,
    cltv_safety: u32,
    paid: tokio::sync::mpsc::UnboundedSender<Paid>,
}

impl Payments {
    /// Payments to invoiced's invoices, with the node's RPC for its datastore; every payment
    /// settled is reported on `paid`.
    pub fn new(
        invoiced: Arc<RpcPool>,
        node: Arc<RpcPool>,
        mpp_timeout: Duration,
        cltv_safety: u32,
        paid: tokio::sync::mpsc::UnboundedSender<Paid>,
    ) -> Self {
        Payments {
            invoiced,
            node,
            sets: Mutex::new(HashMap::new()),
            held: Mutex::new(HashMap::new()),
            holding: Notify::new(),
            generation: AtomicU64::new(0),
            arrivals: Arc::default(),
            height: Arc::new(AtomicU32::new(0)),
            mpp_timeout,
            cltv_safety,
            paid,
        }
    }

    /// Announces a payment invoiced settled outside the hook (a self-payment), in the order
    /// settled with the others.
    pub fn announce(&self, paid: Paid) {
        let _ = self.paid.send(paid);
    }

    /// Records the node's block height (from `getinfo`, `block_added` or an HTLC): its latest
    /// report is the truth, lower too after a reorg. A height no node can have is ignored.
    pub fn saw_height(&self, height: u32) {
        if height != 0 && height <= invoiced_events::MAX_BLOCK_HEIGHT {
            self.height.store(height, Ordering::Relaxed);
        }
    }

    fn height(&self) -> u32 {
        self.height.load(Ordering::Relaxed)
    }

    /// The block height as it is learnt, for the channel feed to pass on.
    pub fn height_source(&self) -> Arc<AtomicU32> {
        Arc::clone(&self.height)
    }

    /// The hook's answer for one `htlc_accepted` payload.
    /// Reads an HTLC as the hook delivers it and gives it its place among its payment's parts.
    /// Called when lightningd's call is read, before anything is awaited, so that the places
    /// follow the order in which the HTLCs arrived.
    pub fn arrive(&self, payload: &Value) -> Arrival {
        match Htlc::from_payload(payload) {
            Ok(htlc) if htlc.final_hop => {
                let place = self.arrivals.arrive(htlc.payment_hash);
                Arrival::Part(Box::new(htlc), place)
            }
            Ok(_) => Arrival::Continue,
            Err(e) => {
                log::warn!("{e}; leaving it to lightningd");
                Arrival::Continue
            }
        }
    }

    /// Decides an HTLC: continue (not ours), fail, or hold it until its set is complete and
    /// settle it. The part joins its set only after every part of the same payment that arrived
    /// before it has joined or been refused.
    pub async fn htlc_accepted(self: &Arc<Self>, arrival: Arrival) -> Value {
        let Arrival::Part(htlc, mut place) = arrival else {
            return json!({ "result": "continue" });
        };
        place.wait().await;
        self.saw_height(htlc.height());
        let hash = hex::encode(htlc.payment_hash);
        let params = htlc.check_params();
        let verdict = match self
            .retrying(htlc.cltv_expiry, || {
                self.invoiced.call("checkpart", &params)
            })
            .await
        {
            Ok(v) => v,
            Err(e) => {
                log::warn!(
                    "HTLC {} for {hash}: invoiced gave no verdict in time ({e}); failing it",
                    htlc.key
                );
                return htlc.fail(self.height());
            }
        };
        let preimage = verdict["payment_preimage"].as_str();
        let hold = match (verdict["verdict"].as_str(), preimage) {
            (Some("unknown"), _) => return json!({ "result": "continue" }),
            (Some("join"), _) => verdict["hold"] == json!(true),
            (Some("resolve"), Some(preimage)) => {
                log::info!(
                    "HTLC {} for {hash} paid it before this start: resolving it again",
                    htlc.key
                );
                return json!({ "result": "resolve", "payment_key": preimage });
            }
            (Some("paid_unrecorded"), Some(preimage)) => {
                return self.replayed(&htlc, preimage).await
            }
            _ => {
                log::info!(
                    "failing HTLC {} for {hash}: {}",
                    htlc.key,
                    verdict["reason"].as_str().unwrap_or("refused")
                );
                return htlc.fail(self.height());
            }
        };
        let (tx, rx) = oneshot::channel();
        match self.add((*htlc).clone(), tx) {
            Added::Mismatch => {
                log::info!(
                    "failing HTLC {} for {hash}: total_msat differs from the other parts'",
                    htlc.key
                );
                return htlc.fail(self.height());
            }
            Added::Held {
                new_set: Some(generation),
            } => {
                let (me, hash) = (Arc::clone(self), htlc.payment_hash);
                tokio::spawn(async move { me.time_out(hash, generation).await });
            }
            Added::Held { new_set: None } => {}
            Added::Complete(parts) if hold => self.hold(parts).await,
            Added::Complete(parts) => self.settle(parts).await,
        }
        // The next part looks at the invoice once this one is held, or settled with its set.
        drop(place);
        rx.await.unwrap_or_else(|_| htlc.fail(self.height()))
    }

    fn add(&self, htlc: Htlc, reply: oneshot::Sender<Value>) -> Added {
        let mut sets = self.sets.lock().unwrap_or_else(PoisonError::into_inner);
        let mut new_set = None;
        let set = sets.entry(htlc.payment_hash).or_insert_with(|| {
            let generation = self.generation.fetch_add(1, Ordering::Relaxed);
            new_set = Some(generation);
            PartSet {
                total_msat: htlc.total_msat,
                generation,
                parts: Vec::new(),
            }
        });
        if set.total_msat != htlc.total_msat {
            return Added::Mismatch;
        }
        // A replay of a part already held replaces it.
        set.parts.retain(|p| p.htlc.key != htlc.key);
        let hash = htlc.payment_hash;
        set.parts.push(HeldPart { htlc, reply });
        let sum: u64 = set
            .parts
            .iter()
            .map(|p| p.htlc.amount_msat)
            .fold(0, u64::saturating_add);
        if sum >= set.total_msat {
            let parts = sets.remove(&hash).map(|s| s.parts).unwrap_or_default();
            return Added::Complete(parts);
        }
        Added::Held { new_set }
    }

    async fn time_out(&self, hash: [u8; 32], generation: u64) {
        tokio::time::sleep(self.mpp_timeout).await;
        let expired = {
            let mut sets = self.sets.lock().unwrap_or_else(PoisonError::into_inner);
            match sets.get(&hash) {
                Some(set) if set.generation == generation => sets.remove(&hash),
                _ => None,
            }
        };
        if let Some(set) = expired {
            log::info!(
                "payment {}: parts did not reach total_msat within {:?}; mpp_timeout",
                hex::encode(hash),
                self.mpp_timeout
            );
            for p in set.parts {
                let _ = p
                    .reply
                    .send(json!({ "result": "fail", "failure_message": MPP_TIMEOUT }));
            }
        }
    }

    /// Settles a complete set: the payment with its parts into invoiced (which checks it and
    /// records it, the HTLCs with it), then every part resolved with the preimage. Should the
    /// answer be lost, the retry is answered as the settle was.
    async fn settle(&self, parts: Vec<HeldPart>) {
        let hash = hex::encode(
            parts
                .first()
                .map(|p| p.htlc.payment_hash)
                .unwrap_or_default(),
        );
        let sum: u64 = parts
            .iter()
            .map(|p| p.htlc.amount_msat)
            .fold(0, u64::saturating_add);
        let earliest = parts.iter().map(|p| p.htlc.cltv_expiry).min().unwrap_or(0);
        // Each part's secret was checked against the invoice's by `checkpart`.
        let secret = hex::encode(
            parts
                .first()
                .and_then(|p| p.htlc.payment_secret)
                .unwrap_or_default(),
        );
        let listed: Vec<Value> = parts.iter().map(|p| p.htlc.part()).collect();
        let settle = json!({ "payment_hash": hash, "amount_msat": sum, "payment_secret": secret, "parts": listed });
        let started = std::time::Instant::now();
        let settled = self
            .retrying(earliest, || self.invoiced.call("settleinvoice", &settle))
            .await;
        let preimage = match &settled {
            Ok(paid) => paid["payment_preimage"].as_str(),
            Err(e) => {
                log::info!("failing payment {hash}: invoiced refused to settle it: {e}");
                None
            }
        };
        let Some(preimage) = preimage else {
            let height = self.height();
            for p in parts {
                let _ = p.reply.send(p.htlc.fail(height));
            }
            return;
        };
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        let read_at = parts
            .iter()
            .map(|p| p.htlc.read_at)
            .min()
            .unwrap_or(started);
        log::info!(
            "payment {hash} settled: {sum} msat in {} part(s) (in the plugin {:.2} ms, of which invoiced's settle {:.2} ms)",
            parts.len(),
            ms(read_at.elapsed()),
            ms(started.elapsed())
        );
        let label = settled
            .as_ref()
            .ok()
            .and_then(|v| v["label"].as_str())
            .unwrap_or_default()
            .to_owned();
        let _ = self.paid.send(Paid {
            label,
            msat: sum,
            preimage: preimage.to_owned(),
        });
        for p in parts {
            let _ = p
                .reply
                .send(json!({ "result": "resolve", "payment_key": preimage }));
        }
    }

    /// An HTLC for an invoice paid before invoiced recorded the HTLCs of payments: the plugin
    /// then kept them in the node's datastore, which says whether this is one (resolved again)
    /// or another (a payment to a paid invoice, refused).
    async fn replayed(&self, htlc: &Htlc, preimage: &str) -> Value {
        let hash = hex::encode(htlc.payment_hash);
        let key = json!({ "key": [DATASTORE_ROOT, "settled", hash] });
        let stored = self
            .retrying(htlc.cltv_expiry, || self.node.call("listdatastore", &key))
            .await;
        let parts: Vec<String> = stored
            .ok()
            .and_then(|v| {
                v["datastore"]
                    .as_array()?
                    .first()?
                    .get("string")?
                    .as_str()
                    .map(str::to_owned)
            })
            .and_then(|s| serde_json::from_str(&s).ok())
            .unwrap_or_default();
        if parts.contains(&htlc.key) {
            log::info!(
                "HTLC {} for {hash} was settled before this start: resolving it again",
                htlc.key
            );
            json!({ "result": "resolve", "payment_key": preimage })
        } else {
            log::info!("failing HTLC {} for {hash}: invoice already paid", htlc.key);
            htlc.fail(self.height())
        }
    }

    /// Runs `call` until it reaches its server, or until an HTLC expiring at `cltv_expiry` comes
    /// within `cltv_safety` blocks of the node's height.
    async fn retrying<F, Fut>(&self, cltv_expiry: u32, call: F) -> Result<Value, CallError>
    where
        F: Fn() -> Fut,
        Fut: std::future::Future<Output = Result<Value, CallError>>,
    {
        let mut warned = false;
        loop {
            match call().await {
                Err(CallError::Unreachable(why))
                    if self.height().saturating_add(self.cltv_safety) < cltv_expiry =>
                {
                    if !warned {
                        log::warn!("holding an HTLC while a server is unreachable ({why}); retrying every second");
                        warned = true;
                    }
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
                other => return other,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::payload::tests::payload;
    use super::*;

    fn payments() -> Payments {
        let (paid, _) = tokio::sync::mpsc::unbounded_channel();
        let nowhere = Arc::new(RpcPool::new("/nonexistent"));
        Payments::new(
            Arc::clone(&nowhere),
            nowhere,
            Duration::from_secs(60),
            6,
            paid,
        )
    }

    /// The node's latest report is its height, lower too (a reorg); a height no node can have
    /// (0, or 500,000,000 and above) is not taken.
    #[test]
    fn the_height_is_the_nodes_latest_real_report() {
        let p = payments();
        p.saw_height(1_000);
        p.saw_height(990);
        assert_eq!(p.height(), 990);
        p.saw_height(0);
        p.saw_height(500_000_000);
        assert_eq!(p.height(), 990);
        p.saw_height(invoiced_events::MAX_BLOCK_HEIGHT);
        assert_eq!(p.height(), invoiced_events::MAX_BLOCK_HEIGHT);
    }

    /// One HTLC delivered twice (lightningd's replay) is one part of its set: 5,000 msat twice
    /// do not complete a 10,000 msat payment; a second HTLC does.
    #[test]
    fn an_htlc_delivered_twice_counts_once() {
        let payments = payments();
        let part = |id: u64| {
            let mut p = payload(5_000, Some(10_000), &"22".repeat(32), 40);
            p["htlc"]["id"] = json!(id);
            Htlc::from_payload(&p).unwrap()
        };
        let (tx, _rx1) = oneshot::channel();
        assert!(matches!(
            payments.add(part(1), tx),
            Added::Held { new_set: Some(_) }
        ));
        let (tx, _rx2) = oneshot::channel();
        assert!(
            matches!(payments.add(part(1), tx), Added::Held { new_set: None }),
            "the same HTLC again completes nothing"
        );
        let (tx, _rx3) = oneshot::channel();
        match payments.add(part(2), tx) {
            Added::Complete(parts) => {
                let keys: Vec<&str> = parts.iter().map(|p| p.htlc.key.as_str()).collect();
                assert_eq!(keys, ["103x1x0/1", "103x1x0/2"]);
            }
            _ => panic!("two HTLCs of 5,000 msat complete 10,000"),
        }
    }
}
