//! Seeded data order: which examples make up minibatch `s` of a training run.
//!
//! Owns: [`derive_seed`], [`epoch_order`], [`EpochSampler`]. Invariant: the indices of the
//! batch at step `s` are a pure function of `(seed, n, batch, s)`; caching the current
//! epoch's permutation is an optimisation that never changes them.
//!
//! Each use of the training seed gets its own generator key, `derive_seed(seed, domain)`, so
//! data order never shares Philox streams with dropout or initialisation that use the raw
//! seed with small stream ids.
//!
//! Epoch `e` visits the examples in the order `epoch_order(seed, e, n)`: the identity
//! permutation shuffled by Fisher-Yates ([`CounterRng::shuffle`]) with stream `e` of key
//! `derive_seed(seed, EPOCH_ORDER_DOMAIN)`. With batch size `B`, an epoch has
//! `floor(n / B)` steps (the last `n mod B` examples of each epoch's order are skipped, so
//! every batch has the same shape); step `s` is batch `s mod steps` of epoch `s div steps`.

use crate::rng::CounterRng;

use super::error::{DataError, Result};

/// Domain of the key that shuffles epochs.
pub const EPOCH_ORDER_DOMAIN: &str = "poi/data/epoch-order/v1";

/// A generator key for one purpose: the first 8 bytes (little endian) of
/// `blake3(len u64 | domain | seed u64)`, all little endian.
pub fn derive_seed(seed: u64, domain: &str) -> u64 {
    let mut hasher = blake3::Hasher::new();
    hasher.update(&(domain.len() as u64).to_le_bytes());
    hasher.update(domain.as_bytes());
    hasher.update(&seed.to_le_bytes());
    let hash = hasher.finalize();
    u64::from_le_bytes(hash.as_bytes()[..8].try_into().expect("8 bytes"))
}

/// The order in which epoch `epoch` visits examples `0..n`.
pub fn epoch_order(seed: u64, epoch: u64, n: u32) -> Vec<u32> {
    let mut order: Vec<u32> = (0..n).collect();
    CounterRng::new(derive_seed(seed, EPOCH_ORDER_DOMAIN), epoch).shuffle(&mut order);
    order
}

/// Hands out the example indices of each step's minibatch, keeping the current epoch's
/// permutation so consecutive steps cost O(batch).
#[derive(Debug, Clone)]
pub struct EpochSampler {
    seed: u64,
    n: u32,
    batch: u32,
    /// The epoch `order` belongs to, if one has been computed.
    epoch: Option<u64>,
    order: Vec<u32>,
}

impl EpochSampler {
    /// Batches of `batch` examples out of `n`; needs `1 <= batch <= n`.
    pub fn new(seed: u64, n: u32, batch: u32) -> Result<Self> {
        if batch == 0 || batch > n {
            let reason = format!("batch of {batch} from {n} examples needs 1 <= batch <= n");
            return Err(DataError::InvalidArgument {
                what: "batch size",
                reason,
            });
        }
        Ok(Self {
            seed,
            n,
            batch,
            epoch: None,
            order: Vec::new(),
        })
    }

    /// Steps per epoch: `floor(n / batch)`.
    pub fn steps_per_epoch(&self) -> u64 {
        u64::from(self.n / self.batch)
    }

    /// The epoch step `step` falls in.
    pub fn epoch_of(&self, step: u64) -> u64 {
        step / self.steps_per_epoch()
    }

    /// Writes the example indices of step `step`'s minibatch into `out` (length `batch`).
    pub fn batch_indices(&mut self, step: u64, out: &mut [u32]) -> Result<()> {
        if out.len() != self.batch as usize {
            return Err(DataError::BufferSize {
                what: "batch indices",
                expected: self.batch.into(),
                actual: out.len() as u64,
            });
        }
        let epoch = self.epoch_of(step);
        if self.epoch != Some(epoch) {
            self.order = epoch_order(self.seed, epoch, self.n);
            self.epoch = Some(epoch);
        }
        let start = (step % self.steps_per_epoch()) as usize * self.batch as usize;
        out.copy_from_slice(&self.order[start..start + self.batch as usize]);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn epoch_order_is_a_seeded_permutation() {
        let a = epoch_order(7, 0, 100);
        assert_eq!(a, epoch_order(7, 0, 100));
        assert_ne!(a, epoch_order(7, 1, 100));
        assert_ne!(a, epoch_order(8, 0, 100));
        let mut sorted = a.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, (0..100).collect::<Vec<_>>());
    }

    #[test]
    fn batches_do_not_depend_on_the_cache() {
        let mut forward = EpochSampler::new(3, 10, 3).unwrap();
        let mut seen = Vec::new();
        let mut out = [0u32; 3];
        for step in 0..9 {
            forward.batch_indices(step, &mut out).unwrap();
            seen.push(out);
        }
        let mut backward = EpochSampler::new(3, 10, 3).unwrap();
        for step in (0..9).rev() {
            backward.batch_indices(step, &mut out).unwrap();
            assert_eq!(out, seen[step as usize]);
        }
        // One epoch's three batches are disjoint.
        let mut epoch0: Vec<u32> = seen[..3].iter().flatten().copied().collect();
        epoch0.sort_unstable();
        epoch0.dedup();
        assert_eq!(epoch0.len(), 9);
        assert!(EpochSampler::new(3, 2, 3).is_err());
    }
}
