//! `poi provider`, `poi job` and `poi market` against a devnet, end to end: a provider bonds and
//! registers, a user submits a training job that is matched to it, the provider starts and
//! commits it, the user accepts and the escrow settles exactly; a second job is cancelled for a
//! full refund; and the refusals are one typed error line each.

use serde_json::Value;

use crate::{Node, one_error_line, poi, stdout_of};

fn json_of(cmd: &mut assert_cmd::Command) -> Value {
    serde_json::from_str(&stdout_of(cmd)).expect("--json prints JSON")
}

fn amount(value: &Value) -> u128 {
    value
        .as_str()
        .expect("amount string")
        .parse()
        .expect("decimal amount")
}

#[test]
fn provider_job_and_market_commands_work_end_to_end() {
    let dir = tempfile::tempdir().expect("temp dir");
    let home = dir.path().join("home");
    let node = Node::devnet(&home, dir.path());
    let h = home.to_str().expect("utf-8 path");
    let bob = stdout_of(poi().args(["keys", "show", "bob", "--home", h, "--address"]));
    let bob = bob.trim_end().to_string();
    let alice = stdout_of(poi().args(["keys", "show", "alice", "--home", h, "--address"]));
    let alice = alice.trim_end().to_string();

    // Registering without bonded stake is refused with a typed error and changes nothing.
    let refused = poi()
        .args([
            "provider",
            "register",
            "--home",
            h,
            "--from",
            "bob",
            "--capacity",
            "1000",
            "--ask",
            "1",
            "--endpoint",
            "http://127.0.0.1:9/ckpt",
        ])
        .output()
        .expect("run poi provider register");
    assert!(one_error_line(&refused).contains("insufficient_stake"));
    assert_eq!(node.api.get(&format!("/providers/{bob}")).0, 404);

    stdout_of(poi().args([
        "stake", "bond", "--home", h, "--from", "bob", "--amount", "500poi",
    ]));
    let registered = stdout_of(poi().args([
        "provider",
        "register",
        "--home",
        h,
        "--from",
        "bob",
        "--capacity",
        "1000",
        "--ask",
        "1",
        "--endpoint",
        "http://127.0.0.1:9/ckpt",
        "--hardware",
        "test rig",
    ]));
    assert!(
        registered.contains("registered with 1000 units per block"),
        "{registered}"
    );
    let status = json_of(poi().args(["provider", "status", "bob", "--home", h, "--json"]));
    assert_eq!(status["hardware"], "test rig");
    assert_eq!(status["eligible"], true);
    // The default collateral is exactly what the capacity requires at registration.
    assert!(amount(&status["collateral"]) >= amount(&status["required_collateral"]));
    assert_eq!(status, {
        let mut api = node.api.get_ok(&format!("/providers/{bob}"));
        api["height"] = status["height"].clone();
        api
    });
    let beat = stdout_of(poi().args(["provider", "heartbeat", "--home", h, "--from", "bob"]));
    assert!(beat.contains("heartbeat"), "{beat}");

    let (balance_before, _) = node.api.account(&alice);
    let submitted = stdout_of(poi().args([
        "job",
        "submit",
        "training",
        "--home",
        h,
        "--from",
        "alice",
        "--model",
        "mlp",
        "--dataset",
        "winequality",
        "--steps",
        "50",
        "--max-price",
        "5000",
    ]));
    assert!(submitted.contains("job 0 submitted"), "{submitted}");
    let job = json_of(poi().args(["job", "status", "0", "--home", h, "--json"]));
    assert_eq!(job["status"], "matched", "{job}");
    assert_eq!(job["provider"], bob);
    let units = job["units"].as_u64().expect("units");
    assert!(units > 0);
    let escrow = amount(&job["escrow"]);
    assert_eq!(escrow, u128::from(units) * 5000);
    let price = amount(&job["charged_price"]);
    assert!((1..=5000).contains(&price), "charged {price}");

    // A stranger cannot start bob's job.
    let refused = poi()
        .args(["job", "start", "0", "--home", h, "--from", "carol"])
        .output()
        .expect("run poi job start");
    assert!(one_error_line(&refused).contains("not_assigned_provider"));

    stdout_of(poi().args(["job", "start", "0", "--home", h, "--from", "bob"]));
    let root = "ab".repeat(32);
    let delivered = units - 1;
    stdout_of(poi().args([
        "job",
        "commit",
        "0",
        "--home",
        h,
        "--from",
        "bob",
        "--result-root",
        &root,
        "--units-delivered",
        &delivered.to_string(),
    ]));
    let accepted = stdout_of(poi().args(["job", "accept", "0", "--home", h, "--from", "alice"]));
    assert!(accepted.contains("job 0 accepted"), "{accepted}");
    let job = json_of(poi().args(["job", "status", "0", "--home", h, "--json"]));
    assert_eq!(job["status"], "settled", "{job}");
    let paid = amount(&job["paid"]);
    assert_eq!(paid, u128::from(delivered) * price);
    assert_eq!(
        paid + amount(&job["refunded"]),
        escrow,
        "refund is exactly the unused escrow"
    );

    // A second job, cancelled: the whole escrow comes back.
    stdout_of(poi().args([
        "job",
        "submit",
        "inference",
        "--home",
        h,
        "--from",
        "alice",
        "--model",
        "charlm",
        "--input",
        "Quid est",
        "--units",
        "10",
    ]));
    let cancelled = stdout_of(poi().args(["job", "cancel", "1", "--home", h, "--from", "alice"]));
    assert!(cancelled.contains("job 1 cancelled"), "{cancelled}");
    let job = json_of(poi().args(["job", "status", "1", "--home", h, "--json"]));
    assert_eq!(job["status"], "cancelled");
    // Without --max-price the job offers twice the base price, all of it escrowed and refunded.
    let max_price = amount(&job["max_price"]);
    assert!(max_price >= 2, "{job}");
    assert_eq!(amount(&job["refunded"]), 10 * max_price);

    // Alice paid the provider, fees and nothing else.
    let fees: u128 = 5 * 20_000; // an upper bound on five small transactions' fees
    let (balance_after, _) = node.api.account(&alice);
    let spent = balance_before - balance_after;
    assert!(
        spent >= paid && spent <= paid + fees,
        "spent {spent}, paid {paid}"
    );

    let refused = poi()
        .args([
            "job",
            "submit",
            "training",
            "--home",
            h,
            "--from",
            "alice",
            "--model",
            "gpt9",
            "--dataset",
            "iris",
            "--units",
            "5",
            "--max-price",
            "1",
        ])
        .output()
        .expect("run poi job submit");
    assert!(!refused.status.success());
    let refused = poi()
        .args(["job", "status", "99", "--home", h])
        .output()
        .expect("run poi job status");
    assert!(one_error_line(&refused).contains("no job 99"));

    let listed = json_of(poi().args(["job", "list", "--status", "settled", "--home", h, "--json"]));
    assert_eq!(listed["jobs"][0]["id"], 0, "{listed}");
    let human = stdout_of(poi().args(["job", "list", "--home", h]));
    assert_eq!(human.lines().count(), 2, "{human}");
    let refused = poi()
        .args(["job", "list", "--status", "verified", "--home", h])
        .output()
        .expect("run poi job list");
    assert!(one_error_line(&refused).contains("bad_status"));

    let stats = json_of(poi().args(["market", "stats", "--home", h, "--json"]));
    for field in ["utilisation", "base_price", "queue_length", "queue"] {
        assert!(
            !stats[field].is_null(),
            "GET /market lacks {field}: {stats}"
        );
    }
    assert_eq!(stats["jobs"]["settled"], 1);
    assert_eq!(stats["jobs"]["cancelled"], 1);
    assert_eq!(stats["providers"]["registered"], 1);
    assert!(stats["queue"][0]["mean_wait_blocks"].is_u64());
    let human = stdout_of(poi().args(["market", "stats", "--home", h]));
    assert!(human.contains("base price:"), "{human}");
}
