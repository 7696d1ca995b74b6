//! `/metrics` over HTTP on `--metrics-listen`, in Prometheus' text exposition format,
//! each scrape reading its [`Sources`] first. Any other path is 404.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;

use super::{Metrics, Sources};

/// The content type of the exposition.
const CONTENT_TYPE: &str = prometheus::TEXT_FORMAT;

/// Binds `addr` and serves `/metrics` from it on the current runtime until the daemon stops.
///
/// # Errors
/// When the address cannot be bound (a start-up error: the operator asked for it).
pub async fn start(
    addr: SocketAddr,
    metrics: Arc<Metrics>,
    sources: Sources,
) -> anyhow::Result<SocketAddr> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| anyhow::anyhow!("--metrics-listen {addr}: {e}"))?;
    let bound = listener.local_addr()?;
    let shared = Arc::new((metrics, sources));
    let app = Router::new().route(
        "/metrics",
        get(move || {
            let shared = Arc::clone(&shared);
            async move {
                match shared.0.render(&shared.1) {
                    Ok(text) => ([(header::CONTENT_TYPE, CONTENT_TYPE)], text).into_response(),
                    Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
                }
            }
        }),
    );
    actix::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            tracing::error!("metrics endpoint stopped: {e}");
        }
    });
    Ok(bound)
}
