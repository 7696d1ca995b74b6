//! The JSON-RPC server on the unix socket, with Core Lightning's framing, and method dispatch.
//!
//! Each connection reads whole JSON values from the stream ([`framing`]), answers each in order
//! with a JSON object followed by `"\n\n"`, echoing the request's `id`. Requests over 1 MiB are
//! answered with an error and the connection is closed. Connections are independent tasks; a
//! slow one holds nobody else up. A wait (`waitinvoice`, `waitanyinvoice`, `wait`) watches its
//! connection: when the client closes it, the wait and its waiter are dropped, and so is the
//! connection.
//!
//! Connections are served on the RPC arbiters ([`pool`]), each with its own InvoiceCreator and
//! KeySigner; the actors of rarer requests (the ledger, waiters, hold keeper, channel monitor,
//! retention) live on the main arbiter and are reached by message.

pub mod autoclean;
pub mod channels;
pub mod checkpart;
pub mod createinvoice;
pub mod decode;
pub mod error;
pub mod framing;
pub mod help;
pub mod hold;
pub mod invoice;
pub mod invoice_params;
pub mod lifecycle;
pub mod listinvoices;
pub mod methods;
pub mod object;
pub mod params;
pub mod pool;
pub mod selfpay;

use std::rc::Rc;

use actix::Addr;
use invoiced_actors::autoclean::Autoclean;
use invoiced_actors::channel_monitor::ChannelMonitor;
use invoiced_actors::hold_keeper::HoldKeeper;
use invoiced_actors::invoice_creator::InvoiceCreator;
use invoiced_actors::invoice_ledger::InvoiceLedger;
use invoiced_actors::key_signer::KeySigner;
use invoiced_actors::store::InvoiceReader;
use invoiced_actors::waiters::Waiters;
use invoiced_events::Network;
use secp256k1::PublicKey;
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::UnixStream;

use error::{Internal, RpcError};
use framing::{Frame, Scanner, MAX_REQUEST_BYTES};
use params::{bind, ParamSpec};
use pool::Counter;
pub use pool::{RpcPool, MAX_CONNECTIONS};

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
    /// The metrics, when served.
    pub metrics: Option<std::sync::Arc<crate::metrics::Metrics>>,
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

/// `notifications` (pyln-client's opt-in to progress messages): accepted, nothing to do.
fn notifications(_: Option<&RawValue>) -> Result<Value, RpcError> {
    Ok(json!({}))
}

/// `value` as JSON text.
///
/// # Errors
/// -1 if it cannot be serialised (not expected for results).
pub fn to_raw<T: serde::Serialize + ?Sized>(value: &T) -> Result<Box<RawValue>, RpcError> {
    serde_json::value::to_raw_value(value).map_err(|e| RpcError::internal(Internal::Encode, e))
}

/// `getinfo`.
fn getinfo(ctx: &RpcContext, params: Option<&RawValue>) -> Result<Value, RpcError> {
    no_params(params)?;
    let state = ctx
        .invoices
        .state()
        .read()
        .map_err(|_| RpcError::internal(Internal::Invoices, "projection lock poisoned"))?;
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
async fn promote(ctx: &RpcContext, params: Option<&RawValue>) -> Result<Value, RpcError> {
    no_params(params)?;
    let status = ctx
        .replication
        .as_ref()
        .ok_or_else(|| RpcError::replication("this invoiced does not replicate"))?;
    let epoch = status.promote().await.map_err(RpcError::replication)?;
    Ok(json!({ "role": "primary", "epoch": epoch }))
}

pub(crate) fn response(id: &str, outcome: Result<Box<RawValue>, RpcError>) -> Vec<u8> {
    let body = match outcome {
        Ok(result) => format!(
            "{{\"jsonrpc\":\"2.0\",\"id\":{id},\"result\":{}}}\n\n",
            result.get()
        ),
        Err(e) => format!(
            "{{\"jsonrpc\":\"2.0\",\"id\":{id},\"error\":{}}}\n\n",
            e.to_json()
        ),
    };
    body.into_bytes()
}

/// A request read from a frame, or the answer that ends it there (and whether to close).
enum Read<'a> {
    Request {
        id: &'a str,
        method: String,
        params: Option<&'a RawValue>,
    },
    Refused(Vec<u8>, bool),
}

/// Reads the request envelope of one complete frame.
fn read_request(frame: &[u8]) -> Read<'_> {
    let text = match std::str::from_utf8(frame) {
        Ok(t) => t,
        Err(_) => {
            return Read::Refused(
                response(
                    "null",
                    Err(RpcError::parse_error("Invalid UTF-8 in request")),
                ),
                true,
            )
        }
    };
    if let Err(e) = serde_json::from_str::<&RawValue>(text) {
        return Read::Refused(
            response(
                "null",
                Err(RpcError::parse_error(format!("Parse error: {e}"))),
            ),
            true,
        );
    }
    if !text.trim_start().starts_with('{') {
        return Read::Refused(
            response(
                "null",
                Err(RpcError::invalid_request("Expected a JSON object")),
            ),
            false,
        );
    }
    let req: Request<'_> = match serde_json::from_str(text) {
        Ok(r) => r,
        Err(_) => {
            return Read::Refused(
                response(
                    "null",
                    Err(RpcError::invalid_request("Expected string for method")),
                ),
                false,
            )
        }
    };
    let id = req.id.map_or("null", |i| i.get());
    let Some(method) = req.method else {
        return Read::Refused(
            response(id, Err(RpcError::invalid_request("No method given"))),
            false,
        );
    };
    Read::Request {
        id,
        method,
        params: req.params,
    }
}

/// One connection's stream and what has been read from it but not answered yet.
struct Connection {
    stream: UnixStream,
    buf: Vec<u8>,
    scanner: Scanner,
    chunk: Vec<u8>,
    /// The request being answered, out of `buf` (which reads on while a wait is pending); kept
    /// between requests so that its allocation is reused.
    frame: Vec<u8>,
}

impl Connection {
    /// Reads more into the buffer; false once the peer has closed (or the read failed).
    async fn read_more(&mut self) -> bool {
        match self.stream.read(&mut self.chunk).await {
            Ok(0) | Err(_) => false,
            Ok(n) => {
                self.buf.extend_from_slice(&self.chunk[..n]);
                true
            }
        }
    }

    /// Moves the buffer's first `end` bytes (a frame) out of it, keeping what follows.
    fn take(&mut self, end: usize) -> Vec<u8> {
        let mut frame = std::mem::take(&mut self.frame);
        frame.clear();
        frame.extend(self.buf.drain(..end));
        self.scanner = Scanner::default();
        frame
    }

    /// Runs a wait while watching the connection: if the client closes it, the wait is dropped
    /// (its waiter goes with it) and `None` is returned, as Core Lightning drops a command whose
    /// connection closed. Requests the client sends meanwhile are kept for afterwards, up to
    /// the size of one request.
    async fn unless_closed<F: std::future::Future>(&mut self, wait: F) -> Option<F::Output> {
        tokio::pin!(wait);
        loop {
            let room = self.buf.len() <= MAX_REQUEST_BYTES;
            tokio::select! {
                out = &mut wait => return Some(out),
                more = self.read_more(), if room => {
                    if !more {
                        return None;
                    }
                }
            }
        }
    }
}

/// Answers one request; returns the bytes to send, or `None` if the connection closed while
/// it waited.
async fn answer(
    ctx: &RpcContext,
    conn: &mut Connection,
    id: &str,
    method: &str,
    params: Option<&RawValue>,
    in_flight: &Counter,
) -> Option<Vec<u8>> {
    let started = std::time::Instant::now();
    let Some(m) = methods::find(method) else {
        let refused = RpcError::unknown_method(method);
        count(ctx, "unknown", Err(&refused), started);
        return Some(response(id, Err(refused)));
    };
    let outcome = if m.waits {
        conn.unless_closed((m.handler)(ctx, params)).await?
    } else {
        let _working = in_flight.enter();
        (m.handler)(ctx, params).await
    };
    count(ctx, m.name, outcome.as_ref().map(|_| ()), started);
    Some(response(id, outcome))
}

/// Counts an answered request in the metrics, if they are served.
fn count(
    ctx: &RpcContext,
    method: &'static str,
    outcome: Result<(), &RpcError>,
    started: std::time::Instant,
) {
    if let Some(metrics) = &ctx.metrics {
        metrics.request(method, outcome.err().map(|e| e.code), started.elapsed());
    }
}

pub(crate) async fn serve_connection(ctx: Rc<RpcContext>, stream: UnixStream, in_flight: Counter) {
    let mut conn = Connection {
        stream,
        buf: Vec::with_capacity(4096),
        scanner: Scanner::default(),
        chunk: vec![0u8; 64 * 1024],
        frame: Vec::with_capacity(4096),
    };
    loop {
        match conn.scanner.scan(&conn.buf) {
            Frame::Complete { start, end } => {
                let frame = conn.take(end);
                let (out, close) = match read_request(&frame[start..]) {
                    Read::Refused(out, close) => (out, close),
                    Read::Request { id, method, params } => {
                        match answer(&ctx, &mut conn, id, &method, params, &in_flight).await {
                            Some(out) => (out, false),
                            None => return,
                        }
                    }
                };
                conn.frame = frame;
                if conn.stream.write_all(&out).await.is_err() || close {
                    return;
                }
                continue;
            }
            Frame::Garbage => {
                let _ = conn
                    .stream
                    .write_all(&response(
                        "null",
                        Err(RpcError::parse_error("Parse error: expected a JSON object")),
                    ))
                    .await;
                return;
            }
            Frame::TooLarge => {
                let _ = conn
                    .stream
                    .write_all(&response("null", Err(RpcError::request_too_large())))
                    .await;
                return;
            }
            Frame::Empty => {
                conn.buf.clear();
                conn.scanner = Scanner::default();
            }
            Frame::Incomplete => {}
        }
        if !conn.read_more().await {
            return;
        }
    }
}
