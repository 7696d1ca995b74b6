//! The `htlc_accepted` hook: payments to invoiced's invoices, checked, held and settled.
//!
//! When a plugin resolves an HTLC, lightningd makes none of its own final-hop checks, so this
//! module makes all of them, as Core Lightning's `invoice_check_payment` and `htlc_set` do: the
//! payment secret, the amount (at least the invoice's, at most twice it; any for `any`), the
//! HTLC's remaining CLTV against the invoice's `min_final_cltv_expiry`, expiry, and that the
//! invoice is unpaid. Parts of a multi-part payment are held until they reach `total_msat`; then
//! the payment is settled once in invoiced (its paid event durable first) and every part resolved
//! with the preimage. A set that does not complete in time fails with `mpp_timeout`; every other
//! failure is `incorrect_or_unknown_payment_details` with the part's amount and the block height.
//!
//! lightningd replays undecided HTLCs when it starts, so every step is idempotent: before the
//! settle, the parts of the payment are written to the node's own datastore, and an HTLC for an
//! invoice already paid is resolved again only if it is one of those parts. While invoiced cannot
//! be reached, a payable HTLC is held and the call retried, until the HTLC comes within
//! `cltv_safety` blocks of its expiry.
//!
//! A hold invoice's complete set is reported to invoiced (`holdaccept`, which records the parts)
//! and kept unanswered: one watcher task follows invoiced's `wait invoices updated` index and,
//! when a held invoice is settled or canceled (by its owner, or by invoiced's safety cancel
//! before the parts' CLTV expiry), resolves every part with the preimage or fails it. After a
//! restart the replayed parts are reported again; invoiced recognises them (the same HTLC ids)
//! and they are held, or resolved at once if the invoice was settled meanwhile.

use std::collections::HashMap;
use std::str::FromStr;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use tokio::sync::Notify;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use lightning_invoice::SignedRawBolt11Invoice;
use serde_json::{json, Value};
use tokio::sync::oneshot;

use super::client::{CallError, RpcPool};

/// BOLT 4 `mpp_timeout` (23), no data.
pub const MPP_TIMEOUT: &str = "0017";

/// How long the hold watcher waits on invoiced before looking at the held invoices anyway.
const HOLD_RECHECK: Duration = Duration::from_secs(30);

/// The datastore key under which the parts of each settled payment are kept.
const DATASTORE_ROOT: &str = "invoiced-cln";

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
}

fn msat(v: &Value) -> Option<u64> {
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
        let u32_of = |name: &str| h[name].as_u64().and_then(|v| u32::try_from(v).ok()).ok_or_else(|| field(name));
        Ok(Htlc {
            key: format!(
                "{}/{}",
                h["short_channel_id"].as_str().ok_or_else(|| field("short_channel_id"))?,
                h["id"].as_u64().ok_or_else(|| field("id"))?
            ),
            payment_hash: hash32(&h["payment_hash"]).ok_or_else(|| field("payment_hash"))?,
            amount_msat,
            total_msat: msat(&onion["total_msat"]).unwrap_or(amount_msat),
            payment_secret: hash32(&onion["payment_secret"]),
            cltv_expiry: u32_of("cltv_expiry")?,
            cltv_expiry_relative: u32_of("cltv_expiry_relative")?,
            final_hop: onion.get("short_channel_id").is_none() && onion.get("next_node_id").is_none(),
        })
    }

    /// The block height when lightningd called the hook.
    pub fn height(&self) -> u32 {
        self.cltv_expiry.saturating_sub(self.cltv_expiry_relative)
    }

    fn fail(&self, height: u32) -> Value {
        json!({ "result": "fail", "failure_message": incorrect_or_unknown(self.amount_msat, height) })
    }
}

/// What the plugin needs of one of invoiced's invoices.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OurInvoice {
    /// `unpaid`, `paid` or `expired`.
    pub status: String,
    /// Its amount (`None` for `any`).
    pub amount_msat: Option<u64>,
    /// When it expires (UNIX seconds).
    pub expires_at: u64,
    /// The secret a payer must send.
    pub payment_secret: [u8; 32],
    /// Its `min_final_cltv_expiry`.
    pub min_final_cltv: u32,
    /// The preimage, once paid.
    pub preimage: Option<String>,
    /// For a hold invoice, its state (`OPEN`, `ACCEPTED`, `SETTLED`, `CANCELED`).
    pub hold: Option<String>,
}

impl OurInvoice {
    /// Reads one invoice of a `listinvoices` answer; the secret and CLTV come from its bolt11.
    ///
    /// # Errors
    /// A message if a field is missing or its bolt11 does not parse.
    pub fn from_listed(inv: &Value) -> Result<OurInvoice, String> {
        let bolt11 = inv["bolt11"].as_str().ok_or("listed invoice without bolt11")?;
        let raw = SignedRawBolt11Invoice::from_str(bolt11).map_err(|e| format!("listed bolt11 does not parse: {e}"))?;
        let raw = raw.raw_invoice();
        let payment_secret = raw.payment_secret().ok_or("listed bolt11 has no payment secret")?.0;
        // BOLT 11: without a `c` field, min_final_cltv_expiry_delta is 18.
        let min_final_cltv = raw.min_final_cltv_expiry_delta().map_or(18, |c| c.0);
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
    match htlc.payment_secret {
        None => return Err("no payment_secret".into()),
        Some(s) if !invoiced_actors::key_signer::secrets_equal(&s, &inv.payment_secret) => return Err("wrong payment_secret".into()),
        Some(_) => {}
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

/// An HTLC as the hook delivered it.
pub enum Arrival {
    /// Not for invoiced to decide: unreadable, or not for this node.
    Continue,
    /// A payment to this node, with its place in line.
    Part(Htlc, Place),
}

/// The order in which the HTLCs of each payment arrived. Each hook call asks invoiced about the
/// invoice before its part joins the set, and those answers come back in any order; without a
/// line, a later part could found the set and name its `total_msat`. Core Lightning's `htlc_set`
/// takes parts as they arrive, and so does this.
#[derive(Default)]
pub struct ArrivalOrder {
    /// The last place taken for each payment.
    last: Mutex<HashMap<[u8; 32], LastPlace>>,
    taken: AtomicU64,
}

impl ArrivalOrder {
    /// The next place in line for `hash`, behind every place taken for it and not yet left.
    pub fn arrive(self: &Arc<Self>, hash: [u8; 32]) -> Place {
        let number = self.taken.fetch_add(1, Ordering::Relaxed);
        let (leaving, left) = oneshot::channel();
        let ahead = self.last.lock().unwrap_or_else(PoisonError::into_inner).insert(hash, LastPlace { number, left });
        Place { order: Arc::clone(self), hash, number, ahead: ahead.map(|a| a.left), _leaving: leaving }
    }
}

/// The last place in a payment's line: its number, and what says it has been left.
struct LastPlace {
    number: u64,
    left: oneshot::Receiver<()>,
}

/// A place in a payment's line, left when dropped.
pub struct Place {
    order: Arc<ArrivalOrder>,
    hash: [u8; 32],
    number: u64,
    ahead: Option<oneshot::Receiver<()>>,
    /// Dropped with the place: the one behind may go.
    _leaving: oneshot::Sender<()>,
}

impl Place {
    /// Waits until the place ahead has been left. Cancel-safe: a wait cut short leaves the
    /// place still behind it.
    pub async fn wait(&mut self) {
        if let Some(ahead) = self.ahead.as_mut() {
            // Its sender is only ever dropped, never used: the error is the signal.
            let _ = ahead.await;
            self.ahead = None;
        }
    }
}

impl Drop for Place {
    fn drop(&mut self) {
        let mut last = self.order.last.lock().unwrap_or_else(PoisonError::into_inner);
        if last.get(&self.hash).is_some_and(|l| l.number == self.number) {
            last.remove(&self.hash);
        }
    }
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
    pub fn new(invoiced: Arc<RpcPool>, node: Arc<RpcPool>, mpp_timeout: Duration, cltv_safety: u32, paid: tokio::sync::mpsc::UnboundedSender<Paid>) -> Self {
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
                Arrival::Part(htlc, place)
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
        let lookup = json!({ "payment_hash": hash });
        let listed = self.retrying(htlc.cltv_expiry, || self.invoiced.call("listinvoices", &lookup)).await;
        let inv = match listed {
            Ok(v) => match v["invoices"].as_array().and_then(|a| a.first()) {
                None => return json!({ "result": "continue" }),
                Some(inv) => match OurInvoice::from_listed(inv) {
                    Ok(inv) => inv,
                    Err(e) => {
                        log::error!("HTLC {} for {hash}: {e}", htlc.key);
                        return htlc.fail(self.height());
                    }
                },
            },
            Err(e) => {
                log::warn!("HTLC {} for {hash}: invoiced gave no answer in time ({e}); failing it", htlc.key);
                return htlc.fail(self.height());
            }
        };
        if inv.status == "paid" {
            if inv.hold.is_some() {
                return self.hold_replayed(&htlc, &inv).await;
            }
            return self.replayed(&htlc, &inv).await;
        }
        let now = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        if let Err(why) = check_part(&inv, &htlc, now) {
            log::info!("failing HTLC {} for {hash}: {why}", htlc.key);
            return htlc.fail(self.height());
        }
        let (tx, rx) = oneshot::channel();
        match self.add(htlc.clone(), tx) {
            Added::Mismatch => {
                log::info!("failing HTLC {} for {hash}: total_msat differs from the other parts'", htlc.key);
                return htlc.fail(self.height());
            }
            Added::Held { new_set: Some(generation) } => {
                let me = Arc::clone(self);
                tokio::spawn(async move { me.time_out(htlc.payment_hash, generation).await });
            }
            Added::Held { new_set: None } => {}
            Added::Complete(parts) if inv.hold.is_some() => self.hold(&inv, parts).await,
            Added::Complete(parts) => self.settle(&inv, parts).await,
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
            PartSet { total_msat: htlc.total_msat, generation, parts: Vec::new() }
        });
        if set.total_msat != htlc.total_msat {
            return Added::Mismatch;
        }
        // A replay of a part already held replaces it.
        set.parts.retain(|p| p.htlc.key != htlc.key);
        let hash = htlc.payment_hash;
        set.parts.push(HeldPart { htlc, reply });
        let sum: u64 = set.parts.iter().map(|p| p.htlc.amount_msat).fold(0, u64::saturating_add);
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
            log::info!("payment {}: parts did not reach total_msat within {:?}; mpp_timeout", hex::encode(hash), self.mpp_timeout);
            for p in set.parts {
                let _ = p.reply.send(json!({ "result": "fail", "failure_message": MPP_TIMEOUT }));
            }
        }
    }

    /// Settles a complete set: parts into the node's datastore, the payment into invoiced, then
    /// every part resolved with the preimage.
    async fn settle(&self, inv: &OurInvoice, parts: Vec<HeldPart>) {
        let hash = hex::encode(parts.first().map(|p| p.htlc.payment_hash).unwrap_or_default());
        let sum: u64 = parts.iter().map(|p| p.htlc.amount_msat).fold(0, u64::saturating_add);
        let earliest = parts.iter().map(|p| p.htlc.cltv_expiry).min().unwrap_or(0);
        let fail_all = |parts: Vec<HeldPart>, height: u32| {
            for p in parts {
                let _ = p.reply.send(p.htlc.fail(height));
            }
        };
        if let Err(why) = check_amount(inv, sum) {
            log::info!("failing payment {hash}: {why}");
            return fail_all(parts, self.height());
        }
        let keys: Vec<&str> = parts.iter().map(|p| p.htlc.key.as_str()).collect();
        let record = json!({
            "key": [DATASTORE_ROOT, "settled", hash],
            "string": serde_json::to_string(&keys).unwrap_or_default(),
            "mode": "create-or-replace",
        });
        let started = std::time::Instant::now();
        if let Err(e) = self.retrying(earliest, || self.node.call("datastore", &record)).await {
            log::error!("failing payment {hash}: cannot record its parts in the node's datastore: {e}");
            return fail_all(parts, self.height());
        }
        let stored = started.elapsed();
        let secret = hex::encode(inv.payment_secret);
        let settle = json!({ "payment_hash": hash, "amount_msat": sum, "payment_secret": secret });
        match self.retrying(earliest, || self.invoiced.call("settleinvoice", &settle)).await {
            Ok(paid) => match paid["payment_preimage"].as_str() {
                Some(preimage) => {
                    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
                    log::info!(
                        "payment {hash} settled: {sum} msat in {} part(s) (node datastore {:.2} ms, invoiced {:.2} ms)",
                        parts.len(),
                        ms(stored),
                        ms(started.elapsed() - stored)
                    );
                    let label = paid["label"].as_str().unwrap_or_default().to_owned();
                    let _ = self.paid.send(Paid { label, msat: sum, preimage: preimage.to_owned() });
                    for p in parts {
                        let _ = p.reply.send(json!({ "result": "resolve", "payment_key": preimage }));
                    }
                }
                None => {
                    log::error!("settleinvoice for {hash} answered without a preimage: {paid}");
                    fail_all(parts, self.height());
                }
            },
            Err(e) => {
                log::info!("failing payment {hash}: invoiced refused to settle it: {e}");
                fail_all(parts, self.height());
            }
        }
    }

    /// A complete set for a hold invoice: reported to invoiced, then held (or resolved at once
    /// if invoiced says it was settled already, as after a restart).
    async fn hold(&self, inv: &OurInvoice, parts: Vec<HeldPart>) {
        let Some(first) = parts.first() else { return };
        let (hash, secret) = (first.htlc.payment_hash, hex::encode(inv.payment_secret));
        let earliest = parts.iter().map(|p| p.htlc.cltv_expiry).min().unwrap_or(0);
        let sum: u64 = parts.iter().map(|p| p.htlc.amount_msat).fold(0, u64::saturating_add);
        if let Err(why) = check_amount(inv, sum) {
            log::info!("failing payment {}: {why}", hex::encode(hash));
            return self.resolve(parts, None);
        }
        let listed: Vec<Value> = parts
            .iter()
            .map(|p| json!({ "htlc": p.htlc.key, "amount_msat": p.htlc.amount_msat, "cltv_expiry": p.htlc.cltv_expiry }))
            .collect();
        let accept = json!({ "payment_hash": hex::encode(hash), "payment_secret": secret, "parts": listed, "blockheight": self.height() });
        match self.retrying(earliest, || self.invoiced.call("holdaccept", &accept)).await {
            Ok(v) if v["state"] == "ACCEPTED" => {
                log::info!("hold invoice {}: {sum} msat in {} part(s) held", hex::encode(hash), parts.len());
                self.held.lock().unwrap_or_else(PoisonError::into_inner).entry(hash).or_default().extend(parts);
                self.holding.notify_one();
            }
            Ok(v) if v["state"] == "SETTLED" => self.resolve(parts, v["preimage"].as_str()),
            Ok(v) => {
                log::info!("failing payment {}: the hold invoice is {}", hex::encode(hash), v["state"]);
                self.resolve(parts, None);
            }
            Err(e) => {
                log::info!("failing payment {}: invoiced refused to hold it: {e}", hex::encode(hash));
                self.resolve(parts, None);
            }
        }
    }

    /// An HTLC for a settled hold invoice: resolved again if invoiced recorded it among the
    /// settled parts, failed otherwise.
    async fn hold_replayed(&self, htlc: &Htlc, inv: &OurInvoice) -> Value {
        let accept = json!({
            "payment_hash": hex::encode(htlc.payment_hash), "payment_secret": hex::encode(inv.payment_secret),
            "parts": [{ "htlc": htlc.key, "amount_msat": htlc.amount_msat, "cltv_expiry": htlc.cltv_expiry }],
            "blockheight": self.height(),
        });
        match self.retrying(htlc.cltv_expiry, || self.invoiced.call("holdaccept", &accept)).await {
            Ok(v) if v["state"] == "SETTLED" && v["preimage"].is_string() => json!({ "result": "resolve", "payment_key": v["preimage"] }),
            _ => htlc.fail(self.height()),
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
            if self.held.lock().unwrap_or_else(PoisonError::into_inner).is_empty() {
                self.holding.notified().await;
            }
            let wait = json!({ "subsystem": "invoices", "indexname": "updated", "nextvalue": next });
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
        let hashes: Vec<[u8; 32]> = self.held.lock().unwrap_or_else(PoisonError::into_inner).keys().copied().collect();
        for hash in hashes {
            let looked = self.invoiced.call("holdinvoicelookup", &json!({ "payment_hash": hex::encode(hash) })).await;
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
                let earliest = held.get(&hash).and_then(|ps| ps.iter().map(|p| p.htlc.cltv_expiry).min()).unwrap_or(0);
                match decision {
                    Some(_) => held.remove(&hash),
                    // invoiced is unreachable: hold on, unless the parts near their expiry.
                    None if self.height().saturating_add(self.cltv_safety) >= earliest => held.remove(&hash),
                    None => None,
                }
            };
            let Some(parts) = parts else { continue };
            let preimage = decision.flatten();
            log::info!("hold invoice {}: {} part(s) {}", hex::encode(hash), parts.len(), if preimage.is_some() { "settled" } else { "failed" });
            if let (Some(preimage), Some(label)) = (&preimage, label) {
                let msat = parts.iter().map(|p| p.htlc.amount_msat).fold(0, u64::saturating_add);
                let _ = self.paid.send(Paid { label, msat, preimage: preimage.clone() });
            }
            self.resolve(parts, preimage.as_deref());
        }
    }

    /// An HTLC for a paid invoice: one of the settled parts, replayed by lightningd, is resolved
    /// again; anything else is a payment to a paid invoice and fails.
    async fn replayed(&self, htlc: &Htlc, inv: &OurInvoice) -> Value {
        let hash = hex::encode(htlc.payment_hash);
        let key = json!({ "key": [DATASTORE_ROOT, "settled", hash] });
        let stored = self.retrying(htlc.cltv_expiry, || self.node.call("listdatastore", &key)).await;
        let parts: Vec<String> = stored
            .ok()
            .and_then(|v| v["datastore"].as_array()?.first()?.get("string")?.as_str().map(str::to_owned))
            .and_then(|s| serde_json::from_str(&s).ok())
            .unwrap_or_default();
        match (&inv.preimage, parts.contains(&htlc.key)) {
            (Some(preimage), true) => {
                log::info!("HTLC {} for {hash} was settled before this start: resolving it again", htlc.key);
                json!({ "result": "resolve", "payment_key": preimage })
            }
            _ => {
                log::info!("failing HTLC {} for {hash}: invoice already paid", htlc.key);
                htlc.fail(self.height())
            }
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
                Err(CallError::Unreachable(why)) if self.height().saturating_add(self.cltv_safety) < cltv_expiry => {
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
    use super::*;

    /// Places for one payment are served in the order taken, whichever asks first; another
    /// payment's line is apart; a line is forgotten once its last place is left.
    #[tokio::test]
    async fn parts_take_their_turn_in_arrival_order() {
        let order = Arc::new(ArrivalOrder::default());
        let (a, b) = ([1u8; 32], [2u8; 32]);
        let (mut first, mut second, mut third) = (order.arrive(a), order.arrive(a), order.arrive(a));
        let mut other = order.arrive(b);
        let turn = Duration::from_millis(50);
        assert!(tokio::time::timeout(turn, third.wait()).await.is_err(), "third went before the first two");
        assert!(tokio::time::timeout(turn, second.wait()).await.is_err(), "second went before the first");
        other.wait().await;
        first.wait().await;
        drop(first);
        second.wait().await;
        assert!(tokio::time::timeout(turn, third.wait()).await.is_err(), "third went before the second left");
        drop(second);
        drop(other);
        assert_eq!(order.last.lock().unwrap().len(), 1, "only the third's line is left");
        // A place whose wait was cut short waits again for what is still ahead; here, nothing.
        tokio::time::timeout(turn, third.wait()).await.expect("third's turn");
        drop(third);
        assert!(order.last.lock().unwrap().is_empty());
    }

    /// One HTLC delivered twice (lightningd's replay) is one part of its set: 5,000 msat twice
    /// do not complete a 10,000 msat payment; a second HTLC does.
    #[test]
    fn an_htlc_delivered_twice_counts_once() {
        let (paid, _) = tokio::sync::mpsc::unbounded_channel();
        let nowhere = Arc::new(RpcPool::new("/nonexistent"));
        let payments = Payments::new(Arc::clone(&nowhere), nowhere, Duration::from_secs(60), 6, paid);
        let part = |id: u64| {
            let mut p = payload(5_000, Some(10_000), &"22".repeat(32), 40);
            p["htlc"]["id"] = json!(id);
            Htlc::from_payload(&p).unwrap()
        };
        let (tx, _rx1) = oneshot::channel();
        assert!(matches!(payments.add(part(1), tx), Added::Held { new_set: Some(_) }));
        let (tx, _rx2) = oneshot::channel();
        assert!(matches!(payments.add(part(1), tx), Added::Held { new_set: None }), "the same HTLC again completes nothing");
        let (tx, _rx3) = oneshot::channel();
        match payments.add(part(2), tx) {
            Added::Complete(parts) => {
                let keys: Vec<&str> = parts.iter().map(|p| p.htlc.key.as_str()).collect();
                assert_eq!(keys, ["103x1x0/1", "103x1x0/2"]);
            }
            _ => panic!("two HTLCs of 5,000 msat complete 10,000"),
        }
    }

    fn payload(amount: u64, total: Option<u64>, secret: &str, rel: u32) -> Value {
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

    fn invoice(amount: Option<u64>) -> OurInvoice {
        OurInvoice { status: "unpaid".into(), amount_msat: amount, expires_at: 2000, payment_secret: [0x22; 32], min_final_cltv: 18, preimage: None, hold: None }
    }

    #[test]
    fn payload_fields() {
        let h = Htlc::from_payload(&payload(1000, Some(3000), &"22".repeat(32), 40)).unwrap();
        assert_eq!((h.key.as_str(), h.amount_msat, h.total_msat, h.height(), h.final_hop), ("103x1x0/7", 1000, 3000, 1000, true));
        let single = Htlc::from_payload(&payload(1000, None, &"22".repeat(32), 40)).unwrap();
        assert_eq!(single.total_msat, 1000);
        let mut fwd = payload(1000, None, "", 40);
        fwd["onion"]["short_channel_id"] = json!("1x2x3");
        assert!(!Htlc::from_payload(&fwd).unwrap().final_hop);
        let mut bad = payload(1000, None, "", 40);
        bad["htlc"]["amount_msat"] = json!("lots");
        assert_eq!(Htlc::from_payload(&bad).unwrap_err(), "htlc_accepted: bad or missing htlc.amount_msat");
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
                Just("htlc".to_owned()), Just("onion".to_owned()), Just("amount_msat".to_owned()),
                Just("payment_hash".to_owned()), Just("cltv_expiry".to_owned()), Just("cltv_expiry_relative".to_owned()),
                Just("short_channel_id".to_owned()), Just("id".to_owned()), Just("total_msat".to_owned()),
                Just("payment_secret".to_owned()), "[a-z_]{1,8}",
            ];
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
                proptest::collection::btree_map(keys, inner, 0..6).prop_map(|m| Value::Object(m.into_iter().collect())),
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
            let _ = OurInvoice::from_listed(&payload);
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
        assert_eq!(incorrect_or_unknown(1000, 101), "400f00000000000003e800000065");
        assert_eq!(MPP_TIMEOUT, "0017");
    }
}
