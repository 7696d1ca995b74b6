//! Webhooks: every invoice event of the log, pushed to each `--webhook-url` as a signed POST.
//!
//! Each endpoint is followed by a thread of its own that reads the log from its durable cursor
//! (`DIR/webhooks/<hash of the URL>.cursor`), posts every invoice event in log order, and moves
//! the cursor on only once the receiver answered 2xx — so delivery is at least once, in order,
//! and a restart (or a SIGKILL) resumes where it stopped. A receiver that is down, slow or
//! failing is retried with a backoff up to a minute, for as long as it takes; nothing it does
//! reaches the invoice path, which only moves a counter ([`Head`]) after each commit. A new
//! endpoint starts at the log's head when it is first configured. Bodies ([`payload`]) are signed
//! with HMAC-SHA256 under `DIR/webhook_secret` (created on first use, 0600), in the
//! `X-Invoiced-Signature` header.

pub mod endpoint;
pub mod payload;

use std::fs;
use std::io::Write as _;
use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
use std::path::Path;
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

use anyhow::Context as _;
use invoiced_actors::entropy::{EntropySource as _, OsEntropy};
use invoiced_actors::store::{InvoiceReader, LogHandle};

/// The file holding the signing secret, in the data dir.
pub const SECRET_FILE: &str = "webhook_secret";

/// The log's head as commits move it, for the endpoint threads to wait on.
#[derive(Debug, Default)]
pub struct Head {
    state: Mutex<(u64, bool)>,
    moved: Condvar,
}

impl Head {
    fn set(&self, seq: u64) {
        let mut s = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        s.0 = s.0.max(seq);
        self.moved.notify_all();
    }

    fn stop(&self) {
        self.state.lock().unwrap_or_else(PoisonError::into_inner).1 = true;
        self.moved.notify_all();
    }

    /// The head once it is beyond `seq`, or after `timeout` whatever it is; `None` once stopping.
    pub fn wait_beyond(&self, seq: u64, timeout: Duration) -> Option<u64> {
        let s = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let (s, _) = self
            .moved
            .wait_timeout_while(s, timeout, |s| s.0 <= seq && !s.1)
            .unwrap_or_else(PoisonError::into_inner);
        (!s.1).then_some(s.0)
    }

    /// Sleeps `d`, or less if stopping; says whether to go on.
    pub fn sleep(&self, d: Duration) -> bool {
        let s = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let (s, _) = self
            .moved
            .wait_timeout_while(s, d, |s| !s.1)
            .unwrap_or_else(PoisonError::into_inner);
        !s.1
    }
}

/// An endpoint's delivery as it stands, shared by its thread with the metrics.
#[derive(Debug)]
pub struct Delivery {
    /// Its URL.
    pub url: String,
    /// The last record delivered (or passed over: not an invoice event).
    pub cursor: std::sync::atomic::AtomicU64,
    /// Deliveries it did not take.
    pub failures: std::sync::atomic::AtomicU64,
}

/// The running webhooks: stop them before the log closes.
#[derive(Debug, Default)]
pub struct Webhooks {
    head: Arc<Head>,
    threads: Vec<JoinHandle<()>>,
    deliveries: Vec<Arc<Delivery>>,
}

impl Webhooks {
    /// Where each endpoint's delivery stands (for the metrics).
    pub fn deliveries(&self) -> Vec<Arc<Delivery>> {
        self.deliveries.clone()
    }

    /// Stops every endpoint thread (one in an HTTP call finishes it first, within its timeout).
    pub fn stop(self) {
        self.head.stop();
        for t in self.threads {
            let _ = t.join();
        }
    }
}

/// The signing secret: read from `DIR/webhook_secret` (64 hex digits), or created there.
///
/// # Errors
/// If the file cannot be read, is not 64 hex digits, or cannot be written.
pub fn secret(data_dir: &Path) -> anyhow::Result<[u8; 32]> {
    let path = data_dir.join(SECRET_FILE);
    let mut out = [0u8; 32];
    if path.exists() {
        let text =
            fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
        hex::decode_to_slice(text.trim(), &mut out)
            .with_context(|| format!("{} is not 64 hex digits", path.display()))?;
        return Ok(out);
    }
    OsEntropy.fill(&mut out);
    let tmp = data_dir.join(format!("{SECRET_FILE}.tmp"));
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)?;
    writeln!(f, "{}", hex::encode(out))?;
    f.sync_all()?;
    fs::set_permissions(&tmp, fs::Permissions::from_mode(0o600))?;
    fs::rename(&tmp, &path)?;
    fs::File::open(data_dir)?.sync_all()?;
    Ok(out)
}

/// Starts one thread per URL, and the task that moves their [`Head`] after each commit. Call
/// from within the actix system.
///
/// # Errors
/// A URL that is not http(s), or the secret or a cursor that cannot be read or written.
pub fn start(
    urls: &[String],
    data_dir: &Path,
    reader: &InvoiceReader,
    log: &LogHandle,
) -> anyhow::Result<Webhooks> {
    let head = Arc::new(Head::default());
    if urls.is_empty() {
        return Ok(Webhooks {
            head,
            threads: Vec::new(),
            deliveries: Vec::new(),
        });
    }
    let secret = secret(data_dir)?;
    let now = reader
        .pick(|s| s.head().0)
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    head.set(now);
    let mut commits = log.subscribe();
    let moved = Arc::clone(&head);
    actix::spawn(async move {
        while let Some(batch) = commits.recv().await {
            if let Some(last) = batch.last() {
                moved.set(last.record.seq);
            }
        }
    });
    let mut threads = Vec::new();
    let mut deliveries = Vec::new();
    for url in urls {
        let ep = endpoint::Endpoint::open(
            url,
            data_dir,
            now,
            secret,
            reader.clone(),
            Arc::clone(&head),
        )?;
        tracing::info!("webhook {url}: delivering from record {}", ep.cursor() + 1);
        deliveries.push(ep.delivery());
        threads.push(
            std::thread::Builder::new()
                .name("webhook".into())
                .spawn(move || ep.run())?,
        );
    }
    Ok(Webhooks {
        head,
        threads,
        deliveries,
    })
}
