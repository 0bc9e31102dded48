//! The Jellyfish Merkle tree's view of one redb read snapshot.
//!
//! Owns: [`TreeSnapshot`], the `jmt::storage::TreeReader` over `jmt_nodes`, and the key hash.
//! Invariants: reads see exactly one committed redb transaction; the tree never writes through
//! this type (its batches are written by `commit`).

use jmt::storage::{LeafNode, Node, NodeKey, TreeReader};
use jmt::{KeyHash, OwnedValue, Sha256Jmt, Version};
use redb::{ReadOnlyTable, ReadTransaction};
use sha2::{Digest, Sha256};

use crate::error::{Result, StoreError};
use crate::format::{NIBBLES_MAX, NODES, NodeKeyBytes, decode_node, key_nibbles};

/// Root of the empty tree: jmt's placeholder hash, `b"SPARSE_MERKLE_PLACEHOLDER_HASH__"`.
///
/// A store whose state holds no key has this root, including before its first key is written.
pub const EMPTY_ROOT: [u8; 32] = *b"SPARSE_MERKLE_PLACEHOLDER_HASH__";

/// The tree's key for a raw state key: SHA-256 of the key bytes.
pub(crate) fn key_hash(key: &[u8]) -> KeyHash {
    KeyHash(Sha256::digest(key).into())
}

/// Tree nodes (and the values beside their leaves) as of one read transaction.
pub(crate) struct TreeSnapshot {
    nodes: ReadOnlyTable<&'static [u8], &'static [u8]>,
}

impl TreeSnapshot {
    /// Opens the tree table of `txn`.
    pub(crate) fn open(txn: &ReadTransaction) -> Result<Self> {
        Ok(Self {
            nodes: txn.open_table(NODES)?,
        })
    }

    /// The root hash stored for `version`, `None` when that root is not stored.
    pub(crate) fn root(&self, version: Version) -> Result<Option<[u8; 32]>> {
        let root = Sha256Jmt::new(self)
            .get_root_hash_option(version)
            .map_err(StoreError::from_tree)?;
        Ok(root.map(|root| root.0))
    }

    fn node(&self, node_key: &NodeKey) -> Result<Option<Node>> {
        let key = NodeKeyBytes::new(node_key);
        let Some(record) = self.nodes.get(key.as_slice())? else {
            return Ok(None);
        };
        Ok(Some(decode_node(record.value())?.0))
    }

    /// Value of `key_hash` in the tree of `version`: walks to its leaf and reads the value
    /// stored beside it. Fails if the root of `version` is not stored.
    pub(crate) fn value(&self, version: Version, key_hash: KeyHash) -> Result<Option<OwnedValue>> {
        let nibbles = key_nibbles(&key_hash);
        let mut node_version = version;
        // One node per nibble at most, plus the root: the walk is bounded by the key length.
        for depth in 0..=NIBBLES_MAX {
            let key = NodeKeyBytes::from_nibbles(node_version, &nibbles[..depth]);
            let Some(record) = self.nodes.get(key.as_slice())? else {
                return Err(StoreError::corrupt(format!(
                    "tree node at depth {depth} on the path of version {version} is missing"
                )));
            };
            let (node, value) = decode_node(record.value())?;
            match node {
                Node::Null => return Ok(None),
                Node::Leaf(leaf) => {
                    return Ok((leaf.key_hash() == key_hash).then(|| value.to_vec()));
                }
                Node::Internal(internal) => {
                    let wanted = nibbles.get(depth).copied();
                    let child = internal
                        .children_sorted()
                        .find(|(nibble, _)| Some(u8::from(*nibble)) == wanted);
                    let Some((_, child)) = child else {
                        return Ok(None);
                    };
                    node_version = child.version;
                }
            }
        }
        Err(StoreError::corrupt("tree path is longer than a key hash"))
    }
}

impl TreeReader for TreeSnapshot {
    fn get_node_option(&self, node_key: &NodeKey) -> anyhow::Result<Option<Node>> {
        Ok(self.node(node_key)?)
    }

    fn get_value_option(
        &self,
        max_version: Version,
        key_hash: KeyHash,
    ) -> anyhow::Result<Option<OwnedValue>> {
        Ok(self.value(max_version, key_hash)?)
    }

    fn get_rightmost_leaf(&self) -> anyhow::Result<Option<(NodeKey, LeafNode)>> {
        // Only tree restoration asks for it; the store never restores from chunks.
        Err(anyhow::anyhow!(
            "rightmost leaf lookup is not supported by the store"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_root_is_jmt_placeholder() {
        assert_eq!(EMPTY_ROOT, Sha256Jmt::<TreeSnapshot>::EMPTY_ROOT.0);
    }

    #[test]
    fn key_hash_matches_jmt() {
        assert_eq!(key_hash(b"alice"), KeyHash::with::<Sha256>(b"alice"));
    }
}
