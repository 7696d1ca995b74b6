//! The LabelRegistry is the one authority on label and payment-hash uniqueness: it answers 900
//! and 901. The writer's commit-time admission only asserts the rule: if a claim ever let a
//! duplicate through (simulated here by a registry that looks at a stale projection), the log
//! refuses it and the creator reports a broken invariant, never 900 or 901, and nothing is
//! appended.
#![allow(clippy::unwrap_used)]

use std::sync::{Arc, RwLock};

use actix::Actor as _;
use invoiced_actors::channel_monitor::ChannelView;
use invoiced_actors::clock::SystemClock;
use invoiced_actors::invoice_creator::{
    CreateError, CreateInvoice, CreatorPeers, InvoiceCreator, InvoiceRequest,
};
use invoiced_actors::key_signer::PreimageSource;
use invoiced_actors::key_signer::{KeySigner, OsEntropy};
use invoiced_actors::label_registry::LabelRegistry;
use invoiced_actors::policy::bolt11::{Cltv, Expiry, InvoiceAmount};
use invoiced_actors::store::{EventLog, LogOptions, MemStorage};
use invoiced_actors::SharedState;
use invoiced_events::{
    AmountOrAny, ChannelBook, Description, ExposePrivateChannels, Label, Msat, Network,
    PaymentPreimage, Projections, Rejection,
};

fn request(label: &str, preimage: Option<[u8; 32]>) -> InvoiceRequest {
    InvoiceRequest {
        amount: InvoiceAmount::new(AmountOrAny::Fixed(Msat(1000))).unwrap(),
        label: Some(Label::new(label).unwrap()),
        description: Description::new("d".into(), false).unwrap(),
        expiry: Expiry::new(3600).unwrap(),
        fallbacks: vec![],
        preimage: preimage.map_or(PreimageSource::Generate, |p| {
            PreimageSource::Supplied(PaymentPreimage(p))
        }),
        expose: ExposePrivateChannels::default(),
        cltv: Cltv::new(18).unwrap(),
        idempotent: false,
        hold: false,
    }
}

/// A creator over a fresh log whose registry reads `registry_view` (the log's own state if None).
fn outcomes(registry_view: Option<SharedState>) -> (Vec<Result<(), CreateError>>, u64) {
    let log = EventLog::open_on(
        Arc::new(MemStorage::new()),
        Network::Regtest,
        Arc::new(SystemClock),
        LogOptions::default(),
    )
    .unwrap();
    let sys = actix::System::new();
    let results = sys.block_on(async {
        let signer = KeySigner::new(&[7; 32], Box::new(OsEntropy))
            .unwrap()
            .start();
        let peers = CreatorPeers {
            hints: ChannelView::new(ChannelBook::default(), Box::new(OsEntropy)),
            signer: signer.clone().recipient(),
            bolt12: signer.recipient(),
            claims: LabelRegistry::new(registry_view.unwrap_or_else(|| log.state())),
        };
        let creator = InvoiceCreator::new(
            Network::Regtest,
            log.reader(),
            peers,
            log.handle(),
            Arc::new(SystemClock),
        )
        .start();
        let mut out = vec![];
        for req in [
            request("x", None),
            request("x", None),
            request("y", Some([5; 32])),
            request("z", Some([5; 32])),
        ] {
            out.push(creator.send(CreateInvoice(req)).await.unwrap().map(|_| ()));
        }
        actix::System::current().stop();
        out
    });
    // The actors (and the log handles they hold) go before the log closes, as in the daemon.
    sys.run().unwrap();
    let head = log.state().read().unwrap().head().0;
    log.close();
    (results, head)
}

#[test]
fn the_registry_answers_900_and_901() {
    let (r, head) = outcomes(None);
    assert!(r[0].is_ok() && r[2].is_ok());
    assert!(
        matches!(&r[1], Err(CreateError::DuplicateLabel(l)) if l.as_str() == "x"),
        "{:?}",
        r[1]
    );
    assert!(
        matches!(&r[3], Err(CreateError::PreimageUsed)),
        "{:?}",
        r[3]
    );
    assert_eq!(head, 2);
}

#[test]
fn the_log_only_asserts_and_a_breach_is_an_internal_error() {
    let stale: SharedState = Arc::new(RwLock::new(Projections::new()));
    let (r, head) = outcomes(Some(stale));
    assert!(r[0].is_ok() && r[2].is_ok());
    assert!(
        matches!(
            &r[1],
            Err(CreateError::Invariant(Rejection::DuplicateLabel(_)))
        ),
        "{:?}",
        r[1]
    );
    assert!(
        matches!(&r[3], Err(CreateError::Invariant(Rejection::PreimageUsed))),
        "{:?}",
        r[3]
    );
    assert_eq!(head, 2, "nothing of the refused requests was appended");
}
