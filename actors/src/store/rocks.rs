//! The RocksDB backend of the event log and its single writer thread.

use std::path::Path;
use std::sync::{Arc, RwLock};
use std::thread::JoinHandle;

use invoiced_events::codec::{decode_record, decode_snapshot, encode_record, encode_snapshot, record_hash};
use invoiced_events::{Event, EventRecord, Hash32, InvoiceEntry, Network, Projections, Snapshot};
use rocksdb::{ColumnFamilyDescriptor, Options, WriteBatch, WriteOptions, DB};

use super::keys::{checkpoint_path, event_key, CF_EVENTS, CF_META, LEGACY_META_CHECKPOINT, META_HEAD, META_NETWORK};
use super::{
    join_entries, AppendError, AppendRequest, Committed, CommittedBatch, DbSlot, InvoiceReader, LogHandle, LogOptions, StoreError,
    WriterMsg,
};
use crate::clock::Clock;
use crate::SharedState;

/// Most events written in one batch.
const MAX_BATCH: usize = 1024;

/// An open event log: the live projection and the writer thread.
pub struct RocksEventLog {
    handle: LogHandle,
    book: SharedState,
    db: DbSlot,
    writer: Option<JoinHandle<()>>,
}

impl core::fmt::Debug for RocksEventLog {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("RocksEventLog").finish_non_exhaustive()
    }
}

fn db_options() -> Options {
    let mut opts = Options::default();
    opts.create_if_missing(true);
    opts.create_missing_column_families(true);
    opts
}

/// Opens (or creates) the log at `path` for `network`, replaying it into a fresh projection.
fn open_db(path: &Path, network: Network) -> Result<(DB, Projections), StoreError> {
    let cfs = [CF_EVENTS, CF_META].map(|n| ColumnFamilyDescriptor::new(n, Options::default()));
    let db = DB::open_cf_descriptors(&db_options(), path, cfs)?;
    let meta = db.cf_handle(CF_META).ok_or_else(|| StoreError::Inconsistent("no meta column family".into()))?;
    match db.get_cf(meta, META_NETWORK)? {
        Some(stored) if stored != network.name().as_bytes() => {
            return Err(StoreError::WrongNetwork {
                stored: String::from_utf8_lossy(&stored).into_owned(),
                wanted: network.name().into(),
            })
        }
        Some(_) => {}
        None => {
            let mut w = WriteOptions::default();
            w.set_sync(true);
            db.put_cf_opt(meta, META_NETWORK, network.name(), &w)?;
        }
    }
    if db.get_pinned_cf(meta, LEGACY_META_CHECKPOINT)?.is_some() {
        db.delete_cf(meta, LEGACY_META_CHECKPOINT)?;
    }
    let start = load_checkpoint(&db, &checkpoint_path(path));
    let from = start.head().0;
    let book = replay_onto(&db, start)?;
    tracing::info!("replayed records {}..={} onto the checkpoint at {from}", from + 1, book.head().0);
    Ok((db, book))
}

/// The seq of a stored head (`seq ‖ hash`), 0 when there is none or it is malformed.
fn head_seq(stored: Option<&[u8]>) -> u64 {
    stored.and_then(|b| b.get(..8)).and_then(|b| <[u8; 8]>::try_from(b).ok()).map_or(0, u64::from_be_bytes)
}

fn cf<'a>(db: &'a DB, name: &str) -> Result<&'a rocksdb::ColumnFamily, StoreError> {
    db.cf_handle(name).ok_or_else(|| StoreError::Inconsistent(format!("no {name} column family")))
}

/// The checkpointed projections if the checkpoint is readable and matches the log (its record
/// exists with its hash); otherwise an empty projection, so that the whole log is replayed.
pub fn load_checkpoint(db: &DB, file: &Path) -> Projections {
    let load = || -> Option<Snapshot> {
        let bytes = match std::fs::read(file) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return None,
            Err(e) => {
                tracing::warn!("ignoring unreadable checkpoint {}: {e}", file.display());
                return None;
            }
        };
        let snap = decode_snapshot(&bytes).map_err(|e| tracing::warn!("ignoring unreadable checkpoint: {e}")).ok()?;
        if snap.head_seq == 0 {
            return Some(snap);
        }
        let record = db.get_cf(db.cf_handle(CF_EVENTS)?, event_key(snap.head_seq)).ok()??;
        (record_hash(&record) == snap.head_hash).then_some(snap)
    };
    match load().map(Projections::try_from) {
        Some(Ok(p)) => p,
        Some(Err(e)) => {
            tracing::warn!("ignoring a checkpoint that contradicts itself: {e}");
            Projections::new()
        }
        None => Projections::new(),
    }
}

/// Opens the log at `path` read-only (no lock taken), as it is now.
///
/// # Errors
/// [`StoreError::Db`] when RocksDB refuses.
pub fn open_read_only(path: &Path) -> Result<DB, StoreError> {
    Ok(DB::open_cf_for_read_only(&Options::default(), path, [CF_EVENTS, CF_META], false)?)
}

/// Records per message from the replay's reading thread.
const REPLAY_CHUNK: usize = 4096;

/// A record as the replay's reading thread hands it over: decoded, with its stored bytes (for
/// the chain hash).
struct ReadRecord {
    record: EventRecord,
    bytes: Vec<u8>,
}

/// Folds every record after `start`'s head into it, checking the chain and the stored head.
///
/// Two threads share the work: one iterates the log and decodes (and checks each record's key),
/// this one hashes each record for the chain check and applies it, in order. The stored head
/// must then be the replayed one.
///
/// # Errors
/// [`StoreError`] on an unreadable record or an inconsistent log.
pub fn replay_onto(db: &DB, start: Projections) -> Result<Projections, StoreError> {
    let mut book = start;
    let stored_head = db.get_cf(cf(db, CF_META)?, META_HEAD)?;
    let stored_seq = head_seq(stored_head.as_deref());
    book.reserve_invoices(usize::try_from(stored_seq.saturating_sub(book.head().0)).unwrap_or(0));
    let from = book.head().0 + 1;
    std::thread::scope(|scope| -> Result<(), StoreError> {
        let (tx, rx) = crossbeam_channel::bounded(4);
        let (spent_tx, spent_rx) = crossbeam_channel::unbounded();
        scope.spawn(move || read_and_decode(db, from, &tx, &spent_rx));
        for chunk in rx {
            let chunk = chunk?;
            for r in &chunk {
                book.apply(&r.record, record_hash(&r.bytes)).map_err(|e| StoreError::Inconsistent(e.to_string()))?;
            }
            // Freed by the thread that allocated it: the allocator's fast path, no lock.
            let _ = spent_tx.send(chunk);
        }
        Ok(())
    })?;
    let (seq, hash) = book.head();
    match stored_head {
        Some(stored) if stored.len() == 40 && stored[..8] == seq.to_be_bytes() && stored[8..] == hash => {}
        None if seq == 0 => {}
        _ => return Err(StoreError::Inconsistent(format!("stored head differs from the replayed head at {seq}"))),
    }
    Ok(book)
}

/// The reading side of [`replay_onto`]: sends the records from `from` on in chunks, or the first
/// error (and stops). Stops too when the receiver is gone. Drops the chunks that come back spent.
fn read_and_decode(
    db: &DB,
    from: u64,
    tx: &crossbeam_channel::Sender<Result<Vec<ReadRecord>, StoreError>>,
    spent: &crossbeam_channel::Receiver<Vec<ReadRecord>>,
) {
    let events = match cf(db, CF_EVENTS) {
        Ok(events) => events,
        Err(e) => return drop(tx.send(Err(e))),
    };
    let mut it = db.raw_iterator_cf(events);
    it.seek(event_key(from));
    loop {
        let mut chunk = Vec::with_capacity(REPLAY_CHUNK);
        while chunk.len() < REPLAY_CHUNK {
            let (Some(key), Some(value)) = (it.key(), it.value()) else { break };
            let seq = <[u8; 8]>::try_from(key).map_or(0, u64::from_be_bytes);
            let record = match decode_record(value) {
                Ok(record) if record.seq == seq => record,
                Ok(record) => return drop(tx.send(Err(StoreError::Inconsistent(format!("key {seq} holds record {}", record.seq))))),
                Err(source) => return drop(tx.send(Err(StoreError::Codec { seq, source }))),
            };
            chunk.push(ReadRecord { record, bytes: value.to_vec() });
            it.next();
        }
        if let Err(e) = it.status() {
            return drop(tx.send(Err(e.into())));
        }
        if chunk.is_empty() || tx.send(Ok(chunk)).is_err() {
            return;
        }
        spent.try_iter().for_each(drop);
    }
}

/// Folds the whole log into a new projection.
///
/// # Errors
/// As [`replay_onto`].
pub fn replay(db: &DB) -> Result<Projections, StoreError> {
    replay_onto(db, Projections::new())
}

/// Writes a checkpoint of `book` to `file` atomically: a temporary file, synced, renamed over
/// the old one, and the directory synced.
///
/// # Errors
/// [`StoreError`] when it cannot be encoded or written.
pub fn write_checkpoint(file: &Path, book: &Projections) -> Result<(), StoreError> {
    use std::io::Write as _;
    let bytes = encode_snapshot(&Snapshot::from(book)).map_err(|source| StoreError::Codec { seq: book.head().0, source })?;
    let io = |e: std::io::Error| StoreError::Inconsistent(format!("writing checkpoint {}: {e}", file.display()));
    let tmp = file.with_extension("checkpoint.tmp");
    let mut f = std::fs::File::create(&tmp).map_err(io)?;
    f.write_all(&bytes).map_err(io)?;
    f.sync_all().map_err(io)?;
    drop(f);
    std::fs::rename(&tmp, file).map_err(io)?;
    if let Some(dir) = file.parent() {
        std::fs::File::open(dir).and_then(|d| d.sync_all()).map_err(io)?;
    }
    Ok(())
}

impl RocksEventLog {
    /// Opens the log at `path`, replays it and starts the writer thread.
    ///
    /// # Errors
    /// [`StoreError`] when the database cannot be opened, belongs to another network or does not
    /// replay cleanly.
    pub fn open(path: &Path, network: Network, clock: Arc<dyn Clock>) -> Result<Self, StoreError> {
        Self::open_with(path, network, clock, LogOptions::default())
    }

    /// As [`RocksEventLog::open`], with options.
    ///
    /// # Errors
    /// As [`RocksEventLog::open`].
    pub fn open_with(path: &Path, network: Network, clock: Arc<dyn Clock>, options: LogOptions) -> Result<Self, StoreError> {
        let (db, book) = open_db(path, network)?;
        let path = db.path().to_path_buf();
        let db = Arc::new(db);
        let slot: DbSlot = Arc::new(RwLock::new(Some(db.clone())));
        let book: SharedState = Arc::new(RwLock::new(book));
        let (tx, rx) = crossbeam_channel::unbounded();
        let (writer_book, writer_slot) = (book.clone(), slot.clone());
        let writer = std::thread::Builder::new()
            .name("event-log-writer".into())
            .spawn(move || {
                Writer {
                    path,
                    db: Some(db),
                    slot: writer_slot,
                    book: writer_book,
                    clock,
                    subscribers: Vec::new(),
                    broken: None,
                    min_free: options.min_free_bytes,
                }
                    .run(rx)
            })
            .map_err(|e| StoreError::Inconsistent(format!("cannot start writer: {e}")))?;
        Ok(RocksEventLog { handle: LogHandle { tx }, book, db: slot, writer: Some(writer) })
    }

    /// A handle for appending.
    pub fn handle(&self) -> LogHandle {
        self.handle.clone()
    }

    /// The live projections.
    pub fn state(&self) -> SharedState {
        self.book.clone()
    }

    /// A reader of whole invoices.
    pub fn reader(&self) -> InvoiceReader {
        InvoiceReader::new(self.book.clone(), self.db.clone())
    }

    /// Stops accepting, lets the writer finish what is queued, and waits for it.
    /// Every other clone of the handle must be dropped first, or this waits for them.
    pub fn close(self) {
        let RocksEventLog { handle, writer, .. } = self;
        drop(handle);
        if let Some(w) = writer {
            let _ = w.join();
        }
    }
}

struct Writer {
    path: std::path::PathBuf,
    /// `None` while the database is closed after a failed write and could not be reopened yet.
    db: Option<Arc<DB>>,
    /// The same database, for readers.
    slot: DbSlot,
    /// The error that broke the last write, until the database is reopened cleanly.
    broken: Option<String>,
    /// Free-space reserve below which writes are refused.
    min_free: u64,
    book: SharedState,
    clock: Arc<dyn Clock>,
    subscribers: Vec<tokio::sync::mpsc::UnboundedSender<CommittedBatch>>,
}

impl Writer {
    fn run(mut self, rx: crossbeam_channel::Receiver<WriterMsg>) {
        let mut batch = Vec::with_capacity(MAX_BATCH);
        let mut events = 0usize;
        while let Ok(first) = rx.recv() {
            let mut next = Some(first);
            while let Some(msg) = next.take() {
                match msg {
                    WriterMsg::Append(req) => {
                        events += req.events.len();
                        batch.push(req);
                    }
                    WriterMsg::Subscribe(tx) => self.subscribers.push(tx),
                }
                if events < MAX_BATCH {
                    next = rx.try_recv().ok();
                }
            }
            if !batch.is_empty() {
                self.commit(&mut batch);
            }
            events = 0;
        }
        self.shut_down();
        self.close_db();
    }

    /// At a clean shutdown: checkpoints the projections and flushes.
    fn shut_down(&self) {
        let Some(db) = &self.db else { return };
        if self.broken.is_some() {
            return;
        }
        // Clean shutdown: checkpoint the projections so the next start replays nothing.
        match self.book.read() {
            Ok(book) => {
                if let Err(e) = write_checkpoint(&checkpoint_path(&self.path), &book) {
                    tracing::error!("cannot write checkpoint: {e}");
                }
            }
            Err(_) => tracing::error!("projection lock poisoned; no checkpoint written"),
        }
        // Move everything out of the WAL into table files, so the next open does not replay it.
        let _ = db.flush_wal(true);
        if let Err(e) = db.flush() {
            tracing::warn!("flush at shutdown failed: {e}");
        }
    }

    /// Admits what it can of `pending`, writes it as one batch with one fsync, applies it,
    /// answers every caller and tells the subscribers.
    fn commit(&mut self, pending: &mut Vec<AppendRequest>) {
        if let Some(cause) = self.broken.clone() {
            if let Err(e) = self.recover() {
                tracing::warn!("event log still unwritable ({cause}): {e}");
                for req in pending.drain(..) {
                    let _ = req.reply.send(Err(AppendError::Write(format!("{cause} (not recovered yet: {e})"))));
                }
                return;
            }
            tracing::info!("event log writable again after: {cause}");
        }
        match self.write(pending) {
            Ok((outcomes, all)) => {
                for (req, outcome) in pending.drain(..).zip(outcomes) {
                    let _ = req.reply.send(outcome);
                }
                if !all.is_empty() {
                    let all = Arc::new(all);
                    self.subscribers.retain(|s| s.send(all.clone()).is_ok());
                }
            }
            Err(e) => {
                tracing::error!("event log batch of {} requests failed: {e}", pending.len());
                let msg = e.to_string();
                if matches!(e, StoreError::Db(_)) {
                    // RocksDB stays in its error state after a failed write, and its background
                    // recovery can trip an assertion in Debian's build: close it now, and reopen
                    // before the next write.
                    self.broken = Some(msg.clone());
                    self.close_db();
                    self.serve_reads_read_only();
                }
                let refusal = if matches!(e, StoreError::DiskFull { .. }) { AppendError::DiskFull } else { AppendError::Write(msg) };
                for req in pending.drain(..) {
                    let _ = req.reply.send(Err(refusal.clone()));
                }
            }
        }
    }

    #[allow(clippy::type_complexity)]
    fn write(
        &self,
        pending: &mut [AppendRequest],
    ) -> Result<(Vec<Result<Vec<Committed>, AppendError>>, Vec<Committed>), StoreError> {
        let poisoned = || StoreError::Inconsistent("projection lock poisoned".into());
        let (admitted, (mut seq, mut prev_hash)) = {
            let book = self.book.read().map_err(|_| poisoned())?;
            let mut admission = book.admission();
            let admitted: Vec<Result<(), AppendError>> =
                pending.iter_mut().map(|r| admission.admit(&mut r.events).map_err(AppendError::from)).collect();
            (admitted, book.head())
        };
        let db = self.db.as_ref().ok_or(StoreError::WriterGone)?;
        if self.min_free > 0 {
            let free = fs4::available_space(&self.path).map_err(|e| StoreError::Inconsistent(format!("cannot read free space: {e}")))?;
            if free < self.min_free {
                return Err(StoreError::DiskFull { free, reserve: self.min_free });
            }
        }
        let events_cf = db.cf_handle(CF_EVENTS).ok_or_else(|| StoreError::Inconsistent("no events cf".into()))?;
        let meta_cf = db.cf_handle(CF_META).ok_or_else(|| StoreError::Inconsistent("no meta cf".into()))?;
        let time_ms = self.clock.now_ms();
        let mut batch = WriteBatch::default();
        let mut records = Vec::new();
        // Each request's events move into its records (only their count is needed afterwards).
        let counts: Vec<usize> = pending.iter().map(|r| r.events.len()).collect();
        for (req, ok) in pending.iter_mut().zip(&admitted) {
            if ok.is_err() {
                continue;
            }
            for event in std::mem::take(&mut req.events) {
                seq += 1;
                let record = EventRecord { seq, time_ms, prev_hash, event };
                let bytes = encode_record(&record).map_err(|source| StoreError::Codec { seq, source })?;
                let hash = record_hash(&bytes);
                batch.put_cf(events_cf, event_key(seq), &bytes);
                prev_hash = hash;
                records.push((record, hash));
            }
        }
        if !records.is_empty() {
            let mut head = Vec::with_capacity(40);
            head.extend_from_slice(&seq.to_be_bytes());
            head.extend_from_slice(&prev_hash);
            batch.put_cf(meta_cf, META_HEAD, head);
            let mut opts = WriteOptions::default();
            opts.set_sync(true);
            db.write_opt(batch, &opts)?;
        }

        // Apply under the lock; join the invoices with their creation records after it.
        let mut applied = Vec::with_capacity(records.len());
        {
            let mut book = self.book.write().map_err(|_| poisoned())?;
            for (record, hash) in records {
                let target = invoice_of(&record.event);
                let before = match (&record.event, target) {
                    (Event::InvoiceDeleted(_), Some(idx)) => book.invoices.get(idx).cloned(),
                    _ => None,
                };
                book.apply(&record, hash).map_err(|e| StoreError::Inconsistent(e.to_string()))?;
                let entry = before.or_else(|| target.and_then(|idx| book.invoices.get(idx).cloned()));
                applied.push((record, hash, entry));
            }
        }
        let all = self.join_committed(db, applied);
        let mut it = all.iter();
        let outcomes = counts
            .into_iter()
            .zip(admitted)
            .map(|(n, ok)| ok.map(|()| it.by_ref().take(n).cloned().collect()))
            .collect();
        Ok((outcomes, all))
    }
}

impl Writer {
    /// The committed events with the invoice each concerns: a creation joins its own event, a
    /// lifecycle event reads the creation record (one batched read for the whole batch). The
    /// events are durable and applied already, so a failed read only leaves `invoice` empty.
    fn join_committed(&self, db: &DB, applied: Vec<(EventRecord, Hash32, Option<InvoiceEntry>)>) -> Vec<Committed> {
        let lookups: Vec<InvoiceEntry> = applied
            .iter()
            .filter(|(r, ..)| !matches!(r.event, Event::InvoiceCreated(_)))
            .filter_map(|(_, _, e)| e.clone())
            .collect();
        let mut read = match join_entries(db, lookups) {
            Ok(v) => v.into_iter(),
            Err(e) => {
                tracing::error!("cannot read back the invoices of committed events: {e}");
                Vec::new().into_iter()
            }
        };
        applied
            .into_iter()
            .map(|(record, hash, entry)| {
                let invoice = match (&record.event, entry) {
                    (Event::InvoiceCreated(c), Some(e)) => e.join(c.clone()),
                    (_, Some(_)) => read.next(),
                    (_, None) => None,
                };
                Committed { record, hash, invoice }
            })
            .collect()
    }

    /// Closes and reopens the database after a failed write. A batch reported as failed must not
    /// survive: if the reopened log holds records past the projection's head (the failed write
    /// reached the WAL after all), they are removed again, so what callers were told stays true.
    fn recover(&mut self) -> Result<(), StoreError> {
        self.close_db();
        let cfs = [CF_EVENTS, CF_META].map(|n| ColumnFamilyDescriptor::new(n, Options::default()));
        let db = DB::open_cf_descriptors(&db_options(), &self.path, cfs)?;
        let (seq, hash) = self.book.read().map_err(|_| StoreError::Inconsistent("projection lock poisoned".into()))?.head();
        let (events_cf, meta_cf) = (cf(&db, CF_EVENTS)?, cf(&db, CF_META)?);
        let stored = db.get_cf(meta_cf, META_HEAD)?;
        let stored_seq = head_seq(stored.as_deref());
        if stored_seq < seq {
            return Err(StoreError::Inconsistent(format!("reopened log ends at {stored_seq}, before acknowledged record {seq}")));
        }
        if stored_seq > seq || db.get_cf(events_cf, event_key(seq + 1))?.is_some() {
            let mut batch = WriteBatch::default();
            batch.delete_range_cf(events_cf, event_key(seq + 1), event_key(u64::MAX));
            let mut head = seq.to_be_bytes().to_vec();
            head.extend_from_slice(&hash);
            batch.put_cf(meta_cf, META_HEAD, head);
            let mut opts = WriteOptions::default();
            opts.set_sync(true);
            db.write_opt(batch, &opts)?;
            tracing::warn!("removed records {}..={stored_seq} of a write reported as failed", seq + 1);
        }
        let db = Arc::new(db);
        if let Ok(mut slot) = self.slot.write() {
            *slot = Some(db.clone());
        }
        self.db = Some(db);
        self.broken = None;
        Ok(())
    }

    /// While the log is closed after a failed write, readers are served by a read-only instance
    /// (it takes no lock, so the primary can be reopened beside it).
    fn serve_reads_read_only(&self) {
        match open_read_only(&self.path) {
            Ok(db) => {
                if let Ok(mut slot) = self.slot.write() {
                    *slot = Some(Arc::new(db));
                }
            }
            Err(e) => tracing::warn!("cannot open the log read-only for readers: {e}"),
        }
    }

    /// Takes the database away from readers and closes it, waiting (up to 10 s) for reads in
    /// progress to let go of it, so that it can be reopened.
    fn close_db(&mut self) {
        if let Ok(mut slot) = self.slot.write() {
            slot.take();
        }
        let Some(mut db) = self.db.take() else { return };
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            match Arc::try_unwrap(db) {
                Ok(db) => return drop(db),
                Err(shared) if std::time::Instant::now() < deadline => {
                    db = shared;
                    std::thread::sleep(std::time::Duration::from_millis(1));
                }
                Err(_) => {
                    tracing::warn!("a reader still holds the database after 10 s; it closes when that read ends");
                    return;
                }
            }
        }
    }
}

/// The `created_index` of the invoice an event concerns.
fn invoice_of(event: &Event) -> Option<u64> {
    match event {
        Event::InvoiceCreated(c) => Some(c.created_index),
        Event::InvoicePaid(p) => Some(p.created_index),
        Event::InvoiceExpired(e) => Some(e.created_index),
        Event::InvoiceDeleted(d) => Some(d.created_index),
        Event::DescriptionRemoved(d) => Some(d.created_index),
        Event::ChannelOpened(_) | Event::ChannelUpdated(_) | Event::ChannelClosed(_) => None,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::clock::Clock;
    use invoiced_events::{InvoiceCreated, Label, PreimageSeal};

    struct Fixed;
    impl Clock for Fixed {
        fn now_ms(&self) -> u64 {
            1_700_000_000_000
        }
    }

    fn created(label: &str, hash: u8) -> Event {
        Event::InvoiceCreated(InvoiceCreated {
            created_index: 0,
            label: Label::new(label).unwrap(),
            bolt11: format!("lnbcrt{label}"),
            payment_hash: [hash; 32],
            payment_secret: [0; 32],
            preimage: PreimageSeal::Derived { nonce: [hash; 32] },
            amount_msat: Some(7),
            description: format!("for {label}"),
            deschashonly: false,
            created_at: 100,
            expiry: 10,
            expires_at: 110,
            cltv: 18,
            fallbacks: vec![],
            route_hints: vec![],
            warnings: vec![],
        })
    }

    #[test]
    fn a_long_log_replays_in_parallel_chunks_to_the_live_state() {
        let dir = std::env::temp_dir().join(format!("invoiced-rocks-chunks-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let log = RocksEventLog::open(&dir, Network::Regtest, Arc::new(Fixed)).unwrap();
        let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
        // 2.5 chunks of records, with lifecycle events between the creations.
        for batch in 0..10u32 {
            let mut events = vec![];
            for i in 0..1000u32 {
                let n = batch * 1000 + i;
                let mut e = created(&format!("l{n}"), 0);
                if let Event::InvoiceCreated(c) = &mut e {
                    c.payment_hash[..4].copy_from_slice(&n.to_be_bytes());
                }
                events.push(e);
            }
            rt.block_on(log.handle().append_all(events)).unwrap();
            let expire = Event::InvoiceExpired(invoiced_events::InvoiceExpired { created_index: u64::from(batch) * 1000 + 7, updated_index: 0 });
            rt.block_on(log.handle().append(expire)).unwrap();
        }
        let live = log.state().read().unwrap().clone();
        log.close();
        let db = open_read_only(&dir).unwrap();
        let replayed = replay(&db).unwrap();
        assert_eq!(replayed.head().0, 10_010);
        assert_eq!(replayed, live);
        // A damaged record in the middle of a chunk's second half stops the replay, naming it.
        drop(db);
        let db = DB::open_cf(&db_options(), &dir, [CF_EVENTS, CF_META]).unwrap();
        db.put_cf(db.cf_handle(CF_EVENTS).unwrap(), event_key(7000), b"\x01\x01garbage").unwrap();
        assert!(matches!(replay(&db), Err(StoreError::Codec { seq: 7000, .. })));
        drop(db);
        let _ = std::fs::remove_dir_all(&dir);
        let _ = std::fs::remove_file(checkpoint_path(&dir));
    }

    #[test]
    fn a_checkpoint_left_in_the_meta_family_by_an_older_version_is_removed_at_open() {
        let dir = std::env::temp_dir().join(format!("invoiced-rocks-legacy-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        RocksEventLog::open(&dir, Network::Regtest, Arc::new(Fixed)).unwrap().close();
        {
            let db = DB::open_cf(&db_options(), &dir, [CF_EVENTS, CF_META]).unwrap();
            db.put_cf(db.cf_handle(CF_META).unwrap(), LEGACY_META_CHECKPOINT, vec![1u8; 1000]).unwrap();
        }
        RocksEventLog::open(&dir, Network::Regtest, Arc::new(Fixed)).unwrap().close();
        let db = open_read_only(&dir).unwrap();
        assert!(db.get_cf(db.cf_handle(CF_META).unwrap(), LEGACY_META_CHECKPOINT).unwrap().is_none());
        assert!(checkpoint_path(&dir).exists(), "the clean close wrote the checkpoint file");
        drop(db);
        let _ = std::fs::remove_dir_all(&dir);
        let _ = std::fs::remove_file(checkpoint_path(&dir));
    }

    #[test]
    fn readers_join_entries_live_and_from_a_read_only_instance() {
        let dir = std::env::temp_dir().join(format!("invoiced-rocks-test-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let log = RocksEventLog::open(&dir, Network::Regtest, Arc::new(Fixed)).unwrap();
        let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
        let committed = rt.block_on(log.handle().append_all(vec![created("a", 1), created("b", 2)])).unwrap();
        assert_eq!(committed[1].invoice.as_ref().unwrap().created.description, "for b");
        let reader = log.reader();
        let entries = reader.pick(|s| s.invoices.from_created_index(0).cloned().collect::<Vec<_>>()).unwrap();
        let mut backwards = entries.clone();
        backwards.reverse();
        let whole = reader.invoices(backwards).unwrap();
        assert_eq!(whole.iter().map(|r| r.created.label.as_str()).collect::<Vec<_>>(), ["b", "a"], "in the order asked");
        assert_eq!(whole[0].created.bolt11, "lnbcrtb");
        // A read-only instance beside the open primary serves the same joins.
        let ro = open_read_only(&dir).unwrap();
        assert_eq!(join_entries(&ro, entries.clone()).unwrap()[0].created.description, "for a");
        // An entry that names the wrong record is refused, not joined.
        let mut wrong = entries[0].clone();
        wrong.seq = 2;
        assert!(matches!(join_entries(&ro, vec![wrong]), Err(StoreError::Inconsistent(_))));
        drop(ro);
        log.close();
        assert!(reader.invoices(entries).is_err(), "a closed log serves no reads");
        let _ = std::fs::remove_dir_all(&dir);
        let _ = std::fs::remove_file(checkpoint_path(&dir));
    }
}
