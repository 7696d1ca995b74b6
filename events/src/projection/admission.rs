//! The writer's commit-time rules: which requests of a batch may be written, and the counters
//! each gets. Races between lifecycle events are decided here, in commit order; label and
//! payment-hash uniqueness is only asserted (the LabelRegistry decides it; see the module docs
//! of `projection`).

use std::collections::HashSet;

use super::lifecycle::Change;
use super::InvoiceBook;
use crate::ids::{CreatedIndex, DeletedIndex, PayIndex, PaymentHash, UpdatedIndex};
use crate::proposal::{Proposal, Stamp};
use crate::{Event, HoldState, InvoiceStatus, Label};

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
    UnknownInvoice(CreatedIndex),
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
    /// A clean of an invoice that is not paid or expired, or not old enough for its rule.
    #[error("invoice {0} is not old enough to clean")]
    NotCleanable(CreatedIndex),
    /// A hold operation on an invoice that is not a hold invoice (or a withheld preimage on a
    /// plain one).
    #[error("invoice {0} is not a hold invoice")]
    NotHold(CreatedIndex),
    /// A plain payment (`settleinvoice`) of a hold invoice: its parts must be held.
    #[error("invoice {0} is a hold invoice: its payments are held, not settled at once")]
    IsHold(CreatedIndex),
    /// A hold transition its state does not allow (holdinvoice's words).
    #[error("Holdinvoice is in wrong state: `{}`", .0.as_str())]
    HoldState(HoldState),
    /// A settle that reveals a preimage the invoice already has, or lacks one it needs.
    #[error("invoice {0}: the settle's preimage does not fit how the invoice was made")]
    Preimage(CreatedIndex),
    /// An automatic cancel whose block rule does not hold yet.
    #[error("invoice {0}: its held parts are not yet within the cancel margin")]
    NotDue(CreatedIndex),
    /// Two events of one request name the same invoice, label or hash.
    #[error("request names invoice {0} twice")]
    Conflict(String),
}

/// Admission of the requests of one batch, in commit order (see the module docs).
#[derive(Debug)]
pub struct Admission<'a> {
    pub(super) book: &'a InvoiceBook,
    pub(super) created: CreatedIndex,
    pub(super) pay: PayIndex,
    pub(super) updated: UpdatedIndex,
    pub(super) deleted: DeletedIndex,
    pub(super) labels_added: HashSet<Label>,
    pub(super) labels_freed: HashSet<Label>,
    pub(super) hashes_added: HashSet<PaymentHash>,
    /// Invoices a lifecycle event of this batch has already changed.
    pub(super) touched: HashSet<CreatedIndex>,
}

impl Admission<'_> {
    /// Admits one request's proposals (all or none) and stamps them into the events to record.
    ///
    /// # Errors
    /// [`Rejection`] when a proposal conflicts with the state or with an admitted request;
    /// nothing of the request is then recorded here.
    pub fn admit(&mut self, proposals: Vec<Proposal>) -> Result<Vec<Event>, Rejection> {
        let mut local_labels = HashSet::new();
        let mut local_touched = HashSet::new();
        for p in &proposals {
            if let Proposal::Invoice(n) = p {
                let n = &n.body;
                if self.hashes_added.contains(&n.payment_hash)
                    || self.book.hash_used(&n.payment_hash)
                {
                    return Err(Rejection::PreimageUsed);
                }
                let taken = self.labels_added.contains(&n.label)
                    || (self.book.label_exists(&n.label) && !self.labels_freed.contains(&n.label));
                if taken || !local_labels.insert(n.label.clone()) {
                    return Err(Rejection::DuplicateLabel(n.label.clone()));
                }
            }
            if let (Some(idx), Some(change)) = (p.target(), change_of(p)) {
                // Changed earlier in this batch (or twice in this request): its status is no
                // longer what the book says.
                if self.touched.contains(&idx) || !local_touched.insert(idx) {
                    return Err(Rejection::Conflict(idx.to_string()));
                }
                self.book.check_change(idx, change)?;
            }
        }
        let mut events = Vec::with_capacity(proposals.len());
        for p in proposals {
            let mut stamp = Stamp::default();
            match &p {
                Proposal::Invoice(n) => {
                    self.created = self.created.next();
                    stamp.created = self.created;
                    self.labels_added.insert(n.body.label.clone());
                    self.hashes_added.insert(n.body.payment_hash);
                }
                Proposal::Paid { .. } | Proposal::HoldSettled { .. } => {
                    self.pay = self.pay.next();
                    self.updated = self.updated.next();
                    (stamp.pay, stamp.updated) = (self.pay, self.updated);
                }
                Proposal::Expired { .. }
                | Proposal::DescriptionRemoved { .. }
                | Proposal::HoldAccepted { .. }
                | Proposal::HoldCanceled { .. } => {
                    self.updated = self.updated.next();
                    stamp.updated = self.updated;
                }
                Proposal::Deleted { created_index, .. }
                | Proposal::Cleaned { created_index, .. } => {
                    self.deleted = self.deleted.next();
                    stamp.deleted = self.deleted;
                    if let Some(r) = self.book.get(*created_index) {
                        self.labels_freed.insert(r.label.clone());
                    }
                }
                Proposal::ChannelOpened(_)
                | Proposal::ChannelUpdated(_)
                | Proposal::ChannelClosed(_) => {}
            }
            events.push(p.stamp(stamp));
        }
        self.touched.extend(local_touched);
        Ok(events)
    }
}

/// The change a lifecycle proposal makes to its invoice.
fn change_of(p: &Proposal) -> Option<Change> {
    match p {
        Proposal::Paid { .. } => Some(Change::Pay),
        Proposal::Expired { .. } => Some(Change::Expire),
        Proposal::Deleted { status, .. } => Some(Change::Delete(*status)),
        Proposal::Cleaned {
            status,
            age_s,
            now_s,
            ..
        } => Some(Change::Clean {
            status: *status,
            age_s: *age_s,
            now_s: *now_s,
        }),
        Proposal::DescriptionRemoved { .. } => Some(Change::RemoveDescription),
        Proposal::HoldAccepted { .. } => Some(Change::Accept),
        Proposal::HoldSettled { revealed, .. } => Some(Change::Settle {
            reveals: revealed.is_some(),
        }),
        Proposal::HoldCanceled { reason, .. } => Some(Change::Cancel(*reason)),
        _ => None,
    }
}
