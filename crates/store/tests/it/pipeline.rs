//! `prepare_after`: preparing a block on top of a parent that is not committed yet gives the
//! same roots, nodes and state as preparing it after the parent's commit.

use poi_store::{StoreError, StoreOptions, verify_proof};
use proptest::prelude::*;

use crate::{Writes, block, commit, temp_store, writes};

fn batch_writes(batch: &[(u8, Option<Vec<u8>>)]) -> Writes {
    batch
        .iter()
        .map(|(key, value)| (vec![b'k', key % 4, *key], value.clone()))
        .collect()
}

fn batches() -> impl Strategy<Value = Vec<Vec<(u8, Option<Vec<u8>>)>>> {
    let value = prop::option::weighted(0.7, prop::collection::vec(any::<u8>(), 0..6));
    let batch = prop::collection::vec((0u8..40, value), 0..20);
    prop::collection::vec(batch, 2..8)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    /// Each block is prepared on its uncommitted parent, then the parent is committed, as a
    /// pipelined node does; the roots at every height equal a store that commits in sequence,
    /// whether or not the parent's commit landed before the child was prepared.
    #[test]
    fn pipelined_prepares_match_sequential_commits(
        batches in batches(),
        landed_first in prop::collection::vec(any::<bool>(), 8),
        history in 1u64..4,
    ) {
        let options = StoreOptions { history_heights: history, prune_interval_heights: 1, ..StoreOptions::default() };
        let (_a, _, sequential) = temp_store(options);
        let (_b, _, pipelined) = temp_store(options);
        let mut in_flight = None;
        for (height, batch) in (0u64..).zip(&batches) {
            let writes = batch_writes(batch);
            let expected = commit(&sequential, height, &writes);
            let prepared = match in_flight.take() {
                None => pipelined.prepare(height, &writes).expect("prepare"),
                Some(parent) => {
                    let landed = landed_first[height as usize % landed_first.len()];
                    if landed {
                        pipelined.commit(&parent, block(height - 1, 0)).expect("commit parent");
                    }
                    let child = pipelined.prepare_after(&parent, height, &writes).expect("prepare after");
                    if !landed {
                        pipelined.commit(&parent, block(height - 1, 0)).expect("commit parent");
                    }
                    child
                }
            };
            prop_assert_eq!(prepared.state_root(), expected.state_root);
            in_flight = Some(prepared);
        }
        let last = batches.len() as u64 - 1;
        let committed = pipelined.commit(&in_flight.expect("last block"), block(last, 0)).expect("commit last");
        prop_assert_eq!(Some(committed.state_root), sequential.latest().map(|c| c.state_root));
        // Same flat state and provable values at the retained heights.
        for key in 0u8..40 {
            let key = vec![b'k', key % 4, key];
            prop_assert_eq!(pipelined.get(&key).expect("get"), sequential.get(&key).expect("get"));
            let (value, proof) = pipelined.get_with_proof(&key, last).expect("proof");
            prop_assert!(verify_proof(committed.state_root, &key, value.as_deref(), &proof).is_ok());
        }
    }
}

#[test]
fn a_child_commits_only_after_its_parent() {
    let (_dir, _, store) = temp_store(StoreOptions::default());
    commit(&store, 0, &writes(&[("a", Some("1"))]));
    let parent = store
        .prepare(1, &writes(&[("b", Some("2"))]))
        .expect("prepare");
    let child = store
        .prepare_after(&parent, 2, &writes(&[("c", Some("3"))]))
        .expect("prepare after");
    let refused = store.commit(&child, block(2, 0));
    assert!(
        matches!(
            refused,
            Err(StoreError::UnexpectedHeight { .. } | StoreError::StalePrepared { .. })
        ),
        "{refused:?}"
    );
    assert_eq!(store.latest().map(|c| c.height), Some(0));
    store.commit(&parent, block(1, 0)).expect("parent");
    let committed = store.commit(&child, block(2, 0)).expect("child");
    assert_eq!(committed.state_root, child.state_root());
    assert_eq!(store.get(b"c").expect("get"), Some(b"3".to_vec()));
}

#[test]
fn preparing_after_a_parent_off_the_latest_state_is_refused() {
    let (_dir, _, store) = temp_store(StoreOptions::default());
    commit(&store, 0, &writes(&[("a", Some("1"))]));
    let loser = store
        .prepare(1, &writes(&[("a", Some("666"))]))
        .expect("prepare");
    commit(&store, 1, &writes(&[("b", Some("2"))]));
    let refused = store.prepare_after(&loser, 2, &writes(&[("c", Some("3"))]));
    assert!(
        matches!(
            refused,
            Err(StoreError::StalePrepared {
                prepared: 2,
                latest: Some(1)
            })
        ),
        "{refused:?}"
    );
    let wrong_height = store.prepare(2, &writes(&[])).expect("prepare");
    let refused = store.prepare_after(&wrong_height, 4, &writes(&[]));
    assert!(
        matches!(
            refused,
            Err(StoreError::UnexpectedHeight {
                expected: 3,
                got: 4
            })
        ),
        "{refused:?}"
    );
}
