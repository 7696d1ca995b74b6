//! What happens to an invoice after it is created: the one rule for whether a change may happen
//! ([`InvoiceBook::check_change`], applied by admission to proposals and by the fold to records),
//! and the fold of the lifecycle records into the book.

use super::{ApplyError, InvoiceBook, InvoiceEntry, Payment, Rejection};
use crate::ids::Index;
use crate::{
    CancelReason, CreatedIndex, Event, HeldPart, HoldState, InvoicePaid, InvoiceStatus,
    UpdatedIndex,
};

/// A change to one invoice, as [`InvoiceBook::check_change`] checks it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Change {
    /// Paid: it must be unpaid and not a hold invoice.
    Pay,
    /// Expired: it must be unpaid, and not hold parts (`ACCEPTED`).
    Expire,
    /// A hold invoice accepts parts: it must be `OPEN` (and unpaid).
    Accept,
    /// A hold invoice is settled: it must be `ACCEPTED`, and the preimage revealed exactly when
    /// it was withheld.
    Settle {
        /// Whether the settle reveals a preimage.
        reveals: bool,
    },
    /// A hold invoice is canceled: it must be `OPEN` or `ACCEPTED`; by the block rule, only
    /// `ACCEPTED` with its earliest part within `blocks_before` of `height`.
    Cancel(CancelReason),
    /// Deleted: it must have this status.
    Delete(InvoiceStatus),
    /// Its description removed: once only.
    RemoveDescription,
    /// Cleaned by retention: it must have this status (paid or expired) and have had it for
    /// at least `age_s` at `now_s`.
    Clean {
        /// `Paid` or `Expired`.
        status: InvoiceStatus,
        /// The age rule, seconds.
        age_s: u64,
        /// Now, UNIX seconds.
        now_s: u64,
    },
}

impl Change {
    /// The invoice a lifecycle record names and the change it makes (`None` for a creation or a
    /// channel record).
    fn of(event: &Event) -> Option<(CreatedIndex, Change)> {
        Some(match event {
            Event::InvoicePaid(p) | Event::HtlcsPaid(crate::HtlcsPaid { paid: p, .. }) => {
                (p.created_index, Change::Pay)
            }
            Event::InvoiceExpired(e) => (e.created_index, Change::Expire),
            Event::InvoiceDeleted(d) => (d.created_index, Change::Delete(d.status)),
            Event::DescriptionRemoved(d) => (d.created_index, Change::RemoveDescription),
            Event::InvoiceCleaned(c) => (
                c.created_index,
                Change::Clean {
                    status: c.status,
                    age_s: c.age_s,
                    now_s: c.now_s,
                },
            ),
            Event::HoldAccepted(a) => (a.created_index, Change::Accept),
            Event::HoldSettled(s) => (
                s.created_index,
                Change::Settle {
                    reveals: s.revealed.is_some(),
                },
            ),
            Event::HoldCanceled(c) => (c.created_index, Change::Cancel(c.reason)),
            _ => return None,
        })
    }
}

/// `got`, if it is the counter after `last`; record `seq` names the error.
fn follows<I: Index>(seq: u64, got: I, last: I) -> Result<I, ApplyError> {
    if got == last.next() {
        Ok(got)
    } else {
        Err(ApplyError::Counter {
            seq,
            counter: I::NAME,
            got: got.get(),
            want: last.next().get(),
        })
    }
}

impl InvoiceBook {
    /// Checks a change to invoice `idx` against it (without changing anything): the one rule
    /// that admission (on proposals) and the fold (on records) both apply.
    pub(super) fn check_change(&self, idx: CreatedIndex, change: Change) -> Result<(), Rejection> {
        let rec = self.get(idx).ok_or(Rejection::UnknownInvoice(idx))?;
        match change {
            Change::Pay | Change::Expire if rec.status != InvoiceStatus::Unpaid => {
                Err(Rejection::NotUnpaid(rec.status))
            }
            Change::Pay if rec.hold.is_some() => Err(Rejection::IsHold(idx)),
            Change::Expire => match rec.hold_state() {
                Some(s @ HoldState::Accepted) => Err(Rejection::HoldState(s)),
                _ => Ok(()),
            },
            Change::Accept | Change::Settle { .. } | Change::Cancel(_) => {
                check_hold_change(rec, change)
            }
            Change::Delete(expected) if expected != rec.status => Err(Rejection::StatusChanged {
                expected,
                actual: rec.status,
            }),
            Change::RemoveDescription if rec.description_removed => {
                Err(Rejection::DescriptionAlreadyRemoved)
            }
            Change::Clean {
                status,
                age_s,
                now_s,
            } => {
                let since = rec.since(status).ok_or(Rejection::NotCleanable(idx))?;
                if age_s == 0 || since > now_s.saturating_sub(age_s) {
                    return Err(Rejection::NotCleanable(idx));
                }
                Ok(())
            }
            _ => Ok(()),
        }
    }

    /// Folds a lifecycle record in. Every check comes before any change: a record that fails
    /// leaves the book as it was.
    pub(super) fn apply_lifecycle(&mut self, seq: u64, event: &Event) -> Result<(), ApplyError> {
        let Some((idx, change)) = Change::of(event) else {
            return Ok(());
        };
        self.check_change(idx, change)
            .map_err(|rejection| ApplyError::Invoice { seq, rejection })?;
        if let Some((p, parts)) = event.paid() {
            return self.apply_paid(seq, p, parts.to_vec(), |_| {});
        }
        match event {
            Event::HoldSettled(s) => {
                let paid = InvoicePaid {
                    created_index: s.created_index,
                    pay_index: s.pay_index,
                    updated_index: s.updated_index,
                    amount_received_msat: s.amount_received_msat,
                    paid_at: s.paid_at,
                };
                // A hold invoice keeps its parts in its Hold.
                self.apply_paid(seq, &paid, vec![], |r| {
                    if let Some(h) = r.hold.as_deref_mut() {
                        h.state = HoldState::Settled;
                        h.revealed.clone_from(&s.revealed);
                    }
                })
            }
            Event::InvoiceExpired(e) => self.apply_update(seq, idx, e.updated_index, |r| {
                r.status = InvoiceStatus::Expired;
                // An open hold invoice that expires takes no payment any more.
                if let Some(h) = r.hold.as_deref_mut() {
                    h.state = HoldState::Canceled;
                }
            }),
            Event::HoldAccepted(a) => self.apply_update(seq, idx, a.updated_index, |r| {
                if let Some(h) = r.hold.as_deref_mut() {
                    h.state = HoldState::Accepted;
                    h.parts.clone_from(&a.parts);
                }
            }),
            Event::HoldCanceled(c) => self.apply_update(seq, idx, c.updated_index, |r| {
                r.status = InvoiceStatus::Expired;
                if let Some(h) = r.hold.as_deref_mut() {
                    h.state = HoldState::Canceled;
                }
            }),
            Event::DescriptionRemoved(d) => self.apply_update(seq, idx, d.updated_index, |r| {
                r.description_removed = true;
            }),
            Event::InvoiceDeleted(d) => {
                self.last_deleted_index = follows(seq, d.deleted_index, self.last_deleted_index)?;
                self.remove(idx);
                Ok(())
            }
            Event::InvoiceCleaned(c) => {
                self.last_deleted_index = follows(seq, c.deleted_index, self.last_deleted_index)?;
                self.remove(idx);
                match c.status {
                    InvoiceStatus::Paid => self.cleaned.paid += 1,
                    _ => self.cleaned.expired += 1,
                }
                Ok(())
            }
            _ => Ok(()),
        }
    }

    /// Records a payment whose counters follow the book's: the entry paid, then `also` (a hold
    /// invoice's state).
    fn apply_paid(
        &mut self,
        seq: u64,
        p: &InvoicePaid,
        parts: Vec<HeldPart>,
        also: impl FnOnce(&mut InvoiceEntry),
    ) -> Result<(), ApplyError> {
        let pay = follows(seq, p.pay_index, self.last_pay_index)?;
        follows(seq, p.updated_index, self.last_updated_index)?;
        self.last_pay_index = pay;
        self.by_pay_index.insert(pay, p.created_index);
        self.apply_update(seq, p.created_index, p.updated_index, |r| {
            r.status = InvoiceStatus::Paid;
            r.payment = Some(Payment {
                pay_index: pay,
                amount_received_msat: p.amount_received_msat,
                paid_at: p.paid_at,
                parts,
            });
            also(r);
        })
    }

    /// Marks invoice `idx` updated with `updated_index`, if that follows the book's, and changes
    /// it with `change`.
    fn apply_update(
        &mut self,
        seq: u64,
        idx: CreatedIndex,
        updated_index: UpdatedIndex,
        change: impl FnOnce(&mut InvoiceEntry),
    ) -> Result<(), ApplyError> {
        self.last_updated_index = follows(seq, updated_index, self.last_updated_index)?;
        if let Some(r) = self.slots.get_mut(idx) {
            if r.updated_index != UpdatedIndex::default() {
                self.by_updated.remove(&r.updated_index);
            }
            r.updated_index = updated_index;
            change(r);
            self.by_updated.insert(updated_index, idx);
        }
        Ok(())
    }
}

/// The hold part of [`InvoiceBook::check_change`]: accept, settle and cancel.
fn check_hold_change(rec: &InvoiceEntry, change: Change) -> Result<(), Rejection> {
    let idx = rec.created_index;
    let h = rec.hold.as_deref().ok_or(Rejection::NotHold(idx))?;
    let allowed = match change {
        Change::Accept => h.state == HoldState::Open,
        Change::Settle { .. } => h.state == HoldState::Accepted,
        Change::Cancel(CancelReason::Requested) => {
            matches!(h.state, HoldState::Open | HoldState::Accepted)
        }
        _ => h.state == HoldState::Accepted,
    };
    if !allowed || rec.status != InvoiceStatus::Unpaid {
        return Err(Rejection::HoldState(h.state));
    }
    match change {
        Change::Settle { reveals } if reveals != h.withheld => Err(Rejection::Preimage(idx)),
        Change::Cancel(CancelReason::HtlcExpiry {
            height,
            blocks_before,
        }) => match h.htlc_expiry() {
            Some(expiry) if height.saturating_add(blocks_before) >= expiry => Ok(()),
            _ => Err(Rejection::NotDue(idx)),
        },
        _ => Ok(()),
    }
}
