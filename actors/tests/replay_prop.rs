//! Property: for random command sequences (create, settle, expire, delete, description
//! removal, channel changes, restarts), the live state equals a replay of the log, and the
//! replay up to record N equals the live state as it was right after record N.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::sync::Arc;

use invoiced_actors::clock::FixedClock;
use invoiced_actors::store::replay::replay;
use invoiced_actors::store::RocksEventLog;
use invoiced_events::codec::{decode_record, record_hash};
use invoiced_events::{
    ChannelInfo, ChannelKey, DescriptionRemoved, Event, InvoiceCreated, InvoiceDeleted, InvoiceExpired, InvoicePaid,
    InvoiceStatus, Label, Network, PreimageSeal, Projections, ShortChannelId,
};
use proptest::prelude::*;

#[derive(Clone, Debug)]
enum Cmd {
    Create { label: u8, hash: u8 },
    Pay(u8),
    Expire(u8),
    Delete(u8, u8),
    RemoveDescription(u8),
    OpenChannel(u8),
    UpdateChannel(u8),
    CloseChannel(u8),
    Restart,
}

fn cmd() -> impl Strategy<Value = Cmd> {
    prop_oneof![
        4 => (0u8..6, 0u8..10).prop_map(|(label, hash)| Cmd::Create { label, hash }),
        2 => (1u8..8).prop_map(Cmd::Pay),
        1 => (1u8..8).prop_map(Cmd::Expire),
        1 => (1u8..8, 0u8..3).prop_map(|(i, s)| Cmd::Delete(i, s)),
        1 => (1u8..8).prop_map(Cmd::RemoveDescription),
        1 => (0u8..3).prop_map(Cmd::OpenChannel),
        1 => (0u8..3).prop_map(Cmd::UpdateChannel),
        1 => (0u8..3).prop_map(Cmd::CloseChannel),
        1 => Just(Cmd::Restart),
    ]
}

fn channel(n: u8, receivable: u64) -> ChannelInfo {
    ChannelInfo {
        key: ChannelKey::Scid(ShortChannelId::new(u32::from(n) + 1, 1, 0).unwrap()),
        peer_id: vec![2; 33],
        peer_connected: true,
        state: "CHANNELD_NORMAL".into(),
        short_channel_id: Some(ShortChannelId::new(u32::from(n) + 1, 1, 0).unwrap()),
        alias_local: None,
        alias_remote: None,
        private: false,
        scid_alias_only: false,
        total_msat: 1_000_000,
        to_us_msat: 0,
        receivable_msat: receivable,
        our_reserve_msat: 0,
        their_reserve_msat: 0,
        remote_policy: None,
        incoming_capacity_msat: None,
    }
}

fn to_event(c: &Cmd, state: &Projections) -> Option<Event> {
    let status = |i: u8| [InvoiceStatus::Unpaid, InvoiceStatus::Paid, InvoiceStatus::Expired][usize::from(i)];
    Some(match c {
        Cmd::Create { label, hash } => Event::InvoiceCreated(InvoiceCreated {
            created_index: 0,
            label: Label::new(format!("l{label}")).unwrap(),
            bolt11: format!("lnbcrt-{label}-{hash}"),
            payment_hash: [*hash; 32],
            payment_secret: [0; 32],
            preimage: PreimageSeal::Derived { nonce: [*hash; 32] },
            amount_msat: Some(1000),
            description: "d".into(),
            deschashonly: false,
            created_at: 1,
            expiry: 10,
            expires_at: 11,
            cltv: 10,
            fallbacks: vec![],
            route_hints: vec![],
            warnings: vec![],
        }),
        Cmd::Pay(i) => Event::InvoicePaid(InvoicePaid { created_index: u64::from(*i), pay_index: 0, updated_index: 0, amount_received_msat: 1000, paid_at: 5 }),
        Cmd::Expire(i) => Event::InvoiceExpired(InvoiceExpired { created_index: u64::from(*i), updated_index: 0 }),
        Cmd::Delete(i, s) => Event::InvoiceDeleted(InvoiceDeleted { created_index: u64::from(*i), deleted_index: 0, status: status(*s) }),
        Cmd::RemoveDescription(i) => Event::DescriptionRemoved(DescriptionRemoved { created_index: u64::from(*i), updated_index: 0 }),
        Cmd::OpenChannel(n) => {
            let c = channel(*n, 500);
            if state.channels.get(&c.key).is_some() {
                return None;
            }
            Event::ChannelOpened(c)
        }
        Cmd::UpdateChannel(n) => {
            let c = channel(*n, 700);
            state.channels.get(&c.key)?;
            Event::ChannelUpdated(c)
        }
        Cmd::CloseChannel(n) => {
            let key = channel(*n, 0).key;
            state.channels.get(&key)?;
            Event::ChannelClosed(key)
        }
        Cmd::Restart => return None,
    })
}

fn replay_until(path: &std::path::Path, n: u64) -> Projections {
    let db = rocksdb::DB::open_cf_for_read_only(&rocksdb::Options::default(), path, ["events", "meta"], false).unwrap();
    let cf = db.cf_handle("events").unwrap();
    let mut p = Projections::new();
    for kv in db.iterator_cf(cf, rocksdb::IteratorMode::Start) {
        let (_, v) = kv.unwrap();
        let rec = decode_record(&v).unwrap();
        if rec.seq > n {
            break;
        }
        p.apply(&rec, record_hash(&v)).unwrap();
    }
    p
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn live_state_equals_replay(cmds in proptest::collection::vec(cmd(), 1..40)) {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("events");
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let clock = Arc::new(FixedClock(1_000));
        let mut log = RocksEventLog::open(&path, Network::Regtest, clock.clone()).unwrap();
        let mut after: BTreeMap<u64, Projections> = BTreeMap::new();
        for c in &cmds {
            if matches!(c, Cmd::Restart) {
                let before = log.state().read().unwrap().clone();
                log.close();
                log = RocksEventLog::open(&path, Network::Regtest, clock.clone()).unwrap();
                let reopened = log.state().read().unwrap().clone();
                prop_assert_eq!(reopened, before, "restart changed the state");
                continue;
            }
            let event = { let s = log.state(); let s = s.read().unwrap(); to_event(c, &s) };
            let Some(event) = event else { continue };
            // Refusals are fine (admission decides); what was committed must replay.
            if rt.block_on(log.handle().append(event)).is_ok() {
                let s = log.state().read().unwrap().clone();
                after.insert(s.head().0, s);
            }
        }
        let live = log.state().read().unwrap().clone();
        log.close();
        let db = rocksdb::DB::open_cf_for_read_only(&rocksdb::Options::default(), &path, ["events", "meta"], false).unwrap();
        prop_assert_eq!(replay(&db).unwrap(), live.clone());
        drop(db);
        for (n, state) in &after {
            prop_assert_eq!(&replay_until(&path, *n), state, "replay --until {}", n);
        }
    }
}
