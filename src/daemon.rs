//! Wiring of the daemon: data dir, keys, event log, actors, socket, signals, shutdown.
//!
//! [`run`] reads as the start-up in order: prepare the data dir and load the keys, choose the
//! clock, set up replication and open the event log (then start a standby's follower), log what
//! the log holds, then on the actix system start the actors and webhooks, the RPC arbiters and
//! the socket, and serve until a signal; last, shut down: socket file, webhooks, follower, log.

use std::fs;
use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;
use std::sync::Arc;

use actix::{Actor as _, Addr, System};
use anyhow::Context as _;
use invoiced_actors::autoclean::Autoclean;
use invoiced_actors::channel_monitor::{ChannelMonitor, ChannelView};
use invoiced_actors::clock::{Clock, OffsetClock};
use invoiced_actors::hold_keeper::HoldKeeper;
use invoiced_actors::hsm_secret;
use invoiced_actors::invoice_creator::{CreatorPeers, InvoiceCreator};
use invoiced_actors::invoice_ledger::InvoiceLedger;
use invoiced_actors::key_signer::{KeySigner, OsEntropy, SignerKeys};
use invoiced_actors::label_registry::LabelRegistry;
use invoiced_actors::store::keys::checkpoint_path;
use invoiced_actors::store::{EventLog, InvoiceReader, LogOptions, ReplayProgress, RocksStorage};
use invoiced_actors::waiters::Waiters;
use invoiced_actors::SharedState;
use invoiced_events::ChannelBook;
use secp256k1::PublicKey;
use tokio::net::UnixListener;
use tokio::signal::unix::{signal, SignalKind};

use crate::config::{prepare_data_dir, Config};
use crate::metrics::{LogStats, Metrics, Sources as MetricSources};
use crate::progress::Progress;
use crate::rpc::{RpcContext, RpcPool};
use crate::webhooks::Webhooks;
use crate::{replication, webhooks};

/// Runs the daemon until SIGTERM or SIGINT.
///
/// # Errors
/// When the data dir, keys, log or socket cannot be set up.
pub fn run(cfg: Config) -> anyhow::Result<()> {
    prepare_data_dir(&cfg.data_dir)?;
    let keys = load_keys(&cfg)?;
    let node_id = keys.node_id();
    let clock = clock(&cfg);
    let metrics = match cfg.metrics_listen {
        Some(_) => Some(Arc::new(Metrics::new()?)),
        None => None,
    };
    let mut options = LogOptions {
        min_free_bytes: cfg.min_free_bytes,
        observer: metrics
            .clone()
            .map(|m| Arc::new(LogStats(m)) as Arc<dyn invoiced_actors::store::WriteObserver>),
        replay_progress: Some(replay_progress()),
        ..LogOptions::default()
    };
    let (replication, follower) = prepare_replication(&cfg, node_id, &mut options)?;
    let replay = std::time::Instant::now();
    let log = open_log(&cfg, clock.clone(), options)?;
    if let Some(m) = &metrics {
        m.replay_seconds.set(replay.elapsed().as_secs_f64());
    }
    let state = log.state();
    let invoices = log.reader();
    if let (Some(stream), Some(status)) = (follower, &replication) {
        replication::start_follower(stream, log.handle(), log.reader(), Arc::clone(status))?;
    }
    let stop_following = replication.clone();
    let channels = starting_channels(&cfg, node_id, &state)?;

    let opened = Opened {
        keys,
        node_id,
        clock,
        log: &log,
        state,
        invoices,
        replication,
        metrics,
    };
    let system = System::new();
    let mut hooks = None;
    let served = system.block_on(serve(&cfg, opened, channels, &mut hooks));
    drop(system);
    shut_down(&cfg.rpc_file, hooks, stop_following, log);
    served
}

/// The node's keys, from `hsm_secret` (made on first start), unlocked with the passphrase if
/// one is configured; the passphrase is dropped as soon as the secret is read.
fn load_keys(cfg: &Config) -> anyhow::Result<SignerKeys> {
    let passphrase = cfg.hsm_passphrase.read()?;
    let hsm_secret =
        hsm_secret::load_or_create(&cfg.hsm_secret(), passphrase.as_deref(), &mut OsEntropy)?;
    drop(passphrase);
    Ok(SignerKeys::derive(&hsm_secret)?)
}

/// The daemon's clock: the system's, shifted by `--dev-clock-offset` (with a warning) if set.
fn clock(cfg: &Config) -> Arc<dyn Clock> {
    if cfg.clock_offset_ms != 0 {
        tracing::warn!(
            "--dev-clock-offset: the clock runs {} s from the system's",
            cfg.clock_offset_ms / 1000
        );
    }
    Arc::new(OffsetClock {
        offset_ms: cfg.clock_offset_ms,
    })
}

/// Sets up replication to PostgreSQL when `--replicate-to` is given, telling the log through
/// `options` whether it ships to a replica or is a standby's; else refuses a data dir that
/// ships its log. The replication status, and a standby's stream for its follower.
fn prepare_replication(
    cfg: &Config,
    node_id: PublicKey,
    options: &mut LogOptions,
) -> anyhow::Result<(
    Option<Arc<replication::Status>>,
    Option<replication::Stream>,
)> {
    let Some(url) = &cfg.replicate_to else {
        replication::refuse_if_replicated(&cfg.event_log())?;
        return Ok((None, None));
    };
    let (setup, stream) = replication::prepare(
        url,
        &cfg.data_dir,
        &cfg.event_log(),
        &node_id.to_string(),
        cfg.standby,
        cfg.dev_crash_before_ship,
    )?;
    Ok(match setup {
        replication::Setup::Primary(replica, status) => {
            options.replica = Some(replica);
            (Some(status), None)
        }
        replication::Setup::Standby(status) => {
            options.standby = true;
            (Some(status), Some(stream))
        }
    })
}

/// The start-up replay's progress line, on a terminal.
fn replay_progress() -> ReplayProgress {
    let mut line: Option<Progress> = None;
    Box::new(move |replayed, total| {
        line.get_or_insert_with(|| Progress::on_stderr("start-up replay", total))
            .set(replayed);
    })
}

/// Opens (replaying) the event log in the data dir.
fn open_log(cfg: &Config, clock: Arc<dyn Clock>, options: LogOptions) -> anyhow::Result<EventLog> {
    EventLog::open_on(
        Arc::new(RocksStorage::new(cfg.event_log())),
        cfg.network,
        clock,
        options,
    )
    .with_context(|| format!("opening event log in {}", cfg.event_log().display()))
}

/// The channels the log knows at start, after logging the node and what its log holds.
fn starting_channels(
    cfg: &Config,
    node_id: PublicKey,
    state: &SharedState,
) -> anyhow::Result<ChannelBook> {
    let b = state
        .read()
        .map_err(|_| anyhow::anyhow!("projection lock poisoned"))?;
    tracing::info!(
        "node {node_id} on {}: {} invoices, log head {}",
        cfg.network,
        b.invoices.len(),
        b.head().0
    );
    Ok(b.channels.clone())
}

/// What start-up opened before the actors: the keys, the clock, the event log and its readers,
/// the replication status.
struct Opened<'a> {
    keys: SignerKeys,
    node_id: PublicKey,
    clock: Arc<dyn Clock>,
    log: &'a EventLog,
    state: SharedState,
    invoices: InvoiceReader,
    replication: Option<Arc<replication::Status>>,
    metrics: Option<Arc<Metrics>>,
}

/// On the actix system: starts the actors (the channel monitor's view from `channels`), the
/// webhooks (into `hooks`, for the shutdown) and the RPC arbiters, serves the socket until
/// SIGTERM or SIGINT, then stops the system.
async fn serve(
    cfg: &Config,
    opened: Opened<'_>,
    channels: ChannelBook,
    hooks: &mut Option<Webhooks>,
) -> anyhow::Result<()> {
    // Handlers first, so a SIGTERM that arrives as soon as the socket exists is a clean stop.
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    let actors = SharedActors::start(cfg, &opened, channels);
    *hooks = Some(webhooks::start(
        &cfg.webhook_urls,
        &cfg.data_dir,
        &opened.invoices,
        &opened.log.handle(),
    )?);
    let metrics = opened.metrics.clone();
    let sources = MetricSources {
        state: Some(opened.state.clone()),
        checkpoint: Some(checkpoint_path(&cfg.event_log())),
        replication: opened.replication.clone(),
        deliveries: hooks.as_ref().map(Webhooks::deliveries).unwrap_or_default(),
        connections: None,
    };
    if let Some(m) = &metrics {
        let state = opened
            .state
            .read()
            .map_err(|_| anyhow::anyhow!("projection lock poisoned"))?;
        crate::metrics::observer::start(Arc::clone(m), &state, &opened.log.handle());
    }
    let contexts = ArbiterContexts::new(cfg, opened, actors.clone());
    let workers = cfg
        .rpc_threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get()));
    let pool = RpcPool::start(workers, move || contexts.context()).await?;
    if let (Some(m), Some(addr)) = (metrics, cfg.metrics_listen) {
        let sources = MetricSources {
            connections: Some(pool.connections()),
            ..sources
        };
        let bound = crate::metrics::serve::start(addr, m, sources).await?;
        tracing::info!("metrics on http://{bound}/metrics");
    }
    // The socket appears only once everything behind it is ready.
    let listener = bind_socket(&cfg.rpc_file)?;
    tracing::info!(
        "listening on {} ({workers} RPC arbiters)",
        cfg.rpc_file.display()
    );
    pool.serve(listener, async move {
        tokio::select! {
            _ = term.recv() => {},
            _ = int.recv() => {},
        }
    })
    .await;
    tracing::info!("shutting down");
    System::current().stop();
    Ok(())
}

/// The main arbiter's actors, with the channel view and the label claims, shared by every RPC
/// arbiter.
#[derive(Clone)]
struct SharedActors {
    ledger: Addr<InvoiceLedger>,
    waiters: Addr<Waiters>,
    autoclean: Addr<Autoclean>,
    holds: Addr<HoldKeeper>,
    view: ChannelView,
    monitor: Addr<ChannelMonitor>,
    claims: LabelRegistry,
}

impl SharedActors {
    /// Starts them on the current arbiter, over the opened log and the `channels` it knows.
    fn start(cfg: &Config, opened: &Opened<'_>, channels: ChannelBook) -> Self {
        let Opened {
            keys,
            clock,
            log,
            state,
            invoices,
            ..
        } = opened;
        // The main arbiter's signer, for the ledger and the hold keeper; each RPC arbiter makes
        // its own from the same secret.
        let signer = KeySigner::with_keys(keys.clone(), Box::new(OsEntropy)).start();
        let ledger = InvoiceLedger::new(
            invoices.clone(),
            log.handle(),
            signer.clone().recipient(),
            clock.clone(),
        )
        .start();
        let waiters = Waiters::new(invoices.clone(), log.handle()).start();
        let autoclean =
            Autoclean::new(state.clone(), log.handle(), clock.clone(), cfg.autoclean).start();
        let holds = HoldKeeper::new(
            invoices.clone(),
            log.handle(),
            signer.recipient(),
            clock.clone(),
            cfg.hold,
        )
        .start();
        let view = ChannelView::new(channels, Box::new(OsEntropy));
        let monitor = ChannelMonitor::new(view.clone(), log.handle(), state.clone()).start();
        let claims = LabelRegistry::new(state.clone());
        SharedActors {
            ledger,
            waiters,
            autoclean,
            holds,
            view,
            monitor,
            claims,
        }
    }
}

/// What each RPC arbiter's [`RpcContext`] is made of: the shared actors, and the keys its own
/// signer starts with.
struct ArbiterContexts {
    keys: SignerKeys,
    node_id: PublicKey,
    clock: Arc<dyn Clock>,
    invoices: InvoiceReader,
    journal: invoiced_actors::store::LogHandle,
    replication: Option<Arc<replication::Status>>,
    network: invoiced_events::Network,
    cltv_final: invoiced_actors::policy::bolt11::Cltv,
    actors: SharedActors,
    metrics: Option<Arc<Metrics>>,
}

impl ArbiterContexts {
    /// The contexts' ingredients, from the configuration and what start-up opened.
    fn new(cfg: &Config, opened: Opened<'_>, actors: SharedActors) -> Self {
        ArbiterContexts {
            keys: opened.keys,
            node_id: opened.node_id,
            clock: opened.clock,
            invoices: opened.invoices,
            journal: opened.log.handle(),
            replication: opened.replication,
            network: cfg.network,
            cltv_final: cfg.cltv_final,
            actors,
            metrics: opened.metrics,
        }
    }

    /// One arbiter's context: starts its own signer and invoice creator on the current arbiter.
    fn context(&self) -> RpcContext {
        let a = &self.actors;
        let signer = KeySigner::with_keys(self.keys.clone(), Box::new(OsEntropy)).start();
        let peers = CreatorPeers {
            hints: a.view.clone(),
            signer: signer.clone().recipient(),
            bolt12: signer.clone().recipient(),
            claims: a.claims.clone(),
        };
        RpcContext {
            creator: InvoiceCreator::new(
                self.network,
                self.invoices.clone(),
                peers,
                self.journal.clone(),
                self.clock.clone(),
            )
            .start(),
            monitor: a.monitor.clone(),
            ledger: a.ledger.clone(),
            waiters: a.waiters.clone(),
            autoclean: a.autoclean.clone(),
            holds: a.holds.clone(),
            signer,
            invoices: self.invoices.clone(),
            node_id: self.node_id,
            network: self.network,
            cltv_final: self.cltv_final,
            replication: self.replication.clone(),
            metrics: self.metrics.clone(),
        }
    }
}

/// Binds the RPC socket at `rpc_file`, readable and writable by the owner only.
fn bind_socket(rpc_file: &Path) -> anyhow::Result<UnixListener> {
    // The event log holds the RocksDB lock, so a stale socket here is from a dead daemon.
    if rpc_file.exists() {
        fs::remove_file(rpc_file)
            .with_context(|| format!("removing stale {}", rpc_file.display()))?;
    }
    let listener =
        UnixListener::bind(rpc_file).with_context(|| format!("binding {}", rpc_file.display()))?;
    fs::set_permissions(rpc_file, fs::Permissions::from_mode(0o600))?;
    Ok(listener)
}

/// After the actix system is gone: removes the socket file, stops the webhooks, tells the
/// follower to let go of the log, and closes the log.
fn shut_down(
    rpc_file: &Path,
    hooks: Option<Webhooks>,
    stop_following: Option<Arc<replication::Status>>,
    log: EventLog,
) {
    let _ = fs::remove_file(rpc_file);
    if let Some(h) = hooks {
        h.stop();
    }
    if let Some(r) = stop_following {
        r.stopping.store(true, std::sync::atomic::Ordering::SeqCst);
    }
    log.close();
}
