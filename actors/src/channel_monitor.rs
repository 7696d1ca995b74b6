//! ChannelMonitor: the node's channels and the choice of route hints.
//!
//! Owns the channel set and Core Lightning's warning rules (reference §3): with `needed` the
//! amount (1 msat for `any`) and the capacities of the candidate pool, `warning_capacity` fires
//! when `needed >= total`, then at most one of offline / dead-ends / private-unused explains the
//! gap. The node has told us of no channels yet, so the set is empty: every invoice carries
//! `warning_capacity`, and a request naming channels gets 902.

use actix::prelude::*;
use invoiced_events::{ExposePrivateChannels, RouteHintHop, Warning};

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
    /// The warnings Core Lightning gives for `needed` msat with these capacities.
    pub fn warnings(&self, needed: u64) -> Vec<Warning> {
        let mut out = Vec::new();
        let total = self.avail.saturating_add(self.offline).saturating_add(self.deadend).saturating_add(self.private_unused);
        if needed >= total {
            out.push(Warning::Capacity);
        }
        if needed > self.avail {
            let with_offline = self.avail.saturating_add(self.offline);
            let with_deadend = with_offline.saturating_add(self.deadend);
            if with_offline >= needed {
                out.push(Warning::Offline);
            } else if with_deadend >= needed {
                out.push(Warning::Deadends);
            } else if with_deadend.saturating_add(self.private_unused) >= needed {
                out.push(Warning::PrivateUnused);
            }
        }
        out
    }
}

/// The hints chosen for one invoice and the warnings that go with them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HintChoice {
    /// One hop each, in the order they go into the invoice.
    pub hints: Vec<RouteHintHop>,
    /// Warnings, in Core Lightning's emission order.
    pub warnings: Vec<Warning>,
}

/// None of the channels named in `exposeprivatechannels` can be used (902).
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("None of those hints were suitable local channels")]
pub struct NoSuitableHints;

/// The channel monitor.
#[derive(Debug, Default)]
pub struct ChannelMonitor {}

impl ChannelMonitor {
    /// An empty monitor.
    pub fn new() -> Self {
        ChannelMonitor {}
    }

    /// Chooses hints for an invoice of `amount_msat` (`None` = any).
    ///
    /// # Errors
    /// [`NoSuitableHints`] when named channels gave no candidate.
    pub fn choose(&self, amount_msat: Option<u64>, expose: &ExposePrivateChannels) -> Result<HintChoice, NoSuitableHints> {
        let needed = amount_msat.unwrap_or(1);
        let tally = CapacityTally::default();
        let hints: Vec<RouteHintHop> = Vec::new();
        if matches!(expose, ExposePrivateChannels::Only(list) if !list.is_empty()) && hints.is_empty() {
            return Err(NoSuitableHints);
        }
        let mut warnings = tally.warnings(needed);
        warnings.sort_by_key(|w| Warning::EMIT_ORDER.iter().position(|o| o == w));
        Ok(HintChoice { hints, warnings })
    }
}

impl Actor for ChannelMonitor {
    type Context = Context<Self>;
}

/// Query: route hints for a new invoice.
#[derive(Message)]
#[rtype(result = "Result<HintChoice, NoSuitableHints>")]
pub struct GetRouteHints {
    /// Amount in msat, `None` for any.
    pub amount_msat: Option<u64>,
    /// The caller's `exposeprivatechannels`.
    pub expose: ExposePrivateChannels,
}

impl Handler<GetRouteHints> for ChannelMonitor {
    type Result = Result<HintChoice, NoSuitableHints>;
    fn handle(&mut self, msg: GetRouteHints, _: &mut Context<Self>) -> Self::Result {
        self.choose(msg.amount_msat, &msg.expose)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use invoiced_events::ShortChannelId;

    #[test]
    fn no_channels_always_warns_capacity() {
        let m = ChannelMonitor::new();
        for amount in [None, Some(1), Some(1_000_000)] {
            let c = m.choose(amount, &ExposePrivateChannels::Unset).unwrap();
            assert_eq!(c.warnings, vec![Warning::Capacity]);
            assert!(c.hints.is_empty());
        }
        let scid: ShortChannelId = "999x1x0".parse().unwrap();
        assert_eq!(m.choose(Some(1), &ExposePrivateChannels::Only(vec![scid])), Err(NoSuitableHints));
        assert!(m.choose(Some(1), &ExposePrivateChannels::Only(vec![])).is_ok());
    }

    #[test]
    fn warning_precedence() {
        let t = CapacityTally { avail: 10, offline: 5, deadend: 100, private_unused: 0 };
        assert_eq!(t.warnings(12), vec![Warning::Offline]);
        assert_eq!(t.warnings(50), vec![Warning::Deadends]);
        assert_eq!(t.warnings(10), Vec::<Warning>::new());
        assert_eq!(t.warnings(115), vec![Warning::Capacity, Warning::Deadends]);
        let p = CapacityTally { avail: 0, offline: 0, deadend: 0, private_unused: 50 };
        assert_eq!(p.warnings(20), vec![Warning::PrivateUnused]);
    }
}
