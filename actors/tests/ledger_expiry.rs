//! The InvoiceLedger's expiry timer, with an injected clock that follows tokio's virtual time:
//! invoices expire on the second they are due, in order, without the test sleeping in real time.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::Actor as _;
use invoiced_actors::clock::Clock;
use invoiced_actors::invoice_ledger::InvoiceLedger;
use invoiced_actors::key_signer::{KeySigner, OsEntropy};
use invoiced_events::{InvoiceStatus, Label, Proposal};

mod common;

fn created(label: &str, n: u8, expires_in: u64) -> Proposal {
    common::created(label, n, START_S, START_S + expires_in)
}

/// Now = a fixed start plus tokio's (paused, virtual) time since the clock was made.
struct VirtualClock {
    start_ms: u64,
    origin: tokio::time::Instant,
}

impl Clock for VirtualClock {
    fn now_ms(&self) -> u64 {
        self.start_ms + self.origin.elapsed().as_millis() as u64
    }
}

const START_S: u64 = 1_800_000_000;

#[test]
fn invoices_expire_on_time_in_virtual_time() {
    // The log stamps records with a clock of its own (its writer is an OS thread).
    let log = common::memory_log(START_S * 1000);
    let state = log.state();
    let status = |label: &str| {
        state
            .read()
            .unwrap()
            .invoices
            .by_label(&Label::new(label).unwrap())
            .map(|e| e.status)
    };
    let wall = Instant::now();
    let sys = actix::System::new();
    sys.block_on(async {
        tokio::time::pause();
        let clock = Arc::new(VirtualClock {
            start_ms: START_S * 1000,
            origin: tokio::time::Instant::now(),
        });
        let signer = KeySigner::new(&[7; 32], Box::new(OsEntropy))
            .unwrap()
            .start();
        let _ledger =
            InvoiceLedger::new(log.reader(), log.handle(), signer.recipient(), clock).start();
        tokio::task::yield_now().await;
        log.handle()
            .append_all(vec![
                created("in5", 1, 5),
                created("in10", 2, 10),
                created("in3600", 3, 3600),
            ])
            .await
            .unwrap();
        // The writer is a real thread: let its batch reach the ledger before time moves on.
        for _ in 0..100 {
            tokio::task::yield_now().await;
            std::thread::sleep(Duration::from_millis(1));
        }
        let after = |secs: u64| {
            tokio::time::sleep_until(tokio::time::Instant::now() + Duration::from_secs(secs))
        };
        after(4).await;
        settle().await;
        assert_eq!(
            status("in5"),
            Some(InvoiceStatus::Unpaid),
            "not before its second"
        );
        after(2).await;
        eventually(|| status("in5") == Some(InvoiceStatus::Expired)).await;
        assert_eq!(status("in10"), Some(InvoiceStatus::Unpaid));
        after(5).await;
        eventually(|| status("in10") == Some(InvoiceStatus::Expired)).await;
        assert_eq!(status("in3600"), Some(InvoiceStatus::Unpaid));
        after(3600).await;
        eventually(|| status("in3600") == Some(InvoiceStatus::Expired)).await;
        actix::System::current().stop();
    });
    sys.run().unwrap();
    log.close();
    assert!(
        wall.elapsed() < Duration::from_secs(10),
        "the test slept in real time: {:?}",
        wall.elapsed()
    );
}

/// Lets the ledger's appends go through the writer thread and back (without letting virtual
/// time move): a moment of real time.
async fn settle() {
    for _ in 0..50 {
        tokio::task::yield_now().await;
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// Waits (in real time, up to 5 s, virtual time standing still) until `done`.
async fn eventually(done: impl Fn() -> bool) {
    let wall = Instant::now();
    while !done() {
        assert!(wall.elapsed() < Duration::from_secs(5), "never happened");
        tokio::task::yield_now().await;
        std::thread::sleep(Duration::from_millis(2));
    }
}
