//! `poi work`: train with --json on a tiny job, replay it, and catch a tampered checkpoint.

use serde_json::Value;

use crate::{one_error_line, poi, stdout_of};

/// `poi work train` of a tiny MLP into `dir`; returns the printed JSON.
fn train(dir: &std::path::Path, threads: &str) -> Value {
    let out = stdout_of(
        poi()
            .env("POI_THREADS", threads)
            .args(["work", "train", "--model", "mlp", "--dataset", "iris"])
            .args(["--steps", "12", "--seed", "1", "--hidden", "8"])
            .args(["--checkpoint-every", "4", "--json", "--out"])
            .arg(dir),
    );
    serde_json::from_str(&out).expect("one JSON object on stdout")
}

#[test]
fn train_json_replay_and_tamper() {
    let dir = tempfile::tempdir().expect("tempdir");
    let first = train(dir.path(), "1");
    for key in ["root", "final_digest", "eval_accuracy", "flops", "seconds"] {
        assert!(!first[key].is_null(), "{key} missing from {first}");
    }
    assert_eq!(first["root"].as_str().map(str::len), Some(64));
    let other = tempfile::tempdir().expect("tempdir");
    assert_eq!(train(other.path(), "2")["root"], first["root"]);

    let replay = |from: &str, steps: &str| {
        poi()
            .args([
                "work", "replay", "--from", from, "--steps", steps, "--json", "--out",
            ])
            .arg(dir.path())
            .output()
            .expect("run poi")
    };
    let ok = replay("4", "8");
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    let report: Value = serde_json::from_slice(&ok.stdout).expect("JSON report");
    assert_eq!(report["ok"], true);
    assert_eq!(report["checked"], 8);

    let path = dir.path().join("checkpoints/step-000004.safetensors");
    let mut bytes = std::fs::read(&path).expect("checkpoint");
    let last = bytes.len() - 1;
    bytes[last] ^= 0x20;
    std::fs::write(&path, bytes).expect("tamper");
    let line = one_error_line(&replay("4", "8"));
    assert!(line.contains("digest mismatch"), "{line}");
}

#[test]
fn work_errors_are_one_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    let output = poi()
        .args(["work", "replay", "--from", "0", "--steps", "1", "--out"])
        .arg(dir.path())
        .output()
        .expect("run poi");
    one_error_line(&output);
    let output = poi()
        .env("POI_THREADS", "zero")
        .args(["work", "eval", "--out"])
        .arg(dir.path())
        .output()
        .expect("run poi");
    assert!(one_error_line(&output).contains("POI_THREADS"));
}
