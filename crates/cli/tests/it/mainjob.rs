//! The main job: `poi devnet` alone starts a network doing real AI work. Within the issue's
//! five minutes, `GET /jobs?status=settled` lists verified training and inference jobs with
//! their measured quality, `GET /slashes` the cheating provider's slash with its reason and
//! evidence, and `GET /models` the registry with lineage.

use std::time::{Duration, Instant};

use serde_json::Value;

use crate::{Node, devnet_key};

/// The bound.
const WITHIN: Duration = Duration::from_secs(300);

#[test]
fn the_devnet_verifies_real_work_measures_it_and_slashes_the_cheater() {
    let _serial = crate::many_processes();
    let dir = tempfile::tempdir().expect("temp dir");
    let home = dir.path().join("devnet");
    let node = Node::devnet_with(&home, dir.path(), "250", &[]);
    let cheater = poi_core::Address::from_public_key(&devnet_key(&home, "cheater").verifying_key())
        .to_string();
    let started = Instant::now();
    let mut seen = (false, false, false);
    while started.elapsed() < WITHIN && seen != (true, true, true) {
        std::thread::sleep(Duration::from_secs(2));
        let (status, settled) = node.api.get("/jobs?status=settled&limit=100");
        assert_eq!(status, 200, "{settled}");
        let verified = |kind: &str| -> Vec<Value> {
            settled["jobs"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|j| j["poi"]["status"] == "verified" && j["poi"]["kind"] == kind)
                .cloned()
                .collect()
        };
        seen.0 = verified("training")
            .iter()
            .any(|j| j["poi"]["quality"]["score"].is_u64() && j["poi"]["model_id"].is_u64());
        seen.1 = !verified("inference").is_empty();
        let (_, slashes) = node.api.get("/slashes?limit=100");
        seen.2 = slashes["slashes"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|s| {
                s["account"] == cheater.as_str()
                    && s["role"] == "provider"
                    && matches!(
                        s["reason"].as_str(),
                        Some("faked_segment" | "withheld_checkpoint")
                    )
                    && s["evidence"]["verdict"].is_string()
            });
    }
    assert_eq!(
        seen,
        (true, true, true),
        "after {:?}: (measured training, verified inference, the cheater's slash)",
        started.elapsed()
    );
    // A verified training job shows its commitment and its checks; the registry its lineage.
    let (_, settled) = node.api.get("/jobs?status=settled&limit=100");
    let trained = settled["jobs"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|j| j["poi"]["kind"] == "training" && j["poi"]["model_id"].is_u64())
        .expect("a registered training job")
        .clone();
    let (status, job) = node.api.get(&format!("/jobs/{}", trained["id"]));
    assert_eq!(status, 200);
    assert!(job["poi"]["commitment"]["root"].is_string(), "{job}");
    assert!(
        !job["poi"]["check_list"]
            .as_array()
            .expect("checks")
            .is_empty()
    );
    let (status, model) = node
        .api
        .get(&format!("/models/{}", trained["poi"]["model_id"]));
    assert_eq!(status, 200, "{model}");
    assert_eq!(model["job"], trained["id"], "{model}");
    eprintln!("main job: all three within {:?}", started.elapsed());
    the_economics_add_up(&node, started);
}

fn amount(v: &Value) -> u128 {
    v.as_str()
        .and_then(|s| s.parse().ok())
        .expect("a decimal amount")
}

/// Every ended epoch paid out exactly its emission plus the fees verified jobs paid into the
/// pool, and verified work burned tokens by the usage schedule.
fn the_economics_add_up(node: &Node, started: Instant) {
    let mut epoch = 0;
    let mut with_fees = 0;
    let mut data_paid = false;
    while started.elapsed() < WITHIN && (with_fees == 0 || !data_paid) {
        let (status, r) = node.api.get(&format!("/rewards?epoch={epoch}"));
        if status == 404 {
            std::thread::sleep(Duration::from_secs(2));
            continue;
        }
        assert_eq!(status, 200, "{r}");
        let pool = amount(&r["pool"]);
        assert_eq!(
            pool,
            amount(&r["emission"]) + amount(&r["fees"]),
            "epoch {epoch}: {r}"
        );
        let paid: u128 = r["accounts"]
            .as_array()
            .expect("accounts")
            .iter()
            .map(|a| amount(&a[2]))
            .sum::<u128>()
            + amount(&r["treasury"]);
        assert_eq!(paid, pool, "epoch {epoch} pays its pool exactly: {r}");
        // Data owners are paid once a verified wine or iris job improved its model.
        data_paid |= r["accounts"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a[1] == "data");
        if amount(&r["fees"]) > 0 {
            with_fees += 1;
            assert!(
                r["accounts"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|a| a[1] == "providers"),
                "{r}"
            );
        }
        epoch += 1;
    }
    assert!(with_fees > 0, "no epoch with job fees by epoch {epoch}");
    assert!(data_paid, "no epoch paid a data owner by epoch {epoch}");
    let (status, burn) = node.api.get("/burn");
    assert_eq!(status, 200, "{burn}");
    let burned: u128 = burn["history"]
        .as_array()
        .expect("history")
        .iter()
        .map(|e| amount(&e["burned"]))
        .sum();
    assert!(burned > 0, "{burn}");
    let (_, supply) = node.api.get("/supply");
    let usage = ["usage_training", "usage_inference"]
        .iter()
        .filter_map(|r| supply["burned_by_reason"][r].as_str())
        .map(|s| s.parse::<u128>().unwrap())
        .sum::<u128>();
    assert!(usage >= burned, "{supply}");
    eprintln!(
        "main job: {epoch} epochs paid emission plus fees exactly; {burned} base units burned by usage"
    );
}
