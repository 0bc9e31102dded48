//! The HTTP JSON API (axum).
//!
//! Every error answers with a 4xx/5xx status and a JSON body
//! `{"error": {"code": "...", "message": "..."}}`; transaction rejections reuse the stable codes of
//! [`poi_core::TxError::code`]. Amounts are decimal strings of base units; hashes and roots are
//! lowercase hex. The full description is served at `GET /openapi.json`.

mod gov;
mod handlers;
mod market;
mod openapi;
mod poi;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::json;

use crate::ledger::Ledger;

/// Largest request body accepted, in bytes: a maximal transaction in hex plus JSON framing.
pub const REQUEST_BYTES_MAX: usize = 2 * poi_core::limits::TX_BYTES_MAX as usize + 1024;

/// An API error: status, stable code, message.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
}

impl ApiError {
    /// A new error.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
        }
    }

    pub(super) fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }

    fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", message)
    }

    fn internal(error: impl std::fmt::Display) -> Self {
        tracing::error!(%error, "internal API error");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            error.to_string(),
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = json!({ "error": { "code": self.code, "message": self.message } });
        (self.status, axum::Json(body)).into_response()
    }
}

impl From<crate::error::NodeError> for ApiError {
    fn from(error: crate::error::NodeError) -> Self {
        ApiError::internal(error)
    }
}

/// The API router over a ledger.
pub fn router(ledger: Arc<Ledger>) -> Router {
    Router::new()
        .route("/health", get(handlers::health))
        .route("/status", get(handlers::status))
        .route("/txs", post(handlers::submit_tx))
        .route("/txs/{hash}", get(handlers::tx_status))
        .route("/accounts/{address}", get(handlers::account))
        .route("/stake/{address}", get(handlers::stake))
        .route("/market", get(market::stats))
        .route("/providers/{address}", get(market::provider))
        .route("/jobs", get(market::jobs))
        .route("/jobs/{id}", get(market::job))
        .route("/validators", get(handlers::validators))
        .route("/validators/{address}", get(poi::validator))
        .route("/validators/{address}/checks", get(poi::validator_checks))
        .route("/slashes", get(poi::slashes))
        .route("/rewards", get(poi::rewards))
        .route("/burn", get(poi::burn))
        .route("/proposals", get(gov::proposals))
        .route("/proposals/{id}", get(gov::proposal))
        .route("/beacon", get(poi::beacon))
        .route("/models", get(poi::models))
        .route("/models/{id}", get(poi::model))
        .route("/blocks/latest", get(handlers::latest_block))
        .route("/blocks/{id}", get(handlers::block))
        .route("/supply", get(handlers::supply))
        .route("/params", get(handlers::params))
        .route("/network", get(handlers::network))
        .route("/events", get(handlers::events))
        .route("/metrics", get(handlers::metrics))
        .route("/openapi.json", get(openapi::document))
        .fallback(handlers::not_found)
        .method_not_allowed_fallback(handlers::method_not_allowed)
        .layer(DefaultBodyLimit::max(REQUEST_BYTES_MAX))
        .with_state(ledger)
}

/// Binds `addr` and serves the API until `shutdown` resolves.
pub async fn serve(
    ledger: Arc<Ledger>,
    addr: SocketAddr,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    serve_on(ledger, listener, shutdown).await
}

/// Serves the API on an already bound listener.
pub async fn serve_on(
    ledger: Arc<Ledger>,
    listener: tokio::net::TcpListener,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router(ledger))
        .with_graceful_shutdown(shutdown)
        .await
}
