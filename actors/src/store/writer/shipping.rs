//! Shipping: every batch the writer commits goes to the replica, if there is one, right after
//! its local write and before any of its requests is answered. A batch the replica does not take
//! fails (and the recovery rolls it back locally); one the replica turns out to hold after all
//! is taken back here, verbatim, so the two copies agree again.

use invoiced_events::{EventRecord, Hash32};

use super::super::replica::{Replica, ShippedRecord};
use super::Writer;
use crate::store::StoreError;

/// The replica each batch is shipped to, if any.
pub(super) struct Shipping {
    replica: Option<Box<dyn Replica>>,
}

impl Shipping {
    /// Ships to `replica` (none: nothing is shipped).
    pub(super) fn new(replica: Option<Box<dyn Replica>>) -> Self {
        Shipping { replica }
    }

    /// Whether batches are shipped (then their records' bytes are kept for it).
    pub(super) fn is_on(&self) -> bool {
        self.replica.is_some()
    }

    /// Commits `records` to the replica in one go, `bytes` being their stored bytes.
    ///
    /// # Errors
    /// [`StoreError::Replica`] when the replica did not take them.
    pub(super) fn ship(
        &mut self,
        records: &[(EventRecord, Hash32)],
        bytes: &[Vec<u8>],
    ) -> Result<(), StoreError> {
        let Some(replica) = self.replica.as_mut() else {
            return Ok(());
        };
        let shipped: Vec<ShippedRecord<'_>> = records
            .iter()
            .zip(bytes)
            .map(|((r, hash), bytes)| ShippedRecord {
                seq: r.seq,
                prev_hash: &r.prev_hash,
                hash,
                bytes,
            })
            .collect();
        Ok(replica.ship(&shipped)?)
    }
}

impl Writer {
    /// The replica holds a batch this log rolled back: takes it back, verbatim.
    pub(super) fn adopt(&mut self, records: Vec<Vec<u8>>) {
        match self.store_raw(records) {
            Ok(head) => tracing::warn!(
                "stored again, up to record {head}, a batch the replica had committed after all"
            ),
            Err(e) => tracing::error!("cannot store the batch the replica holds: {e}"),
        }
    }
}
