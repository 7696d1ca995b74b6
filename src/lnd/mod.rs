//! `invoiced lnd-api`: LND's API for invoices, backed by invoiced, for the applications that
//! speak only LND's (docs/LND.md).
//!
//! It is a client of two sockets: invoiced's, for every invoice, and the Core Lightning node's
//! that invoiced stands in front of, for what is not an invoice (the node's identity and
//! balance, paying). It serves LND's gRPC services ([`grpc`]) and LND's REST mapping of them
//! ([`rest`]), both over TLS with LND's certificate and macaroons ([`tls`], [`macaroon`]); the
//! two surfaces share one implementation of each call ([`service`]), so they answer the same.
//!
//! Its rooms: [`proto`] (LND's definitions, generated), [`invoice`] (an invoiced invoice as
//! LND's `Invoice`, and LND's `AddInvoice` as invoiced's `invoice`), [`auth`] (the root key and
//! the three macaroons in the directory, and the check of each call).

pub mod auth;
pub mod grpc;
pub mod invoice;
pub mod macaroon;
pub mod payments;
pub mod proto;
pub mod rest;
pub mod service;
pub mod subscribe;
pub mod tls;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context as _;

/// `invoiced lnd-api` options.
#[derive(Clone, Debug, clap::Args)]
pub struct Args {
    /// invoiced's JSON-RPC socket
    #[arg(long)]
    pub invoiced_rpc_file: PathBuf,
    /// The Core Lightning node's JSON-RPC socket (identity, balance, payments)
    #[arg(long)]
    pub node_rpc_file: PathBuf,
    /// Where to serve LND's REST API
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub rest_listen: SocketAddr,
    /// Where to serve LND's gRPC API
    #[arg(long, default_value = "127.0.0.1:10009")]
    pub grpc_listen: SocketAddr,
    /// The directory of tls.cert, tls.key, the macaroons and their root key (created 0700)
    #[arg(long)]
    pub lnd_dir: PathBuf,
    /// Logs as text or as JSON lines (levels from RUST_LOG, default info)
    #[arg(long, value_enum, default_value_t)]
    pub log_format: crate::logging::LogFormat,
}

/// Writes `bytes` to a new file `path` readable by its owner only.
///
/// # Errors
/// When it cannot be written.
pub fn write_private(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("creating {}", path.display()))?;
    f.write_all(bytes)
        .and_then(|()| f.sync_all())
        .with_context(|| format!("writing {}", path.display()))
}

/// Runs the API until SIGINT or SIGTERM.
///
/// # Errors
/// When its directory, certificate or macaroons cannot be made or read, or a port not bound.
pub fn run(args: &Args) -> anyhow::Result<()> {
    std::fs::create_dir_all(&args.lnd_dir)
        .with_context(|| format!("creating {}", args.lnd_dir.display()))?;
    {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(&args.lnd_dir, std::fs::Permissions::from_mode(0o700))?;
    }
    let identity = tls::load_or_create(&args.lnd_dir)?;
    let auth = Arc::new(auth::Auth::load_or_create(&args.lnd_dir)?);
    let service = Arc::new(service::Service::new(
        &args.invoiced_rpc_file,
        &args.node_rpc_file,
    ));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .thread_name("lnd-api")
        .build()?;
    runtime.block_on(async {
        let grpc = grpc::serve(args.grpc_listen, &identity, service.clone(), auth.clone());
        let rest = rest::serve(args.rest_listen, &identity, service, auth).await?;
        tracing::info!(
            "LND API: gRPC on {}, REST on {}, files in {}",
            args.grpc_listen,
            args.rest_listen,
            args.lnd_dir.display()
        );
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        tokio::select! {
            r = grpc => r?,
            r = rest => r.context("REST server")??,
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
        anyhow::Ok(())
    })
}
