//! Wiring of the daemon: data dir, keys, event log, actors, socket, signals, shutdown.

use std::fs;
use std::os::unix::fs::PermissionsExt as _;
use std::sync::Arc;

use actix::{Actor as _, System};
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
use invoiced_actors::store::{EventLog, LogOptions, RocksStorage};
use invoiced_actors::waiters::Waiters;
use tokio::net::UnixListener;
use tokio::signal::unix::{signal, SignalKind};

use crate::config::{prepare_data_dir, Config};
use crate::rpc::{RpcContext, RpcPool};
use crate::{replication, webhooks};

/// Runs the daemon until SIGTERM or SIGINT.
///
/// # Errors
/// When the data dir, keys, log or socket cannot be set up.
pub fn run(cfg: Config) -> anyhow::Result<()> {
    prepare_data_dir(&cfg.data_dir)?;
    let passphrase = cfg.hsm_passphrase.read()?;
    let hsm_secret =
        hsm_secret::load_or_create(&cfg.hsm_secret(), passphrase.as_deref(), &mut OsEntropy)?;
    drop(passphrase);
    let keys = SignerKeys::derive(&hsm_secret)?;
    let node_id = keys.node_id();
    if cfg.clock_offset_ms != 0 {
        tracing::warn!(
            "--dev-clock-offset: the clock runs {} s from the system's",
            cfg.clock_offset_ms / 1000
        );
    }
    let clock: Arc<dyn Clock> = Arc::new(OffsetClock {
        offset_ms: cfg.clock_offset_ms,
    });
    let mut options = LogOptions {
        min_free_bytes: cfg.min_free_bytes,
        ..LogOptions::default()
    };
    let mut follower = None;
    let replication = match &cfg.replicate_to {
        Some(url) => {
            let (setup, stream) = replication::prepare(
                url,
                &cfg.data_dir,
                &cfg.event_log(),
                &node_id.to_string(),
                cfg.standby,
                cfg.dev_crash_before_ship,
            )?;
            match setup {
                replication::Setup::Primary(replica, status) => {
                    options.replica = Some(replica);
                    Some(status)
                }
                replication::Setup::Standby(status) => {
                    options.standby = true;
                    follower = Some(stream);
                    Some(status)
                }
            }
        }
        None => {
            replication::refuse_if_replicated(&cfg.event_log())?;
            None
        }
    };
    let log = EventLog::open_on(
        Arc::new(RocksStorage::new(cfg.event_log())),
        cfg.network,
        clock.clone(),
        options,
    )
    .with_context(|| format!("opening event log in {}", cfg.event_log().display()))?;
    let state = log.state();
    let invoices = log.reader();
    if let (Some(stream), Some(status)) = (follower, &replication) {
        replication::start_follower(stream, log.handle(), log.reader(), Arc::clone(status))?;
    }
    let stop_following = replication.clone();
    let channels;
    {
        let b = state
            .read()
            .map_err(|_| anyhow::anyhow!("projection lock poisoned"))?;
        channels = b.channels.clone();
        tracing::info!(
            "node {node_id} on {}: {} invoices, log head {}",
            cfg.network,
            b.invoices.len(),
            b.head().0
        );
    }

    let system = System::new();
    let mut hooks = None;
    let served = system.block_on(async {
        // Handlers first, so a SIGTERM that arrives as soon as the socket exists is a clean stop.
        let mut term = signal(SignalKind::terminate())?;
        let mut int = signal(SignalKind::interrupt())?;
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
        hooks = Some(webhooks::start(
            &cfg.webhook_urls,
            &cfg.data_dir,
            &invoices,
            &log.handle(),
        )?);
        let (network, cltv_final, journal) = (cfg.network, cfg.cltv_final, log.handle());
        let make_context = move || {
            let signer = KeySigner::with_keys(keys.clone(), Box::new(OsEntropy)).start();
            let peers = CreatorPeers {
                hints: view.clone(),
                signer: signer.clone().recipient(),
                bolt12: signer.clone().recipient(),
                claims: claims.clone(),
            };
            RpcContext {
                creator: InvoiceCreator::new(
                    network,
                    invoices.clone(),
                    peers,
                    journal.clone(),
                    clock.clone(),
                )
                .start(),
                monitor: monitor.clone(),
                ledger: ledger.clone(),
                waiters: waiters.clone(),
                autoclean: autoclean.clone(),
                holds: holds.clone(),
                signer,
                invoices: invoices.clone(),
                node_id,
                network,
                cltv_final,
                replication: replication.clone(),
            }
        };
        let workers = cfg
            .rpc_threads
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get()));
        let pool = RpcPool::start(workers, make_context).await?;
        // The socket appears only once everything behind it is ready.
        // The event log holds the RocksDB lock, so a stale socket here is from a dead daemon.
        if cfg.rpc_file.exists() {
            fs::remove_file(&cfg.rpc_file)
                .with_context(|| format!("removing stale {}", cfg.rpc_file.display()))?;
        }
        let listener = UnixListener::bind(&cfg.rpc_file)
            .with_context(|| format!("binding {}", cfg.rpc_file.display()))?;
        fs::set_permissions(&cfg.rpc_file, fs::Permissions::from_mode(0o600))?;
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
        anyhow::Ok(())
    });
    drop(system);
    let _ = fs::remove_file(&cfg.rpc_file);
    if let Some(h) = hooks {
        h.stop();
    }
    if let Some(r) = stop_following {
        r.stopping.store(true, std::sync::atomic::Ordering::SeqCst);
    }
    log.close();
    served
}
