//! The mempool: admitted transactions waiting for a block.
//!
//! Owns pending transactions per sender, ordered by nonce. Priority is fee per byte, then arrival
//! order. A sender's transactions are only selectable in nonce order starting at the account's
//! committed nonce: a transaction behind a nonce gap is held back until the gap closes.
//!
//! Invariants: `len() <= MEMPOOL_TXS_MAX`; per sender `<= MEMPOOL_TXS_PER_SENDER_MAX`; every
//! entry in `by_hash` points at an entry in `by_sender` and back.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap};

use poi_core::limits::{MEMPOOL_TXS_MAX, MEMPOOL_TXS_PER_SENDER_MAX};
use poi_core::tx::{Tx, TxHash};
use poi_core::{Address, TxError};

/// Fee-per-byte is scaled by this factor so that integer division keeps enough precision.
const FEE_RATE_SCALE: u128 = 1_000;

#[derive(Debug, Clone)]
struct Entry {
    tx: Tx,
    hash: TxHash,
    fee_rate: u128,
    arrival: u64,
}

/// Pending transactions.
#[derive(Debug)]
pub struct Mempool {
    by_sender: BTreeMap<Address, BTreeMap<u64, Entry>>,
    by_hash: BTreeMap<TxHash, (Address, u64)>,
    arrivals: u64,
    capacity: u32,
}

impl Default for Mempool {
    fn default() -> Self {
        Self::with_capacity(MEMPOOL_TXS_MAX)
    }
}

impl Mempool {
    /// An empty pool holding at most `capacity` transactions (capped at `MEMPOOL_TXS_MAX`).
    pub fn with_capacity(capacity: u32) -> Self {
        Self {
            by_sender: BTreeMap::new(),
            by_hash: BTreeMap::new(),
            arrivals: 0,
            capacity: capacity.min(MEMPOOL_TXS_MAX),
        }
    }

    /// Transactions held.
    pub fn len(&self) -> usize {
        self.by_hash.len()
    }

    /// Whether the pool is empty.
    pub fn is_empty(&self) -> bool {
        self.by_hash.is_empty()
    }

    /// Whether `hash` is pending.
    pub fn contains(&self, hash: &TxHash) -> bool {
        self.by_hash.contains_key(hash)
    }

    /// The next nonce `sender` should use, counting its queued contiguous transactions after the
    /// committed `account_nonce`.
    pub fn next_nonce(&self, sender: &Address, account_nonce: u64) -> u64 {
        let mut next = account_nonce;
        if let Some(queue) = self.by_sender.get(sender) {
            for nonce in queue.range(account_nonce..).map(|(n, _)| *n) {
                if nonce != next {
                    break;
                }
                next += 1;
            }
        }
        next
    }

    /// Adds an admitted transaction. A transaction with the same sender and nonce is replaced
    /// only by a strictly higher fee.
    pub fn insert(&mut self, tx: Tx, hash: TxHash) -> Result<(), TxError> {
        if self.by_hash.contains_key(&hash) {
            return Err(TxError::Duplicate(hex::encode(hash)));
        }
        let sender = tx.body.signer;
        let nonce = tx.body.nonce;
        let len = tx.encoded_len().max(1);
        let fee_rate = tx.body.fee.saturating_mul(FEE_RATE_SCALE) / u128::from(len);
        let queue_len = self.by_sender.get(&sender).map_or(0, BTreeMap::len);
        let replaced = self
            .by_sender
            .get(&sender)
            .and_then(|q| q.get(&nonce))
            .cloned();
        match &replaced {
            Some(old) if old.tx.body.fee >= tx.body.fee => {
                return Err(TxError::Duplicate(format!(
                    "nonce {nonce} of {sender} is already pending with fee {}; \
                     replace it with a higher fee",
                    old.tx.body.fee
                )));
            }
            Some(_) => {}
            None if self.len() >= self.capacity as usize => {
                return Err(TxError::MempoolFull {
                    capacity: self.capacity,
                });
            }
            None if queue_len >= MEMPOOL_TXS_PER_SENDER_MAX as usize => {
                // A full queue must not lock its sender out: a lower nonce (one that may close
                // a gap) evicts the sender's highest queued nonce.
                let queue = self.by_sender.get_mut(&sender).expect("queue_len > 0");
                let (&highest, _) = queue.last_key_value().expect("queue_len > 0");
                if nonce > highest {
                    return Err(TxError::MempoolFull {
                        capacity: MEMPOOL_TXS_PER_SENDER_MAX,
                    });
                }
                let evicted = queue.remove(&highest).expect("present");
                self.by_hash.remove(&evicted.hash);
            }
            None => {}
        }
        if let Some(old) = replaced {
            self.by_hash.remove(&old.hash);
        }
        self.arrivals += 1;
        let entry = Entry {
            tx,
            hash,
            fee_rate,
            arrival: self.arrivals,
        };
        self.by_sender
            .entry(sender)
            .or_default()
            .insert(nonce, entry);
        self.by_hash.insert(hash, (sender, nonce));
        debug_assert!(self.len() <= self.capacity as usize);
        Ok(())
    }

    /// Up to `max` transactions in priority order, each sender's in nonce order starting at its
    /// committed nonce (`account_nonce`).
    pub fn select(&self, max: usize, account_nonce: impl Fn(&Address) -> u64) -> Vec<Tx> {
        // Heap of each sender's next selectable transaction: highest fee rate, then earliest.
        let mut heads: BinaryHeap<(u128, Reverse<u64>, Address, u64)> = BinaryHeap::new();
        for (sender, queue) in &self.by_sender {
            let nonce = account_nonce(sender);
            if let Some(entry) = queue.get(&nonce) {
                heads.push((entry.fee_rate, Reverse(entry.arrival), *sender, nonce));
            }
        }
        let mut picked = Vec::with_capacity(max.min(self.len()));
        while picked.len() < max {
            let Some((_, _, sender, nonce)) = heads.pop() else {
                break;
            };
            let queue = &self.by_sender[&sender];
            picked.push(queue[&nonce].tx.clone());
            if let Some(next) = queue.get(&(nonce + 1)) {
                heads.push((next.fee_rate, Reverse(next.arrival), sender, nonce + 1));
            }
        }
        picked
    }

    /// Removes one transaction (e.g. rejected while building a block).
    pub fn remove(&mut self, hash: &TxHash) {
        if let Some((sender, nonce)) = self.by_hash.remove(hash)
            && let Some(queue) = self.by_sender.get_mut(&sender)
        {
            queue.remove(&nonce);
            if queue.is_empty() {
                self.by_sender.remove(&sender);
            }
        }
    }

    /// Drops every transaction of `sender` with a nonce below `account_nonce` (now committed or
    /// unusable).
    pub fn prune_sender(&mut self, sender: &Address, account_nonce: u64) {
        let Some(queue) = self.by_sender.get_mut(sender) else {
            return;
        };
        let keep = queue.split_off(&account_nonce);
        for entry in queue.values() {
            self.by_hash.remove(&entry.hash);
        }
        if keep.is_empty() {
            self.by_sender.remove(sender);
        } else {
            *queue = keep;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ed25519_dalek::SigningKey;
    use poi_core::bank::BankMsg;
    use poi_core::tx::{Msg, TxBody};

    fn tx(seed: u8, nonce: u64, fee: u128) -> Tx {
        let key = SigningKey::from_bytes(&[seed; 32]);
        TxBody {
            chain_id: "t".into(),
            signer: Address::from_public_key(&key.verifying_key()),
            nonce,
            fee,
            msg: Msg::Bank(BankMsg::Transfer {
                to: Address([0; 32]),
                amount: 1,
            }),
        }
        .sign(&key)
    }

    fn add(pool: &mut Mempool, tx: Tx) -> Result<(), TxError> {
        let hash = tx.hash();
        pool.insert(tx, hash)
    }

    #[test]
    fn priority_by_fee_then_arrival_and_nonce_order() {
        let mut pool = Mempool::default();
        add(&mut pool, tx(1, 0, 100)).unwrap();
        add(&mut pool, tx(2, 0, 300)).unwrap();
        add(&mut pool, tx(1, 1, 900)).unwrap();
        add(&mut pool, tx(3, 0, 100)).unwrap();
        let picked = pool.select(10, |_| 0);
        let order: Vec<(u8, u64)> = picked
            .iter()
            .map(|t| {
                let seed = (1..=3)
                    .find(|s| tx(*s, 0, 0).body.signer == t.body.signer)
                    .unwrap();
                (seed, t.body.nonce)
            })
            .collect();
        // Sender 1's nonce 1 pays most but must follow its nonce 0.
        assert_eq!(order, vec![(2, 0), (1, 0), (1, 1), (3, 0)]);
    }

    #[test]
    fn nonce_gaps_are_held_back() {
        let mut pool = Mempool::default();
        add(&mut pool, tx(1, 0, 100)).unwrap();
        add(&mut pool, tx(1, 2, 100)).unwrap();
        assert_eq!(pool.select(10, |_| 0).len(), 1);
        assert_eq!(pool.next_nonce(&tx(1, 0, 0).body.signer, 0), 1);
        add(&mut pool, tx(1, 1, 100)).unwrap();
        assert_eq!(pool.select(10, |_| 0).len(), 3);
        pool.prune_sender(&tx(1, 0, 0).body.signer, 2);
        assert_eq!(pool.len(), 1);
        assert_eq!(pool.select(10, |_| 2)[0].body.nonce, 2);
    }

    #[test]
    fn full_pool_and_duplicates_are_typed_errors() {
        let mut pool = Mempool::with_capacity(2);
        add(&mut pool, tx(1, 0, 100)).unwrap();
        assert_eq!(
            add(&mut pool, tx(1, 0, 100)).unwrap_err().code(),
            "duplicate"
        );
        assert_eq!(
            add(&mut pool, tx(1, 0, 50)).unwrap_err().code(),
            "duplicate"
        );
        add(&mut pool, tx(1, 0, 200)).unwrap();
        assert_eq!(pool.len(), 1);
        add(&mut pool, tx(2, 0, 100)).unwrap();
        let err = add(&mut pool, tx(3, 0, 100)).unwrap_err();
        assert_eq!(err, TxError::MempoolFull { capacity: 2 });
    }
}
