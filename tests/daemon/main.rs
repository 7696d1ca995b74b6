//! Integration tests: the real `invoiced` binary on a temporary data dir, over its socket.

mod crash;
mod harness;
mod invoice;
mod restart;
mod rpc;
