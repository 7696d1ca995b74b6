//! The order in which the HTLCs of each payment arrived: a line per payment, a place in it per
//! hook call, taken as the call is read.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use tokio::sync::oneshot;

use super::payload::Htlc;

/// An HTLC as the hook delivered it.
pub enum Arrival {
    /// Not for invoiced to decide: unreadable, or not for this node.
    Continue,
    /// A payment to this node, with its place in line.
    Part(Box<Htlc>, Place),
}

/// The order in which the HTLCs of each payment arrived. Each hook call asks invoiced about the
/// invoice before its part joins the set, and those answers come back in any order; without a
/// line, a later part could found the set and name its `total_msat`. Core Lightning's `htlc_set`
/// takes parts as they arrive, and so does this.
#[derive(Default)]
pub struct ArrivalOrder {
    /// The last place taken for each payment.
    last: Mutex<HashMap<[u8; 32], LastPlace>>,
    taken: AtomicU64,
}

impl ArrivalOrder {
    /// The next place in line for `hash`, behind every place taken for it and not yet left.
    pub fn arrive(self: &Arc<Self>, hash: [u8; 32]) -> Place {
        let number = self.taken.fetch_add(1, Ordering::Relaxed);
        let (leaving, left) = oneshot::channel();
        let ahead = self
            .last
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(hash, LastPlace { number, left });
        Place {
            order: Arc::clone(self),
            hash,
            number,
            ahead: ahead.map(|a| a.left),
            _leaving: leaving,
        }
    }
}

/// The last place in a payment's line: its number, and what says it has been left.
struct LastPlace {
    number: u64,
    left: oneshot::Receiver<()>,
}

/// A place in a payment's line, left when dropped.
pub struct Place {
    order: Arc<ArrivalOrder>,
    hash: [u8; 32],
    number: u64,
    ahead: Option<oneshot::Receiver<()>>,
    /// Dropped with the place: the one behind may go.
    _leaving: oneshot::Sender<()>,
}

impl Place {
    /// Waits until the place ahead has been left. Cancel-safe: a wait cut short leaves the
    /// place still behind it.
    pub async fn wait(&mut self) {
        if let Some(ahead) = self.ahead.as_mut() {
            // Its sender is only ever dropped, never used: the error is the signal.
            let _ = ahead.await;
            self.ahead = None;
        }
    }
}

impl Drop for Place {
    fn drop(&mut self) {
        let mut last = self
            .order
            .last
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if last
            .get(&self.hash)
            .is_some_and(|l| l.number == self.number)
        {
            last.remove(&self.hash);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    /// Places for one payment are served in the order taken, whichever asks first; another
    /// payment's line is apart; a line is forgotten once its last place is left.
    #[tokio::test]
    async fn parts_take_their_turn_in_arrival_order() {
        let order = Arc::new(ArrivalOrder::default());
        let (a, b) = ([1u8; 32], [2u8; 32]);
        let (mut first, mut second, mut third) =
            (order.arrive(a), order.arrive(a), order.arrive(a));
        let mut other = order.arrive(b);
        let turn = Duration::from_millis(50);
        assert!(
            tokio::time::timeout(turn, third.wait()).await.is_err(),
            "third went before the first two"
        );
        assert!(
            tokio::time::timeout(turn, second.wait()).await.is_err(),
            "second went before the first"
        );
        other.wait().await;
        first.wait().await;
        drop(first);
        second.wait().await;
        assert!(
            tokio::time::timeout(turn, third.wait()).await.is_err(),
            "third went before the second left"
        );
        drop(second);
        drop(other);
        assert_eq!(
            order.last.lock().unwrap().len(),
            1,
            "only the third's line is left"
        );
        // A place whose wait was cut short waits again for what is still ahead; here, nothing.
        tokio::time::timeout(turn, third.wait())
            .await
            .expect("third's turn");
        drop(third);
        assert!(order.last.lock().unwrap().is_empty());
    }
}
