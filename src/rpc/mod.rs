//! The JSON-RPC server on the unix socket, with Core Lightning's framing, and method dispatch.
//!
//! Each connection reads whole JSON values from the stream ([`framing`]), answers each in order
//! with a JSON object followed by `"\n\n"`, echoing the request's `id`. Requests over 1 MiB are
//! answered with an error and the connection is closed. Connections are independent tasks; a
//! slow one holds nobody else up.
//!
//! The main thread only accepts. Each connection is handed to one of the RPC arbiters (one per
//! core, the one serving fewest connections), which parses, answers, and runs its own
//! InvoiceCreator and KeySigner, so an invoice is made on the thread that read it and visits no
//! other thread but the log writer's. The actors of rarer requests (the ledger, waiters, hold
//! keeper, channel monitor, retention) live on the main arbiter and are reached by message.

pub mod autoclean;
pub mod channels;
pub mod decode;
pub mod error;
pub mod framing;
pub mod help;
pub mod hold;
pub mod invoice;
pub mod lifecycle;
pub mod listinvoices;
pub mod object;
pub mod params;

use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use actix::{Addr, Arbiter};
use invoiced_actors::autoclean::Autoclean;
use invoiced_actors::channel_monitor::ChannelMonitor;
use invoiced_actors::hold_keeper::HoldKeeper;
use invoiced_actors::invoice_creator::InvoiceCreator;
use invoiced_actors::invoice_ledger::InvoiceLedger;
use invoiced_actors::key_signer::KeySigner;
use invoiced_actors::waiters::Waiters;
use invoiced_actors::store::InvoiceReader;
use invoiced_events::Network;
use secp256k1::PublicKey;
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{UnixListener, UnixStream};

use error::{Internal, RpcError};
use framing::{next_frame, Frame, MAX_REQUEST_BYTES};
use params::{bind, ParamSpec};

/// What the methods need: one per RPC arbiter, made on it.
pub struct RpcContext {
    /// The invoice creator on this arbiter.
    pub creator: Addr<InvoiceCreator>,
    /// The channel monitor.
    pub monitor: Addr<ChannelMonitor>,
    /// The lifecycle actor.
    pub ledger: Addr<InvoiceLedger>,
    /// The waiter registry.
    pub waiters: Addr<Waiters>,
    /// Retention.
    pub autoclean: Addr<Autoclean>,
    /// Hold invoices' transitions.
    pub holds: Addr<HoldKeeper>,
    /// The key holder on this arbiter (for revealing paid invoices' preimages).
    pub signer: Addr<KeySigner>,
    /// The live projections, and whole invoices read from the log.
    pub invoices: InvoiceReader,
    /// Our node id.
    pub node_id: PublicKey,
    /// Our network.
    pub network: Network,
    /// Default `cltv` for invoices.
    pub cltv_final: invoiced_actors::policy::bolt11::Cltv,
    /// Replication to PostgreSQL, when on.
    pub replication: Option<std::sync::Arc<crate::replication::Status>>,
}

#[derive(Deserialize)]
struct Request<'a> {
    #[serde(borrow)]
    id: Option<&'a RawValue>,
    method: Option<String>,
    #[serde(borrow)]
    params: Option<&'a RawValue>,
}

fn no_params(params: Option<&RawValue>) -> Result<(), RpcError> {
    bind(params, &ParamSpec::NONE).map(|_| ())
}

async fn call(ctx: &RpcContext, method: &str, params: Option<&RawValue>) -> Result<Box<RawValue>, RpcError> {
    let value = match method {
        "invoice" => invoice::invoice(ctx, params).await,
        // Serialised straight to text (thousands of invoices, no `Value` tree).
        "listinvoices" => return listinvoices::listinvoices(ctx, params).await,
        "settleinvoice" => lifecycle::settleinvoice(ctx, params).await,
        "delinvoice" => lifecycle::delinvoice(ctx, params).await,
        "waitinvoice" => lifecycle::waitinvoice(ctx, params).await,
        "waitanyinvoice" => lifecycle::waitanyinvoice(ctx, params).await,
        "wait" => lifecycle::wait(ctx, params).await,
        "decode" => decode::decode(params),
        "holdinvoice" => hold::holdinvoice(ctx, params).await,
        "holdinvoicesettle" => hold::holdinvoicesettle(ctx, params).await,
        "holdinvoicecancel" => hold::holdinvoicecancel(ctx, params).await,
        "holdinvoicelookup" => hold::holdinvoicelookup(ctx, params).await,
        "holdinvoice-version" => hold::version(params),
        "holdaccept" => hold::holdaccept(ctx, params).await,
        "autoclean-once" => autoclean::once(ctx, params).await,
        "autoclean-status" => autoclean::status(ctx, params).await,
        "syncchannels" => channels::syncchannels(ctx, params).await,
        "updatechannel" => channels::updatechannel(ctx, params).await,
        "listincoming" => channels::listincoming(ctx, params).await,
        "getinfo" => no_params(params).and_then(|()| getinfo(ctx)),
        "promote" => match no_params(params) {
            Ok(()) => promote(ctx).await,
            Err(e) => Err(e),
        },
        "help" => help::help(params),
        "notifications" => Ok(json!({})),
        _ => Err(RpcError::unknown_method(method)),
    };
    value.and_then(|v| to_raw(&v))
}

/// `value` as JSON text.
///
/// # Errors
/// -1 if it cannot be serialised (not expected for results).
pub fn to_raw<T: serde::Serialize + ?Sized>(value: &T) -> Result<Box<RawValue>, RpcError> {
    serde_json::value::to_raw_value(value).map_err(|e| RpcError::internal(Internal::Encode, e))
}

fn getinfo(ctx: &RpcContext) -> Result<Value, RpcError> {
    let state = ctx.invoices.state().read().map_err(|_| RpcError::internal(Internal::Invoices, "projection lock poisoned"))?;
    let (seq, hash) = state.head();
    let mut info = json!({
        "id": ctx.node_id.to_string(),
        "network": ctx.network.name(),
        "version": env!("CARGO_PKG_VERSION"),
        "num_invoices": state.invoices.len(),
        "last_created_index": state.invoices.last_created_index(),
        "num_channels": state.channels.len(),
        "log_head_seq": seq,
        "log_head_hash": hex::encode(hash),
    });
    if let Some(r) = &ctx.replication {
        info["replication"] = r.json();
    }
    Ok(info)
}

/// `promote`: a standby takes over the node's stream (the epoch moves on in PostgreSQL).
async fn promote(ctx: &RpcContext) -> Result<Value, RpcError> {
    let status = ctx.replication.as_ref().ok_or_else(|| RpcError::replication("this invoiced does not replicate"))?;
    let epoch = status.promote().await.map_err(RpcError::replication)?;
    Ok(json!({ "role": "primary", "epoch": epoch }))
}

/// Most connections served at once; one more is told so and closed.
pub const MAX_CONNECTIONS: usize = 4096;

fn response(id: &str, outcome: Result<Box<RawValue>, RpcError>) -> Vec<u8> {
    let body = match outcome {
        Ok(result) => format!("{{\"jsonrpc\":\"2.0\",\"id\":{id},\"result\":{}}}\n\n", result.get()),
        Err(e) => format!("{{\"jsonrpc\":\"2.0\",\"id\":{id},\"error\":{}}}\n\n", e.to_json()),
    };
    body.into_bytes()
}

/// A count of something in progress, shared by the arbiters, that drops back when its guard
/// does, also when the task holding it panics or is cancelled, so a stop never waits for work
/// that no longer exists.
#[derive(Clone, Default)]
struct Counter(Arc<AtomicUsize>);

struct Counted(Arc<AtomicUsize>);

impl Counter {
    fn enter(&self) -> Counted {
        self.0.fetch_add(1, Ordering::Relaxed);
        Counted(Arc::clone(&self.0))
    }

    fn get(&self) -> usize {
        self.0.load(Ordering::Relaxed)
    }
}

impl Drop for Counted {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Methods that wait for something else to happen. They are not work in flight: a stop does
/// not wait for them (their connections are closed, as Core Lightning's are).
fn waits(method: &str) -> bool {
    matches!(method, "waitinvoice" | "waitanyinvoice" | "wait")
}

/// Answers one complete frame. Returns the bytes to send and whether to close afterwards.
async fn handle_frame(ctx: &RpcContext, frame: &[u8], in_flight: &Counter) -> (Vec<u8>, bool) {
    let text = match std::str::from_utf8(frame) {
        Ok(t) => t,
        Err(_) => return (response("null", Err(RpcError::parse_error("Invalid UTF-8 in request"))), true),
    };
    if let Err(e) = serde_json::from_str::<&RawValue>(text) {
        return (response("null", Err(RpcError::parse_error(format!("Parse error: {e}")))), true);
    }
    if !text.trim_start().starts_with('{') {
        return (response("null", Err(RpcError::invalid_request("Expected a JSON object"))), false);
    }
    let req: Request<'_> = match serde_json::from_str(text) {
        Ok(r) => r,
        Err(_) => return (response("null", Err(RpcError::invalid_request("Expected string for method"))), false),
    };
    let id = req.id.map_or("null", |i| i.get());
    let Some(method) = req.method else {
        return (response(id, Err(RpcError::invalid_request("No method given"))), false);
    };
    let _working = (!waits(&method)).then(|| in_flight.enter());
    (response(id, call(ctx, &method, req.params).await), false)
}

async fn serve_connection(ctx: Rc<RpcContext>, mut stream: UnixStream, in_flight: Counter) {
    let mut buf: Vec<u8> = Vec::with_capacity(4096);
    let mut chunk = vec![0u8; 64 * 1024];
    loop {
        loop {
            match next_frame(&buf) {
                Frame::Complete { start, end } => {
                    let (out, close) = handle_frame(&ctx, &buf[start..end], &in_flight).await;
                    buf.drain(..end);
                    let written = stream.write_all(&out).await;
                    if written.is_err() || close {
                        return;
                    }
                }
                Frame::Garbage => {
                    let _ = stream.write_all(&response("null", Err(RpcError::parse_error("Parse error: expected a JSON object")))).await;
                    return;
                }
                Frame::Empty => {
                    buf.clear();
                    break;
                }
                Frame::Incomplete => break,
            }
        }
        if buf.len() > MAX_REQUEST_BYTES {
            let e = RpcError::request_too_large();
            let _ = stream.write_all(&response("null", Err(e))).await;
            return;
        }
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
}


/// One RPC arbiter: its thread, the connections it serves, and where new ones are sent. Dropping
/// it stops the arbiter and waits for its thread (whose actors hold log handles).
struct Worker {
    arbiter: Option<Arbiter>,
    open: Counter,
    connections: tokio::sync::mpsc::UnboundedSender<Handed>,
}

impl Drop for Worker {
    fn drop(&mut self) {
        if let Some(arbiter) = self.arbiter.take() {
            arbiter.stop();
            if arbiter.join().is_err() {
                tracing::error!("an RPC arbiter panicked");
            }
        }
    }
}

/// A connection handed to an arbiter, counted (in the arbiter's load and the daemon's limit)
/// for as long as it is open.
type Handed = (std::os::unix::net::UnixStream, [Counted; 2]);

impl Worker {
    /// Starts arbiter `index` (its thread named `rpc-INDEX`), makes its context there, and serves
    /// every connection it is given; returns once the context is made.
    async fn start<F>(index: usize, make_context: Arc<F>, in_flight: Counter) -> std::io::Result<Worker>
    where
        F: Fn() -> RpcContext + Send + Sync + 'static,
    {
        let arbiter = Arbiter::try_with_tokio_rt(move || {
            // The name `top` and the load tool's CPU accounting show (best effort).
            let _ = std::fs::write("/proc/thread-self/comm", format!("rpc-{index}"));
            tokio::runtime::Builder::new_current_thread().enable_all().build()
        })?;
        let (connections, mut incoming) = tokio::sync::mpsc::unbounded_channel::<Handed>();
        let (ready, made) = tokio::sync::oneshot::channel();
        // The context is made on the arbiter's thread, so its actors run there.
        let started = arbiter.spawn_fn(move || {
            let ctx = Rc::new(make_context());
            let _ = ready.send(());
            actix::spawn(async move {
                while let Some((stream, open)) = incoming.recv().await {
                    let (ctx, in_flight) = (ctx.clone(), in_flight.clone());
                    actix::spawn(async move {
                        let _open = open;
                        match UnixStream::from_std(stream) {
                            Ok(stream) => serve_connection(ctx, stream, in_flight).await,
                            Err(e) => tracing::warn!("cannot serve a connection: {e}"),
                        }
                    });
                }
            });
        });
        let worker = Worker { arbiter: Some(arbiter), open: Counter::default(), connections };
        if !started || made.await.is_err() {
            return Err(std::io::Error::other(format!("RPC arbiter {index} stopped at start")));
        }
        Ok(worker)
    }
}

/// The RPC arbiters, ready to serve.
pub struct RpcPool {
    workers: Vec<Worker>,
    in_flight: Counter,
}

impl RpcPool {
    /// Starts `workers` RPC arbiters (at least one), each with the context `make_context` makes
    /// on it; returns once every one is ready.
    ///
    /// # Errors
    /// When an arbiter cannot be started.
    pub async fn start<F>(workers: usize, make_context: F) -> std::io::Result<RpcPool>
    where
        F: Fn() -> RpcContext + Send + Sync + 'static,
    {
        let make_context = Arc::new(make_context);
        let in_flight = Counter::default();
        let mut pool = Vec::with_capacity(workers.max(1));
        for i in 0..workers.max(1) {
            pool.push(Worker::start(i, Arc::clone(&make_context), in_flight.clone()).await?);
        }
        Ok(RpcPool { workers: pool, in_flight })
    }

    /// Serves `listener` until `shutdown` resolves, then waits (up to 10 s) for requests in
    /// flight (not for the waits, which may never end), and stops the arbiters.
    ///
    /// The main thread accepts and hands each connection to the arbiter with the fewest. Each
    /// connection is its own task there and handles one request at a time, so a client that
    /// sends slowly or never reads its answers holds up only itself.
    pub async fn serve(self, listener: UnixListener, shutdown: impl std::future::Future<Output = ()>) {
        let RpcPool { workers, in_flight } = self;
        let open = Counter::default();
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok((mut stream, _)) if open.get() >= MAX_CONNECTIONS => {
                        tracing::warn!("refusing a connection: {MAX_CONNECTIONS} open");
                        actix::spawn(async move {
                            let e = RpcError::too_many_connections(MAX_CONNECTIONS);
                            let _ = stream.write_all(&response("null", Err(e))).await;
                        });
                    }
                    Ok((stream, _)) => {
                        let handed = stream.into_std().map_err(|e| e.to_string()).and_then(|stream| {
                            let worker = workers.iter().min_by_key(|w| w.open.get()).ok_or_else(|| "no RPC arbiter".to_owned())?;
                            let counted = [worker.open.enter(), open.enter()];
                            worker.connections.send((stream, counted)).map_err(|_| "the RPC arbiter has stopped".to_owned())
                        });
                        if let Err(e) = handed {
                            tracing::warn!("dropping a connection: {e}");
                        }
                    }
                    Err(e) => tracing::warn!("accept failed: {e}"),
                },
                () = &mut shutdown => break,
            }
        }
        drop(listener);
        for _ in 0..1000 {
            if in_flight.get() == 0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        drop(workers);
    }
}
