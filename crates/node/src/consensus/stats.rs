//! Node-local activity counters of the validators: votes seen and block traffic.
//!
//! Owns: [`VoteStats`], the shared, lock-protected record the driver updates, and its
//! [`ParticipantActivity`] snapshot (served by the HTTP API). This is observability, not
//! consensus state: each node counts what it saw, counts differ between nodes, and a restart
//! keeps them only while the same [`VoteStats`] handle is reused.
//!
//! Invariants:
//! - only members of the validator set the driver installed (`VoteStats::install`) are
//!   tracked; anything about another key is ignored, so the record is bounded by the set;
//! - every update holds the lock for a few field writes and never awaits, so the consensus
//!   reporter may call it inline without blocking the engine.
//!
//! What a count means: the engine reports a vote when it first records it for a view, before
//! batch signature verification. A network vote is only accepted from the connection
//! authenticated as its signer, so a count can be inflated only by the validator itself
//! (with votes whose signatures then fail, which gets it blocked), never by a third party.

use std::{
    collections::BTreeMap,
    sync::{Arc, Mutex, MutexGuard},
    time::SystemTime,
};

/// One validator's activity as seen by this node.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ParticipantActivity {
    /// ed25519 public key of the validator.
    pub public_key: [u8; 32],
    /// Notarize votes seen (at most one per view).
    pub notarizes: u64,
    /// Finalize votes seen (at most one per view).
    pub finalizes: u64,
    /// Nullify votes seen (at most one per view).
    pub nullifies: u64,
    /// Highest view of any vote seen from it.
    pub last_vote_view: Option<u64>,
    /// When (runtime clock) a message from it last arrived on the block channel; `None` for
    /// this node itself and for peers never heard from.
    pub last_block_message: Option<SystemTime>,
}

/// A vote kind, as counted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum VoteKind {
    Notarize,
    Finalize,
    Nullify,
}

/// Shared per-validator counters; cloning shares them. See the module documentation.
#[derive(Clone, Debug, Default)]
pub struct VoteStats {
    inner: Arc<Mutex<BTreeMap<[u8; 32], ParticipantActivity>>>,
}

impl VoteStats {
    /// An empty record; the driver installs the validator set when consensus starts.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, BTreeMap<[u8; 32], ParticipantActivity>> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Tracks exactly `validators`: keeps the counters of keys already tracked, starts the
    /// others at zero and forgets keys not in the set.
    pub(crate) fn install(&self, validators: impl IntoIterator<Item = [u8; 32]>) {
        let mut inner = self.lock();
        let mut next = BTreeMap::new();
        for key in validators {
            let entry = inner.get(&key).copied().unwrap_or(ParticipantActivity {
                public_key: key,
                ..ParticipantActivity::default()
            });
            next.insert(key, entry);
        }
        *inner = next;
    }

    /// Counts a vote of `key` in `view`.
    pub(crate) fn record_vote(&self, key: &[u8; 32], kind: VoteKind, view: u64) {
        let mut inner = self.lock();
        let Some(entry) = inner.get_mut(key) else {
            return;
        };
        match kind {
            VoteKind::Notarize => entry.notarizes = entry.notarizes.saturating_add(1),
            VoteKind::Finalize => entry.finalizes = entry.finalizes.saturating_add(1),
            VoteKind::Nullify => entry.nullifies = entry.nullifies.saturating_add(1),
        }
        entry.last_vote_view = Some(entry.last_vote_view.map_or(view, |last| last.max(view)));
    }

    /// Notes that a block-channel message from `key` arrived at `at`.
    pub(crate) fn record_block_message(&self, key: &[u8; 32], at: SystemTime) {
        if let Some(entry) = self.lock().get_mut(key) {
            entry.last_block_message = Some(at);
        }
    }

    /// The activity of every tracked validator, sorted by public key (the order consensus
    /// indexes the set by).
    pub fn snapshot(&self) -> Vec<ParticipantActivity> {
        self.lock().values().copied().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_only_installed_validators_and_keeps_counts_across_installs() {
        let stats = VoteStats::new();
        stats.record_vote(&[1; 32], VoteKind::Notarize, 3);
        assert!(stats.snapshot().is_empty());
        stats.install([[2; 32], [1; 32]]);
        stats.record_vote(&[1; 32], VoteKind::Notarize, 3);
        stats.record_vote(&[1; 32], VoteKind::Finalize, 2);
        stats.record_vote(&[1; 32], VoteKind::Nullify, 5);
        stats.record_vote(&[9; 32], VoteKind::Notarize, 7);
        stats.record_block_message(&[2; 32], SystemTime::UNIX_EPOCH);
        let snapshot = stats.snapshot();
        assert_eq!(snapshot.len(), 2);
        assert_eq!(snapshot[0].public_key, [1; 32]);
        assert_eq!(
            (
                snapshot[0].notarizes,
                snapshot[0].finalizes,
                snapshot[0].nullifies
            ),
            (1, 1, 1)
        );
        assert_eq!(snapshot[0].last_vote_view, Some(5));
        assert_eq!(snapshot[1].last_block_message, Some(SystemTime::UNIX_EPOCH));
        // A restart installs the same set again: counters survive; a removed key is dropped.
        stats.install([[1; 32]]);
        assert_eq!(stats.snapshot()[0].notarizes, 1);
        assert_eq!(stats.snapshot().len(), 1);
    }
}
