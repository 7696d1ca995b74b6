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
//! A data dir that was replicated remembers it (the log's replica marker,
//! [`LocalLog::set_replica_marker`]): starting it without `--replicate-to` is refused, since its
//! writes would never reach the copy the standby follows. What is done to the local log before
//! it opens goes through the store's [`LocalLog`]: this module names no column or key of it.
//!
//! `invoiced standby --replicate-from URL` (and a `serve --replicate-to` that finds another
//! process's live lease: a former primary after a takeover) runs as a standby ([`standby`]):
//! it follows the stream into its own log, serves every read, refuses writes, and takes over on
//! `promote` or when the primary's lease lapses.

pub mod postgres;
pub mod standby;

use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use anyhow::Context as _;
use invoiced_actors::store::{LocalLog, RocksStorage};

/// The replica marker a data dir replicated to PostgreSQL keeps in its log.
const REPLICA_KIND: &str = "postgres";
/// The file holding this data dir's lease holder id.
const HOLDER_FILE: &str = "replication_holder";

/// Where this process stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// It writes, shipping every batch.
    Primary,
    /// It follows the primary's stream.
    Standby,
    /// It was the primary until another took the stream: it writes no more.
    Deposed,
}

/// What `getinfo.replication` shows, shared with the renewal and follower threads.
#[derive(Debug)]
pub struct Status {
    role: std::sync::atomic::AtomicU8,
    /// The epoch this process writes with (a standby: the one in force).
    pub epoch: AtomicU64,
    /// A standby's distance behind the primary, ms.
    pub lag_ms: AtomicU64,
    /// Set once a newer epoch was found: this process no longer writes.
    pub deposed: Arc<AtomicBool>,
    /// A standby's way to ask its follower to promote.
    pub promote: std::sync::Mutex<Option<std::sync::mpsc::Sender<standby::PromoteReply>>>,
    /// Set at shutdown: the follower lets go of the log.
    pub stopping: AtomicBool,
}

impl Status {
    fn new(role: Role, epoch: u64) -> Self {
        let s = Status {
            role: std::sync::atomic::AtomicU8::new(0),
            epoch: AtomicU64::new(epoch),
            lag_ms: AtomicU64::new(0),
            deposed: Arc::new(AtomicBool::new(false)),
            promote: std::sync::Mutex::new(None),
            stopping: AtomicBool::new(false),
        };
        s.set_role(role);
        s
    }

    fn set_role(&self, role: Role) {
        self.role.store(role as u8, Ordering::SeqCst);
    }

    /// Where this process stands now.
    pub fn role(&self) -> Role {
        if self.deposed.load(Ordering::SeqCst) {
            return Role::Deposed;
        }
        match self.role.load(Ordering::SeqCst) {
            0 => Role::Primary,
            _ => Role::Standby,
        }
    }

    /// Asks a standby's follower to take over; the new epoch, or why not.
    ///
    /// # Errors
    /// This process is not a standby, or the promotion failed.
    pub async fn promote(&self) -> Result<u64, String> {
        if self.role() != Role::Standby {
            return Err("this invoiced is not a standby".into());
        }
        let tx = self
            .promote
            .lock()
            .map_err(|_| "status lock poisoned".to_owned())?
            .clone()
            .ok_or("no follower to promote")?;
        let (reply, rx) = tokio::sync::oneshot::channel();
        tx.send(reply)
            .map_err(|_| "the follower has stopped".to_owned())?;
        rx.await
            .map_err(|_| "the follower has stopped".to_owned())?
    }

    /// `getinfo.replication`.
    pub fn json(&self) -> serde_json::Value {
        let role = match self.role() {
            Role::Primary => "primary",
            Role::Standby => "standby",
            Role::Deposed => "deposed",
        };
        serde_json::json!({ "role": role, "epoch": self.epoch.load(Ordering::SeqCst), "lag_ms": self.lag_ms.load(Ordering::SeqCst) })
    }
}

/// How this process replicates, decided before the log opens.
pub enum Setup {
    /// The primary: the writer ships to this replica.
    Primary(Box<postgres::PgReplica>, Arc<Status>),
    /// A standby: the writer starts refusing appends; [`start_follower`] once the log is open.
    Standby(Arc<Status>),
}

/// The context a standby's follower needs once the log is open.
pub struct Stream {
    url: String,
    node: String,
    holder: String,
}

/// This data dir's lease holder id: made once, kept in the data dir, so a restarted primary is
/// recognised as the holder it was.
fn holder_id(data_dir: &Path) -> anyhow::Result<String> {
    let path = data_dir.join(HOLDER_FILE);
    if let Ok(id) = std::fs::read_to_string(&path) {
        return Ok(id.trim().to_owned());
    }
    let mut nonce = [0u8; 8];
    invoiced_actors::entropy::EntropySource::fill(
        &mut invoiced_actors::entropy::OsEntropy,
        &mut nonce,
    );
    let host = std::fs::read_to_string("/etc/hostname").unwrap_or_default();
    let id = format!("{}:{}", host.trim(), hex::encode(nonce));
    std::fs::write(&path, format!("{id}\n"))
        .with_context(|| format!("writing {}", path.display()))?;
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
    let log = LocalLog::open(&RocksStorage::new(events))?;
    if log.replica_marker()?.is_some() {
        anyhow::bail!(
            "this data dir ships its log to PostgreSQL: start it with --replicate-to, since writes made without it would never reach the copy a standby follows"
        );
    }
    Ok(())
}

/// Claims the lease of `node` (unless `standby`), reconciles the local log at `events` with
/// PostgreSQL's copy, and says how to run: the primary, or a standby when asked to be one or
/// when another process holds a live lease (a former primary after a takeover).
///
/// # Errors
/// When PostgreSQL cannot be reached, or the two logs differ in a way that dropping an
/// unacknowledged local tail cannot mend.
pub fn prepare(
    url: &str,
    data_dir: &Path,
    events: &Path,
    node: &str,
    standby: bool,
    crash_after: Option<u64>,
) -> anyhow::Result<(Setup, Stream)> {
    let mut client = postgres::connect(url).context("connecting to PostgreSQL")?;
    postgres::ensure_schema(&mut client).context("creating the replication tables")?;
    let holder = holder_id(data_dir)?;
    let stream = Stream {
        url: url.to_owned(),
        node: node.to_owned(),
        holder: holder.clone(),
    };
    let claimed = if standby {
        None
    } else {
        Some(postgres::claim(&mut client, node, &holder)?)
    };
    match claimed {
        Some(postgres::Claim::Mine(epoch)) => {
            reconcile(&mut client, events, node, false)?;
            let status = Arc::new(Status::new(Role::Primary, epoch));
            spawn_renewal(url.to_owned(), node.to_owned(), holder, Arc::clone(&status))?;
            tracing::info!("replicating to PostgreSQL as the primary of {node}, epoch {epoch}");
            let replica = postgres::PgReplica::new(
                url.to_owned(),
                node.to_owned(),
                epoch,
                Arc::clone(&status.deposed),
                crash_after,
            );
            Ok((Setup::Primary(Box::new(replica), status), stream))
        }
        other => {
            if let Some(postgres::Claim::HeldBy(row)) = &other {
                tracing::warn!(
                    "node {node}'s log is held by another invoiced ({}, epoch {}, renewed {:.1} s ago): running as its standby",
                    row.holder,
                    row.epoch,
                    row.age_s
                );
            }
            reconcile(&mut client, events, node, true)?;
            let epoch = postgres::lease(&mut client, node)?.map_or(0, |l| l.epoch);
            Ok((
                Setup::Standby(Arc::new(Status::new(Role::Standby, epoch))),
                stream,
            ))
        }
    }
}

/// Starts a standby's follower, once the log is open.
///
/// # Errors
/// If its thread cannot start.
pub fn start_follower(
    stream: Stream,
    log: invoiced_actors::store::LogHandle,
    reader: invoiced_actors::store::InvoiceReader,
    status: Arc<Status>,
) -> anyhow::Result<()> {
    standby::spawn(stream.url, stream.node, stream.holder, log, reader, status)
}

/// How far back the reconciliation looks for the last record both copies hold alike.
const MAX_UNACKED_TAIL: u64 = 100_000;

/// Makes the local log a prefix of PostgreSQL's (see the module docs), and marks the data dir as
/// replicated. Local records PostgreSQL does not hold alike were never acknowledged (a batch is
/// acknowledged only once PostgreSQL committed it): they are dropped, and the log says which. A
/// primary must then end exactly where PostgreSQL does; a standby (`may_be_behind`) catches up.
fn reconcile(
    client: &mut ::postgres::Client,
    events: &Path,
    node: &str,
    may_be_behind: bool,
) -> anyhow::Result<()> {
    let log = LocalLog::open(&RocksStorage::new(events))?;
    let (local_seq, local_hash) = log.head()?;
    let (pg_seq, _) = postgres::head(client, node)?;
    let local_hash_at = |seq: u64| -> anyhow::Result<Option<[u8; 32]>> {
        if seq == local_seq {
            return Ok(Some(local_hash));
        }
        Ok(log.hash_at(seq)?)
    };
    // The last record both hold alike.
    let mut common = local_seq.min(pg_seq);
    while common > 0 && local_hash_at(common)? != postgres::hash_at(client, node, common)? {
        if local_seq.min(pg_seq) - common >= MAX_UNACKED_TAIL {
            anyhow::bail!("this data dir and PostgreSQL differ over more than {MAX_UNACKED_TAIL} records of {node}: refusing to start (the logs forked)");
        }
        common -= 1;
    }
    if common < local_seq {
        tracing::warn!(
            "dropping records {}..={local_seq}: they were written here but PostgreSQL does not hold them, so they were never acknowledged",
            common + 1
        );
    }
    if common < pg_seq && !may_be_behind {
        anyhow::bail!(
            "PostgreSQL holds records {}..={pg_seq} of {node} that this data dir does not: start it as a standby to catch up",
            common + 1
        );
    }
    // The marker first: a crash before the truncation leaves a data dir that starts only with
    // --replicate-to, whose reconciliation drops the tail again.
    log.set_replica_marker(REPLICA_KIND)?;
    if common < local_seq {
        log.truncate_after(common)?;
    }
    Ok(())
}

/// Renews the lease every [`postgres::RENEW_EVERY`]; marks the status deposed if it is gone.
pub(crate) fn spawn_renewal(
    url: String,
    node: String,
    holder: String,
    status: Arc<Status>,
) -> anyhow::Result<()> {
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
