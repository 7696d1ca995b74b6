//! The writer's commit-time rules: which requests of a batch may be written, and the counters
//! each gets. Races between lifecycle events are decided here, in commit order; label and
//! payment-hash uniqueness is only asserted (the LabelRegistry decides it; see the module docs
//! of `projection`).

use std::collections::HashSet;

use super::InvoiceBook;
use crate::{Event, Hash32, InvoiceStatus, Label};

/// Why the writer refused to commit a request. Nothing of that request was written.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Rejection {
    /// The label is taken.
    #[error("Duplicate label '{0}'")]
    DuplicateLabel(Label),
    /// The payment hash was used before.
    #[error("preimage already used")]
    PreimageUsed,
    /// No invoice with that `created_index` exists (any more).
    #[error("unknown invoice {0}")]
    UnknownInvoice(u64),
    /// A payment or expiry for an invoice that is no longer unpaid.
    #[error("invoice is {} not unpaid", .0.as_str())]
    NotUnpaid(InvoiceStatus),
    /// A deletion whose expected status is no longer the invoice's.
    #[error("Invoice status is {} not {}", .actual.as_str(), .expected.as_str())]
    StatusChanged {
        /// The status the deletion expected.
        expected: InvoiceStatus,
        /// The invoice's status now.
        actual: InvoiceStatus,
    },
    /// The description was removed already.
    #[error("Invoice description already removed")]
    DescriptionAlreadyRemoved,
    /// Two events of one request name the same invoice, label or hash.
    #[error("request names invoice {0} twice")]
    Conflict(String),
}

/// Admission of the requests of one batch, in commit order (see the module docs).
#[derive(Debug)]
pub struct Admission<'a> {
    pub(super) book: &'a InvoiceBook,
    pub(super) created: u64,
    pub(super) pay: u64,
    pub(super) updated: u64,
    pub(super) deleted: u64,
    pub(super) labels_added: HashSet<Label>,
    pub(super) labels_freed: HashSet<Label>,
    pub(super) hashes_added: HashSet<Hash32>,
    /// Invoices a lifecycle event of this batch has already changed.
    pub(super) touched: HashSet<u64>,
}

impl Admission<'_> {
    /// Admits one request's events (all or none), stamping their counters.
    ///
    /// # Errors
    /// [`Rejection`] when an event conflicts with the state or with an admitted request; the
    /// events are then not stamped and nothing is recorded.
    pub fn admit(&mut self, events: &mut [Event]) -> Result<(), Rejection> {
        let mut local_labels = HashSet::new();
        let mut local_touched = HashSet::new();
        for e in events.iter() {
            match e {
                Event::InvoiceCreated(c) => {
                    if self.hashes_added.contains(&c.payment_hash) || self.book.hash_used(&c.payment_hash) {
                        return Err(Rejection::PreimageUsed);
                    }
                    let taken = self.labels_added.contains(&c.label)
                        || (self.book.label_exists(&c.label) && !self.labels_freed.contains(&c.label));
                    if taken || !local_labels.insert(c.label.clone()) {
                        return Err(Rejection::DuplicateLabel(c.label.clone()));
                    }
                }
                Event::InvoicePaid(_) | Event::InvoiceExpired(_) | Event::InvoiceDeleted(_) | Event::DescriptionRemoved(_) => {
                    let idx = lifecycle_target(e);
                    if self.touched.contains(&idx) {
                        // Changed earlier in this batch: its status is no longer what the book says.
                        return Err(Rejection::Conflict(idx.to_string()));
                    }
                    if !local_touched.insert(idx) {
                        return Err(Rejection::Conflict(idx.to_string()));
                    }
                    self.book.check_lifecycle(e)?;
                }
                Event::ChannelOpened(_) | Event::ChannelUpdated(_) | Event::ChannelClosed(_) => {}
            }
        }
        for e in events.iter_mut() {
            match e {
                Event::InvoiceCreated(c) => {
                    self.created += 1;
                    c.created_index = self.created;
                    self.labels_added.insert(c.label.clone());
                    self.hashes_added.insert(c.payment_hash);
                }
                Event::InvoicePaid(p) => {
                    self.pay += 1;
                    self.updated += 1;
                    p.pay_index = self.pay;
                    p.updated_index = self.updated;
                }
                Event::InvoiceExpired(x) => {
                    self.updated += 1;
                    x.updated_index = self.updated;
                }
                Event::DescriptionRemoved(d) => {
                    self.updated += 1;
                    d.updated_index = self.updated;
                }
                Event::InvoiceDeleted(d) => {
                    self.deleted += 1;
                    d.deleted_index = self.deleted;
                    if let Some(r) = self.book.get(d.created_index) {
                        self.labels_freed.insert(r.label.clone());
                    }
                }
                Event::ChannelOpened(_) | Event::ChannelUpdated(_) | Event::ChannelClosed(_) => {}
            }
        }
        self.touched.extend(local_touched);
        Ok(())
    }
}

fn lifecycle_target(e: &Event) -> u64 {
    match e {
        Event::InvoicePaid(p) => p.created_index,
        Event::InvoiceExpired(x) => x.created_index,
        Event::InvoiceDeleted(d) => d.created_index,
        Event::DescriptionRemoved(d) => d.created_index,
        _ => 0,
    }
}

