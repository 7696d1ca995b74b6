//! LabelRegistry: the one authority on label and payment-hash uniqueness (900 and 901).
//!
//! Owns the in-flight claims. A request claims its payment hash and label before anything is
//! appended; a second request for the same label (or hash) is refused while the first is in
//! flight, so two concurrent requests can never both succeed. Committed invoices are looked up
//! in the live projection, which the log writer updates before the first request is answered and
//! so before its claim is released: there is no window between the two.
//!
//! Two other places look at uniqueness, and neither decides it. The writer's commit-time
//! admission (`events::projection::Admission`) refuses a batch that would break it, so that no
//! bug can write a log that does not replay; and the replay fold refuses such a log. Since every
//! `InvoiceCreated` reaches the writer only through a claim held here, a refusal there is an
//! invariant broken — the creator reports it as an internal error (-1) and logs it, never as
//! 900 or 901. [`ReserveError`] is the only source of those two codes.

use std::collections::HashSet;

use actix::prelude::*;
use invoiced_events::Label;
use lightning_types::payment::PaymentHash;

use crate::SharedState;

/// Why a reservation was refused. The hash is checked first, as Core Lightning does.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ReserveError {
    /// The payment hash is used (or in flight) — 901.
    #[error("preimage already used")]
    PreimageUsed,
    /// The label exists (or is in flight) — 900.
    #[error("Duplicate label '{0}'")]
    DuplicateLabel(Label),
    /// The projection's lock was poisoned by a panic elsewhere — -1.
    #[error("invoice projection unavailable")]
    Unavailable,
}

/// The registry.
#[derive(Debug)]
pub struct LabelRegistry {
    state: SharedState,
    labels: HashSet<Label>,
    hashes: HashSet<PaymentHash>,
}

impl LabelRegistry {
    /// A registry checking against `state`.
    pub fn new(state: SharedState) -> Self {
        LabelRegistry { state, labels: HashSet::new(), hashes: HashSet::new() }
    }

    /// Claims `label` and `payment_hash` for one request.
    ///
    /// # Errors
    /// [`ReserveError`] when either is taken or in flight.
    pub fn reserve(&mut self, label: &Label, payment_hash: &PaymentHash) -> Result<(), ReserveError> {
        let state = self.state.read().map_err(|_| ReserveError::Unavailable)?;
        if self.hashes.contains(payment_hash) || state.invoices.hash_used(&payment_hash.0) {
            return Err(ReserveError::PreimageUsed);
        }
        if self.labels.contains(label) || state.invoices.label_exists(label) {
            return Err(ReserveError::DuplicateLabel(label.clone()));
        }
        drop(state);
        self.labels.insert(label.clone());
        self.hashes.insert(*payment_hash);
        Ok(())
    }

    /// Gives a claim back (after commit, or after any failure).
    pub fn release(&mut self, label: &Label, payment_hash: &PaymentHash) {
        self.labels.remove(label);
        self.hashes.remove(payment_hash);
    }

    /// How many claims are in flight.
    pub fn in_flight(&self) -> usize {
        self.labels.len()
    }
}

impl Actor for LabelRegistry {
    type Context = Context<Self>;
}

/// Command: claim a label and payment hash.
#[derive(Message)]
#[rtype(result = "Result<(), ReserveError>")]
pub struct ReserveInvoice {
    /// The label.
    pub label: Label,
    /// The payment hash.
    pub payment_hash: PaymentHash,
}

impl Handler<ReserveInvoice> for LabelRegistry {
    type Result = Result<(), ReserveError>;
    fn handle(&mut self, msg: ReserveInvoice, _: &mut Context<Self>) -> Self::Result {
        self.reserve(&msg.label, &msg.payment_hash)
    }
}

/// Command: release a claim.
#[derive(Message)]
#[rtype(result = "()")]
pub struct ReleaseInvoice {
    /// The label.
    pub label: Label,
    /// The payment hash.
    pub payment_hash: PaymentHash,
}

impl Handler<ReleaseInvoice> for LabelRegistry {
    type Result = ();
    fn handle(&mut self, msg: ReleaseInvoice, _: &mut Context<Self>) {
        self.release(&msg.label, &msg.payment_hash);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use invoiced_events::Projections;
    use std::sync::{Arc, RwLock};

    #[test]
    fn one_claim_per_label_and_hash_until_released() {
        let mut r = LabelRegistry::new(Arc::new(RwLock::new(Projections::new())));
        let a = Label::new("a").unwrap();
        r.reserve(&a, &PaymentHash([1; 32])).unwrap();
        assert_eq!(r.reserve(&a, &PaymentHash([2; 32])), Err(ReserveError::DuplicateLabel(a.clone())));
        // The hash is checked first.
        assert_eq!(r.reserve(&a, &PaymentHash([1; 32])), Err(ReserveError::PreimageUsed));
        r.release(&a, &PaymentHash([1; 32]));
        r.reserve(&a, &PaymentHash([2; 32])).unwrap();
        assert_eq!(r.in_flight(), 1);
    }
}
