//! The effectful side of invoiced: actix actors with one role each, talking by typed messages,
//! and the RocksDB event log with its single group-committing writer.
//!
//! - [`key_signer::KeySigner`]: key material, preimages, signatures.
//! - [`label_registry::LabelRegistry`]: label and payment-hash uniqueness with claims; not an
//!   actor but one shared authority, called in place by every arbiter's creator.
//! - [`channel_monitor::ChannelMonitor`]: the node's channels, kept in the shared
//!   [`channel_monitor::ChannelView`] the creators choose route hints from.
//! - [`invoice_creator::InvoiceCreator`]: runs one `invoice` request through the others (one
//!   per RPC arbiter, beside that arbiter's KeySigner).
//! - [`invoice_ledger::InvoiceLedger`]: settle, delete, description removal, the expiry timer.
//! - [`hold_keeper::HoldKeeper`]: hold invoices' accept, settle, cancel, and the safety cancel
//!   by block height.
//! - [`waiters::Waiters`]: `waitinvoice`, `waitanyinvoice` and `wait`, woken by committed events.
//! - [`hsm_secret`]: every `hsm_secret` format Core Lightning writes, read into the KeySigner's
//!   32 bytes.
//! - [`policy`]: pure rules beside them — [`policy::hints`] (Core Lightning's route-hint
//!   rules) and [`policy::bolt11`] (the invoice's field layout).
//! - [`store`]: the event log (one writer thread, group commit, hash chain) and the live
//!   projection it feeds.
#![deny(missing_docs)]
#![deny(rustdoc::broken_intra_doc_links)]

pub mod autoclean;
pub mod channel_monitor;
pub mod clock;
pub mod entropy;
pub mod hold_keeper;
pub mod hsm_secret;
pub mod invoice_creator;
pub mod invoice_ledger;
pub mod key_signer;
pub mod label_registry;
pub mod policy;
pub mod store;
pub mod waiters;

use std::sync::{Arc, RwLock};

use invoiced_events::Projections;

/// The live projections (invoices and channels): written only by the log writer after each
/// commit, read by everyone else.
pub type SharedState = Arc<RwLock<Projections>>;
