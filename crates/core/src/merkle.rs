//! Binary Merkle roots over ordered lists (transactions, receipts), hashed with blake3.
//!
//! `leaf = blake3(0x00 | data)`, `node = blake3(0x01 | left | right)`; an odd node at the end of a
//! level is promoted unchanged. The domain bytes keep a leaf from ever posing as a node. The root
//! of an empty list is `blake3(0x02)`.

/// Root of `leaves` (each already encoded).
pub fn root<T: AsRef<[u8]>>(leaves: &[T]) -> [u8; 32] {
    if leaves.is_empty() {
        return *blake3::hash(&[2]).as_bytes();
    }
    let mut level: Vec<[u8; 32]> = leaves
        .iter()
        .map(|leaf| {
            let mut h = blake3::Hasher::new();
            h.update(&[0]);
            h.update(leaf.as_ref());
            *h.finalize().as_bytes()
        })
        .collect();
    while level.len() > 1 {
        level = level
            .chunks(2)
            .map(|pair| match pair {
                [left, right] => {
                    let mut h = blake3::Hasher::new();
                    h.update(&[1]);
                    h.update(left);
                    h.update(right);
                    *h.finalize().as_bytes()
                }
                [single] => *single,
                _ => unreachable!("chunks(2) yields one or two items"),
            })
            .collect();
    }
    level[0]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roots_depend_on_order_and_content() {
        let a = root(&[b"a".as_slice(), b"b"]);
        assert_ne!(a, root(&[b"b".as_slice(), b"a"]));
        assert_ne!(a, root(&[b"a".as_slice(), b"b", b"c"]));
        assert_ne!(root::<&[u8]>(&[]), root(&[b"".as_slice()]));
        assert_eq!(a, root(&[b"a".as_slice(), b"b"]));
    }
}
