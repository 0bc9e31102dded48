//! Request handlers.

use std::convert::Infallible;
use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures::Stream;
use poi_core::block::BlockHash;
use poi_core::{Address, TxError};
use serde::Deserialize;
use serde_json::{Value, json};
use tokio_stream::StreamExt;
use tokio_stream::wrappers::BroadcastStream;

use super::ApiError;
use crate::ledger::{Ledger, StoredBlock};

type Shared = State<Arc<Ledger>>;
type ApiResult = Result<Json<Value>, ApiError>;

pub(super) async fn health(State(ledger): Shared) -> Json<Value> {
    ledger.metrics().http_requests.inc();
    let tip = ledger.tip();
    Json(json!({ "status": "ok", "height": tip.height }))
}

pub(super) async fn status(State(ledger): Shared) -> Json<Value> {
    ledger.metrics().http_requests.inc();
    let tip = ledger.tip();
    let genesis = ledger.genesis();
    Json(json!({
        "chain_id": genesis.chain_id,
        "height": tip.height,
        "hash": hex::encode(tip.block_hash),
        "state_root": hex::encode(tip.state_root),
        "mempool_txs": ledger.mempool_len(),
        "validators": genesis.validators,
    }))
}

pub(super) async fn method_not_allowed() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "method not allowed on this endpoint; see GET /openapi.json",
    )
}

pub(super) async fn not_found() -> ApiError {
    ApiError::not_found("no such endpoint; see GET /openapi.json")
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct SubmitBody {
    tx: String,
}

fn tx_status_code(error: &TxError) -> StatusCode {
    match error {
        TxError::MempoolFull { .. } => StatusCode::SERVICE_UNAVAILABLE,
        TxError::Duplicate(_) => StatusCode::CONFLICT,
        TxError::Oversized { .. } => StatusCode::PAYLOAD_TOO_LARGE,
        TxError::State(_) => StatusCode::INTERNAL_SERVER_ERROR,
        _ => StatusCode::UNPROCESSABLE_ENTITY,
    }
}

pub(super) async fn submit_tx(
    State(ledger): Shared,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    ledger.metrics().http_requests.inc();
    let body = body.map_err(|e| {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "body_too_large",
            format!("{e}; the limit is {} bytes", super::REQUEST_BYTES_MAX),
        )
    })?;
    let bad_json = |why: String| {
        ApiError::bad_request("bad_json", format!("expected {{\"tx\": \"<hex>\"}}: {why}"))
    };
    let value: Value = serde_json::from_slice(&body).map_err(|e| bad_json(e.to_string()))?;
    if !value.is_object() {
        return Err(bad_json("the body is not a JSON object".into()));
    }
    let parsed: SubmitBody = serde_json::from_value(value).map_err(|e| bad_json(e.to_string()))?;
    let bytes = hex::decode(parsed.tx.trim())
        .map_err(|e| ApiError::bad_request("bad_hex", format!("tx is not hex: {e}")))?;
    let ledger2 = Arc::clone(&ledger);
    let result = tokio::task::spawn_blocking(move || ledger2.submit_and_gossip(&bytes))
        .await
        .map_err(ApiError::internal)?;
    match result {
        Ok(hash) => {
            let body = json!({ "hash": hex::encode(hash), "status": "pending" });
            Ok((StatusCode::ACCEPTED, Json(body)).into_response())
        }
        Err(error) => Err(ApiError::new(
            tx_status_code(&error),
            error.code(),
            error.to_string(),
        )),
    }
}

pub(super) fn parse_address(text: &str) -> Result<Address, ApiError> {
    text.parse().map_err(|e: poi_core::address::AddressError| {
        ApiError::bad_request("bad_address", e.to_string())
    })
}

fn parse_hash(text: &str) -> Result<[u8; 32], ApiError> {
    let bytes = hex::decode(text)
        .map_err(|_| ApiError::bad_request("bad_hash", format!("{text:?} is not 64 hex digits")))?;
    bytes
        .try_into()
        .map_err(|_| ApiError::bad_request("bad_hash", format!("{text:?} is not 64 hex digits")))
}

pub(super) async fn tx_status(State(ledger): Shared, Path(hash): Path<String>) -> ApiResult {
    ledger.metrics().http_requests.inc();
    let hash = parse_hash(&hash)?;
    if let Some(receipt) = ledger.receipt(&hash)? {
        return Ok(Json(json!({
            "hash": hex::encode(hash),
            "status": "committed",
            "height": receipt.height,
            "index": receipt.index,
            "receipt": receipt,
        })));
    }
    if ledger.is_pending(&hash) {
        return Ok(Json(
            json!({ "hash": hex::encode(hash), "status": "pending" }),
        ));
    }
    Err(ApiError::not_found(format!(
        "transaction {} is neither pending nor committed",
        hex::encode(hash)
    )))
}

#[derive(Deserialize)]
pub(super) struct AccountQuery {
    #[serde(default)]
    prove: bool,
}

pub(super) async fn account(
    State(ledger): Shared,
    Path(address): Path<String>,
    query: Result<Query<AccountQuery>, axum::extract::rejection::QueryRejection>,
) -> ApiResult {
    ledger.metrics().http_requests.inc();
    let Query(query) = query.map_err(|e| ApiError::bad_request("bad_query", e.body_text()))?;
    let address = parse_address(&address)?;
    // One consistent view: the record as of the tip's height, read from the versioned tree, so
    // balance, nonce, root and proof always belong together even while blocks commit.
    let tip = ledger.tip();
    let key = poi_core::bank::account_key(&address);
    let (value, proof) = ledger
        .store()
        .get_with_proof(&key, tip.height)
        .map_err(ApiError::internal)?;
    let account: Option<poi_core::bank::Account> = match &value {
        Some(bytes) => Some(borsh::from_slice(bytes).map_err(ApiError::internal)?),
        None => None,
    };
    let next_nonce = ledger.next_nonce(&address, account.map_or(0, |a| a.nonce));
    let mut body = json!({
        "address": address,
        "exists": account.is_some(),
        "balance": account.map_or(0, |a| a.balance).to_string(),
        "nonce": account.map_or(0, |a| a.nonce),
        "next_nonce": next_nonce,
        "height": tip.height,
        "state_root": hex::encode(tip.state_root),
    });
    if query.prove {
        body["proof"] = json!({
            "key": hex::encode(&key),
            "value": value.map(hex::encode),
            "proof": hex::encode(proof.to_bytes()),
            "height": tip.height,
            "state_root": hex::encode(tip.state_root),
        });
    }
    Ok(Json(body))
}

/// `GET /stake/{address}`: bonded, locked and unbonding stake and the tier it reaches, as of
/// the tip, with a Merkle proof of the record.
pub(super) async fn stake(State(ledger): Shared, Path(address): Path<String>) -> ApiResult {
    ledger.metrics().http_requests.inc();
    let address = parse_address(&address)?;
    let tip = ledger.tip();
    let key = poi_core::staking::stake_key(&address);
    let store = ledger.store();
    let (value, proof) = store
        .get_with_proof(&key, tip.height)
        .map_err(ApiError::internal)?;
    let stake: poi_core::staking::Stake = match &value {
        Some(bytes) => borsh::from_slice(bytes).map_err(ApiError::internal)?,
        None => Default::default(),
    };
    let params = ledger.params()?.staking;
    Ok(Json(json!({
        "address": address,
        "bonded": stake.bonded.to_string(),
        "locked": stake.locked.to_string(),
        "free": stake.free().to_string(),
        "unbonding": stake.unbonding,
        "tier": params.tier(stake.bonded),
        "tier_thresholds": params.tier_thresholds.iter().map(u128::to_string).collect::<Vec<_>>(),
        "unbonding_blocks": params.unbonding_blocks,
        "height": tip.height,
        "state_root": hex::encode(tip.state_root),
        "proof": {
            "key": hex::encode(&key),
            "value": value.map(hex::encode),
            "proof": hex::encode(proof.to_bytes()),
        },
    })))
}

fn block_json(stored: &StoredBlock) -> Value {
    let header = &stored.block.header;
    let txs: Vec<String> = stored
        .block
        .txs
        .iter()
        .map(|tx| hex::encode(tx.hash()))
        .collect();
    json!({
        "height": header.height,
        "hash": hex::encode(stored.block.hash()),
        "header": header,
        "parent_hash": hex::encode(header.parent_hash),
        "state_root": hex::encode(header.state_root),
        "timestamp_ms": header.timestamp_ms,
        "proposer": header.proposer,
        "tx_count": header.tx_count,
        "txs": txs,
        "block_events": stored.block_events,
    })
}

pub(super) async fn latest_block(State(ledger): Shared) -> ApiResult {
    ledger.metrics().http_requests.inc();
    let height = ledger.tip().height;
    let stored = ledger
        .block(height)?
        .ok_or_else(|| ApiError::internal("tip block missing"))?;
    Ok(Json(block_json(&stored)))
}

pub(super) async fn block(State(ledger): Shared, Path(id): Path<String>) -> ApiResult {
    ledger.metrics().http_requests.inc();
    let height = if id.len() == 64 {
        let hash: BlockHash = parse_hash(&id)?;
        ledger
            .store()
            .height_by_block_hash(&hash)
            .map_err(ApiError::internal)?
            .ok_or_else(|| ApiError::not_found(format!("no committed block with hash {id}")))?
    } else {
        id.parse::<u64>().map_err(|_| {
            ApiError::bad_request(
                "bad_block_id",
                format!("{id:?} is neither a height nor a 64-hex hash"),
            )
        })?
    };
    let stored = ledger.block(height)?.ok_or_else(|| {
        ApiError::not_found(format!(
            "no block at height {height}; the tip is {}",
            ledger.tip().height
        ))
    })?;
    Ok(Json(block_json(&stored)))
}

pub(super) async fn supply(State(ledger): Shared) -> ApiResult {
    ledger.metrics().http_requests.inc();
    let state = ledger.snapshot()?;
    let supply = ledger.chain().supply(&state).map_err(ApiError::internal)?;
    let mut body = serde_json::to_value(&supply).map_err(ApiError::internal)?;
    body["height"] = json!(ledger.tip().height);
    body["decimals"] = json!(poi_core::token::DECIMALS);
    Ok(Json(body))
}

pub(super) async fn validators(State(ledger): Shared) -> ApiResult {
    ledger.metrics().http_requests.inc();
    let state = ledger.snapshot()?;
    let params = ledger.params()?;
    let height = ledger.tip().height;
    let validators =
        poi_core::validators::status_all(&state, &params, height).map_err(ApiError::internal)?;
    let set =
        poi_core::validators::current_set(&state, height, &params).map_err(ApiError::internal)?;
    let signers = poi_core::validators::reshare::summary(&state).map_err(ApiError::internal)?;
    Ok(Json(json!({
        "height": height,
        "epoch": set.as_ref().map(|s| s.epoch),
        "seats": set.as_ref().map_or(0, |s| s.members.len()),
        "signers": signers,
        "validators": validators,
        "consensus": ledger.network().snapshot().peers,
    })))
}

pub(super) async fn network(State(ledger): Shared) -> ApiResult {
    ledger.metrics().http_requests.inc();
    let snapshot = ledger.network().snapshot();
    let mut body = serde_json::to_value(&snapshot).map_err(ApiError::internal)?;
    let tip = ledger.tip();
    body["height"] = json!(tip.height);
    body["block_hash"] = json!(hex::encode(tip.block_hash));
    Ok(Json(body))
}

pub(super) async fn params(State(ledger): Shared) -> ApiResult {
    ledger.metrics().http_requests.inc();
    let params = ledger.params()?;
    Ok(Json(
        serde_json::to_value(&params).map_err(ApiError::internal)?,
    ))
}

pub(super) async fn metrics(State(ledger): Shared) -> impl IntoResponse {
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        ledger.metrics().encode(),
    )
}

pub(super) async fn events(
    State(ledger): Shared,
) -> Sse<impl Stream<Item = Result<SseEvent, Infallible>>> {
    ledger.metrics().http_requests.inc();
    // A client too slow for the stream is told how many blocks it missed.
    let stream = BroadcastStream::new(ledger.subscribe()).filter_map(|event| match event {
        Ok(event) => SseEvent::default()
            .event("block")
            .json_data(&event)
            .ok()
            .map(Ok),
        Err(tokio_stream::wrappers::errors::BroadcastStreamRecvError::Lagged(missed)) => {
            Some(Ok(SseEvent::default()
                .event("lagged")
                .data(missed.to_string())))
        }
    });
    Sse::new(stream).keep_alive(KeepAlive::default())
}
