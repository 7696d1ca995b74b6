//! The daemon's library: JSON-RPC server and methods, configuration, wiring and offline tools,
//! the Core Lightning plugin and LND's API (`lnd-api`). The binaries (`invoiced`, `invoiced-cli`, `invoiced-bench`,
//! `invoiced-cln`) and the fuzz targets use it.

pub mod config;
pub mod config_file;
pub mod daemon;
pub mod lnd;
pub mod logging;
pub mod metrics;
pub mod plugin;
pub mod progress;
pub mod replication;
pub mod rpc;
pub mod rpc_client;
pub mod tools;
pub mod webhooks;

/// The version every binary prints for `--version`: the package's version and the commit it
/// was built from (`unknown` without git), e.g. `0.1.0 (0123456789ab)`; see `build.rs`.
pub const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (",
    env!("INVOICED_GIT_COMMIT"),
    ")"
);
