//! Events and receipts: what happened, for clients and indexers.
//!
//! Events are part of consensus: each block commits to the borsh encoding of its receipts and
//! block events through the header's `events_root`.

use std::borrow::Cow;
use std::fmt;

use borsh::{BorshDeserialize, BorshSerialize};
use serde::Serialize;

use crate::address::Address;
use crate::token::Amount;
use crate::tx::TxHash;

/// A name chosen by code (module, event kind, attribute key): borrowed when static, so emitting
/// an event allocates nothing for it; owned after decoding.
pub type Name = Cow<'static, str>;

/// Something a module reports: `module`/`kind` plus ordered key-value attributes.
///
/// Attribute values are typed so that executing a block only copies bytes; they become text
/// (bech32 addresses, decimal amounts) when a client reads them.
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize)]
pub struct Event {
    /// Module that emitted it, e.g. `bank`.
    pub module: Name,
    /// What happened, e.g. `transfer`.
    pub kind: Name,
    /// Attributes in emission order.
    pub attributes: Vec<(Name, AttributeValue)>,
}

impl Event {
    /// A new event with no attributes.
    pub fn new(module: &'static str, kind: &'static str) -> Self {
        Self {
            module: Cow::Borrowed(module),
            kind: Cow::Borrowed(kind),
            attributes: Vec::new(),
        }
    }

    /// Adds an attribute.
    pub fn with(mut self, key: &'static str, value: impl Into<AttributeValue>) -> Self {
        self.attributes.push((Cow::Borrowed(key), value.into()));
        self
    }

    /// The value of the first attribute named `key`.
    pub fn attribute(&self, key: &str) -> Option<&AttributeValue> {
        self.attributes
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, value)| value)
    }
}

/// The value of an event attribute. In JSON every variant is a string: an address in its
/// `poi1…` form, an amount in base units as a decimal string, text as is.
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub enum AttributeValue {
    /// An account or module address.
    Address(Address),
    /// An amount of base units.
    Amount(Amount),
    /// A count, height or other integer.
    Number(u64),
    /// Free text.
    Text(String),
}

impl fmt::Display for AttributeValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Address(address) => address.fmt(f),
            Self::Amount(amount) => amount.fmt(f),
            Self::Number(number) => number.fmt(f),
            Self::Text(text) => f.write_str(text),
        }
    }
}

impl Serialize for AttributeValue {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl From<Address> for AttributeValue {
    fn from(address: Address) -> Self {
        Self::Address(address)
    }
}

impl From<Amount> for AttributeValue {
    fn from(amount: Amount) -> Self {
        Self::Amount(amount)
    }
}

impl From<u64> for AttributeValue {
    fn from(number: u64) -> Self {
        Self::Number(number)
    }
}

impl From<&str> for AttributeValue {
    fn from(text: &str) -> Self {
        Self::Text(text.to_owned())
    }
}

impl From<String> for AttributeValue {
    fn from(text: String) -> Self {
        Self::Text(text)
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

/// Serialises an optional 32 bytes as lowercase hex, or null.
pub fn hex32_opt<S: serde::Serializer>(value: &Option<[u8; 32]>, s: S) -> Result<S::Ok, S::Error> {
    match value {
        Some(bytes) => s.serialize_str(&hex::encode(bytes)),
        None => s.serialize_none(),
    }
}

/// Serialises an amount as a decimal string (JSON numbers cannot hold u128 exactly).
pub fn decimal<S: serde::Serializer>(amount: &Amount, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(amount)
}
