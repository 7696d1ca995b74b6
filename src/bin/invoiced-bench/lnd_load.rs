//! `invoiced-bench lnd-load`: C clients send LND's `AddInvoice` over gRPC to `invoiced
//! lnd-api`, one after another each, for S seconds, on one TLS connection (HTTP/2 streams, as
//! an LND client library opens it), from one thread; prints calls/s and latency p50/p99/max,
//! and with `--cpu NAME=PID` the CPU time per call of each named process and of itself.
//!
//! `invoiced-bench lnd-floor`: serves `AddInvoice` as `invoiced lnd-api` serves it (its TLS
//! identity, its macaroon check, tonic on two worker threads) but answers every call with the
//! same invoice, making none: the cost of speaking LND's gRPC alone, the floor under the API's.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use invoiced::lnd::proto::lnrpc;
use serde_json::json;

use crate::{ms, percentile};

/// `lnd-load` options.
#[derive(clap::Args)]
pub(crate) struct LndLoadArgs {
    /// The API's gRPC address (host:port).
    #[arg(long)]
    grpc: String,
    /// The API's directory (its tls.cert and invoice.macaroon are used).
    #[arg(long)]
    lnd_dir: PathBuf,
    /// Concurrent clients.
    #[arg(long, default_value_t = 64)]
    clients: usize,
    /// For how long.
    #[arg(long, default_value_t = 5.0)]
    seconds: f64,
    /// Processes whose CPU time per call to report, NAME=PID.
    #[arg(long, value_parser = crate::named_pid)]
    cpu: Vec<(String, u32)>,
}

pub(crate) fn lnd_load(args: LndLoadArgs) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let cert = std::fs::read(args.lnd_dir.join("tls.cert")).expect("tls.cert");
    let macaroon =
        hex::encode(std::fs::read(args.lnd_dir.join("invoice.macaroon")).expect("macaroon"));
    let before: Vec<f64> = args
        .cpu
        .iter()
        .map(|(_, pid)| crate::load::process_cpu(*pid))
        .collect();
    let own_before = crate::load::process_cpu(std::process::id());
    let (latencies, elapsed) = runtime.block_on(async {
        let tls = tonic::transport::ClientTlsConfig::new()
            .ca_certificate(tonic::transport::Certificate::from_pem(&cert))
            .domain_name("localhost");
        let channel = tonic::transport::Channel::from_shared(format!("https://{}", args.grpc))
            .expect("address")
            .tls_config(tls)
            .expect("tls")
            .connect()
            .await
            .expect("connect");
        let start = Instant::now();
        let deadline = start + Duration::from_secs_f64(args.seconds);
        let tasks: Vec<_> = (0..args.clients)
            .map(|c| {
                let (channel, macaroon) = (channel.clone(), macaroon.clone());
                tokio::spawn(async move {
                    let mut client = lnrpc::lightning_client::LightningClient::new(channel);
                    let mut took = Vec::new();
                    let mut n = 0u64;
                    while Instant::now() < deadline {
                        let mut req = tonic::Request::new(lnrpc::Invoice {
                            memo: format!("lnd-load {c} {n}"),
                            value_msat: 1000,
                            ..Default::default()
                        });
                        req.metadata_mut()
                            .insert("macaroon", macaroon.parse().expect("ascii"));
                        let t = Instant::now();
                        client.add_invoice(req).await.expect("AddInvoice");
                        took.push(t.elapsed());
                        n += 1;
                    }
                    took
                })
            })
            .collect();
        let mut all = Vec::new();
        for t in tasks {
            all.extend(t.await.expect("task"));
        }
        (all, start.elapsed())
    });
    let mut latencies = latencies;
    latencies.sort();
    let calls = latencies.len() as f64;
    let per_call = |before: f64, after: f64| (after - before) / calls * 1e6;
    let cpu: serde_json::Map<String, serde_json::Value> = args
        .cpu
        .iter()
        .zip(before)
        .map(|((name, pid), b)| {
            (
                name.clone(),
                json!(per_call(b, crate::load::process_cpu(*pid))),
            )
        })
        .collect();
    println!(
        "{}",
        json!({
            "clients": args.clients,
            "calls": latencies.len(),
            "calls_per_s": calls / elapsed.as_secs_f64(),
            "p50_ms": ms(percentile(&latencies, 0.50)),
            "p99_ms": ms(percentile(&latencies, 0.99)),
            "max_ms": ms(latencies.last().copied().unwrap_or_default()),
            "cpu_us_per_call": cpu,
            "load_tool_cpu_us_per_call": per_call(own_before, crate::load::process_cpu(std::process::id())),
        })
    );
}

/// `lnd-floor` options.
#[derive(clap::Args)]
pub(crate) struct LndFloorArgs {
    /// Where to serve (host:port).
    #[arg(long)]
    grpc_listen: std::net::SocketAddr,
    /// The directory of the TLS identity and macaroons (made as `invoiced lnd-api` makes them).
    #[arg(long)]
    lnd_dir: PathBuf,
}

/// A `Lightning` service whose `AddInvoice` makes no invoice.
struct Floor {
    auth: invoiced::lnd::auth::Auth,
}

#[tonic::async_trait]
impl lnrpc::lightning_server::Lightning for Floor {
    async fn add_invoice(
        &self,
        req: tonic::Request<lnrpc::Invoice>,
    ) -> Result<tonic::Response<lnrpc::AddInvoiceResponse>, tonic::Status> {
        let given = req.metadata().get("macaroon").and_then(|v| v.to_str().ok());
        self.auth.check(given, "/lnrpc.Lightning/AddInvoice")?;
        let memo = req.into_inner().memo;
        Ok(tonic::Response::new(lnrpc::AddInvoiceResponse {
            r_hash: vec![7; 32],
            payment_request: format!("lnbcrt10n1{}", "q".repeat(300 - memo.len().min(300))),
            add_index: 1,
            payment_addr: vec![9; 32],
        }))
    }
}

pub(crate) fn lnd_floor(args: &LndFloorArgs) {
    std::fs::create_dir_all(&args.lnd_dir).expect("lnd dir");
    let id = invoiced::lnd::tls::load_or_create(&args.lnd_dir).expect("tls identity");
    let auth = invoiced::lnd::auth::Auth::load_or_create(&args.lnd_dir).expect("macaroons");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let tls = tonic::transport::ServerTlsConfig::new().identity(
            tonic::transport::Identity::from_pem(&id.cert_pem, &id.key_pem),
        );
        tonic::transport::Server::builder()
            .tls_config(tls)
            .expect("tls")
            .add_service(lnrpc::lightning_server::LightningServer::new(Floor {
                auth,
            }))
            .serve(args.grpc_listen)
            .await
            .expect("serve");
    });
}
