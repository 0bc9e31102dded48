//! Proof-of-Intelligence endpoints: the `poi` object of `GET /jobs/{id}`, `GET
//! /validators/{address}`, `GET /validators/{address}/checks`, `GET /slashes`, `GET /beacon`,
//! `GET /models` and `GET /models/{id}`.
//!
//! Owns nothing in state: every answer reads one snapshot of the committed state through
//! `poi_core::poi`'s readers, so the figures of one answer describe one height. Hashes are
//! lowercase hex, amounts decimal strings of base units; JSON errors as everywhere else.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, Query, State};
use poi_core::poi::{self, beacon, checks, registry};
use poi_core::state::StateReader;
use serde_json::{Value, json};

use super::ApiError;
use super::handlers::parse_address;
use crate::ledger::Ledger;

type Shared = State<Arc<Ledger>>;
type ApiResult = Result<Json<Value>, ApiError>;

/// Most open checks `GET /validators/{address}/checks` lists.
pub(super) const VALIDATOR_CHECKS_MAX: usize = 256;
/// Most slash records one `GET /slashes` page holds.
pub(super) const SLASHES_PAGE_MAX: usize = 100;
/// Most model versions one `GET /models` page holds.
pub(super) const MODELS_PAGE_MAX: usize = 100;

fn to_value(value: &impl serde::Serialize) -> Result<Value, ApiError> {
    serde_json::to_value(value).map_err(ApiError::internal)
}

/// The `poi` object of job `id` (`None` for a job not submitted through PoI): the record,
/// the spec in hex (training), the draw and every check with its validator and verdict.
pub(super) fn job_poi(state: &dyn StateReader, id: u64) -> Result<Option<Value>, ApiError> {
    let Some(job) = poi::read_job(state, id).map_err(ApiError::internal)? else {
        return Ok(None);
    };
    let spec = poi::read_spec(state, id).map_err(ApiError::internal)?;
    let checks = checks::job_checks(state, id).map_err(ApiError::internal)?;
    let mut body = to_value(&job)?;
    if let Value::Object(body) = &mut body {
        body.insert("spec".into(), json!(spec.map(hex::encode)));
        body.insert(
            "draw".into(),
            json!({
                "target": job.draw_target.map(|(epoch, view)| json!({"epoch": epoch, "view": view})),
                "randomness": job.randomness.map(hex::encode),
            }),
        );
        body.insert("check_list".into(), to_value(&checks)?);
        let disputes = poi::dispute::job_disputes(state, id).map_err(ApiError::internal)?;
        body.insert("dispute_list".into(), to_value(&disputes)?);
    }
    Ok(Some(body))
}

/// The PoI summary a job listing carries: verification status, checks, the measured quality
/// and the registry id (`None` for a job not submitted through PoI).
pub(super) fn job_summary(state: &dyn StateReader, id: u64) -> Result<Option<Value>, ApiError> {
    let Some(job) = poi::read_job(state, id).map_err(ApiError::internal)? else {
        return Ok(None);
    };
    let quality = job.quality.as_ref().map(|q| {
        json!({
            "score": q.score,
            "base_score": q.base_score,
            "improvement_ppm": q.improvement_ppm,
            "multiplier_ppm": q.multiplier_ppm,
        })
    });
    Ok(Some(json!({
        "kind": job.kind.as_str(),
        "status": job.status.as_str(),
        "checks": job.checks,
        "checks_pending": job.checks_pending,
        "disputes": job.disputes,
        "quality": quality,
        "model_id": job.model_id,
        "canary": job.canary_revealed,
    })))
}

/// `GET /validators/{address}`: the verifier record (bond, open checks, credits, strikes,
/// jail), 404 if the address is not a registered verifier.
pub(super) async fn validator(State(ledger): Shared, Path(address): Path<String>) -> ApiResult {
    ledger.metrics().http_requests.inc();
    let address = parse_address(&address)?;
    let state = ledger.snapshot()?;
    let Some(v) = poi::read_verifier(&state, &address).map_err(ApiError::internal)? else {
        return Err(ApiError::not_found(format!(
            "{address} is not a registered verifier"
        )));
    };
    let mut body = to_value(&v)?;
    body["height"] = json!(ledger.tip().height);
    body["jailed"] = json!(v.jailed_until > ledger.tip().height);
    Ok(Json(body))
}

/// `GET /validators/{address}/checks`: the open checks assigned to it, in (job, check) order,
/// at most [`VALIDATOR_CHECKS_MAX`].
pub(super) async fn validator_checks(
    State(ledger): Shared,
    Path(address): Path<String>,
) -> ApiResult {
    ledger.metrics().http_requests.inc();
    let address = parse_address(&address)?;
    let state = ledger.snapshot()?;
    let open = checks::assigned_checks(&state, &address, VALIDATOR_CHECKS_MAX)
        .map_err(ApiError::internal)?;
    Ok(Json(json!({
        "address": address,
        "height": ledger.tip().height,
        "checks": to_value(&open)?,
    })))
}

/// `GET /rewards` query: `epoch`.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RewardsQuery {
    epoch: Option<u64>,
}

/// `GET /rewards?epoch=N`: what epoch `N` paid each stakeholder class and account, and the
/// treasury (`epoch` defaults to the last finished one); 404 before it ended.
pub(super) async fn rewards(
    State(ledger): Shared,
    query: Result<Query<RewardsQuery>, axum::extract::rejection::QueryRejection>,
) -> ApiResult {
    ledger.metrics().http_requests.inc();
    let Query(query) = query.map_err(|e| ApiError::bad_request("bad_query", e.body_text()))?;
    let state = ledger.snapshot()?;
    let height = ledger.tip().height;
    let epoch_blocks = ledger.params()?.rewards.epoch_blocks.max(1);
    let current = poi_core::rewards::epoch_of(height, epoch_blocks);
    let epoch = match query.epoch {
        Some(e) => e,
        None => current
            .checked_sub(1)
            .ok_or_else(|| ApiError::not_found("no epoch has ended yet".to_string()))?,
    };
    let Some(record) = poi_core::rewards::read_epoch(&state, epoch).map_err(ApiError::internal)?
    else {
        return Err(ApiError::not_found(if epoch >= current {
            format!("epoch {epoch} has not ended (current epoch {current})")
        } else {
            format!("epoch {epoch} paid nothing (no emission or work)")
        }));
    };
    // Each paid account's yield: the epoch's reward per bonded base unit, ppm.
    let mut yields = Vec::new();
    for (address, class, amount) in &record.accounts {
        let bonded = poi_core::staking::stake(&state, address)
            .map_err(ApiError::internal)?
            .bonded;
        let reward: u128 = amount.parse().unwrap_or(0);
        let yield_ppm = reward
            .checked_mul(1_000_000)
            .and_then(|x| x.checked_div(bonded));
        yields.push(json!({
            "address": address,
            "class": class,
            "reward": amount,
            "bonded": bonded.to_string(),
            "yield_ppm": yield_ppm.map(|y| y.to_string()),
        }));
    }
    let mut body = to_value(&record)?;
    body["yields"] = json!(yields);
    body["height"] = json!(height);
    body["epoch_blocks"] = json!(epoch_blocks);
    Ok(Json(body))
}

/// `GET /burn` query: `from` (an epoch), `limit`.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct BurnQuery {
    from: Option<u64>,
    limit: Option<usize>,
}

/// Most burn epochs one `GET /burn` returns.
const BURN_EPOCHS_MAX: usize = 1_000;

/// `GET /burn?from=&limit=`: the burn parameters, the current rate and meters, and the
/// history of ended epochs (demand, rate, usage burned, minted, all burns, net issuance,
/// forecast and next rate), oldest first.
pub(super) async fn burn(
    State(ledger): Shared,
    query: Result<Query<BurnQuery>, axum::extract::rejection::QueryRejection>,
) -> ApiResult {
    ledger.metrics().http_requests.inc();
    let Query(query) = query.map_err(|e| ApiError::bad_request("bad_query", e.body_text()))?;
    let limit = query.limit.unwrap_or(100);
    if limit == 0 || limit > BURN_EPOCHS_MAX {
        return Err(ApiError::bad_request(
            "bad_query",
            format!("limit must be 1..={BURN_EPOCHS_MAX}"),
        ));
    }
    let state = ledger.snapshot()?;
    let params = ledger.params()?.burn;
    let current = poi_core::burn::read_state(&state, &params).map_err(ApiError::internal)?;
    let history = poi_core::burn::history(&state, query.from.unwrap_or(0), limit)
        .map_err(ApiError::internal)?;
    Ok(Json(json!({
        "height": ledger.tip().height,
        "enabled": params.enabled(),
        "params": to_value(&params)?,
        "current": to_value(&current)?,
        "history": to_value(&history)?,
    })))
}

/// `GET /slashes` query: `after` (a sequence number), `limit`.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct SlashesQuery {
    after: Option<u64>,
    limit: Option<usize>,
}

/// `GET /slashes?after=&limit=`: PoI slash records in sequence order.
pub(super) async fn slashes(
    State(ledger): Shared,
    query: Result<Query<SlashesQuery>, axum::extract::rejection::QueryRejection>,
) -> ApiResult {
    ledger.metrics().http_requests.inc();
    let Query(query) = query.map_err(|e| ApiError::bad_request("bad_query", e.body_text()))?;
    let limit = query.limit.unwrap_or(50);
    if limit == 0 || limit > SLASHES_PAGE_MAX {
        return Err(ApiError::bad_request(
            "bad_query",
            format!("limit must be 1 to {SLASHES_PAGE_MAX}"),
        ));
    }
    let state = ledger.snapshot()?;
    let records = checks::slashes(&state, query.after, limit).map_err(ApiError::internal)?;
    let next = (records.len() == limit)
        .then(|| records.last().map(|r| r.seq))
        .flatten();
    Ok(Json(json!({
        "height": ledger.tip().height,
        "slashes": to_value(&records)?,
        "next_after": next,
    })))
}

/// `GET /beacon`: the beacon record (identity, seed namespace, epoch, seeds recorded, last
/// seed view), 404 on a chain without a beacon.
pub(super) async fn beacon(State(ledger): Shared) -> ApiResult {
    ledger.metrics().http_requests.inc();
    let state = ledger.snapshot()?;
    let Some(record) = beacon::read_beacon(&state).map_err(ApiError::internal)? else {
        return Err(ApiError::not_found(
            "this chain has no beacon (genesis [beacon] unset)",
        ));
    };
    let mut body = to_value(&record)?;
    body["height"] = json!(ledger.tip().height);
    Ok(Json(body))
}

/// `GET /models` query: `name` (`mlp-iris`), `after` (an id), `limit`.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ModelsQuery {
    name: Option<String>,
    after: Option<u64>,
    limit: Option<usize>,
}

/// `GET /models?name=&after=&limit=`: registered model versions in id order.
pub(super) async fn models(
    State(ledger): Shared,
    query: Result<Query<ModelsQuery>, axum::extract::rejection::QueryRejection>,
) -> ApiResult {
    ledger.metrics().http_requests.inc();
    let Query(query) = query.map_err(|e| ApiError::bad_request("bad_query", e.body_text()))?;
    let limit = query.limit.unwrap_or(50);
    if limit == 0 || limit > MODELS_PAGE_MAX {
        return Err(ApiError::bad_request(
            "bad_query",
            format!("limit must be 1 to {MODELS_PAGE_MAX}"),
        ));
    }
    let state = ledger.snapshot()?;
    let models = registry::models(&state, query.name.as_deref(), query.after, limit)
        .map_err(ApiError::internal)?;
    let next = (models.len() == limit)
        .then(|| models.last().map(|m| m.id))
        .flatten();
    Ok(Json(json!({
        "height": ledger.tip().height,
        "models": to_value(&models)?,
        "next_after": next,
    })))
}

/// `GET /models/{id}`: one version with its lineage back to a root, 404 if none.
pub(super) async fn model(State(ledger): Shared, Path(id): Path<String>) -> ApiResult {
    ledger.metrics().http_requests.inc();
    let id: u64 = id.parse().map_err(|_| {
        ApiError::bad_request(
            "bad_model_id",
            format!("{id:?} is not a model id (an integer)"),
        )
    })?;
    let state = ledger.snapshot()?;
    let Some(model) = registry::read_model(&state, id).map_err(ApiError::internal)? else {
        return Err(ApiError::not_found(format!("no model version {id}")));
    };
    let lineage = registry::lineage(&state, id).map_err(ApiError::internal)?;
    let mut body = to_value(&model)?;
    body["lineage"] = to_value(&lineage)?;
    body["height"] = json!(ledger.tip().height);
    Ok(Json(body))
}
