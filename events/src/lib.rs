//! Pure core of invoiced: domain value types, the event types, the versioned event codec and the
//! projections as folds.
//!
//! This crate owns *what* invoiced knows and how it is written down. It must not do I/O, read a
//! clock or draw randomness: everything nondeterministic is decided by the actors and arrives here
//! inside an event, so that replaying a log always rebuilds the same state.
#![deny(missing_docs)]
#![deny(rustdoc::broken_intra_doc_links)]

pub mod amount;
pub mod channel;
pub mod codec;
pub mod description;
pub mod event;
pub mod expose;
pub mod ids;
pub mod label;
pub mod network;
pub mod projection;
pub mod proposal;
pub mod scid;

pub use amount::{AmountError, AmountOrAny, Msat, PaymentAmountError};
pub use channel::{ChannelBook, ChannelInfo, ChannelKey, PeerPolicy};
pub use codec::{CodecError, EventRecord};
pub use description::{Description, DescriptionError};
pub use event::{
    distinct_parts, earliest_expiry, Bolt12Created, CancelReason, DescriptionRemoved, Event,
    HashedCreated, HeldPart, HoldAccepted, HoldCanceled, HoldSettled, HoldState, HtlcsPaid,
    InvoiceBody, InvoiceCleaned, InvoiceCreated, InvoiceDeleted, InvoiceExpired, InvoicePaid,
    InvoiceStatus, PreimageSeal, RouteHintHop, Warning, MAX_BLOCK_HEIGHT,
};
pub use expose::ExposePrivateChannels;
pub use ids::{
    CreatedIndex, DeletedIndex, HexError, NodeId, PayIndex, PaymentHash, PaymentPreimage,
    PaymentSecret, UpdatedIndex,
};
pub use label::{Label, LabelError};
pub use network::Network;
pub use projection::{
    Admission, ApplyError, Cleaned, Counters, Hold, InvoiceBook, InvoiceEntry, InvoiceRecord,
    Payment, Projections, Rejection, Snapshot,
};
pub use proposal::{InvoiceKind, NewInvoice, Proposal, Stamp};
pub use scid::{ScidError, ShortChannelId};

/// 32 bytes with no more specific meaning: a nonce, a ciphertext, a record's hash, an offer id.
pub type Hash32 = [u8; 32];
