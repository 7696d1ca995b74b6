//! Prometheus metrics (`--metrics-listen HOST:PORT`, `/metrics`): the one registry of what
//! invoiced counts, and where each count comes from.
//!
//! - **Invoices and payments** are counted from the committed batches, as the log records them
//!   ([`observer`]): created, paid, expired, deleted and cleaned invoices; payments by kind
//!   (BOLT11, BOLT12, keysend, hold) with the amounts received; hold invoices by state.
//! - **Requests** are counted where the socket answers them (`rpc::answer`): by method and
//!   error code, with their latency.
//! - **The log** reports each group commit ([`LogStats`], the writer's
//!   `invoiced_actors::store::WriteObserver`): records and bytes written, batch size and the
//!   time to make a batch durable; the replay at start is timed by the daemon.
//! - **What is read when scraped** ([`Sources`]): the log's head, the checkpoint's age,
//!   replication's role, epoch and lag, each webhook endpoint's backlog and failures, the
//!   connections open.
//!
//! Counting costs an atomic add or a histogram bucket per event; nothing on the invoice path
//! waits for a scrape.

pub mod observer;
pub mod serve;

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use prometheus::{
    exponential_buckets, Gauge, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec,
    IntGauge, IntGaugeVec, Opts, Registry,
};

/// Every metric invoiced exposes (see the module docs for where each is counted), named by
/// Prometheus' conventions: the `invoiced_` prefix, `_total` counters, base units.
pub struct Metrics {
    registry: Registry,
    /// Invoices created, by kind (`bolt11`, `hold`, `bolt12`, `keysend`).
    pub invoices_created: IntCounterVec,
    /// Invoices paid (a hold invoice: settled).
    pub invoices_paid: IntCounter,
    /// Unpaid invoices that reached their expiry.
    pub invoices_expired: IntCounter,
    /// Invoices deleted (`delinvoice`).
    pub invoices_deleted: IntCounter,
    /// Invoices cleaned by retention.
    pub invoices_cleaned: IntCounter,
    /// Payments received, by kind (`bolt11`, `bolt12`, `keysend`, `hold`).
    pub payments: IntCounterVec,
    /// What those payments brought, msat, by kind.
    pub received_msat: IntCounterVec,
    /// Hold invoices by state, as they stand.
    pub hold_invoices: IntGaugeVec,
    /// Requests answered, by method and outcome.
    pub requests: IntCounterVec,
    /// How long each took, by method.
    pub request_seconds: HistogramVec,
    /// Connections open on the socket.
    pub connections: IntGauge,
    /// The log's head sequence.
    pub log_head: IntGauge,
    /// Records written since start.
    pub log_records: IntCounter,
    /// Their stored bytes.
    pub log_bytes: IntCounter,
    /// Records per group commit.
    pub batch_records: Histogram,
    /// The time to write a batch and make it durable (its fsync), seconds.
    pub batch_write_seconds: Histogram,
    /// Seconds since the checkpoint the daemon started from was written.
    pub checkpoint_age: Gauge,
    /// How long the start-up replay took, seconds.
    pub replay_seconds: Gauge,
    /// Replication's role (1 for the one in force).
    pub replication_role: IntGaugeVec,
    /// The replication epoch this process writes with (a standby: the one in force).
    pub replication_epoch: IntGauge,
    /// A standby's distance behind the primary, seconds.
    pub replication_lag: Gauge,
    /// Records not yet delivered, by webhook endpoint.
    pub webhook_backlog: IntGaugeVec,
    /// Deliveries an endpoint did not take, by endpoint.
    pub webhook_failures: IntCounterVec,
}

fn opts(name: &str, help: &str) -> Opts {
    Opts::new(name, help).namespace("invoiced")
}

fn histogram(name: &str, help: &str, buckets: Vec<f64>) -> HistogramOpts {
    HistogramOpts::new(name, help)
        .namespace("invoiced")
        .buckets(buckets)
}

/// Registers `m` in `r` and hands it back.
fn reg<M: prometheus::core::Collector + Clone + 'static>(
    r: &Registry,
    m: M,
) -> prometheus::Result<M> {
    r.register(Box::new(m.clone()))?;
    Ok(m)
}

impl Metrics {
    /// Every metric registered, at zero.
    ///
    /// # Errors
    /// A name registered twice or not valid (a mistake here, caught by the tests).
    pub fn new() -> prometheus::Result<Self> {
        let r = Registry::new();
        // Latency: 50 µs to about 26 s; batch durability: 50 µs to about 1.6 s.
        let latency = exponential_buckets(0.000_05, 2.0, 20)?;
        let fsync = exponential_buckets(0.000_05, 2.0, 16)?;
        let sizes = exponential_buckets(1.0, 2.0, 11)?;
        Ok(Metrics {
            invoices_created: reg(&r, IntCounterVec::new(opts("invoices_created_total", "Invoices created, by kind (bolt11, hold, bolt12, keysend)"), &["kind"])?)?,
            invoices_paid: reg(&r, IntCounter::with_opts(opts("invoices_paid_total", "Invoices paid (a hold invoice once settled)"))?)?,
            invoices_expired: reg(&r, IntCounter::with_opts(opts("invoices_expired_total", "Unpaid invoices that reached their expiry"))?)?,
            invoices_deleted: reg(&r, IntCounter::with_opts(opts("invoices_deleted_total", "Invoices deleted with delinvoice"))?)?,
            invoices_cleaned: reg(&r, IntCounter::with_opts(opts("invoices_cleaned_total", "Paid or expired invoices cleaned by retention (autoclean)"))?)?,
            payments: reg(&r, IntCounterVec::new(opts("payments_total", "Payments received, by kind (bolt11, bolt12, keysend, hold)"), &["kind"])?)?,
            received_msat: reg(&r, IntCounterVec::new(opts("payments_received_msat_total", "Amounts received in millisatoshi, by kind of payment"), &["kind"])?)?,
            hold_invoices: reg(&r, IntGaugeVec::new(opts("hold_invoices", "Hold invoices by state (open, accepted, settled, canceled)"), &["state"])?)?,
            requests: reg(&r, IntCounterVec::new(opts("rpc_requests_total", "Requests answered on the socket, by method and code (ok, or the JSON-RPC error code)"), &["method", "code"])?)?,
            request_seconds: reg(&r, HistogramVec::new(histogram("rpc_request_duration_seconds", "Time to answer a request, by method (waits included)", latency), &["method"])?)?,
            connections: reg(&r, IntGauge::with_opts(opts("rpc_connections", "Connections open on the socket"))?)?,
            log_head: reg(&r, IntGauge::with_opts(opts("log_head_sequence", "Sequence number of the log's last record"))?)?,
            log_records: reg(&r, IntCounter::with_opts(opts("log_records_written_total", "Records written to the log since start"))?)?,
            log_bytes: reg(&r, IntCounter::with_opts(opts("log_written_bytes_total", "Bytes of records written to the log since start"))?)?,
            batch_records: reg(&r, Histogram::with_opts(histogram("log_batch_records", "Records per group commit", sizes))?)?,
            batch_write_seconds: reg(&r, Histogram::with_opts(histogram("log_batch_write_duration_seconds", "Time to write a group commit and make it durable (fsync)", fsync))?)?,
            checkpoint_age: reg(&r, Gauge::with_opts(opts("log_checkpoint_age_seconds", "Time since the checkpoint the daemon started from was written"))?)?,
            replay_seconds: reg(&r, Gauge::with_opts(opts("log_replay_duration_seconds", "Time the start-up replay of the log took"))?)?,
            replication_role: reg(&r, IntGaugeVec::new(opts("replication_role", "Replication role in force (1), by role"), &["role"])?)?,
            replication_epoch: reg(&r, IntGauge::with_opts(opts("replication_epoch", "Replication epoch this process writes with (a standby: the one in force)"))?)?,
            replication_lag: reg(&r, Gauge::with_opts(opts("replication_lag_seconds", "A standby's distance behind the primary"))?)?,
            webhook_backlog: reg(&r, IntGaugeVec::new(opts("webhook_backlog_records", "Log records not yet delivered, by webhook endpoint"), &["url"])?)?,
            webhook_failures: reg(&r, IntCounterVec::new(opts("webhook_failures_total", "Deliveries a webhook endpoint did not take, by endpoint"), &["url"])?)?,
            registry: r,
        }
        .with_kinds_at_zero())
    }

    /// Shows every kind and state from the start, at zero, so that dashboards and alerts see
    /// the series before the first of each happens.
    fn with_kinds_at_zero(self) -> Self {
        for kind in ["bolt11", "hold", "bolt12", "keysend"] {
            self.invoices_created.with_label_values(&[kind]);
            self.payments.with_label_values(&[kind]);
            self.received_msat.with_label_values(&[kind]);
        }
        for state in ["open", "accepted", "settled", "canceled"] {
            self.hold_invoices.with_label_values(&[state]);
        }
        self
    }

    /// Counts one answered request: `code` is `None` for a result.
    pub fn request(&self, method: &str, code: Option<i64>, took: Duration) {
        // A result (nearly every request) is labelled without building a string.
        match code {
            None => self.requests.with_label_values(&[method, "ok"]).inc(),
            Some(c) => self
                .requests
                .with_label_values(&[method, &c.to_string()])
                .inc(),
        }
        self.request_seconds
            .with_label_values(&[method])
            .observe(took.as_secs_f64());
    }

    /// The exposition of every metric (Prometheus' text format), after `sources` are read.
    ///
    /// # Errors
    /// If a metric cannot be encoded (not expected).
    pub fn render(&self, sources: &Sources) -> prometheus::Result<String> {
        sources.read_into(self);
        prometheus::TextEncoder::new().encode_to_string(&self.registry.gather())
    }
}

/// The log's side of the metrics: the writer reports each batch here (on its thread).
pub struct LogStats(pub Arc<Metrics>);

impl invoiced_actors::store::WriteObserver for LogStats {
    fn batch_written(&self, records: usize, bytes: usize, took: Duration) {
        let m = &self.0;
        m.log_records.inc_by(records as u64);
        m.log_bytes.inc_by(bytes as u64);
        m.batch_records.observe(records as f64);
        m.batch_write_seconds.observe(took.as_secs_f64());
    }
}

/// What is read when the metrics are scraped.
#[derive(Default)]
pub struct Sources {
    /// The log's projection (its head).
    pub state: Option<invoiced_actors::SharedState>,
    /// The checkpoint file the daemon started from.
    pub checkpoint: Option<std::path::PathBuf>,
    /// Replication, when on.
    pub replication: Option<Arc<crate::replication::Status>>,
    /// The webhook endpoints.
    pub deliveries: Vec<Arc<crate::webhooks::Delivery>>,
    /// The socket's open connections.
    pub connections: Option<Arc<std::sync::atomic::AtomicUsize>>,
}

impl Sources {
    fn read_into(&self, m: &Metrics) {
        let head = self
            .state
            .as_ref()
            .and_then(|s| s.read().ok().map(|s| s.head().0));
        if let Some(head) = head {
            m.log_head.set(i64::try_from(head).unwrap_or(i64::MAX));
        }
        if let Some(age) = self.checkpoint.as_deref().and_then(file_age) {
            m.checkpoint_age.set(age.as_secs_f64());
        }
        if let Some(r) = &self.replication {
            use crate::replication::Role;
            for (role, name) in [
                (Role::Primary, "primary"),
                (Role::Standby, "standby"),
                (Role::Deposed, "deposed"),
            ] {
                let on = i64::from(r.role() == role);
                m.replication_role.with_label_values(&[name]).set(on);
            }
            let epoch = r.epoch.load(Ordering::Relaxed);
            m.replication_epoch
                .set(i64::try_from(epoch).unwrap_or(i64::MAX));
            m.replication_lag
                .set(r.lag_ms.load(Ordering::Relaxed) as f64 / 1000.0);
        }
        for d in &self.deliveries {
            let behind = head
                .unwrap_or(0)
                .saturating_sub(d.cursor.load(Ordering::Relaxed));
            m.webhook_backlog
                .with_label_values(&[&d.url])
                .set(i64::try_from(behind).unwrap_or(i64::MAX));
            let failures = d.failures.load(Ordering::Relaxed);
            let counter = m.webhook_failures.with_label_values(&[&d.url]);
            counter.inc_by(failures.saturating_sub(counter.get()));
        }
        if let Some(c) = &self.connections {
            m.connections
                .set(i64::try_from(c.load(Ordering::Relaxed)).unwrap_or(i64::MAX));
        }
    }
}

/// How long ago `path` was last written, if it exists.
fn file_age(path: &std::path::Path) -> Option<Duration> {
    let modified = std::fs::metadata(path).ok()?.modified().ok()?;
    modified.elapsed().ok()
}
