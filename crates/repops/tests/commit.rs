//! Step digests, Merkle proofs and checkpoints: round trips, tamper detection, golden values.

use poi_repops::commit::{
    CheckpointProof, CommitError, Digest, MerkleBuilder, MerkleProof, NamedTensor,
    checkpoint_bytes, decode_checkpoint, merkle_proof, merkle_root, read_checkpoint, step_digest,
    tensors_digest, write_checkpoint,
};
use proptest::prelude::*;

fn leaves(n: u64, salt: u8) -> Vec<Digest> {
    (0..n)
        .map(|i| Digest::of(&[&i.to_le_bytes()[..], &[salt]].concat()))
        .collect()
}

/// A small model: two parameter tensors and their momentum buffers.
struct State {
    w: Vec<f32>,
    b: Vec<f32>,
    mw: Vec<f32>,
    mb: Vec<f32>,
}

impl State {
    fn new(seed: f32) -> Self {
        let f = |n: usize, k: f32| (0..n).map(|i| (i as f32 + k) * seed - 1.5).collect();
        Self {
            w: f(6, 0.25),
            b: f(3, 7.0),
            mw: f(6, -3.0),
            mb: f(3, 0.5),
        }
    }
    fn params(&self) -> Vec<NamedTensor<'_>> {
        vec![
            NamedTensor::new("layer0.weight", &[2, 3], &self.w),
            NamedTensor::new("layer0.bias", &[3], &self.b),
        ]
    }
    fn opt(&self) -> Vec<NamedTensor<'_>> {
        vec![
            NamedTensor::new("layer0.weight.momentum", &[2, 3], &self.mw),
            NamedTensor::new("layer0.bias.momentum", &[3], &self.mb),
        ]
    }
}

const JOB: Digest = Digest([7; 32]);

#[test]
fn golden_digests_are_pinned() {
    let state = State::new(0.5);
    let digest = step_digest(&JOB, 42, &state.params(), &state.opt()).unwrap();
    assert_eq!(
        digest.to_hex(),
        "eba301f0a25275f67089454805ebb77d18bbc15bc29952e3bf0866b2b845e604"
    );
    assert_eq!(
        merkle_root(&leaves(7, 0)).to_hex(),
        "b5d3686cea8fee44d15498dd2c8b7556950d9cccc2a5ca31c9f2022b1b8d3598"
    );
    // The checkpoint file itself is byte-stable.
    let (bytes, _) = checkpoint_bytes(&JOB, 42, &state.params(), &state.opt()).unwrap();
    assert_eq!(
        Digest::of(&bytes).to_hex(),
        "0831eaef688494ae1eeee1a35bc83379dc8d8f56e5046c482c62df07d2294c84"
    );
}

#[test]
fn nan_payloads_hash_alike_and_every_element_matters() {
    let shape = [4];
    let quiet = [1.0, f32::NAN, 3.0, -0.0];
    let payload = [1.0, f32::from_bits(0xffc0_1234), 3.0, -0.0];
    let signalling = [1.0, f32::from_bits(0x7f80_0001), 3.0, -0.0];
    let d = |data: &[f32]| tensors_digest("t", &[NamedTensor::new("x", &shape, data)]).unwrap();
    assert_eq!(d(&quiet), d(&payload));
    assert_eq!(d(&quiet), d(&signalling));

    let base: Vec<f32> = (0..64).map(|i| i as f32 * 0.1).collect();
    let reference = d(&base[..4]);
    let base_digest = tensors_digest("t", &[NamedTensor::new("x", &[64], &base)]).unwrap();
    for i in 0..base.len() {
        let mut changed = base.clone();
        changed[i] = f32::from_bits(changed[i].to_bits() ^ 1);
        let digest = tensors_digest("t", &[NamedTensor::new("x", &[64], &changed)]).unwrap();
        assert_ne!(digest, base_digest, "element {i}");
    }
    // Signed zeros are distinct states.
    assert_ne!(d(&[1.0, 2.0, 3.0, 0.0]), d(&[1.0, 2.0, 3.0, -0.0]));
    assert_ne!(reference, base_digest);
}

#[test]
fn step_digest_covers_names_shapes_order_groups_step_and_job() {
    let state = State::new(0.5);
    let (params, opt) = (state.params(), state.opt());
    let base = step_digest(&JOB, 3, &params, &opt).unwrap();
    assert_eq!(base, step_digest(&JOB, 3, &params, &opt).unwrap());
    assert_ne!(base, step_digest(&JOB, 4, &params, &opt).unwrap());
    assert_ne!(
        base,
        step_digest(&Digest([8; 32]), 3, &params, &opt).unwrap()
    );
    let reversed: Vec<_> = params.iter().rev().copied().collect();
    assert_ne!(base, step_digest(&JOB, 3, &reversed, &opt).unwrap());
    let mut reshaped = params.clone();
    reshaped[0].shape = &[3, 2];
    assert_ne!(base, step_digest(&JOB, 3, &reshaped, &opt).unwrap());
    let mut renamed = params.clone();
    renamed[1].name = "layer0.bias2";
    assert_ne!(base, step_digest(&JOB, 3, &renamed, &opt).unwrap());
    let all: Vec<_> = params.iter().chain(&opt).copied().collect();
    assert_ne!(base, step_digest(&JOB, 3, &all, &[]).unwrap());
    let mut bad = params.clone();
    bad[0].shape = &[7];
    assert!(matches!(
        step_digest(&JOB, 3, &bad, &opt),
        Err(CommitError::ShapeMismatch { .. })
    ));
}

proptest! {
    #[test]
    fn every_leaf_proves_and_tampering_fails(n in 1u64..=40, salt in any::<u8>()) {
        let digests = leaves(n, salt);
        let root = merkle_root(&digests);
        let mut builder = MerkleBuilder::new();
        for d in &digests {
            builder.push(d);
        }
        prop_assert_eq!(builder.root(), root);
        let other_root = Digest::of(b"another root");
        for i in 0..n {
            let proof = merkle_proof(&digests, i).unwrap();
            prop_assert_eq!(&builder.proof(i).unwrap(), &proof);
            prop_assert!(proof.verify(&digests[i as usize], &root).is_ok());
            // A different digest at this index fails.
            prop_assert!(proof.verify(&Digest::of(b"forged"), &root).is_err());
            // Another leaf's digest under this proof fails (the index is committed).
            let other = digests[((i + 1) % n) as usize];
            if n > 1 {
                prop_assert!(proof.verify(&other, &root).is_err());
            }
            prop_assert!(proof.verify(&digests[i as usize], &other_root).is_err());
            // Moving the proof to another index or tree size fails.
            for index in [i + 1, i.wrapping_sub(1), n] {
                let moved = MerkleProof { index, ..proof.clone() };
                prop_assert!(moved.verify(&digests[i as usize], &root).is_err());
            }
            let grown = MerkleProof { leaf_count: n + 1, ..proof.clone() };
            prop_assert!(grown.verify(&digests[i as usize], &root).is_err());
            if let Some(first) = proof.siblings.first() {
                let mut flipped = proof.clone();
                flipped.siblings[0] = Digest::of(first.as_bytes());
                prop_assert!(flipped.verify(&digests[i as usize], &root).is_err());
                let mut short = proof.clone();
                short.siblings.pop();
                let short_err = short.verify(&digests[i as usize], &root);
                prop_assert!(matches!(short_err, Err(CommitError::ProofLength { .. })), "short proof");
            }
        }
        prop_assert!(merkle_proof(&digests, n).is_err());
    }
}

#[test]
fn checkpoint_round_trips_through_a_file_and_safetensors() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("step-9.safetensors");
    let state = State::new(0.5);
    let digest = write_checkpoint(&path, &JOB, 9, &state.params(), &state.opt()).unwrap();
    assert_eq!(
        digest,
        step_digest(&JOB, 9, &state.params(), &state.opt()).unwrap()
    );

    let loaded = read_checkpoint(&path, Some(&digest)).unwrap();
    assert_eq!(loaded.meta.step, 9);
    assert_eq!(loaded.meta.job_spec_hash, JOB);
    assert_eq!(loaded.meta.step_digest, digest);
    let names: Vec<&str> = loaded.params.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(names, ["layer0.weight", "layer0.bias"]);
    assert_eq!(loaded.params[0].shape, [2, 3]);
    assert_eq!(loaded.params[0].data, state.w);
    assert_eq!(loaded.opt[1].data, state.mb);

    // Byte-stable: writing the same state again gives the same bytes.
    let bytes = std::fs::read(&path).unwrap();
    let (again, _) = checkpoint_bytes(&JOB, 9, &state.params(), &state.opt()).unwrap();
    assert_eq!(bytes, again);

    // Any safetensors reader sees the tensors.
    let parsed = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let mut file_names = parsed.names();
    file_names.sort_unstable();
    assert_eq!(
        file_names,
        [
            "opt/layer0.bias.momentum",
            "opt/layer0.weight.momentum",
            "param/layer0.bias",
            "param/layer0.weight"
        ]
    );

    let wrong = Digest([1; 32]);
    assert!(matches!(
        read_checkpoint(&path, Some(&wrong)),
        Err(CommitError::ExpectedDigestMismatch { .. })
    ));
    assert!(matches!(
        read_checkpoint(&dir.path().join("absent"), None),
        Err(CommitError::Io { .. })
    ));
}

#[test]
fn any_changed_byte_of_a_checkpoint_is_detected() {
    let state = State::new(0.25);
    let (bytes, _) = checkpoint_bytes(&JOB, 5, &state.params(), &state.opt()).unwrap();
    assert!(decode_checkpoint(&bytes, None).is_ok());
    for position in 0..bytes.len() {
        for mask in [0x01u8, 0x02, 0x20, 0x80, 0xff] {
            let mut tampered = bytes.clone();
            tampered[position] ^= mask;
            assert!(
                decode_checkpoint(&tampered, None).is_err(),
                "flip {mask:#04x} at byte {position} not detected"
            );
        }
    }
    // Whitespace that still parses as the same JSON is rejected too.
    let header_len = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let mut padded = bytes.clone();
    if padded[8 + header_len - 1] == b' ' {
        padded[8 + header_len - 1] = b'\n';
        assert!(decode_checkpoint(&padded, None).is_err());
    }
    assert!(decode_checkpoint(&bytes[..bytes.len() - 1], None).is_err());
    assert!(decode_checkpoint(&[], None).is_err());
}

#[test]
fn checkpoints_canonicalise_nans_and_reject_duplicate_names() {
    let data = [f32::from_bits(0x7fc0_beef), 1.0];
    let params = [NamedTensor::new("x", &[2], &data)];
    let (bytes, digest) = checkpoint_bytes(&JOB, 0, &params, &[]).unwrap();
    let loaded = decode_checkpoint(&bytes, Some(&digest)).unwrap();
    assert_eq!(loaded.params[0].data[0].to_bits(), 0x7fc0_0000);
    let twice = [params[0], params[0]];
    assert!(matches!(
        checkpoint_bytes(&JOB, 0, &twice, &[]),
        Err(CommitError::DuplicateName { .. })
    ));
}

#[test]
fn checkpoint_proof_ties_a_checkpoint_to_a_committed_root() {
    let mut builder = MerkleBuilder::new();
    let mut checkpoints = Vec::new();
    for step in 0..11u64 {
        let state = State::new(step as f32 + 1.0);
        let (bytes, digest) = checkpoint_bytes(&JOB, step, &state.params(), &state.opt()).unwrap();
        assert_eq!(builder.push(&digest), step);
        checkpoints.push(bytes);
    }
    let root = builder.root();
    let checkpoint = decode_checkpoint(&checkpoints[6], None).unwrap();
    let proof = CheckpointProof {
        step_digest: checkpoint.meta.step_digest,
        proof: builder.proof(6).unwrap(),
    };
    proof.verify(&checkpoint, &root).unwrap();
    let json = serde_json::to_string(&proof).unwrap();
    let decoded: CheckpointProof = serde_json::from_str(&json).unwrap();
    assert_eq!(decoded, proof);

    let other = decode_checkpoint(&checkpoints[5], None).unwrap();
    assert!(matches!(
        proof.verify(&other, &root),
        Err(CommitError::ProofDigestMismatch { .. })
    ));
    let forged = CheckpointProof {
        step_digest: other.meta.step_digest,
        ..proof.clone()
    };
    assert!(forged.verify(&other, &root).is_err());
    assert!(proof.verify(&checkpoint, &Digest([0; 32])).is_err());
}
