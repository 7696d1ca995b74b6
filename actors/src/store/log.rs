//! [`EventLog`]: the open event log — the live projection, the shared engine and the writer
//! thread — and how it is opened and closed. Its rooms: [`super::open`], [`super::replay`],
//! [`super::checkpoint`], [`super::writer`]; its storage: [`super::engine`].

use std::path::Path;
use std::sync::{Arc, RwLock};
use std::thread::JoinHandle;

use invoiced_events::Network;

use super::engine::Storage;
use super::open::open_log;
use super::writer::Writer;
use super::{EngineSlot, InvoiceReader, LogHandle, LogOptions, RocksStorage, StoreError};
use crate::clock::Clock;
use crate::SharedState;

/// An open event log: the live projection and the writer thread.
pub struct EventLog {
    handle: LogHandle,
    state: SharedState,
    engine: EngineSlot,
    writer: Option<JoinHandle<()>>,
}

impl core::fmt::Debug for EventLog {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("EventLog").finish_non_exhaustive()
    }
}

impl EventLog {
    /// Opens the RocksDB log at `path`, replays it and starts the writer thread.
    ///
    /// # Errors
    /// [`StoreError`] when the database cannot be opened, belongs to another network or does not
    /// replay cleanly.
    pub fn open(path: &Path, network: Network, clock: Arc<dyn Clock>) -> Result<Self, StoreError> {
        Self::open_on(
            Arc::new(RocksStorage::new(path)),
            network,
            clock,
            LogOptions::default(),
        )
    }

    /// Opens the log on `storage` with `options`, replays it and starts the writer thread.
    ///
    /// # Errors
    /// As [`EventLog::open`].
    pub fn open_on(
        storage: Arc<dyn Storage>,
        network: Network,
        clock: Arc<dyn Clock>,
        mut options: LogOptions,
    ) -> Result<Self, StoreError> {
        let progress = options.replay_progress.take();
        let (engine, state) = open_log(storage.as_ref(), network, progress)?;
        let slot: EngineSlot = Arc::new(RwLock::new(None));
        let state: SharedState = Arc::new(RwLock::new(state));
        let (tx, rx) = crossbeam_channel::unbounded();
        // The writer shares the engine with readers (through the slot) from here on.
        let writer = Writer::new(storage, engine, slot.clone(), state.clone(), clock, options);
        let writer = std::thread::Builder::new()
            .name("event-log-writer".into())
            .spawn(move || writer.run(rx))
            .map_err(|e| StoreError::Inconsistent(format!("cannot start writer: {e}")))?;
        Ok(EventLog {
            handle: LogHandle { tx },
            state,
            engine: slot,
            writer: Some(writer),
        })
    }

    /// A handle for appending.
    pub fn handle(&self) -> LogHandle {
        self.handle.clone()
    }

    /// The live projections.
    pub fn state(&self) -> SharedState {
        self.state.clone()
    }

    /// A reader of whole invoices.
    pub fn reader(&self) -> InvoiceReader {
        InvoiceReader::new(self.state.clone(), self.engine.clone())
    }

    /// Stops accepting, lets the writer finish what is queued, and waits for it.
    /// Every other clone of the handle must be dropped first, or this waits for them.
    pub fn close(self) {
        let EventLog { handle, writer, .. } = self;
        drop(handle);
        if let Some(w) = writer {
            let _ = w.join();
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::clock::Clock;
    use crate::store::engine::{Batch, Column, Engine as _};
    use crate::store::keys::{checkpoint_path, event_key, LEGACY_META_CHECKPOINT};
    use crate::store::replay::{replay, replay_onto};
    use crate::store::ReplayProgress;
    use crate::store::{join_entries, AppendError, MemStorage};
    use invoiced_events::{
        CreatedIndex, InvoiceBody, Label, Msat, NewInvoice, PaymentHash, PaymentSecret,
        PreimageSeal, Proposal,
    };

    /// Puts one raw value into the log at `dir`, as damage or an older version would.
    fn put_raw(dir: &Path, column: Column, key: &[u8], value: &[u8]) {
        let mut batch = Batch::new();
        batch.put(column, key, value);
        RocksStorage::new(dir).open().unwrap().write(batch).unwrap();
    }

    struct Fixed;
    impl Clock for Fixed {
        fn now_ms(&self) -> u64 {
            1_700_000_000_000
        }
    }

    fn created(label: &str, hash: u8) -> Proposal {
        Proposal::Invoice(NewInvoice {
            body: InvoiceBody {
                label: Label::new(label).unwrap(),
                bolt11: format!("lnbcrt{label}"),
                payment_hash: PaymentHash([hash; 32]),
                payment_secret: PaymentSecret([0; 32]),
                preimage: PreimageSeal::Derived { nonce: [hash; 32] },
                amount_msat: Some(Msat(7)),
                description: format!("for {label}"),
                deschashonly: false,
                created_at: 100,
                expiry: 10,
                expires_at: 110,
                cltv: 18,
                fallbacks: vec![],
                route_hints: vec![],
                warnings: vec![],
            },
            kind: invoiced_events::InvoiceKind::Bolt11,
        })
    }

    #[test]
    fn a_long_log_replays_in_parallel_chunks_to_the_live_state() {
        let dir =
            std::env::temp_dir().join(format!("invoiced-rocks-chunks-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let log = EventLog::open(&dir, Network::Regtest, Arc::new(Fixed)).unwrap();
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        // 2.5 chunks of records, with lifecycle events between the creations.
        for batch in 0..10u32 {
            let mut events = vec![];
            for i in 0..1000u32 {
                let n = batch * 1000 + i;
                let mut e = created(&format!("l{n}"), 0);
                if let Proposal::Invoice(c) = &mut e {
                    c.body.payment_hash.0[..4].copy_from_slice(&n.to_be_bytes());
                }
                events.push(e);
            }
            rt.block_on(log.handle().append_all(events)).unwrap();
            let expire = Proposal::Expired {
                created_index: CreatedIndex(u64::from(batch) * 1000 + 7),
            };
            rt.block_on(log.handle().append(expire)).unwrap();
        }
        let live = log.state().read().unwrap().clone();
        log.close();
        let db = RocksStorage::new(&dir).read_only().unwrap();
        let replayed = replay(&db).unwrap();
        assert_eq!(replayed.head().0, 10_010);
        assert_eq!(replayed, live);
        // Its progress is told before the first chunk and after each.
        let told = Arc::new(std::sync::Mutex::new(vec![]));
        let tell = told.clone();
        let progress: ReplayProgress = Box::new(move |done, total| {
            tell.lock().unwrap().push((done, total));
        });
        assert_eq!(
            replay_onto(&db, invoiced_events::Projections::new(), Some(progress)).unwrap(),
            live
        );
        assert_eq!(
            *told.lock().unwrap(),
            [
                (0, 10_010),
                (4096, 10_010),
                (8192, 10_010),
                (10_010, 10_010)
            ]
        );
        // A damaged record in the middle of a chunk's second half stops the replay, naming it.
        drop(db);
        put_raw(&dir, Column::Events, &event_key(7000), b"\x01\x01garbage");
        let db = RocksStorage::new(&dir).read_only().unwrap();
        assert!(matches!(
            replay(&db),
            Err(StoreError::Codec { seq: 7000, .. })
        ));
        drop(db);
        let _ = std::fs::remove_dir_all(&dir);
        let _ = std::fs::remove_file(checkpoint_path(&dir));
    }

    #[test]
    fn a_checkpoint_left_in_the_meta_family_by_an_older_version_is_removed_at_open() {
        let dir =
            std::env::temp_dir().join(format!("invoiced-rocks-legacy-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        EventLog::open(&dir, Network::Regtest, Arc::new(Fixed))
            .unwrap()
            .close();
        put_raw(&dir, Column::Meta, LEGACY_META_CHECKPOINT, &[1u8; 1000]);
        EventLog::open(&dir, Network::Regtest, Arc::new(Fixed))
            .unwrap()
            .close();
        let db = RocksStorage::new(&dir).read_only().unwrap();
        assert!(db
            .get(Column::Meta, LEGACY_META_CHECKPOINT)
            .unwrap()
            .is_none());
        assert!(
            checkpoint_path(&dir).exists(),
            "the clean close wrote the checkpoint file"
        );
        drop(db);
        let _ = std::fs::remove_dir_all(&dir);
        let _ = std::fs::remove_file(checkpoint_path(&dir));
    }

    #[test]
    fn readers_join_entries_live_and_from_a_read_only_instance() {
        let dir = std::env::temp_dir().join(format!("invoiced-rocks-test-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let log = EventLog::open(&dir, Network::Regtest, Arc::new(Fixed)).unwrap();
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let committed = rt
            .block_on(
                log.handle()
                    .append_all(vec![created("a", 1), created("b", 2)]),
            )
            .unwrap();
        assert_eq!(
            committed[1]
                .invoice
                .as_ref()
                .unwrap()
                .created
                .body
                .description,
            "for b"
        );
        let reader = log.reader();
        let entries = reader
            .pick(|s| {
                s.invoices
                    .from_created_index(CreatedIndex(0))
                    .cloned()
                    .collect::<Vec<_>>()
            })
            .unwrap();
        let mut backwards = entries.clone();
        backwards.reverse();
        let whole = reader.invoices(backwards).unwrap();
        assert_eq!(
            whole
                .iter()
                .map(|r| r.created.body.label.as_str())
                .collect::<Vec<_>>(),
            ["b", "a"],
            "in the order asked"
        );
        assert_eq!(whole[0].created.body.bolt11, "lnbcrtb");
        // A read-only instance beside the open primary serves the same joins.
        let ro = RocksStorage::new(&dir).read_only().unwrap();
        assert_eq!(
            join_entries(&ro, entries.clone()).unwrap()[0]
                .created
                .body
                .description,
            "for a"
        );
        // An entry that names the wrong record is refused, not joined.
        let mut wrong = entries[0].clone();
        wrong.seq = 2;
        assert!(matches!(
            join_entries(&ro, vec![wrong]),
            Err(StoreError::Inconsistent(_))
        ));
        drop(ro);
        log.close();
        assert!(
            reader.invoices(entries).is_err(),
            "a closed log serves no reads"
        );
        let _ = std::fs::remove_dir_all(&dir);
        let _ = std::fs::remove_file(checkpoint_path(&dir));
    }

    /// The recovery after a failed write, on any storage: `storage()` gives the same log each call.
    fn a_failed_write_is_rolled_back_on(storage: impl Fn() -> Arc<dyn Storage>) {
        let options = LogOptions {
            min_free_bytes: 0,
            ..LogOptions::default()
        };
        let faults = options.faults.clone();
        let log = EventLog::open_on(storage(), Network::Regtest, Arc::new(Fixed), options).unwrap();
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        rt.block_on(log.handle().append(created("a", 1))).unwrap();
        // "b" and "b2" reach the log, but their caller is told they failed.
        faults.fail_next_writes(1);
        let failed = rt.block_on(
            log.handle()
                .append_all(vec![created("b", 2), created("b2", 4)]),
        );
        assert!(matches!(failed, Err(AppendError::Write(_))), "{failed:?}");
        assert_eq!(
            log.state().read().unwrap().head().0,
            1,
            "the projection never saw it"
        );
        // Meanwhile readers are served (by a read-only engine): "a" is there, "b" is not.
        let reader = log.reader();
        let listed = reader
            .pick(|s| {
                s.invoices
                    .from_created_index(CreatedIndex(0))
                    .cloned()
                    .collect::<Vec<_>>()
            })
            .unwrap();
        assert_eq!(
            reader
                .invoices(listed)
                .unwrap()
                .iter()
                .map(|r| r.created.body.label.as_str())
                .collect::<Vec<_>>(),
            ["a"]
        );
        // The next write first reopens the log and removes both (record 3 would otherwise stay
        // behind "c", and break the chain); "c" takes record 2.
        let c = rt.block_on(log.handle().append(created("c", 3))).unwrap();
        assert_eq!(
            (
                c.record.seq,
                c.invoice.as_ref().unwrap().created.created_index
            ),
            (2, CreatedIndex(2))
        );
        let live = log.state().read().unwrap().clone();
        log.close();
        let replayed = replay(storage().open_read_only().unwrap().as_ref()).unwrap();
        assert_eq!(replayed, live, "the log replays to what callers were told");
        let labels: Vec<String> = replayed
            .invoices
            .from_created_index(CreatedIndex(0))
            .map(|e| e.label.to_string())
            .collect();
        assert_eq!(labels, ["a", "c"]);
        // "b"'s label and hash are free: its caller was told it does not exist.
        let log = EventLog::open_on(
            storage(),
            Network::Regtest,
            Arc::new(Fixed),
            LogOptions::default(),
        )
        .unwrap();
        rt.block_on(log.handle().append(created("b", 2))).unwrap();
        log.close();
    }

    #[test]
    fn a_write_reported_as_failed_is_rolled_back_before_the_next_one() {
        let dir =
            std::env::temp_dir().join(format!("invoiced-rocks-recover-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        a_failed_write_is_rolled_back_on(|| Arc::new(RocksStorage::new(&dir)));
        let _ = std::fs::remove_dir_all(&dir);
        let _ = std::fs::remove_file(checkpoint_path(&dir));
        let memory = MemStorage::new();
        a_failed_write_is_rolled_back_on(|| Arc::new(memory.clone()));
    }

    #[test]
    fn a_log_in_memory_restarts_from_its_checkpoint_and_refuses_another_network() {
        let memory = MemStorage::new();
        let open = || {
            EventLog::open_on(
                Arc::new(memory.clone()),
                Network::Regtest,
                Arc::new(Fixed),
                LogOptions::default(),
            )
        };
        let log = open().unwrap();
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        rt.block_on(
            log.handle()
                .append_all(vec![created("a", 1), created("b", 2)]),
        )
        .unwrap();
        let live = log.state().read().unwrap().clone();
        log.close();
        assert!(
            memory.load_checkpoint().unwrap().is_some(),
            "a clean close saves the checkpoint"
        );
        let again = open().unwrap();
        assert_eq!(*again.state().read().unwrap(), live);
        again.close();
        let other = EventLog::open_on(
            Arc::new(memory.clone()),
            Network::Bitcoin,
            Arc::new(Fixed),
            LogOptions::default(),
        );
        assert!(matches!(other, Err(StoreError::WrongNetwork { .. })));
    }
}
