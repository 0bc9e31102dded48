//! Read endpoints: health, status, params, metrics, the OpenAPI document and error answers.

use std::collections::BTreeSet;

use poi_core::params::Params;
use serde_json::json;

use crate::{CHAIN_ID, TestNode, addr, alice, assert_error, bob, transfer, validator};

/// Every route the router serves, as the OpenAPI document must name it.
const ROUTES: [&str; 29] = [
    "/network",
    "/validators",
    "/proposals",
    "/proposals/{id}",
    "/burn",
    "/health",
    "/status",
    "/txs",
    "/txs/{hash}",
    "/accounts/{address}",
    "/stake/{address}",
    "/market",
    "/providers/{address}",
    "/jobs",
    "/jobs/{id}",
    "/validators/{address}",
    "/validators/{address}/checks",
    "/slashes",
    "/rewards",
    "/beacon",
    "/models",
    "/models/{id}",
    "/blocks/latest",
    "/blocks/{id}",
    "/supply",
    "/params",
    "/events",
    "/metrics",
    "/openapi.json",
];

#[test]
fn health_status_and_params() {
    let node = TestNode::start();
    node.commit_block();
    assert_eq!(
        node.get("/health"),
        (200, json!({ "status": "ok", "height": 1 }))
    );
    let status = node.get_ok("/status");
    assert_eq!(status["chain_id"], CHAIN_ID);
    assert_eq!(status["height"], 1);
    assert_eq!(status["mempool_txs"], 0);
    assert_eq!(
        status["validators"],
        json!([addr(&validator()).to_string()])
    );
    let params: Params = serde_json::from_value(node.get_ok("/params")).expect("params decode");
    assert_eq!(params, Params::default());
}

#[test]
fn metrics_report_height_and_committed_transactions() {
    let node = TestNode::start();
    node.submit_ok(&transfer(&alice(), 0, addr(&bob()), 1));
    node.commit_block();
    node.commit_block();
    let (status, text) = node.get_text("/metrics");
    assert_eq!(status, 200);
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines.contains(&"poi_height 2"), "{text}");
    assert!(lines.contains(&"poi_txs_committed_total 1"), "{text}");
    assert!(lines.contains(&"poi_txs_admitted_total 1"), "{text}");
    assert!(lines.contains(&"poi_mempool_txs 0"), "{text}");
    assert!(text.trim_end().ends_with("# EOF"), "{text}");
}

#[test]
fn openapi_lists_every_route_and_every_listed_route_exists() {
    let node = TestNode::start();
    let spec = node.get_ok("/openapi.json");
    assert!(spec["openapi"].as_str().expect("version").starts_with("3."));
    let listed: BTreeSet<&str> = spec["paths"]
        .as_object()
        .expect("paths")
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(listed, ROUTES.into_iter().collect::<BTreeSet<_>>());
    // Each listed GET route answers something other than the unknown-route 404.
    let tx_hash = "00".repeat(32);
    let address = addr(&alice()).to_string();
    for route in ROUTES {
        if route == "/events" || spec["paths"][route]["get"].is_null() {
            continue;
        }
        let path = route
            .replace("{hash}", &tx_hash)
            .replace("{address}", &address)
            .replace("{id}", "0");
        let (status, text) = node.get_text(&path);
        // A transaction, provider or job that does not exist is a typed 404, not a missing route.
        let may_be_absent = [
            "/proposals/{id}",
            "/txs/{hash}",
            "/providers/{address}",
            "/jobs/{id}",
            "/validators/{address}",
            "/beacon",
            "/models/{id}",
            "/rewards",
        ];
        let known = status == 200 || (may_be_absent.contains(&route) && status == 404);
        assert!(known, "GET {path}: {status} {text}");
        assert!(!text.contains("no such endpoint"), "GET {path}: {text}");
    }
    assert!(spec["paths"]["/txs"]["post"].is_object());
}

#[test]
fn unknown_route_is_404_json() {
    let node = TestNode::start();
    for path in ["/nope", "/blocks", "/accounts", "/txs/a/b", "/"] {
        assert_error(&node.get(path), 404, "not_found");
    }
}

#[test]
fn wrong_method_is_405_json() {
    let node = TestNode::start();
    assert_error(&node.post_raw("/health", b"{}"), 405, "method_not_allowed");
    assert_error(&node.get("/txs"), 405, "method_not_allowed");
}

#[test]
fn wrong_method_is_refused() {
    let node = TestNode::start();
    let url = format!("{}/health", node.base);
    let config = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build();
    let agent = ureq::Agent::new_with_config(config);
    let response = agent.post(&url).send(&b"{}"[..]).expect("request");
    assert_eq!(response.status().as_u16(), 405);
    let response = agent
        .get(format!("{}/txs", node.base))
        .call()
        .expect("request");
    assert_eq!(response.status().as_u16(), 405);
}

#[test]
fn bad_address_is_400_bad_address() {
    let node = TestNode::start();
    let good = addr(&alice()).to_string();
    let mut typo: Vec<char> = good.chars().collect();
    typo[10] = if typo[10] == 'q' { 'p' } else { 'q' };
    let typo: String = typo.into_iter().collect();
    let wrong_prefix = good.replacen("poi1", "cosmos1", 1);
    for bad in ["hello", "poi1", typo.as_str(), wrong_prefix.as_str(), "00"] {
        let answer = node.get(&format!("/accounts/{bad}"));
        assert_error(&answer, 400, "bad_address");
    }
    assert_error(
        &node.get(&format!("/accounts/{good}?prove=maybe")),
        400,
        "bad_query",
    );
    assert_eq!(node.get(&format!("/accounts/{good}")).0, 200);
}

#[test]
fn tx_lookup_errors() {
    let node = TestNode::start();
    assert_error(&node.get("/txs/xyz"), 400, "bad_hash");
    assert_error(
        &node.get(&format!("/txs/{}", "ab".repeat(31))),
        400,
        "bad_hash",
    );
    assert_error(
        &node.get(&format!("/txs/{}", "ab".repeat(32))),
        404,
        "not_found",
    );
}
