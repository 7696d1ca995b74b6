//! The storage contract the log relies on, checked on both storages with the same assertions,
//! so that what the actor tests prove on memory holds on RocksDB.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use invoiced_actors::store::engine::{Batch, Column, Engine};
use invoiced_actors::store::{MemStorage, RocksStorage, Storage};

fn key(n: u64) -> [u8; 8] {
    n.to_be_bytes()
}

fn scan_from(engine: &dyn Engine, from: u64, stop_after: usize) -> Vec<(u64, Vec<u8>)> {
    let mut seen = Vec::new();
    engine
        .scan(Column::Events, &key(from), &mut |k, v| {
            seen.push((u64::from_be_bytes(k.try_into().unwrap()), v.to_vec()));
            seen.len() < stop_after
        })
        .unwrap();
    seen
}

fn contract(storage: &dyn Storage) {
    let engine = storage.open().unwrap();
    // A batch lands whole, columns apart; keys scan in order from any start, and a scan stops
    // when told.
    let mut batch = Batch::new();
    for n in [5u64, 1, 300, 2, 256] {
        batch.put(Column::Events, key(n), format!("v{n}"));
    }
    batch.put(Column::Meta, b"head".as_slice(), b"h1".as_slice());
    engine.write(batch).unwrap();
    assert_eq!(
        engine.get(Column::Meta, b"head").unwrap().as_deref(),
        Some(b"h1".as_slice())
    );
    assert_eq!(
        engine.get(Column::Events, b"head").unwrap(),
        None,
        "columns are apart"
    );
    let all: Vec<u64> = scan_from(engine.as_ref(), 0, usize::MAX)
        .into_iter()
        .map(|(k, _)| k)
        .collect();
    assert_eq!(
        all,
        [1, 2, 5, 256, 300],
        "big-endian keys scan in numeric order"
    );
    assert_eq!(
        scan_from(engine.as_ref(), 3, 2),
        [(5, b"v5".to_vec()), (256, b"v256".to_vec())]
    );
    // Sorted multi-reads hand each value over in request order, a missing one as None.
    let mut got = Vec::new();
    engine
        .get_sorted(Column::Events, &[key(1), key(3), key(300)], &mut |i, v| {
            got.push((i, v.map(<[u8]>::to_vec)));
            Ok(())
        })
        .unwrap();
    assert_eq!(
        got,
        [
            (0, Some(b"v1".to_vec())),
            (1, None),
            (2, Some(b"v300".to_vec()))
        ]
    );
    // Removal of a key and of a range (its end excluded); an empty range removes nothing.
    let mut batch = Batch::new();
    batch.delete(Column::Events, key(1));
    batch.delete_range(Column::Events, key(5), key(300));
    batch.delete_range(Column::Events, key(300), key(2));
    engine.write(batch).unwrap();
    let left: Vec<u64> = scan_from(engine.as_ref(), 0, usize::MAX)
        .into_iter()
        .map(|(k, _)| k)
        .collect();
    assert_eq!(left, [2, 300]);
    engine.flush().unwrap();
    // A read-only engine beside the writer sees what is written and refuses to write.
    let ro = storage.open_read_only().unwrap();
    assert_eq!(
        ro.get(Column::Events, &key(2)).unwrap().as_deref(),
        Some(b"v2".as_slice())
    );
    let mut batch = Batch::new();
    batch.put(Column::Events, key(9), b"no".as_slice());
    assert!(ro.write(batch).is_err());
    drop(ro);
    // The data outlives the engine, and so does the checkpoint, replaced whole.
    drop(engine);
    assert_eq!(storage.load_checkpoint().unwrap(), None);
    storage.save_checkpoint(b"first").unwrap();
    storage.save_checkpoint(b"second").unwrap();
    assert_eq!(
        storage.load_checkpoint().unwrap().as_deref(),
        Some(b"second".as_slice())
    );
    let engine = storage.open().unwrap();
    let left: Vec<u64> = scan_from(engine.as_ref(), 0, usize::MAX)
        .into_iter()
        .map(|(k, _)| k)
        .collect();
    assert_eq!(left, [2, 300]);
}

#[test]
fn memory_keeps_the_contract() {
    let memory = MemStorage::new();
    contract(&memory);
    assert_eq!(
        memory.free_bytes().unwrap(),
        None,
        "memory is not on a filesystem"
    );
}

#[test]
fn rocksdb_keeps_the_contract() {
    let dir = tempfile::tempdir().unwrap();
    let rocks = RocksStorage::new(dir.path().join("events"));
    contract(&rocks);
    assert!(rocks.free_bytes().unwrap().unwrap() > 0);
    let _: Arc<dyn Storage> = Arc::new(rocks);
}
