//! On-disk tables of the store and the byte encodings of their keys and values.
//!
//! Owns: every redb table definition and record codec. Invariants: integers inside keys are
//! big-endian, so redb's byte order is numeric order; every table is written only inside the one
//! write transaction of a block commit (or of `open`, which creates the tables).
//!
//! Stability: ALPHA; the format may change without migration while [`FORMAT_VERSION`] is bumped.
//!
//! # Format
//!
//! One redb file holds nine tables. `BE` is big-endian; `kh` is the 32-byte SHA-256 of a state
//! key (the tree's `KeyHash`); a height is also the tree's version.
//!
//! ```text
//! table           key                                  value
//! --------------  -----------------------------------  --------------------------------------
//! meta            "format"                             u32 BE = FORMAT_VERSION
//!                 "latest"                             height u64 BE | root [32] | hash [32]
//!                 "oldest"                             oldest provable height u64 BE
//! jmt_nodes       node key                             borsh(jmt::storage::Node), and for a
//!                                                      leaf the raw value bytes after it
//! jmt_stale       since: u64                           (len u8 | node key)*, the nodes that
//!                                                      no version >= since reaches
//! flat_state      raw key bytes                        raw value bytes (latest state only)
//! roots           height: u64                          state root [32]
//! blocks          height: u64                          opaque block bytes
//! block_hashes    block hash [32]                      height u64
//! tx_index        first 8 bytes of a tx hash           (height u64 BE | index u32 BE)+
//! receipts        height u64 BE | chunk u32 BE         (tx hash [32] | len u32 BE | receipt)*
//!
//! A block's receipts are stored in chunks of [`RECEIPTS_PER_CHUNK`] transactions: transaction
//! `i` of block `h` is entry `i % RECEIPTS_PER_CHUNK` of chunk `(h, i / RECEIPTS_PER_CHUNK)`. The
//! transaction index is keyed by the first 8 bytes of the hash and lists every place whose hash
//! starts with them (almost always one); a lookup compares the full hash stored in the chunk.
//! Both cut a block's commit from one B-tree insert per transaction per table, with 44-byte
//! index entries, to one insert per chunk and 20-byte index entries (docs/benchmarks.md).
//!
//! node key = version u64 BE | nibble count u8 (0..=64) | nibbles packed two per byte,
//!            high nibble first, the low half of an odd last byte zero
//! ```
//!
//! A value lives beside the leaf that commits to it, so a node key names an immutable
//! `(leaf, value)` pair: the value of key `k` at height `h` is found by walking the tree of `h`
//! to `k`'s leaf, and it is pruned together with that leaf. Keys that are written, created or
//! moved by a block get new leaves at that block's version; version-major node keys make these
//! writes appends.
//!
//! `jmt_stale` is the tree's stale node index, one record per version. Pruning to an oldest
//! retained height `o` deletes every node listed under `since <= o`, then the list, in the commit
//! that moves `o`; no version in `[o, latest]` reaches those nodes.
//!
//! `borsh(jmt::storage::Node)` is jmt 0.12's layout: tag `0` null (an empty tree's root), `2`
//! leaf (`kh [32] | value hash [32]`), `1` internal (16 × (`0` | `1 | hash [32] | version u64 |
//! 0` for a leaf child or `1 | leaf count u64` for an internal one) `| child count u64 | leaf
//! count u64`), integers little-endian. Every version has a root node at the empty path.
//!
//! # Crash safety
//!
//! Each block is one redb write transaction committed with `Durability::Immediate`: tree nodes,
//! stale list, pruning, flat state, block, transaction index, root and `meta` become durable
//! together or not at all. redb's commit is a checksummed root swap, so after a crash the file
//! opens at the last committed transaction, whose `meta.latest` names the height whose tree root
//! is stored. `open` recomputes that root with jmt from `jmt_nodes` and asserts it equals
//! `meta.latest`, pairing the same assertion made after every commit.

use borsh::BorshDeserialize;
use jmt::KeyHash;
use jmt::storage::{Node, NodeKey};
use redb::TableDefinition;

use crate::error::{Result, StoreError};

/// Version of the on-disk format this build reads and writes.
pub const FORMAT_VERSION: u32 = 2;

pub(crate) const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");
pub(crate) const NODES: TableDefinition<&[u8], &[u8]> = TableDefinition::new("jmt_nodes");
pub(crate) const STALE: TableDefinition<u64, &[u8]> = TableDefinition::new("jmt_stale");
pub(crate) const FLAT: TableDefinition<&[u8], &[u8]> = TableDefinition::new("flat_state");
pub(crate) const ROOTS: TableDefinition<u64, &[u8; 32]> = TableDefinition::new("roots");
pub(crate) const BLOCKS: TableDefinition<u64, &[u8]> = TableDefinition::new("blocks");
pub(crate) const BLOCK_HASHES: TableDefinition<&[u8; 32], u64> =
    TableDefinition::new("block_hashes");
pub(crate) const TX_INDEX: TableDefinition<&[u8; 8], &[u8]> = TableDefinition::new("tx_index");
pub(crate) const RECEIPTS: TableDefinition<&[u8; 12], &[u8]> = TableDefinition::new("receipts");

/// Transactions whose receipts share one `receipts` record.
pub const RECEIPTS_PER_CHUNK: u32 = 256;

/// Bytes of one place in a `tx_index` value: height and index.
pub(crate) const TX_PLACE_BYTES: usize = 12;

/// Bytes before a receipt in a chunk entry: the transaction hash and the receipt's length.
pub(crate) const RECEIPT_ENTRY_HEADER_BYTES: usize = 32 + 4;

pub(crate) const META_FORMAT: &str = "format";
pub(crate) const META_LATEST: &str = "latest";
pub(crate) const META_OLDEST: &str = "oldest";

/// Bytes of `meta.latest`: height, state root, block hash.
pub(crate) const LATEST_BYTES: usize = 8 + 32 + 32;

/// Longest encoded node key: version, nibble count, 32 bytes of nibbles.
pub(crate) const NODE_KEY_BYTES_MAX: usize = 8 + 1 + 32;

/// Most nibbles in a node path: a full 256-bit key hash.
pub(crate) const NIBBLES_MAX: usize = 64;

/// A tree node key, encoded on the stack.
pub(crate) struct NodeKeyBytes {
    buf: [u8; NODE_KEY_BYTES_MAX],
    len: usize,
}

impl NodeKeyBytes {
    /// Encodes `key` as `version | count | nibbles`.
    pub(crate) fn new(key: &NodeKey) -> Self {
        let path = key.nibble_path();
        let count = path.num_nibbles();
        assert!(count <= NIBBLES_MAX, "node path has {count} nibbles");
        let mut nibbles = [0u8; NIBBLES_MAX];
        let mut seen = 0usize;
        for (slot, nibble) in nibbles.iter_mut().zip(path.nibbles()) {
            *slot = u8::from(nibble);
            seen += 1;
        }
        assert_eq!(seen, count, "nibble iterator disagrees with nibble count");
        Self::from_nibbles(key.version(), &nibbles[..count])
    }

    /// Encodes the node at `version` whose path is `nibbles` (each below 16).
    pub(crate) fn from_nibbles(version: u64, nibbles: &[u8]) -> Self {
        assert!(
            nibbles.len() <= NIBBLES_MAX,
            "node path has {} nibbles",
            nibbles.len()
        );
        let mut buf = [0u8; NODE_KEY_BYTES_MAX];
        buf[..8].copy_from_slice(&version.to_be_bytes());
        buf[8] = nibbles.len() as u8;
        for (index, &nibble) in nibbles.iter().enumerate() {
            assert!(nibble < 16, "nibble {nibble} out of range");
            buf[9 + index / 2] |= if index % 2 == 0 { nibble << 4 } else { nibble };
        }
        Self {
            buf,
            len: 9 + nibbles.len().div_ceil(2),
        }
    }

    /// The encoded bytes.
    pub(crate) fn as_slice(&self) -> &[u8] {
        &self.buf[..self.len]
    }
}

/// The 64 nibbles of a key hash, high nibble of each byte first: its path in the tree.
pub(crate) fn key_nibbles(key_hash: &KeyHash) -> [u8; NIBBLES_MAX] {
    let mut nibbles = [0u8; NIBBLES_MAX];
    for (index, byte) in key_hash.0.iter().enumerate() {
        nibbles[2 * index] = byte >> 4;
        nibbles[2 * index + 1] = byte & 0x0f;
    }
    nibbles
}

/// Appends `key` to a `jmt_stale` record.
pub(crate) fn push_stale(record: &mut Vec<u8>, key: &NodeKeyBytes) {
    let bytes = key.as_slice();
    record.push(bytes.len() as u8);
    record.extend_from_slice(bytes);
}

/// Calls `each` with every node key of a `jmt_stale` record.
pub(crate) fn for_each_stale<'a>(
    mut record: &'a [u8],
    mut each: impl FnMut(&'a [u8]) -> Result<()>,
) -> Result<()> {
    while let Some((&len, rest)) = record.split_first() {
        let len = usize::from(len);
        if !(9..=NODE_KEY_BYTES_MAX).contains(&len) || rest.len() < len {
            return Err(StoreError::corrupt("stale node record is malformed"));
        }
        each(&rest[..len])?;
        record = &rest[len..];
    }
    Ok(())
}

/// Decodes a `jmt_nodes` record into the node and, after it, a leaf's value.
pub(crate) fn decode_node(mut record: &[u8]) -> Result<(Node, &[u8])> {
    let node = Node::deserialize(&mut record)
        .map_err(|err| StoreError::corrupt(format!("tree node does not decode: {err}")))?;
    if !matches!(node, Node::Leaf(_)) && !record.is_empty() {
        return Err(StoreError::corrupt("tree node has trailing bytes"));
    }
    Ok((node, record))
}

/// Key of `receipts` holding transaction `index` of block `height`: `height | chunk`.
pub(crate) fn receipt_chunk_key(height: u64, index: u32) -> [u8; 12] {
    let mut out = [0u8; 12];
    out[..8].copy_from_slice(&height.to_be_bytes());
    out[8..].copy_from_slice(&(index / RECEIPTS_PER_CHUNK).to_be_bytes());
    out
}

/// Key of `tx_index` for `hash`: its first 8 bytes.
pub(crate) fn tx_index_key(hash: &[u8; 32]) -> [u8; 8] {
    let mut out = [0u8; 8];
    out.copy_from_slice(&hash[..8]);
    out
}

/// One place in a `tx_index` value.
pub(crate) fn encode_tx_place(height: u64, index: u32) -> [u8; TX_PLACE_BYTES] {
    let mut out = [0u8; TX_PLACE_BYTES];
    out[..8].copy_from_slice(&height.to_be_bytes());
    out[8..].copy_from_slice(&index.to_be_bytes());
    out
}

/// The places listed in a `tx_index` value.
pub(crate) fn decode_tx_places(value: &[u8]) -> Result<Vec<(u64, u32)>> {
    if value.is_empty() || !value.len().is_multiple_of(TX_PLACE_BYTES) {
        return Err(StoreError::corrupt(format!(
            "tx index entry of {} bytes is not a list of places",
            value.len()
        )));
    }
    value
        .chunks_exact(TX_PLACE_BYTES)
        .map(|place| {
            let height = read_u64(place, "tx index place")?;
            let index = u32::from_be_bytes([place[8], place[9], place[10], place[11]]);
            Ok((height, index))
        })
        .collect()
}

/// Appends one chunk entry (hash, length, receipt) to `chunk`.
pub(crate) fn push_receipt_entry(chunk: &mut Vec<u8>, hash: &[u8; 32], receipt: &[u8]) {
    let len = u32::try_from(receipt.len()).expect("receipt size is checked against its cap");
    chunk.extend_from_slice(hash);
    chunk.extend_from_slice(&len.to_be_bytes());
    chunk.extend_from_slice(receipt);
}

/// The hash and receipt of entry `position` of a receipts chunk.
pub(crate) fn receipt_entry(chunk: &[u8], position: u32) -> Result<([u8; 32], &[u8])> {
    let truncated = || StoreError::corrupt("receipts chunk is truncated");
    let mut rest = chunk;
    for seen in 0..=position {
        if rest.len() < RECEIPT_ENTRY_HEADER_BYTES {
            return Err(truncated());
        }
        let (header, body) = rest.split_at(RECEIPT_ENTRY_HEADER_BYTES);
        let len = u32::from_be_bytes([header[32], header[33], header[34], header[35]]) as usize;
        if body.len() < len {
            return Err(truncated());
        }
        if seen == position {
            let hash: [u8; 32] = header[..32].try_into().expect("32 bytes");
            return Ok((hash, &body[..len]));
        }
        rest = &body[len..];
    }
    Err(truncated())
}

/// Reads a big-endian `u64` from the first 8 bytes of `bytes`.
pub(crate) fn read_u64(bytes: &[u8], what: &str) -> Result<u64> {
    let head: [u8; 8] = bytes
        .get(..8)
        .and_then(|head| head.try_into().ok())
        .ok_or_else(|| StoreError::corrupt(format!("{what} is shorter than 8 bytes")))?;
    Ok(u64::from_be_bytes(head))
}

/// Reads a 32-byte array at `offset`.
pub(crate) fn read_32(bytes: &[u8], offset: usize, what: &str) -> Result<[u8; 32]> {
    bytes
        .get(offset..offset + 32)
        .and_then(|part| part.try_into().ok())
        .ok_or_else(|| StoreError::corrupt(format!("{what} is too short")))
}

#[cfg(test)]
mod tests {
    use jmt::ValueHash;
    use jmt::storage::LeafNode;

    use super::*;

    fn key_from_borsh(version: u64, nibbles: u64, bytes: &[u8]) -> NodeKey {
        // NodeKey's constructors for paths are crate-private in jmt; borsh is its public form.
        let mut raw = version.to_le_bytes().to_vec();
        raw.extend_from_slice(&nibbles.to_le_bytes());
        raw.extend_from_slice(&(bytes.len() as u32).to_le_bytes());
        raw.extend_from_slice(bytes);
        borsh::from_slice(&raw).expect("valid node key")
    }

    #[test]
    fn node_key_encoding_packs_nibbles() {
        let key = key_from_borsh(0x0102, 3, &[0xab, 0xc0]);
        let bytes = NodeKeyBytes::new(&key);
        assert_eq!(bytes.as_slice(), &[0, 0, 0, 0, 0, 0, 1, 2, 3, 0xab, 0xc0]);
        assert_eq!(
            NodeKeyBytes::from_nibbles(0x0102, &[0xa, 0xb, 0xc]).as_slice(),
            bytes.as_slice()
        );
        let root = key_from_borsh(41, 0, &[]);
        assert_eq!(
            NodeKeyBytes::new(&root).as_slice(),
            NodeKeyBytes::from_nibbles(41, &[]).as_slice()
        );
    }

    #[test]
    fn full_path_fits() {
        let key = key_from_borsh(u64::MAX - 1, 64, &[0xff; 32]);
        assert_eq!(NodeKeyBytes::new(&key).as_slice().len(), NODE_KEY_BYTES_MAX);
        let hash = KeyHash([0x5a; 32]);
        let nibbles = key_nibbles(&hash);
        assert_eq!(&nibbles[..3], &[5, 0xa, 5]);
    }

    #[test]
    fn stale_records_round_trip() {
        let keys = [
            NodeKeyBytes::from_nibbles(3, &[]),
            NodeKeyBytes::from_nibbles(9, &[1; 64]),
        ];
        let mut record = Vec::new();
        for key in &keys {
            push_stale(&mut record, key);
        }
        let mut seen = Vec::new();
        for_each_stale(&record, |key| {
            seen.push(key.to_vec());
            Ok(())
        })
        .expect("well formed");
        assert_eq!(
            seen,
            keys.iter()
                .map(|key| key.as_slice().to_vec())
                .collect::<Vec<_>>()
        );
        assert!(for_each_stale(&record[..record.len() - 1], |_| Ok(())).is_err());
        assert!(for_each_stale(&[3, 0, 0, 0], |_| Ok(())).is_err());
    }

    #[test]
    fn node_records_carry_leaf_values() {
        let leaf = Node::Leaf(LeafNode::new(KeyHash([1; 32]), ValueHash([2; 32])));
        let mut record = borsh::to_vec(&leaf).expect("encode");
        record.extend_from_slice(b"value");
        let (decoded, value) = decode_node(&record).expect("decode");
        assert_eq!((decoded, value), (leaf, &b"value"[..]));
        let mut record = borsh::to_vec(&Node::Null).expect("encode");
        assert_eq!(decode_node(&record).expect("decode").0, Node::Null);
        record.push(0);
        assert!(decode_node(&record).is_err());
        assert!(decode_node(&[9]).is_err());
    }
}
