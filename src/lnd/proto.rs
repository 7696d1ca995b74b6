//! LND's API, generated at build time from `proto/lnd/` (see `build.rs`): the messages, the
//! gRPC services (server and client) and the messages' JSON as LND's REST gateway writes it.
#![allow(
    clippy::all,
    clippy::pedantic,
    clippy::unwrap_used,
    missing_docs,
    unused_qualifications
)]

/// `lnrpc`: the `Lightning` service and the messages it shares with the others.
pub mod lnrpc {
    tonic::include_proto!("lnrpc");
    include!(concat!(env!("OUT_DIR"), "/lnrpc.serde.rs"));
}

/// `invoicesrpc`: the `Invoices` service (hold invoices, lookups, single subscriptions).
pub mod invoicesrpc {
    tonic::include_proto!("invoicesrpc");
    include!(concat!(env!("OUT_DIR"), "/invoicesrpc.serde.rs"));
}

/// `routerrpc`: the `Router` service (payments).
pub mod routerrpc {
    tonic::include_proto!("routerrpc");
    include!(concat!(env!("OUT_DIR"), "/routerrpc.serde.rs"));
}
