//! What the actor tests share: a new invoice to propose, with its fields derived from one byte.
#![allow(clippy::unwrap_used, dead_code)]

use invoiced_events::{
    InvoiceBody, Label, Msat, NewInvoice, PaymentHash, PaymentSecret, PreimageSeal, Proposal,
};

/// Invoice `label` for 1000 msat: payment hash, secret and preimage nonce all `[n; 32]`,
/// created at `created_at`, expiring at `expires_at`.
pub fn new_invoice(label: &str, n: u8, created_at: u64, expires_at: u64) -> NewInvoice {
    NewInvoice {
        body: InvoiceBody {
            label: Label::new(label).unwrap(),
            bolt11: format!("lnbcrt{label}"),
            payment_hash: PaymentHash([n; 32]),
            payment_secret: PaymentSecret([n; 32]),
            preimage: PreimageSeal::Derived { nonce: [n; 32] },
            amount_msat: Some(Msat(1000)),
            description: "d".into(),
            deschashonly: false,
            created_at,
            expiry: expires_at - created_at,
            expires_at,
            cltv: 18,
            fallbacks: vec![],
            route_hints: vec![],
            warnings: vec![],
        },
        kind: invoiced_events::InvoiceKind::Bolt11,
    }
}

/// The same, as a proposal.
pub fn created(label: &str, n: u8, created_at: u64, expires_at: u64) -> Proposal {
    Proposal::Invoice(new_invoice(label, n, created_at, expires_at))
}

/// A log in memory, as the actor tests run it: no disk, no temporary folder.
pub fn memory_log(clock: u64) -> invoiced_actors::store::EventLog {
    memory_log_on(&invoiced_actors::store::MemStorage::new(), clock)
}

/// A log on `storage` (clone it to keep the data across a restart), stamping records at `clock`.
pub fn memory_log_on(
    storage: &invoiced_actors::store::MemStorage,
    clock: u64,
) -> invoiced_actors::store::EventLog {
    use std::sync::Arc;
    let options = invoiced_actors::store::LogOptions::default();
    let clock = Arc::new(invoiced_actors::clock::FixedClock(clock));
    invoiced_actors::store::EventLog::open_on(
        Arc::new(storage.clone()),
        invoiced_events::Network::Regtest,
        clock,
        options,
    )
    .unwrap()
}
