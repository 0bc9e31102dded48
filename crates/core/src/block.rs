//! Blocks and their headers.
//!
//! # Format
//! `Block = borsh(BlockHeader) | txs Vec<Tx>`. The block hash is
//! `blake3("poi/block/v2\0" | borsh(BlockHeader))`; the header commits to the transactions
//! (`tx_root`, a [`crate::merkle`] root of transaction hashes), the state after executing them
//! (`state_root`, the JMT root computed by the store) and everything they emitted (`events_root`,
//! a Merkle root of the borsh receipts followed by the borsh list of block-hook events).
//! Version 2 added the consensus `view` the block was proposed in and the beacon `seeds` it
//! carries (see [`crate::beacon`]); PoI's begin-block hook checks both.
//!
//! Stability: BETA.

use borsh::{BorshDeserialize, BorshSerialize};
use serde::Serialize;

use crate::address::Address;
use crate::beacon::BeaconSeed;
use crate::event::{Event, Receipt};
use crate::limits::BLOCK_BYTES_MAX;
use crate::merkle;
use crate::tx::Tx;

/// A 32-byte block hash.
pub type BlockHash = [u8; 32];

/// What execution knows about the block it runs in. Time comes only from here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlockContext {
    /// Height of the block being executed.
    pub height: u64,
    /// Proposer's timestamp, milliseconds since the Unix epoch.
    pub timestamp_ms: u64,
    /// Proposer (receives the proposer share of fees).
    pub proposer: Address,
    /// The consensus view the block was proposed in (0 at genesis); strictly increasing
    /// along the chain.
    pub view: u64,
    /// Beacon seeds the block carries, each one a PoI draw target (see
    /// [`crate::poi::beacon`]).
    pub seeds: Vec<BeaconSeed>,
}

/// A block header.
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize)]
pub struct BlockHeader {
    /// Chain id.
    pub chain_id: String,
    /// Height; genesis is 0.
    pub height: u64,
    /// Hash of the parent block (zero for genesis).
    #[serde(serialize_with = "crate::event::hex32")]
    pub parent_hash: BlockHash,
    /// Validator that proposed the block.
    pub proposer: Address,
    /// Proposer's clock, ms since the Unix epoch; never below the parent's.
    pub timestamp_ms: u64,
    /// Number of transactions.
    pub tx_count: u32,
    /// Merkle root of transaction hashes.
    #[serde(serialize_with = "crate::event::hex32")]
    pub tx_root: [u8; 32],
    /// State root after this block.
    #[serde(serialize_with = "crate::event::hex32")]
    pub state_root: [u8; 32],
    /// Merkle root of receipts and block events.
    #[serde(serialize_with = "crate::event::hex32")]
    pub events_root: [u8; 32],
    /// The consensus view the block was proposed in (0 at genesis).
    pub view: u64,
    /// Beacon seeds for PoI's draw targets, at most `poi.seeds_per_block_max`.
    pub seeds: Vec<BeaconSeed>,
}

impl BlockHeader {
    /// The block hash.
    pub fn hash(&self) -> BlockHash {
        let mut h = blake3::Hasher::new();
        h.update(b"poi/block/v2\0");
        h.update(&borsh::to_vec(self).expect("borsh encoding into a Vec cannot fail"));
        *h.finalize().as_bytes()
    }

    /// The execution context this header implies.
    pub fn context(&self) -> BlockContext {
        BlockContext {
            height: self.height,
            timestamp_ms: self.timestamp_ms,
            proposer: self.proposer,
            view: self.view,
            seeds: self.seeds.clone(),
        }
    }
}

/// A block: header plus transactions.
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct Block {
    /// The header.
    pub header: BlockHeader,
    /// Transactions in execution order.
    pub txs: Vec<Tx>,
}

/// Why block bytes were refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BlockDecodeError {
    /// Larger than [`BLOCK_BYTES_MAX`].
    #[error("block is {0} bytes, the limit is {BLOCK_BYTES_MAX}")]
    Oversized(usize),
    /// Not one canonical borsh block.
    #[error("malformed block: {0}")]
    Malformed(String),
}

impl Block {
    /// The canonical encoding.
    pub fn encode(&self) -> Vec<u8> {
        borsh::to_vec(self).expect("borsh encoding into a Vec cannot fail")
    }

    /// Decodes a block, refusing oversized or trailing bytes.
    pub fn decode(bytes: &[u8]) -> Result<Block, BlockDecodeError> {
        if bytes.len() > BLOCK_BYTES_MAX as usize {
            return Err(BlockDecodeError::Oversized(bytes.len()));
        }
        borsh::from_slice(bytes).map_err(|e| BlockDecodeError::Malformed(e.to_string()))
    }

    /// The block hash.
    pub fn hash(&self) -> BlockHash {
        self.header.hash()
    }
}

/// Merkle root of the transactions' hashes.
pub fn tx_root(txs: &[Tx]) -> [u8; 32] {
    let hashes: Vec<[u8; 32]> = txs.iter().map(Tx::hash).collect();
    merkle::root(&hashes)
}

/// Merkle root of receipts followed by the block-hook events.
pub fn events_root(receipts: &[Receipt], block_events: &[Event]) -> [u8; 32] {
    let mut leaves: Vec<Vec<u8>> = receipts
        .iter()
        .map(|r| borsh::to_vec(r).expect("borsh encoding into a Vec cannot fail"))
        .collect();
    leaves.push(borsh::to_vec(block_events).expect("borsh encoding into a Vec cannot fail"));
    merkle::root(&leaves)
}
