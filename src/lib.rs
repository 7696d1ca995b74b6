//! The daemon's library: JSON-RPC server and methods, configuration, wiring and offline tools.
//! The binaries (`invoiced`, `invoiced-cli`, `invoiced-bench`) and the fuzz targets use it.

pub mod config;
pub mod daemon;
pub mod rpc;
pub mod tools;
