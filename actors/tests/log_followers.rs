//! What followers of the log read (webhooks): records in order from any point, and the creation
//! of any invoice — live, or deleted long ago, found by bisecting the log.
#![allow(clippy::unwrap_used)]

mod common;

use invoiced_events::{CreatedIndex, InvoiceStatus, Msat, Proposal};

#[actix::test]
async fn records_from_any_point_and_the_creation_of_every_invoice_even_deleted() {
    let log = common::memory_log(1_000);
    let handle = log.handle();
    // 60 invoices, with payments between some (records that are not creations), and every
    // third one deleted.
    for i in 0..60u8 {
        handle
            .append(common::created(&format!("l{i}"), i + 1, 1, 10_000))
            .await
            .unwrap();
        if i % 7 == 0 {
            let paid = Proposal::Paid {
                created_index: CreatedIndex(u64::from(i) + 1),
                amount_received_msat: Msat(1000),
                paid_at: 2,
                parts: vec![],
            };
            handle.append(paid).await.unwrap();
        }
    }
    for idx in (1..=60u64).step_by(3) {
        let status = if (idx - 1) % 7 == 0 {
            InvoiceStatus::Paid
        } else {
            InvoiceStatus::Unpaid
        };
        handle
            .append(Proposal::Deleted {
                created_index: CreatedIndex(idx),
                status,
            })
            .await
            .unwrap();
    }
    let reader = log.reader();
    let head = reader.pick(|s| s.head().0).unwrap();
    let all = reader.records_from(1, usize::MAX).unwrap();
    assert_eq!(all.len() as u64, head);
    assert!(all.iter().zip(1..).all(|(r, seq)| r.seq == seq));
    let some = reader.records_from(head - 4, 2).unwrap();
    assert_eq!(
        some.iter().map(|r| r.seq).collect::<Vec<_>>(),
        [head - 4, head - 3]
    );
    assert!(reader.records_from(head + 1, 10).unwrap().is_empty());
    for idx in 1..=60u64 {
        let c = reader
            .creation(CreatedIndex(idx))
            .unwrap()
            .unwrap_or_else(|| panic!("invoice {idx}"));
        assert_eq!(
            (c.created_index.get(), c.body.label.as_str()),
            (idx, format!("l{}", idx - 1).as_str())
        );
    }
    assert!(reader.creation(CreatedIndex(61)).unwrap().is_none());
    assert!(reader.creation(CreatedIndex(0)).unwrap().is_none());
}
