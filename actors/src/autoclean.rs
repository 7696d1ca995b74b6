//! The Autoclean actor: retention on Core Lightning's terms (`autoclean-*` options,
//! `autoclean-once`, `autoclean-status`).
//!
//! It owns the decision which old invoices to clean: paid ones whose `paid_at`, or expired ones
//! whose `expires_at`, is at least `age` seconds ago. Each becomes an `InvoiceCleaned` event —
//! the invoice leaves the projection (listings, lookups, memory) but never the log, takes a
//! `deleted_index` as Core Lightning's autoclean deletions do, and keeps its payment hash used.
//! The record carries the rule and the time, so the fold (and `invoiced audit`) checks every
//! clean against the invoice it removes; the writer's admission refuses one that raced with a
//! payment or a deletion, which is then simply not counted. Totals come from the log.
//!
//! With an age set, it cleans every `cycle` (default an hour), as Core Lightning's plugin does.

use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use invoiced_events::{CreatedIndex, InvoiceStatus, Proposal};

use crate::clock::Clock;
use crate::store::{AppendError, LogHandle};
use crate::SharedState;

/// Candidates gathered under one hold of the projection's read lock.
const SCAN_CHUNK: usize = 16_384;
/// Cleans proposed together (each its own request, so one refused takes no other with it).
const PROPOSE_CHUNK: usize = 1024;

/// What can be cleaned: Core Lightning's invoice subsystems of `autoclean`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Subsystem {
    /// `paidinvoices`: by `paid_at`.
    PaidInvoices,
    /// `expiredinvoices`: by `expires_at`.
    ExpiredInvoices,
}

impl Subsystem {
    /// Both, in Core Lightning's order.
    pub const ALL: [Subsystem; 2] = [Subsystem::PaidInvoices, Subsystem::ExpiredInvoices];

    /// The name in options and answers.
    pub fn name(self) -> &'static str {
        match self {
            Subsystem::PaidInvoices => "paidinvoices",
            Subsystem::ExpiredInvoices => "expiredinvoices",
        }
    }

    /// The subsystem called `name`.
    pub fn from_name(name: &str) -> Option<Subsystem> {
        Subsystem::ALL.into_iter().find(|s| s.name() == name)
    }

    fn status(self) -> InvoiceStatus {
        match self {
            Subsystem::PaidInvoices => InvoiceStatus::Paid,
            Subsystem::ExpiredInvoices => InvoiceStatus::Expired,
        }
    }
}

/// The `autoclean-*` options: an age of 0 means never.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AutocleanConfig {
    /// `autoclean-paidinvoices-age`, seconds.
    pub paid_age_s: u64,
    /// `autoclean-expiredinvoices-age`, seconds.
    pub expired_age_s: u64,
    /// `autoclean-cycle`, seconds.
    pub cycle_s: u64,
}

impl Default for AutocleanConfig {
    fn default() -> Self {
        AutocleanConfig {
            paid_age_s: 0,
            expired_age_s: 0,
            cycle_s: 3600,
        }
    }
}

impl AutocleanConfig {
    /// The age set for `subsystem` (0: never).
    pub fn age(&self, subsystem: Subsystem) -> u64 {
        match subsystem {
            Subsystem::PaidInvoices => self.paid_age_s,
            Subsystem::ExpiredInvoices => self.expired_age_s,
        }
    }
}

/// What one sweep of one subsystem did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CleanReport {
    /// Invoices cleaned.
    pub cleaned: u64,
    /// Invoices of the subsystem left because they are too new.
    pub uncleaned: u64,
}

/// One subsystem's line of `autoclean-status`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SubsystemStatus {
    /// Which.
    pub subsystem: Subsystem,
    /// Its age option (0: not enabled).
    pub age_s: u64,
    /// Invoices cleaned so far, by any sweep (from the log).
    pub cleaned: u64,
}

/// Query: clean `subsystem` once, of invoices at least `age_s` old (`autoclean-once`).
#[derive(Debug, Message)]
#[rtype(result = "Result<CleanReport, AppendError>")]
pub struct CleanOnce {
    /// What to clean.
    pub subsystem: Subsystem,
    /// How old, seconds (non-zero).
    pub age_s: u64,
}

/// Query: the settings and totals (`autoclean-status`).
#[derive(Debug, Message)]
#[rtype(result = "Vec<SubsystemStatus>")]
pub struct GetStatus;

/// Cleans old invoices on request and every cycle (see the module docs).
pub struct Autoclean {
    sweeper: Sweeper,
    config: AutocleanConfig,
}

impl Autoclean {
    /// An autoclean over the live projection, appending to `log`.
    pub fn new(
        state: SharedState,
        log: LogHandle,
        clock: Arc<dyn Clock>,
        config: AutocleanConfig,
    ) -> Self {
        Autoclean {
            sweeper: Sweeper { state, log, clock },
            config,
        }
    }
}

impl Actor for Autoclean {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        let enabled: Vec<(Subsystem, u64)> = Subsystem::ALL
            .into_iter()
            .map(|s| (s, self.config.age(s)))
            .filter(|&(_, age)| age != 0)
            .collect();
        if enabled.is_empty() {
            return;
        }
        ctx.run_interval(
            Duration::from_secs(self.config.cycle_s.max(1)),
            move |act, ctx| {
                let sweeper = act.sweeper.clone();
                let enabled = enabled.clone();
                ctx.spawn(
                    async move {
                        for (subsystem, age_s) in enabled {
                            match sweeper.clean(subsystem, age_s).await {
                                Ok(r) if r.cleaned > 0 => tracing::info!(
                                    "autoclean: cleaned {} {}",
                                    r.cleaned,
                                    subsystem.name()
                                ),
                                Ok(_) => {}
                                // A standby: the primary cleans.
                                Err(AppendError::Standby) => {}
                                Err(e) => {
                                    tracing::warn!("autoclean of {} failed: {e}", subsystem.name())
                                }
                            }
                        }
                    }
                    .into_actor(act),
                );
            },
        );
    }
}

impl Handler<CleanOnce> for Autoclean {
    type Result = ResponseFuture<Result<CleanReport, AppendError>>;

    fn handle(&mut self, msg: CleanOnce, _: &mut Self::Context) -> Self::Result {
        let sweeper = self.sweeper.clone();
        Box::pin(async move { sweeper.clean(msg.subsystem, msg.age_s).await })
    }
}

impl Handler<GetStatus> for Autoclean {
    type Result = MessageResult<GetStatus>;

    fn handle(&mut self, _: GetStatus, _: &mut Self::Context) -> Self::Result {
        let cleaned = self
            .sweeper
            .state
            .read()
            .map(|s| s.invoices.cleaned())
            .unwrap_or_default();
        MessageResult(
            Subsystem::ALL
                .into_iter()
                .map(|subsystem| SubsystemStatus {
                    subsystem,
                    age_s: self.config.age(subsystem),
                    cleaned: match subsystem {
                        Subsystem::PaidInvoices => cleaned.paid,
                        Subsystem::ExpiredInvoices => cleaned.expired,
                    },
                })
                .collect(),
        )
    }
}

/// The sweep itself, shared by the timer and `autoclean-once`.
#[derive(Clone)]
struct Sweeper {
    state: SharedState,
    log: LogHandle,
    clock: Arc<dyn Clock>,
}

impl Sweeper {
    /// Cleans the invoices of `subsystem` at least `age_s` old now.
    async fn clean(&self, subsystem: Subsystem, age_s: u64) -> Result<CleanReport, AppendError> {
        let now_s = self.clock.now_secs();
        let (doomed, uncleaned) = self.candidates(subsystem, age_s, now_s)?;
        let mut report = CleanReport {
            cleaned: 0,
            uncleaned,
        };
        let status = subsystem.status();
        for chunk in doomed.chunks(PROPOSE_CHUNK) {
            let proposals = chunk
                .iter()
                .map(|&created_index| Proposal::Cleaned {
                    created_index,
                    status,
                    age_s,
                    now_s,
                })
                .collect();
            for outcome in self.log.append_each(proposals).await {
                match outcome {
                    Ok(_) => report.cleaned += 1,
                    // Paid, deleted or cleaned meanwhile: not ours to count.
                    Err(AppendError::Rejected(_)) => {}
                    Err(e) => return Err(e),
                }
            }
        }
        Ok(report)
    }

    /// The `created_index`es old enough to clean, and how many of the subsystem are too new;
    /// read a chunk at a time, so the writer is never held up for long.
    fn candidates(
        &self,
        subsystem: Subsystem,
        age_s: u64,
        now_s: u64,
    ) -> Result<(Vec<CreatedIndex>, u64), AppendError> {
        let status = subsystem.status();
        let cutoff = now_s.saturating_sub(age_s);
        let (mut doomed, mut uncleaned, mut from) = (Vec::new(), 0u64, CreatedIndex::default());
        loop {
            let state = self
                .state
                .read()
                .map_err(|_| AppendError::Write("projection lock poisoned".into()))?;
            let mut seen = 0usize;
            for e in state.invoices.from_created_index(from).take(SCAN_CHUNK) {
                seen += 1;
                from = e.created_index.next();

                let Some(since) = e.since(status) else {
                    continue;
                };
                if since <= cutoff {
                    doomed.push(e.created_index);
                } else {
                    uncleaned += 1;
                }
            }
            if seen < SCAN_CHUNK {
                return Ok((doomed, uncleaned));
            }
        }
    }
}
