//! LabelRegistry: the one authority on label and payment-hash uniqueness (900 and 901).
//!
//! Owns the in-flight claims. A request claims its payment hash and label before anything is
//! appended; a second request for the same label (or hash) is refused while the first is in
//! flight, so two concurrent requests can never both succeed. Committed invoices are looked up
//! in the live projection, which the log writer updates before the first request is answered and
//! so before its claim is released: there is no window between the two.
//!
//! It is shared by every arbiter's InvoiceCreator and called in place, not sent a message: a
//! claim is a few hash-set operations under a lock held for no longer than them, where a message
//! to one actor's thread would cost every invoice two thread wake-ups. A claim is a guard
//! ([`Claim`]) that gives itself back when dropped, so it is released on every path — also when
//! the request's task is dropped or panics.
//!
//! Two other places look at uniqueness, and neither decides it. The writer's commit-time
//! admission (`events::projection::Admission`) refuses a batch that would break it, so that no
//! bug can write a log that does not replay; and the replay fold refuses such a log. Since every
//! `InvoiceCreated` reaches the writer only through a claim held here, a refusal there is an
//! invariant broken — the creator reports it as an internal error (-1) and logs it, never as
//! 900 or 901. [`ReserveError`] is the only source of those two codes.

use std::collections::HashSet;
use std::sync::{Arc, Mutex, PoisonError};

use invoiced_events::{Label, PaymentHash};

use crate::SharedState;

/// Why a reservation was refused. The hash is checked first, as Core Lightning's `invoice` does
/// (its `createinvoice` checks the label first: [`LabelRegistry::reserve_label_first`]).
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

#[derive(Debug, Default)]
struct Claims {
    labels: HashSet<Label>,
    hashes: HashSet<PaymentHash>,
}

/// The registry: a cloneable handle, one set of claims behind it.
#[derive(Clone, Debug)]
pub struct LabelRegistry {
    state: SharedState,
    claims: Arc<Mutex<Claims>>,
}

impl LabelRegistry {
    /// A registry checking against `state`.
    pub fn new(state: SharedState) -> Self {
        LabelRegistry {
            state,
            claims: Arc::default(),
        }
    }

    /// Claims `label` and `payment_hash` for one request, until the [`Claim`] is dropped.
    ///
    /// # Errors
    /// [`ReserveError`] when either is taken or in flight.
    pub fn reserve(
        &self,
        label: &Label,
        payment_hash: &PaymentHash,
    ) -> Result<Claim, ReserveError> {
        self.claim(label, payment_hash, false)
    }

    /// [`Self::reserve`], a taken label refused before a used hash (`createinvoice`'s order).
    ///
    /// # Errors
    /// [`ReserveError`] when either is taken or in flight.
    pub fn reserve_label_first(
        &self,
        label: &Label,
        payment_hash: &PaymentHash,
    ) -> Result<Claim, ReserveError> {
        self.claim(label, payment_hash, true)
    }

    fn claim(
        &self,
        label: &Label,
        payment_hash: &PaymentHash,
        label_first: bool,
    ) -> Result<Claim, ReserveError> {
        // Claims before the projection, always in this order (the writer takes only the latter).
        let mut claims = self.claims.lock().map_err(|_| ReserveError::Unavailable)?;
        let state = self.state.read().map_err(|_| ReserveError::Unavailable)?;
        let hash_used =
            claims.hashes.contains(payment_hash) || state.invoices.hash_used(payment_hash);

        let label_taken = claims.labels.contains(label) || state.invoices.label_exists(label);
        match (hash_used, label_taken) {
            (true, true) if label_first => return Err(ReserveError::DuplicateLabel(label.clone())),
            (true, _) => return Err(ReserveError::PreimageUsed),
            (false, true) => return Err(ReserveError::DuplicateLabel(label.clone())),
            (false, false) => {}
        }
        drop(state);
        claims.labels.insert(label.clone());
        claims.hashes.insert(*payment_hash);
        Ok(Claim {
            claims: Arc::clone(&self.claims),
            label: label.clone(),
            payment_hash: *payment_hash,
        })
    }

    /// How many claims are in flight.
    pub fn in_flight(&self) -> usize {
        self.claims
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .labels
            .len()
    }
}

/// One request's claim on a label and a payment hash; given back when dropped (after the commit
/// was answered, or on any failure).
#[derive(Debug)]
#[must_use = "the claim is released as soon as it is dropped"]
pub struct Claim {
    claims: Arc<Mutex<Claims>>,
    label: Label,
    payment_hash: PaymentHash,
}

impl Drop for Claim {
    fn drop(&mut self) {
        // A poisoned lock still holds claims that must go.
        let mut claims = self.claims.lock().unwrap_or_else(PoisonError::into_inner);
        claims.labels.remove(&self.label);
        claims.hashes.remove(&self.payment_hash);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use invoiced_events::Projections;
    use std::sync::RwLock;

    #[test]
    fn one_claim_per_label_and_hash_until_released() {
        let r = LabelRegistry::new(Arc::new(RwLock::new(Projections::new())));
        let a = Label::new("a").unwrap();
        let claim = r.reserve(&a, &PaymentHash([1; 32])).unwrap();
        assert_eq!(
            r.reserve(&a, &PaymentHash([2; 32])).unwrap_err(),
            ReserveError::DuplicateLabel(a.clone())
        );
        // The hash is checked first.
        assert_eq!(
            r.reserve(&a, &PaymentHash([1; 32])).unwrap_err(),
            ReserveError::PreimageUsed
        );
        // Another handle is the same authority.
        let other = r.clone();
        assert_eq!(
            other
                .reserve(&Label::new("b").unwrap(), &PaymentHash([1; 32]))
                .unwrap_err(),
            ReserveError::PreimageUsed
        );
        drop(claim);
        assert_eq!(r.in_flight(), 0);
        let _again = other.reserve(&a, &PaymentHash([2; 32])).unwrap();
        assert_eq!(r.in_flight(), 1);
    }

    #[test]
    fn concurrent_claims_on_threads_let_exactly_one_through() {
        let r = LabelRegistry::new(Arc::new(RwLock::new(Projections::new())));
        let label = Label::new("contested").unwrap();
        let barrier = Arc::new(std::sync::Barrier::new(8));
        let threads: Vec<_> = (0..8u8)
            .map(|i| {
                let (r, label, barrier) = (r.clone(), label.clone(), Arc::clone(&barrier));
                std::thread::spawn(move || {
                    barrier.wait();
                    r.reserve(&label, &PaymentHash([i; 32])).ok()
                })
            })
            .collect();
        let held: Vec<_> = threads.into_iter().map(|t| t.join().unwrap()).collect();
        assert_eq!(held.iter().filter(|c| c.is_some()).count(), 1);
        assert_eq!(r.in_flight(), 1);
        drop(held);
        assert_eq!(r.in_flight(), 0);
    }
}
