//! The projection in a form that can be stored: the checkpoint's body. Indexes are rebuilt
//! when it is loaded, and a checkpoint that breaks the book's rules is refused.

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};

use super::book::{InvoiceBook, Slots};
use super::{ApplyError, InvoiceEntry, Projections};
use crate::channel::ChannelBook;
use crate::Hash32;

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
    pub retired_hashes: Vec<Hash32>,
    /// Counters: created, pay, updated, deleted.
    pub counters: [u64; 4],
    /// Known channels.
    pub channels: Vec<crate::ChannelInfo>,
}

impl From<&Projections> for Snapshot {
    fn from(p: &Projections) -> Self {
        let b = &p.invoices;
        let mut retired: Vec<Hash32> = b.retired_hashes.iter().copied().collect();
        retired.sort_unstable();
        Snapshot {
            head_seq: p.head_seq,
            head_hash: p.head_hash,
            invoices: b.slots.entries.iter().cloned().collect(),
            retired_hashes: retired,
            counters: [b.slots.last, b.last_pay_index, b.last_updated_index, b.last_deleted_index],
            channels: p.channels.iter().cloned().collect(),
        }
    }
}

impl TryFrom<Snapshot> for Projections {
    type Error = ApplyError;

    /// Rebuilds the projections (and their indexes) from a checkpoint, refusing one whose
    /// invoices are out of order or collide (it is then ignored and the log replayed).
    fn try_from(s: Snapshot) -> Result<Self, ApplyError> {
        let last = s.counters[0];
        let mut b = InvoiceBook {
            last_pay_index: s.counters[1],
            last_updated_index: s.counters[2],
            last_deleted_index: s.counters[3],
            ..Default::default()
        };
        b.retired_hashes.extend(s.retired_hashes);
        let seq = s.head_seq;
        let len = s.invoices.len() as u64;
        if len > last || last == u64::MAX {
            return Err(ApplyError::CreatedIndex { seq, got: len, want: last });
        }
        // The decoded vector becomes the slots as it is (no copy of a million entries).
        b.slots = Slots { entries: VecDeque::from(s.invoices), last };
        b.reserve(b.slots.entries.len());
        let first = b.slots.first();
        for i in 0..len {
            b.index(first + i, seq)?;
        }
        let mut channels = ChannelBook::default();
        for c in &s.channels {
            channels.upsert(c);
        }
        Ok(Projections { invoices: b, channels, head_seq: s.head_seq, head_hash: s.head_hash })
    }
}

