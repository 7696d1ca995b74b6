//! LND's gRPC services over TLS: each served method checks the call's macaroon, then does what
//! [`Service`] does for it. The methods not served answer `Unimplemented`.

use std::net::SocketAddr;
use std::sync::Arc;

use tonic::{Request, Response, Status};

use super::auth::Auth;
use super::payments;
use super::proto::{invoicesrpc, lnrpc, routerrpc};
use super::service::Service;
use super::subscribe;
use super::tls::Identity;

/// The `Lightning` service.
pub struct Lightning {
    service: Arc<Service>,
    auth: Arc<Auth>,
}

impl Lightning {
    fn check<T>(&self, req: &Request<T>, path: &str) -> Result<(), Status> {
        let given = req.metadata().get("macaroon").and_then(|v| v.to_str().ok());
        self.auth.check(given, path)
    }
}

#[tonic::async_trait]
impl lnrpc::lightning_server::Lightning for Lightning {
    async fn get_info(
        &self,
        req: Request<lnrpc::GetInfoRequest>,
    ) -> Result<Response<lnrpc::GetInfoResponse>, Status> {
        self.check(&req, "/lnrpc.Lightning/GetInfo")?;
        self.service.get_info().await.map(Response::new)
    }

    async fn add_invoice(
        &self,
        req: Request<lnrpc::Invoice>,
    ) -> Result<Response<lnrpc::AddInvoiceResponse>, Status> {
        self.check(&req, "/lnrpc.Lightning/AddInvoice")?;
        self.service
            .add_invoice(req.into_inner())
            .await
            .map(Response::new)
    }

    async fn lookup_invoice(
        &self,
        req: Request<lnrpc::PaymentHash>,
    ) -> Result<Response<lnrpc::Invoice>, Status> {
        self.check(&req, "/lnrpc.Lightning/LookupInvoice")?;
        let r = req.into_inner();
        // `r_hash_str` is deprecated, and still taken, as LND takes it.
        #[allow(deprecated)]
        let hash = if r.r_hash.is_empty() {
            hex::decode(&r.r_hash_str)
                .map_err(|_| Status::invalid_argument("r_hash_str: not hex"))?
        } else {
            r.r_hash
        };
        self.service.lookup_invoice(&hash).await.map(Response::new)
    }

    async fn list_invoices(
        &self,
        req: Request<lnrpc::ListInvoiceRequest>,
    ) -> Result<Response<lnrpc::ListInvoiceResponse>, Status> {
        self.check(&req, "/lnrpc.Lightning/ListInvoices")?;
        self.service
            .list_invoices(req.into_inner())
            .await
            .map(Response::new)
    }

    async fn subscribe_invoices(
        &self,
        req: Request<lnrpc::InvoiceSubscription>,
    ) -> Result<Response<BoxStream<lnrpc::Invoice>>, Status> {
        self.check(&req, "/lnrpc.Lightning/SubscribeInvoices")?;
        let r = req.into_inner();
        let events = subscribe::invoices(self.service.clone(), r.add_index, r.settle_index);
        Ok(Response::new(stream_of(events)))
    }

    async fn channel_balance(
        &self,
        req: Request<lnrpc::ChannelBalanceRequest>,
    ) -> Result<Response<lnrpc::ChannelBalanceResponse>, Status> {
        self.check(&req, "/lnrpc.Lightning/ChannelBalance")?;
        self.service.channel_balance().await.map(Response::new)
    }
}

/// The `Invoices` service (hold invoices, lookups by reference, one invoice's states).
pub struct Invoices {
    service: Arc<Service>,
    auth: Arc<Auth>,
}

impl Invoices {
    fn check<T>(&self, req: &Request<T>, path: &str) -> Result<(), Status> {
        let given = req.metadata().get("macaroon").and_then(|v| v.to_str().ok());
        self.auth.check(given, path)
    }
}

#[tonic::async_trait]
impl invoicesrpc::invoices_server::Invoices for Invoices {
    async fn add_hold_invoice(
        &self,
        req: Request<invoicesrpc::AddHoldInvoiceRequest>,
    ) -> Result<Response<invoicesrpc::AddHoldInvoiceResp>, Status> {
        self.check(&req, "/invoicesrpc.Invoices/AddHoldInvoice")?;
        self.service
            .add_hold_invoice(req.into_inner())
            .await
            .map(Response::new)
    }

    async fn settle_invoice(
        &self,
        req: Request<invoicesrpc::SettleInvoiceMsg>,
    ) -> Result<Response<invoicesrpc::SettleInvoiceResp>, Status> {
        self.check(&req, "/invoicesrpc.Invoices/SettleInvoice")?;
        self.service
            .settle_invoice(req.into_inner())
            .await
            .map(Response::new)
    }

    async fn cancel_invoice(
        &self,
        req: Request<invoicesrpc::CancelInvoiceMsg>,
    ) -> Result<Response<invoicesrpc::CancelInvoiceResp>, Status> {
        self.check(&req, "/invoicesrpc.Invoices/CancelInvoice")?;
        self.service
            .cancel_invoice(req.into_inner())
            .await
            .map(Response::new)
    }

    async fn lookup_invoice_v2(
        &self,
        req: Request<invoicesrpc::LookupInvoiceMsg>,
    ) -> Result<Response<lnrpc::Invoice>, Status> {
        self.check(&req, "/invoicesrpc.Invoices/LookupInvoiceV2")?;
        self.service
            .lookup_invoice_v2(req.into_inner())
            .await
            .map(Response::new)
    }

    async fn subscribe_single_invoice(
        &self,
        req: Request<invoicesrpc::SubscribeSingleInvoiceRequest>,
    ) -> Result<Response<BoxStream<lnrpc::Invoice>>, Status> {
        self.check(&req, "/invoicesrpc.Invoices/SubscribeSingleInvoice")?;
        let events = subscribe::single(self.service.clone(), req.into_inner().r_hash);
        Ok(Response::new(stream_of(events)))
    }
}

/// The `Router` service (paying through the node).
pub struct Router {
    service: Arc<Service>,
    auth: Arc<Auth>,
}

#[tonic::async_trait]
impl routerrpc::router_server::Router for Router {
    async fn send_payment_v2(
        &self,
        req: Request<routerrpc::SendPaymentRequest>,
    ) -> Result<Response<BoxStream<lnrpc::Payment>>, Status> {
        self.auth
            .check(macaroon_of(&req), "/routerrpc.Router/SendPaymentV2")?;
        let updates = payments::send(self.service.clone(), req.into_inner())?;
        Ok(Response::new(stream_of(updates)))
    }

    async fn track_payment_v2(
        &self,
        req: Request<routerrpc::TrackPaymentRequest>,
    ) -> Result<Response<BoxStream<lnrpc::Payment>>, Status> {
        self.auth
            .check(macaroon_of(&req), "/routerrpc.Router/TrackPaymentV2")?;
        let r = req.into_inner();
        let updates =
            payments::track(self.service.clone(), r.payment_hash, r.no_inflight_updates).await?;
        Ok(Response::new(stream_of(updates)))
    }
}

/// The hex macaroon a call carries, if any.
fn macaroon_of<T>(req: &Request<T>) -> Option<&str> {
    req.metadata().get("macaroon").and_then(|v| v.to_str().ok())
}

/// The events of a subscription as a gRPC server stream.
fn stream_of<T: Send + 'static>(
    events: tokio::sync::mpsc::Receiver<Result<T, Status>>,
) -> BoxStream<T> {
    Box::pin(futures_util::stream::unfold(events, |mut rx| async move {
        rx.recv().await.map(|e| (e, rx))
    }))
}

/// A server stream of LND's messages.
type BoxStream<T> =
    std::pin::Pin<Box<dyn futures_util::Stream<Item = Result<T, Status>> + Send + 'static>>;

/// Serves the gRPC services on `addr` over TLS with `id` until the future is dropped.
///
/// # Errors
/// When the TLS identity is refused or the port cannot be served.
pub async fn serve(
    addr: SocketAddr,
    id: &Identity,
    service: Arc<Service>,
    auth: Arc<Auth>,
) -> anyhow::Result<()> {
    let tls = tonic::transport::ServerTlsConfig::new().identity(
        tonic::transport::Identity::from_pem(&id.cert_pem, &id.key_pem),
    );
    tonic::transport::Server::builder()
        .tls_config(tls)?
        .add_service(lnrpc::lightning_server::LightningServer::new(Lightning {
            service: service.clone(),
            auth: auth.clone(),
        }))
        .add_service(invoicesrpc::invoices_server::InvoicesServer::new(
            Invoices {
                service: service.clone(),
                auth: auth.clone(),
            },
        ))
        .add_service(routerrpc::router_server::RouterServer::new(Router {
            service,
            auth,
        }))
        .serve(addr)
        .await?;
    Ok(())
}
