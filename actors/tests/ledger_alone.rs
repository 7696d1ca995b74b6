//! The InvoiceLedger alone, with a mock KeySigner: `settleinvoice`'s checks in Core Lightning's
//! order, each refusal naming what failed and changing nothing, and a settle that reveals the
//! preimage the signer opened, durably paid with its counters stamped.
#![allow(clippy::unwrap_used)]

use std::sync::{Arc, Mutex};

use actix::prelude::*;
use invoiced_actors::clock::FixedClock;
use invoiced_actors::invoice_ledger::{InvoiceLedger, SettleError, SettleInvoice, Settled};
use invoiced_actors::key_signer::RevealPreimages;
use invoiced_events::{
    InvoiceStatus, Label, Msat, PayIndex, PaymentHash, PaymentPreimage, PaymentSecret,
    PreimageSeal, Proposal,
};

mod common;

/// Payment secret `[n + 100; 32]`, preimage nonce `[n + 50; 32]` (so the mock signer's preimage
/// differs from both), created ten seconds ago.
fn created(label: &str, n: u8, amount: Option<u64>, expires_at: u64) -> Proposal {
    let mut invoice = common::new_invoice(label, n, NOW_S - 10, expires_at);
    invoice.body.payment_secret = invoiced_events::PaymentSecret([n + 100; 32]);
    invoice.body.preimage = PreimageSeal::Derived {
        nonce: [n + 50; 32],
    };
    invoice.body.amount_msat = amount.map(Msat::from_msat);
    Proposal::Invoice(invoice)
}

const NOW_S: u64 = 1_800_000_000;

/// Opens every seal to a preimage of its nonce's first byte, and counts what it was asked.
struct Signer(Arc<Mutex<usize>>);
impl Actor for Signer {
    type Context = Context<Self>;
}
impl Handler<RevealPreimages> for Signer {
    type Result = MessageResult<RevealPreimages>;
    fn handle(&mut self, msg: RevealPreimages, _: &mut Context<Self>) -> Self::Result {
        *self.0.lock().unwrap() += msg.seals.len();
        MessageResult(
            msg.seals
                .iter()
                .map(|(seal, _)| match seal {
                    PreimageSeal::Derived { nonce } => Some(PaymentPreimage([nonce[0]; 32])),
                    PreimageSeal::Sealed { .. } | PreimageSeal::Withheld => None,
                })
                .collect(),
        )
    }
}

fn settle(n: u8, amount_msat: u64, secret: u8) -> SettleInvoice {
    SettleInvoice {
        payment_hash: PaymentHash([n; 32]),
        amount_msat: Msat(amount_msat),
        payment_secret: PaymentSecret([secret; 32]),
        parts: vec![],
    }
}

#[test]
fn settle_checks_then_pays() {
    let clock = Arc::new(FixedClock(NOW_S * 1000));
    let log = common::memory_log(NOW_S * 1000);
    let asked = Arc::new(Mutex::new(0));
    let sys = System::new();
    let results: Vec<Result<Settled, SettleError>> = sys.block_on(async {
        log.handle()
            .append_all(vec![
                created("fixed", 1, Some(1000), NOW_S + 3600),
                created("any", 2, None, NOW_S + 3600),
                created("lapsed", 3, Some(1000), NOW_S),
            ])
            .await
            .unwrap();
        let signer = Signer(asked.clone()).start();
        let ledger =
            InvoiceLedger::new(log.reader(), log.handle(), signer.recipient(), clock).start();
        let mut out = vec![];
        for msg in [
            settle(9, 1000, 109), // unknown hash
            settle(1, 1000, 0),   // wrong secret
            settle(1, 999, 101),  // too little
            settle(1, 2001, 101), // more than twice
            settle(3, 1000, 103), // expired by time (its expiry event not written yet)
            settle(1, 2000, 101), // twice is fine
            settle(1, 1000, 101), // paid already
            settle(2, 1, 102),    // any amount
        ] {
            out.push(ledger.send(msg).await.unwrap());
        }
        System::current().stop();
        out
    });
    sys.run().unwrap();
    assert!(matches!(results[0], Err(SettleError::UnknownInvoice)));
    assert!(matches!(results[1], Err(SettleError::WrongSecret)));
    assert!(matches!(
        results[2],
        Err(SettleError::Underpaid {
            got: Msat(999),
            want: Msat(1000)
        })
    ));
    assert!(matches!(
        results[3],
        Err(SettleError::Overpaid {
            got: Msat(2001),
            want: Msat(1000)
        })
    ));
    assert!(matches!(
        results[4],
        Err(SettleError::NotUnpaid(InvoiceStatus::Expired))
    ));
    let paid = results[5].as_ref().unwrap();
    assert_eq!(
        paid.preimage,
        PaymentPreimage([51; 32]),
        "the preimage the signer opened"
    );
    let payment = paid.invoice.payment.clone().unwrap();
    assert_eq!(
        (
            payment.pay_index,
            payment.amount_received_msat,
            payment.paid_at
        ),
        (PayIndex(1), Msat(2000), NOW_S)
    );
    assert!(matches!(
        results[6],
        Err(SettleError::NotUnpaid(InvoiceStatus::Paid))
    ));
    assert_eq!(
        results[7]
            .as_ref()
            .unwrap()
            .invoice
            .payment
            .as_ref()
            .unwrap()
            .pay_index,
        PayIndex(2)
    );
    assert_eq!(
        *asked.lock().unwrap(),
        2,
        "the signer is asked only for payments that pass every check"
    );
    let state = log.state();
    let status = |l: &str| {
        state
            .read()
            .unwrap()
            .invoices
            .by_label(&Label::new(l).unwrap())
            .unwrap()
            .status
    };
    assert_eq!(
        (status("fixed"), status("any")),
        (InvoiceStatus::Paid, InvoiceStatus::Paid)
    );
    // The one that lapsed was expired by the ledger as it started (its time had come).
    assert_eq!(status("lapsed"), InvoiceStatus::Expired);
    assert_eq!(
        state.read().unwrap().head().0,
        6,
        "three invoices, one expiry, two payments: nothing else"
    );
    drop(state);
    log.close();
}
