//! What followers of the log read (webhooks): records in order from any point, and the creation
//! of any invoice — live, or deleted long ago, found by bisecting the log.
#![allow(clippy::unwrap_used)]

mod common;

use invoiced_events::{ChannelInfo, ChannelKey, InvoiceStatus, Proposal, ShortChannelId};

fn channel(n: u32) -> ChannelInfo {
    ChannelInfo {
        key: ChannelKey::Scid(ShortChannelId::new(n, 1, 0).unwrap()),
        peer_id: vec![2; 33],
        peer_connected: true,
        state: "CHANNELD_NORMAL".into(),
        short_channel_id: Some(ShortChannelId::new(n, 1, 0).unwrap()),
        alias_local: None,
        alias_remote: None,
        private: false,
        scid_alias_only: false,
        total_msat: 1_000_000,
        to_us_msat: 0,
        receivable_msat: 500,
        our_reserve_msat: 0,
        their_reserve_msat: 0,
        remote_policy: None,
        incoming_capacity_msat: None,
    }
}

#[actix::test]
async fn records_from_any_point_and_the_creation_of_every_invoice_even_deleted() {
    let log = common::memory_log(1_000);
    let handle = log.handle();
    // 60 invoices, with channel events between some (records that are not creations), and every
    // third one deleted.
    for i in 0..60u8 {
        handle.append(common::created(&format!("l{i}"), i + 1, 1, 10_000)).await.unwrap();
        if i % 7 == 0 {
            handle.append(Proposal::ChannelOpened(channel(u32::from(i) + 1))).await.unwrap();
        }
    }
    for idx in (1..=60u64).step_by(3) {
        handle.append(Proposal::Deleted { created_index: idx, status: InvoiceStatus::Unpaid }).await.unwrap();
    }
    let reader = log.reader();
    let head = reader.pick(|s| s.head().0).unwrap();
    let all = reader.records_from(1, usize::MAX).unwrap();
    assert_eq!(all.len() as u64, head);
    assert!(all.iter().zip(1..).all(|(r, seq)| r.seq == seq));
    let some = reader.records_from(head - 4, 2).unwrap();
    assert_eq!(some.iter().map(|r| r.seq).collect::<Vec<_>>(), [head - 4, head - 3]);
    assert!(reader.records_from(head + 1, 10).unwrap().is_empty());
    for idx in 1..=60u64 {
        let c = reader.creation(idx).unwrap().unwrap_or_else(|| panic!("invoice {idx}"));
        assert_eq!((c.created_index, c.label.as_str()), (idx, format!("l{}", idx - 1).as_str()));
    }
    assert!(reader.creation(61).unwrap().is_none());
    assert!(reader.creation(0).unwrap().is_none());
}
