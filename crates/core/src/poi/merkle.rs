//! Core's own copy of repops' commitment hashing (`repops::commit::merkle` and
//! `repops::commit::digest`), so the chain verifies what providers commit without depending on
//! repops. The formats must stay byte for byte those of repops; the tests in
//! `tests/it/poi.rs` pin the two together on real training runs and random trees.
//!
//! # Format (every integer little endian)
//!
//! ```text
//! leaf(i, d)  = blake3( 0x00 | i u64 | d [32] )
//! node(l, r)  = blake3( 0x01 | l [32] | r [32] )
//! MTH([])     = blake3( "" ),  MTH([d0]) = leaf(0, d0)
//! MTH(D[0:n]) = node( MTH(D[0:k]), MTH(D[k:n]) ),  k = largest power of two < n
//! root(D)     = blake3( 0x02 | n u64 | MTH(D) )
//! step_digest = blake3( 18 u64 | "poi/repops/step/v1" | job_spec_hash [32] | step u64
//!                     | params_digest [32] | opt_digest [32] )
//! ```
//!
//! Verification never panics: an impossible index or path length is an error.

/// A 32-byte BLAKE3 digest.
pub type Digest = [u8; 32];

/// First byte of a leaf hash's input.
pub const LEAF_PREFIX: u8 = 0x00;
/// First byte of an interior node hash's input.
pub const NODE_PREFIX: u8 = 0x01;
/// First byte of the root's input, which binds the head to the leaf count.
pub const ROOT_PREFIX: u8 = 0x02;
/// Domain tag of a training step digest (repops' `STEP_DOMAIN`).
pub const STEP_DOMAIN: &str = "poi/repops/step/v1";
/// Most siblings a final-leaf proof may carry. The path of leaf `S` in a tree of `S + 1`
/// leaves has `popcount(S)` siblings, at most 24 for `S <= 2^24` ([`super::params::STEPS_CAP`]).
pub const FINAL_PROOF_SIBLINGS_MAX: usize = 24;

/// Why a proof does not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProofError {
    /// The leaf index is not below the leaf count.
    #[error("leaf {index} is outside a tree of {leaf_count} leaves")]
    IndexOutOfRange {
        /// Leaf index.
        index: u64,
        /// Leaves in the tree.
        leaf_count: u64,
    },
    /// The path has the wrong number of siblings for the tree's shape.
    #[error("the path has {actual} siblings, the tree needs {expected}")]
    Length {
        /// Siblings the shape needs.
        expected: u64,
        /// Siblings given.
        actual: u64,
    },
    /// The path computes another root.
    #[error("the path computes root {computed}")]
    RootMismatch {
        /// The root computed, hex.
        computed: String,
    },
}

/// The hash of leaf `index` holding `digest`.
pub fn leaf_hash(index: u64, digest: &Digest) -> Digest {
    let mut hasher = blake3::Hasher::new();
    hasher.update(&[LEAF_PREFIX]);
    hasher.update(&index.to_le_bytes());
    hasher.update(digest);
    *hasher.finalize().as_bytes()
}

/// The hash of an interior node.
pub fn node_hash(left: &Digest, right: &Digest) -> Digest {
    let mut hasher = blake3::Hasher::new();
    hasher.update(&[NODE_PREFIX]);
    hasher.update(left);
    hasher.update(right);
    *hasher.finalize().as_bytes()
}

/// The committed root: the tree head bound to the number of leaves under it.
pub fn root_of_head(leaf_count: u64, head: &Digest) -> Digest {
    let mut hasher = blake3::Hasher::new();
    hasher.update(&[ROOT_PREFIX]);
    hasher.update(&leaf_count.to_le_bytes());
    hasher.update(head);
    *hasher.finalize().as_bytes()
}

/// The largest power of two strictly below `n`, for `n >= 2` (1 otherwise).
fn split_point(n: u64) -> u64 {
    if n < 2 {
        return 1;
    }
    1u64 << (63 - (n - 1).leading_zeros())
}

fn subtree_root(leaf_hashes: &[Digest]) -> Digest {
    match leaf_hashes {
        [] => *blake3::hash(&[]).as_bytes(),
        [one] => *one,
        _ => {
            let k = split_point(leaf_hashes.len() as u64) as usize;
            node_hash(
                &subtree_root(&leaf_hashes[..k]),
                &subtree_root(&leaf_hashes[k..]),
            )
        }
    }
}

/// The root of the tree whose leaf `i` holds `digests[i]` (recursion depth at most 64).
pub fn merkle_root(digests: &[Digest]) -> Digest {
    let leaves: Vec<Digest> = digests
        .iter()
        .zip(0u64..)
        .map(|(d, i)| leaf_hash(i, d))
        .collect();
    root_of_head(digests.len() as u64, &subtree_root(&leaves))
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

/// The root that `siblings` (leaf side first) compute for `digest` as leaf `index` of a tree
/// of `leaf_count` leaves (RFC 9162, 2.1.3.2, with index-committing leaves).
pub fn root_for(
    index: u64,
    leaf_count: u64,
    siblings: &[Digest],
    digest: &Digest,
) -> Result<Digest, ProofError> {
    if index >= leaf_count {
        return Err(ProofError::IndexOutOfRange { index, leaf_count });
    }
    let expected = path_len(index, leaf_count);
    let actual = siblings.len() as u64;
    if actual != expected {
        return Err(ProofError::Length { expected, actual });
    }
    let (mut fnode, mut snode) = (index, leaf_count - 1);
    let mut running = leaf_hash(index, digest);
    for sibling in siblings {
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
    // The length check makes the path match the tree's shape, so this cannot fail; it is
    // checked rather than assumed.
    if snode != 0 {
        return Err(ProofError::Length { expected, actual });
    }
    Ok(root_of_head(leaf_count, &running))
}

/// Checks that `digest` is leaf `index` of the `leaf_count`-leaf tree with root `root`.
pub fn verify(
    index: u64,
    leaf_count: u64,
    siblings: &[Digest],
    digest: &Digest,
    root: &Digest,
) -> Result<(), ProofError> {
    let computed = root_for(index, leaf_count, siblings, digest)?;
    if computed != *root {
        return Err(ProofError::RootMismatch {
            computed: hex::encode(computed),
        });
    }
    Ok(())
}

/// repops' step digest from the two group digests: the digest of the training state after
/// step `step` of the job whose spec hashes to `job_spec_hash`.
pub fn step_digest(
    job_spec_hash: &Digest,
    step: u64,
    params_digest: &Digest,
    opt_digest: &Digest,
) -> Digest {
    let mut hasher = blake3::Hasher::new();
    hasher.update(&(STEP_DOMAIN.len() as u64).to_le_bytes());
    hasher.update(STEP_DOMAIN.as_bytes());
    hasher.update(job_spec_hash);
    hasher.update(&step.to_le_bytes());
    hasher.update(params_digest);
    hasher.update(opt_digest);
    *hasher.finalize().as_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn digests(n: u64) -> Vec<Digest> {
        (0..n)
            .map(|i| *blake3::hash(&i.to_le_bytes()).as_bytes())
            .collect()
    }

    #[test]
    fn final_leaf_paths_fit_the_bound() {
        // path_len(S, S + 1) = popcount(S).
        for s in [0u64, 1, 2, 3, 7, 255, 300, (1 << 24) - 1, 1 << 24] {
            assert_eq!(path_len(s, s + 1), u64::from(s.count_ones()));
            assert!(path_len(s, s + 1) <= FINAL_PROOF_SIBLINGS_MAX as u64);
        }
    }

    #[test]
    fn impossible_shapes_are_errors_not_panics() {
        let d = digests(3);
        let root = merkle_root(&d);
        assert!(matches!(
            verify(3, 3, &[], &d[0], &root),
            Err(ProofError::IndexOutOfRange { .. })
        ));
        assert!(matches!(
            verify(0, 3, &[[0; 32]; 5], &d[0], &root),
            Err(ProofError::Length { .. })
        ));
        assert!(verify(0, 0, &[], &d[0], &root).is_err());
        assert!(verify(u64::MAX, u64::MAX, &[], &d[0], &root).is_err());
    }
}
