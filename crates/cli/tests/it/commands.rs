//! The CLI without a running node: help, usage errors, unreachable nodes, early validation.

use std::net::TcpListener;

use crate::{free_port, one_error_line, poi, stdout_of};

/// Subcommand names listed under `Commands:` in a help text (without `help`).
fn subcommands(help: &str) -> Vec<String> {
    help.lines()
        .skip_while(|line| line.trim() != "Commands:")
        .skip(1)
        .take_while(|line| !line.trim().is_empty())
        .filter_map(|line| line.split_whitespace().next())
        .filter(|name| *name != "help")
        .map(str::to_string)
        .collect()
}

#[test]
fn help_of_every_subcommand_exits_0() {
    let top = stdout_of(poi().arg("--help"));
    let mut pending: Vec<Vec<String>> = subcommands(&top).into_iter().map(|c| vec![c]).collect();
    let expected = ["keys", "tx", "query", "node", "devnet"];
    for name in expected {
        assert!(
            pending.iter().any(|p| p[0] == name),
            "{name} missing from:\n{top}"
        );
    }
    let mut checked = Vec::new();
    // The command tree is at most three levels deep; bound the walk anyway.
    while let Some(path) = pending.pop() {
        assert!(checked.len() < 100, "help walk does not end: {checked:?}");
        let help = stdout_of(poi().args(&path).arg("--help"));
        let usage = format!("Usage: poi {}", path.join(" "));
        assert!(help.contains(&usage), "{usage:?} not in:\n{help}");
        for sub in subcommands(&help) {
            let mut child = path.clone();
            child.push(sub);
            pending.push(child);
        }
        checked.push(path.join(" "));
    }
    for leaf in [
        "keys new",
        "keys list",
        "keys show",
        "keys import",
        "keys export",
        "tx send",
        "query account",
        "query block",
        "query tx",
        "query supply",
        "query rewards",
        "query burn",
        "query params",
        "node init",
        "node start",
        "devnet",
        "localnet",
        "bench network",
        "bench reshare",
        "validator run",
        "validator register",
        "validator leave",
        "validator unjail",
    ] {
        assert!(
            checked.iter().any(|c| c == leaf),
            "{leaf} not reached: {checked:?}"
        );
    }
}

#[test]
fn localnet_refuses_a_home_of_another_size_in_one_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    // A one-validator home where node0 would be: not a localnet of 3.
    let node0 = dir.path().join("node0");
    stdout_of(poi().args(["node", "init", "--home"]).arg(&node0));
    let output = poi()
        .args(["localnet", "--validators", "3", "--home"])
        .arg(dir.path())
        .output()
        .expect("run poi");
    let line = crate::one_error_line(&output);
    assert!(line.contains("holds a localnet of 1 validators"), "{line}");
    let usage = poi()
        .args(["localnet", "--validators", "1"])
        .output()
        .expect("run poi");
    assert_eq!(usage.status.code(), Some(2), "one validator is the devnet");
}

#[test]
fn devnet_with_zero_accounts_is_a_usage_error() {
    let output = poi()
        .args(["devnet", "--accounts", "0"])
        .output()
        .expect("run poi");
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("--accounts"), "{stderr}");
    assert!(output.stdout.is_empty());
}

#[test]
fn node_start_on_an_uninitialised_home_fails_with_a_hint() {
    let dir = tempfile::tempdir().expect("temp dir");
    let home = dir.path().join("empty");
    std::fs::create_dir(&home).expect("mkdir");
    let output = poi()
        .args(["node", "start", "--home", home.to_str().expect("utf-8")])
        .output()
        .expect("run poi");
    let line = one_error_line(&output);
    assert!(line.contains("is not a poi home"), "{line}");
    assert!(line.contains("poi node init --home"), "{line}");
    assert_eq!(
        std::fs::read_dir(&home).expect("read dir").count(),
        0,
        "created files"
    );
}

/// A home whose config points at a loopback port nobody listens on, with one plaintext key.
fn home_without_node() -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().expect("temp dir");
    let home = dir.path().join("home");
    let home_arg = home.to_str().expect("utf-8").to_string();
    let api = format!("127.0.0.1:{}", free_port());
    let p2p = format!("127.0.0.1:{}", free_port());
    stdout_of(
        poi()
            .args(["node", "init", "--home", &home_arg, "--api-addr", &api])
            .args(["--p2p-addr", &p2p]),
    );
    stdout_of(poi().args([
        "keys",
        "new",
        "me",
        "--insecure-plaintext",
        "--home",
        &home_arg,
    ]));
    (dir, home_arg)
}

#[test]
fn queries_against_a_stopped_node_fail_with_one_clear_line() {
    let (_dir, home) = home_without_node();
    let address = stdout_of(poi().args(["keys", "show", "me", "--address", "--home", &home]));
    let address = address.trim_end();
    let hash = "ab".repeat(32);
    let commands: [&[&str]; 9] = [
        &["query", "account", address],
        &["query", "account", "me", "--prove"],
        &["query", "block"],
        &["query", "tx", &hash],
        &["query", "supply"],
        &["query", "rewards"],
        &["query", "burn"],
        &["query", "params"],
        &[
            "tx", "send", "--from", "me", "--to", address, "--amount", "1",
        ],
    ];
    for args in commands {
        let output = poi()
            .args(args)
            .args(["--home", &home])
            .output()
            .expect("run poi");
        let line = one_error_line(&output);
        assert!(
            line.contains("cannot reach the node at http://127.0.0.1:"),
            "{args:?}: {line}"
        );
        assert!(line.contains("Is it running?"), "{args:?}: {line}");
    }
}

#[test]
fn tx_send_with_a_malformed_recipient_or_amount_fails_before_contacting_the_node() {
    let (_dir, home) = home_without_node();
    // A listener the CLI would connect to if it tried.
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.set_nonblocking(true).expect("nonblocking");
    let node_url = format!("http://{}", listener.local_addr().expect("addr"));
    let me = stdout_of(poi().args(["keys", "show", "me", "--address", "--home", &home]));
    let me = me.trim_end();
    let mut typo: Vec<char> = me.chars().collect();
    typo[12] = if typo[12] == 'q' { 'p' } else { 'q' };
    let typo: String = typo.into_iter().collect();
    let cases: [(&str, &str, &str); 4] = [
        ("poi1xyz", "5", "invalid address"),
        (typo.as_str(), "5", "invalid address"),
        ("nobody-by-that-name", "5", "invalid address"),
        (me, "1.2.3", "invalid amount"),
    ];
    for (to, amount, expected) in cases {
        let output = poi()
            .args([
                "tx", "send", "--home", &home, "--node", &node_url, "--from", "me",
            ])
            .args(["--to", to, "--amount", amount])
            .output()
            .expect("run poi");
        let line = one_error_line(&output);
        assert!(
            line.contains(expected),
            "--to {to} --amount {amount}: {line}"
        );
        match listener.accept() {
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            other => panic!("the CLI contacted the node for --to {to}: {other:?}"),
        }
    }
}

#[test]
fn node_init_refuses_an_initialised_home() {
    let (_dir, home) = home_without_node();
    let config = std::fs::read_to_string(format!("{home}/config.toml")).expect("config");
    let output = poi()
        .args(["node", "init", "--home", &home])
        .output()
        .expect("run poi");
    let line = one_error_line(&output);
    assert!(line.contains("already initialised"), "{line}");
    assert_eq!(
        std::fs::read_to_string(format!("{home}/config.toml")).expect("config"),
        config,
        "config.toml was overwritten"
    );
}

#[test]
fn a_closed_stdout_does_not_panic() {
    let dir = tempfile::tempdir().expect("temp dir");
    let home = dir.path().to_str().expect("utf-8");
    for name in ["a", "b", "c"] {
        stdout_of(poi().args(["keys", "new", name, "--insecure-plaintext", "--home", home]));
    }
    let mut child = std::process::Command::new(crate::POI)
        .args(["keys", "list", "--home", home])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn poi");
    // Close the reading end before the child writes, like `| head -0`.
    drop(child.stdout.take());
    let output = child.wait_with_output().expect("wait");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_ne!(output.status.code(), Some(101), "{stderr}");
}
