//! Block requests: how a validator gets blocks it missed.
//!
//! Owns: [`BlockRequester`] (the application's handle), the request channel
//! ([`CHANNEL_BLOCK_REQUESTS`](super::CHANNEL_BLOCK_REQUESTS)) and the two tasks behind it.
//! Consensus only certifies digests, and a broadcast block is lost for a peer that was offline
//! or not yet connected. Such a peer still learns the digest (from a proposal to verify, a
//! finalization, or a parent link) and asks for the bytes here.
//!
//! # Format
//! A request is the 32-byte digest, nothing else. The answer is the block's bytes on
//! [`CHANNEL_BLOCKS`](super::CHANNEL_BLOCKS), exactly like a broadcast, so it reaches
//! [`Application::receive_block`]. Unknown digests get no answer.
//!
//! Invariants: a request goes to one peer, the next one in a fixed rotation, so retries reach
//! every peer in turn; at most [`BLOCK_REQUESTS_QUEUED_MAX`] requests wait locally and extra
//! ones are refused rather than queued; requests are answered one at a time, so the p2p rate
//! limit bounds the work a peer can cause.

use super::{Application, BlockDigest};
use commonware_cryptography::ed25519::PublicKey;
use commonware_p2p::{Receiver, Recipients, Sender};
use commonware_utils::channel::mpsc;
use tracing::{debug, info};

/// Requests that may wait to be sent; [`BlockRequester::request`] refuses more.
pub const BLOCK_REQUESTS_QUEUED_MAX: usize = 256;

/// Asks peers for a block this node lacks. Bytes arrive via [`Application::receive_block`].
///
/// One request asks one peer once. Call again (e.g. every few hundred milliseconds while the
/// block is still missing) to retry; successive calls rotate through the other validators.
#[derive(Clone, Debug)]
pub struct BlockRequester {
    queue: mpsc::Sender<BlockDigest>,
}

impl BlockRequester {
    /// Queues a request for `digest`; returns `false` if the queue is full or consensus has
    /// stopped (the caller may retry later).
    pub fn request(&self, digest: BlockDigest) -> bool {
        self.queue.try_send(digest).is_ok()
    }
}

/// The receiving end of a [`BlockRequester`], handed to [`start`](super::start) or
/// [`start_with_channels`](super::start_with_channels).
#[derive(Debug)]
pub struct BlockRequests {
    queue: mpsc::Receiver<BlockDigest>,
}

/// Creates a connected requester (for the application) and request queue (for consensus).
pub fn block_requests() -> (BlockRequester, BlockRequests) {
    let (sender, receiver) = mpsc::channel(BLOCK_REQUESTS_QUEUED_MAX);
    (
        BlockRequester { queue: sender },
        BlockRequests { queue: receiver },
    )
}

/// Sends queued requests, each to the next peer in rotation.
pub(crate) async fn send_requests<S>(mut local: BlockRequests, mut sender: S, peers: Vec<PublicKey>)
where
    S: Sender<PublicKey = PublicKey>,
{
    let mut next = 0usize;
    while let Some(digest) = local.queue.recv().await {
        if peers.is_empty() {
            // A lone validator has nobody to ask; the block cannot exist elsewhere.
            continue;
        }
        let peer = peers[next % peers.len()].clone();
        next = next.wrapping_add(1);
        let sent = sender.send(Recipients::One(peer), digest.to_vec(), false);
        debug!(digest = %hex::encode(digest), sent = !sent.is_empty(), "block requested");
    }
}

/// Answers peers' requests with block bytes on the block channel.
pub(crate) async fn serve_requests<A, R, S>(app: A, mut requests: R, mut blocks: S, max_bytes: u32)
where
    A: Application,
    R: Receiver<PublicKey = PublicKey>,
    S: Sender<PublicKey = PublicKey>,
{
    loop {
        let (peer, request) = match requests.recv().await {
            Ok(message) => message,
            Err(error) => {
                info!(%error, "block request channel closed");
                return;
            }
        };
        let Ok(digest) = <BlockDigest>::try_from(request.as_ref()) else {
            debug!(len = request.as_ref().len(), "malformed block request");
            continue;
        };
        let Some(bytes) = app.block_bytes(digest).await else {
            continue;
        };
        if bytes.len() > max_bytes as usize {
            continue;
        }
        blocks.send(Recipients::One(peer), bytes, false);
    }
}
