//! The daemon's library: JSON-RPC server and methods, configuration, wiring and offline tools,
//! the Core Lightning plugin and LND's API (`lnd-api`). The binaries (`invoiced`, `invoiced-cli`, `invoiced-bench`,
//! `invoiced-cln`) and the fuzz targets use it.

pub mod config;
pub mod config_file;
pub mod daemon;
pub mod lnd;
pub mod logging;
pub mod plugin;
pub mod progress;
pub mod replication;
pub mod rpc;
pub mod rpc_client;
pub mod tools;
pub mod webhooks;
