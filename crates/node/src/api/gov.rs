//! Governance reads: proposals, their votes, live tallies and history.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, Query, State};
use poi_core::governance::{self, ProposalStatus};
use serde_json::{Value, json};

use super::ApiError;
use crate::ledger::Ledger;

type Shared = State<Arc<Ledger>>;
type ApiResult = Result<Json<Value>, ApiError>;

/// Most proposals one `GET /proposals` returns.
const PROPOSALS_PAGE_MAX: usize = 200;

fn to_value(value: &impl serde::Serialize) -> Result<Value, ApiError> {
    serde_json::to_value(value).map_err(ApiError::internal)
}

/// `GET /proposals` query: `from` (an id), `limit`.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ProposalsQuery {
    from: Option<u64>,
    limit: Option<usize>,
}

/// `GET /proposals?from=&limit=`: proposals in id order.
pub(super) async fn proposals(
    State(ledger): Shared,
    query: Result<Query<ProposalsQuery>, axum::extract::rejection::QueryRejection>,
) -> ApiResult {
    ledger.metrics().http_requests.inc();
    let Query(query) = query.map_err(|e| ApiError::bad_request("bad_query", e.body_text()))?;
    let limit = query.limit.unwrap_or(50);
    if limit == 0 || limit > PROPOSALS_PAGE_MAX {
        return Err(ApiError::bad_request(
            "bad_query",
            format!("limit must be 1 to {PROPOSALS_PAGE_MAX}"),
        ));
    }
    let state = ledger.snapshot()?;
    let list = governance::proposals(&state, query.from.unwrap_or(0), limit)
        .map_err(ApiError::internal)?;
    Ok(Json(json!({
        "height": ledger.tip().height,
        "proposals": to_value(&list)?,
    })))
}

/// `GET /proposals/{id}`: the proposal with its steps and heights, its votes, the tally (live
/// while voting) and turnout as bps of the stake bonded at submission; 404 if unknown.
pub(super) async fn proposal(State(ledger): Shared, Path(id): Path<String>) -> ApiResult {
    ledger.metrics().http_requests.inc();
    let id: u64 = id
        .parse()
        .map_err(|_| ApiError::bad_request("bad_id", format!("`{id}` is not a proposal id")))?;
    let state = ledger.snapshot()?;
    let Some(p) = governance::read_proposal(&state, id).map_err(ApiError::internal)? else {
        return Err(ApiError::not_found(format!("no proposal {id}")));
    };
    let votes = governance::votes(&state, id).map_err(ApiError::internal)?;
    let tally = match &p.tally {
        Some(t) => t.clone(),
        None => governance::tally(&state, &p).map_err(ApiError::internal)?,
    };
    let turnout_bps = tally
        .turnout()
        .saturating_mul(10_000)
        .checked_div(p.bonded)
        .unwrap_or(0);
    let mut body = to_value(&p)?;
    body["live"] = json!(p.status == ProposalStatus::Voting);
    body["tally"] = to_value(&tally)?;
    body["turnout_bps"] = json!(turnout_bps);
    body["votes"] = json!(
        votes
            .iter()
            .map(|(voter, option)| json!({"voter": voter, "option": option}))
            .collect::<Vec<_>>()
    );
    body["height"] = json!(ledger.tip().height);
    Ok(Json(body))
}
