//! Core Lightning's route-hint policy, as pure functions over the known channels.
//!
//! [`assess`] filters the channels into the candidate pool the way `lightningd/routehint.c`
//! does (reference §4.2) and keeps, for every channel, why it is or is not a candidate.
//! [`select`] picks the hints (§4.4): a weighted random single channel when the node has an
//! announced channel, else — or when no single channel suffices — round-robin over the pool.
//! Randomness comes in as one uniform draw, so tests and replays are deterministic.
//!
//! Deliberate differences from Core Lightning: capacity is capped by the peer's exact `htlc_maximum_msat`
//! (no 16-bit float rounding), and a channel with zero usable capacity is not a candidate unless
//! it was named in `exposeprivatechannels`.

use std::collections::{BTreeMap, HashMap};

use invoiced_events::{
    ChannelInfo, ChannelKey, ExposePrivateChannels, Msat, RouteHintHop, ShortChannelId, Warning,
};

/// Capacities gathered while filtering candidates, msat.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CapacityTally {
    /// Usable by the chosen pool.
    pub avail: u64,
    /// Held by offline peers.
    pub offline: u64,
    /// Held by dead-end peers.
    pub deadend: u64,
    /// Held by private channels left out.
    pub private_unused: u64,
}

impl CapacityTally {
    /// The warnings Core Lightning gives for `needed` msat with these capacities (without
    /// `warning_mpp`, which depends on the selection).
    pub fn warnings(&self, needed: u64) -> Vec<Warning> {
        let mut out = Vec::new();
        let with_offline = self.avail.saturating_add(self.offline);
        let with_deadend = with_offline.saturating_add(self.deadend);
        let total = with_deadend.saturating_add(self.private_unused);
        if needed >= total {
            out.push(Warning::Capacity);
        }
        if needed > self.avail {
            if with_offline >= needed {
                out.push(Warning::Offline);
            } else if with_deadend >= needed {
                out.push(Warning::Deadends);
            } else if total >= needed {
                out.push(Warning::PrivateUnused);
            }
        }
        out
    }
}

/// Why a channel is not a hint candidate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Exclusion {
    /// The peer sent no channel_update towards us.
    NoPeerUpdate,
    /// The channel's state cannot take HTLCs.
    State(String),
    /// Not among the channels named in `exposeprivatechannels`.
    NotNamed,
    /// Nobody else can route to the peer.
    DeadEnd,
    /// The peer is not connected.
    Offline,
    /// No scid usable in a hint yet (alias channel without a remote alias, or no scid).
    NoUsableScid,
    /// Nothing can be received on it now.
    ZeroCapacity,
    /// Unannounced, and the node has announced channels (or `exposeprivatechannels=false`).
    PrivateHidden,
}

impl Exclusion {
    /// A short machine-readable reason.
    pub fn code(&self) -> &'static str {
        match self {
            Exclusion::NoPeerUpdate => "no_peer_update",
            Exclusion::State(_) => "state",
            Exclusion::NotNamed => "not_named",
            Exclusion::DeadEnd => "dead_end",
            Exclusion::Offline => "offline",
            Exclusion::NoUsableScid => "no_usable_scid",
            Exclusion::ZeroCapacity => "zero_capacity",
            Exclusion::PrivateHidden => "private_hidden",
        }
    }

    /// A sentence for people.
    pub fn explain(&self) -> String {
        match self {
            Exclusion::NoPeerUpdate => "the peer has sent no channel_update towards us".into(),
            Exclusion::State(s) => format!("state {s} cannot receive payments"),
            Exclusion::NotNamed => "not named in exposeprivatechannels".into(),
            Exclusion::DeadEnd => "the peer is a dead end: nobody else can route to it".into(),
            Exclusion::Offline => "the peer is not connected".into(),
            Exclusion::NoUsableScid => {
                "no short channel id or remote alias to put in a hint yet".into()
            }
            Exclusion::ZeroCapacity => "no incoming capacity".into(),
            Exclusion::PrivateHidden => "unannounced, and private channels are not exposed".into(),
        }
    }
}

/// One channel's verdict.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verdict<'a> {
    /// The channel.
    pub channel: &'a ChannelInfo,
    /// What it can receive in one HTLC now: receivable capped by the peer's htlc maximum.
    pub capacity_msat: u64,
    /// `None` when it is in the candidate pool.
    pub excluded: Option<Exclusion>,
}

/// A channel in the pool.
#[derive(Clone, Copy, Debug)]
pub struct Candidate<'a> {
    /// The channel.
    pub channel: &'a ChannelInfo,
    /// Usable capacity, msat.
    pub capacity_msat: u64,
    /// The scid written into the hint.
    pub hint_scid: ShortChannelId,
}

impl Candidate<'_> {
    /// The hint for this channel.
    pub fn hop(&self) -> RouteHintHop {
        let policy = self.channel.remote_policy.as_ref();
        RouteHintHop {
            node_id: self.channel.peer_id,
            short_channel_id: self.hint_scid,

            fee_base_msat: policy.map_or(0, |p| p.fee_base_msat),
            fee_proportional_millionths: policy.map_or(0, |p| p.fee_proportional_millionths),
            cltv_expiry_delta: policy.map_or(0, |p| p.cltv_expiry_delta),
        }
    }
}

/// The filtered channels.
#[derive(Clone, Debug, Default)]
pub struct Assessment<'a> {
    /// The pool hints are chosen from.
    pub pool: Vec<Candidate<'a>>,
    /// Capacities for the warnings.
    pub tally: CapacityTally,
    /// Whether any usable-state channel is announced.
    pub has_public: bool,
    /// Every channel with its verdict, in the order given.
    pub verdicts: Vec<Verdict<'a>>,
}

fn hint_scid(c: &ChannelInfo) -> Option<ShortChannelId> {
    // Alias channels must use the peer's alias; others use it when unannounced or unconfirmed.
    if c.scid_alias_only
        || (c.alias_remote.is_some() && (c.private || c.short_channel_id.is_none()))
    {
        c.alias_remote
    } else {
        c.short_channel_id
    }
}

/// Filters `channels` into the candidate pool for `expose`.
pub fn assess<'a>(
    channels: impl IntoIterator<Item = &'a ChannelInfo>,
    expose: &ExposePrivateChannels,
) -> Assessment<'a> {
    let named = match expose {
        ExposePrivateChannels::Only(list) => Some(list.as_slice()),
        _ => None,
    };
    let force_public = matches!(
        expose,
        ExposePrivateChannels::Always | ExposePrivateChannels::Only(_)
    );
    let mut a = Assessment::default();
    let mut private = PrivateCandidates::default();
    for channel in channels {
        let (verdict, candidate) = judge(channel, named, &mut a);
        let idx = a.verdicts.len();
        a.verdicts.push(verdict);
        let Some(candidate) = candidate else {
            continue;
        };
        if !channel.private || force_public {
            a.tally.avail = a.tally.avail.saturating_add(candidate.capacity_msat);
            a.pool.push(candidate);
        } else {
            private.capacity = private.capacity.saturating_add(candidate.capacity_msat);
            private.candidates.push((idx, candidate));
        }
    }
    private.place(&mut a, expose);
    a
}

/// One channel's verdict, and the candidate it makes when it is not excluded. Counts what it
/// tells the assessment: whether the node has an announced channel, and the capacity of
/// dead-end and offline peers.
fn judge<'a>(
    channel: &'a ChannelInfo,
    named: Option<&[ShortChannelId]>,
    a: &mut Assessment<'a>,
) -> (Verdict<'a>, Option<Candidate<'a>>) {
    let refused = |why| {
        let verdict = Verdict {
            channel,
            capacity_msat: 0,
            excluded: Some(why),
        };
        (verdict, None)
    };
    let Some(policy) = &channel.remote_policy else {
        return refused(Exclusion::NoPeerUpdate);
    };
    if !channel.usable_state() {
        return refused(Exclusion::State(channel.state.clone()));
    }
    let capacity = channel
        .receivable_msat
        .min(policy.htlc_maximum_msat)
        .as_msat();
    a.has_public |= !channel.private;
    let scid = hint_scid(channel);
    let excluded = unreachable(channel, capacity, named, &mut a.tally)
        .or_else(|| scid.is_none().then_some(Exclusion::NoUsableScid))
        .or_else(|| (capacity == 0 && named.is_none()).then_some(Exclusion::ZeroCapacity));
    let candidate = match (&excluded, scid) {
        (None, Some(hint_scid)) => Some(Candidate {
            channel,
            capacity_msat: capacity,
            hint_scid,
        }),
        _ => None,
    };
    let verdict = Verdict {
        channel,
        capacity_msat: capacity,
        excluded,
    };
    (verdict, candidate)
}

/// Why payments cannot reach us through `channel`, if they cannot: not among the `named`
/// channels, a dead-end peer, an offline peer. Dead-end and offline capacity is counted into
/// `tally`.
fn unreachable(
    channel: &ChannelInfo,
    capacity: u64,
    named: Option<&[ShortChannelId]>,
    tally: &mut CapacityTally,
) -> Option<Exclusion> {
    let excluded = if let Some(list) = named {
        let is_named = channel.listed_scid().is_some_and(|s| list.contains(&s))
            || channel.alias_remote.is_some_and(|s| list.contains(&s));
        (!is_named).then_some(Exclusion::NotNamed)
    } else if channel.incoming_capacity_msat == Some(Msat::ZERO) {
        tally.deadend = tally.deadend.saturating_add(capacity);
        Some(Exclusion::DeadEnd)
    } else {
        None
    };
    excluded.or_else(|| {
        if !channel.peer_connected {
            tally.offline = tally.offline.saturating_add(capacity);
            return Some(Exclusion::Offline);
        }
        None
    })
}

/// Candidates on unannounced channels, set aside while the channels are judged.
#[derive(Default)]
struct PrivateCandidates<'a> {
    /// Each with the index of its verdict.
    candidates: Vec<(usize, Candidate<'a>)>,
    /// Their capacity, msat.
    capacity: u64,
}

impl<'a> PrivateCandidates<'a> {
    /// They are the pool when `expose` is unset and nothing else is (no candidate, no announced
    /// channel); else they are hidden, their capacity counted as unused.
    fn place(self, a: &mut Assessment<'a>, expose: &ExposePrivateChannels) {
        if matches!(expose, ExposePrivateChannels::Unset) && a.pool.is_empty() && !a.has_public {
            a.tally.avail = self.capacity;
            a.pool = self.candidates.into_iter().map(|(_, c)| c).collect();
        } else {
            a.tally.private_unused = self.capacity;
            for (idx, _) in self.candidates {
                a.verdicts[idx].excluded = Some(Exclusion::PrivateHidden);
            }
        }
    }
}

/// Round-robin order of channels for the multi-hint fallback (in memory, as in Core Lightning).
#[derive(Clone, Debug, Default)]
pub struct RoundRobin {
    turn: HashMap<ChannelKey, u64>,
    order: BTreeMap<u64, ChannelKey>,
    next: u64,
}

impl RoundRobin {
    /// Gives a newly seen channel its turn, at the back.
    pub fn register(&mut self, key: &ChannelKey) {
        if !self.turn.contains_key(key) {
            self.move_to_back(key);
        }
    }

    /// Forgets a closed channel.
    pub fn forget(&mut self, key: &ChannelKey) {
        if let Some(t) = self.turn.remove(key) {
            self.order.remove(&t);
        }
    }

    fn move_to_back(&mut self, key: &ChannelKey) {
        if let Some(old) = self.turn.insert(key.clone(), self.next) {
            self.order.remove(&old);
        }
        self.order.insert(self.next, key.clone());
        self.next += 1;
    }
}

/// A candidate pool ready for selection: owned, sorted by capacity (largest first), with prefix
/// sums that make the weighted single pick O(log n). Built once per channel change and policy.
#[derive(Clone, Debug, Default)]
pub struct Pool {
    entries: Vec<PoolEntry>,
    by_key: HashMap<ChannelKey, usize>,
    /// `capacity_sums[k]` = Σ (capacity + 1) / size over the first k entries.
    capacity_sums: Vec<f64>,
    /// `inverse_size_sums[k]` = Σ 1 / size over the first k entries.
    inverse_size_sums: Vec<f64>,
    tally: CapacityTally,
    has_public: bool,
}

#[derive(Clone, Debug)]
struct PoolEntry {
    key: ChannelKey,
    hop: RouteHintHop,
    capacity: u64,
}

impl Pool {
    /// The pool of an assessment.
    pub fn new(assessment: &Assessment<'_>) -> Pool {
        let mut entries: Vec<(PoolEntry, f64)> = assessment
            .pool
            .iter()
            .map(|c| {
                let ch = c.channel;
                let size = ch
                    .total_msat
                    .saturating_sub(ch.our_reserve_msat)
                    .saturating_sub(ch.their_reserve_msat)
                    .as_msat()
                    .max(1);
                (
                    PoolEntry {
                        key: ch.key.clone(),
                        hop: c.hop(),
                        capacity: c.capacity_msat,
                    },
                    size as f64,
                )
            })
            .collect();
        entries.sort_by_key(|e| core::cmp::Reverse(e.0.capacity));
        let (mut capacity_sums, mut inverse_size_sums) = (vec![0.0], vec![0.0]);
        for (e, size) in &entries {
            capacity_sums
                .push(capacity_sums[capacity_sums.len() - 1] + (e.capacity as f64 + 1.0) / size);
            inverse_size_sums.push(inverse_size_sums[inverse_size_sums.len() - 1] + 1.0 / size);
        }
        let entries: Vec<PoolEntry> = entries.into_iter().map(|(e, _)| e).collect();
        let by_key = entries
            .iter()
            .enumerate()
            .map(|(i, e)| (e.key.clone(), i))
            .collect();
        Pool {
            entries,
            by_key,
            capacity_sums,
            inverse_size_sums,
            tally: assessment.tally,
            has_public: assessment.has_public,
        }
    }

    /// Whether no channel is a candidate.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Whether the node has an announced channel (the single pick applies).
    pub fn has_public(&self) -> bool {
        self.has_public
    }

    /// Cumulative weight of the first `k` entries for `needed`.
    fn weight_prefix(&self, k: usize, needed: f64) -> f64 {
        self.capacity_sums[k] - needed * self.inverse_size_sums[k]
    }

    /// Weighted single pick among the channels that can take `needed` alone: each with
    /// probability (capacity − needed + 1) / size over the sum of those weights.
    fn single_pick(&self, needed: u64, draw: f64) -> Option<&PoolEntry> {
        let eligible = self.entries.partition_point(|e| e.capacity >= needed);
        if eligible == 0 {
            return None;
        }
        let n = needed as f64;
        let target = draw * self.weight_prefix(eligible, n);
        // The first entry whose cumulative weight passes the target.
        let (mut lo, mut hi) = (0usize, eligible - 1);
        while lo < hi {
            let mid = (lo + hi) / 2;
            if self.weight_prefix(mid + 1, n) > target {
                hi = mid;
            } else {
                lo = mid + 1;
            }
        }
        self.entries.get(lo)
    }
}

/// The chosen hints and the warnings that go with them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HintChoice {
    /// One hop each, in the order they go into the invoice.
    pub hints: Vec<RouteHintHop>,
    /// Warnings, in Core Lightning's emission order.
    pub warnings: Vec<Warning>,
}

/// Chooses hints for `needed` msat from a pool; `draw` is a uniform value in `[0, 1)`.
pub fn select(pool: &Pool, needed: u64, draw: f64, rr: &mut RoundRobin) -> HintChoice {
    let mut hints = Vec::new();
    if pool.has_public {
        if let Some(e) = pool.single_pick(needed, draw) {
            hints.push(e.hop.clone());
        }
    }
    let mut mpp = false;
    if hints.is_empty() && !pool.is_empty() {
        let mut chosen = Vec::new();
        let mut gathered = 0u64;
        for key in rr.order.values() {
            let Some(&i) = pool.by_key.get(key) else {
                continue;
            };
            let e = &pool.entries[i];
            chosen.push(i);
            gathered = gathered.saturating_add(e.capacity);
            if gathered >= needed {
                break;
            }
        }
        for i in chosen {
            let e = &pool.entries[i];
            hints.push(e.hop.clone());
            rr.move_to_back(&e.key);
        }
        mpp = hints.len() > 1;
    }
    let mut warnings = pool.tally.warnings(needed);
    if mpp {
        warnings.push(Warning::Mpp);
    }
    warnings.sort_by_key(|w| Warning::EMIT_ORDER.iter().position(|o| o == w));
    HintChoice { hints, warnings }
}

#[cfg(test)]
mod tests {
    use super::*;
    use invoiced_events::PeerPolicy;

    fn scid(s: &str) -> ShortChannelId {
        s.parse().unwrap()
    }

    fn channel(n: u8, receivable: u64) -> ChannelInfo {
        ChannelInfo {
            key: ChannelKey::ChannelId([n; 32]),
            peer_id: {
                let mut p = [2u8; 33];
                p[32] = n;
                invoiced_events::NodeId(p)
            },
            peer_connected: true,
            state: "CHANNELD_NORMAL".into(),
            short_channel_id: Some(ShortChannelId::new(100 + u32::from(n), 1, 0).unwrap()),
            alias_local: None,
            alias_remote: None,
            private: false,
            scid_alias_only: false,
            total_msat: Msat(2_000_000),
            to_us_msat: Msat(2_000_000 - receivable),
            receivable_msat: Msat(receivable),
            our_reserve_msat: Msat(0),
            their_reserve_msat: Msat(0),
            remote_policy: Some(PeerPolicy {
                fee_base_msat: 1,
                fee_proportional_millionths: 10,
                cltv_expiry_delta: 6,
                htlc_minimum_msat: Msat(0),
                htlc_maximum_msat: Msat(u64::MAX),
            }),
            incoming_capacity_msat: None,
        }
    }

    fn choose(chs: &[ChannelInfo], needed: u64, expose: ExposePrivateChannels) -> HintChoice {
        let a = assess(chs, &expose);
        let mut rr = RoundRobin::default();
        chs.iter().for_each(|c| rr.register(&c.key));
        select(&Pool::new(&a), needed, 0.5, &mut rr)
    }

    #[test]
    fn warning_precedence() {
        let t = CapacityTally {
            avail: 10,
            offline: 5,
            deadend: 100,
            private_unused: 0,
        };
        assert_eq!(t.warnings(12), vec![Warning::Offline]);
        assert_eq!(t.warnings(50), vec![Warning::Deadends]);
        assert_eq!(t.warnings(10), Vec::<Warning>::new());
        assert_eq!(t.warnings(115), vec![Warning::Capacity, Warning::Deadends]);
        let p = CapacityTally {
            avail: 0,
            offline: 0,
            deadend: 0,
            private_unused: 50,
        };
        assert_eq!(p.warnings(20), vec![Warning::PrivateUnused]);
        assert_eq!(
            CapacityTally::default().warnings(1),
            vec![Warning::Capacity]
        );
    }

    #[test]
    fn one_public_channel_gives_one_hint_with_peer_fees() {
        let c = choose(
            &[channel(1, 500_000)],
            123_456,
            ExposePrivateChannels::Unset,
        );
        assert_eq!(c.warnings, vec![]);
        assert_eq!(c.hints.len(), 1);
        assert_eq!(
            (
                c.hints[0].fee_base_msat,
                c.hints[0].fee_proportional_millionths,
                c.hints[0].cltv_expiry_delta
            ),
            (1, 10, 6)
        );
        assert_eq!(c.hints[0].short_channel_id, scid("101x1x0"));
    }

    #[test]
    fn htlc_maximum_caps_capacity_exactly() {
        let mut ch = channel(1, 900_000);
        ch.remote_policy.as_mut().unwrap().htlc_maximum_msat = Msat(400_000);
        assert_eq!(
            choose(
                std::slice::from_ref(&ch),
                400_000,
                ExposePrivateChannels::Unset
            )
            .warnings,
            vec![Warning::Capacity]
        );
        assert_eq!(
            choose(
                std::slice::from_ref(&ch),
                399_999,
                ExposePrivateChannels::Unset
            )
            .warnings,
            vec![]
        );
        assert_eq!(
            choose(&[ch], 400_001, ExposePrivateChannels::Unset).warnings,
            vec![Warning::Capacity]
        );
    }

    #[test]
    fn two_small_channels_give_two_hints_and_mpp() {
        let c = choose(
            &[channel(1, 60_000), channel(2, 60_000)],
            100_000,
            ExposePrivateChannels::Unset,
        );
        assert_eq!(c.hints.len(), 2);
        assert_eq!(c.warnings, vec![Warning::Mpp]);
    }

    #[test]
    fn round_robin_rotates() {
        let chs = [channel(1, 60_000), channel(2, 60_000), channel(3, 60_000)];
        let pool = Pool::new(&assess(&chs, &ExposePrivateChannels::Unset));
        let mut rr = RoundRobin::default();
        chs.iter().for_each(|c| rr.register(&c.key));
        let first = select(&pool, 100_000, 0.5, &mut rr);
        let second = select(&pool, 100_000, 0.5, &mut rr);
        assert_eq!(first.hints[0].node_id, chs[0].peer_id);
        assert_eq!(first.hints[1].node_id, chs[1].peer_id);
        assert_eq!(second.hints[0].node_id, chs[2].peer_id);
        assert_eq!(second.hints[1].node_id, chs[0].peer_id);
    }

    #[test]
    fn private_only_node_uses_its_private_channel_by_alias() {
        let mut ch = channel(1, 500_000);
        ch.private = true;
        ch.alias_remote = Some(scid("1x2x3"));
        let c = choose(
            std::slice::from_ref(&ch),
            123_456,
            ExposePrivateChannels::Unset,
        );
        assert_eq!(c.hints.len(), 1);
        assert_eq!(c.hints[0].short_channel_id, scid("1x2x3"));
        let never = choose(
            std::slice::from_ref(&ch),
            123_456,
            ExposePrivateChannels::Never,
        );
        assert_eq!(
            (never.hints.len(), never.warnings.clone()),
            (0, vec![Warning::PrivateUnused])
        );
        let named = choose(
            std::slice::from_ref(&ch),
            123_456,
            ExposePrivateChannels::Only(vec![scid("101x1x0")]),
        );
        assert_eq!(named.hints.len(), 1);
        let by_alias = choose(
            &[ch],
            123_456,
            ExposePrivateChannels::Only(vec![scid("1x2x3")]),
        );
        assert_eq!(by_alias.hints.len(), 1);
    }

    #[test]
    fn public_node_hides_private_channels_unless_exposed() {
        let mut dead = channel(1, 500_000);
        dead.incoming_capacity_msat = Some(Msat(0));
        let mut private = channel(2, 500_000);
        private.private = true;
        let chs = [dead, private];
        let c = choose(&chs, 100_000, ExposePrivateChannels::Unset);
        assert_eq!(
            (c.hints.len(), c.warnings.clone()),
            (0, vec![Warning::Deadends])
        );
        let a = assess(&chs, &ExposePrivateChannels::Unset);
        assert_eq!(a.verdicts[1].excluded, Some(Exclusion::PrivateHidden));
        let c = choose(&chs, 100_000, ExposePrivateChannels::Always);
        assert_eq!(c.hints.len(), 1);
        assert_eq!(c.hints[0].node_id, chs[1].peer_id);
        // A named dead end is used.
        let c = choose(
            &chs,
            100_000,
            ExposePrivateChannels::Only(vec![scid("101x1x0")]),
        );
        assert_eq!((c.hints.len(), c.warnings), (1, vec![]));
    }

    #[test]
    fn offline_onchain_and_alias_rules() {
        let mut off = channel(1, 500_000);
        off.peer_connected = false;
        let c = choose(
            std::slice::from_ref(&off),
            100_000,
            ExposePrivateChannels::Unset,
        );
        assert_eq!((c.hints.len(), c.warnings), (0, vec![Warning::Offline]));
        let mut onchain = channel(2, 500_000);
        onchain.state = "ONCHAIN".into();
        let c = choose(
            std::slice::from_ref(&onchain),
            100_000,
            ExposePrivateChannels::Unset,
        );
        assert_eq!((c.hints.len(), c.warnings), (0, vec![Warning::Capacity]));
        let mut zeroconf = channel(3, 500_000);
        zeroconf.scid_alias_only = true;
        zeroconf.private = true;
        zeroconf.short_channel_id = Some(scid("555x1x0"));
        zeroconf.alias_remote = Some(scid("9x9x9"));
        let c = choose(
            std::slice::from_ref(&zeroconf),
            100_000,
            ExposePrivateChannels::Unset,
        );
        assert_eq!(c.hints[0].short_channel_id, scid("9x9x9"));
        zeroconf.alias_remote = None;
        let a = assess(
            std::slice::from_ref(&zeroconf),
            &ExposePrivateChannels::Unset,
        );
        assert_eq!(a.verdicts[0].excluded, Some(Exclusion::NoUsableScid));
        let mut no_update = channel(4, 500_000);
        no_update.remote_policy = None;
        let a = assess(
            std::slice::from_ref(&no_update),
            &ExposePrivateChannels::Unset,
        );
        assert_eq!(
            (a.verdicts[0].excluded.clone(), a.tally),
            (Some(Exclusion::NoPeerUpdate), CapacityTally::default())
        );
    }

    #[test]
    fn named_unknown_scid_leaves_an_empty_pool() {
        let chs = [channel(1, 500_000)];
        let a = assess(&chs, &ExposePrivateChannels::Only(vec![scid("999x1x0")]));
        assert!(a.pool.is_empty());
    }

    #[test]
    fn weighted_pick_favours_spare_capacity() {
        // Two 2,000,000 msat channels; needed 800,000: spare 25% vs 50% of the needed amount.
        let chs = [channel(1, 1_000_000), channel(2, 1_200_000)];
        let pool = Pool::new(&assess(&chs, &ExposePrivateChannels::Unset));
        let mut rr = RoundRobin::default();
        let mut source = crate::entropy::SeededEntropy(42);
        let mut counts = [0u32; 2];
        for _ in 0..20_000 {
            let draw = crate::entropy::EntropySource::unit(&mut source);
            let c = select(&pool, 800_000, draw, &mut rr);
            let i = chs
                .iter()
                .position(|ch| ch.peer_id == c.hints[0].node_id)
                .unwrap();
            counts[i] += 1;
        }
        // weights (200,001) : (400,001) ≈ 1 : 2
        let ratio = f64::from(counts[1]) / f64::from(counts[0]);
        assert!((1.85..2.15).contains(&ratio), "ratio {ratio} ({counts:?})");
    }

    #[test]
    fn prefix_pick_matches_a_linear_walk() {
        let chs: Vec<ChannelInfo> = (1..=40)
            .map(|n| channel(n, 10_000 * u64::from(n)))
            .collect();
        let pool = Pool::new(&assess(&chs, &ExposePrivateChannels::Unset));
        let needed = 95_000u64;
        let eligible: Vec<&ChannelInfo> = chs
            .iter()
            .filter(|c| c.receivable_msat >= Msat(needed))
            .collect();
        let w = |c: &ChannelInfo| {
            (c.receivable_msat.as_msat() - needed + 1) as f64 / c.total_msat.as_msat() as f64
        };
        let mut by_cap = eligible.clone();
        by_cap.sort_by_key(|c| core::cmp::Reverse(c.receivable_msat));
        let total: f64 = by_cap.iter().map(|c| w(c)).sum();
        for i in 0..200 {
            let draw = f64::from(i) / 200.0;
            let mut target = draw * total;
            let mut want = by_cap[by_cap.len() - 1];
            for c in &by_cap {
                target -= w(c);
                if target < 0.0 {
                    want = c;
                    break;
                }
            }
            let got = select(&pool, needed, draw, &mut RoundRobin::default());
            assert_eq!(got.hints[0].node_id, want.peer_id, "draw {draw}");
        }
    }
}
