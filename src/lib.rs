//! The daemon's library: JSON-RPC server and methods, configuration, wiring and offline tools,
//! and the Core Lightning plugin. The binaries (`invoiced`, `invoiced-cli`, `invoiced-bench`,
//! `invoiced-cln`) and the fuzz targets use it.

pub mod config;
pub mod daemon;
pub mod lnd;
pub mod plugin;
pub mod replication;
pub mod rpc;
pub mod tools;
pub mod webhooks;
