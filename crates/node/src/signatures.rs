//! The signature pool: checks the signatures of a block's transactions ahead of its execution,
//! on threads that yield to the execution thread.
//!
//! Verifying signatures is the largest part of a block's cost and the only part that runs on
//! every core; executing and committing run on one thread in block order. The node therefore
//! checks block N+1's signatures while block N executes and commits. The pool's threads run
//! at a lower scheduling priority (a higher nice value) so that on a machine with few cores the
//! critical path — execution and commit — is never slowed by them: verification takes whatever
//! CPU time execution leaves.
//!
//! The verdicts are exactly [`Prechecks::verify`]'s, whichever thread computes them.

use poi_core::error::TxError;
use poi_core::tx::{Prechecks, Tx};
use rayon::prelude::*;
use std::sync::mpsc;

/// Nice value added to the pool's threads (Unix); 0 is normal priority, 19 the lowest.
pub const SIGNATURE_THREAD_NICE: i32 = 19;

/// A block's decoded transactions, their prechecks and the seconds the check took.
pub type CheckedBlock = (Vec<Tx>, Prechecks, f64);

/// A pool of low-priority threads for signature batches.
#[derive(Debug)]
pub struct SignaturePool {
    pool: rayon::ThreadPool,
}

impl SignaturePool {
    /// A pool with one thread per core.
    pub fn new() -> std::io::Result<Self> {
        let threads = std::thread::available_parallelism().map_or(1, usize::from);
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .thread_name(|i| format!("poi-sig-{i}"))
            .start_handler(|_| lower_this_threads_priority())
            .build()
            .map_err(std::io::Error::other)?;
        Ok(Self { pool })
    }

    /// Verifies the signatures of `txs` on the pool (blocking the caller until done).
    pub fn verify(&self, txs: &[Tx]) -> Prechecks {
        self.pool.install(|| Prechecks::verify(txs))
    }

    /// Computes the prechecks of `txs` in the background; the result arrives on the returned
    /// channel.
    pub fn precheck_in_background(&self, txs: Vec<Tx>) -> mpsc::Receiver<Prechecks> {
        let (done, result) = mpsc::sync_channel(1);
        self.pool.spawn(move || {
            // The receiver may be gone (the block was dropped); nothing to do then.
            let _ = done.send(Prechecks::verify(&txs));
        });
        result
    }

    /// [`SignaturePool::decode_and_verify`] as a pool task: the result, with the seconds the
    /// task took, arrives on the returned channel. Tasks of several blocks share the pool's
    /// threads, so one block's last batch does not hold the next block's first back.
    pub fn decode_and_verify_in_background(
        &self,
        encoded: Vec<Vec<u8>>,
    ) -> mpsc::Receiver<Result<CheckedBlock, TxError>> {
        let (done, result) = mpsc::sync_channel(1);
        self.pool.spawn(move || {
            let started = std::time::Instant::now();
            let checked = decode_and_verify_here(&encoded)
                .map(|(txs, verdicts)| (txs, verdicts, started.elapsed().as_secs_f64()));
            // The receiver may be gone (the run stopped); nothing to do then.
            let _ = done.send(checked);
        });
        result
    }

    /// Decodes a block's transactions and verifies their signatures on the pool.
    pub fn decode_and_verify(&self, encoded: &[Vec<u8>]) -> Result<(Vec<Tx>, Prechecks), TxError> {
        self.pool.install(|| decode_and_verify_here(encoded))
    }
}

/// Decodes and verifies on the current rayon pool.
fn decode_and_verify_here(encoded: &[Vec<u8>]) -> Result<(Vec<Tx>, Prechecks), TxError> {
    let txs: Vec<Tx> = encoded
        .par_iter()
        .map(|bytes| Tx::decode(bytes))
        .collect::<Result<_, _>>()?;
    let verdicts = Prechecks::verify(&txs);
    Ok((txs, verdicts))
}

#[cfg(target_os = "linux")]
fn lower_this_threads_priority() {
    // On Linux, PRIO_PROCESS with a thread id sets that thread's nice value alone. Failing to
    // lower it is harmless: the pool then competes at normal priority.
    // SAFETY: gettid has no preconditions; setpriority only reads its arguments.
    unsafe {
        let tid = libc::gettid();
        libc::setpriority(libc::PRIO_PROCESS, tid as libc::id_t, SIGNATURE_THREAD_NICE);
    }
}

#[cfg(not(target_os = "linux"))]
fn lower_this_threads_priority() {}

#[cfg(test)]
mod tests {
    use super::*;
    use ed25519_dalek::SigningKey;
    use poi_core::address::Address;
    use poi_core::bank::BankMsg;
    use poi_core::tx::{Msg, TxBody};

    #[test]
    fn pool_verdicts_equal_the_direct_ones() {
        let txs: Vec<Tx> = (0..40u8)
            .map(|i| {
                let key = SigningKey::from_bytes(&[i; 32]);
                let mut tx = TxBody {
                    chain_id: "poi-test".into(),
                    signer: Address::from_public_key(&key.verifying_key()),
                    nonce: 0,
                    fee: 10,
                    msg: Msg::Bank(BankMsg::Transfer {
                        to: Address([1; 32]),
                        amount: 1,
                    }),
                }
                .sign(&key);
                if i % 7 == 3 {
                    tx.signature[0] ^= 1;
                }
                tx
            })
            .collect();
        let pool = SignaturePool::new().unwrap();
        let verdicts = pool.verify(&txs);
        assert_eq!(verdicts, Prechecks::verify(&txs));
        let valid = verdicts.verdicts().iter().filter(|ok| **ok).count();
        assert_eq!(valid, 40 - 6);
    }
}
