//! Every cap the state machine enforces, in one place, with its cost.
//!
//! Stability: BETA; changing a cap changes which blocks are valid.

/// Largest encoded transaction accepted, in bytes. A transfer is about 190 bytes; the cap leaves
/// room for later payloads (model manifests, commitments) while bounding signature-hash work.
pub const TX_BYTES_MAX: u32 = 32 * 1024;

/// Most transactions in one block. Bounds block execution time and the memory of a block's
/// write set (about 2 accounts touched per transfer).
pub const BLOCK_TXS_MAX: u32 = 10_000;

/// Largest encoded block, in bytes (header plus transactions).
pub const BLOCK_BYTES_MAX: u32 = 8 * 1024 * 1024;

/// Most transactions held in one node's mempool.
pub const MEMPOOL_TXS_MAX: u32 = 50_000;

/// Most transactions one sender may queue in the mempool (including nonce-gap holds).
pub const MEMPOOL_TXS_PER_SENDER_MAX: u32 = 1_024;

/// Longest chain id, in bytes.
pub const CHAIN_ID_BYTES_MAX: u32 = 64;

/// Transactions verified together in one ed25519 batch. The batch outcome is a deterministic
/// function of its inputs (the batch RNG is derived from a transcript of them), so every
/// validator splits a block into the same chunks and reaches the same verdict.
pub const SIGNATURE_BATCH_TXS: u32 = 1024;

/// Most events one transaction may emit.
pub const TX_EVENTS_MAX: u32 = 64;

const _: () = assert!(BLOCK_TXS_MAX <= MEMPOOL_TXS_MAX);
const _: () = assert!(TX_BYTES_MAX <= BLOCK_BYTES_MAX);
const _: () = assert!(MEMPOOL_TXS_PER_SENDER_MAX <= MEMPOOL_TXS_MAX);
const _: () = assert!(SIGNATURE_BATCH_TXS > 0);
