//! `poi bench ledger`: how many signed transfers per second this machine's ledger commits,
//! against the physical limit of verifying their ed25519 signatures.
//!
//! The ledger side runs what a validator does with a stream of blocks of transfers, in the
//! three stages the node runs them in: the signature pool ([`crate::signatures`]) decodes the
//! next blocks' transactions and verifies their signatures (deterministic batches,
//! low-priority threads on all cores, one pool task per block so consecutive blocks' batches
//! overlap, at most two blocks ahead); the execution thread executes block N over block N-1's
//! writes and computes its JMT state root over N-1's uncommitted tree ([`crate::head`]); the
//! commit thread ([`crate::commit_thread`]) writes block N-1 durably to redb meanwhile. Block
//! N's commit starts once N-1's has landed. Transactions are signed beforehand, as clients sign
//! them.
//!
//! The signature side verifies the same kind of signatures four ways (one core, all cores,
//! batches of 128 and of 1024 on all cores), from bytes as a node receives them; the fastest is
//! the limit.

use std::time::Instant;

use ed25519_dalek::{Signature, SigningKey, VerifyingKey};
use poi_core::address::Address;
use poi_core::bank::BankMsg;
use poi_core::block::BlockContext;
use poi_core::chain::{Chain, Mode};
use poi_core::genesis::{Genesis, GenesisAccount};
use poi_core::state::{Layered, StateReader, WriteSet};
use poi_core::tx::{Msg, TxBody};
use poi_store::{BlockCommit, Prepared, Store};
use rayon::prelude::*;

use crate::error::{NodeError, Result};
use crate::ledger::SnapshotState;
use crate::signatures::SignaturePool;

/// What to measure.
#[derive(Debug, Clone)]
pub struct LedgerBenchOptions {
    /// Blocks to commit (after one warm-up block).
    pub blocks: u32,
    /// Transfers per block.
    pub txs_per_block: u32,
    /// Funded accounts (senders and recipients are drawn from them).
    pub accounts: u32,
    /// Signatures for the raw verification measurements.
    pub signatures: u32,
}

impl Default for LedgerBenchOptions {
    fn default() -> Self {
        Self {
            blocks: 5,
            txs_per_block: 10_000,
            accounts: 20_000,
            signatures: 20_000,
        }
    }
}

/// Measured rates.
#[derive(Debug, Clone, serde::Serialize)]
pub struct LedgerBenchReport {
    /// Worker threads used by rayon.
    pub threads: usize,
    /// Transfers per block.
    pub txs_per_block: u32,
    /// Blocks measured.
    pub blocks: u32,
    /// Ledger throughput: transfers committed per second.
    pub ledger_tps: f64,
    /// Mean milliseconds per block, and its parts.
    pub block_ms: f64,
    /// CPU time (user + system, all threads) per block, ms: less sensitive than `block_ms` to
    /// other load on the machine.
    pub cpu_ms: f64,
    /// Signature stage: decoding and batch-verifying a block's transactions on all cores,
    /// ms per block (overlaps the execution and commit of the previous block).
    pub check_ms: f64,
    /// Time the execution stage waited for the signature stage, ms per block.
    pub wait_ms: f64,
    /// Execution (signatures already checked), ms per block.
    pub execute_ms: f64,
    /// JMT root computation, ms per block.
    pub root_ms: f64,
    /// Durable commit to redb on the commit thread, ms per block (overlaps the execution of
    /// the next block).
    pub commit_ms: f64,
    /// Time the execution stage waited for the previous block's commit to land, ms per block.
    pub commit_wait_ms: f64,
    /// `verify_strict` on one core, signatures per second.
    pub verify_single_core: f64,
    /// `verify_strict` on all cores.
    pub verify_all_cores: f64,
    /// Batch verification (chunks of 128, as blocks use) on all cores.
    pub verify_batch_all_cores: f64,
    /// Batch verification in chunks of 1024 on all cores.
    pub verify_large_batch_all_cores: f64,
    /// `ledger_tps / max(verification rates)`.
    pub ratio_to_limit: f64,
}

fn key(i: u32) -> SigningKey {
    let mut seed = [0u8; 32];
    seed[..4].copy_from_slice(&i.to_le_bytes());
    seed[4] = 0xbe;
    SigningKey::from_bytes(&seed)
}

fn rate(count: usize, started: Instant) -> f64 {
    count as f64 / started.elapsed().as_secs_f64()
}

/// Measures raw ed25519 verification of `n` signatures over transfer-sized messages, each
/// from its own key and starting from bytes (public key, signature, message) as a node receives
/// them, so key decompression is included as it is for the ledger.
fn verification_rates(n: u32) -> (f64, f64, f64, f64) {
    let items: Vec<([u8; 32], [u8; 64], Vec<u8>)> = (0..n)
        .into_par_iter()
        .map(|i| {
            let signer = key(u32::MAX / 2 + i);
            let message = [b"poi bench ".as_slice(), &i.to_le_bytes(), &[7u8; 150]].concat();
            let signature = ed25519_dalek::Signer::sign(&signer, &message).to_bytes();
            (signer.verifying_key().to_bytes(), signature, message)
        })
        .collect();
    let verify_one = |(key, signature, message): &([u8; 32], [u8; 64], Vec<u8>)| {
        VerifyingKey::from_bytes(key)
            .and_then(|k| k.verify_strict(message, &Signature::from_bytes(signature)))
            .is_ok()
    };
    let started = Instant::now();
    let ok = items.iter().all(verify_one);
    let single = rate(items.len(), started);
    let started = Instant::now();
    let ok_par = items.par_iter().all(verify_one);
    let parallel = rate(items.len(), started);
    let (batch, ok_batch) = batched_rate(&items, 128);
    let (large_batch, ok_large) = batched_rate(&items, 1024);
    assert!(
        ok && ok_par && ok_batch && ok_large,
        "benchmark signatures must verify"
    );
    (single, parallel, batch, large_batch)
}

/// Batch verification in chunks of `chunk` on all cores, from bytes.
fn batched_rate(items: &[([u8; 32], [u8; 64], Vec<u8>)], chunk: usize) -> (f64, bool) {
    let started = Instant::now();
    let ok = items.par_chunks(chunk).all(|chunk| {
        let keys: Option<Vec<VerifyingKey>> = chunk
            .iter()
            .map(|(k, _, _)| VerifyingKey::from_bytes(k).ok())
            .collect();
        let Some(keys) = keys else { return false };
        let messages: Vec<&[u8]> = chunk.iter().map(|(_, _, m)| m.as_slice()).collect();
        let signatures: Vec<Signature> = chunk
            .iter()
            .map(|(_, s, _)| Signature::from_bytes(s))
            .collect();
        ed25519_dalek::verify_batch(&messages, &signatures, &keys).is_ok()
    });
    (rate(items.len(), started), ok)
}

/// Runs the benchmark in a temporary directory under `dir`; `progress` is told each step.
pub fn run_ledger_bench(
    dir: &std::path::Path,
    options: &LedgerBenchOptions,
    mut progress: impl FnMut(&str),
) -> Result<LedgerBenchReport> {
    let accounts = options.accounts.max(2);
    progress(&format!("generating {accounts} accounts"));
    let keys: Vec<SigningKey> = (0..accounts).into_par_iter().map(key).collect();
    let validator = Address::from_public_key(&key(u32::MAX - 1).verifying_key());
    let genesis = Genesis {
        chain_id: "poi-bench".into(),
        genesis_time_ms: 0,
        validators: vec![validator],
        params: Default::default(),
        accounts: keys
            .iter()
            .map(|k| GenesisAccount {
                address: Address::from_public_key(&k.verifying_key()),
                balance: 1_000_000_000_000,
            })
            .collect(),
        beacon: None,
        models: Vec::new(),
        data: Vec::new(),
    };
    let store = Store::open(&dir.join("bench.redb"))?;
    let writes = genesis
        .state()
        .map_err(|e| NodeError::Genesis(e.to_string()))?;
    let prepared = store.prepare(0, &writes)?;
    store.commit(
        &prepared,
        BlockCommit {
            height: 0,
            hash: [0; 32],
            bytes: vec![],
            txs: vec![],
        },
    )?;
    let chain = Chain::new(genesis.chain_id.clone());
    let blocks = options.blocks + 1;
    let per_block = options.txs_per_block;
    progress(&format!(
        "signing {} transfers",
        u64::from(blocks) * u64::from(per_block)
    ));
    let fee = genesis.params.min_fee(200);
    let signed: Vec<Vec<Vec<u8>>> = (0..blocks)
        .map(|b| {
            (0..per_block)
                .into_par_iter()
                .map(|i| {
                    let sender = (b.wrapping_mul(per_block) + i) % accounts;
                    let recipient = (sender.wrapping_mul(7919) + 13) % accounts;
                    let k = &keys[sender as usize];
                    // Each account sends at most once per round through the accounts.
                    let nonce = u64::from((b * per_block + i) / accounts);
                    TxBody {
                        chain_id: genesis.chain_id.clone(),
                        signer: Address::from_public_key(&k.verifying_key()),
                        nonce,
                        fee,
                        msg: Msg::Bank(BankMsg::Transfer {
                            to: Address::from_public_key(&keys[recipient as usize].verifying_key()),
                            amount: 1 + u128::from(i % 1000),
                        }),
                    }
                    .sign(k)
                    .encode()
                })
                .collect()
        })
        .collect();
    // Signatures of later blocks are checked on the pool while block N executes and commits,
    // as a node checks each proposal when it arrives (`Ledger::receive_block`). Each block's
    // check is its own pool task, so the next block's batches start as soon as a thread is
    // free instead of waiting for the slowest batch of this one. The channel holds one
    // pending block, so checks run at most two blocks ahead.
    let (verified_tx, verified_rx) = std::sync::mpsc::sync_channel(1);
    let pool =
        SignaturePool::new().map_err(|e| NodeError::io("start the signature pool", dir, e))?;
    let checker = std::thread::spawn(move || {
        for block in signed {
            if verified_tx
                .send(pool.decode_and_verify_in_background(block))
                .is_err()
            {
                break;
            }
        }
    });
    let store = std::sync::Arc::new(store);
    let (mut wait_s, mut execute_s, mut root_s, mut commit_wait_s) = (0.0, 0.0, 0.0, 0.0);
    let (mut commit_s, mut check_s) = (0.0, 0.0);
    let mut in_flight: Option<InFlight> = None;
    let committer = crate::commit_thread::CommitThread::start()
        .map_err(|e| NodeError::io("start the commit thread", dir, e))?;
    let mut measured = Instant::now();
    let mut cpu_start = process_cpu_s();
    for b in 0..blocks as usize {
        if b == 1 {
            (wait_s, execute_s, root_s, commit_wait_s) = (0.0, 0.0, 0.0, 0.0);
            measured = Instant::now();
            cpu_start = process_cpu_s();
        }
        let height = b as u64 + 1;
        let t = Instant::now();
        let Ok(checked) = verified_rx.recv() else {
            break;
        };
        let (txs, verdicts, check_seconds) = checked
            .recv()
            .map_err(|_| NodeError::InvalidBlock("signature stage panicked".into()))?
            .map_err(|e| NodeError::InvalidBlock(e.to_string()))?;
        if b > 0 {
            check_s += check_seconds;
        }
        wait_s += t.elapsed().as_secs_f64();
        let t = Instant::now();
        let ctx = BlockContext {
            height,
            timestamp_ms: height,
            proposer: validator,
            view: height,
            seeds: Vec::new(),
        };
        let snapshot = SnapshotState(store.snapshot()?);
        let parent = in_flight.as_ref().map(|f| std::sync::Arc::clone(&f.block));
        let layered;
        let state: &dyn StateReader = match &parent {
            Some(parent) => {
                layered = Layered::new(&snapshot, &parent.0);
                &layered
            }
            None => &snapshot,
        };
        let mut outcome = chain.execute_verified_block(state, &ctx, txs, verdicts, Mode::Verify)?;
        execute_s += t.elapsed().as_secs_f64();
        let t = Instant::now();
        let prepared = match &parent {
            Some(parent) => store.prepare_after(&parent.1, height, &outcome.writes)?,
            None => store.prepare(height, &outcome.writes)?,
        };
        root_s += t.elapsed().as_secs_f64();
        let t = Instant::now();
        if let Some(previous) = in_flight.take() {
            let seconds = previous.land()?;
            if b > 1 {
                commit_s += seconds;
            }
        }
        commit_wait_s += t.elapsed().as_secs_f64();
        progress(&format!(
            "block {height}: {} transfers executed",
            outcome.txs.len()
        ));
        let block = std::sync::Arc::new((std::mem::take(&mut outcome.writes), prepared));
        let writing = std::sync::Arc::clone(&block);
        let store = std::sync::Arc::clone(&store);
        let landed = committer.run(move || -> Result<f64> {
            let t = Instant::now();
            let receipts = crate::ledger::encode_receipts(&outcome.receipts);
            let hash = *blake3::hash(&height.to_le_bytes()).as_bytes();
            store.commit(
                &writing.1,
                BlockCommit {
                    height,
                    hash,
                    bytes: vec![],
                    txs: receipts,
                },
            )?;
            // The block's transactions, events and receipts are freed here, off the
            // execution thread, as the node's commit thread does.
            drop(outcome);
            Ok(t.elapsed().as_secs_f64())
        });
        in_flight = Some(InFlight { block, landed });
    }
    if let Some(last) = in_flight.take() {
        let t = Instant::now();
        commit_s += last.land()?;
        commit_wait_s += t.elapsed().as_secs_f64();
    }
    let cpu_s = process_cpu_s() - cpu_start;
    checker
        .join()
        .map_err(|_| NodeError::InvalidBlock("signature stage panicked".into()))?;
    let total_s = measured.elapsed().as_secs_f64();
    let n = f64::from(options.blocks.max(1));
    progress(&format!("verifying {} raw signatures", options.signatures));
    let (single, parallel, batch, large_batch) = verification_rates(options.signatures);
    let ledger_tps = f64::from(per_block) * f64::from(options.blocks) / total_s;
    let limit = single.max(parallel).max(batch).max(large_batch);
    Ok(LedgerBenchReport {
        threads: rayon::current_num_threads(),
        txs_per_block: per_block,
        blocks: options.blocks,
        ledger_tps,
        block_ms: total_s * 1000.0 / n,
        cpu_ms: cpu_s * 1000.0 / n,
        check_ms: check_s * 1000.0 / n,
        wait_ms: wait_s * 1000.0 / n,
        execute_ms: execute_s * 1000.0 / n,
        root_ms: root_s * 1000.0 / n,
        commit_ms: commit_s * 1000.0 / n,
        commit_wait_ms: commit_wait_s * 1000.0 / n,
        verify_single_core: single,
        verify_all_cores: parallel,
        verify_batch_all_cores: batch,
        verify_large_batch_all_cores: large_batch,
        ratio_to_limit: ledger_tps / limit,
    })
}

/// A block whose commit runs on its own thread: its writes and prepared tree, which the next
/// block executes and prepares over, and the thread, which returns its commit time.
struct InFlight {
    block: std::sync::Arc<(WriteSet, Prepared)>,
    landed: crate::commit_thread::Landing<Result<f64>>,
}

impl InFlight {
    /// Waits for the commit to be durable; its duration in seconds.
    fn land(self) -> Result<f64> {
        self.landed
            .wait()
            .map_err(|_| NodeError::InvalidBlock("commit thread panicked".into()))?
    }
}

/// User plus system CPU seconds used by this process so far (all threads); 0 if unavailable.
fn process_cpu_s() -> f64 {
    let mut usage = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    // SAFETY: getrusage writes a `rusage` into the pointer it is given, which is valid.
    let usage = unsafe {
        if libc::getrusage(libc::RUSAGE_SELF, usage.as_mut_ptr()) != 0 {
            return 0.0;
        }
        usage.assume_init()
    };
    let seconds = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    seconds(usage.ru_utime) + seconds(usage.ru_stime)
}
