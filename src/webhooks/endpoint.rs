//! One webhook endpoint: its durable cursor, and the loop that delivers the log to it.

use std::fs;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use bitcoin::hashes::{sha256, Hash as _};
use invoiced_actors::store::InvoiceReader;
use invoiced_events::EventRecord;

use super::{payload, Delivery, Head};

/// How long one POST may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// The first retry's delay; each failure doubles it up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(500);
/// The longest delay between retries.
const MAX_BACKOFF: Duration = Duration::from_secs(60);
/// Records read from the log at a time.
const READ_BATCH: usize = 256;
/// While a backlog is delivered, the cursor is saved at least this often (and whenever the
/// endpoint has caught up): a crash redelivers at most this much, at least once still holds.
const SAVE_EVERY: Duration = Duration::from_millis(200);

/// An endpoint and where its delivery stands.
pub struct Endpoint {
    url: String,
    cursor_path: PathBuf,
    /// The last record delivered (or passed over: not an invoice event).
    cursor: u64,
    /// The cursor as last saved, and when.
    saved: (u64, std::time::Instant),
    secret: [u8; 32],
    agent: ureq::Agent,
    reader: InvoiceReader,
    head: Arc<Head>,
    /// The cursor and the failures, as the metrics read them.
    delivery: Arc<Delivery>,
}

impl Endpoint {
    /// The endpoint for `url`, its cursor read from `DIR/webhooks/`, or started at `head`.
    ///
    /// # Errors
    /// A URL that is not http(s), or a cursor that cannot be read or written.
    pub fn open(
        url: &str,
        data_dir: &Path,
        head: u64,
        secret: [u8; 32],
        reader: InvoiceReader,
        signal: Arc<Head>,
    ) -> anyhow::Result<Self> {
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            anyhow::bail!("--webhook-url {url}: should be an http:// or https:// URL");
        }
        let dir = data_dir.join("webhooks");
        fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let name = hex::encode(&sha256::Hash::hash(url.as_bytes()).to_byte_array()[..8]);
        let cursor_path = dir.join(format!("{name}.cursor"));
        let cursor = match fs::read_to_string(&cursor_path) {
            Ok(text) => text
                .lines()
                .next()
                .and_then(|l| l.trim().parse().ok())
                .with_context(|| {
                    format!("{} does not hold a record number", cursor_path.display())
                })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => head,
            Err(e) => return Err(e).with_context(|| format!("reading {}", cursor_path.display())),
        };
        let agent = ureq::AgentBuilder::new()
            .timeout(REQUEST_TIMEOUT)
            .user_agent(concat!("invoiced/", env!("CARGO_PKG_VERSION")))
            .build();
        let mut ep = Endpoint {
            url: url.to_owned(),
            cursor_path,
            cursor,
            saved: (cursor, std::time::Instant::now()),
            secret,
            agent,
            reader,
            head: signal,
            delivery: Arc::new(Delivery {
                url: url.to_owned(),
                cursor: AtomicU64::new(cursor),
                failures: AtomicU64::new(0),
            }),
        };
        ep.save_cursor()?;
        ep.saved.0 = cursor;
        Ok(ep)
    }

    /// The last record delivered.
    pub fn cursor(&self) -> u64 {
        self.cursor
    }

    /// Where its delivery stands, as it moves.
    pub fn delivery(&self) -> Arc<Delivery> {
        Arc::clone(&self.delivery)
    }

    /// Writes the cursor durably (a new file renamed over the old, both synced), with the URL
    /// beside it for the operator.
    fn save_cursor(&self) -> std::io::Result<()> {
        let tmp = self.cursor_path.with_extension("tmp");
        let mut f = fs::File::create(&tmp)?;
        write!(f, "{}\n{}\n", self.cursor, self.url)?;
        f.sync_all()?;
        fs::rename(&tmp, &self.cursor_path)?;
        if let Some(dir) = self.cursor_path.parent() {
            fs::File::open(dir)?.sync_all()?;
        }
        Ok(())
    }

    /// Delivers the log to the endpoint until the daemon stops.
    pub fn run(mut self) {
        loop {
            let Some(head) = self.head.wait_beyond(self.cursor, Duration::from_secs(5)) else {
                return self.persist();
            };
            if head <= self.cursor {
                continue;
            }
            let records = match self.reader.records_from(self.cursor + 1, READ_BATCH) {
                Ok(r) => r,
                Err(e) => {
                    tracing::warn!("webhook {}: cannot read the log: {e}", self.url);
                    if !self.head.sleep(Duration::from_secs(1)) {
                        return;
                    }
                    continue;
                }
            };
            let caught_up = records.len() < READ_BATCH;
            for rec in records {
                if let Some(body) = self.body(&rec) {
                    if !self.deliver(&rec, &body) {
                        return self.persist();
                    }
                }
                self.cursor = rec.seq;
                self.delivery.cursor.store(rec.seq, Ordering::Relaxed);
                if self.saved.1.elapsed() >= SAVE_EVERY {
                    self.persist();
                }
            }
            if caught_up {
                self.persist();
            }
        }
    }

    /// Saves the cursor if it moved. A failure only costs a redelivery after a restart.
    fn persist(&mut self) {
        if self.saved.0 == self.cursor {
            return;
        }
        match self.save_cursor() {
            Ok(()) => self.saved = (self.cursor, std::time::Instant::now()),
            Err(e) => tracing::warn!(
                "webhook {}: cannot save its cursor {}: {e}",
                self.url,
                self.cursor
            ),
        }
    }

    fn body(&self, rec: &EventRecord) -> Option<String> {
        payload::type_of(&rec.event)?;
        let created = match rec.event.created() {
            Some(c) => Some(c.clone()),
            None => rec
                .event
                .invoice_index()
                .and_then(|idx| match self.reader.creation(idx) {
                    Ok(c) => c,
                    Err(e) => {
                        tracing::warn!(
                            "webhook {}: cannot read the creation of invoice {idx}: {e}",
                            self.url
                        );
                        None
                    }
                }),
        };
        payload::body(rec, created.as_ref()).map(|v| v.to_string())
    }

    /// Posts `body` until the endpoint takes it (2xx); `false` if the daemon stops first.
    fn deliver(&self, rec: &EventRecord, body: &str) -> bool {
        let signature = payload::signature(&self.secret, body.as_bytes());
        let mut backoff = FIRST_BACKOFF;
        let mut failures = 0u32;
        loop {
            let sent = self
                .agent
                .post(&self.url)
                .set("Content-Type", "application/json")
                .set("X-Invoiced-Signature", &signature)
                .set("X-Invoiced-Seq", &rec.seq.to_string())
                .send_string(body);
            match sent {
                Ok(_) => {
                    if failures > 0 {
                        tracing::info!(
                            "webhook {}: record {} delivered after {failures} failed attempt(s)",
                            self.url,
                            rec.seq
                        );
                    }
                    return true;
                }
                Err(e) => {
                    failures += 1;
                    self.delivery.failures.fetch_add(1, Ordering::Relaxed);
                    if failures == 1 || failures.is_multiple_of(10) {
                        tracing::warn!(
                            "webhook {}: record {} not taken ({e}); retrying, attempt {failures}",
                            self.url,
                            rec.seq
                        );
                    }
                    if !self.head.sleep(backoff) {
                        return false;
                    }
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                }
            }
        }
    }
}
