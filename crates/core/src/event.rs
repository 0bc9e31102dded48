//! Events and receipts: what happened, for clients and indexers.
//!
//! Events are part of consensus: each block commits to the borsh encoding of its receipts and
//! block events through the header's `events_root`.

use borsh::{BorshDeserialize, BorshSerialize};
use serde::Serialize;

use crate::token::Amount;
use crate::tx::TxHash;

/// Something a module reports: `module`/`kind` plus ordered key-value attributes.
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize)]
pub struct Event {
    /// Module that emitted it, e.g. `bank`.
    pub module: String,
    /// What happened, e.g. `transfer`.
    pub kind: String,
    /// Attributes in emission order.
    pub attributes: Vec<(String, String)>,
}

impl Event {
    /// A new event with no attributes.
    pub fn new(module: &str, kind: &str) -> Self {
        Self {
            module: module.into(),
            kind: kind.into(),
            attributes: Vec::new(),
        }
    }

    /// Adds an attribute.
    pub fn with(mut self, key: &str, value: impl ToString) -> Self {
        self.attributes.push((key.into(), value.to_string()));
        self
    }
}

/// How a transaction included in a block ended.
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum TxOutcome {
    /// The message was applied.
    Success,
    /// The message failed and its effects were discarded; the fee was still paid and the nonce
    /// used.
    Failed {
        /// Stable error code (see [`crate::TxError::code`]).
        code: String,
        /// Human-readable reason.
        message: String,
    },
}

/// The result of one included transaction.
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize)]
pub struct Receipt {
    /// Transaction hash, hex in JSON.
    #[serde(serialize_with = "crate::event::hex32")]
    pub tx_hash: TxHash,
    /// Block height.
    pub height: u64,
    /// Position in the block.
    pub index: u32,
    /// Success or failure.
    pub outcome: TxOutcome,
    /// Fee charged, in base units.
    #[serde(serialize_with = "crate::event::decimal")]
    pub fee_paid: Amount,
    /// Events emitted (empty when the message failed, except the fee event).
    pub events: Vec<Event>,
}

/// Serialises 32 bytes as lowercase hex.
pub fn hex32<S: serde::Serializer>(bytes: &[u8; 32], s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&hex::encode(bytes))
}

/// Serialises an amount as a decimal string (JSON numbers cannot hold u128 exactly).
pub fn decimal<S: serde::Serializer>(amount: &Amount, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(amount)
}
