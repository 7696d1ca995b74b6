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

/// The stored head: `seq` (8 bytes, big-endian) ‖ its record's chain hash (32 bytes).
pub fn encode_head(seq: u64, hash: &[u8; 32]) -> [u8; 40] {
    let mut head = [0u8; 40];
    head[..8].copy_from_slice(&seq.to_be_bytes());
    head[8..].copy_from_slice(hash);
    head
}

/// A stored head read back, or `None` if it is not 40 bytes.
pub fn decode_head(bytes: &[u8]) -> Option<(u64, [u8; 32])> {
    let bytes: &[u8; 40] = bytes.try_into().ok()?;
    let (seq, hash) = bytes.split_at(8);
    Some((
        u64::from_be_bytes(seq.try_into().ok()?),
        hash.try_into().ok()?,
    ))
}

/// The seq of a stored head, 0 when there is none or it is malformed.
pub(super) fn head_seq(stored: Option<&[u8]>) -> u64 {
    stored.and_then(decode_head).map_or(0, |(seq, _)| seq)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_head_round_trips_and_a_wrong_length_is_refused() {
        let head = encode_head(0x0102_0304_0506_0708, &[9; 32]);
        assert_eq!(head[..8], [1, 2, 3, 4, 5, 6, 7, 8]);
        assert_eq!(decode_head(&head), Some((0x0102_0304_0506_0708, [9; 32])));
        assert_eq!(decode_head(&head[..39]), None);
        assert_eq!(decode_head(&[0; 41]), None);
    }
}
