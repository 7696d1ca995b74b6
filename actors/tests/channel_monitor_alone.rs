//! The ChannelMonitor alone, over a log in memory: a sync becomes channel events (only for what
//! changed), its working set changes only once they are durable, route hints come from the
//! channels it knows, and a monitor rebuilt from the log after a restart chooses the same.
#![allow(clippy::unwrap_used)]

use actix::prelude::*;
use invoiced_actors::channel_monitor::{
    ChannelMonitor, ChannelView, ListIncoming, NoSuitableHints, SyncChannels,
};
use invoiced_actors::entropy::EntropySource;
use invoiced_actors::store::{MemStorage, Observe};
use invoiced_events::{
    ChannelInfo, ChannelKey, ExposePrivateChannels, Msat, NodeId, PeerPolicy, ShortChannelId,
};

mod common;

/// Always the same draw, so two monitors choose alike.
struct Fixed;
impl EntropySource for Fixed {
    fn fill(&mut self, out: &mut [u8]) {
        out.iter_mut().for_each(|b| *b = 7);
    }
}

fn channel(block: u32, receivable_msat: u64, private: bool) -> ChannelInfo {
    let scid = ShortChannelId::new(block, 1, 0).unwrap();
    ChannelInfo {
        key: ChannelKey::Scid(scid),
        peer_id: {
            let mut id = [2u8; 33];
            id[32] = block as u8;
            NodeId(id)
        },
        peer_connected: true,
        state: "CHANNELD_NORMAL".into(),
        short_channel_id: Some(scid),
        alias_local: None,
        alias_remote: None,
        private,
        scid_alias_only: false,
        total_msat: Msat(1_000_000_000),
        to_us_msat: Msat(1_000_000_000 - receivable_msat),
        receivable_msat: Msat(receivable_msat),
        our_reserve_msat: Msat(0),
        their_reserve_msat: Msat(0),
        remote_policy: Some(PeerPolicy {
            fee_base_msat: 1000,
            fee_proportional_millionths: 10,
            cltv_expiry_delta: 40,
            htlc_minimum_msat: Msat(1),
            htlc_maximum_msat: Msat(1_000_000_000),
        }),
        incoming_capacity_msat: None,
    }
}

#[test]
fn syncs_become_events_and_hints_follow_them() {
    let storage = MemStorage::new();
    let log = common::memory_log_on(&storage, 10_000);
    let sys = System::new();
    let first_choice = sys.block_on(async {
        // The creators' side of the view is read in place; the monitor is its one writer.
        let view = ChannelView::new(
            log.state().read().unwrap().channels.clone(),
            Box::new(Fixed),
        );
        let monitor = ChannelMonitor::new(view.clone(), log.handle(), log.state()).start();
        let hints = |expose| view.choose(Some(Msat(50_000_000)), &expose);
        // No channel: no hint, and naming one that does not exist is 902.
        assert!(hints(ExposePrivateChannels::Unset)
            .unwrap()
            .hints
            .is_empty());
        let named = ExposePrivateChannels::Only(vec![ShortChannelId::new(9, 9, 9).unwrap()]);
        assert_eq!(hints(named).unwrap_err(), NoSuitableHints);

        let full = vec![
            channel(101, 400_000_000, false),
            channel(102, 300_000_000, false),
            channel(103, 200_000_000, true),
        ];
        let s = monitor
            .send(SyncChannels {
                channels: full.clone(),
                full: true,
            })
            .await
            .unwrap()
            .unwrap();
        assert_eq!((s.opened, s.updated, s.closed, s.total), (3, 0, 0, 3));
        assert_eq!(
            log.state().read().unwrap().head().0,
            3,
            "one event per new channel"
        );
        // The same list again changes nothing and appends nothing.
        let s = monitor
            .send(SyncChannels {
                channels: full.clone(),
                full: true,
            })
            .await
            .unwrap()
            .unwrap();
        assert_eq!((s.opened, s.updated, s.closed), (0, 0, 0));
        assert_eq!(log.state().read().unwrap().head().0, 3);
        // One changes, one goes away.
        let changed = vec![
            channel(101, 100_000_000, false),
            channel(103, 200_000_000, true),
        ];
        let s = monitor
            .send(SyncChannels {
                channels: changed,
                full: true,
            })
            .await
            .unwrap()
            .unwrap();
        assert_eq!((s.opened, s.updated, s.closed, s.total), (0, 1, 1, 2));
        assert_eq!(
            log.state().read().unwrap().head().0,
            5,
            "an update and a close"
        );

        // With an announced channel, the private one is not used unless named.
        let choice = hints(ExposePrivateChannels::Unset).unwrap();
        assert_eq!(choice.hints.len(), 1);
        assert_eq!(
            choice.hints[0].short_channel_id,
            ShortChannelId::from_u64(ShortChannelId::new(101, 1, 0).unwrap().to_u64())
        );
        let private = ExposePrivateChannels::Only(vec![ShortChannelId::new(103, 1, 0).unwrap()]);
        let named = hints(private).unwrap();
        assert_eq!(
            named.hints[0].short_channel_id,
            ShortChannelId::from_u64(ShortChannelId::new(103, 1, 0).unwrap().to_u64())
        );
        let view = monitor.send(ListIncoming).await.unwrap();
        assert!(view.has_public);
        assert_eq!(view.channels.len(), 2);
        System::current().stop();
        choice
    });
    sys.run().unwrap();
    let live_channels = log.state().read().unwrap().channels.clone();
    log.close();
    // After a restart the channels come back from the log, and the same draw chooses the same.
    let log = common::memory_log_on(&storage, 10_000);
    assert_eq!(log.state().read().unwrap().channels, live_channels);
    let sys = System::new();
    let again = sys.block_on(async {
        let view = ChannelView::new(
            log.state().read().unwrap().channels.clone(),
            Box::new(Fixed),
        );
        let _monitor = ChannelMonitor::new(view.clone(), log.handle(), log.state()).start();
        let choice = view
            .choose(Some(Msat(50_000_000)), &ExposePrivateChannels::Unset)
            .unwrap();
        System::current().stop();
        choice
    });
    sys.run().unwrap();
    assert_eq!(again, first_choice);
    log.close();
}

/// The notice of a committed batch can reach the monitor after later batches were applied (its
/// mailbox waits while a sync is in flight). Taking the projection's set, never replaying the
/// notice's events, a late notice of the opening cannot bring back a channel closed since.
#[test]
fn a_late_notice_of_an_old_batch_brings_nothing_back() {
    let storage = MemStorage::new();
    let log = common::memory_log_on(&storage, 10_000);
    let sys = System::new();
    sys.block_on(async {
        let mut committed = log.handle().subscribe();
        let view = ChannelView::new(
            log.state().read().unwrap().channels.clone(),
            Box::new(Fixed),
        );
        let monitor = ChannelMonitor::new(view.clone(), log.handle(), log.state()).start();
        let opened = vec![
            channel(101, 400_000_000, false),
            channel(102, 300_000_000, false),
        ];
        monitor
            .send(SyncChannels {
                channels: opened,
                full: true,
            })
            .await
            .unwrap()
            .unwrap();
        let opening = committed.recv().await.unwrap();
        monitor
            .send(SyncChannels {
                channels: vec![channel(101, 400_000_000, false)],
                full: true,
            })
            .await
            .unwrap()
            .unwrap();
        assert_eq!(view.len(), 1);
        monitor.send(Observe(opening)).await.unwrap();
        assert_eq!(view.len(), 1, "the closed channel stays closed");
        let listed = monitor.send(ListIncoming).await.unwrap();
        assert_eq!(
            listed
                .channels
                .iter()
                .map(|c| c.channel.key.clone())
                .collect::<Vec<_>>(),
            vec![channel(101, 0, false).key]
        );
        System::current().stop();
    });
    sys.run().unwrap();
    log.close();
}
