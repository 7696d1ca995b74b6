//! The InvoiceCreator alone: its signer is a mock that records what it was asked and how many
//! claims were held when it was asked; the channel view and the label registry are real ones set
//! up for each case. The tests see the order of the steps (Core Lightning's order of errors:
//! fallbacks, hints, then the claims after signing) and that a claim, once taken, is given back
//! on every path — also when the log fails to write.
#![allow(clippy::unwrap_used)]

use std::sync::{Arc, Mutex};

use actix::prelude::*;
use invoiced_actors::channel_monitor::ChannelView;
use invoiced_actors::clock::FixedClock;
use invoiced_actors::invoice_creator::{
    CreateError, CreateInvoice, CreatorPeers, InvoiceCreator, InvoiceRequest,
};
use invoiced_actors::key_signer::OsEntropy;
use invoiced_actors::key_signer::{PaymentKeys, SignNewInvoice, SignedNewInvoice};
use invoiced_actors::label_registry::LabelRegistry;
use invoiced_actors::policy::bolt11::DraftError;
use invoiced_actors::policy::bolt11::{Cltv, Expiry, InvoiceAmount};
use invoiced_actors::store::{EventLog, LogOptions, MemStorage};
use invoiced_events::{
    AmountOrAny, ChannelBook, CreatedIndex, Description, ExposePrivateChannels, Label, Msat,
    Network, PaymentHash, PaymentSecret, PreimageSeal, ShortChannelId,
};

type Journal = Arc<Mutex<Vec<String>>>;

struct Signer(Journal, LabelRegistry);
impl Actor for Signer {
    type Context = Context<Self>;
}
impl Handler<SignNewInvoice> for Signer {
    type Result = Result<SignedNewInvoice, DraftError>;
    fn handle(&mut self, msg: SignNewInvoice, _: &mut Context<Self>) -> Self::Result {
        self.0.lock().unwrap().push(format!(
            "sign {} with {} claims",
            msg.draft.description.text(),
            self.1.in_flight()
        ));
        let keys = PaymentKeys {
            payment_hash: PaymentHash([1; 32]),
            payment_secret: PaymentSecret([2; 32]),
            seal: PreimageSeal::Derived { nonce: [3; 32] },
        };
        Ok(SignedNewInvoice {
            keys,
            bolt11: format!("lnbcrt-mock-{}", msg.draft.description.text()),
        })
    }
}
impl Handler<invoiced_actors::key_signer::SignBolt12> for Signer {
    type Result = Result<
        invoiced_actors::key_signer::SignedBolt12,
        invoiced_actors::policy::bolt12::Bolt12Error,
    >;
    fn handle(
        &mut self,
        _: invoiced_actors::key_signer::SignBolt12,
        _: &mut Context<Self>,
    ) -> Self::Result {
        Err(invoiced_actors::policy::bolt12::Bolt12Error::Field(
            "not in this test",
        ))
    }
}

fn request(label: &str, fallbacks: Vec<String>) -> InvoiceRequest {
    InvoiceRequest {
        amount: InvoiceAmount::new(AmountOrAny::Fixed(Msat(1000))).unwrap(),
        label: Some(Label::new(label).unwrap()),
        description: Description::new(format!("for {label}"), false).unwrap(),
        expiry: Expiry::new(3600).unwrap(),
        fallbacks,
        preimage: invoiced_actors::key_signer::PreimageSource::Generate,
        expose: ExposePrivateChannels::default(),
        cltv: Cltv::new(18).unwrap(),
        idempotent: false,
        hold: false,
    }
}

struct Case {
    /// A label someone else holds a claim on while the request runs.
    claimed: Option<&'static str>,
    fail_write: bool,
    request: InvoiceRequest,
}

/// What a run left: the outcome, what the signer was asked, the claims still held (besides the
/// case's own), and the labels in the log.
struct Run {
    outcome: Result<invoiced_events::InvoiceRecord, CreateError>,
    journal: Vec<String>,
    claims_left: usize,
    labels: Vec<String>,
}

/// Runs one request through a creator with a mock signer.
fn run(case: Case) -> Run {
    let options = LogOptions::default();
    if case.fail_write {
        options.faults.fail_next_writes(1);
    }
    let log = EventLog::open_on(
        Arc::new(MemStorage::new()),
        Network::Regtest,
        Arc::new(FixedClock(1_800_000_000_000)),
        options,
    )
    .unwrap();
    let journal: Journal = Arc::default();
    let claims = LabelRegistry::new(log.state());
    let held = case.claimed.map(|l| {
        claims
            .reserve(&Label::new(l).unwrap(), &PaymentHash([9; 32]))
            .unwrap()
    });
    let sys = System::new();
    let outcome = sys.block_on(async {
        let signer = Signer(journal.clone(), claims.clone()).start();
        let peers = CreatorPeers {
            hints: ChannelView::new(ChannelBook::default(), Box::new(OsEntropy)),
            signer: signer.clone().recipient(),
            bolt12: signer.recipient(),
            claims: claims.clone(),
        };
        let creator = InvoiceCreator::new(
            Network::Regtest,
            log.reader(),
            peers,
            log.handle(),
            Arc::new(FixedClock(1_800_000_000_000)),
        )
        .start();
        let outcome = creator.send(CreateInvoice(case.request)).await.unwrap();
        System::current().stop();
        outcome
    });
    sys.run().unwrap();
    let claims_left = claims.in_flight() - usize::from(held.is_some());
    let labels = log
        .state()
        .read()
        .unwrap()
        .invoices
        .from_created_index(CreatedIndex(0))
        .map(|e| e.label.to_string())
        .collect();
    log.close();
    let journal = journal.lock().unwrap().clone();
    Run {
        outcome,
        journal,
        claims_left,
        labels,
    }
}

fn ok_case(label: &str) -> Case {
    Case {
        claimed: None,
        fail_write: false,
        request: request(label, vec![]),
    }
}

#[test]
fn a_request_signs_before_it_claims_and_gives_the_claim_back() {
    let r = run(ok_case("a"));
    let issued = r.outcome.unwrap();
    assert_eq!(
        (
            issued.created.body.bolt11.as_str(),
            issued.created.created_index
        ),
        ("lnbcrt-mock-for a", CreatedIndex(1))
    );
    assert_eq!(r.journal, ["sign for a with 0 claims"]);
    assert_eq!(r.claims_left, 0);
    assert_eq!(r.labels, ["a"]);
}

#[test]
fn a_bad_fallback_is_refused_before_anyone_is_asked() {
    let r = run(Case {
        request: request("a", vec!["not-an-address".into()]),
        ..ok_case("a")
    });
    assert!(
        matches!(r.outcome, Err(CreateError::Fallback(_))),
        "{:?}",
        r.outcome
    );
    assert!(r.journal.is_empty(), "{:?}", r.journal);
    assert!(r.labels.is_empty());
}

#[test]
fn no_usable_hint_stops_before_signing() {
    let mut req = request("a", vec![]);
    req.expose = ExposePrivateChannels::Only(vec![ShortChannelId::new(9, 9, 9).unwrap()]);
    let r = run(Case {
        request: req,
        ..ok_case("a")
    });
    assert!(
        matches!(r.outcome, Err(CreateError::NoSuitableHints(_))),
        "{:?}",
        r.outcome
    );
    assert!(r.journal.is_empty(), "{:?}", r.journal);
    assert!(r.labels.is_empty());
}

#[test]
fn a_refused_claim_appends_nothing_and_leaves_no_claim() {
    let r = run(Case {
        claimed: Some("a"),
        ..ok_case("a")
    });
    assert!(
        matches!(r.outcome, Err(CreateError::DuplicateLabel(ref l)) if l.as_str() == "a"),
        "{:?}",
        r.outcome
    );
    // Signed first (Core Lightning's order), refused at the claim.
    assert_eq!(r.journal, ["sign for a with 1 claims"]);
    assert_eq!(r.claims_left, 0);
    assert!(r.labels.is_empty());
}

#[test]
fn a_failed_write_gives_the_claim_back() {
    let r = run(Case {
        fail_write: true,
        ..ok_case("a")
    });
    assert!(
        matches!(r.outcome, Err(CreateError::Store(_))),
        "{:?}",
        r.outcome
    );
    assert_eq!(r.journal, ["sign for a with 0 claims"]);
    assert_eq!(r.claims_left, 0);
    assert!(r.labels.is_empty(), "the projection never saw it");
}
