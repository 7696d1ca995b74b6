//! The standby's side: follow a node's stream in PostgreSQL into the local log, and take over.
//!
//! One thread reads the records after the local head (LISTEN `invoiced_log` wakes it at once;
//! it looks every half second anyway), and hands them to the log writer, which checks that they
//! continue the chain, stores them verbatim and folds them into the projections — so every read
//! method serves the primary's state, and the standby's `audit` and head equal the primary's.
//! Its own writer refuses every other append. It takes over when told (`promote`) or when the
//! primary's lease has lapsed: it catches up, moves the epoch on in PostgreSQL (a
//! compare-and-set on the lease row, so the old primary's next append fails), catches up again
//! with whatever the old primary committed before that, and from then on writes as the primary.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use invoiced_actors::store::{InvoiceReader, LogHandle};
use postgres::fallible_iterator::FallibleIterator as _;

use super::postgres::{self as pg, LEASE};
use super::{Role, Status};

/// Records fetched at a time.
const FETCH: i64 = 1000;
/// The longest wait for a notification before looking anyway.
const POLL: Duration = Duration::from_millis(500);

/// A request to promote, answered with the new epoch or why not.
pub type PromoteReply = tokio::sync::oneshot::Sender<Result<u64, String>>;

struct Follower {
    url: String,
    node: String,
    holder: String,
    log: LogHandle,
    reader: InvoiceReader,
    status: Arc<Status>,
    promote: std::sync::mpsc::Receiver<PromoteReply>,
}

/// Starts following `node`'s stream at `url` into `log`.
///
/// # Errors
/// If the thread cannot start.
pub fn spawn(
    url: String,
    node: String,
    holder: String,
    log: LogHandle,
    reader: InvoiceReader,
    status: Arc<Status>,
) -> anyhow::Result<()> {
    let (tx, rx) = std::sync::mpsc::channel();
    *status
        .promote
        .lock()
        .map_err(|_| anyhow::anyhow!("status lock poisoned"))? = Some(tx);
    let f = Follower {
        url,
        node,
        holder,
        log,
        reader,
        status,
        promote: rx,
    };
    std::thread::Builder::new()
        .name("standby".into())
        .spawn(move || f.run())?;
    Ok(())
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

impl Follower {
    fn run(self) {
        let mut client: Option<::postgres::Client> = None;
        let mut listener: Option<::postgres::Client> = None;
        let mut warned = Instant::now() - Duration::from_secs(60);
        loop {
            if self.status.stopping.load(Ordering::SeqCst) {
                return;
            }
            if client.as_ref().is_none_or(::postgres::Client::is_closed) {
                client = pg::connect(&self.url).ok();
            }
            let Some(c) = client.as_mut() else {
                if warned.elapsed() > Duration::from_secs(10) {
                    tracing::warn!("standby: cannot reach PostgreSQL; retrying");
                    warned = Instant::now();
                }
                std::thread::sleep(POLL);
                continue;
            };
            if let Err(e) = self.catch_up(c) {
                tracing::warn!("standby: {e}");
                client = None;
                std::thread::sleep(POLL);
                continue;
            }
            let asked = self.promote.try_recv().ok();
            let lapsed = pg::lease(c, &self.node)
                .ok()
                .flatten()
                .map(|l| (l.epoch, l.age_s > LEASE.as_secs_f64()));
            if let Some((epoch, _)) = lapsed {
                self.status.epoch.store(epoch, Ordering::SeqCst);
            }
            let take_over = match (&asked, lapsed) {
                (Some(_), _) => true,
                (None, Some((_, true))) => {
                    tracing::warn!("standby: the primary's lease lapsed; taking over");
                    true
                }
                _ => false,
            };
            if take_over {
                let outcome = self.promote(c);
                let done = outcome.is_ok();
                if let Err(e) = &outcome {
                    tracing::error!("standby: promotion failed: {e}");
                }
                if let Some(reply) = asked {
                    let _ = reply.send(outcome);
                }
                if done {
                    return;
                }
                continue;
            }
            // Wait for a NOTIFY (or the poll interval).
            if listener.as_ref().is_none_or(::postgres::Client::is_closed) {
                listener = pg::connect(&self.url)
                    .ok()
                    .and_then(|mut l| l.batch_execute("LISTEN invoiced_log").ok().map(|()| l));
            }
            match listener.as_mut() {
                Some(l) => {
                    let _ = l.notifications().timeout_iter(POLL).next();
                }
                None => std::thread::sleep(POLL),
            }
        }
    }

    /// Appends every record PostgreSQL holds after the local head; keeps `lag_ms` (0 once
    /// nothing is left to fetch).
    fn catch_up(&self, c: &mut ::postgres::Client) -> anyhow::Result<()> {
        loop {
            let head = self
                .reader
                .pick(|s| s.head().0)
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            let from = i64::try_from(head).unwrap_or(i64::MAX);
            let rows = c.query(
                "SELECT record FROM invoiced_log WHERE node_id = $1 AND seq > $2 ORDER BY seq LIMIT $3",
                &[&self.node, &from, &FETCH],
            )?;
            let full = rows.len() == usize::try_from(FETCH).unwrap_or(usize::MAX);
            let records: Vec<Vec<u8>> = rows.into_iter().map(|r| r.get(0)).collect();
            let Some(last) = records.last() else {
                self.status.lag_ms.store(0, Ordering::SeqCst);
                return Ok(());
            };
            let last_time = invoiced_events::codec::decode_record(last)
                .map(|r| r.time_ms)
                .unwrap_or(0);
            self.log
                .append_raw_blocking(records)
                .map_err(|e| anyhow::anyhow!("cannot store the primary's records: {e}"))?;
            // How long after the primary committed it the newest record was stored here.
            self.status
                .lag_ms
                .store(now_ms().saturating_sub(last_time), Ordering::SeqCst);
            if !full {
                return Ok(());
            }
        }
    }

    /// Takes the stream over: epoch + 1 in PostgreSQL, a last catch-up, then the writer ships.
    fn promote(&self, c: &mut ::postgres::Client) -> Result<u64, String> {
        let seen = pg::lease(c, &self.node)
            .map_err(|e| e.to_string())?
            .map_or(0, |l| l.epoch);
        let epoch = pg::take_over(c, &self.node, &self.holder, seen).map_err(|e| e.to_string())?;
        // Whatever the old primary committed before the epoch moved is in PostgreSQL: fetch it.
        self.catch_up(c).map_err(|e| e.to_string())?;
        let replica = pg::PgReplica::new(
            self.url.clone(),
            self.node.clone(),
            epoch,
            Arc::clone(&self.status.deposed),
            None,
        );
        self.log.become_primary(Some(Box::new(replica)));
        self.status.epoch.store(epoch, Ordering::SeqCst);
        self.status.set_role(Role::Primary);
        super::spawn_renewal(
            self.url.clone(),
            self.node.clone(),
            self.holder.clone(),
            Arc::clone(&self.status),
        )
        .map_err(|e| e.to_string())?;
        tracing::warn!("promoted: now the primary of {}, epoch {epoch}", self.node);
        Ok(epoch)
    }
}
