//! The threshold-VRF beacon of a validator set: its keys and the seeds consensus certifies.
//!
//! Stability: ALPHA; the file encodings follow commonware's codec (BETA formats).
//!
//! Owns: [`BeaconKey`] (one validator's share of the group secret plus the public polynomial),
//! the trusted dealer [`deal`], the byte encodings of shares and polynomials, the seed
//! namespace and message ([`seed_namespace`], [`seed_message`]), [`verify_seed`], and
//! [`SeedCache`], the bounded record of seeds taken from certificates.
//!
//! Consensus signs with `bls12381_threshold::vrf::Scheme<ed25519::PublicKey, MinSig>`
//! ([`BeaconScheme`]): every vote carries a partial signature over its round, and every
//! certificate (notarization, nullification, finalization) carries the recovered one, the seed
//! of that round: a 48-byte BLS signature checkable against the 96-byte group identity.
//!
//! Invariants:
//! - a [`BeaconKey`] is only built from a share whose public key matches the polynomial's
//!   partial public key at the share's index ([`BeaconKey::new`] checks it), so a signer built
//!   from it never produces invalid partials;
//! - [`deal`] gives validator `i` (in the order passed) the share of index
//!   `position of its key in the sorted validator set`, the index simplex signs under;
//! - [`SeedCache`] holds at most [`SEED_CACHE_VIEWS_MAX`] seeds, dropping the oldest rounds.

use super::error::BeaconKeyError;
use commonware_codec::{Decode as _, DecodeExt as _, Encode as _};
use commonware_consensus::{
    simplex::scheme::{
        Namespace,
        bls12381_threshold::vrf::{self, Seed},
    },
    types::{Epoch, Round, View},
};
use commonware_cryptography::{
    bls12381::{
        dkg::feldman_desmedt,
        primitives::{
            group::Share,
            sharing::{Mode, ModeVersion, Sharing},
            variant::{MinSig, Variant},
        },
    },
    ed25519,
};
use commonware_utils::{
    N3f1,
    ordered::{Quorum as _, Set},
};
use rand_core::CryptoRng;
use std::{
    collections::BTreeMap,
    fmt,
    num::NonZeroU32,
    sync::{Arc, Mutex, MutexGuard},
};

/// The consensus signing scheme: threshold BLS12-381 VRF over ed25519 participant identities.
pub type BeaconScheme = vrf::Scheme<ed25519::PublicKey, MinSig>;

/// Bytes of a seed: one `MinSig` signature (a compressed G1 point).
pub const SEED_BYTES: usize = 48;
/// Bytes of the group identity: one `MinSig` public key (a compressed G2 point).
pub const IDENTITY_BYTES: usize = 96;

/// Most seeds a [`SeedCache`] keeps (one per view; about 17 minutes of 250 ms views). Targets
/// wait at most `beacon_timeout_views` (200) before they move, so this is ample. Costs about
/// 80 bytes per entry, 330 KB in all.
pub const SEED_CACHE_VIEWS_MAX: usize = 4_096;

/// Largest validator set a polynomial may be decoded for; bounds the work of decoding one.
const POLYNOMIAL_PARTICIPANTS_MAX: NonZeroU32 =
    NonZeroU32::new(super::VALIDATORS_MAX).expect("non-zero");

const _: () = assert!(SEED_CACHE_VIEWS_MAX >= 256);

/// One validator's beacon key: the public polynomial of the dealing and its own share.
#[derive(Clone)]
pub struct BeaconKey {
    public: BeaconPublic,
    share: Share,
}

impl fmt::Debug for BeaconKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BeaconKey")
            .field("identity", &hex::encode(self.identity()))
            .field("validators", &self.public.validators())
            .field("share_index", &self.share.index)
            .field("share", &"<redacted>")
            .finish()
    }
}

impl BeaconKey {
    /// Pairs a share with its polynomial; refuses a share that is not a point of it.
    pub fn new(polynomial: Sharing<MinSig>, share: Share) -> Result<Self, BeaconKeyError> {
        let index = share.index;
        if index.get() >= polynomial.total().get() {
            return Err(BeaconKeyError::ShareIndex {
                index: index.get(),
                validators: polynomial.total().get(),
            });
        }
        let expected =
            polynomial
                .partial_public(index)
                .map_err(|_| BeaconKeyError::ShareIndex {
                    index: index.get(),
                    validators: polynomial.total().get(),
                })?;
        if expected != share.public::<MinSig>() {
            return Err(BeaconKeyError::ShareMismatch { index: index.get() });
        }
        Ok(Self {
            public: BeaconPublic { polynomial },
            share,
        })
    }

    /// Decodes the bytes of [`BeaconKey::polynomial_bytes`] and [`BeaconKey::share_bytes`].
    pub fn from_bytes(polynomial: &[u8], share: &[u8]) -> Result<Self, BeaconKeyError> {
        let decoded_polynomial = polynomial_from_bytes(polynomial)?;
        let share =
            Share::decode(share.to_vec()).map_err(|e| BeaconKeyError::Share(e.to_string()))?;
        Self::new(decoded_polynomial, share)
    }

    /// The public polynomial in commonware's codec (public; the same for every validator).
    pub fn polynomial_bytes(&self) -> Vec<u8> {
        self.public.polynomial.encode().to_vec()
    }

    /// This validator's share in commonware's codec (secret).
    pub fn share_bytes(&self) -> Vec<u8> {
        self.share.encode().to_vec()
    }

    /// The group identity (the public key every seed verifies against).
    pub fn identity(&self) -> [u8; IDENTITY_BYTES] {
        self.public.identity()
    }

    /// Number of validators the polynomial was dealt for.
    pub fn validators(&self) -> u32 {
        self.public.validators()
    }

    /// Signatures needed to recover a seed or certificate.
    pub fn threshold(&self) -> u32 {
        self.public.threshold()
    }

    /// Index of this validator's share (its position in the sorted validator set).
    pub fn share_index(&self) -> u32 {
        self.share.index.get()
    }

    /// The public polynomial.
    pub(crate) fn polynomial(&self) -> &Sharing<MinSig> {
        self.public.polynomial()
    }

    /// The share.
    pub(crate) fn share(&self) -> &Share {
        &self.share
    }
}

/// The public half of a dealing: the polynomial every certificate and seed verifies against.
/// A full node holds this instead of a [`BeaconKey`]: it checks votes and certificates but
/// cannot sign.
#[derive(Clone)]
pub struct BeaconPublic {
    polynomial: Sharing<MinSig>,
}

impl fmt::Debug for BeaconPublic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BeaconPublic")
            .field("identity", &hex::encode(self.identity()))
            .field("validators", &self.polynomial.total())
            .finish()
    }
}

impl BeaconPublic {
    /// Decodes the bytes of [`BeaconKey::polynomial_bytes`] (what genesis records as
    /// `beacon.polynomial`).
    pub fn from_bytes(polynomial: &[u8]) -> Result<Self, BeaconKeyError> {
        Ok(Self {
            polynomial: polynomial_from_bytes(polynomial)?,
        })
    }

    /// The group identity.
    pub fn identity(&self) -> [u8; IDENTITY_BYTES] {
        identity_bytes(self.polynomial.public())
    }

    /// Number of validators the polynomial was dealt for.
    pub fn validators(&self) -> u32 {
        self.polynomial.total().get()
    }

    /// Signatures needed to recover a seed or certificate.
    pub fn threshold(&self) -> u32 {
        self.polynomial.required()
    }

    /// The public polynomial.
    pub(crate) fn polynomial(&self) -> &Sharing<MinSig> {
        &self.polynomial
    }
}

impl From<&BeaconKey> for BeaconPublic {
    fn from(key: &BeaconKey) -> Self {
        key.public.clone()
    }
}

/// Decodes the public polynomial of [`BeaconKey::polynomial_bytes`].
pub(crate) fn polynomial_from_bytes(polynomial: &[u8]) -> Result<Sharing<MinSig>, BeaconKeyError> {
    // `decode_cfg` refuses trailing bytes; the participant bound caps the work.
    Sharing::<MinSig>::decode_cfg(
        polynomial.to_vec(),
        &(POLYNOMIAL_PARTICIPANTS_MAX, ModeVersion::v0()),
    )
    .map_err(|e| BeaconKeyError::Polynomial(e.to_string()))
}

fn identity_bytes(identity: &<MinSig as Variant>::Public) -> [u8; IDENTITY_BYTES] {
    let encoded = identity.encode();
    let mut bytes = [0u8; IDENTITY_BYTES];
    // A compressed G2 point is always 96 bytes.
    bytes.copy_from_slice(&encoded);
    bytes
}

/// Deals a fresh group key to `validators` (ed25519 public keys) with a trusted dealer, using
/// the operating system's randomness. Returns one key per validator, in the order given.
///
/// The dealer (this process) sees every share: use it where one party sets up the whole
/// validator set (`poi node init`, `poi devnet`, tests). A ceremony without a dealer is
/// `feldman_desmedt`'s `Dealer`/`Player` protocol.
pub fn deal(validators: &[[u8; 32]]) -> Result<Vec<BeaconKey>, BeaconKeyError> {
    deal_with(commonware_utils::sys_rng(), validators)
}

/// [`deal`] with the caller's randomness.
pub fn deal_with(
    rng: impl CryptoRng,
    validators: &[[u8; 32]],
) -> Result<Vec<BeaconKey>, BeaconKeyError> {
    if validators.is_empty() || validators.len() > super::VALIDATORS_MAX as usize {
        return Err(BeaconKeyError::Validators {
            count: validators.len(),
        });
    }
    let mut keys = Vec::with_capacity(validators.len());
    for (index, key) in validators.iter().enumerate() {
        let key = ed25519::PublicKey::decode(key.to_vec()).map_err(|_| {
            BeaconKeyError::InvalidValidatorKey {
                index,
                key: hex::encode(key),
            }
        })?;
        keys.push(key);
    }
    let mut sorted = keys.clone();
    sorted.sort();
    sorted.dedup();
    if sorted.len() != keys.len() {
        return Err(BeaconKeyError::DuplicateValidator);
    }
    let players = Set::try_from(sorted).expect("sorted unique keys");
    let quorum = players.quorum::<N3f1>();
    let (output, shares) =
        feldman_desmedt::deal::<MinSig, _, N3f1>(rng, Mode::NonZeroCounter, players.clone())
            .map_err(|e| BeaconKeyError::Deal(e.to_string()))?;
    let polynomial = output.public().clone();
    assert_eq!(polynomial.required(), quorum);
    keys.iter()
        .map(|key| {
            let share = shares
                .get_value(key)
                .expect("every player is dealt a share");
            // `deal` indexes shares by position in the sorted set, as simplex does.
            assert_eq!(players.index(key), Some(share.index));
            BeaconKey::new(polynomial.clone(), share.clone())
        })
        .collect()
}

/// The namespace seeds are signed under, for a chain whose consensus namespace is
/// `consensus_namespace` (see `ConsensusConfig::consensus_namespace`): commonware's
/// `Namespace::new(ns).seed`. Genesis records it so that core can check seeds without knowing
/// how it is derived.
pub fn seed_namespace_of(consensus_namespace: &[u8]) -> Vec<u8> {
    Namespace::new(consensus_namespace).seed
}

/// The seed namespace of chain id `namespace` (what [`seed_namespace_of`] gives for the
/// consensus namespace the driver derives from it).
pub fn seed_namespace(namespace: &[u8]) -> Vec<u8> {
    seed_namespace_of(&super::config::consensus_namespace(namespace))
}

/// The message a seed signs: the encoded consensus round (varint epoch, varint view).
pub fn seed_message(epoch: u64, view: u64) -> Vec<u8> {
    Round::new(Epoch::new(epoch), View::new(view))
        .encode()
        .to_vec()
}

/// A seed taken from a certificate: the threshold signature over round `(epoch, view)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CertifiedSeed {
    /// Consensus epoch of the round.
    pub epoch: u64,
    /// Consensus view of the round.
    pub view: u64,
    /// The recovered signature (compressed G1).
    pub signature: [u8; SEED_BYTES],
}

impl CertifiedSeed {
    /// Converts commonware's seed.
    pub fn from_seed(seed: &Seed<MinSig>) -> Self {
        let encoded = seed.signature.encode();
        let mut signature = [0u8; SEED_BYTES];
        // A compressed G1 point is always 48 bytes.
        signature.copy_from_slice(&encoded);
        Self {
            epoch: seed.round.epoch().get(),
            view: seed.round.view().get(),
            signature,
        }
    }
}

/// Whether `seed` is the seed of its round for group `identity` under `seed_namespace`.
/// False for bytes that are not a valid point, too.
pub fn verify_seed(
    identity: &[u8; IDENTITY_BYTES],
    seed_namespace: &[u8],
    seed: &CertifiedSeed,
) -> bool {
    let Ok(public) = <MinSig as Variant>::Public::decode(identity.to_vec()) else {
        return false;
    };
    let Ok(signature) = <MinSig as Variant>::Signature::decode(seed.signature.to_vec()) else {
        return false;
    };
    commonware_cryptography::bls12381::primitives::ops::verify_message::<MinSig>(
        &public,
        seed_namespace,
        &seed_message(seed.epoch, seed.view),
        &signature,
    )
    .is_ok()
}

/// The seeds this node has seen in certificates, by round; cloneable, shared by the consensus
/// driver (which records) and the application (which reads when it proposes).
///
/// Bounded: holds the newest [`SEED_CACHE_VIEWS_MAX`] rounds.
#[derive(Clone, Default)]
pub struct SeedCache {
    seeds: Arc<Mutex<SeedsByRound>>,
}

/// Seed signatures by `(epoch, view)`.
type SeedsByRound = BTreeMap<(u64, u64), [u8; SEED_BYTES]>;

impl fmt::Debug for SeedCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let seeds = self.lock();
        f.debug_struct("SeedCache")
            .field("len", &seeds.len())
            .field("newest", &seeds.last_key_value().map(|(round, _)| *round))
            .finish()
    }
}

impl SeedCache {
    /// An empty cache.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, SeedsByRound> {
        self.seeds.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Records a seed; drops the oldest round once full. A seed is unique per round, so a
    /// second insert of the same round changes nothing.
    pub fn insert(&self, seed: CertifiedSeed) {
        let mut seeds = self.lock();
        seeds.insert((seed.epoch, seed.view), seed.signature);
        while seeds.len() > SEED_CACHE_VIEWS_MAX {
            seeds.pop_first();
        }
        assert!(seeds.len() <= SEED_CACHE_VIEWS_MAX);
    }

    /// The seed of round `(epoch, view)`, if seen.
    pub fn get(&self, epoch: u64, view: u64) -> Option<CertifiedSeed> {
        self.lock()
            .get(&(epoch, view))
            .map(|signature| CertifiedSeed {
                epoch,
                view,
                signature: *signature,
            })
    }

    /// Seeds held.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether no seed is held.
    pub fn is_empty(&self) -> bool {
        self.lock().is_empty()
    }

    /// The newest seed held.
    pub fn newest(&self) -> Option<CertifiedSeed> {
        self.lock()
            .last_key_value()
            .map(|(&(epoch, view), signature)| CertifiedSeed {
                epoch,
                view,
                signature: *signature,
            })
    }
}
