//! Batch update of the Jellyfish Merkle tree, producing jmt-compatible node records.
//!
//! Owns: [`apply`], which turns one block's sorted writes into new node records, the version's
//! stale node list and the new root. Invariants: nodes are jmt's (`jmt::storage::Node` in borsh,
//! hashed as jmt hashes them), so jmt reads and proves the tree; the root equals jmt's for the
//! same batch, and for a batch without deletions so does every node key, child version and leaf
//! count; each touched node is read once and each new node hashed once.
//!
//! jmt's `TreeCache` clones, hashes into `HashMap`s and re-sorts every node it touches; for a
//! block of 20,000 writes that was most of the time of `prepare`. This module walks the touched
//! paths once, depth first, and serializes nodes straight into one buffer.
//!
//! The tree shape is canonical: an internal node exists at every path shared by two or more
//! keys, and a key's leaf sits at the shortest path no other key shares. A node whose subtree
//! changed, or which moved, is written anew at the block's version; every node of the parent
//! version it replaces is listed as stale. The root is always written at the new version, as a
//! copy when nothing changed, so that every retained version has a root. (jmt applies deletions
//! key by key and may move a leaf away and back within one version, re-creating it; this module
//! keeps such a leaf where it is. Both trees have the same shape and root.)

use std::ops::Range;

use jmt::proof::INTERNAL_DOMAIN_SEPARATOR;
use jmt::storage::LeafNode;
use jmt::{KeyHash, ValueHash};
use redb::{AccessGuard, ReadOnlyTable};
use sha2::{Digest, Sha256};

use crate::error::{Result, StoreError};
use crate::format::{NIBBLES_MAX, NodeKeyBytes, push_stale};
use crate::tree::EMPTY_ROOT;

/// One write of a block: the key's hash and its new value (`None` deletes).
pub(crate) struct Write<'w> {
    pub(crate) hash: KeyHash,
    pub(crate) value: Option<&'w [u8]>,
}

/// New node records of one version, its stale node list and its root.
pub(crate) struct TreeUpdate {
    /// State root of the new version.
    pub(crate) root: [u8; 32],
    /// Serialized `jmt_nodes` records, back to back.
    pub(crate) records: Vec<u8>,
    /// Key and record range of each new node, sorted by key.
    pub(crate) nodes: Vec<(NodeKeyBytes, Range<usize>)>,
    /// The `jmt_stale` record of the new version (empty when nothing became stale).
    pub(crate) stale: Vec<u8>,
}

/// borsh tags of `jmt::storage::Node`, in its declaration order.
const TAG_NULL: u8 = 0;
const TAG_INTERNAL: u8 = 1;
const TAG_LEAF: u8 = 2;
/// Bytes of a leaf record before its value: tag, key hash, value hash.
const LEAF_HEADER_BYTES: usize = 1 + 32 + 32;

/// Applies `writes` (sorted by key hash, one per key) to the tree of version `base` (`None`:
/// empty tree) and returns version `version`.
///
/// `pending` is the update of version `base` when it is not committed yet: its nodes are read
/// from it before `table` (which may or may not hold them, depending on whether the commit
/// landed while this ran; both hold the same bytes).
pub(crate) fn apply(
    table: &ReadOnlyTable<&'static [u8], &'static [u8]>,
    pending: Option<&TreeUpdate>,
    base: Option<u64>,
    version: u64,
    writes: &[Write<'_>],
) -> Result<TreeUpdate> {
    assert!(base.is_none_or(|base| base < version), "versions only grow");
    assert!(
        writes.windows(2).all(|pair| pair[0].hash < pair[1].hash),
        "writes are sorted"
    );
    let mut updater = Updater {
        table,
        pending,
        version,
        path: [0; NIBBLES_MAX],
        records: Vec::with_capacity(writes.len() * 512),
        nodes: Vec::with_capacity(writes.len() * 2),
        stale: Vec::new(),
    };
    let root = updater.root(base, writes)?;
    let Updater {
        mut nodes,
        records,
        stale,
        ..
    } = updater;
    nodes.sort_unstable_by(|a, b| a.0.as_slice().cmp(b.0.as_slice()));
    assert!(
        nodes
            .windows(2)
            .all(|pair| pair[0].0.as_slice() != pair[1].0.as_slice())
    );
    Ok(TreeUpdate {
        root,
        records,
        nodes,
        stale,
    })
}

/// What an internal node keeps about a child: enough to hash and to find it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct ChildRef {
    hash: [u8; 32],
    version: u64,
    leaf_count: u64,
    leaf: bool,
}

/// A leaf value: new from the block, or read from the leaf's old record.
enum LeafValue<'w> {
    New(&'w [u8]),
    Old(Record<'w>),
}

/// A node record of an earlier version: in redb, or in the uncommitted update of the parent.
enum Record<'w> {
    Stored(AccessGuard<'static, &'static [u8]>),
    Pending(&'w [u8]),
}

impl Record<'_> {
    fn bytes(&self) -> &[u8] {
        match self {
            Record::Stored(guard) => guard.value(),
            Record::Pending(bytes) => bytes,
        }
    }
}

/// A leaf whose place is not decided yet: a parent may still hoist it.
struct Leaf<'w> {
    key_hash: KeyHash,
    value_hash: [u8; 32],
    value: LeafValue<'w>,
}

impl Leaf<'_> {
    fn value(&self) -> &[u8] {
        match &self.value {
            LeafValue::New(value) => value,
            LeafValue::Old(record) => &record.bytes()[LEAF_HEADER_BYTES..],
        }
    }

    fn hash(&self) -> [u8; 32] {
        LeafNode::new(self.key_hash, ValueHash(self.value_hash)).hash::<Sha256>()
    }
}

/// The result of updating one subtree.
enum Outcome<'w> {
    /// Nothing under this path changed.
    Unchanged,
    /// The subtree lost its last key.
    Empty,
    /// One key is left; its leaf is placed by the first ancestor with other children.
    Leaf(Leaf<'w>),
    /// A new internal node was written at this path.
    Node(ChildRef),
}

/// A node of the parent version.
enum Stored<'w> {
    Null,
    Leaf(Record<'w>),
    Internal(Record<'w>),
}

/// The children of an internal node record that `load` returned.
fn children_of(record: &Record<'_>) -> Result<[Option<ChildRef>; 16]> {
    let bytes = record.bytes();
    decode_internal(bytes.get(1..).unwrap_or_default())
        .ok_or_else(|| StoreError::corrupt("internal tree node does not decode"))
}

struct Updater<'t> {
    table: &'t ReadOnlyTable<&'static [u8], &'static [u8]>,
    pending: Option<&'t TreeUpdate>,
    version: u64,
    /// Nibbles from the root to the node being visited.
    path: [u8; NIBBLES_MAX],
    records: Vec<u8>,
    nodes: Vec<(NodeKeyBytes, Range<usize>)>,
    stale: Vec<u8>,
}

fn nibble(hash: &KeyHash, depth: usize) -> u8 {
    let byte = hash.0[depth / 2];
    if depth.is_multiple_of(2) {
        byte >> 4
    } else {
        byte & 0x0f
    }
}

/// Splits `items` (sorted by distinct key hash) into runs sharing the nibble at `depth`:
/// `(nibble, start, end)`, the first `count` of 16 entries.
fn runs<T>(
    items: &[T],
    depth: usize,
    hash: impl Fn(&T) -> &KeyHash,
) -> ([(u8, usize, usize); 16], usize) {
    let mut out = [(0u8, 0usize, 0usize); 16];
    let mut count = 0;
    let mut start = 0;
    while start < items.len() {
        let current = nibble(hash(&items[start]), depth);
        let mut end = start + 1;
        while end < items.len() && nibble(hash(&items[end]), depth) == current {
            end += 1;
        }
        // Sorted items give each nibble one run, so at most 16.
        out[count] = (current, start, end);
        count += 1;
        start = end;
    }
    (out, count)
}

fn new_leaf<'w>(hash: KeyHash, value: &'w [u8]) -> Leaf<'w> {
    Leaf {
        key_hash: hash,
        value_hash: Sha256::digest(value).into(),
        value: LeafValue::New(value),
    }
}

/// jmt's internal node hash: a 4-level binary tree over the 16 slots, where an empty range
/// hashes to the placeholder and a range holding a single leaf (or a single slot) takes that
/// child's hash.
fn merkle(children: &[Option<ChildRef>; 16], start: usize, width: usize) -> [u8; 32] {
    let slots = &children[start..start + width];
    let present = slots.iter().flatten().count();
    if present == 0 {
        return EMPTY_ROOT;
    }
    let only_leaf = present == 1 && slots.iter().flatten().any(|child| child.leaf);
    if width == 1 || only_leaf {
        let child = slots.iter().flatten().next();
        return child.map_or(EMPTY_ROOT, |child| child.hash);
    }
    let left = merkle(children, start, width / 2);
    let right = merkle(children, start + width / 2, width / 2);
    let mut hasher = Sha256::new();
    hasher.update(INTERNAL_DOMAIN_SEPARATOR);
    hasher.update(left);
    hasher.update(right);
    hasher.finalize().into()
}

/// Appends the borsh `Node::Internal` record of `children`; returns its leaf count.
fn encode_internal(out: &mut Vec<u8>, children: &[Option<ChildRef>; 16]) -> u64 {
    out.push(TAG_INTERNAL);
    let mut count = 0u64;
    let mut leaf_count = 0u64;
    for child in children {
        let Some(child) = child else {
            out.push(0);
            continue;
        };
        out.push(1);
        out.extend_from_slice(&child.hash);
        out.extend_from_slice(&child.version.to_le_bytes());
        if child.leaf {
            out.push(0);
        } else {
            out.push(1);
            out.extend_from_slice(&child.leaf_count.to_le_bytes());
        }
        count += 1;
        leaf_count += child.leaf_count;
    }
    assert!(count >= 1, "an internal node has a child");
    out.extend_from_slice(&count.to_le_bytes());
    out.extend_from_slice(&leaf_count.to_le_bytes());
    leaf_count
}

/// Decodes a borsh `InternalNode` (after its tag) into child references.
fn decode_internal(mut bytes: &[u8]) -> Option<[Option<ChildRef>; 16]> {
    fn take<'a>(bytes: &mut &'a [u8], count: usize) -> Option<&'a [u8]> {
        let (head, rest) = bytes.split_at_checked(count)?;
        *bytes = rest;
        Some(head)
    }
    fn take_u64(bytes: &mut &[u8]) -> Option<u64> {
        Some(u64::from_le_bytes(take(bytes, 8)?.try_into().ok()?))
    }
    let mut children = [None; 16];
    for slot in &mut children {
        if take(&mut bytes, 1)? == [1] {
            let hash = take(&mut bytes, 32)?.try_into().ok()?;
            let version = take_u64(&mut bytes)?;
            let (leaf, leaf_count) = match take(&mut bytes, 1)? {
                [0] => (true, 1),
                [1] => (false, take_u64(&mut bytes)?),
                _ => return None,
            };
            *slot = Some(ChildRef {
                hash,
                version,
                leaf_count,
                leaf,
            });
        }
    }
    let count = take_u64(&mut bytes)?;
    let leaf_count = take_u64(&mut bytes)?;
    let present = children.iter().flatten();
    let valid = count == present.clone().count() as u64
        && leaf_count == present.map(|child| child.leaf_count).sum::<u64>()
        && bytes.is_empty();
    valid.then_some(children)
}

impl<'t> Updater<'t> {
    /// Updates the whole tree and writes the root of the new version.
    fn root(&mut self, base: Option<u64>, writes: &[Write<'t>]) -> Result<[u8; 32]> {
        let outcome = match base {
            None => self.fresh(0, writes)?,
            Some(base) => {
                let outcome = match self.load(base, 0)? {
                    Stored::Null => {
                        self.mark_stale(base, 0);
                        self.fresh(0, writes)?
                    }
                    Stored::Leaf(record) => self.update_leaf(0, base, record, writes)?,
                    Stored::Internal(record) => {
                        self.update_internal(0, base, children_of(&record)?, writes)?
                    }
                };
                if matches!(outcome, Outcome::Unchanged) {
                    // Every version has its own root: copy the parent's, which is now stale.
                    if let Some(root) = self.copy_root(base)? {
                        return Ok(root);
                    }
                }
                outcome
            }
        };
        match outcome {
            Outcome::Unchanged | Outcome::Empty => {
                self.write_record(0, &[TAG_NULL]);
                Ok(EMPTY_ROOT)
            }
            Outcome::Leaf(leaf) => Ok(self.write_leaf(0, &leaf).hash),
            Outcome::Node(child) => Ok(child.hash),
        }
    }

    /// Copies the unchanged root of `base` to the new version; `None` if it is the null node.
    fn copy_root(&mut self, base: u64) -> Result<Option<[u8; 32]>> {
        let key = NodeKeyBytes::from_nibbles(base, &[]);
        let record = self.get(&key)?;
        let record = record.ok_or_else(|| StoreError::corrupt("parent root is missing"))?;
        let bytes = record.bytes();
        let hash = match bytes.first() {
            Some(&TAG_LEAF) => {
                let leaf = self.old_leaf(record)?;
                let hash = leaf.hash();
                self.write_leaf(0, &leaf);
                self.mark_stale(base, 0);
                return Ok(Some(hash));
            }
            Some(&TAG_INTERNAL) => {
                let children = decode_internal(&bytes[1..])
                    .ok_or_else(|| StoreError::corrupt("parent root does not decode"))?;
                merkle(&children, 0, 16)
            }
            _ => return Ok(None),
        };
        self.write_record(0, bytes);
        self.mark_stale(base, 0);
        Ok(Some(hash))
    }

    /// The record of node `key`: from the uncommitted parent update if it has it, else redb.
    fn get(&self, key: &NodeKeyBytes) -> Result<Option<Record<'t>>> {
        if let Some(pending) = self.pending {
            let found = pending
                .nodes
                .binary_search_by(|(node, _)| node.as_slice().cmp(key.as_slice()));
            if let Ok(index) = found {
                let range = pending.nodes[index].1.clone();
                return Ok(Some(Record::Pending(&pending.records[range])));
            }
        }
        Ok(self.table.get(key.as_slice())?.map(Record::Stored))
    }

    fn load(&self, version: u64, depth: usize) -> Result<Stored<'t>> {
        let key = NodeKeyBytes::from_nibbles(version, &self.path[..depth]);
        let Some(record) = self.get(&key)? else {
            return Err(StoreError::corrupt(format!(
                "tree node at version {version}, depth {depth} is missing"
            )));
        };
        let bytes = record.bytes();
        match bytes.first() {
            Some(&TAG_NULL) if bytes.len() == 1 && depth == 0 => Ok(Stored::Null),
            Some(&TAG_LEAF) if bytes.len() >= LEAF_HEADER_BYTES => Ok(Stored::Leaf(record)),
            Some(&TAG_INTERNAL) => Ok(Stored::Internal(record)),
            _ => Err(StoreError::corrupt("tree node has a bad tag")),
        }
    }

    fn old_leaf(&self, record: Record<'t>) -> Result<Leaf<'t>> {
        let bytes = record.bytes();
        let header = bytes.get(1..LEAF_HEADER_BYTES);
        let header = header.ok_or_else(|| StoreError::corrupt("leaf record is too short"))?;
        let key_hash = KeyHash(header[..32].try_into().expect("32 bytes"));
        let value_hash = header[32..].try_into().expect("32 bytes");
        Ok(Leaf {
            key_hash,
            value_hash,
            value: LeafValue::Old(record),
        })
    }

    fn mark_stale(&mut self, version: u64, depth: usize) {
        push_stale(
            &mut self.stale,
            &NodeKeyBytes::from_nibbles(version, &self.path[..depth]),
        );
    }

    fn write_record(&mut self, depth: usize, bytes: &[u8]) {
        let start = self.records.len();
        self.records.extend_from_slice(bytes);
        let key = NodeKeyBytes::from_nibbles(self.version, &self.path[..depth]);
        self.nodes.push((key, start..self.records.len()));
    }

    fn write_leaf(&mut self, depth: usize, leaf: &Leaf<'_>) -> ChildRef {
        let start = self.records.len();
        self.records.push(TAG_LEAF);
        self.records.extend_from_slice(&leaf.key_hash.0);
        self.records.extend_from_slice(&leaf.value_hash);
        self.records.extend_from_slice(leaf.value());
        let key = NodeKeyBytes::from_nibbles(self.version, &self.path[..depth]);
        self.nodes.push((key, start..self.records.len()));
        ChildRef {
            hash: leaf.hash(),
            version: self.version,
            leaf_count: 1,
            leaf: true,
        }
    }

    fn write_internal(&mut self, depth: usize, children: &[Option<ChildRef>; 16]) -> ChildRef {
        let start = self.records.len();
        let leaf_count = encode_internal(&mut self.records, children);
        let key = NodeKeyBytes::from_nibbles(self.version, &self.path[..depth]);
        self.nodes.push((key, start..self.records.len()));
        let hash = merkle(children, 0, 16);
        ChildRef {
            hash,
            version: self.version,
            leaf_count,
            leaf: false,
        }
    }

    /// Updates the subtree at `depth` whose node (if any) is `existing`.
    fn slot(
        &mut self,
        depth: usize,
        existing: Option<ChildRef>,
        writes: &[Write<'t>],
    ) -> Result<Outcome<'t>> {
        match existing {
            None => self.fresh(depth, writes),
            Some(child) => match self.load(child.version, depth)? {
                Stored::Leaf(record) if child.leaf => {
                    self.update_leaf(depth, child.version, record, writes)
                }
                Stored::Internal(record) if !child.leaf => {
                    let children = children_of(&record)?;
                    self.update_internal(depth, child.version, children, writes)
                }
                _ => Err(StoreError::corrupt(
                    "tree node kind differs from its parent's record",
                )),
            },
        }
    }

    /// Builds a subtree where no node exists; deletions there change nothing.
    fn fresh(&mut self, depth: usize, writes: &[Write<'t>]) -> Result<Outcome<'t>> {
        let mut leaves: Vec<Option<Leaf<'t>>> = writes
            .iter()
            .filter_map(|write| write.value.map(|value| Some(new_leaf(write.hash, value))))
            .collect();
        if leaves.is_empty() {
            return Ok(Outcome::Unchanged);
        }
        self.build(depth, &mut leaves)
    }

    /// Updates the subtree rooted at an existing leaf.
    fn update_leaf(
        &mut self,
        depth: usize,
        version: u64,
        record: Record<'t>,
        writes: &[Write<'t>],
    ) -> Result<Outcome<'t>> {
        let old = self.old_leaf(record)?;
        let touched = writes.iter().any(|write| write.hash == old.key_hash);
        if !touched && writes.iter().all(|write| write.value.is_none()) {
            return Ok(Outcome::Unchanged);
        }
        self.mark_stale(version, depth);
        let mut leaves: Vec<Option<Leaf<'t>>> = Vec::with_capacity(writes.len() + 1);
        let mut old = (!touched).then_some(old);
        for write in writes {
            if old.as_ref().is_some_and(|leaf| leaf.key_hash < write.hash) {
                leaves.push(old.take());
            }
            if let Some(value) = write.value {
                leaves.push(Some(new_leaf(write.hash, value)));
            }
        }
        leaves.extend(old.take().map(Some));
        match leaves.len() {
            0 => Ok(Outcome::Empty),
            1 => Ok(leaves.pop().flatten().map_or(Outcome::Empty, Outcome::Leaf)),
            _ => self.build(depth, &mut leaves),
        }
    }

    /// Builds the subtree of two or more `leaves` (sorted, all `Some`) at `depth`.
    fn build(&mut self, depth: usize, leaves: &mut [Option<Leaf<'t>>]) -> Result<Outcome<'t>> {
        if let [single] = leaves {
            let leaf = single
                .take()
                .ok_or_else(|| StoreError::corrupt("leaf taken twice"))?;
            return Ok(Outcome::Leaf(leaf));
        }
        if depth >= NIBBLES_MAX {
            return Err(StoreError::corrupt("two leaves share a whole key hash"));
        }
        let (bounds, count) = runs(leaves, depth, |leaf| match leaf {
            Some(leaf) => &leaf.key_hash,
            None => &EMPTY_KEY,
        });
        let mut children = [None; 16];
        for &(nibble, start, end) in &bounds[..count] {
            self.path[depth] = nibble;
            let child = match self.build(depth + 1, &mut leaves[start..end])? {
                Outcome::Leaf(leaf) => self.write_leaf(depth + 1, &leaf),
                Outcome::Node(child) => child,
                Outcome::Unchanged | Outcome::Empty => unreachable!("a built subtree has keys"),
            };
            children[usize::from(nibble)] = Some(child);
        }
        Ok(Outcome::Node(self.write_internal(depth, &children)))
    }

    /// Updates the subtree rooted at an existing internal node.
    fn update_internal(
        &mut self,
        depth: usize,
        version: u64,
        mut children: [Option<ChildRef>; 16],
        writes: &[Write<'t>],
    ) -> Result<Outcome<'t>> {
        if depth >= NIBBLES_MAX {
            return Err(StoreError::corrupt(
                "internal tree node below the last nibble",
            ));
        }
        let old = children;
        let mut floating: Vec<(u8, Leaf<'t>)> = Vec::new();
        let mut changed = false;
        let (bounds, count) = runs(writes, depth, |write| &write.hash);
        for &(nibble, start, end) in &bounds[..count] {
            let index = usize::from(nibble);
            self.path[depth] = nibble;
            match self.slot(depth + 1, old[index], &writes[start..end])? {
                Outcome::Unchanged => continue,
                Outcome::Empty => children[index] = None,
                Outcome::Leaf(leaf) => {
                    children[index] = None;
                    floating.push((nibble, leaf));
                }
                Outcome::Node(child) => children[index] = Some(child),
            }
            changed = true;
        }
        if !changed {
            return Ok(Outcome::Unchanged);
        }
        self.mark_stale(version, depth);
        self.rebuild(depth, children, floating)
    }

    /// Writes an internal node from its new children and not yet placed leaves, or hoists its
    /// only leaf.
    fn rebuild(
        &mut self,
        depth: usize,
        mut children: [Option<ChildRef>; 16],
        mut floating: Vec<(u8, Leaf<'t>)>,
    ) -> Result<Outcome<'t>> {
        let placed = children.iter().flatten().count();
        match (placed, floating.len()) {
            (0, 0) => return Ok(Outcome::Empty),
            (0, 1) => {
                let leaf = floating.pop().map(|(_, leaf)| leaf);
                return leaf
                    .map(Outcome::Leaf)
                    .ok_or_else(|| StoreError::corrupt("no leaf"));
            }
            (1, 0) => {
                let only = children
                    .iter()
                    .position(Option::is_some)
                    .unwrap_or_default();
                if let Some(child) = children[only].filter(|child| child.leaf) {
                    // New leaves are still floating: this is an old one. It moves up, so it
                    // is re-created here and stale where it was.
                    assert!(child.version < self.version, "a placed leaf is an old leaf");
                    self.path[depth] = only as u8;
                    let Stored::Leaf(record) = self.load(child.version, depth + 1)? else {
                        return Err(StoreError::corrupt("leaf child is not a leaf"));
                    };
                    self.mark_stale(child.version, depth + 1);
                    return Ok(Outcome::Leaf(self.old_leaf(record)?));
                }
            }
            _ => {}
        }
        for (nibble, leaf) in floating {
            self.path[depth] = nibble;
            children[usize::from(nibble)] = Some(self.write_leaf(depth + 1, &leaf));
        }
        Ok(Outcome::Node(self.write_internal(depth, &children)))
    }
}

/// Stands in for a taken leaf while grouping; never reached, leaves are taken after grouping.
const EMPTY_KEY: KeyHash = KeyHash([0; 32]);

#[cfg(test)]
mod tests {
    use borsh::BorshDeserialize;
    use jmt::storage::Node;

    use super::*;

    fn child(seed: u8, leaf: bool) -> ChildRef {
        let leaf_count = if leaf { 1 } else { u64::from(seed) + 2 };
        ChildRef {
            hash: [seed; 32],
            version: u64::from(seed) * 7,
            leaf_count,
            leaf,
        }
    }

    /// Encodes `children` as the updater does and decodes the record with jmt.
    fn round_trip(children: &[Option<ChildRef>; 16]) -> (ChildRef, Node, Vec<u8>) {
        let mut record = Vec::new();
        let leaf_count = encode_internal(&mut record, children);
        let node = Node::try_from_slice(&record).expect("jmt decodes the record");
        let hash = merkle(children, 0, 16);
        (
            ChildRef {
                hash,
                version: 0,
                leaf_count,
                leaf: false,
            },
            node,
            record,
        )
    }

    #[test]
    fn internal_records_and_hashes_match_jmt() {
        let layouts: [&[(usize, bool)]; 5] = [
            &[(0, true), (3, true), (8, true), (12, false)],
            &[(5, false)],
            &[(0, true), (15, true)],
            &[(7, true), (9, false)],
            &[
                (1, false),
                (2, false),
                (4, true),
                (6, true),
                (10, false),
                (11, true),
                (14, true),
            ],
        ];
        for layout in layouts {
            let mut children = [None; 16];
            for &(index, leaf) in layout {
                children[index] = Some(child(index as u8 + 1, leaf));
            }
            let (ours, node, record) = round_trip(&children);
            let Node::Internal(internal) = &node else {
                panic!("not internal")
            };
            assert_eq!(ours.hash, internal.hash::<Sha256>(), "{layout:?}");
            assert_eq!(ours.leaf_count, internal.leaf_count() as u64);
            assert_eq!(decode_internal(&record[1..]), Some(children));
            assert_eq!(borsh::to_vec(&node).expect("encode"), record);
        }
    }

    #[test]
    fn bad_internal_records_are_refused() {
        let mut children = [None; 16];
        children[2] = Some(child(3, true));
        children[9] = Some(child(4, false));
        let (_, _, record) = round_trip(&children);
        assert!(decode_internal(&record[1..record.len() - 1]).is_none());
        let mut extra = record.clone();
        extra.push(0);
        assert!(decode_internal(&extra[1..]).is_none());
        let mut wrong_count = record.clone();
        let at = wrong_count.len() - 16;
        wrong_count[at] = 7;
        assert!(decode_internal(&wrong_count[1..]).is_none());
    }

    #[test]
    fn nibbles_and_runs() {
        let hash = KeyHash([0xab; 32]);
        assert_eq!(
            (nibble(&hash, 0), nibble(&hash, 1), nibble(&hash, 63)),
            (0xa, 0xb, 0xb)
        );
        let hashes = [
            KeyHash([0x10; 32]),
            KeyHash([0x1f; 32]),
            KeyHash([0x20; 32]),
        ];
        let (bounds, count) = runs(&hashes, 0, |hash| hash);
        assert_eq!(&bounds[..count], &[(1, 0, 2), (2, 2, 3)]);
    }
}
