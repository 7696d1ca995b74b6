//! The InvoiceCreator alone: its peers (ChannelMonitor, KeySigner, LabelRegistry) are mocks that
//! record what they were asked, so the tests see the order of the steps (Core Lightning's order
//! of errors: fallbacks, hints, then the claims after signing) and that a claim, once taken, is
//! given back on every path — also when the log fails to write.
#![allow(clippy::unwrap_used)]

use std::sync::{Arc, Mutex};

use actix::prelude::*;
use invoiced_actors::channel_monitor::{GetRouteHints, NoSuitableHints};
use invoiced_actors::clock::FixedClock;
use invoiced_actors::policy::bolt11::{Cltv, Expiry, InvoiceAmount};
use invoiced_actors::invoice_creator::{CreateError, CreateInvoice, CreatorPeers, InvoiceCreator, InvoiceRequest, IssuedInvoice};
use invoiced_actors::key_signer::{PaymentHash, PaymentKeys, PaymentSecret, SignNewInvoice, SignedNewInvoice};
use invoiced_actors::label_registry::{ReleaseInvoice, ReserveError, ReserveInvoice};
use invoiced_actors::policy::bolt11::DraftError;
use invoiced_actors::policy::hints::HintChoice;
use invoiced_actors::store::{EventLog, LogOptions, MemStorage};
use invoiced_events::{AmountOrAny, Description, ExposePrivateChannels, Label, Msat, Network, PreimageSeal};

type Journal = Arc<Mutex<Vec<String>>>;

struct Monitor(Result<HintChoice, NoSuitableHints>, Journal);
impl Actor for Monitor {
    type Context = Context<Self>;
}
impl Handler<GetRouteHints> for Monitor {
    type Result = Result<HintChoice, NoSuitableHints>;
    fn handle(&mut self, _: GetRouteHints, _: &mut Context<Self>) -> Self::Result {
        self.1.lock().unwrap().push("hints".into());
        self.0.clone()
    }
}

struct Signer(Journal);
impl Actor for Signer {
    type Context = Context<Self>;
}
impl Handler<SignNewInvoice> for Signer {
    type Result = Result<SignedNewInvoice, DraftError>;
    fn handle(&mut self, msg: SignNewInvoice, _: &mut Context<Self>) -> Self::Result {
        self.0.lock().unwrap().push(format!("sign {}", msg.draft.description.text()));
        let keys = PaymentKeys { payment_hash: PaymentHash([1; 32]), payment_secret: PaymentSecret([2; 32]), seal: PreimageSeal::Derived { nonce: [3; 32] } };
        Ok(SignedNewInvoice { keys, bolt11: format!("lnbcrt-mock-{}", msg.draft.description.text()) })
    }
}

struct Registry(Result<(), ReserveError>, Journal);
impl Actor for Registry {
    type Context = Context<Self>;
}
impl Handler<ReserveInvoice> for Registry {
    type Result = Result<(), ReserveError>;
    fn handle(&mut self, msg: ReserveInvoice, _: &mut Context<Self>) -> Self::Result {
        self.1.lock().unwrap().push(format!("reserve {}", msg.label));
        self.0.clone()
    }
}
impl Handler<ReleaseInvoice> for Registry {
    type Result = ();
    fn handle(&mut self, msg: ReleaseInvoice, _: &mut Context<Self>) {
        self.1.lock().unwrap().push(format!("release {}", msg.label));
    }
}

fn request(label: &str, fallbacks: Vec<String>) -> InvoiceRequest {
    InvoiceRequest {
        amount: InvoiceAmount::new(AmountOrAny::Fixed(Msat::from_msat(1000).unwrap())).unwrap(),
        label: Label::new(label).unwrap(),
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
    hints: Result<HintChoice, NoSuitableHints>,
    reserve: Result<(), ReserveError>,
    fail_write: bool,
    request: InvoiceRequest,
}

/// Runs one request through a creator with mock peers; returns its outcome, what the peers were
/// asked, and the labels in the log afterwards.
fn run(case: Case) -> (Result<IssuedInvoice, CreateError>, Vec<String>, Vec<String>) {
    let options = LogOptions::default();
    if case.fail_write {
        options.faults.fail_next_writes(1);
    }
    let log = EventLog::open_on(Arc::new(MemStorage::new()), Network::Regtest, Arc::new(FixedClock(1_800_000_000_000)), options).unwrap();
    let journal: Journal = Arc::default();
    let sys = System::new();
    let outcome = sys.block_on(async {
        let monitor = Monitor(case.hints, journal.clone()).start();
        let signer = Signer(journal.clone()).start();
        let registry = Registry(case.reserve, journal.clone()).start();
        let peers = CreatorPeers {
            hints: monitor.recipient(),
            signer: signer.recipient(),
            reserve: registry.clone().recipient(),
            release: registry.recipient(),
        };
        let creator = InvoiceCreator::new(Network::Regtest, log.reader(), peers, log.handle(), Arc::new(FixedClock(1_800_000_000_000))).start();
        let outcome = creator.send(CreateInvoice(case.request)).await.unwrap();
        // The release is a fire-and-forget message: let it arrive.
        for _ in 0..10 {
            tokio::task::yield_now().await;
        }
        System::current().stop();
        outcome
    });
    sys.run().unwrap();
    let labels = log.state().read().unwrap().invoices.from_created_index(0).map(|e| e.label.to_string()).collect();
    log.close();
    let journal = journal.lock().unwrap().clone();
    (outcome, journal, labels)
}

fn ok_case(label: &str) -> Case {
    Case { hints: Ok(HintChoice::default()), reserve: Ok(()), fail_write: false, request: request(label, vec![]) }
}

#[test]
fn a_request_goes_hints_sign_claim_append_release() {
    let (outcome, journal, labels) = run(ok_case("a"));
    let issued = outcome.unwrap();
    assert_eq!((issued.bolt11.as_str(), issued.created_index), ("lnbcrt-mock-for a", 1));
    assert_eq!(journal, ["hints", "sign for a", "reserve a", "release a"]);
    assert_eq!(labels, ["a"]);
}

#[test]
fn a_bad_fallback_is_refused_before_anyone_is_asked() {
    let (outcome, journal, labels) = run(Case { request: request("a", vec!["not-an-address".into()]), ..ok_case("a") });
    assert!(matches!(outcome, Err(CreateError::Fallback(_))), "{outcome:?}");
    assert!(journal.is_empty(), "{journal:?}");
    assert!(labels.is_empty());
}

#[test]
fn no_usable_hint_stops_before_signing() {
    let (outcome, journal, labels) = run(Case { hints: Err(NoSuitableHints), ..ok_case("a") });
    assert!(matches!(outcome, Err(CreateError::NoSuitableHints(_))), "{outcome:?}");
    assert_eq!(journal, ["hints"]);
    assert!(labels.is_empty());
}

#[test]
fn a_refused_claim_appends_nothing_and_has_nothing_to_give_back() {
    let refused = ReserveError::DuplicateLabel(Label::new("a").unwrap());
    let (outcome, journal, labels) = run(Case { reserve: Err(refused), ..ok_case("a") });
    assert!(matches!(outcome, Err(CreateError::DuplicateLabel(ref l)) if l.as_str() == "a"), "{outcome:?}");
    assert_eq!(journal, ["hints", "sign for a", "reserve a"]);
    assert!(labels.is_empty());
}

#[test]
fn a_failed_write_gives_the_claim_back() {
    let (outcome, journal, labels) = run(Case { fail_write: true, ..ok_case("a") });
    assert!(matches!(outcome, Err(CreateError::Store(_))), "{outcome:?}");
    assert_eq!(journal, ["hints", "sign for a", "reserve a", "release a"]);
    assert!(labels.is_empty(), "the projection never saw it");
}
