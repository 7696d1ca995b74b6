//! Opening the RocksDB log: its options and column families, the network it belongs to, and
//! the projection it starts with (the checkpoint, then the records after it).

use std::path::Path;

use invoiced_events::{Network, Projections};
use rocksdb::{ColumnFamilyDescriptor, Options, WriteOptions, DB};

use super::keys::{
    checkpoint_path, decode_head, CF_EVENTS, CF_META, LEGACY_META_CHECKPOINT, META_NETWORK,
};
use super::checkpoint::load_checkpoint;
use super::replay::replay_onto;
use super::StoreError;

pub(super) fn db_options() -> Options {
    let mut opts = Options::default();
    opts.create_if_missing(true);
    opts.create_missing_column_families(true);
    opts
}

/// Opens (or creates) the log at `path` for `network`, replaying it into a fresh projection.
pub(super) fn open_db(path: &Path, network: Network) -> Result<(DB, Projections), StoreError> {
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
    let state = replay_onto(&db, start)?;
    tracing::info!("replayed records {}..={} onto the checkpoint at {from}", from + 1, state.head().0);
    Ok((db, state))
}

/// The seq of a stored head, 0 when there is none or it is malformed.
pub(super) fn head_seq(stored: Option<&[u8]>) -> u64 {
    stored.and_then(decode_head).map_or(0, |(seq, _)| seq)
}

pub(super) fn cf<'a>(db: &'a DB, name: &str) -> Result<&'a rocksdb::ColumnFamily, StoreError> {
    db.cf_handle(name).ok_or_else(|| StoreError::Inconsistent(format!("no {name} column family")))
}

/// Opens the log at `path` read-only (no lock taken), as it is now.
///
/// # Errors
/// [`StoreError::Db`] when RocksDB refuses.
pub fn open_read_only(path: &Path) -> Result<DB, StoreError> {
    Ok(DB::open_cf_for_read_only(&Options::default(), path, [CF_EVENTS, CF_META], false)?)
}

