//! Live chain events for the API's stream (`GET /events`).

use poi_core::block::Block;
use poi_core::event::Receipt;
use poi_store::Committed;
use serde::Serialize;

/// One committed block, with its receipts.
#[derive(Debug, Clone, Serialize)]
pub struct ChainEvent {
    /// Height.
    pub height: u64,
    /// Block hash, hex.
    pub hash: String,
    /// State root, hex.
    pub state_root: String,
    /// Proposer timestamp.
    pub timestamp_ms: u64,
    /// Receipts of the block's transactions.
    pub receipts: Vec<Receipt>,
}

impl ChainEvent {
    /// The event for a committed block.
    pub fn block(block: &Block, committed: Committed, receipts: &[Receipt]) -> Self {
        Self {
            height: committed.height,
            hash: hex::encode(committed.block_hash),
            state_root: hex::encode(committed.state_root),
            timestamp_ms: block.header.timestamp_ms,
            receipts: receipts.to_vec(),
        }
    }
}
