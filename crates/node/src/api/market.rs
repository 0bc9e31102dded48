//! Market endpoints: `GET /market`, `GET /providers/{address}`, `GET /jobs` (by status, paged)
//! and `GET /jobs/{id}`.
//!
//! Each reads one snapshot of the committed state, so every figure in an answer describes the
//! same height. Amounts are decimal strings of base units; ratios are integers in basis points
//! (bps) or parts per million (ppm), with an exact decimal rendering beside the main ones.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, Query, State};
use poi_core::market;
use serde_json::{Value, json};

use super::ApiError;
use super::handlers::parse_address;
use crate::ledger::Ledger;

type Shared = State<Arc<Ledger>>;
type ApiResult = Result<Json<Value>, ApiError>;

/// `bps` as an exact decimal fraction: 7,525 bps is `"0.7525"`.
fn bps_fraction(bps: u16) -> String {
    format!("{}.{:04}", bps / 10_000, bps % 10_000)
}

/// `ppm` as an exact decimal factor: 1,250,000 ppm is `"1.250000"`.
fn ppm_factor(ppm: u32) -> String {
    format!("{}.{:06}", ppm / 1_000_000, ppm % 1_000_000)
}

fn to_value(value: &impl serde::Serialize) -> Result<Value, ApiError> {
    serde_json::to_value(value).map_err(ApiError::internal)
}

/// Utilisation, base price, collateral multiplier, queue length and mean wait by tier, job and
/// provider counts.
pub(super) async fn stats(State(ledger): Shared) -> ApiResult {
    ledger.metrics().http_requests.inc();
    let state = ledger.snapshot()?;
    let height = ledger.tip().height;
    let params = ledger.params()?;
    let stats = market::market_stats(&state, &params, height).map_err(ApiError::internal)?;
    let queue_length: u64 = stats.queue.iter().map(|t| t.length).sum();
    let mut body = to_value(&stats)?;
    let extra = json!({
        "utilisation": bps_fraction(stats.utilisation_bps),
        "target_utilisation": bps_fraction(params.market.target_utilisation_bps),
        "demand_multiplier": ppm_factor(stats.demand_multiplier_ppm),
        "queue_length": queue_length,
    });
    if let (Value::Object(body), Value::Object(extra)) = (&mut body, extra) {
        body.extend(extra);
    }
    Ok(Json(body))
}

/// A provider: registration, collateral and what is required now, reputation, slashes.
pub(super) async fn provider(State(ledger): Shared, Path(address): Path<String>) -> ApiResult {
    ledger.metrics().http_requests.inc();
    let address = parse_address(&address)?;
    let state = ledger.snapshot()?;
    let Some(info) = market::provider(&state, &address).map_err(ApiError::internal)? else {
        return Err(ApiError::not_found(format!(
            "{address} is not a registered provider"
        )));
    };
    let mut body = to_value(&info)?;
    let extra = json!({
        "reputation": ppm_factor(info.record.reputation_ppm),
        "under_collateralised": info.record.collateral < info.required_collateral,
        "height": ledger.tip().height,
    });
    if let (Value::Object(body), Value::Object(extra)) = (&mut body, extra) {
        body.extend(extra);
    }
    Ok(Json(body))
}

/// `GET /jobs` query: `status` (a job status name), `after` (a job id), `limit`.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct JobsQuery {
    status: Option<String>,
    after: Option<u64>,
    limit: Option<usize>,
}

/// Jobs in id order, optionally in one status, `limit` (default 50, at most
/// [`market::JOBS_PAGE_MAX`]) after the id `after`.
pub(super) async fn jobs(
    State(ledger): Shared,
    query: Result<Query<JobsQuery>, axum::extract::rejection::QueryRejection>,
) -> ApiResult {
    ledger.metrics().http_requests.inc();
    let Query(query) = query.map_err(|e| ApiError::bad_request("bad_query", e.body_text()))?;
    let status = match query.status.as_deref() {
        None => None,
        Some(name) => Some(market::JobStatus::parse(name).ok_or_else(|| {
            let known: Vec<&str> = market::JobStatus::ALL.iter().map(|s| s.as_str()).collect();
            ApiError::bad_request(
                "bad_status",
                format!("unknown job status {name:?}; one of {}", known.join(", ")),
            )
        })?),
    };
    let limit = query.limit.unwrap_or(50);
    if limit == 0 || limit > market::JOBS_PAGE_MAX {
        return Err(ApiError::bad_request(
            "bad_query",
            format!("limit must be 1 to {}", market::JOBS_PAGE_MAX),
        ));
    }
    let state = ledger.snapshot()?;
    let jobs = market::jobs(&state, status, query.after, limit).map_err(ApiError::internal)?;
    let next = (jobs.len() == limit)
        .then(|| jobs.last().map(|j| j.id))
        .flatten();
    let mut listed = Vec::with_capacity(jobs.len());
    for job in &jobs {
        let mut value = to_value(job)?;
        if let Some(summary) = super::poi::job_summary(&state, job.id)? {
            value["poi"] = summary;
        }
        listed.push(value);
    }
    Ok(Json(json!({
        "height": ledger.tip().height,
        "status": status.map(|s| s.as_str()),
        "jobs": listed,
        "next_after": next,
    })))
}

/// A job: its spec, status, escrow, provider, price, deadline and settlement.
pub(super) async fn job(State(ledger): Shared, Path(id): Path<String>) -> ApiResult {
    ledger.metrics().http_requests.inc();
    let id: u64 = id.parse().map_err(|_| {
        ApiError::bad_request("bad_job_id", format!("{id:?} is not a job id (an integer)"))
    })?;
    let state = ledger.snapshot()?;
    let Some(job) = market::job(&state, id).map_err(ApiError::internal)? else {
        return Err(ApiError::not_found(format!("no job {id}")));
    };
    let mut body = to_value(&job)?;
    let poi = super::poi::job_poi(&state, id)?;
    if let Value::Object(body) = &mut body {
        body.insert("height".into(), json!(ledger.tip().height));
        body.insert("poi".into(), json!(poi));
    }
    Ok(Json(body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fractions_are_exact() {
        assert_eq!(bps_fraction(0), "0.0000");
        assert_eq!(bps_fraction(7_525), "0.7525");
        assert_eq!(bps_fraction(10_000), "1.0000");
        assert_eq!(ppm_factor(500_000), "0.500000");
        assert_eq!(ppm_factor(4_000_000), "4.000000");
    }
}
