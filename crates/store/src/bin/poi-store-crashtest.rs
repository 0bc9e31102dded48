//! Commit blocks in a loop, printing `HEIGHT ROOT_HEX` after each durable commit.
//!
//! The crash test SIGKILLs this process mid-run and checks that the store reopens at a height
//! at least as high as the last printed one, with the printed root. Writes are a deterministic
//! function of the height, so any run can be replayed.
//!
//! Usage: `poi-store-crashtest PATH [BLOCKS_MAX] [WRITES_PER_BLOCK]`

use std::collections::BTreeMap;
use std::error::Error;
use std::ffi::OsString;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use poi_store::{BlockCommit, Store, StoreOptions};
use sha2::{Digest, Sha256};

/// Blocks committed when no count is given; bounds the run if nobody kills it.
const BLOCKS_MAX_DEFAULT: u64 = 100_000;
/// Key writes per block when no count is given.
const WRITES_PER_BLOCK_DEFAULT: u32 = 200;
/// Most key writes per block accepted on the command line.
const WRITES_PER_BLOCK_MAX: u32 = 100_000;
/// Distinct keys the writes touch, so blocks overwrite and delete each other's keys.
const KEYS_MAX: u64 = 4_096;
/// Heights kept provable; small so that pruning runs in every commit.
const HISTORY_HEIGHTS: u64 = 4;

const USAGE: &str = "usage: poi-store-crashtest PATH [BLOCKS_MAX] [WRITES_PER_BLOCK]";

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("poi-store-crashtest: error: {err}");
            ExitCode::from(2)
        }
    }
}

fn run() -> Result<(), Box<dyn Error>> {
    let mut args = std::env::args_os().skip(1);
    let path = PathBuf::from(args.next().ok_or(USAGE)?);
    let blocks_max = parse(args.next(), BLOCKS_MAX_DEFAULT)?;
    let writes_per_block = parse(args.next(), u64::from(WRITES_PER_BLOCK_DEFAULT))?;
    if writes_per_block > u64::from(WRITES_PER_BLOCK_MAX) {
        return Err(format!("WRITES_PER_BLOCK is over {WRITES_PER_BLOCK_MAX}").into());
    }
    let options = StoreOptions {
        history_heights: HISTORY_HEIGHTS,
        prune_interval_heights: 1,
        ..StoreOptions::default()
    };
    let store = Store::open_with(&path, options)?;
    let start = store.latest().map_or(0, |latest| latest.height + 1);
    let mut out = std::io::stdout().lock();
    for height in start..start.saturating_add(blocks_max) {
        let writes = block_writes(height, writes_per_block);
        let prepared = store.prepare(height, &writes)?;
        let block = BlockCommit {
            height,
            hash: Sha256::digest(height.to_be_bytes()).into(),
            bytes: height.to_be_bytes().to_vec(),
            txs: vec![(Sha256::digest(height.to_le_bytes()).into(), b"ok".to_vec())],
        };
        let committed = store.commit(&prepared, block)?;
        writeln!(
            out,
            "{} {}",
            committed.height,
            hex::encode(committed.state_root)
        )?;
        out.flush()?;
    }
    Ok(())
}

fn parse(arg: Option<OsString>, default: u64) -> Result<u64, Box<dyn Error>> {
    match arg {
        None => Ok(default),
        Some(arg) => {
            let text = arg.to_str().ok_or(USAGE)?;
            Ok(text
                .parse()
                .map_err(|err| format!("bad number {text:?}: {err}"))?)
        }
    }
}

/// Writes of block `height`: keys drawn from `KEYS_MAX`, one in eight deleted.
fn block_writes(height: u64, count: u64) -> BTreeMap<Vec<u8>, Option<Vec<u8>>> {
    let mut writes = BTreeMap::new();
    for index in 0..count {
        let seed: [u8; 32] =
            Sha256::digest([height.to_be_bytes(), index.to_be_bytes()].concat()).into();
        let draw = u64::from_be_bytes([
            seed[0], seed[1], seed[2], seed[3], seed[4], seed[5], seed[6], seed[7],
        ]);
        let key = format!("key/{:05}", draw % KEYS_MAX).into_bytes();
        let value = (!seed[8].is_multiple_of(8)).then(|| seed[9..].to_vec());
        writes.insert(key, value);
    }
    writes
}
