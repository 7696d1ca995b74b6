//! ChannelMonitor: the node's channels, and the route hints of each invoice.
//!
//! Owns the working copy of the channel set and the round-robin order. The node reports its
//! channels (`syncchannels`, `updatechannel`); the differences become channel events, appended
//! to the log as one batch, and the working copy changes only once they are durable — so it
//! always equals the channel projection that replay rebuilds. Channel events it did not make (a
//! standby's, stored from the primary) reach it with every committed batch. A sync runs as an atomic response:
//! no hint is chosen from a half-applied set. The policy itself is [`crate::policy::hints`].

use actix::prelude::*;
use invoiced_events::{ChannelBook, ChannelInfo, ChannelKey, Event, ExposePrivateChannels, Proposal};

use crate::entropy::EntropySource;
use crate::policy::hints::{assess, select, Exclusion, HintChoice, Pool, RoundRobin};
use crate::store::{AppendError, LogHandle, Observe};

/// None of the channels named in `exposeprivatechannels` can be used (902).
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("None of those hints were suitable local channels")]
pub struct NoSuitableHints;

/// The monitor.
pub struct ChannelMonitor {
    channels: ChannelBook,
    /// Pools for `exposeprivatechannels` unset / true / false, built on first use after a change.
    pools: [Option<Pool>; 3],
    round_robin: RoundRobin,
    entropy: Box<dyn EntropySource>,
    log: LogHandle,
}

impl ChannelMonitor {
    /// A monitor starting from the replayed channel set.
    pub fn new(channels: ChannelBook, log: LogHandle, entropy: Box<dyn EntropySource>) -> Self {
        let mut round_robin = RoundRobin::default();
        channels.iter().for_each(|c| round_robin.register(&c.key));
        ChannelMonitor { channels, pools: [None, None, None], round_robin, entropy, log }
    }

    /// Chooses hints for an invoice of `amount_msat` (`None` = any, counted as 1 msat).
    ///
    /// # Errors
    /// [`NoSuitableHints`] when channels were named and none of them is usable.
    pub fn choose(&mut self, amount_msat: Option<u64>, expose: &ExposePrivateChannels) -> Result<HintChoice, NoSuitableHints> {
        let needed = amount_msat.unwrap_or(1);
        let slot = match expose {
            ExposePrivateChannels::Unset => 0,
            ExposePrivateChannels::Always => 1,
            ExposePrivateChannels::Never => 2,
            ExposePrivateChannels::Only(list) => {
                let pool = Pool::new(&assess(self.channels.iter(), expose));
                if !list.is_empty() && pool.is_empty() {
                    return Err(NoSuitableHints);
                }
                let draw = if pool.has_public() { self.entropy.unit() } else { 0.0 };
                return Ok(select(&pool, needed, draw, &mut self.round_robin));
            }
        };
        let channels = &self.channels;
        let pool = self.pools[slot].get_or_insert_with(|| Pool::new(&assess(channels.iter(), expose)));
        let draw = if pool.has_public() { self.entropy.unit() } else { 0.0 };
        Ok(select(pool, needed, draw, &mut self.round_robin))
    }

    /// The changes that turn the known set into `reported` (`full`: channels not reported close).
    fn diff(&self, reported: &[ChannelInfo], full: bool) -> Vec<Proposal> {
        let mut changes = Vec::new();
        for info in reported {
            match self.channels.get(&info.key) {
                None => changes.push(Proposal::ChannelOpened(info.clone())),
                Some(known) if known != info => changes.push(Proposal::ChannelUpdated(info.clone())),
                Some(_) => {}
            }
        }
        if full {
            for known in self.channels.iter() {
                if !reported.iter().any(|r| r.key == known.key) {
                    changes.push(Proposal::ChannelClosed(known.key.clone()));
                }
            }
        }
        changes
    }

    fn apply(&mut self, events: &[Event]) {
        if !events.is_empty() {
            self.pools = [None, None, None];
        }
        for e in events {
            match e {
                Event::ChannelOpened(info) | Event::ChannelUpdated(info) => {
                    self.round_robin.register(&info.key);
                    self.channels.upsert(info);
                }
                Event::ChannelClosed(key) => {
                    self.round_robin.forget(key);
                    self.channels.remove(key);
                }
                _ => {}
            }
        }
    }
}

impl Actor for ChannelMonitor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        self.log.forward_to::<Observe>(ctx.address().recipient());
    }
}

/// Every committed batch: channel events this monitor did not append itself (a standby stores
/// the primary's) reach the working copy too. Its own are applied again, which changes nothing.
impl Handler<Observe> for ChannelMonitor {
    type Result = ();
    fn handle(&mut self, Observe(batch): Observe, _: &mut Context<Self>) {
        let channel_events: Vec<Event> = batch
            .iter()
            .filter(|c| matches!(c.record.event, Event::ChannelOpened(_) | Event::ChannelUpdated(_) | Event::ChannelClosed(_)))
            .map(|c| c.record.event.clone())
            .collect();
        self.apply(&channel_events);
    }
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

/// What a sync changed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SyncSummary {
    /// Channels new to us.
    pub opened: usize,
    /// Known channels that changed.
    pub updated: usize,
    /// Known channels no longer reported.
    pub closed: usize,
    /// Channels known afterwards.
    pub total: usize,
}

/// Command: the node's channels. With `full`, this is the whole list and missing ones closed;
/// without, an upsert of the given ones.
#[derive(Message)]
#[rtype(result = "Result<SyncSummary, AppendError>")]
pub struct SyncChannels {
    /// The reported channels (distinct keys, validated).
    pub channels: Vec<ChannelInfo>,
    /// Whether it is the whole list.
    pub full: bool,
}

impl Handler<SyncChannels> for ChannelMonitor {
    type Result = AtomicResponse<Self, Result<SyncSummary, AppendError>>;

    fn handle(&mut self, msg: SyncChannels, _: &mut Context<Self>) -> Self::Result {
        let changes = self.diff(&msg.channels, msg.full);
        let mut summary = SyncSummary::default();
        for c in &changes {
            match c {
                Proposal::ChannelOpened(_) => summary.opened += 1,
                Proposal::ChannelUpdated(_) => summary.updated += 1,
                Proposal::ChannelClosed(_) => summary.closed += 1,
                _ => {}
            }
        }
        let log = self.log.clone();
        // The working set changes by what was recorded, once it is durable.
        let append = async move {
            if changes.is_empty() {
                return Ok(Vec::new());
            }
            Ok(log.append_all(changes).await?.into_iter().map(|c| c.record.event).collect())
        };
        AtomicResponse::new(Box::pin(actix::fut::wrap_future::<_, Self>(append).map(
            move |res: Result<Vec<Event>, AppendError>, act, _| {
                let events = res?;
                act.apply(&events);
                Ok(SyncSummary { total: act.channels.len(), ..summary })
            },
        )))
    }
}

/// One channel as `listincoming` shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IncomingChannel {
    /// The channel.
    pub channel: ChannelInfo,
    /// Usable incoming capacity, msat.
    pub capacity_msat: u64,
    /// Why it is not a candidate, if it is not.
    pub excluded: Option<Exclusion>,
}

/// The monitor's view for `listincoming` (default policy, 1 msat).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IncomingView {
    /// Whether the node has an announced channel in a usable state.
    pub has_public: bool,
    /// Every known channel.
    pub channels: Vec<IncomingChannel>,
}

/// Query: every channel, with whether it would be a hint candidate and why not.
#[derive(Message)]
#[rtype(result = "IncomingView")]
pub struct ListIncoming;

impl Handler<ListIncoming> for ChannelMonitor {
    type Result = MessageResult<ListIncoming>;
    fn handle(&mut self, _: ListIncoming, _: &mut Context<Self>) -> Self::Result {
        let a = assess(self.channels.iter(), &ExposePrivateChannels::Unset);
        MessageResult(IncomingView {
            has_public: a.has_public,
            channels: a
                .verdicts
                .into_iter()
                .map(|v| IncomingChannel { channel: v.channel.clone(), capacity_msat: v.capacity_msat, excluded: v.excluded })
                .collect(),
        })
    }
}

/// A key reported twice in one sync.
pub fn duplicate_key(channels: &[ChannelInfo]) -> Option<&ChannelKey> {
    channels.iter().enumerate().find_map(|(i, c)| channels[..i].iter().any(|o| o.key == c.key).then_some(&c.key))
}
