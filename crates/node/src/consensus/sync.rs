//! Catching up across consensus epochs: the newest finalization certificate this node has
//! seen, served to peers that ask, and checked when a peer answers.
//!
//! Owns: [`LatestFinalization`] (filled by the driver from every finalization the engine
//! reports), the request/response format of [`CHANNEL_SYNC`](super::CHANNEL_SYNC) and
//! [`verify_finalization`]. Why: a node whose engine runs an older epoch than its peers (it was
//! down while they switched to a new signer generation) hears no certificates it can use,
//! because its peers' engines have moved on. A finalization certificate is a threshold
//! signature under the group key, which a reshare keeps, so a node can check one of any epoch
//! with the group identity alone, then fetch and re-execute the blocks up to it.
//!
//! # Format
//! - request: one byte, [`SYNC_REQUEST`];
//! - response: [`SYNC_RESPONSE`], then the commonware codec of a
//!   `Finalization<BeaconScheme, Digest>` (refused unless it decodes exactly and verifies).
//!
//! Invariant: only a certificate that verifies under the group identity and the chain's
//! consensus namespace is ever acted on.

use super::{BlockDigest, Digest, beacon::BeaconScheme};
use commonware_codec::{DecodeExt as _, Encode as _};
use commonware_consensus::simplex::types::Finalization;
use std::sync::{Arc, Mutex};

/// First byte of a request for the peer's newest finalization.
pub const SYNC_REQUEST: u8 = 0x01;
/// First byte of a response carrying a finalization.
pub const SYNC_RESPONSE: u8 = 0x02;

/// An encoded finalization with its `(epoch, view)`.
type Held = (u64, u64, Vec<u8>);

/// The newest finalization certificate the engine reported in this run, encoded.
#[derive(Clone, Debug, Default)]
pub struct LatestFinalization {
    inner: Arc<Mutex<Option<Held>>>,
}

impl LatestFinalization {
    /// An empty slot.
    pub fn new() -> Self {
        Self::default()
    }

    /// Keeps `finalization` if it is newer (by epoch, then view) than the one held.
    pub(crate) fn record(&self, finalization: &Finalization<BeaconScheme, Digest>) {
        let round = finalization.round();
        let (epoch, view) = (round.epoch().get(), round.view().get());
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        if inner
            .as_ref()
            .is_none_or(|(e, v, _)| (epoch, view) > (*e, *v))
        {
            *inner = Some((epoch, view, finalization.encode().to_vec()));
        }
    }

    /// The response to a peer's request, if this node has seen a finalization.
    pub fn response(&self) -> Option<Vec<u8>> {
        let inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        inner.as_ref().map(|(_, _, bytes)| {
            let mut message = Vec::with_capacity(1 + bytes.len());
            message.push(SYNC_RESPONSE);
            message.extend_from_slice(bytes);
            message
        })
    }
}

/// A verified finalization: the block `digest` was finalized in consensus `epoch` at `view`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VerifiedFinalization {
    /// Consensus epoch (signer generation) it was certified in.
    pub epoch: u64,
    /// Its view in that epoch.
    pub view: u64,
    /// The finalized block.
    pub digest: BlockDigest,
}

/// Checks a [`SYNC_RESPONSE`] message: the certificate must decode exactly and verify under
/// group identity `identity` (96 bytes) and the chain's consensus namespace.
pub fn verify_finalization(
    message: &[u8],
    consensus_namespace: &[u8],
    identity: &[u8; super::beacon::IDENTITY_BYTES],
) -> Option<VerifiedFinalization> {
    let (&kind, bytes) = message.split_first()?;
    if kind != SYNC_RESPONSE {
        return None;
    }
    let identity = <commonware_cryptography::bls12381::primitives::variant::MinSig as
        commonware_cryptography::bls12381::primitives::variant::Variant>::Public::decode(
        identity.to_vec(),
    )
    .ok()?;
    let finalization = Finalization::<BeaconScheme, Digest>::decode(bytes.to_vec()).ok()?;
    let verifier = BeaconScheme::certificate_verifier(consensus_namespace, identity);
    let mut rng = commonware_utils::sys_rng();
    if !finalization.verify(&mut rng, &verifier, &commonware_parallel::Sequential) {
        return None;
    }
    let round = finalization.round();
    Some(VerifiedFinalization {
        epoch: round.epoch().get(),
        view: round.view().get(),
        digest: finalization.proposal.payload.0,
    })
}
