//! LND's REST API, as its gateway maps the gRPC methods (`lightning.yaml`): the same calls
//! through [`Service`], the messages in the gateway's JSON (pbjson: field names as defined,
//! 64-bit integers as strings, bytes in base64), the macaroon in `Grpc-Metadata-macaroon`, and
//! errors as `{"code", "message", "details"}` with the HTTP status the gateway gives each code.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::json;
use tonic::{Code, Status};

use super::auth::Auth;
use super::proto::{invoicesrpc, lnrpc};
use super::service::Service;
use super::tls::Identity;

#[derive(Clone)]
struct Api {
    service: Arc<Service>,
    auth: Arc<Auth>,
}

/// A refusal as the gateway writes it.
struct Refused(Status);

impl IntoResponse for Refused {
    fn into_response(self) -> Response {
        let http = match self.0.code() {
            Code::InvalidArgument | Code::OutOfRange | Code::FailedPrecondition => {
                StatusCode::BAD_REQUEST
            }
            Code::NotFound => StatusCode::NOT_FOUND,
            Code::AlreadyExists | Code::Aborted => StatusCode::CONFLICT,
            Code::PermissionDenied => StatusCode::FORBIDDEN,
            Code::Unauthenticated => StatusCode::UNAUTHORIZED,
            Code::ResourceExhausted => StatusCode::TOO_MANY_REQUESTS,
            Code::Unimplemented => StatusCode::NOT_IMPLEMENTED,
            Code::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            Code::DeadlineExceeded => StatusCode::GATEWAY_TIMEOUT,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        };
        let body = json!({
            "code": self.0.code() as i32,
            "message": self.0.message(),
            "details": [],
        });
        (http, Json(body)).into_response()
    }
}

impl From<Status> for Refused {
    fn from(s: Status) -> Self {
        Refused(s)
    }
}

impl Api {
    fn check(&self, headers: &HeaderMap, path: &str) -> Result<(), Refused> {
        let given = headers
            .get("grpc-metadata-macaroon")
            .and_then(|v| v.to_str().ok());
        Ok(self.auth.check(given, path)?)
    }
}

async fn get_info(
    State(api): State<Api>,
    headers: HeaderMap,
) -> Result<Json<lnrpc::GetInfoResponse>, Refused> {
    api.check(&headers, "/lnrpc.Lightning/GetInfo")?;
    Ok(Json(api.service.get_info().await?))
}

async fn add_invoice(
    State(api): State<Api>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<Json<lnrpc::AddInvoiceResponse>, Refused> {
    api.check(&headers, "/lnrpc.Lightning/AddInvoice")?;
    let req: lnrpc::Invoice = serde_json::from_slice(&body)
        .map_err(|e| Status::invalid_argument(format!("invalid request body: {e}")))?;
    Ok(Json(api.service.add_invoice(req).await?))
}

async fn lookup_invoice(
    State(api): State<Api>,
    headers: HeaderMap,
    Path(r_hash_str): Path<String>,
) -> Result<Json<lnrpc::Invoice>, Refused> {
    api.check(&headers, "/lnrpc.Lightning/LookupInvoice")?;
    let hash =
        hex::decode(&r_hash_str).map_err(|_| Status::invalid_argument("r_hash_str: not hex"))?;
    Ok(Json(api.service.lookup_invoice(&hash).await?))
}

/// The query parameters of a GET, by name.
type QueryMap = std::collections::HashMap<String, String>;

/// A query parameter as a number (absent: 0), or LND's refusal naming it.
fn number(q: &QueryMap, name: &str) -> Result<u64, Refused> {
    q.get(name).map_or(Ok(0), |v| {
        v.parse().map_err(|_| {
            Refused(Status::invalid_argument(format!(
                "{name}: not a number: {v}"
            )))
        })
    })
}

/// A query parameter as a boolean (absent: false).
fn flag(q: &QueryMap, name: &str) -> Result<bool, Refused> {
    match q.get(name).map(String::as_str) {
        None | Some("false" | "0") => Ok(false),
        Some("true" | "1") => Ok(true),
        Some(v) => Err(Refused(Status::invalid_argument(format!(
            "{name}: not a boolean: {v}"
        )))),
    }
}

async fn list_invoices(
    State(api): State<Api>,
    headers: HeaderMap,
    Query(q): Query<QueryMap>,
) -> Result<Json<lnrpc::ListInvoiceResponse>, Refused> {
    api.check(&headers, "/lnrpc.Lightning/ListInvoices")?;
    let req = lnrpc::ListInvoiceRequest {
        pending_only: flag(&q, "pending_only")?,
        index_offset: number(&q, "index_offset")?,
        num_max_invoices: number(&q, "num_max_invoices")?,
        reversed: flag(&q, "reversed")?,
        creation_date_start: number(&q, "creation_date_start")?,
        creation_date_end: number(&q, "creation_date_end")?,
    };
    Ok(Json(api.service.list_invoices(req).await?))
}

async fn subscribe_invoices(
    State(api): State<Api>,
    headers: HeaderMap,
    Query(q): Query<QueryMap>,
) -> Result<Response, Refused> {
    api.check(&headers, "/lnrpc.Lightning/SubscribeInvoices")?;
    let events = super::subscribe::invoices(
        api.service.clone(),
        number(&q, "add_index")?,
        number(&q, "settle_index")?,
    );
    Ok(lines_of(events))
}

async fn channel_balance(
    State(api): State<Api>,
    headers: HeaderMap,
) -> Result<Json<lnrpc::ChannelBalanceResponse>, Refused> {
    api.check(&headers, "/lnrpc.Lightning/ChannelBalance")?;
    Ok(Json(api.service.channel_balance().await?))
}

/// A POST's body as the gateway reads it (LND's JSON of the request message).
fn body_of<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, Refused> {
    serde_json::from_slice(body).map_err(|e| {
        Refused(Status::invalid_argument(format!(
            "invalid request body: {e}"
        )))
    })
}

/// Bytes given in a path or a query as the gateway takes them: base64, standard or URL-safe.
fn bytes_param(name: &str, v: &str) -> Result<Vec<u8>, Refused> {
    use base64::Engine as _;
    let e = base64::engine::general_purpose::GeneralPurposeConfig::new()
        .with_decode_padding_mode(base64::engine::DecodePaddingMode::Indifferent);
    let std = base64::engine::GeneralPurpose::new(&base64::alphabet::STANDARD, e);
    let url = base64::engine::GeneralPurpose::new(&base64::alphabet::URL_SAFE, e);
    std.decode(v)
        .or_else(|_| url.decode(v))
        .map_err(|_| Refused(Status::invalid_argument(format!("{name}: not base64"))))
}

async fn add_hold_invoice(
    State(api): State<Api>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<Json<invoicesrpc::AddHoldInvoiceResp>, Refused> {
    api.check(&headers, "/invoicesrpc.Invoices/AddHoldInvoice")?;
    Ok(Json(api.service.add_hold_invoice(body_of(&body)?).await?))
}

async fn settle_invoice(
    State(api): State<Api>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<Json<invoicesrpc::SettleInvoiceResp>, Refused> {
    api.check(&headers, "/invoicesrpc.Invoices/SettleInvoice")?;
    Ok(Json(api.service.settle_invoice(body_of(&body)?).await?))
}

async fn cancel_invoice(
    State(api): State<Api>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<Json<invoicesrpc::CancelInvoiceResp>, Refused> {
    api.check(&headers, "/invoicesrpc.Invoices/CancelInvoice")?;
    Ok(Json(api.service.cancel_invoice(body_of(&body)?).await?))
}

async fn lookup_invoice_v2(
    State(api): State<Api>,
    headers: HeaderMap,
    Query(q): Query<QueryMap>,
) -> Result<Json<lnrpc::Invoice>, Refused> {
    use invoicesrpc::lookup_invoice_msg::InvoiceRef;
    api.check(&headers, "/invoicesrpc.Invoices/LookupInvoiceV2")?;
    let invoice_ref = match (
        q.get("payment_hash"),
        q.get("payment_addr"),
        q.get("set_id"),
    ) {
        (Some(h), _, _) => Some(InvoiceRef::PaymentHash(bytes_param("payment_hash", h)?)),
        (_, Some(a), _) => Some(InvoiceRef::PaymentAddr(bytes_param("payment_addr", a)?)),
        (_, _, Some(s)) => Some(InvoiceRef::SetId(bytes_param("set_id", s)?)),
        _ => None,
    };
    let req = invoicesrpc::LookupInvoiceMsg {
        invoice_ref,
        lookup_modifier: 0,
    };
    Ok(Json(api.service.lookup_invoice_v2(req).await?))
}

async fn subscribe_single_invoice(
    State(api): State<Api>,
    headers: HeaderMap,
    Path(r_hash): Path<String>,
) -> Result<Response, Refused> {
    api.check(&headers, "/invoicesrpc.Invoices/SubscribeSingleInvoice")?;
    let events = super::subscribe::single(api.service.clone(), bytes_param("r_hash", &r_hash)?);
    Ok(lines_of(events))
}

/// A server stream as the gateway sends it: one JSON line a message, `{"result": …}`, or
/// `{"error": …}` for a failure that ends it.
fn lines_of<T: serde::Serialize + Send + 'static>(
    events: tokio::sync::mpsc::Receiver<Result<T, Status>>,
) -> Response {
    let lines = futures_util::stream::unfold(events, |mut rx| async move {
        let line = rest_line(rx.recv().await?);
        Some((Ok::<_, std::convert::Infallible>(line), rx))
    });
    axum::body::Body::from_stream(lines).into_response()
}

/// One message of a server stream as a JSON line.
fn rest_line<T: serde::Serialize>(event: Result<T, Status>) -> Vec<u8> {
    let v = match event {
        Ok(m) => json!({ "result": m }),
        Err(s) => {
            json!({ "error": { "code": s.code() as i32, "message": s.message(), "details": [] } })
        }
    };
    let mut line = v.to_string().into_bytes();
    line.push(b'\n');
    line
}

async fn send_payment_v2(
    State(api): State<Api>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<Response, Refused> {
    api.check(&headers, "/routerrpc.Router/SendPaymentV2")?;
    let updates = super::payments::send(api.service.clone(), body_of(&body)?)?;
    Ok(lines_of(updates))
}

async fn track_payment_v2(
    State(api): State<Api>,
    headers: HeaderMap,
    Path(payment_hash): Path<String>,
    Query(q): Query<QueryMap>,
) -> Result<Response, Refused> {
    api.check(&headers, "/routerrpc.Router/TrackPaymentV2")?;
    let hash = bytes_param("payment_hash", &payment_hash)?;
    let updates =
        super::payments::track(api.service.clone(), hash, flag(&q, "no_inflight_updates")?).await?;
    Ok(lines_of(updates))
}

/// How long a TLS handshake may take.
const HANDSHAKE: std::time::Duration = std::time::Duration::from_secs(10);

/// Binds `addr` and serves the REST API on it over TLS with `id`, on a task of its own.
///
/// # Errors
/// When the port cannot be bound or the TLS identity is refused.
pub async fn serve(
    addr: SocketAddr,
    id: &Identity,
    service: Arc<Service>,
    auth: Arc<Auth>,
) -> anyhow::Result<tokio::task::JoinHandle<anyhow::Result<()>>> {
    let router = Router::new()
        .route("/v1/getinfo", get(get_info))
        .route("/v1/invoices", post(add_invoice).get(list_invoices))
        .route("/v1/invoices/subscribe", get(subscribe_invoices))
        .route("/v1/balance/channels", get(channel_balance))
        .route("/v2/invoices/hodl", post(add_hold_invoice))
        .route("/v2/invoices/settle", post(settle_invoice))
        .route("/v2/invoices/cancel", post(cancel_invoice))
        .route("/v2/invoices/lookup", get(lookup_invoice_v2))
        .route(
            "/v2/invoices/subscribe/{r_hash}",
            get(subscribe_single_invoice),
        )
        .route("/v2/router/send", post(send_payment_v2))
        .route("/v2/router/track/{payment_hash}", get(track_payment_v2))
        .route("/v1/invoice/{r_hash_str}", get(lookup_invoice))
        .with_state(Api { service, auth });
    let acceptor = tokio_rustls::TlsAcceptor::from(super::tls::server_config(id)?);
    let listener = tokio::net::TcpListener::bind(addr).await?;
    Ok(tokio::spawn(async move {
        loop {
            let tcp = match listener.accept().await {
                Ok((tcp, _)) => tcp,
                // Out of descriptors or a connection reset before it was taken: not the
                // server's end. A pause lets descriptors come back.
                Err(e) => {
                    tracing::warn!("REST accept: {e}");
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                    continue;
                }
            };
            let (acceptor, router) = (acceptor.clone(), router.clone());
            tokio::spawn(async move {
                // A client that never finishes its handshake does not keep a task for ever.
                let handshake = tokio::time::timeout(HANDSHAKE, acceptor.accept(tcp));
                let Ok(Ok(tls)) = handshake.await else {
                    return;
                };
                let io = hyper_util::rt::TokioIo::new(tls);
                let svc = hyper_util::service::TowerToHyperService::new(router);
                let _ = hyper_util::server::conn::auto::Builder::new(
                    hyper_util::rt::TokioExecutor::new(),
                )
                .serve_connection(io, svc)
                .await;
            });
        }
    }))
}
