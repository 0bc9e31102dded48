//! The acceptance flow: a devnet, its keys, the API and a transfer through the CLI.

use std::time::Duration;

use crate::{DEVNET_BALANCE, Node, one_error_line, poi, stdout_of};

#[test]
fn devnet_keys_api_and_transfers_through_the_cli() {
    let dir = tempfile::tempdir().expect("temp dir");
    let home = dir.path().join("home");
    let node = Node::devnet(&home, dir.path());
    let home_arg = home.to_str().expect("utf-8 path");

    for file in [
        "config.toml",
        "genesis.toml",
        "node_key.json",
        "node_share.json",
        "beacon_polynomial.json",
    ] {
        assert!(home.join(file).is_file(), "{file} missing");
    }
    let list = stdout_of(poi().args(["keys", "list", "--home", home_arg]));
    assert_eq!(list, "alice\nbob\ncarol\ndave\n");

    let bob = stdout_of(poi().args(["keys", "show", "bob", "--home", home_arg, "--address"]));
    let bob = bob.strip_suffix('\n').expect("newline-terminated");
    assert!(!bob.contains(char::is_whitespace), "{bob:?}");
    let bob_address: poi_core::Address = bob.parse().expect("a poi address");
    assert_eq!(
        bob_address,
        poi_core::Address::from_public_key(&crate::devnet_key(&home, "bob").verifying_key())
    );

    let health = node.api.get("/health");
    assert_eq!(health.0, 200, "{}", health.1);
    assert_eq!(health.1["status"], "ok");

    let latest = node.api.get_ok("/blocks/latest");
    for field in ["hash", "state_root"] {
        let text = latest[field]
            .as_str()
            .unwrap_or_else(|| panic!("{field}: {latest}"));
        assert_eq!(text.len(), 64, "{field}: {text}");
        assert!(hex::decode(text).is_ok(), "{field}: {text}");
    }
    let height = latest["height"].as_u64().expect("height");
    let committed = node.api.get_ok(&format!("/blocks/{height}"));
    assert_eq!(committed, latest);

    let supply = node.api.get_ok("/supply");
    for field in ["genesis", "minted", "burned", "circulating"] {
        assert!(supply[field].is_string(), "{field}: {supply}");
    }
    assert_eq!(supply["genesis"], (4 * DEVNET_BALANCE).to_string());

    let sent = poi()
        .args([
            "tx", "send", "--home", home_arg, "--from", "alice", "--to", bob,
        ])
        .args(["--amount", "1000"])
        .output()
        .expect("run poi tx send");
    assert!(
        sent.status.success(),
        "tx send failed: {}\n{}",
        String::from_utf8_lossy(&sent.stderr),
        node.log()
    );
    let sent_out = String::from_utf8_lossy(&sent.stdout);
    assert!(sent_out.starts_with("committed "), "{sent_out}");

    let account = stdout_of(poi().args(["query", "account", bob, "--home", home_arg, "--json"]));
    let account: serde_json::Value = serde_json::from_str(&account).expect("--json is JSON");
    assert_eq!(account["balance"], (DEVNET_BALANCE + 1000).to_string());
    assert_eq!(account["address"], bob);

    // More than alice has: refused with one error line, and nothing changes.
    let alice = stdout_of(poi().args(["keys", "show", "alice", "--home", home_arg, "--address"]));
    let alice = alice.trim_end();
    let before = node.api.account(alice);
    let bob_before = node.api.account(bob);
    let refused = poi()
        .args([
            "tx", "send", "--home", home_arg, "--from", "alice", "--to", bob,
        ])
        .args(["--amount", &(DEVNET_BALANCE * 2).to_string()])
        .output()
        .expect("run poi tx send");
    let line = one_error_line(&refused);
    assert!(line.contains("insufficient_funds"), "{line}");
    assert!(refused.stdout.is_empty(), "{:?}", refused.stdout);
    let now = node.api.get_ok("/blocks/latest")["height"]
        .as_u64()
        .expect("height");
    node.wait_height(now + 3);
    assert_eq!(node.api.account(alice), before);
    assert_eq!(node.api.account(bob), bob_before);
}

#[test]
fn ctrl_c_stops_the_devnet_cleanly_and_node_start_resumes_it() {
    let dir = tempfile::tempdir().expect("temp dir");
    let home = dir.path().join("home");
    let mut node = Node::devnet(&home, dir.path());
    let home_arg = home.to_str().expect("utf-8 path");
    let bob = stdout_of(poi().args(["keys", "show", "bob", "--home", home_arg, "--address"]));
    let bob = bob.trim_end().to_string();
    stdout_of(
        poi()
            .args([
                "tx", "send", "--home", home_arg, "--from", "alice", "--to", &bob,
            ])
            .args(["--amount", "1.5poi"]),
    );
    let seen = node.api.get_ok("/blocks/latest");
    let seen_height = seen["height"].as_u64().expect("height");

    let status = node.signal_and_wait(libc::SIGINT, Duration::from_secs(20));
    assert!(status.success(), "Ctrl-C exit {status}:\n{}", node.log());

    let node = Node::start(&home, dir.path());
    assert_eq!(node.api.get_ok(&format!("/blocks/{seen_height}")), seen);
    assert_eq!(
        node.api.account(&bob).0,
        DEVNET_BALANCE + 1_500_000_000,
        "the transfer survived the restart"
    );
    node.wait_height(seen_height + 2);
}
