//! The projection in a form that can be stored: the checkpoint's body. Indexes are rebuilt
//! when it is loaded, and a checkpoint that breaks the book's rules is refused.

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};

use super::book::{InvoiceBook, Slots};
use super::{ApplyError, InvoiceEntry, Projections};
use crate::channel::ChannelBook;
use crate::{CreatedIndex, DeletedIndex, Hash32, PayIndex, PaymentHash, UpdatedIndex};

/// The last value of each counter. Encoded as the four numbers in this order, as the array
/// that held them before (checkpoint v3 is unchanged).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counters {
    /// `created_index`.
    pub created: CreatedIndex,
    /// `pay_index`.
    pub pay: PayIndex,
    /// `updated_index`.
    pub updated: UpdatedIndex,
    /// `deleted_index`.
    pub deleted: DeletedIndex,
}

/// A projection in a form that can be stored: a checkpoint. Indexes are rebuilt on load.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Snapshot {
    /// Sequence number of the last record it includes.
    pub head_seq: u64,
    /// That record's chain hash.
    pub head_hash: Hash32,
    /// The invoices from `created_index` `counters[0] + 1 - invoices.len()` to `counters[0]`,
    /// `None` where deleted (deleted ones before the first live one are left out).
    pub invoices: Vec<Option<InvoiceEntry>>,
    /// Payment hashes of deleted invoices (still never to be reused).
    pub retired_hashes: Vec<PaymentHash>,
    /// The counters' last values.
    pub counters: Counters,
    /// Known channels.
    pub channels: Vec<crate::ChannelInfo>,
    /// Invoices cleaned by retention (since checkpoint v4).
    pub cleaned: super::book::Cleaned,
}

impl From<&Projections> for Snapshot {
    fn from(p: &Projections) -> Self {
        let b = &p.invoices;
        let mut retired: Vec<PaymentHash> = b.retired_hashes.iter().copied().collect();
        retired.sort_unstable();
        Snapshot {
            head_seq: p.head_seq,
            head_hash: p.head_hash,
            invoices: b.slots.entries.iter().cloned().collect(),
            retired_hashes: retired,
            counters: Counters {
                created: b.slots.last,
                pay: b.last_pay_index,
                updated: b.last_updated_index,
                deleted: b.last_deleted_index,
            },
            channels: p.channels.iter().cloned().collect(),
            cleaned: b.cleaned,
        }
    }
}

impl TryFrom<Snapshot> for Projections {
    type Error = ApplyError;

    /// Rebuilds the projections (and their indexes) from a checkpoint, refusing one whose
    /// invoices are out of order or collide (it is then ignored and the log replayed).
    fn try_from(s: Snapshot) -> Result<Self, ApplyError> {
        let last = s.counters.created;
        let mut b = InvoiceBook {
            last_pay_index: s.counters.pay,
            last_updated_index: s.counters.updated,
            last_deleted_index: s.counters.deleted,
            cleaned: s.cleaned,
            ..Default::default()
        };
        b.retired_hashes.extend(s.retired_hashes);
        let seq = s.head_seq;
        let len = s.invoices.len() as u64;
        if len > last.get() || last.get() == u64::MAX {
            return Err(ApplyError::CreatedIndex {
                seq,
                got: len,
                want: last.get(),
            });
        }
        // The decoded vector becomes the slots as it is (no copy of a million entries).
        b.slots = Slots {
            entries: VecDeque::from(s.invoices),
            last,
        };
        b.reserve(b.slots.entries.len());
        let first = b.slots.first();
        for i in 0..len {
            b.index(CreatedIndex(first.get() + i), seq)?;
        }
        let mut channels = ChannelBook::default();
        for c in &s.channels {
            channels.upsert(c);
        }
        Ok(Projections {
            invoices: b,
            channels,
            head_seq: s.head_seq,
            head_hash: s.head_hash,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::Counters;

    #[test]
    fn counters_encode_as_the_array_they_replace() {
        let config = bincode::config::standard();
        let named = Counters {
            created: crate::CreatedIndex(300),
            pay: crate::PayIndex(2),
            updated: crate::UpdatedIndex(70_000),
            deleted: crate::DeletedIndex(0),
        };
        let array: [u64; 4] = [300, 2, 70_000, 0];
        assert_eq!(
            bincode::serde::encode_to_vec(named, config).unwrap(),
            bincode::serde::encode_to_vec(array, config).unwrap()
        );
    }
}
