//! ChannelMonitor: the node's channels, and the route hints of each invoice.
//!
//! Owns the working copy of the channel set and the round-robin order, kept in a
//! [`ChannelView`] that every arbiter's InvoiceCreator reads in place (a choice is a lookup in
//! pools built once per change, under a lock held for just that). The node reports its channels
//! (`syncchannels`, `updatechannel`) to the monitor; the differences become channel events,
//! appended to the log as one batch. The working copy is never changed by applying events
//! here: once a batch with channel events is durable (its own, or a standby's stored from the
//! primary), the view takes the channel set of the log's projection as it stands then, which
//! the writer folds in commit order. So the view always equals the channel projection that
//! replay rebuilds, and a notice of a batch that arrives late cannot bring an older set back. A
//! sync runs as an atomic response, and the view is changed under its lock: no hint is chosen
//! from a half-applied set. The policy itself is [`crate::policy::hints`].

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use actix::prelude::*;
use invoiced_events::{
    ChannelBook, ChannelInfo, ChannelKey, Event, ExposePrivateChannels, Msat, Proposal,
};

use crate::entropy::EntropySource;
use crate::policy::hints::{assess, select, Exclusion, HintChoice, Pool, RoundRobin};
use crate::store::{AppendError, LogHandle, Observe};
use crate::SharedState;

/// None of the channels named in `exposeprivatechannels` can be used (902).
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("None of those hints were suitable local channels")]
pub struct NoSuitableHints;

/// The working copy behind a [`ChannelView`].
struct Book {
    channels: ChannelBook,
    /// Pools for `exposeprivatechannels` unset / true / false, built on first use after a change.
    pools: [Option<Pool>; 3],
    round_robin: RoundRobin,
    entropy: Box<dyn EntropySource>,
}

/// The channel set and the hint choice, shared by the monitor (which changes it) and the
/// creators (which choose from it). Cloning gives another handle to the same set.
#[derive(Clone)]
pub struct ChannelView(Arc<Mutex<Book>>);

impl core::fmt::Debug for ChannelView {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("ChannelView")
            .field("channels", &self.book().channels.len())
            .finish()
    }
}

impl ChannelView {
    /// A view of the replayed channel set, drawing its weighted picks from `entropy`.
    pub fn new(channels: ChannelBook, entropy: Box<dyn EntropySource>) -> Self {
        let mut round_robin = RoundRobin::default();
        channels.iter().for_each(|c| round_robin.register(&c.key));
        ChannelView(Arc::new(Mutex::new(Book {
            channels,
            pools: [None, None, None],
            round_robin,
            entropy,
        })))
    }

    /// The book; a panic elsewhere while it was held left it whole (every change to it is one
    /// call that cannot fail half-way), so a poisoned lock is taken as it is.
    fn book(&self) -> MutexGuard<'_, Book> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Chooses hints for an invoice of `amount_msat` (`None` = any, counted as 1 msat).
    ///
    /// # Errors
    /// [`NoSuitableHints`] when channels were named and none of them is usable.
    pub fn choose(
        &self,
        amount_msat: Option<Msat>,
        expose: &ExposePrivateChannels,
    ) -> Result<HintChoice, NoSuitableHints> {
        let needed = amount_msat.map_or(1, Msat::as_msat);

        let mut guard = self.book();
        let book = &mut *guard;
        let slot = match expose {
            ExposePrivateChannels::Unset => 0,
            ExposePrivateChannels::Always => 1,
            ExposePrivateChannels::Never => 2,
            ExposePrivateChannels::Only(list) => {
                let pool = Pool::new(&assess(book.channels.iter(), expose));
                if !list.is_empty() && pool.is_empty() {
                    return Err(NoSuitableHints);
                }
                let draw = if pool.has_public() {
                    book.entropy.unit()
                } else {
                    0.0
                };
                return Ok(select(&pool, needed, draw, &mut book.round_robin));
            }
        };
        let channels = &book.channels;
        let pool =
            book.pools[slot].get_or_insert_with(|| Pool::new(&assess(channels.iter(), expose)));
        let draw = if pool.has_public() {
            book.entropy.unit()
        } else {
            0.0
        };
        Ok(select(pool, needed, draw, &mut book.round_robin))
    }

    /// How many channels are known.
    pub fn len(&self) -> usize {
        self.book().channels.len()
    }

    /// Whether no channel is known.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The changes that turn the known set into `reported` (`full`: channels not reported close).
    fn diff(&self, reported: &[ChannelInfo], full: bool) -> Vec<Proposal> {
        let book = self.book();
        let mut changes = Vec::new();
        for info in reported {
            match book.channels.get(&info.key) {
                None => changes.push(Proposal::ChannelOpened(info.clone())),
                Some(known) if known != info => {
                    changes.push(Proposal::ChannelUpdated(info.clone()))
                }
                Some(_) => {}
            }
        }
        if full {
            for known in book.channels.iter() {
                if !reported.iter().any(|r| r.key == known.key) {
                    changes.push(Proposal::ChannelClosed(known.key.clone()));
                }
            }
        }
        changes
    }

    /// Takes `current`, the channel set of the log's projection now. Registers new channels at
    /// the back of the round-robin order in key order (as a restart does) and forgets closed
    /// ones; nothing changes if the set is the same.
    fn follow(&self, current: &ChannelBook) {
        let mut guard = self.book();
        let book = &mut *guard;
        if book.channels == *current {
            return;
        }
        for gone in book
            .channels
            .iter()
            .filter(|c| current.get(&c.key).is_none())
        {
            book.round_robin.forget(&gone.key);
        }
        current
            .iter()
            .for_each(|c| book.round_robin.register(&c.key));
        book.channels = current.clone();
        book.pools = [None, None, None];
    }

    /// Every channel, with whether it would be a hint candidate by default and why not.
    fn incoming(&self) -> IncomingView {
        let book = self.book();
        let a = assess(book.channels.iter(), &ExposePrivateChannels::Unset);
        IncomingView {
            has_public: a.has_public,
            channels: a
                .verdicts
                .into_iter()
                .map(|v| IncomingChannel {
                    channel: v.channel.clone(),
                    capacity_msat: v.capacity_msat,
                    excluded: v.excluded,
                })
                .collect(),
        }
    }
}

/// The monitor: the one writer of the [`ChannelView`].
pub struct ChannelMonitor {
    view: ChannelView,
    log: LogHandle,
    state: SharedState,
}

impl ChannelMonitor {
    /// A monitor keeping `view` (made from the replayed channel set) in step with the log and
    /// its projection `state`.
    pub fn new(view: ChannelView, log: LogHandle, state: SharedState) -> Self {
        ChannelMonitor { view, log, state }
    }

    /// The view takes the projection's channel set as it is now.
    fn follow_log(&self) {
        match self.state.read() {
            Ok(state) => self.view.follow(&state.channels),
            Err(_) => tracing::error!("projection lock poisoned; the channel view keeps its set"),
        }
    }
}

impl Actor for ChannelMonitor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        self.log.forward_to::<Observe>(ctx.address().recipient());
    }
}

/// Every committed batch: one with channel events (this monitor's own, or a standby's stored
/// from the primary) brings the view to the projection's set.
impl Handler<Observe> for ChannelMonitor {
    type Result = ();
    fn handle(&mut self, Observe(batch): Observe, _: &mut Context<Self>) {
        let channels_changed = batch.iter().any(|c| {
            matches!(
                c.record.event,
                Event::ChannelOpened(_) | Event::ChannelUpdated(_) | Event::ChannelClosed(_)
            )
        });
        if channels_changed {
            self.follow_log();
        }
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
        let changes = self.view.diff(&msg.channels, msg.full);
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
            if !changes.is_empty() {
                log.append_all(changes).await?;
            }
            Ok(())
        };
        AtomicResponse::new(Box::pin(actix::fut::wrap_future::<_, Self>(append).map(
            move |res: Result<(), AppendError>, act, _| {
                res?;
                act.follow_log();
                Ok(SyncSummary {
                    total: act.view.len(),
                    ..summary
                })
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
        MessageResult(self.view.incoming())
    }
}

/// A key reported twice in one sync.
pub fn duplicate_key(channels: &[ChannelInfo]) -> Option<&ChannelKey> {
    channels.iter().enumerate().find_map(|(i, c)| {
        channels[..i]
            .iter()
            .any(|o| o.key == c.key)
            .then_some(&c.key)
    })
}
