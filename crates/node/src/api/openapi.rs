//! The OpenAPI 3.1 description of the API, written by hand so it says what the handlers do.

use axum::Json;
use serde_json::{Value, json};

fn error_response(description: &str) -> Value {
    json!({
        "description": description,
        "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Error" } } }
    })
}

fn ok_json(description: &str, schema: Value) -> Value {
    json!({ "description": description, "content": { "application/json": { "schema": schema } } })
}

/// `GET /openapi.json`.
pub(super) async fn document() -> Json<Value> {
    Json(spec())
}

/// The document.
pub(super) fn spec() -> Value {
    let any = json!({ "type": "object" });
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "poi node API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Amounts are decimal strings of base units (1 POI = 10^9). Hashes are hex."
        },
        "paths": {
            "/health": { "get": { "summary": "Liveness", "responses": {
                "200": ok_json("Node is up", json!({"type": "object", "properties": {
                    "status": {"type": "string"}, "height": {"type": "integer"}}}))
            }}},
            "/status": { "get": { "summary": "Chain id, tip, mempool size, validators",
                "responses": { "200": ok_json("Status", any.clone()) }}},
            "/txs": { "post": {
                "summary": "Submit a signed transaction",
                "requestBody": { "required": true, "content": { "application/json": { "schema": {
                    "type": "object", "required": ["tx"],
                    "properties": { "tx": { "type": "string", "description": "hex of the borsh-encoded Tx" } }
                }}}},
                "responses": {
                    "202": ok_json("Admitted to the mempool", json!({"type": "object", "properties": {
                        "hash": {"type": "string"}, "status": {"const": "pending"}}})),
                    "400": error_response("bad_json or bad_hex"),
                    "409": error_response("duplicate"),
                    "413": error_response("oversized or body_too_large"),
                    "422": error_response("malformed, bad_signature, wrong_chain_id, stale_nonce, unknown_account, insufficient_funds, fee_too_low, overflow, invalid_message"),
                    "503": error_response("mempool_full")
                }
            }},
            "/txs/{hash}": { "get": {
                "summary": "Transaction status and receipt (events)",
                "parameters": [{ "name": "hash", "in": "path", "required": true, "schema": {"type": "string"}}],
                "responses": {
                    "200": ok_json("pending, or committed with its receipt", any.clone()),
                    "400": error_response("bad_hash"),
                    "404": error_response("not_found")
                }
            }},
            "/accounts/{address}": { "get": {
                "summary": "Account balance and nonce, optionally with a Merkle proof",
                "parameters": [
                    { "name": "address", "in": "path", "required": true, "schema": {"type": "string"}},
                    { "name": "prove", "in": "query", "required": false, "schema": {"type": "boolean"},
                      "description": "include a JMT proof of the account record against state_root" }
                ],
                "responses": {
                    "200": ok_json("Account", json!({"type": "object", "properties": {
                        "address": {"type": "string"}, "balance": {"type": "string"},
                        "nonce": {"type": "integer"}, "next_nonce": {"type": "integer"},
                        "height": {"type": "integer"}, "state_root": {"type": "string"},
                        "proof": {"type": "object"}}})),
                    "400": error_response("bad_address or bad_query")
                }
            }},
            "/stake/{address}": { "get": {
                "summary": "Bonded, locked and unbonding stake, the tier it reaches, with a Merkle proof",
                "parameters": [{ "name": "address", "in": "path", "required": true, "schema": {"type": "string"}}],
                "responses": {
                    "200": ok_json("Stake", json!({"type": "object", "properties": {
                        "address": {"type": "string"}, "bonded": {"type": "string"},
                        "locked": {"type": "string"}, "free": {"type": "string"},
                        "unbonding": {"type": "array"}, "tier": {"type": "integer"},
                        "tier_thresholds": {"type": "array"}, "unbonding_blocks": {"type": "integer"},
                        "height": {"type": "integer"}, "state_root": {"type": "string"},
                        "proof": {"type": "object"}}})),
                    "400": error_response("bad_address")
                }
            }},
            "/market": { "get": {
                "summary": "Market statistics: utilisation, base price, collateral multiplier, queue length and mean wait by tier, jobs by status, providers by state",
                "responses": {
                    "200": ok_json("Market", json!({"type": "object", "properties": {
                        "height": {"type": "integer"}, "utilisation": {"type": "string"},
                        "utilisation_bps": {"type": "integer"}, "base_price": {"type": "string"},
                        "demand_multiplier": {"type": "string"},
                        "demand_multiplier_ppm": {"type": "integer"},
                        "queue_length": {"type": "integer"},
                        "queue": {"type": "array", "items": {"type": "object", "properties": {
                            "tier": {"type": "integer"}, "length": {"type": "integer"},
                            "mean_wait_blocks": {"type": "integer"}}}},
                        "jobs": {"type": "object"}, "providers": {"type": "object"},
                        "escrow_total": {"type": "string"}}}))
                }
            }},
            "/providers/{address}": { "get": {
                "summary": "A provider: hardware, capacity, ask, collateral and required collateral, reputation, slashes",
                "parameters": [{ "name": "address", "in": "path", "required": true, "schema": {"type": "string"}}],
                "responses": {
                    "200": ok_json("Provider", json!({"type": "object", "properties": {
                        "address": {"type": "string"}, "collateral": {"type": "string"},
                        "required_collateral": {"type": "string"}, "eligible": {"type": "boolean"},
                        "reputation_ppm": {"type": "integer"}, "reputation": {"type": "string"},
                        "slashes": {"type": "integer"}, "slashed_total": {"type": "string"},
                        "online": {"type": "boolean"}, "jobs": {"type": "array"}}})),
                    "400": error_response("bad_address"),
                    "404": error_response("not_found: not a registered provider")
                }
            }},
            "/jobs": { "get": {
                "summary": "Jobs in id order, optionally in one status, paged",
                "parameters": [
                    { "name": "status", "in": "query", "required": false, "schema": {"type": "string",
                      "enum": ["queued", "matched", "running", "committed", "disputed", "settled", "cancelled", "expired", "failed"]}},
                    { "name": "after", "in": "query", "required": false, "schema": {"type": "integer"}},
                    { "name": "limit", "in": "query", "required": false, "schema": {"type": "integer", "minimum": 1, "maximum": 200}}
                ],
                "responses": {
                    "200": ok_json("Jobs", json!({"type": "object", "properties": {
                        "height": {"type": "integer"}, "status": {"type": "string"},
                        "jobs": {"type": "array"}, "next_after": {"type": "integer"}}})),
                    "400": error_response("bad_status or bad_query")
                }
            }},
            "/jobs/{id}": { "get": {
                "summary": "A job: spec, owner, status, escrow, provider, charged price, deadline, payment and refund",
                "parameters": [{ "name": "id", "in": "path", "required": true, "schema": {"type": "integer"}}],
                "responses": {
                    "200": ok_json("Job", json!({"type": "object", "properties": {
                        "id": {"type": "integer"}, "owner": {"type": "string"},
                        "status": {"type": "string"}, "escrow": {"type": "string"},
                        "provider": {"type": "string"}, "charged_price": {"type": "string"},
                        "paid": {"type": "string"}, "refunded": {"type": "string"},
                        "poi": {"type": ["object", "null"], "description": "the PoI record (training or inference), the spec in hex, the draw and check_list (every check with validator and verdict); null for a job not submitted through PoI"}}})),
                    "400": error_response("bad_job_id"),
                    "404": error_response("not_found: no such job")
                }
            }},
            "/validators/{address}": { "get": {
                "summary": "A PoI verifier: bond, open checks, credits, strikes, jail",
                "parameters": [{ "name": "address", "in": "path", "required": true, "schema": {"type": "string"}}],
                "responses": {
                    "200": ok_json("Verifier", json!({"type": "object", "properties": {
                        "address": {"type": "string"}, "bond": {"type": "string"},
                        "open_checks": {"type": "integer"}, "credits_units": {"type": "integer"},
                        "strikes": {"type": "integer"}, "jailed_until": {"type": "integer"},
                        "jailed": {"type": "boolean"}, "ordinal": {"type": "integer"},
                        "height": {"type": "integer"}}})),
                    "400": error_response("bad_address"),
                    "404": error_response("not_found: not a registered verifier")
                }
            }},
            "/validators/{address}/checks": { "get": {
                "summary": "The open spot and referee checks assigned to a verifier, in (job, check) order",
                "parameters": [{ "name": "address", "in": "path", "required": true, "schema": {"type": "string"}}],
                "responses": {
                    "200": ok_json("Open checks", json!({"type": "object", "properties": {
                        "address": {"type": "string"}, "height": {"type": "integer"},
                        "checks": {"type": "array", "items": {"$ref": "#/components/schemas/Check"}}}})),
                    "400": error_response("bad_address")
                }
            }},
            "/proposals": { "get": {
                "summary": "Governance proposals in id order",
                "parameters": [
                    { "name": "from", "in": "query", "required": false, "schema": {"type": "integer"}},
                    { "name": "limit", "in": "query", "required": false, "schema": {"type": "integer"}}
                ],
                "responses": {
                    "200": ok_json("Proposals", json!({"type": "object", "properties": {
                        "proposals": {"type": "array"}}})),
                    "400": error_response("bad_query")
                }
            }},
            "/proposals/{id}": { "get": {
                "summary": "A proposal: payload and hash, status, each step's height, votes, tally (live while voting) and turnout",
                "parameters": [
                    { "name": "id", "in": "path", "required": true, "schema": {"type": "integer"}}
                ],
                "responses": {
                    "200": ok_json("Proposal", json!({"type": "object", "properties": {
                        "id": {"type": "integer"}, "status": {"type": "string"},
                        "tally": {"type": "object"}, "turnout_bps": {"type": "integer"},
                        "steps": {"type": "array"}, "votes": {"type": "array"}}})),
                    "400": error_response("bad_id"),
                    "404": error_response("not_found")
                }
            }},
            "/burn": { "get": {
                "summary": "Usage burns: parameters, the current rate and meters, and each ended epoch's demand, rate, burn, net issuance and forecast",
                "parameters": [
                    { "name": "from", "in": "query", "required": false, "schema": {"type": "integer"}},
                    { "name": "limit", "in": "query", "required": false, "schema": {"type": "integer"}}
                ],
                "responses": {
                    "200": ok_json("Burn", json!({"type": "object", "properties": {
                        "enabled": {"type": "boolean"}, "params": {"type": "object"},
                        "current": {"type": "object"}, "history": {"type": "array"}}})),
                    "400": error_response("bad_query")
                }
            }},
            "/rewards": { "get": {
                "summary": "What an epoch paid: the pool, each class's amount, every account paid, the treasury",
                "parameters": [
                    { "name": "epoch", "in": "query", "required": false, "schema": {"type": "integer"}}
                ],
                "responses": {
                    "200": ok_json("EpochRewards", json!({"type": "object", "properties": {
                        "epoch": {"type": "integer"}, "pool": {"type": "string"},
                        "emission": {"type": "string"}, "fees": {"type": "string"},
                        "other": {"type": "string"},
                        "classes": {"type": "array"}, "accounts": {"type": "array"},
                        "yields": {"type": "array"},
                        "treasury": {"type": "string"}}})),
                    "400": error_response("bad_query"),
                    "404": error_response("not_found")
                }
            }},
            "/slashes": { "get": {
                "summary": "PoI slash records in sequence order: account, role, reason, job, check, evidence, referees, amount",
                "parameters": [
                    { "name": "after", "in": "query", "required": false, "schema": {"type": "integer"}},
                    { "name": "limit", "in": "query", "required": false, "schema": {"type": "integer", "minimum": 1, "maximum": 100}}
                ],
                "responses": {
                    "200": ok_json("Slashes", json!({"type": "object", "properties": {
                        "height": {"type": "integer"}, "slashes": {"type": "array"},
                        "next_after": {"type": "integer"}}})),
                    "400": error_response("bad_query")
                }
            }},
            "/beacon": { "get": {
                "summary": "The randomness beacon: group identity, seed namespace, epoch, seeds recorded, last seed view",
                "responses": {
                    "200": ok_json("Beacon", json!({"type": "object", "properties": {
                        "identity": {"type": "string"}, "seed_namespace": {"type": "string"},
                        "epoch": {"type": "integer"}, "seeds_recorded": {"type": "integer"},
                        "last_seed_view": {"type": "integer"}, "height": {"type": "integer"}}})),
                    "404": error_response("not_found: the chain has no beacon")
                }
            }},
            "/models": { "get": {
                "summary": "Registered model versions in id order, optionally of one name, paged",
                "parameters": [
                    { "name": "name", "in": "query", "required": false, "schema": {"type": "string"}},
                    { "name": "after", "in": "query", "required": false, "schema": {"type": "integer"}},
                    { "name": "limit", "in": "query", "required": false, "schema": {"type": "integer", "minimum": 1, "maximum": 100}}
                ],
                "responses": {
                    "200": ok_json("Models", json!({"type": "object", "properties": {
                        "height": {"type": "integer"}, "models": {"type": "array"},
                        "next_after": {"type": "integer"}}})),
                    "400": error_response("bad_query")
                }
            }},
            "/models/{id}": { "get": {
                "summary": "A model version: name, version, params digest, training job, base, scores, multiplier, and its lineage",
                "parameters": [{ "name": "id", "in": "path", "required": true, "schema": {"type": "integer"}}],
                "responses": {
                    "200": ok_json("Model version", json!({"type": "object", "properties": {
                        "id": {"type": "integer"}, "name": {"type": "string"},
                        "version": {"type": "integer"}, "model": {"type": "string"},
                        "params_digest": {"type": "string"}, "job": {"type": ["integer", "null"]},
                        "provider": {"type": ["string", "null"]}, "lineage": {"type": "array"}}})),
                    "400": error_response("bad_model_id"),
                    "404": error_response("not_found: no such version")
                }
            }},
            "/blocks/latest": { "get": { "summary": "Latest committed block",
                "responses": { "200": ok_json("Block", json!({"$ref": "#/components/schemas/Block"})) }}},
            "/blocks/{id}": { "get": {
                "summary": "Block by height or by 64-hex hash",
                "parameters": [{ "name": "id", "in": "path", "required": true, "schema": {"type": "string"}}],
                "responses": {
                    "200": ok_json("Block", json!({"$ref": "#/components/schemas/Block"})),
                    "400": error_response("bad_block_id or bad_hash"),
                    "404": error_response("not_found")
                }
            }},
            "/supply": { "get": { "summary": "Supply breakdown", "responses": {
                "200": ok_json("Supply", json!({"type": "object", "properties": {
                    "genesis": {"type": "string"}, "minted": {"type": "string"},
                    "burned": {"type": "string"}, "burned_by_reason": {"type": "object"},
                    "total": {"type": "string"}, "circulating": {"type": "string"}}}))
            }}},
            "/validators": { "get": { "summary": "The validator set: each validator's stake, seats, missed leader views, jail and evidence, and the votes this node has seen from each consensus participant", "responses": {
                "200": ok_json("Validators", json!({"type": "object", "properties": {
                    "height": {"type": "integer"}, "epoch": {"type": ["integer", "null"]},
                    "seats": {"type": "integer"},
                    "validators": {"type": "array", "items": {"type": "object", "properties": {
                        "address": {"type": "string"}, "registered": {"type": "boolean"},
                        "collateral": {"type": "string"}, "stake": {"type": "string"},
                        "seats": {"type": "integer"}, "missed_views": {"type": "integer"},
                        "jailed": {"type": "boolean"}, "jailed_until": {"type": "integer"},
                        "tombstoned": {"type": "boolean"}, "evidence": {"type": "integer"},
                        "slashed": {"type": "string"}}}},
                    "signers": {"type": ["object", "null"], "description": "the signer generation the consensus engine runs (generation, first_epoch, participants) and the open key-reshare round, if any (open_round, open_round_logs)"},
                    "consensus": {"type": "array", "description": "as /network's peers"}}}))
            }}},
            "/network": { "get": { "summary": "This node's network: its role, the validators it dials, the full nodes it admits, block sync progress", "responses": {
                "200": ok_json("Network", json!({"type": "object", "properties": {
                    "public_key": {"type": "string"}, "listen": {"type": ["string", "null"]},
                    "role": {"type": "string", "enum": ["validator", "full_node"]},
                    "full_nodes": {"type": "array", "items": {"type": "object", "properties": {
                        "public_key": {"type": "string"}, "p2p_addr": {"type": "string"},
                        "this_node": {"type": "boolean"}}}},
                    "peers": {"type": "array", "items": {"type": "object", "properties": {
                        "public_key": {"type": "string"}, "p2p_addr": {"type": "string"},
                        "this_node": {"type": "boolean"}, "notarizes": {"type": "integer"},
                        "finalizes": {"type": "integer"}, "nullifies": {"type": "integer"},
                        "last_vote_view": {"type": ["integer", "null"]},
                        "last_block_message_ms_ago": {"type": ["integer", "null"]}}}},
                    "syncing": {"type": "boolean"}, "block_requests": {"type": "integer"},
                    "blocks_synced": {"type": "integer"}, "height": {"type": "integer"},
                    "block_hash": {"type": "string"}}}))
            }}},
            "/params": { "get": { "summary": "Chain parameters",
                "responses": { "200": ok_json("Params", any.clone()) }}},
            "/events": { "get": { "summary": "Server-sent events: one `block` event per committed block with its receipts",
                "responses": { "200": { "description": "text/event-stream" }}}},
            "/metrics": { "get": { "summary": "Prometheus metrics",
                "responses": { "200": { "description": "OpenMetrics text" }}}},
            "/openapi.json": { "get": { "summary": "This document",
                "responses": { "200": ok_json("OpenAPI", any) }}}
        },
        "components": { "schemas": {
            "Error": { "type": "object", "required": ["error"], "properties": { "error": {
                "type": "object", "required": ["code", "message"],
                "properties": { "code": {"type": "string"}, "message": {"type": "string"} }
            }}},
            "Check": { "type": "object", "properties": {
                "job": {"type": "integer"}, "index": {"type": "integer"},
                "subject": {"type": "object", "description": "{\"segment\": j} or {\"request\": i}"},
                "role": {"description": "\"spot\" or {\"referee\": {\"of\": check}}"},
                "validator": {"type": ["string", "null"]}, "deadline": {"type": "integer"},
                "attempts": {"type": "integer"}, "status": {"type": "string"},
                "verdict": {"type": ["object", "null"]}, "units": {"type": "integer"}
            }},
            "Block": { "type": "object", "required": ["height", "hash", "state_root"], "properties": {
                "height": {"type": "integer"}, "hash": {"type": "string"},
                "parent_hash": {"type": "string"}, "state_root": {"type": "string"},
                "timestamp_ms": {"type": "integer"}, "proposer": {"type": "string"},
                "tx_count": {"type": "integer"}, "txs": {"type": "array", "items": {"type": "string"}},
                "header": {"type": "object"}, "block_events": {"type": "array"}
            }}
        }}
    })
}
