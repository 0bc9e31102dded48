//! The provider's HTTP server (axum, loopback or any address): serves job checkpoints, step
//! digests with proofs, inference requests and outputs from the agent's directory (endpoints
//! and bodies in [`crate::wire`]). Errors are JSON `{"error": {"code", "message"}}` as the
//! node's.
//!
//! A `withhold-checkpoint` provider answers checkpoint requests with 404; a
//! `wrong-checkpoint` one serves another step's checkpoint (the final one for step 0, else
//! step 0's).

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use poi_repops::commit::{Digest, merkle_proof};
use poi_repops::train::checkpoint_path;
use serde_json::json;
use tokio::sync::oneshot;

use crate::behaviour::ProviderBehaviour;
use crate::store::{AgentDir, JobRecord};
use crate::wire::{
    DIGESTS_PAGE_MAX, DigestsAnswer, Leaf, OutputAnswer, REQUEST_BYTES_MAX, REQUESTS_MAX,
    RequestsBody, request_digest,
};
use crate::{AgentError, Result};

/// Largest request body: [`REQUESTS_MAX`] requests of [`REQUEST_BYTES_MAX`] in hex.
const BODY_BYTES_MAX: usize = 2 * REQUESTS_MAX * REQUEST_BYTES_MAX / 8;

struct Served {
    dir: AgentDir,
    behaviour: ProviderBehaviour,
}

type Shared = State<Arc<Served>>;

struct ApiError(StatusCode, &'static str, String);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = json!({ "error": { "code": self.1, "message": self.2 } });
        (self.0, Json(body)).into_response()
    }
}

impl From<AgentError> for ApiError {
    fn from(e: AgentError) -> Self {
        ApiError(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string())
    }
}

fn not_found(message: String) -> ApiError {
    ApiError(StatusCode::NOT_FOUND, "not_found", message)
}

fn bad(message: String) -> ApiError {
    ApiError(StatusCode::BAD_REQUEST, "bad_request", message)
}

/// The router over an agent directory.
pub fn router(dir: AgentDir, behaviour: ProviderBehaviour) -> Router {
    Router::new()
        .route("/v1/jobs/{id}/checkpoints/{step}", get(checkpoint))
        .route("/v1/jobs/{id}/digests", get(digests))
        .route(
            "/v1/jobs/{id}/requests",
            get(get_requests).post(post_requests),
        )
        .route("/v1/jobs/{id}/outputs/{index}", get(output))
        .layer(DefaultBodyLimit::max(BODY_BYTES_MAX))
        .with_state(Arc::new(Served { dir, behaviour }))
}

fn training(s: &Served, id: u64) -> std::result::Result<(Vec<Digest>, Digest), ApiError> {
    match s.dir.record(id)? {
        Some(JobRecord::Training { digests, root, .. }) if !digests.is_empty() => {
            Ok((digests, root))
        }
        _ => Err(not_found(format!("no committed training job {id}"))),
    }
}

async fn checkpoint(State(s): Shared, Path((id, step)): Path<(u64, u64)>) -> Response {
    let answer = || -> std::result::Result<Vec<u8>, ApiError> {
        let (digests, _) = training(&s, id)?;
        let steps = digests.len() as u64 - 1;
        if step > steps {
            return Err(not_found(format!("job {id} has steps 0..={steps}")));
        }
        let served = match s.behaviour {
            ProviderBehaviour::WithholdCheckpoint => {
                return Err(not_found(format!("no checkpoint of step {step}")));
            }
            ProviderBehaviour::WrongCheckpoint if step == 0 => steps,
            ProviderBehaviour::WrongCheckpoint => 0,
            _ => step,
        };
        let path = checkpoint_path(&s.dir.train_dir(id), served);
        std::fs::read(&path).map_err(|_| not_found(format!("no checkpoint of step {step}")))
    };
    match answer() {
        Ok(bytes) => ([(header::CONTENT_TYPE, "application/octet-stream")], bytes).into_response(),
        Err(e) => e.into_response(),
    }
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Range {
    from: u64,
    to: u64,
}

async fn digests(
    State(s): Shared,
    Path(id): Path<u64>,
    range: std::result::Result<Query<Range>, axum::extract::rejection::QueryRejection>,
) -> std::result::Result<Json<DigestsAnswer>, ApiError> {
    let Query(Range { from, to }) = range.map_err(|e| bad(e.body_text()))?;
    let (digests, root) = training(&s, id)?;
    let steps = digests.len() as u64 - 1;
    if from > to || to > steps || to - from >= DIGESTS_PAGE_MAX {
        return Err(bad(format!(
            "from..=to must lie in 0..={steps}, at most {DIGESTS_PAGE_MAX} leaves"
        )));
    }
    let leaves = (from..=to)
        .map(|step| {
            Ok(Leaf {
                step,
                digest: digests[step as usize],
                proof: merkle_proof(&digests, step).map_err(AgentError::from)?,
            })
        })
        .collect::<std::result::Result<Vec<Leaf>, ApiError>>()?;
    Ok(Json(DigestsAnswer {
        job: id,
        root,
        leaves,
    }))
}

async fn get_requests(
    State(s): Shared,
    Path(id): Path<u64>,
) -> std::result::Result<Json<RequestsBody>, ApiError> {
    s.dir
        .requests(id)?
        .map(Json)
        .ok_or_else(|| not_found(format!("no requests for job {id}")))
}

async fn post_requests(
    State(s): Shared,
    Path(id): Path<u64>,
    body: std::result::Result<Json<RequestsBody>, axum::extract::rejection::JsonRejection>,
) -> std::result::Result<Json<serde_json::Value>, ApiError> {
    let Json(body) = body.map_err(|e| bad(e.body_text()))?;
    if body.requests.is_empty() || body.requests.len() > REQUESTS_MAX {
        return Err(bad(format!("1..={REQUESTS_MAX} requests")));
    }
    for (i, r) in body.requests.iter().enumerate() {
        let bytes = hex::decode(r).map_err(|e| bad(format!("request {i}: {e}")))?;
        if bytes.len() > REQUEST_BYTES_MAX {
            return Err(bad(format!(
                "request {i} exceeds {REQUEST_BYTES_MAX} bytes"
            )));
        }
    }
    if s.dir.record(id)?.is_some() {
        return Err(ApiError(
            StatusCode::CONFLICT,
            "committed",
            format!("job {id} is computed already"),
        ));
    }
    s.dir.write_requests(id, &body)?;
    Ok(Json(json!({ "job": id, "requests": body.requests.len() })))
}

async fn output(
    State(s): Shared,
    Path((id, index)): Path<(u64, u64)>,
) -> std::result::Result<Json<OutputAnswer>, ApiError> {
    let Some(JobRecord::Inference {
        requests,
        outputs,
        leaves,
        ..
    }) = s.dir.record(id)?
    else {
        return Err(not_found(format!("no committed inference job {id}")));
    };
    let i = usize::try_from(index).ok().filter(|&i| i < requests.len());
    let Some(i) = i else {
        return Err(not_found(format!(
            "job {id} has {} requests",
            requests.len()
        )));
    };
    let request_digests = requests
        .iter()
        .map(|r| hex::decode(r).map(|b| request_digest(&b)))
        .collect::<std::result::Result<Vec<Digest>, _>>()
        .map_err(|e| AgentError::Job {
            job: id,
            reason: format!("stored request is not hex: {e}"),
        })?;
    Ok(Json(OutputAnswer {
        job: id,
        index,
        request: requests[i].clone(),
        request_proof: merkle_proof(&request_digests, index).map_err(AgentError::from)?,
        output: outputs[i].clone(),
        digest: leaves[i],
        proof: merkle_proof(&leaves, index).map_err(AgentError::from)?,
    }))
}

/// A running server; dropping it stops the server.
#[derive(Debug)]
pub struct ServerHandle {
    addr: SocketAddr,
    shutdown: Option<oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl ServerHandle {
    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Drop for ServerHandle {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Binds `addr` and serves `dir` on a thread of its own (a one-worker tokio runtime).
pub fn start(
    addr: SocketAddr,
    dir: AgentDir,
    behaviour: ProviderBehaviour,
) -> Result<ServerHandle> {
    let fail = |cause: String| AgentError::Serve {
        addr: addr.to_string(),
        cause,
    };
    let listener = std::net::TcpListener::bind(addr).map_err(|e| fail(e.to_string()))?;
    let bound = listener.local_addr().map_err(|e| fail(e.to_string()))?;
    listener
        .set_nonblocking(true)
        .map_err(|e| fail(e.to_string()))?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .map_err(|e| fail(e.to_string()))?;
    let listener = {
        let _entered = runtime.enter();
        tokio::net::TcpListener::from_std(listener).map_err(|e| fail(e.to_string()))?
    };
    let (shutdown, stop) = oneshot::channel::<()>();
    let app = router(dir, behaviour);
    let thread = std::thread::Builder::new()
        .name(format!("provider-http-{}", bound.port()))
        .spawn(move || {
            runtime.block_on(async move {
                let stop = async move {
                    let _ = stop.await;
                };
                if let Err(error) = axum::serve(listener, app)
                    .with_graceful_shutdown(stop)
                    .await
                {
                    tracing::error!(%error, "provider server stopped");
                }
            });
        })
        .map_err(|e| fail(e.to_string()))?;
    tracing::info!(addr = %bound, %behaviour, "provider serving");
    Ok(ServerHandle {
        addr: bound,
        shutdown: Some(shutdown),
        thread: Some(thread),
    })
}
