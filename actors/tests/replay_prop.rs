//! Property: for random command sequences (create, settle, expire, delete, description
//! removal, hold invoices accepted, settled and canceled, channel changes, restarts), the live state equals a replay of the log, and the
//! replay up to record N equals the live state as it was right after record N. The oracle is a
//! small model of the rules written plainly (maps of labels, hashes and states, no shared code
//! with the projection): it predicts which commands the log accepts, and what every invoice and
//! counter then is.
#![allow(clippy::unwrap_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use invoiced_actors::clock::FixedClock;
use invoiced_actors::store::engine::Column;
use invoiced_actors::store::replay::replay;
use invoiced_actors::store::{EventLog, LogOptions, MemStorage, RocksStorage, Storage};
use invoiced_events::codec::{decode_record, record_hash};
use invoiced_events::{
    CancelReason, ChannelInfo, ChannelKey, CreatedIndex, HeldPart, HoldState, InvoiceBody,
    InvoiceStatus, Label, Msat, Network, NewInvoice, NodeId, PaymentHash, PaymentSecret,
    PreimageSeal, Projections, Proposal, ShortChannelId,
};
use proptest::prelude::*;

#[derive(Clone, Debug)]
enum Cmd {
    Create { label: u8, hash: u8, hold: bool },
    Pay(u8),
    Accept(u8),
    Settle(u8),
    Cancel(u8),
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
        4 => (0u8..6, 0u8..10, any::<bool>()).prop_map(|(label, hash, hold)| Cmd::Create { label, hash, hold }),
        2 => (1u8..8).prop_map(Cmd::Pay),
        1 => (1u8..8).prop_map(Cmd::Accept),
        1 => (1u8..8).prop_map(Cmd::Settle),
        1 => (1u8..8).prop_map(Cmd::Cancel),
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
        peer_id: NodeId([2; 33]),
        peer_connected: true,
        state: "CHANNELD_NORMAL".into(),
        short_channel_id: Some(ShortChannelId::new(u32::from(n) + 1, 1, 0).unwrap()),
        alias_local: None,
        alias_remote: None,
        private: false,
        scid_alias_only: false,
        total_msat: Msat(1_000_000),
        to_us_msat: Msat(0),
        receivable_msat: Msat(receivable),
        our_reserve_msat: Msat(0),
        their_reserve_msat: Msat(0),
        remote_policy: None,
        incoming_capacity_msat: None,
    }
}

fn to_proposal(c: &Cmd, state: &Projections) -> Option<Proposal> {
    let status = |i: u8| {
        [
            InvoiceStatus::Unpaid,
            InvoiceStatus::Paid,
            InvoiceStatus::Expired,
        ][usize::from(i)]
    };
    Some(match c {
        Cmd::Create { label, hash, hold } => Proposal::Invoice(NewInvoice {
            body: InvoiceBody {
                label: Label::new(format!("l{label}")).unwrap(),
                bolt11: format!("lnbcrt-{label}-{hash}"),
                payment_hash: PaymentHash([*hash; 32]),
                payment_secret: PaymentSecret([0; 32]),
                preimage: PreimageSeal::Derived { nonce: [*hash; 32] },
                amount_msat: Some(Msat(1000)),
                description: "d".into(),
                deschashonly: false,
                created_at: 1,
                expiry: 10,
                expires_at: 11,
                cltv: 10,
                fallbacks: vec![],
                route_hints: vec![],
                warnings: vec![],
            },
            // Every third hash is given as a description hash (a `HashedInvoiceCreated`).
            kind: match (*hold, hash % 3 == 0) {
                (hold, true) => invoiced_events::InvoiceKind::Hashed {
                    hold,
                    description_hash: [*hash; 32],
                },
                (true, false) => invoiced_events::InvoiceKind::Hold,
                (false, false) => invoiced_events::InvoiceKind::Bolt11,
            },
        }),
        Cmd::Accept(i) => Proposal::HoldAccepted {
            created_index: CreatedIndex(u64::from(*i)),
            parts: vec![HeldPart {
                htlc: format!("1x1x1/{i}"),
                amount_msat: Msat(1000),
                cltv_expiry: 500,
            }],
            height: 400,
        },
        Cmd::Settle(i) => Proposal::HoldSettled {
            created_index: CreatedIndex(u64::from(*i)),
            amount_received_msat: Msat(1000),
            paid_at: 6,
            revealed: None,
        },
        Cmd::Cancel(i) => Proposal::HoldCanceled {
            created_index: CreatedIndex(u64::from(*i)),
            reason: CancelReason::Requested,
        },
        Cmd::Pay(i) => Proposal::Paid {
            created_index: CreatedIndex(u64::from(*i)),
            amount_received_msat: Msat(1000),
            paid_at: 5,
            // Half of the payments are recorded with their HTLCs (Event::HtlcsPaid).
            parts: if i % 2 == 0 {
                vec![]
            } else {
                vec![invoiced_events::HeldPart {
                    htlc: format!("1x1x1/{i}"),
                    amount_msat: Msat(1000),
                    cltv_expiry: 500,
                }]
            },
        },
        Cmd::Expire(i) => Proposal::Expired {
            created_index: CreatedIndex(u64::from(*i)),
        },
        Cmd::Delete(i, s) => Proposal::Deleted {
            created_index: CreatedIndex(u64::from(*i)),
            status: status(*s),
        },
        Cmd::RemoveDescription(i) => Proposal::DescriptionRemoved {
            created_index: CreatedIndex(u64::from(*i)),
        },
        Cmd::OpenChannel(n) => {
            let c = channel(*n, 500);
            if state.channels.get(&c.key).is_some() {
                return None;
            }
            Proposal::ChannelOpened(c)
        }
        Cmd::UpdateChannel(n) => {
            let c = channel(*n, 700);
            state.channels.get(&c.key)?;
            Proposal::ChannelUpdated(c)
        }
        Cmd::CloseChannel(n) => {
            let key = channel(*n, 0).key;
            state.channels.get(&key)?;
            Proposal::ChannelClosed(key)
        }
        Cmd::Restart => return None,
    })
}

/// What the model knows of one invoice: label, status, description removed, pay_index, hold state.
type ModelInvoice = (String, InvoiceStatus, bool, Option<u64>, Option<HoldState>);

/// The rules, plainly: what the log must accept and what the invoices then are.
#[derive(Debug, Default, PartialEq, Eq)]
struct Model {
    /// created_index → (label, status, description removed, pay_index, hold state).
    invoices: BTreeMap<u64, ModelInvoice>,
    hashes_ever: BTreeSet<u8>,
    counters: [u64; 4],
}

impl Model {
    /// Applies `c` if the rules allow it; says whether they did (channel commands always do).
    fn apply(&mut self, c: &Cmd) -> bool {
        let [created, pay, updated, deleted] = &mut self.counters;
        match c {
            Cmd::Create { label, hash, hold } => {
                let label = format!("l{label}");
                if self.hashes_ever.contains(hash) || self.invoices.values().any(|i| i.0 == label) {
                    return false;
                }
                self.hashes_ever.insert(*hash);
                *created += 1;
                self.invoices.insert(
                    *created,
                    (
                        label,
                        InvoiceStatus::Unpaid,
                        false,
                        None,
                        hold.then_some(HoldState::Open),
                    ),
                );
            }
            Cmd::Pay(i) | Cmd::Expire(i) => {
                let Some(inv) = self.invoices.get_mut(&u64::from(*i)) else {
                    return false;
                };
                // A hold invoice is never paid at once; an accepted one waits for its parts' CLTV.
                if inv.1 != InvoiceStatus::Unpaid
                    || (matches!(c, Cmd::Pay(_)) && inv.4.is_some())
                    || inv.4 == Some(HoldState::Accepted)
                {
                    return false;
                }
                *updated += 1;
                if matches!(c, Cmd::Pay(_)) {
                    *pay += 1;
                    inv.1 = InvoiceStatus::Paid;
                    inv.3 = Some(*pay);
                } else {
                    inv.1 = InvoiceStatus::Expired;
                    inv.4 = inv.4.map(|_| HoldState::Canceled);
                }
            }
            Cmd::Accept(i) | Cmd::Settle(i) | Cmd::Cancel(i) => {
                let Some(inv) = self.invoices.get_mut(&u64::from(*i)) else {
                    return false;
                };
                let (from, to): (&[HoldState], HoldState) = match c {
                    Cmd::Accept(_) => (&[HoldState::Open], HoldState::Accepted),
                    Cmd::Settle(_) => (&[HoldState::Accepted], HoldState::Settled),
                    _ => (&[HoldState::Open, HoldState::Accepted], HoldState::Canceled),
                };
                if !inv.4.is_some_and(|s| from.contains(&s)) || inv.1 != InvoiceStatus::Unpaid {
                    return false;
                }
                *updated += 1;
                inv.4 = Some(to);
                match to {
                    HoldState::Settled => {
                        *pay += 1;
                        inv.1 = InvoiceStatus::Paid;
                        inv.3 = Some(*pay);
                    }
                    HoldState::Canceled => inv.1 = InvoiceStatus::Expired,
                    _ => {}
                }
            }
            Cmd::Delete(i, s) => {
                let want = [
                    InvoiceStatus::Unpaid,
                    InvoiceStatus::Paid,
                    InvoiceStatus::Expired,
                ][usize::from(*s)];
                match self.invoices.get(&u64::from(*i)) {
                    Some(inv) if inv.1 == want => {}
                    _ => return false,
                }
                self.invoices.remove(&u64::from(*i));
                *deleted += 1;
            }
            Cmd::RemoveDescription(i) => {
                let Some(inv) = self.invoices.get_mut(&u64::from(*i)) else {
                    return false;
                };
                if inv.2 {
                    return false;
                }
                inv.2 = true;
                *updated += 1;
            }
            Cmd::OpenChannel(_) | Cmd::UpdateChannel(_) | Cmd::CloseChannel(_) | Cmd::Restart => {}
        }
        true
    }

    /// The same view of a projection.
    fn of(p: &Projections) -> Model {
        let b = &p.invoices;
        let invoices = b
            .from_created_index(CreatedIndex(0))
            .map(|e| {
                let view = (
                    e.label.to_string(),
                    e.status,
                    e.description_removed,
                    e.payment.as_ref().map(|p| p.pay_index.get()),
                    e.hold_state(),
                );
                (e.created_index.get(), view)
            })
            .collect();
        let hashes_ever = BTreeSet::new();
        Model {
            invoices,
            hashes_ever,
            counters: [
                b.last_created_index().get(),
                b.last_pay_index().get(),
                b.last_updated_index().get(),
                b.last_deleted_index().get(),
            ],
        }
    }
}

fn replay_until(storage: &dyn Storage, n: u64) -> Projections {
    let engine = storage.open_read_only().unwrap();
    let mut p = Projections::new();
    engine
        .scan(Column::Events, &[], &mut |_, v| {
            let rec = decode_record(v).unwrap();
            if rec.seq > n {
                return false;
            }
            p.apply(&rec, record_hash(v)).unwrap();
            true
        })
        .unwrap();
    p
}

/// The property on one storage; `storage()` gives the same log at every call.
fn live_state_equals_replay_on(
    cmds: &[Cmd],
    storage: impl Fn() -> Arc<dyn Storage>,
) -> Result<(), TestCaseError> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let clock = Arc::new(FixedClock(1_000));
    let open = || {
        EventLog::open_on(
            storage(),
            Network::Regtest,
            clock.clone(),
            LogOptions {
                min_free_bytes: 0,
                ..LogOptions::default()
            },
        )
        .unwrap()
    };
    let mut log = open();
    let mut after: BTreeMap<u64, Projections> = BTreeMap::new();
    let mut model = Model::default();
    for c in cmds {
        if matches!(c, Cmd::Restart) {
            let before = log.state().read().unwrap().clone();
            log.close();
            log = open();
            let reopened = log.state().read().unwrap().clone();
            prop_assert_eq!(reopened, before, "restart changed the state");
            continue;
        }
        let proposal = {
            let s = log.state();
            let s = s.read().unwrap();
            to_proposal(c, &s)
        };
        let Some(proposal) = proposal else { continue };
        // The model says whether the log must accept it; what was committed must replay.
        let accepted = rt.block_on(log.handle().append(proposal)).is_ok();
        prop_assert_eq!(
            accepted,
            model.apply(c),
            "the log and the rules disagree on {:?}",
            c
        );
        if accepted {
            let s = log.state().read().unwrap().clone();
            after.insert(s.head().0, s);
        }
    }
    let live = log.state().read().unwrap().clone();
    let seen = Model {
        hashes_ever: BTreeSet::new(),
        ..std::mem::take(&mut model)
    };
    prop_assert_eq!(
        Model::of(&live),
        seen,
        "the projection is not what the rules say"
    );
    log.close();
    prop_assert_eq!(
        replay(storage().open_read_only().unwrap().as_ref()).unwrap(),
        live.clone()
    );
    for (n, state) in &after {
        prop_assert_eq!(
            &replay_until(storage().as_ref(), *n),
            state,
            "replay --until {}",
            n
        );
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    #[test]
    fn live_state_equals_replay_in_memory(cmds in proptest::collection::vec(cmd(), 1..40)) {
        let memory = MemStorage::new();
        live_state_equals_replay_on(&cmds, || Arc::new(memory.clone()))?;
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 16, ..ProptestConfig::default() })]

    #[test]
    fn live_state_equals_replay_on_rocksdb(cmds in proptest::collection::vec(cmd(), 1..40)) {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("events");
        live_state_equals_replay_on(&cmds, || Arc::new(RocksStorage::new(&path)))?;
    }
}
