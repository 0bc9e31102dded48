//! A Merkle tree over step digests, shaped like RFC 6962 (Certificate Transparency).
//!
//! # Format
//!
//! ```text
//! leaf(i, d)  = blake3( 0x00 | i u64 LE | d [32] )   the leaf index is committed
//! node(l, r)  = blake3( 0x01 | l [32] | r [32] )
//! MTH([])     = blake3( "" )
//! MTH([d0])   = leaf(0, d0)
//! MTH(D[0:n]) = node( MTH(D[0:k]), MTH(D[k:n]) ),  k = largest power of two < n
//! root(D)     = blake3( 0x02 | n u64 LE | MTH(D) )   the leaf count is committed
//! ```
//!
//! The split at the largest power of two (rather than promoting a lone node) means a tree
//! of `n` leaves is the same tree whether built at once or appended leaf by leaf, each
//! subtree on the left is perfect, and the audit path of a leaf has at most
//! `ceil(log2 n)` siblings. The distinct prefixes keep a leaf from ever hashing like a node;
//! the index in the leaf keeps one digest at two positions from sharing a leaf hash. A bare
//! RFC 6962 head does not commit to its size (the 3-leaf tree's head is also what a proof for
//! leaf 0 of a claimed 4-leaf tree computes), so the root wraps the head with the leaf count:
//! a proof then verifies only for the true number of committed steps.
//!
//! Invariants: [`MerkleBuilder::root`] equals [`merkle_root`] of the digests pushed so far,
//! and every proof [`MerkleBuilder::proof`] returns verifies against that root.

use serde::{Deserialize, Serialize};

use super::digest::Digest;
use super::error::{CommitError, Result};

/// First byte of a leaf hash's input.
pub const LEAF_PREFIX: u8 = 0x00;
/// First byte of an interior node hash's input.
pub const NODE_PREFIX: u8 = 0x01;
/// First byte of the root's input, which binds the head to the leaf count.
pub const ROOT_PREFIX: u8 = 0x02;
/// Most siblings a proof may carry: a tree of at most 2^64 leaves is at most 64 deep.
pub const PROOF_SIBLINGS_MAX: usize = 64;

/// The hash of leaf `index` holding `digest`.
pub fn leaf_hash(index: u64, digest: &Digest) -> Digest {
    let mut hasher = blake3::Hasher::new();
    hasher.update(&[LEAF_PREFIX]);
    hasher.update(&index.to_le_bytes());
    hasher.update(&digest.0);
    hasher.finalize().into()
}

/// The hash of an interior node.
pub fn node_hash(left: &Digest, right: &Digest) -> Digest {
    let mut hasher = blake3::Hasher::new();
    hasher.update(&[NODE_PREFIX]);
    hasher.update(&left.0);
    hasher.update(&right.0);
    hasher.finalize().into()
}

/// The head (MTH) of a tree with no leaves: BLAKE3 of the empty string, as in RFC 6962.
fn empty_head() -> Digest {
    Digest::of(&[])
}

/// The root of a tree with no leaves.
pub fn empty_root() -> Digest {
    root_of_head(0, &empty_head())
}

/// The committed root: the tree head bound to the number of leaves under it.
fn root_of_head(leaf_count: u64, head: &Digest) -> Digest {
    let mut hasher = blake3::Hasher::new();
    hasher.update(&[ROOT_PREFIX]);
    hasher.update(&leaf_count.to_le_bytes());
    hasher.update(&head.0);
    hasher.finalize().into()
}

/// The largest power of two strictly below `n` (`n >= 2`).
fn split_point(n: u64) -> u64 {
    debug_assert!(n >= 2);
    1u64 << (63 - (n - 1).leading_zeros())
}

/// MTH over already-hashed leaves. Recursion depth is at most 64.
fn subtree_root(leaf_hashes: &[Digest]) -> Digest {
    match leaf_hashes.len() {
        0 => empty_head(),
        1 => leaf_hashes[0],
        n => {
            let k = split_point(n as u64) as usize;
            node_hash(
                &subtree_root(&leaf_hashes[..k]),
                &subtree_root(&leaf_hashes[k..]),
            )
        }
    }
}

/// The audit path of `index` among `leaf_hashes`, leaf-side sibling first.
fn audit_path(leaf_hashes: &[Digest], index: u64) -> Vec<Digest> {
    let mut path = Vec::new();
    let (mut lo, mut hi, mut index) = (0usize, leaf_hashes.len(), index as usize);
    // Walk down from the root, then reverse so the path reads leaf to root.
    while hi - lo > 1 {
        let k = split_point((hi - lo) as u64) as usize;
        if index < k {
            path.push(subtree_root(&leaf_hashes[lo + k..hi]));
            hi = lo + k;
        } else {
            path.push(subtree_root(&leaf_hashes[lo..lo + k]));
            lo += k;
            index -= k;
        }
    }
    path.reverse();
    path
}

/// The number of siblings on the audit path of `index` in a tree of `leaf_count` leaves.
pub fn path_len(mut index: u64, mut leaf_count: u64) -> u64 {
    let mut len = 0;
    while leaf_count > 1 {
        let k = split_point(leaf_count);
        if index < k {
            leaf_count = k;
        } else {
            index -= k;
            leaf_count -= k;
        }
        len += 1;
    }
    len
}

fn hash_leaves(digests: &[Digest]) -> Vec<Digest> {
    digests
        .iter()
        .zip(0u64..)
        .map(|(d, i)| leaf_hash(i, d))
        .collect()
}

/// The root of the tree whose leaf `i` holds `digests[i]`.
pub fn merkle_root(digests: &[Digest]) -> Digest {
    root_of_head(digests.len() as u64, &subtree_root(&hash_leaves(digests)))
}

/// The inclusion proof of leaf `index` in the tree over `digests`.
pub fn merkle_proof(digests: &[Digest], index: u64) -> Result<MerkleProof> {
    MerkleProof::from_leaf_hashes(&hash_leaves(digests), index)
}

/// Proof that a digest is leaf `index` of a tree with `leaf_count` leaves: the sibling
/// hashes from the leaf up to the root.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MerkleProof {
    /// Position of the leaf, from 0.
    pub index: u64,
    /// Number of leaves in the tree the proof is for.
    pub leaf_count: u64,
    /// Sibling hashes, the leaf's own sibling first.
    pub siblings: Vec<Digest>,
}

impl MerkleProof {
    fn from_leaf_hashes(leaf_hashes: &[Digest], index: u64) -> Result<Self> {
        let leaf_count = leaf_hashes.len() as u64;
        if index >= leaf_count {
            return Err(CommitError::ProofIndexOutOfRange { index, leaf_count });
        }
        let siblings = audit_path(leaf_hashes, index);
        assert_eq!(siblings.len() as u64, path_len(index, leaf_count));
        Ok(Self {
            index,
            leaf_count,
            siblings,
        })
    }

    /// The root this proof computes for `digest` at its index (RFC 9162, 2.1.3.2, with
    /// index-committing leaves). Errors if the index or path length is impossible.
    pub fn root_for(&self, digest: &Digest) -> Result<Digest> {
        let (index, leaf_count) = (self.index, self.leaf_count);
        if index >= leaf_count {
            return Err(CommitError::ProofIndexOutOfRange { index, leaf_count });
        }
        let expected = path_len(index, leaf_count);
        let actual = self.siblings.len() as u64;
        if actual != expected || self.siblings.len() > PROOF_SIBLINGS_MAX {
            return Err(CommitError::ProofLength { expected, actual });
        }
        let (mut fnode, mut snode) = (index, leaf_count - 1);
        let mut running = leaf_hash(index, digest);
        for sibling in &self.siblings {
            // The length check above makes the tree shape consistent with the path.
            assert!(snode > 0, "path longer than the tree is deep");
            if fnode & 1 == 1 || fnode == snode {
                running = node_hash(sibling, &running);
                // A right-edge node with no right sibling rises until it is a right child.
                while fnode & 1 == 0 && fnode != 0 {
                    fnode >>= 1;
                    snode >>= 1;
                }
            } else {
                running = node_hash(&running, sibling);
            }
            fnode >>= 1;
            snode >>= 1;
        }
        assert_eq!(snode, 0, "path shorter than the tree is deep");
        Ok(root_of_head(leaf_count, &running))
    }

    /// Checks that `digest` is leaf [`Self::index`] of the tree with root `root`.
    pub fn verify(&self, digest: &Digest, root: &Digest) -> Result<()> {
        let computed = self.root_for(digest)?;
        if computed != *root {
            return Err(CommitError::ProofRootMismatch {
                root: *root,
                computed,
            });
        }
        Ok(())
    }
}

/// Builds the tree as training runs: push one step digest at a time, read the root at any
/// point. Keeps the leaf hashes (so it can prove any leaf later) and the roots of the
/// perfect subtrees ("peaks") along the right edge, so [`Self::root`] costs O(log n).
#[derive(Debug, Clone, Default)]
pub struct MerkleBuilder {
    leaf_hashes: Vec<Digest>,
    /// Perfect subtree roots with their heights, strictly decreasing heights left to right.
    peaks: Vec<(Digest, u32)>,
}

impl MerkleBuilder {
    /// An empty tree.
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of leaves pushed.
    pub fn len(&self) -> u64 {
        self.leaf_hashes.len() as u64
    }

    /// Whether no leaf has been pushed.
    pub fn is_empty(&self) -> bool {
        self.leaf_hashes.is_empty()
    }

    /// Appends `digest` as the next leaf; returns its index.
    pub fn push(&mut self, digest: &Digest) -> u64 {
        let index = self.len();
        let leaf = leaf_hash(index, digest);
        self.leaf_hashes.push(leaf);
        self.peaks.push((leaf, 0));
        // Merge equal-height peaks: the binary carry of incrementing the leaf count.
        while let [.., (left, hl), (right, hr)] = self.peaks[..] {
            if hl != hr {
                break;
            }
            self.peaks.truncate(self.peaks.len() - 2);
            self.peaks.push((node_hash(&left, &right), hl + 1));
        }
        assert_eq!(self.peaks.len() as u32, self.len().count_ones());
        index
    }

    /// The root over every leaf pushed so far.
    pub fn root(&self) -> Digest {
        // RFC 6962 trees are the right fold of their peaks, largest (leftmost) outermost.
        let mut peaks = self.peaks.iter().rev();
        let Some(&(mut head, _)) = peaks.next() else {
            return empty_root();
        };
        for (peak, _) in peaks {
            head = node_hash(peak, &head);
        }
        root_of_head(self.len(), &head)
    }

    /// The inclusion proof of leaf `index` in the current tree.
    pub fn proof(&self, index: u64) -> Result<MerkleProof> {
        MerkleProof::from_leaf_hashes(&self.leaf_hashes, index)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn digests(n: u64) -> Vec<Digest> {
        (0..n).map(|i| Digest::of(&i.to_le_bytes())).collect()
    }

    #[test]
    fn builder_matches_batch_root_for_every_size() {
        let all = digests(70);
        let mut builder = MerkleBuilder::new();
        assert_eq!(builder.root(), empty_root());
        for (i, d) in all.iter().enumerate() {
            builder.push(d);
            assert_eq!(builder.root(), merkle_root(&all[..=i]));
        }
    }

    #[test]
    fn small_trees_have_the_documented_shape() {
        let d = digests(3);
        let l: Vec<Digest> = d.iter().zip(0..).map(|(d, i)| leaf_hash(i, d)).collect();
        assert_eq!(merkle_root(&d[..1]), root_of_head(1, &l[0]));
        let head = node_hash(&node_hash(&l[0], &l[1]), &l[2]);
        assert_eq!(merkle_root(&d), root_of_head(3, &head));
    }

    #[test]
    fn path_lengths() {
        assert_eq!(path_len(0, 1), 0);
        assert_eq!(path_len(6, 7), 2);
        assert_eq!(path_len(0, 7), 3);
        assert_eq!(path_len(5, 8), 3);
    }
}
