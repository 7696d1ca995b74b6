//! Replication to PostgreSQL (`serve --replicate-to URL`): the primary's side.
//!
//! Before the log opens, the primary claims its node's lease ([`postgres::claim`]: one writer
//! per node id, fenced by an epoch) and reconciles its local log with PostgreSQL's copy: a local
//! tail that never reached PostgreSQL was never acknowledged and is dropped (logged); PostgreSQL
//! ahead of the local log, or a different record at the same place, is refused with a message
//! that says what to do. Then every batch the writer commits is shipped in one transaction
//! ([`postgres::PgReplica`]) before it is acknowledged, and a thread renews the lease; a
//! process that finds a newer epoch stops writing (every append fails with -1 naming it).
//!
//! A data dir that was replicated remembers it (`replica` in the log's meta column): starting
//! it without `--replicate-to` is refused, since its writes would never reach the copy the
//! standby follows.

pub mod postgres;

use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use anyhow::Context as _;
use invoiced_actors::store::engine::{Batch, Column, Storage as _};
use invoiced_actors::store::keys::{decode_head, encode_head, event_key, META_HEAD};
use invoiced_actors::store::RocksStorage;

/// The meta key that marks a data dir as replicated.
const META_REPLICA: &[u8] = b"replica";
/// The file holding this data dir's lease holder id.
const HOLDER_FILE: &str = "replication_holder";

/// What `getinfo.replication` shows, shared with the renewal thread.
#[derive(Debug)]
pub struct Status {
    /// The epoch this process writes with.
    pub epoch: AtomicU64,
    /// Set once a newer epoch was found: this process no longer writes.
    pub deposed: Arc<AtomicBool>,
}

impl Status {
    /// `getinfo.replication`.
    pub fn json(&self) -> serde_json::Value {
        let role = if self.deposed.load(Ordering::SeqCst) { "deposed" } else { "primary" };
        serde_json::json!({ "role": role, "epoch": self.epoch.load(Ordering::SeqCst), "lag_ms": 0 })
    }
}

/// This data dir's lease holder id: made once, kept in the data dir, so a restarted primary is
/// recognised as the holder it was.
fn holder_id(data_dir: &Path) -> anyhow::Result<String> {
    let path = data_dir.join(HOLDER_FILE);
    if let Ok(id) = std::fs::read_to_string(&path) {
        return Ok(id.trim().to_owned());
    }
    let mut nonce = [0u8; 8];
    invoiced_actors::entropy::EntropySource::fill(&mut invoiced_actors::entropy::OsEntropy, &mut nonce);
    let host = std::fs::read_to_string("/etc/hostname").unwrap_or_default();
    let id = format!("{}:{}", host.trim(), hex::encode(nonce));
    std::fs::write(&path, format!("{id}\n")).with_context(|| format!("writing {}", path.display()))?;
    Ok(id)
}

/// Refuses to start a replicated data dir without replication.
///
/// # Errors
/// If the data dir was replicated before.
pub fn refuse_if_replicated(events: &Path) -> anyhow::Result<()> {
    if !events.exists() {
        return Ok(());
    }
    let engine = RocksStorage::new(events).open()?;
    if engine.get(Column::Meta, META_REPLICA)?.is_some() {
        anyhow::bail!(
            "this data dir ships its log to PostgreSQL: start it with --replicate-to, since writes made without it would never reach the copy a standby follows"
        );
    }
    Ok(())
}

/// Claims the lease of `node` and reconciles the local log at `events` with PostgreSQL's copy;
/// returns the replica for the writer and the status for `getinfo`.
///
/// # Errors
/// When PostgreSQL cannot be reached, the lease is another's, or the two logs differ in a way
/// that dropping an unacknowledged local tail cannot mend.
pub fn prepare(url: &str, data_dir: &Path, events: &Path, node: &str, crash_after: Option<u64>) -> anyhow::Result<(postgres::PgReplica, Arc<Status>)> {
    let mut client = postgres::connect(url).context("connecting to PostgreSQL (--replicate-to)")?;
    postgres::ensure_schema(&mut client).context("creating the replication tables")?;
    let holder = holder_id(data_dir)?;
    let epoch = postgres::claim(&mut client, node, &holder)?;
    reconcile(&mut client, events, node)?;
    let deposed = Arc::new(AtomicBool::new(false));
    let status = Arc::new(Status { epoch: AtomicU64::new(epoch), deposed: Arc::clone(&deposed) });
    spawn_renewal(url.to_owned(), node.to_owned(), holder, Arc::clone(&status))?;
    tracing::info!("replicating to PostgreSQL as the primary of {node}, epoch {epoch}");
    Ok((postgres::PgReplica::new(url.to_owned(), node.to_owned(), epoch, deposed, crash_after), status))
}

/// Makes the local log end where PostgreSQL's does (see the module docs), and marks the data
/// dir as replicated.
fn reconcile(client: &mut ::postgres::Client, events: &Path, node: &str) -> anyhow::Result<()> {
    let engine = RocksStorage::new(events).open()?;
    let (local_seq, local_hash) = engine.get(Column::Meta, META_HEAD)?.as_deref().and_then(decode_head).unwrap_or((0, [0; 32]));
    let (pg_seq, pg_hash) = postgres::head(client, node)?;
    let mut batch = Batch::new();
    if local_seq < pg_seq {
        let at = postgres::hash_at(client, node, local_seq)?;
        let continues = local_seq == 0 || at == Some(local_hash);
        anyhow::bail!(
            "PostgreSQL holds records {}..={pg_seq} of {node} that this data dir does not{}: start it as a standby to catch up",
            local_seq + 1,
            if continues { "" } else { ", and differs before them" }
        );
    }
    if local_seq > pg_seq {
        let local_at_pg = if pg_seq == 0 {
            Some([0; 32])
        } else {
            let bytes = engine.get(Column::Events, &event_key(pg_seq))?;
            bytes.map(|b| invoiced_events::codec::record_hash(&b))
        };
        if local_at_pg != Some(pg_hash) {
            anyhow::bail!("this data dir and PostgreSQL differ at record {pg_seq} of {node}: refusing to start (the logs forked)");
        }
        tracing::warn!(
            "dropping records {}..={local_seq}: they were written here but never reached PostgreSQL, so they were never acknowledged",
            pg_seq + 1
        );
        batch.delete_range(Column::Events, event_key(pg_seq + 1), event_key(u64::MAX));
        batch.put(Column::Meta, META_HEAD, encode_head(pg_seq, &pg_hash));
    } else if local_hash != pg_hash {
        anyhow::bail!("this data dir and PostgreSQL differ at record {pg_seq} of {node}: refusing to start (the logs forked)");
    }
    batch.put(Column::Meta, META_REPLICA, b"postgres".to_vec());
    engine.write(batch)?;
    Ok(())
}

/// Renews the lease every [`postgres::RENEW_EVERY`]; marks the status deposed if it is gone.
fn spawn_renewal(url: String, node: String, holder: String, status: Arc<Status>) -> anyhow::Result<()> {
    std::thread::Builder::new().name("lease-renewal".into()).spawn(move || {
        let mut client = None;
        while !status.deposed.load(Ordering::SeqCst) {
            std::thread::sleep(postgres::RENEW_EVERY);
            if client.as_ref().is_none_or(::postgres::Client::is_closed) {
                client = postgres::connect(&url).ok();
            }
            let Some(c) = client.as_mut() else {
                tracing::warn!("cannot reach PostgreSQL to renew the lease of {node}");
                continue;
            };
            let epoch = i64::try_from(status.epoch.load(Ordering::SeqCst)).unwrap_or(i64::MAX);
            match c.execute("UPDATE invoiced_lease SET renewed_at = now() WHERE node_id = $1 AND epoch = $2 AND holder = $3", &[&node, &epoch, &holder]) {
                Ok(1) => {}
                Ok(_) => {
                    tracing::error!("the lease of {node} was taken by another invoiced: this one stops writing");
                    status.deposed.store(true, Ordering::SeqCst);
                }
                Err(e) => {
                    tracing::warn!("cannot renew the lease of {node}: {e}");
                    client = None;
                }
            }
        }
    })?;
    Ok(())
}
