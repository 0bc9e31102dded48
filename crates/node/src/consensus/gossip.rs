//! Transaction gossip: a transaction submitted to one validator reaches every validator's
//! mempool, so whichever leads the next view can include it.
//!
//! Owns: [`TxGossip`] (the application's handle), [`GossipQueue`] (its consensus-side half),
//! the channel [`CHANNEL_TXS`](super::CHANNEL_TXS) and the two tasks behind it.
//!
//! # Format
//! One message is a batch: a little-endian `u32` count, then per transaction a little-endian
//! `u32` length and the bytes. Batches are what keeps a burst under the per-peer message rate:
//! the sender drains everything queued into one message, up to [`GOSSIP_BATCH_TXS_MAX`]
//! transactions and the channel's message size.
//!
//! Invariants: gossip is one hop (validators are fully connected, and a transaction received
//! from a peer is never forwarded again, so there are no loops); the local queue is bounded
//! ([`GOSSIP_QUEUED_MAX`]) and a full queue drops the transaction rather than blocking the API
//! (its submitter still holds it in the local mempool); received bytes are untrusted and go
//! through the application's full admission checks.

use super::Application;
use commonware_cryptography::ed25519::PublicKey;
use commonware_p2p::{Receiver, Recipients, Sender};
use commonware_utils::channel::mpsc;
use tracing::{debug, info};

/// Transactions that may wait to be gossiped; more are dropped (they stay in the local pool).
pub const GOSSIP_QUEUED_MAX: usize = 8_192;
/// Most transactions in one gossip message.
pub const GOSSIP_BATCH_TXS_MAX: usize = 512;

/// Sends transactions this node accepted to every other validator.
#[derive(Clone, Debug)]
pub struct TxGossip {
    queue: mpsc::Sender<Vec<u8>>,
}

impl TxGossip {
    /// Queues `tx` for every peer; `false` if the queue is full or consensus has stopped.
    pub fn send(&self, tx: Vec<u8>) -> bool {
        self.queue.try_send(tx).is_ok()
    }
}

/// The consensus-side half of a [`TxGossip`].
#[derive(Debug)]
pub struct GossipQueue {
    queue: mpsc::Receiver<Vec<u8>>,
}

/// A connected handle (for the application) and queue (for consensus).
pub fn tx_gossip() -> (TxGossip, GossipQueue) {
    let (sender, receiver) = mpsc::channel(GOSSIP_QUEUED_MAX);
    (TxGossip { queue: sender }, GossipQueue { queue: receiver })
}

/// Encodes a batch (see the module docs).
fn encode_batch(txs: &[Vec<u8>]) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(4 + txs.iter().map(|tx| 4 + tx.len()).sum::<usize>());
    // Batches are bounded by GOSSIP_BATCH_TXS_MAX and the message size, far below u32::MAX.
    bytes.extend_from_slice(&u32::try_from(txs.len()).unwrap_or(u32::MAX).to_le_bytes());
    for tx in txs {
        bytes.extend_from_slice(&u32::try_from(tx.len()).unwrap_or(u32::MAX).to_le_bytes());
        bytes.extend_from_slice(tx);
    }
    bytes
}

/// Decodes a batch; `None` if it is malformed in any way (nothing of it is used then).
fn decode_batch(bytes: &[u8]) -> Option<Vec<Vec<u8>>> {
    let read_u32 = |at: usize| -> Option<usize> {
        let word: [u8; 4] = bytes.get(at..at.checked_add(4)?)?.try_into().ok()?;
        usize::try_from(u32::from_le_bytes(word)).ok()
    };
    let count = read_u32(0)?;
    if count > GOSSIP_BATCH_TXS_MAX {
        return None;
    }
    let mut at = 4usize;
    let mut txs = Vec::with_capacity(count);
    for _ in 0..count {
        let len = read_u32(at)?;
        at = at.checked_add(4)?;
        let end = at.checked_add(len)?;
        txs.push(bytes.get(at..end)?.to_vec());
        at = end;
    }
    (at == bytes.len()).then_some(txs)
}

/// Sends queued transactions to all peers, in batches.
pub(crate) async fn send_gossip<S>(mut local: GossipQueue, mut sender: S, max_bytes: usize)
where
    S: Sender<PublicKey = PublicKey>,
{
    while let Some(first) = local.queue.recv().await {
        let mut size = 4 + 4 + first.len();
        let mut batch = vec![first];
        while batch.len() < GOSSIP_BATCH_TXS_MAX {
            let Ok(next) = local.queue.try_recv() else {
                break;
            };
            if size + 4 + next.len() > max_bytes {
                // Too big to join this batch: send it alone next (a lone oversized one is
                // dropped by the transport, and its submitter still holds it).
                sender.send(Recipients::All, encode_batch(&batch), false);
                size = 4;
                batch.clear();
            }
            size += 4 + next.len();
            batch.push(next);
        }
        let sent = sender.send(Recipients::All, encode_batch(&batch), false);
        debug!(
            txs = batch.len(),
            peers = sent.len(),
            "gossiped transactions"
        );
    }
}

/// Hands every transaction peers gossip to [`Application::receive_tx`].
pub(crate) async fn receive_gossip<A, R>(app: A, mut receiver: R)
where
    A: Application,
    R: Receiver<PublicKey = PublicKey>,
{
    loop {
        let (peer, message) = match receiver.recv().await {
            Ok(message) => message,
            Err(error) => {
                info!(%error, "transaction gossip channel closed");
                return;
            }
        };
        let Some(txs) = decode_batch(message.as_ref()) else {
            debug!(?peer, "malformed gossip batch");
            continue;
        };
        for tx in txs {
            app.receive_tx(tx).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_round_trip_and_malformed_ones_are_refused() {
        let txs = vec![vec![1, 2, 3], Vec::new(), vec![9; 300]];
        let bytes = encode_batch(&txs);
        assert_eq!(decode_batch(&bytes), Some(txs));
        assert_eq!(decode_batch(&bytes[..bytes.len() - 1]), None);
        let mut longer = bytes.clone();
        longer.push(0);
        assert_eq!(decode_batch(&longer), None);
        assert_eq!(decode_batch(&[]), None);
        let too_many = u32::try_from(GOSSIP_BATCH_TXS_MAX + 1)
            .unwrap()
            .to_le_bytes();
        assert_eq!(decode_batch(&too_many), None);
        assert_eq!(decode_batch(&encode_batch(&[])), Some(Vec::new()));
    }
}
