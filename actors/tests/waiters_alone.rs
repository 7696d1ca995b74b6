//! The Waiters alone, over a log in memory written directly: each kind of wait is answered by the
//! event it waits for and by no other, `waitanyinvoice` as Core Lightning's any-waiter (the paid
//! invoice after `lastpay_index` if there is one, else the next payment, whatever its index).
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use actix::prelude::*;
use invoiced_actors::waiters::{
    CountWaiters, IndexName, WaitAnyError, WaitAnyInvoice, WaitIndex, WaitInvoice,
    WaitInvoiceError, Waiters, Waiting,
};
use invoiced_events::{CreatedIndex, InvoiceStatus, Label, Msat, PayIndex, Proposal};

mod common;

fn created(label: &str, n: u8) -> Proposal {
    common::created(label, n, 1, 3601)
}

fn paid(idx: u64) -> Proposal {
    Proposal::Paid {
        created_index: CreatedIndex(idx),
        amount_received_msat: Msat(1000),
        paid_at: 2,
        parts: vec![],
    }
}

/// Whether `rx` has an answer within a moment (for a wait that must not be answered).
async fn answered<T>(rx: &mut tokio::sync::oneshot::Receiver<T>) -> Option<T> {
    tokio::time::timeout(Duration::from_millis(300), rx)
        .await
        .ok()
        .map(Result::unwrap)
}

/// The answer `rx` must get (generous, for a loaded machine).
async fn answer<T>(rx: &mut tokio::sync::oneshot::Receiver<T>) -> T {
    tokio::time::timeout(Duration::from_secs(10), rx)
        .await
        .expect("answered")
        .unwrap()
}

fn spawn_send<M, T>(addr: &Addr<Waiters>, msg: M) -> tokio::sync::oneshot::Receiver<T>
where
    M: Message<Result = Waiting<T>> + Send + 'static,
    T: Send + 'static,
    Waiters: Handler<M>,
{
    let (tx, rx) = tokio::sync::oneshot::channel();
    let addr = addr.clone();
    actix::spawn(async move {
        let _ = tx.send(addr.send(msg).await.unwrap().await);
    });
    rx
}

#[test]
fn each_wait_is_answered_by_its_event() {
    let log = common::memory_log(10_000);
    let sys = System::new();
    sys.block_on(async {
        let waiters = Waiters::new(log.reader(), log.handle()).start();
        let handle = log.handle();
        let append = |proposals: Vec<Proposal>| handle.append_all(proposals);
        append(vec![
            created("a", 1),
            created("b", 2),
            created("c", 3),
            created("d", 4),
        ])
        .await
        .unwrap();

        // Nothing paid: timeout 0 answers at once; any lastpay_index waits for the next payment.
        let e = waiters
            .send(WaitAnyInvoice {
                lastpay_index: PayIndex(0),
                timeout: Some(0),
            })
            .await
            .unwrap()
            .await
            .unwrap_err();
        assert!(matches!(e, WaitAnyError::Timeout));
        let mut any_far = spawn_send(
            &waiters,
            WaitAnyInvoice {
                lastpay_index: PayIndex(99_999_999_999),
                timeout: None,
            },
        );
        let mut on_a = spawn_send(
            &waiters,
            WaitInvoice {
                label: Label::new("a").unwrap(),
            },
        );
        let mut on_c = spawn_send(
            &waiters,
            WaitInvoice {
                label: Label::new("c").unwrap(),
            },
        );
        let mut on_d = spawn_send(
            &waiters,
            WaitInvoice {
                label: Label::new("d").unwrap(),
            },
        );
        let mut created5 = spawn_send(
            &waiters,
            WaitIndex {
                index: IndexName::Created,
                nextvalue: 5,
            },
        );
        assert!(answered(&mut any_far).await.is_none() && answered(&mut on_a).await.is_none());

        append(vec![paid(2)]).await.unwrap(); // "b" is paid
        let got = answer(&mut any_far).await.unwrap();
        assert_eq!(
            (
                got.created.body.label.as_str(),
                got.payment.unwrap().pay_index
            ),
            ("b", PayIndex(1))
        );
        assert!(
            answered(&mut on_a).await.is_none(),
            "another invoice's payment does not wake it"
        );

        // Paid ones are found without waiting; a far lastpay_index now waits for the next one.
        let first = waiters
            .send(WaitAnyInvoice {
                lastpay_index: PayIndex(0),
                timeout: None,
            })
            .await
            .unwrap()
            .await
            .unwrap();
        assert_eq!(first.created.body.label.as_str(), "b");
        let mut any_after = spawn_send(
            &waiters,
            WaitAnyInvoice {
                lastpay_index: PayIndex(99_999_999_999),
                timeout: None,
            },
        );
        assert!(
            answered(&mut any_after).await.is_none(),
            "the payment before it registered does not wake it"
        );

        append(vec![paid(1)]).await.unwrap(); // "a"
        assert_eq!(answer(&mut on_a).await.unwrap().status, InvoiceStatus::Paid);
        assert_eq!(
            answer(&mut any_after)
                .await
                .unwrap()
                .payment
                .unwrap()
                .pay_index,
            PayIndex(2)
        );

        append(vec![Proposal::Expired {
            created_index: CreatedIndex(3),
        }])
        .await
        .unwrap();
        assert!(matches!(
            answer(&mut on_c).await,
            Err(WaitInvoiceError::Expired(_))
        ));
        append(vec![Proposal::Deleted {
            created_index: CreatedIndex(4),
            status: InvoiceStatus::Unpaid,
        }])
        .await
        .unwrap();
        assert!(matches!(
            answer(&mut on_d).await,
            Err(WaitInvoiceError::Deleted)
        ));

        assert!(answered(&mut created5).await.is_none());
        append(vec![created("e", 5)]).await.unwrap();
        let woke = answer(&mut created5).await.unwrap();
        assert_eq!(
            (woke.value, woke.details.unwrap().label.as_deref()),
            (5, Some("e"))
        );
        let e = waiters
            .send(WaitInvoice {
                label: Label::new("nosuch").unwrap(),
            })
            .await
            .unwrap()
            .await
            .unwrap_err();
        assert!(matches!(e, WaitInvoiceError::LabelNotFound));
        System::current().stop();
    });
    sys.run().unwrap();
    log.close();
}

#[test]
fn waits_given_up_are_forgotten_and_the_others_still_answered() {
    let log = common::memory_log(10_000);
    let sys = System::new();
    sys.block_on(async {
        let waiters = Waiters::new(log.reader(), log.handle()).start();
        let handle = log.handle();
        handle.append_all(vec![created("a", 1)]).await.unwrap();
        let mut kept_any = spawn_send(
            &waiters,
            WaitAnyInvoice {
                lastpay_index: PayIndex(0),
                timeout: None,
            },
        );
        let mut kept_a = spawn_send(
            &waiters,
            WaitInvoice {
                label: Label::new("a").unwrap(),
            },
        );
        let mut kept_created = spawn_send(
            &waiters,
            WaitIndex {
                index: IndexName::Created,
                nextvalue: 2,
            },
        );
        // 1,500 callers register and give up, as clients that close their connection do.
        for i in 0..500u64 {
            drop(
                waiters
                    .send(WaitIndex {
                        index: IndexName::Updated,
                        nextvalue: 10 + i,
                    })
                    .await
                    .unwrap(),
            );
            drop(
                waiters
                    .send(WaitAnyInvoice {
                        lastpay_index: PayIndex(0),
                        timeout: None,
                    })
                    .await
                    .unwrap(),
            );
            drop(
                waiters
                    .send(WaitInvoice {
                        label: Label::new("a").unwrap(),
                    })
                    .await
                    .unwrap(),
            );
        }
        let registered = waiters.send(CountWaiters).await.unwrap();
        assert!(
            registered <= 3 + 65,
            "{registered} waiters registered for 3 callers"
        );
        assert!(registered >= 3);
        append_and_check(&handle, &mut kept_any, &mut kept_a, &mut kept_created).await;
        assert!(
            waiters.send(CountWaiters).await.unwrap() <= registered - 3,
            "the woken are gone"
        );
        System::current().stop();
    });
    sys.run().unwrap();
    log.close();
}

async fn append_and_check(
    handle: &invoiced_actors::store::LogHandle,
    any: &mut tokio::sync::oneshot::Receiver<Result<invoiced_events::InvoiceRecord, WaitAnyError>>,
    on_a: &mut tokio::sync::oneshot::Receiver<
        Result<invoiced_events::InvoiceRecord, WaitInvoiceError>,
    >,
    created2: &mut tokio::sync::oneshot::Receiver<
        Result<invoiced_actors::waiters::IndexWake, WaitAnyError>,
    >,
) {
    handle
        .append_all(vec![paid(1), created("b", 2)])
        .await
        .unwrap();
    assert_eq!(answer(any).await.unwrap().created.body.label.as_str(), "a");
    assert_eq!(answer(on_a).await.unwrap().status, InvoiceStatus::Paid);
    assert_eq!(answer(created2).await.unwrap().value, 2);
}
