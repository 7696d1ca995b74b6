//! Integration tests: the real `invoiced` binary on a temporary data dir, over its socket.
#![allow(clippy::unwrap_used)]

mod channels;
mod cli;
mod compat;
mod conf;
mod crash;
mod disk;
mod harness;
mod hold;
mod hostile;
mod invoice;
mod lifecycle;
mod metrics;
mod pg;
mod progress;
mod resources;
mod restart;
mod retention;
mod rpc;
mod tools;
mod webhooks;
