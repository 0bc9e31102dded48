//! Direct channels: point-to-point messages between single nodes. Two use them:
//! [`CHANNEL_DKG`](super::CHANNEL_DKG), the key reshare (a dealer's dealing to a player, the
//! player's acknowledgement back), and [`CHANNEL_SYNC`](super::CHANNEL_SYNC), catching up
//! across consensus epochs.
//!
//! Owns: [`DirectSender`] (the application's handle), [`DirectQueue`] (its consensus-side
//! half) and the two tasks behind each channel. The p2p layer authenticates and encrypts every
//! connection, which is what the reshare protocol requires of the private dealings; this module
//! only moves bytes.
//!
//! Invariants: the local queue is bounded ([`DIRECT_QUEUED_MAX`]) and a full queue drops the
//! message (both users retry: the reshare re-sends unacknowledged dealings, a stalled node asks
//! again); a message to a key that does not decode, or to a peer not connected, is dropped the
//! same way; received bytes are untrusted and go to [`Application::receive_dkg`] or
//! [`Application::receive_sync`] with the sender's authenticated key.

use super::Application;
use commonware_codec::DecodeExt as _;
use commonware_cryptography::ed25519::PublicKey;
use commonware_p2p::{Receiver, Recipients, Sender};
use commonware_utils::channel::mpsc;
use tracing::{debug, info};

/// Messages of one direct channel that may wait to be sent; more are dropped.
pub const DIRECT_QUEUED_MAX: usize = 1_024;

/// Sends messages of one direct channel to single peers.
#[derive(Clone, Debug)]
pub struct DirectSender {
    queue: mpsc::Sender<([u8; 32], Vec<u8>)>,
}

impl DirectSender {
    /// Queues `bytes` for the peer with ed25519 key `to`; `false` if the queue is full or
    /// consensus has stopped.
    pub fn send(&self, to: [u8; 32], bytes: Vec<u8>) -> bool {
        self.queue.try_send((to, bytes)).is_ok()
    }
}

/// The consensus-side half of a [`DirectSender`].
#[derive(Debug)]
pub struct DirectQueue {
    queue: mpsc::Receiver<([u8; 32], Vec<u8>)>,
}

/// A connected handle (for the application) and queue (for consensus).
pub fn direct_channel() -> (DirectSender, DirectQueue) {
    let (sender, receiver) = mpsc::channel(DIRECT_QUEUED_MAX);
    (
        DirectSender { queue: sender },
        DirectQueue { queue: receiver },
    )
}

/// Sends queued messages, each to its one peer.
pub(crate) async fn send_direct<S>(mut local: DirectQueue, mut sender: S, max_bytes: usize)
where
    S: Sender<PublicKey = PublicKey>,
{
    while let Some((to, bytes)) = local.queue.recv().await {
        if bytes.len() > max_bytes {
            debug!(len = bytes.len(), "direct message too large; dropped");
            continue;
        }
        let Ok(peer) = PublicKey::decode(to.to_vec()) else {
            debug!(to = %hex::encode(to), "direct message to an invalid key; dropped");
            continue;
        };
        let sent = sender.send(Recipients::One(peer), bytes, true);
        if sent.is_empty() {
            debug!(to = %hex::encode(to), "direct peer not connected; dropped");
        }
    }
}

/// Which application method a direct channel delivers to.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Direct {
    /// [`Application::receive_dkg`] ([`CHANNEL_DKG`](super::CHANNEL_DKG)).
    Dkg,
    /// [`Application::receive_sync`] ([`CHANNEL_SYNC`](super::CHANNEL_SYNC)).
    Sync,
}

/// Hands every message peers send on a direct channel to the application.
pub(crate) async fn receive_direct<A, R>(app: A, mut receiver: R, channel: Direct)
where
    A: Application,
    R: Receiver<PublicKey = PublicKey>,
{
    loop {
        let (peer, message) = match receiver.recv().await {
            Ok(message) => message,
            Err(error) => {
                info!(%error, ?channel, "direct channel closed");
                return;
            }
        };
        let (from, bytes) = (super::fault::key_bytes(&peer), message.as_ref().to_vec());
        match channel {
            Direct::Dkg => app.receive_dkg(from, bytes).await,
            Direct::Sync => app.receive_sync(from, bytes).await,
        }
    }
}
