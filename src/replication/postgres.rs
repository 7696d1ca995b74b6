//! The PostgreSQL side of replication: the schema, the lease (one writer per node id, fenced
//! by an epoch), and [`PgReplica`], which commits each batch of the log in one transaction that
//! also checks the epoch, so a deposed primary's next append fails instead of forking the log.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use invoiced_actors::store::replica::{Replica, ReplicaError, ShippedRecord};
use invoiced_events::Hash32;
use postgres::{Client, NoTls};

/// The tables, created if missing (under an advisory lock: two processes may start at once).
const SCHEMA: &str = "
    SELECT pg_advisory_xact_lock(7263540117);
    CREATE TABLE IF NOT EXISTS invoiced_log (
        node_id text NOT NULL,
        seq bigint NOT NULL,
        prev_hash bytea NOT NULL,
        hash bytea NOT NULL,
        record bytea NOT NULL,
        PRIMARY KEY (node_id, seq)
    );
    CREATE TABLE IF NOT EXISTS invoiced_lease (
        node_id text PRIMARY KEY,
        epoch bigint NOT NULL,
        holder text NOT NULL,
        renewed_at timestamptz NOT NULL DEFAULT now()
    );";

/// One batch's append, as one statement (its own transaction): lock the node's lease row and
/// read its epoch, check that the stream ends with the record this batch continues, insert the
/// records only if both hold, and NOTIFY the standbys (delivered at commit). Answers the epoch in
/// force and how many records went in. Parameters: node, the seq before the batch, this
/// process's epoch, the batch's first `prev_hash`, then the records' seqs, prev hashes, hashes
/// and bytes as arrays.
const APPEND: &str = "
    WITH lease AS (
        SELECT epoch FROM invoiced_lease WHERE node_id = $1 FOR UPDATE
    ), prev AS (
        SELECT hash FROM invoiced_log WHERE node_id = $1 AND seq = $2
    ), ok AS (
        SELECT COALESCE((SELECT epoch FROM lease) = $3, false)
           AND CASE WHEN $2 = 0 THEN NOT EXISTS (SELECT 1 FROM prev)
                    ELSE COALESCE((SELECT hash FROM prev) = $4, false) END AS go
    ), ins AS (
        INSERT INTO invoiced_log (node_id, seq, prev_hash, hash, record)
        SELECT $1, s, p, h, r FROM unnest($5::bigint[], $6::bytea[], $7::bytea[], $8::bytea[]) AS t(s, p, h, r)
        WHERE (SELECT go FROM ok)
        RETURNING 1
    )
    SELECT (SELECT epoch FROM lease), (SELECT count(*) FROM ins), pg_notify('invoiced_log', $1::text)";

/// How long a lease lasts without renewal.
pub const LEASE: Duration = Duration::from_secs(10);
/// How often the primary renews it.
pub const RENEW_EVERY: Duration = Duration::from_secs(3);

/// Connects, with timeouts that keep a dead server from stalling the writer.
///
/// # Errors
/// The connection's error.
pub fn connect(url: &str) -> Result<Client, postgres::Error> {
    let mut config: postgres::Config = url.parse()?;
    config.connect_timeout(Duration::from_secs(3));
    config.options("-c statement_timeout=5000 -c idle_in_transaction_session_timeout=10000");
    config.connect(NoTls)
}

/// Creates the tables if they are missing.
///
/// # Errors
/// The server's error.
pub fn ensure_schema(client: &mut Client) -> Result<(), postgres::Error> {
    let mut tx = client.transaction()?;
    tx.batch_execute(SCHEMA)?;
    tx.commit()
}

/// The lease of a node's stream as it stands.
#[derive(Clone, Debug, PartialEq)]
pub struct LeaseRow {
    /// The epoch in force.
    pub epoch: u64,
    /// Who holds it.
    pub holder: String,
    /// Seconds since it was last renewed.
    pub age_s: f64,
}

/// Reads the lease.
///
/// # Errors
/// The server's error.
pub fn lease(client: &mut Client, node: &str) -> Result<Option<LeaseRow>, postgres::Error> {
    let row = client.query_opt(
        "SELECT epoch, holder, EXTRACT(EPOCH FROM now() - renewed_at)::float8 FROM invoiced_lease WHERE node_id = $1",
        &[&node],
    )?;
    Ok(row.map(|r| LeaseRow {
        epoch: u64::try_from(r.get::<_, i64>(0)).unwrap_or(0),
        holder: r.get(1),
        age_s: r.get(2),
    }))
}

/// The outcome of [`claim`].
#[derive(Clone, Debug, PartialEq)]
pub enum Claim {
    /// This holder writes, with this epoch.
    Mine(u64),
    /// Another holder's lease is live.
    HeldBy(LeaseRow),
}

/// Claims the lease for `holder`: a new stream starts at epoch 1; the same holder keeps its
/// epoch; another holder's lease is taken (epoch + 1) only once it lapsed.
///
/// # Errors
/// The server's error, or a race with another claimant.
pub fn claim(client: &mut Client, node: &str, holder: &str) -> anyhow::Result<Claim> {
    client.execute(
        "INSERT INTO invoiced_lease (node_id, epoch, holder) VALUES ($1, 1, $2) ON CONFLICT (node_id) DO NOTHING",
        &[&node, &holder],
    )?;
    let Some(row) = lease(client, node)? else {
        anyhow::bail!("the lease of {node} vanished while it was claimed")
    };
    if row.holder == holder {
        return Ok(Claim::Mine(row.epoch));
    }
    if row.age_s <= LEASE.as_secs_f64() {
        return Ok(Claim::HeldBy(row));
    }
    take_over(client, node, holder, row.epoch).map(Claim::Mine)
}

/// Moves `node`'s epoch on from `seen` to `seen + 1` for `holder`, unconditionally on the lease's
/// age (a promotion the operator asked for) but only if nobody moved it since `seen`.
///
/// # Errors
/// Why not.
pub fn take_over(client: &mut Client, node: &str, holder: &str, seen: u64) -> anyhow::Result<u64> {
    let seen_i = i64::try_from(seen).unwrap_or(i64::MAX);
    let taken = client.execute(
        "UPDATE invoiced_lease SET epoch = epoch + 1, holder = $3, renewed_at = now() WHERE node_id = $1 AND epoch = $2",
        &[&node, &seen_i, &holder],
    )?;
    if taken != 1 {
        anyhow::bail!("the lease of {node} moved on from epoch {seen} meanwhile");
    }
    Ok(seen + 1)
}

/// The last record PostgreSQL holds for `node`: (seq, hash), or (0, zeros) for none.
///
/// # Errors
/// The server's error.
pub fn head(client: &mut Client, node: &str) -> Result<(u64, Hash32), postgres::Error> {
    let row = client.query_opt(
        "SELECT seq, hash FROM invoiced_log WHERE node_id = $1 ORDER BY seq DESC LIMIT 1",
        &[&node],
    )?;
    Ok(row.map_or((0, [0; 32]), |r| {
        (
            u64::try_from(r.get::<_, i64>(0)).unwrap_or(0),
            to_hash(r.get(1)),
        )
    }))
}

/// The hash PostgreSQL holds for record `seq` of `node`.
///
/// # Errors
/// The server's error.
pub fn hash_at(
    client: &mut Client,
    node: &str,
    seq: u64,
) -> Result<Option<Hash32>, postgres::Error> {
    let seq = i64::try_from(seq).unwrap_or(i64::MAX);
    let row = client.query_opt(
        "SELECT hash FROM invoiced_log WHERE node_id = $1 AND seq = $2",
        &[&node, &seq],
    )?;
    Ok(row.map(|r| to_hash(r.get(0))))
}

fn to_hash(bytes: Vec<u8>) -> Hash32 {
    let mut h = [0u8; 32];
    if bytes.len() == 32 {
        h.copy_from_slice(&bytes);
    }
    h
}

/// The writer's replica: each batch in one transaction, with the epoch checked under the lease
/// row's lock and the chain checked against the last stored record.
pub struct PgReplica {
    url: String,
    node: String,
    epoch: u64,
    client: Option<Client>,
    /// [`APPEND`], prepared on the connection.
    append: Option<postgres::Statement>,
    /// A batch whose commit's outcome could not be learnt: (first seq, last seq, last hash).
    in_doubt: Option<(u64, u64, Hash32)>,
    /// Whether the last failed batch's statement reached the server (then its outcome is
    /// unknown until asked; a failed connection means it did not commit).
    sent: bool,
    deposed: Arc<AtomicBool>,
    /// A test seam: the process exits (as if killed) just before shipping the batch after this
    /// many were shipped, leaving a local tail that never reached PostgreSQL (`dev-hooks` only;
    /// always `None` otherwise).
    #[cfg_attr(not(feature = "dev-hooks"), allow(dead_code))]
    crash_after: Option<u64>,
    shipped: u64,
}

impl PgReplica {
    /// The replica of `node`'s stream at `url`, writing with `epoch`; `deposed` is set when
    /// it finds a newer epoch.
    pub fn new(
        url: String,
        node: String,
        epoch: u64,
        deposed: Arc<AtomicBool>,
        crash_after: Option<u64>,
    ) -> Self {
        PgReplica {
            url,
            node,
            epoch,
            client: None,
            append: None,
            in_doubt: None,
            sent: false,
            deposed,
            crash_after,
            shipped: 0,
        }
    }

    fn try_ship(&mut self, records: &[ShippedRecord<'_>]) -> Result<(), ReplicaError> {
        let unavailable = |e: postgres::Error| ReplicaError::Unavailable(e.to_string());
        let Some(first) = records.first() else {
            return Ok(());
        };
        self.sent = false;
        if self.client.as_ref().is_none_or(Client::is_closed) {
            self.client = None;
            let mut client = connect(&self.url).map_err(unavailable)?;
            let stmt = client.prepare(APPEND).map_err(unavailable)?;
            self.client = Some(client);
            self.append = Some(stmt);
        }
        let (Some(client), Some(stmt)) = (self.client.as_mut(), self.append.as_ref()) else {
            return Err(ReplicaError::Unavailable("no connection".into()));
        };
        let seq = |s: u64| i64::try_from(s).unwrap_or(i64::MAX);
        let epoch = seq(self.epoch);
        let seqs: Vec<i64> = records.iter().map(|r| seq(r.seq)).collect();
        let prevs: Vec<&[u8]> = records.iter().map(|r| r.prev_hash.as_slice()).collect();
        let hashes: Vec<&[u8]> = records.iter().map(|r| r.hash.as_slice()).collect();
        let bytes: Vec<&[u8]> = records.iter().map(|r| r.bytes).collect();
        let after = seq(first.seq - 1);
        let prev = first.prev_hash.as_slice();
        // One statement, so one round trip and one transaction (autocommit): see [`APPEND`].
        self.sent = true;
        let row = client
            .query_one(
                stmt,
                &[
                    &self.node, &after, &epoch, &prev, &seqs, &prevs, &hashes, &bytes,
                ],
            )
            .map_err(|e| {
                if e.code() == Some(&postgres::error::SqlState::UNIQUE_VIOLATION) {
                    ReplicaError::Diverged(first.seq)
                } else {
                    unavailable(e)
                }
            })?;
        let current = row
            .get::<_, Option<i64>>(0)
            .map_or(0, |e| u64::try_from(e).unwrap_or(0));
        let inserted: i64 = row.get(1);
        if current != self.epoch {
            return Err(ReplicaError::Deposed {
                current,
                ours: self.epoch,
            });
        }
        if inserted != i64::try_from(records.len()).unwrap_or(i64::MAX) {
            return Err(ReplicaError::Diverged(first.seq));
        }
        Ok(())
    }
}

/// How long a primary tries to learn a failed commit's outcome before answering.
const RESOLVE_FOR: Duration = Duration::from_secs(5);

impl PgReplica {
    /// Whether record `seq` with `hash` is in PostgreSQL: `None` if it cannot be reached within
    /// `patience`.
    fn committed(&mut self, seq: u64, hash: &Hash32, patience: Duration) -> Option<bool> {
        let deadline = std::time::Instant::now() + patience;
        loop {
            if let Ok(mut c) = connect(&self.url) {
                if let Ok(found) = hash_at(&mut c, &self.node, seq) {
                    return Some(found.as_ref() == Some(hash));
                }
            }
            if std::time::Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Settles a batch in doubt: not in PostgreSQL, nothing to do; in it, its records come back
    /// as [`ReplicaError::Ahead`] for the writer to store again.
    fn settle_doubt(
        &mut self,
        (first, last, hash): (u64, u64, Hash32),
    ) -> Result<(), ReplicaError> {
        match self.committed(last, &hash, Duration::ZERO) {
            None => Err(ReplicaError::Unavailable(format!("PostgreSQL still unreachable (an earlier batch, records {first}..={last}, is unresolved)"))),
            Some(false) => {
                self.in_doubt = None;
                Ok(())
            }
            Some(true) => {
                let mut c = connect(&self.url).map_err(|e| ReplicaError::Unavailable(e.to_string()))?;
                let (from, to) = (i64::try_from(first).unwrap_or(i64::MAX), i64::try_from(last).unwrap_or(i64::MAX));
                let rows = c
                    .query("SELECT record FROM invoiced_log WHERE node_id = $1 AND seq BETWEEN $2 AND $3 ORDER BY seq", &[&self.node, &from, &to])
                    .map_err(|e| ReplicaError::Unavailable(e.to_string()))?;
                self.in_doubt = None;
                Err(ReplicaError::Ahead(rows.into_iter().map(|r| r.get(0)).collect()))
            }
        }
    }
}

impl Replica for PgReplica {
    fn ship(&mut self, records: &[ShippedRecord<'_>]) -> Result<(), ReplicaError> {
        if self.deposed.load(Ordering::SeqCst) {
            // Known deposed (by the renewal): refuse without asking, and say by whom.
            let current = self
                .client
                .as_mut()
                .and_then(|c| lease(c, &self.node).ok().flatten())
                .map_or(self.epoch + 1, |l| l.epoch);
            return Err(ReplicaError::Deposed {
                current,
                ours: self.epoch,
            });
        }
        // A test hook, compiled only with the `dev-hooks` feature.
        #[cfg(feature = "dev-hooks")]
        if self.crash_after == Some(self.shipped) {
            tracing::error!(
                "--dev-crash-before-ship: exiting before shipping batch {}",
                self.shipped + 1
            );
            std::process::exit(86);
        }
        if let Some(doubt) = self.in_doubt {
            self.settle_doubt(doubt)?;
        }
        let mut outcome = self.try_ship(records);
        if let (Err(ReplicaError::Unavailable(why)), Some(last), true) =
            (&outcome, records.last(), self.sent)
        {
            // The connection failed: the commit may have happened with its answer lost. Learn
            // which before answering, for a while; after that the batch stays in doubt.
            self.client = None;
            self.append = None;
            match self.committed(last.seq, last.hash, RESOLVE_FOR) {
                Some(true) => outcome = Ok(()),
                Some(false) => {}
                None => {
                    tracing::warn!("replication: cannot learn whether batch {}..={} committed ({why}); it is in doubt", records[0].seq, last.seq);
                    self.in_doubt = Some((records[0].seq, last.seq, *last.hash));
                    outcome = Err(ReplicaError::InDoubt(why.clone()));
                }
            }
        }
        match &outcome {
            Ok(()) => self.shipped += 1,
            Err(ReplicaError::Deposed { .. }) => self.deposed.store(true, Ordering::SeqCst),
            Err(ReplicaError::Unavailable(_) | ReplicaError::InDoubt(_)) => {
                self.client = None;
                self.append = None;
            }
            Err(ReplicaError::Diverged(_) | ReplicaError::Ahead(_)) => {}
        }
        outcome
    }
}
