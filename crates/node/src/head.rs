//! The head: the newest finalized block, whose durable commit may still be running.
//!
//! Owns `InFlight` (a finalized block handed to the store's writer) and [`HeadView`] (state
//! and tree as of the head, for executing its child). A block's commit (page writes and fsync)
//! takes about as long as executing the next block, so the ledger overlaps them: block N is
//! written on a background thread while block N+1 executes over N's writes and prepares its root
//! over N's uncommitted tree nodes ([`poi_store::Store::prepare_after`]).
//!
//! Invariants: at most one block is in flight, and it is the child of the durable tip; a view
//! taken while a block is in flight layers that block's writes over a store snapshot, which is
//! correct whether the snapshot was taken before or after the commit landed (the writes are the
//! same); nothing is acknowledged (tip, events, receipts) before the commit is durable.

use std::sync::Arc;

use poi_core::block::{BlockHash, BlockHeader};
use poi_core::error::StateError;
use poi_core::state::{Layered, StateReader, WriteSet};
use poi_store::{Committed, Prepared, Store};

use crate::error::Result;
use crate::ledger::SnapshotState;

/// A finalized block whose commit runs on a background thread.
pub(crate) struct InFlight {
    /// The block's hash, height and state root.
    pub(crate) committed: Committed,
    /// Its header (its child's timestamp must not precede it).
    pub(crate) header: BlockHeader,
    /// The state writes it makes over the durable tip.
    pub(crate) writes: WriteSet,
    /// Its prepared tree update, which its child's root is computed over.
    pub(crate) prepared: Prepared,
}

/// State as of the head, for building or verifying its child.
pub struct HeadView {
    pub(crate) head: Committed,
    pub(crate) in_flight: Option<Arc<InFlight>>,
    pub(crate) snapshot: SnapshotState,
}

impl HeadView {
    /// The head block: hash, height and state root.
    pub fn head(&self) -> Committed {
        self.head
    }

    /// Whether `hash` is the head.
    pub(crate) fn is(&self, hash: &BlockHash) -> bool {
        self.head.block_hash == *hash
    }

    /// The head's header when it is in flight (else read it from the store).
    pub(crate) fn in_flight_header(&self) -> Option<&BlockHeader> {
        self.in_flight.as_ref().map(|block| &block.header)
    }

    /// Prepares the state root of the head's child, over the in-flight tree if there is one.
    pub(crate) fn prepare(
        &self,
        store: &Store,
        height: u64,
        writes: &WriteSet,
    ) -> Result<Prepared> {
        Ok(match &self.in_flight {
            Some(block) => store.prepare_after(&block.prepared, height, writes)?,
            None => store.prepare(height, writes)?,
        })
    }
}

impl StateReader for HeadView {
    fn get(&self, key: &[u8]) -> std::result::Result<Option<Vec<u8>>, StateError> {
        match &self.in_flight {
            Some(block) => Layered::new(&self.snapshot, &block.writes).get(key),
            None => self.snapshot.get(key),
        }
    }

    fn scan_prefix(
        &self,
        prefix: &[u8],
        visit: &mut dyn FnMut(&[u8], &[u8]) -> bool,
    ) -> std::result::Result<(), StateError> {
        match &self.in_flight {
            Some(block) => Layered::new(&self.snapshot, &block.writes).scan_prefix(prefix, visit),
            None => self.snapshot.scan_prefix(prefix, visit),
        }
    }
}
