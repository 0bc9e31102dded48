//! Proofs verify exactly the committed state.

use poi_store::{StateProof, StoreError, StoreOptions, verify_proof};

use crate::{commit, temp_store, writes};

#[test]
fn proofs_verify_present_and_absent_keys() {
    let (_dir, _, store) = temp_store(StoreOptions::default());
    let pairs: Vec<(String, String)> = (0..300)
        .map(|i| (format!("acct/{i}"), format!("balance {i}")))
        .collect();
    let block: crate::Writes = pairs
        .iter()
        .map(|(key, value)| (key.clone().into_bytes(), Some(value.clone().into_bytes())))
        .collect();
    let root = commit(&store, 0, &block).state_root;
    for (key, value) in pairs.iter().step_by(7) {
        let (found, proof) = store.get_with_proof(key.as_bytes(), 0).expect("proof");
        assert_eq!(found.as_deref(), Some(value.as_bytes()));
        verify_proof(root, key.as_bytes(), Some(value.as_bytes()), &proof).expect("present");
    }
    for key in ["acct/300", "acct/-1", "", "other"] {
        let (found, proof) = store.get_with_proof(key.as_bytes(), 0).expect("proof");
        assert_eq!(found, None);
        verify_proof(root, key.as_bytes(), None, &proof).expect("absent");
        let wrong = verify_proof(root, key.as_bytes(), Some(b"x"), &proof);
        assert!(matches!(wrong, Err(StoreError::ProofInvalid { .. })));
    }
}

#[test]
fn proofs_fail_for_wrong_value_root_or_key() {
    let (_dir, _, store) = temp_store(StoreOptions::default());
    let root = commit(&store, 0, &writes(&[("a", Some("1")), ("b", Some("2"))])).state_root;
    let (value, proof) = store.get_with_proof(b"a", 0).expect("proof");
    assert_eq!(value.as_deref(), Some(&b"1"[..]));
    verify_proof(root, b"a", Some(b"1"), &proof).expect("right value");
    let invalid = |result| matches!(result, Err(StoreError::ProofInvalid { .. }));
    assert!(invalid(verify_proof(root, b"a", Some(b"2"), &proof)));
    assert!(invalid(verify_proof(root, b"a", None, &proof)));
    assert!(invalid(verify_proof(root, b"b", Some(b"1"), &proof)));
    let mut other_root = root;
    other_root[0] ^= 1;
    assert!(invalid(verify_proof(other_root, b"a", Some(b"1"), &proof)));
}

#[test]
fn proof_bytes_round_trip() {
    let (_dir, _, store) = temp_store(StoreOptions::default());
    let root = commit(&store, 0, &writes(&[("a", Some("1")), ("b", Some("2"))])).state_root;
    let (_, proof) = store.get_with_proof(b"a", 0).expect("proof");
    let bytes = proof.to_bytes();
    let decoded = StateProof::from_bytes(&bytes).expect("decode");
    assert_eq!(decoded, proof);
    verify_proof(root, b"a", Some(b"1"), &decoded).expect("decoded proof verifies");
    assert!(hex::encode(&bytes).len() == bytes.len() * 2);
    let mut trailing = bytes.clone();
    trailing.push(0);
    assert!(matches!(
        StateProof::from_bytes(&trailing),
        Err(StoreError::ProofDecode(_))
    ));
    assert!(matches!(
        StateProof::from_bytes(&[0xff; 3]),
        Err(StoreError::ProofDecode(_))
    ));
    assert!(matches!(
        StateProof::from_bytes(&[1, 0xff, 0xff, 0xff, 0xff]),
        Err(StoreError::ProofDecode(_))
    ));
}

#[test]
fn historic_proofs_show_historic_values() {
    let (_dir, _, store) = temp_store(StoreOptions::default());
    let first = commit(&store, 0, &writes(&[("a", Some("1")), ("b", Some("2"))]));
    let second = commit(&store, 1, &writes(&[("a", Some("9")), ("b", None)]));
    let (old_a, proof) = store.get_with_proof(b"a", 0).expect("proof");
    assert_eq!(old_a.as_deref(), Some(&b"1"[..]));
    verify_proof(first.state_root, b"a", Some(b"1"), &proof).expect("old value");
    let (old_b, proof) = store.get_with_proof(b"b", 0).expect("proof");
    verify_proof(first.state_root, b"b", old_b.as_deref(), &proof).expect("old b");
    let (new_b, proof) = store.get_with_proof(b"b", 1).expect("proof");
    assert_eq!(new_b, None);
    verify_proof(second.state_root, b"b", None, &proof).expect("deleted b");
    assert_eq!(store.get(b"a").expect("get").as_deref(), Some(&b"9"[..]));
}

#[test]
fn proofs_above_latest_are_refused() {
    let (_dir, _, store) = temp_store(StoreOptions::default());
    let before = store.get_with_proof(b"a", 0);
    assert!(matches!(
        before,
        Err(StoreError::NotCommitted {
            height: 0,
            latest: None
        })
    ));
    commit(&store, 0, &writes(&[("a", Some("1"))]));
    let above = store.get_with_proof(b"a", 1);
    assert!(matches!(
        above,
        Err(StoreError::NotCommitted {
            height: 1,
            latest: Some(0)
        })
    ));
}
