//! The replica seam: a second copy of the log that every committed batch must reach before any
//! request in it is answered (the daemon's is PostgreSQL, `serve --replicate-to`).
//!
//! The writer ships each batch right after its local write; a batch the replica does not take
//! is rolled back locally by the writer's recovery and its requests fail, so the two copies
//! never differ in an acknowledged record.

use invoiced_events::Hash32;

/// One record as shipped: verbatim, with its place in the chain.
#[derive(Clone, Copy, Debug)]
pub struct ShippedRecord<'a> {
    /// Its sequence number.
    pub seq: u64,
    /// The previous record's chain hash.
    pub prev_hash: &'a Hash32,
    /// Its chain hash (SHA256 of `bytes`).
    pub hash: &'a Hash32,
    /// The stored bytes.
    pub bytes: &'a [u8],
}

/// Why the replica did not take a batch.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ReplicaError {
    /// Another process holds this node's stream now (a newer epoch): this one must stop writing.
    #[error(
        "deposed: another primary holds epoch {current} (this one held {ours}); nothing was stored"
    )]
    Deposed {
        /// The epoch in force.
        current: u64,
        /// The epoch this process wrote with.
        ours: u64,
    },
    /// The replica's chain does not continue with this batch (a fork averted).
    #[error("the replica's log does not end where this batch begins (at record {0}); nothing was stored")]
    Diverged(u64),
    /// The replica could not be reached or refused the transaction.
    #[error("replica unavailable: {0}")]
    Unavailable(String),
    /// The replica was lost while it committed this batch and could not be asked since: it may
    /// hold it or not. It is rolled back here and adopted again if the replica turns out to
    /// hold it, so its callers must not take it as refused (an `idempotent` retry tells).
    #[error("in doubt: the replica was lost during the commit ({0}); the batch may yet appear, retry with idempotent to learn")]
    InDoubt(String),
    /// An earlier batch reported as failed had reached the replica after all (its commit's
    /// answer was lost): these are its records, verbatim. The writer stores them, so the two
    /// copies agree again; this batch is not stored.
    #[error("an earlier batch reached the replica after all; this one was not stored, retry it")]
    Ahead(Vec<Vec<u8>>),
}

/// A second copy of the log, written by the writer thread only.
pub trait Replica: Send {
    /// Commits `records` (one batch, in order) in one transaction, or nothing.
    ///
    /// # Errors
    /// [`ReplicaError`] when it did not: the writer then rolls the batch back locally.
    fn ship(&mut self, records: &[ShippedRecord<'_>]) -> Result<(), ReplicaError>;
}
