//! Canary issuing: a provider that is also half of a canary issuer pair plants wrong work in
//! the jobs of its partner client, seals them as canaries and reveals them once checked, so
//! a validator that matched the planted work without re-running it is slashed
//! (`poi_core::poi::canary`).
//!
//! The issuer's secrets come from its operator (the devnet derives them from its seed);
//! governance's `poi.canary_root` lists `canary_leaf(client, provider, secret_i)` for each.
//! Each canary uses the next unused secret (a revealed secret is public, so it is never
//! reused); `canaries.json` in the agent's directory remembers which job used which.

use std::collections::BTreeMap;

use poi_core::Address;
use poi_core::poi::canary::{canary_leaf, canary_seal};
use poi_repops::commit::{Digest, merkle_proof, merkle_root};
use serde::{Deserialize, Serialize};

use crate::Result;
use crate::store::AgentDir;

/// A provider's canary issuing: its partner client and its secrets.
#[derive(Debug, Clone)]
pub struct CanaryConfig {
    /// The client identity whose jobs this provider plants errors in.
    pub client: Address,
    /// The secrets, in leaf order.
    pub secrets: Vec<[u8; 32]>,
}

impl CanaryConfig {
    /// The leaves governance lists for the pair `(client, provider)`.
    pub fn leaves(&self, provider: &Address) -> Vec<[u8; 32]> {
        self.secrets
            .iter()
            .map(|s| canary_leaf(&self.client, provider, s))
            .collect()
    }

    /// `poi.canary_root` for these leaves (core's Merkle root, which is repops').
    pub fn root(&self, provider: &Address) -> [u8; 32] {
        let leaves: Vec<Digest> = self.leaves(provider).into_iter().map(Digest).collect();
        merkle_root(&leaves).0
    }

    /// The audit path of leaf `index`.
    pub fn proof(&self, provider: &Address, index: u64) -> Result<Vec<[u8; 32]>> {
        let leaves: Vec<Digest> = self.leaves(provider).into_iter().map(Digest).collect();
        Ok(merkle_proof(&leaves, index)?
            .siblings
            .iter()
            .map(|d| d.0)
            .collect())
    }
}

/// Which job used which secret.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct CanaryLog {
    /// Job id to leaf index.
    pub jobs: BTreeMap<u64, u64>,
}

impl CanaryLog {
    fn path(dir: &AgentDir) -> std::path::PathBuf {
        dir.root().join("canaries.json")
    }

    /// Reads the log (empty if none).
    pub fn read(dir: &AgentDir) -> Result<Self> {
        Ok(crate::store::read_json(&Self::path(dir))?.unwrap_or_default())
    }

    /// The leaf index of job `job`, assigning the next free one (`None` when all are used).
    pub fn index_for(dir: &AgentDir, job: u64, secrets: usize) -> Result<Option<u64>> {
        let mut log = Self::read(dir)?;
        if let Some(i) = log.jobs.get(&job) {
            return Ok(Some(*i));
        }
        let next = log.jobs.len() as u64;
        if next >= secrets as u64 {
            return Ok(None);
        }
        log.jobs.insert(job, next);
        crate::store::write_json(&Self::path(dir), &log)?;
        Ok(Some(next))
    }
}

/// The `sealed` field of canary `job` with secret `secret`.
pub fn seal(job: u64, secret: &[u8; 32]) -> [u8; 32] {
    canary_seal(job, secret)
}
