//! Pure policy: rules with no actor, no I/O and no state of their own, which the actors apply.
//! Everything here is a function of its inputs (randomness arrives as a drawn number), so it is
//! tested directly and benchmarked alone.
//!
//! - [`bolt11`]: the invoice's field layout in Core Lightning's order, and the fallback rules.
//! - [`bigsize`]: BOLT 1's variable-length integer, for the TLV streams of both.
//! - [`bolt12`]: BOLT12 invoices completed and signed as Core Lightning's `createinvoice` does.
//! - [`hints`]: Core Lightning's route-hint candidate filter, the weighted single pick,
//!   round-robin and the warnings.
//! - [`onion`]: BOLT 4 onions as the hop they are for reads them.

pub mod bigsize;
pub mod bolt11;
pub mod bolt12;
pub mod hints;
pub mod onion;
