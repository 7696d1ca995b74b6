//! The key layout of the RocksDB event log: column families and meta keys, in one place.

/// Column family of the records: key = big-endian `u64` seq, so iteration order is log order.
pub const CF_EVENTS: &str = "events";
/// Column family of small metadata.
pub const CF_META: &str = "meta";
/// Meta key: the network name this data dir belongs to.
pub const META_NETWORK: &[u8] = b"network";
/// Meta key: the head, `seq (8 bytes BE) ‖ hash (32 bytes)`, written in every batch.
pub const META_HEAD: &[u8] = b"head";

/// Meta key where versions before checkpoint v3 kept the checkpoint (removed at open).
pub const LEGACY_META_CHECKPOINT: &[u8] = b"checkpoint";

/// The checkpoint of the log at `log` (a versioned `Snapshot` naming its seq and hash): a file
/// beside the database, `DIR/events.checkpoint`, so that a projection of a million invoices
/// never passes through RocksDB's WAL, memtable and compactions.
pub fn checkpoint_path(log: &std::path::Path) -> std::path::PathBuf {
    log.with_extension("checkpoint")
}

/// The key of record `seq`.
pub fn event_key(seq: u64) -> [u8; 8] {
    seq.to_be_bytes()
}
