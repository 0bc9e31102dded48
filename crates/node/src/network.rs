//! What this node knows about its network: the validators it dials, the full nodes it admits,
//! whether it votes itself, and how its block sync is going. Served on `GET /network`.
//!
//! Owns: [`NetworkStatus`], node-local observations (never consensus state: two nodes may
//! report different numbers). Invariant: every counter only grows within a run, and
//! `syncing` is true exactly while a finalized block is being committed whose ancestors had
//! to be fetched from peers.

use std::net::SocketAddr;
use std::sync::Mutex;
use std::time::SystemTime;

use serde::Serialize;

use crate::consensus::VoteStats;

/// Shared, lock-protected network observations of one node.
#[derive(Debug, Default)]
pub struct NetworkStatus {
    inner: Mutex<Snapshot>,
    votes: Mutex<Option<VoteStats>>,
}

/// One validator of the consensus set as this node dials it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PeerView {
    /// Its ed25519 public key, hex.
    pub public_key: String,
    /// The p2p address this node dials.
    pub p2p_addr: SocketAddr,
    /// Whether this entry is this node itself.
    pub this_node: bool,
    /// Notarize votes this node has seen from it since start.
    pub notarizes: u64,
    /// Finalize votes seen from it since start.
    pub finalizes: u64,
    /// Nullify votes seen from it since start.
    pub nullifies: u64,
    /// The newest view it was seen voting in.
    pub last_vote_view: Option<u64>,
    /// Milliseconds since it last sent this node a block-channel message (none for this node
    /// or a peer never heard from).
    pub last_block_message_ms_ago: Option<u64>,
}

/// A full node (a peer that follows without voting) as this node knows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FullNodeView {
    /// Its ed25519 public key, hex.
    pub public_key: String,
    /// Its p2p address (full nodes dial validators; validators only accept them).
    pub p2p_addr: SocketAddr,
    /// Whether this entry is this node itself.
    pub this_node: bool,
}

/// A copy of everything [`NetworkStatus`] holds, as `GET /network` serves it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Snapshot {
    /// This node's validator key, hex (empty before consensus is configured).
    pub public_key: String,
    /// The p2p address this node listens on.
    pub listen: Option<SocketAddr>,
    /// `"validator"` (votes) or `"full_node"` (follows and verifies); empty before consensus
    /// is configured.
    pub role: String,
    /// The consensus validator set this node runs with, this node included.
    pub peers: Vec<PeerView>,
    /// The full nodes this node admits (a full node lists itself here).
    pub full_nodes: Vec<FullNodeView>,
    /// Whether the node is fetching finalized blocks it missed.
    pub syncing: bool,
    /// Blocks requested from peers since start.
    pub block_requests: u64,
    /// Finalized blocks committed after fetching them from peers, since start.
    pub blocks_synced: u64,
}

impl NetworkStatus {
    /// Records the validator set and this node's identity once consensus is configured.
    pub fn configure(&self, public_key: [u8; 32], listen: SocketAddr, peers: Vec<PeerView>) {
        let mut inner = self.lock();
        inner.public_key = hex::encode(public_key);
        inner.listen = Some(listen);
        inner.peers = peers;
    }

    /// Records whether this node votes, and the full nodes it admits.
    pub fn configure_role(&self, validator: bool, full_nodes: Vec<FullNodeView>) {
        let mut inner = self.lock();
        inner.role = if validator { "validator" } else { "full_node" }.to_owned();
        inner.full_nodes = full_nodes;
    }

    /// Attaches the consensus driver's vote counters, read on every snapshot.
    pub fn attach_votes(&self, votes: VoteStats) {
        *self.votes.lock().unwrap_or_else(|p| p.into_inner()) = Some(votes);
    }

    /// Marks the start or end of a catch-up.
    pub fn set_syncing(&self, syncing: bool) {
        self.lock().syncing = syncing;
    }

    /// Counts one block request sent to a peer.
    pub fn requested_block(&self) {
        let mut inner = self.lock();
        inner.block_requests = inner.block_requests.saturating_add(1);
    }

    /// Counts `blocks` finalized blocks committed after a fetch.
    pub fn synced_blocks(&self, blocks: u64) {
        let mut inner = self.lock();
        inner.blocks_synced = inner.blocks_synced.saturating_add(blocks);
    }

    /// A copy of the current observations.
    pub fn snapshot(&self) -> Snapshot {
        let mut snapshot = self.lock().clone();
        let votes = self.votes.lock().unwrap_or_else(|p| p.into_inner()).clone();
        let Some(votes) = votes else {
            return snapshot;
        };
        let activity = votes.snapshot();
        let now = SystemTime::now();
        for peer in &mut snapshot.peers {
            let key = hex::decode(&peer.public_key).unwrap_or_default();
            if let Some(seen) = activity.iter().find(|a| a.public_key[..] == key[..]) {
                peer.notarizes = seen.notarizes;
                peer.finalizes = seen.finalizes;
                peer.nullifies = seen.nullifies;
                peer.last_vote_view = seen.last_vote_view;
                peer.last_block_message_ms_ago = seen.last_block_message.map(|at| {
                    let ago = now.duration_since(at).unwrap_or_default().as_millis();
                    u64::try_from(ago).unwrap_or(u64::MAX)
                });
            }
        }
        snapshot
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Snapshot> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_grow() {
        let status = NetworkStatus::default();
        status.requested_block();
        status.requested_block();
        status.synced_blocks(3);
        let snapshot = status.snapshot();
        assert_eq!(snapshot.block_requests, 2);
        assert_eq!(snapshot.blocks_synced, 3);
        assert!(!snapshot.syncing);
    }
}
