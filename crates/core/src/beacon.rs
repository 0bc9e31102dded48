//! The randomness beacon's primitive: a consensus seed and its check.
//!
//! Consensus runs commonware simplex with the `bls12381_threshold::vrf` scheme, so every view
//! `(epoch, view)` ends in a certificate that carries a *seed*: a unique threshold BLS
//! signature (BLS12-381, `MinSig`: 48-byte signatures, a 96-byte group key) over the encoded
//! round. A seed can be withheld but not chosen, and nobody learns it before the view's votes
//! are broadcast, so PoI draws what to check from seeds of views *after* a commitment.
//!
//! This module owns the seed's wire form and its verification only; which seeds a block must
//! carry and what they draw is PoI's ([`crate::poi::beacon`]).
//!
//! # Format
//! - the signed message is commonware's `Round::encode()`: `varint(epoch) | varint(view)`
//!   (LEB128 `UInt`), see [`seed_message`];
//! - the namespace is `simplex::scheme::Namespace::new(chain_namespace).seed`. The node
//!   derives it and genesis stores the bytes, so core does not depend on consensus internals;
//!   a node test pins both to commonware's.
//!
//! Stability: BETA (the commonware scheme is BETA at 2026.10.0).

use borsh::{BorshDeserialize, BorshSerialize};
use commonware_codec::{DecodeExt, Encode, varint::UInt};
use commonware_cryptography::bls12381::primitives::{
    group::{G1, G2},
    ops,
    variant::MinSig,
};
use serde::Serialize;

/// Bytes of a seed: a compressed G1 point (`MinSig` signature).
pub const SEED_BYTES: usize = 48;
/// Bytes of the group identity: a compressed G2 point (`MinSig` public key).
pub const IDENTITY_BYTES: usize = 96;

/// A consensus seed: the threshold signature of round `(epoch, view)`.
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize)]
pub struct BeaconSeed {
    /// Consensus epoch (0 while the validator set is fixed).
    pub epoch: u64,
    /// Consensus view.
    pub view: u64,
    /// The compressed signature.
    #[serde(serialize_with = "hex_bytes")]
    pub signature: [u8; SEED_BYTES],
}

impl BeaconSeed {
    /// 32 bytes of randomness from the seed: `blake3("poi/seed/v1" | signature)`. The
    /// signature is unique per round, so this is a function of the round alone.
    pub fn randomness(&self) -> [u8; 32] {
        let mut h = blake3::Hasher::new();
        h.update(b"poi/seed/v1");
        h.update(&self.signature);
        *h.finalize().as_bytes()
    }
}

/// Why a seed or identity was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BeaconError {
    /// The identity bytes are not a valid G2 point.
    #[error("the beacon identity is not a valid BLS12-381 G2 point")]
    BadIdentity,
    /// The signature bytes are not a valid G1 point.
    #[error("seed of view {view} is not a valid BLS12-381 G1 point")]
    Malformed {
        /// The seed's view.
        view: u64,
    },
    /// A valid point that is not the group's signature over the round.
    #[error("seed of epoch {epoch} view {view} does not verify against the beacon identity")]
    Invalid {
        /// The seed's epoch.
        epoch: u64,
        /// The seed's view.
        view: u64,
    },
}

/// The message a seed signs: commonware's `Round::encode()`, `varint(epoch) | varint(view)`.
pub fn seed_message(epoch: u64, view: u64) -> Vec<u8> {
    let mut out = UInt(epoch).encode().to_vec();
    out.extend_from_slice(&UInt(view).encode());
    out
}

/// Checks that `identity` is a valid group key (a G2 point in the subgroup, not infinity).
pub fn check_identity(identity: &[u8; IDENTITY_BYTES]) -> Result<(), BeaconError> {
    G2::decode(identity.to_vec())
        .map(|_| ())
        .map_err(|_| BeaconError::BadIdentity)
}

/// Verifies `seed` against the group `identity` under `seed_namespace`. Costs one pairing
/// check (about a millisecond; see `docs/benchmarks.md`).
pub fn verify_seed(
    identity: &[u8; IDENTITY_BYTES],
    seed_namespace: &[u8],
    seed: &BeaconSeed,
) -> Result<(), BeaconError> {
    let public = G2::decode(identity.to_vec()).map_err(|_| BeaconError::BadIdentity)?;
    let signature = G1::decode(seed.signature.to_vec())
        .map_err(|_| BeaconError::Malformed { view: seed.view })?;
    ops::verify_message::<MinSig>(
        &public,
        seed_namespace,
        &seed_message(seed.epoch, seed.view),
        &signature,
    )
    .map_err(|_| BeaconError::Invalid {
        epoch: seed.epoch,
        view: seed.view,
    })
}

fn hex_bytes<S: serde::Serializer>(bytes: &[u8; SEED_BYTES], s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&hex::encode(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;
    use commonware_cryptography::bls12381::primitives::group::Private;

    fn key(byte: u8) -> (Private, [u8; IDENTITY_BYTES]) {
        let mut scalar = [0u8; 32];
        scalar[31] = byte;
        let private = Private::decode(scalar.to_vec()).expect("a small scalar is a key");
        let public = ops::compute_public::<MinSig>(&private);
        let identity: [u8; IDENTITY_BYTES] = public.encode().as_ref().try_into().expect("96 B");
        (private, identity)
    }

    fn sign(private: &Private, ns: &[u8], epoch: u64, view: u64) -> BeaconSeed {
        let sig = ops::sign_message::<MinSig>(private, ns, &seed_message(epoch, view));
        BeaconSeed {
            epoch,
            view,
            signature: sig.encode().as_ref().try_into().expect("48 B"),
        }
    }

    #[test]
    fn a_signed_round_verifies_and_nothing_else_does() {
        let (private, identity) = key(7);
        let ns = b"poi-test_SEED";
        let seed = sign(&private, ns, 0, 42);
        assert_eq!(verify_seed(&identity, ns, &seed), Ok(()));
        let other_view = BeaconSeed {
            view: 43,
            ..seed.clone()
        };
        assert!(matches!(
            verify_seed(&identity, ns, &other_view),
            Err(BeaconError::Invalid { view: 43, .. })
        ));
        let other_epoch = BeaconSeed {
            epoch: 1,
            ..seed.clone()
        };
        assert!(verify_seed(&identity, ns, &other_epoch).is_err());
        assert!(verify_seed(&identity, b"other_SEED", &seed).is_err());
        let (_, stranger) = key(9);
        assert!(verify_seed(&stranger, ns, &seed).is_err());
        let mut garbage = seed.clone();
        garbage.signature = [0xAB; SEED_BYTES];
        assert_eq!(
            verify_seed(&identity, ns, &garbage),
            Err(BeaconError::Malformed { view: 42 })
        );
        assert_eq!(
            verify_seed(&[0xCD; IDENTITY_BYTES], ns, &seed),
            Err(BeaconError::BadIdentity)
        );
    }

    #[test]
    fn seed_message_is_two_leb128_varints() {
        assert_eq!(seed_message(0, 0), vec![0, 0]);
        assert_eq!(seed_message(1, 300), vec![1, 0xAC, 0x02]);
        assert_eq!(seed_message(0, u64::MAX).len(), 11);
    }

    #[test]
    fn randomness_depends_on_the_signature_only() {
        let (private, _) = key(3);
        let a = sign(&private, b"ns", 0, 5);
        let b = sign(&private, b"ns", 0, 6);
        assert_ne!(a.randomness(), b.randomness());
        assert_eq!(a.randomness(), a.clone().randomness());
    }
}
