//! A SIGKILLed writer leaves the store at its last durable commit.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};

use poi_store::{Store, verify_proof};

/// Commits to read from the child before killing it.
const COMMITS_BEFORE_KILL: usize = 12;
/// Kill-and-reopen rounds; later rounds resume a store that was killed before.
const ROUNDS: u32 = 3;

fn parse(line: &str) -> (u64, [u8; 32]) {
    let (height, root) = line.split_once(' ').expect("HEIGHT ROOT line");
    let root: [u8; 32] = hex::decode(root)
        .expect("hex root")
        .try_into()
        .expect("32 bytes");
    (height.parse().expect("height"), root)
}

/// Runs the crash test binary until it has printed some commits, then SIGKILLs it.
fn run_and_kill(path: &Path) -> Vec<(u64, [u8; 32])> {
    let mut child = Command::new(env!("CARGO_BIN_EXE_poi-store-crashtest"))
        .arg(path)
        .args(["100000", "300"])
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn crash test binary");
    let stdout = child.stdout.take().expect("piped stdout");
    let mut lines = BufReader::new(stdout).lines();
    let mut printed = Vec::new();
    while printed.len() < COMMITS_BEFORE_KILL {
        let line = lines
            .next()
            .expect("child printed a commit")
            .expect("read line");
        printed.push(parse(&line));
    }
    // `Child::kill` sends SIGKILL on unix: no destructor, no flush, no clean close.
    child.kill().expect("kill");
    child.wait().expect("wait");
    // Whatever the child printed before it died was committed durably first.
    for line in lines {
        printed.push(parse(&line.expect("read line")));
    }
    printed
}

#[test]
fn sigkill_keeps_the_last_printed_commit() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("state.redb");
    let mut resumed_from = None;
    for _ in 0..ROUNDS {
        let printed = run_and_kill(&path);
        let &(last_height, _) = printed.last().expect("at least one commit");
        if let Some(previous) = resumed_from {
            assert!(
                printed[0].0 > previous,
                "the run resumed after the reopened height"
            );
        }
        // `open` asserts that the stored tree root matches `meta.latest`.
        let store = Store::open(&path).expect("reopen after SIGKILL");
        let latest = store.latest().expect("committed");
        assert!(
            latest.height >= last_height,
            "{} < {last_height}",
            latest.height
        );
        for &(height, root) in &printed {
            assert_eq!(
                store.root_at(height).expect("root"),
                Some(root),
                "height {height}"
            );
        }
        let (value, proof) = store
            .get_with_proof(b"key/00001", latest.height)
            .expect("proof");
        verify_proof(latest.state_root, b"key/00001", value.as_deref(), &proof).expect("proof");
        resumed_from = Some(latest.height);
    }
}
