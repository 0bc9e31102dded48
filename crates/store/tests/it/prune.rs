//! Old versions are pruned; the retained window stays provable.

use poi_store::{StoreError, StoreOptions, verify_proof};

use crate::{commit, temp_store, writes};

#[test]
fn pruning_drops_old_heights_and_keeps_the_window() {
    let options = StoreOptions {
        history_heights: 3,
        prune_interval_heights: 1,
        ..StoreOptions::default()
    };
    let (_dir, _, store) = temp_store(options);
    let mut roots = Vec::new();
    for height in 0..10u64 {
        let value = format!("v{height}");
        let mut block = writes(&[("counter", Some(value.as_str()))]);
        if height % 3 == 0 {
            block.insert(format!("k{height}").into_bytes(), Some(vec![1]));
            block.insert(format!("k{}", height.saturating_sub(3)).into_bytes(), None);
        }
        roots.push(commit(&store, height, &block).state_root);
    }
    assert_eq!(store.oldest_provable(), Some(7));
    for height in 0..7u64 {
        let refused = store.get_with_proof(b"counter", height);
        assert!(
            matches!(refused, Err(StoreError::Pruned { oldest: 7, .. })),
            "{refused:?}"
        );
        // Roots of pruned heights stay known.
        assert_eq!(
            store.root_at(height).expect("root"),
            Some(roots[height as usize])
        );
    }
    for height in 7..10u64 {
        let (value, proof) = store.get_with_proof(b"counter", height).expect("proof");
        let expected = format!("v{height}");
        assert_eq!(value.as_deref(), Some(expected.as_bytes()));
        verify_proof(roots[height as usize], b"counter", value.as_deref(), &proof).expect("ok");
        let (absent, proof) = store.get_with_proof(b"k3", height).expect("proof");
        assert_eq!(absent, None);
        verify_proof(roots[height as usize], b"k3", None, &proof).expect("absent");
        let (present, proof) = store.get_with_proof(b"k9", height).expect("proof");
        let root = roots[height as usize];
        verify_proof(root, b"k9", present.as_deref(), &proof).expect("k9");
    }
}

#[test]
fn history_of_one_keeps_only_latest() {
    let options = StoreOptions {
        history_heights: 1,
        prune_interval_heights: 1,
        ..StoreOptions::default()
    };
    let (_dir, _, store) = temp_store(options);
    for height in 0..5u64 {
        let value = format!("{height}");
        commit(&store, height, &writes(&[("a", Some(value.as_str()))]));
        assert_eq!(store.oldest_provable(), Some(height));
    }
    assert!(matches!(
        store.get_with_proof(b"a", 3),
        Err(StoreError::Pruned { .. })
    ));
    let (value, _) = store.get_with_proof(b"a", 4).expect("latest");
    assert_eq!(value.as_deref(), Some(&b"4"[..]));
}

#[test]
fn pruning_waits_for_the_interval() {
    let options = StoreOptions {
        history_heights: 3,
        prune_interval_heights: 4,
        ..StoreOptions::default()
    };
    let (_dir, _, store) = temp_store(options);
    let mut oldest = Vec::new();
    for height in 0..12u64 {
        let value = format!("{height}");
        commit(&store, height, &writes(&[("a", Some(value.as_str()))]));
        oldest.push(store.oldest_provable().expect("oldest"));
    }
    // The window [h - 2, h] starts 4 past the oldest at heights 6 and 10.
    assert_eq!(oldest, [0, 0, 0, 0, 0, 0, 4, 4, 4, 4, 8, 8]);
    assert!(matches!(
        store.get_with_proof(b"a", 7),
        Err(StoreError::Pruned { oldest: 8, .. })
    ));
    let (value, _) = store.get_with_proof(b"a", 8).expect("oldest provable");
    assert_eq!(value.as_deref(), Some(&b"8"[..]));
}
