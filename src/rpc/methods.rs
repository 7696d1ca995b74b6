//! The one table of methods: each method's name, the parameters it binds, its category and
//! help text, and its handler. Dispatch (`super::call`) and `help` both read it, so a method
//! cannot be answered without being documented, nor documented without being answered.

use std::future::Future;
use std::pin::Pin;

use serde_json::value::RawValue;

use super::error::RpcError;
use super::params::ParamSpec;
use super::{
    autoclean, channels, checkpart, createinvoice, decode, help, hold, invoice, lifecycle,
    listinvoices, selfpay, to_raw, RpcContext,
};

/// What a handler answers: the result as JSON text, or the error.
pub type Answer<'a> = Pin<Box<dyn Future<Output = Result<Box<RawValue>, RpcError>> + 'a>>;

/// A method's handler.
pub type Handler = for<'a> fn(&'a RpcContext, Option<&'a RawValue>) -> Answer<'a>;

/// A method: what dispatch calls and what `help` shows.
pub struct Method {
    /// Its name.
    pub name: &'static str,
    /// The parameters its handler binds.
    pub spec: &'static ParamSpec,
    /// Core Lightning's category for it (ours: `invoiced`).
    pub category: &'static str,
    /// One line saying what it does.
    pub description: &'static str,
    /// What answers it.
    pub handler: Handler,
    /// Whether it waits for something else to happen: then it is not work in flight, and a
    /// stop does not wait for it (its connection is closed, as Core Lightning closes them).
    pub waits: bool,
}

/// A handler from a method's function: `async fn(ctx, params) -> Result<Value>` (the default),
/// `raw` for one that writes its own JSON text, `sync` for one that needs neither the context
/// nor to wait, `sync_ctx` for one that reads the context without waiting.
macro_rules! answer {
    (raw $f:path) => {
        |ctx, params| Box::pin($f(ctx, params))
    };
    (sync $f:path) => {
        |_, params| Box::pin(async move { $f(params).and_then(|v| to_raw(&v)) })
    };
    (sync_ctx $f:path) => {
        |ctx, params| Box::pin(async move { $f(ctx, params).and_then(|v| to_raw(&v)) })
    };
    ($f:path) => {
        |ctx, params| Box::pin(async move { $f(ctx, params).await.and_then(|v| to_raw(&v)) })
    };
}

/// `updatechannel` takes one listpeerchannels entry, positionally, as `channel`, or as the
/// params object itself (`channels::parse_update`); this is the form `help` shows.
const UPDATECHANNEL_SPEC: ParamSpec = ParamSpec {
    names: &["channel"],
    aliases: &[],
    named_only: &[],
    required: 1,
};

/// Every method the daemon answers, sorted by name (dispatch searches it).
pub const METHODS: &[Method] = &[
    Method {
        name: "autoclean-once",
        spec: &autoclean::ONCE_SPEC,
        category: "utility",
        description: "Clean the {subsystem} (paidinvoices, expiredinvoices) of invoices at least {age} seconds old, once",
        handler: answer!(autoclean::once),
        waits: false,
    },
    Method {
        name: "autoclean-status",
        spec: &autoclean::STATUS_SPEC,
        category: "utility",
        description: "Show each [subsystem]'s autoclean age and how many were cleaned",
        handler: answer!(autoclean::status),
        waits: false,
    },
    Method {
        name: "checkpart",
        spec: &checkpart::SPEC,
        category: "invoiced",
        description: "The verdict on one HTLC {part} for {payment_hash} with {cltv_expiry_relative} [total_msat] [payment_secret]: unknown, join, resolve, paid_unrecorded or fail",
        handler: answer!(checkpart::checkpart),
        waits: false,
    },
    Method {
        name: "createinvoice",
        spec: &createinvoice::SPEC,
        category: "payment",
        description: "Sign and record the unsigned BOLT12 invoice {invstring} with {label} and {preimage} (the offers plugin's answer to an invoice_request)",
        handler: answer!(createinvoice::createinvoice),
        waits: false,
    },
    Method {
        name: "decode",
        spec: &decode::SPEC,
        category: "utility",
        description: "Decode a BOLT11 {string}",
        handler: answer!(sync decode::decode),
        waits: false,
    },
    Method {
        name: "delinvoice",
        spec: &lifecycle::DEL_SPEC,
        category: "payment",
        description: "Delete the invoice {label} if its status is {status} [desconly: only its description]",
        handler: answer!(lifecycle::delinvoice),
        waits: false,
    },
    Method {
        name: "getinfo",
        spec: &ParamSpec::NONE,
        category: "utility",
        description: "Show the node id, network, version, invoice count and event log head",
        handler: answer!(sync_ctx super::getinfo),
        waits: false,
    },
    Method {
        name: "help",
        spec: &help::SPEC,
        category: "utility",
        description: "List the methods, or show one [command]'s usage",
        handler: answer!(sync help::help),
        waits: false,
    },
    Method {
        name: "holdaccept",
        spec: &hold::ACCEPT_SPEC,
        category: "invoiced",
        description: "Hold the {parts} of a payment to the hold invoice {payment_hash} with {payment_secret} at {blockheight}: ACCEPTED",
        handler: answer!(hold::holdaccept),
        waits: false,
    },
    Method {
        name: "holdinvoice",
        spec: &hold::SPEC,
        category: "payment",
        description: "Create a hold invoice for {amount_msat} with {description}; [payment_hash] alone withholds the preimage until settle",
        handler: answer!(hold::holdinvoice),
        waits: false,
    },
    Method {
        name: "holdinvoice-version",
        spec: &ParamSpec::NONE,
        category: "payment",
        description: "Show the holdinvoice interface version",
        handler: answer!(sync hold::version),
        waits: false,
    },
    Method {
        name: "holdinvoicecancel",
        spec: &hold::CANCEL_SPEC,
        category: "payment",
        description: "Cancel the hold invoice {payment_hash}: its held parts fail",
        handler: answer!(hold::holdinvoicecancel),
        waits: false,
    },
    Method {
        name: "holdinvoicelookup",
        spec: &hold::LOOKUP_SPEC,
        category: "payment",
        description: "Show every hold invoice, or the one with [payment_hash]",
        handler: answer!(hold::holdinvoicelookup),
        waits: false,
    },
    Method {
        name: "holdinvoicesettle",
        spec: &hold::SETTLE_SPEC,
        category: "payment",
        description: "Settle the ACCEPTED hold invoice [payment_hash] with its [preimage]",
        handler: answer!(hold::holdinvoicesettle),
        waits: false,
    },
    Method {
        name: "invoice",
        spec: &invoice::SPEC,
        category: "payment",
        description: "Create an invoice for {amount_msat} with {label} and {description}",
        handler: answer!(invoice::invoice),
        waits: false,
    },
    Method {
        name: "listincoming",
        spec: &ParamSpec::NONE,
        category: "invoiced",
        description: "Show every channel's incoming capacity and whether it can be a route hint, and why not",
        handler: answer!(channels::listincoming),
        waits: false,
    },
    Method {
        name: "listinvoices",
        spec: &listinvoices::SPEC,
        category: "payment",
        description: "Show invoices [label | invstring | payment_hash] or page them by [index] [start] [limit]",
        handler: answer!(raw listinvoices::listinvoices),
        waits: false,
    },
    Method {
        name: "notifications",
        spec: &ParamSpec::NONE,
        category: "utility",
        description: "Accepted for pyln-client compatibility; does nothing",
        handler: answer!(sync super::notifications),
        waits: false,
    },
    Method {
        name: "promote",
        spec: &ParamSpec::NONE,
        category: "invoiced",
        description: "On a standby: take over the node's log from its primary (the epoch moves on)",
        handler: answer!(super::promote),
        waits: false,
    },
    Method {
        name: "selfpay",
        spec: &selfpay::SPEC,
        category: "invoiced",
        description: "A payment the node injects to itself: peel its {onion} for {payment_hash}; if it ends here, settle it",
        handler: answer!(selfpay::selfpay),
        waits: false,
    },
    Method {
        name: "settleinvoice",
        spec: &lifecycle::SETTLE_SPEC,
        category: "invoiced",
        description: "Record a payment that arrived: {payment_hash} {amount_msat} {payment_secret} [parts], the HTLCs recorded with it",
        handler: answer!(lifecycle::settleinvoice),
        waits: false,
    },
    Method {
        name: "syncchannels",
        spec: &channels::SYNC_SPEC,
        category: "invoiced",
        description: "Replace the known channels with the node's {channels} (listpeerchannels entries) at [blockheight]",
        handler: answer!(channels::syncchannels),
        waits: false,
    },
    Method {
        name: "updatechannel",
        spec: &UPDATECHANNEL_SPEC,
        category: "invoiced",
        description: "Add or update one channel (a listpeerchannels entry)",
        handler: answer!(channels::updatechannel),
        waits: false,
    },
    Method {
        name: "wait",
        spec: &lifecycle::WAIT_SPEC,
        category: "utility",
        description: "Wait until the invoices {indexname} (created, updated, deleted) index reaches {nextvalue}",
        handler: answer!(lifecycle::wait),
        waits: true,
    },
    Method {
        name: "waitanyinvoice",
        spec: &lifecycle::WAITANY_SPEC,
        category: "payment",
        description: "Wait for the next paid invoice after [lastpay_index], for at most [timeout] seconds",
        handler: answer!(lifecycle::waitanyinvoice),
        waits: true,
    },
    Method {
        name: "waitinvoice",
        spec: &lifecycle::WAITINVOICE_SPEC,
        category: "payment",
        description: "Wait until the invoice {label} is paid (903 if it expires)",
        handler: answer!(lifecycle::waitinvoice),
        waits: true,
    },
];

/// The method named `name`.
pub fn find(name: &str) -> Option<&'static Method> {
    METHODS
        .binary_search_by(|m| m.name.cmp(name))
        .ok()
        .map(|i| &METHODS[i])
}
