//! Governable Proof-of-Intelligence parameters (`params.poi`), with their defaults and checks.
//!
//! Every bound here is a count (segments, bytes, steps, requests), never wall time. The caps
//! (`*_CAP`) are compiled in: governance moves a parameter only within them.

use borsh::{BorshDeserialize, BorshSerialize};
use serde::{Deserialize, Serialize};

use crate::params::amount_string;
use crate::token::{Amount, BASE_UNITS_PER_POI};

/// Largest `segments_target`.
pub const SEGMENTS_TARGET_CAP: u64 = 1 << 16;
/// Largest `spec_bytes_max`: a spec travels in one transaction (at most
/// [`crate::limits::TX_BYTES_MAX`]) and is stored once per job.
pub const SPEC_BYTES_CAP: u32 = 4 * 1024;
/// Largest `steps_max`: repops' `train::STEPS_MAX`. With it the final leaf's Merkle path has at
/// most [`super::merkle::FINAL_PROOF_SIBLINGS_MAX`] siblings.
pub const STEPS_CAP: u64 = 1 << 24;
/// Largest `requests_max`.
pub const REQUESTS_CAP: u64 = 1 << 16;

/// Governable Proof-of-Intelligence parameters.
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PoiParams {
    /// Segments a training job is cut into, about: `segment_steps = max(1, ceil(steps /
    /// segments_target))` (1..=[`SEGMENTS_TARGET_CAP`]).
    pub segments_target: u64,
    /// Longest job spec `SubmitTraining` carries, bytes (1..=[`SPEC_BYTES_CAP`]).
    pub spec_bytes_max: u32,
    /// Most steps one training job may have (1..=[`STEPS_CAP`]).
    pub steps_max: u64,
    /// Most requests one inference job may have (1..=[`REQUESTS_CAP`]).
    pub requests_max: u64,
    /// Least bond, base units, `RegisterVerifier` locks (positive; 1,000 POI). Raising it does
    /// not touch verifiers already registered.
    #[serde(with = "amount_string")]
    pub verifier_bond_min: Amount,
    /// Views between a commitment and the seed that draws its checks
    /// ([`BEACON_DELAY_MIN`]..=[`BEACON_VIEWS_CAP`]).
    pub beacon_delay_views: u64,
    /// Views a due target waits for a block to carry its seed before it moves to the current
    /// view plus the delay (1..=[`BEACON_VIEWS_CAP`]).
    pub beacon_timeout_views: u64,
    /// Most seeds one block carries (1..=[`SEEDS_PER_BLOCK_CAP`]).
    pub seeds_per_block_max: u32,
    /// Most due draw targets one block visits (1..=[`DRAWS_PER_BLOCK_CAP`]).
    pub draws_per_block_max: u32,
    /// Chance, bps, that a training segment is spot-checked (`f`; the last segment always
    /// is), 0..=10,000.
    pub check_bps: u32,
    /// Chance, bps, that an inference request is re-executed (`r`; at least one per job),
    /// 0..=10,000.
    pub infer_check_bps: u32,
    /// Most open checks one verifier holds (1..=[`CHECKS_PER_VERIFIER_CAP`]).
    pub verifier_checks_max: u32,
    /// Blocks an assigned verifier has to fetch, re-execute and attest (1..=[`BLOCKS_CAP`]).
    pub check_blocks: u64,
    /// Assignments a check gets before it is waived (1..=16).
    pub check_attempts_max: u32,
    /// Referees that re-check an accusation (odd, 1..=15).
    pub referees: u32,
    /// Strikes that jail a verifier (1..=100).
    pub strikes_to_jail: u32,
    /// Blocks a jailed verifier takes no checks (1..=[`BLOCKS_CAP`]).
    pub jail_blocks: u64,
    /// Most check deadlines one block fires (1..=[`DRAWS_PER_BLOCK_CAP`]).
    pub deadlines_per_block_max: u32,
    /// Blocks after a training commit for the owner's eval reveal (1..=[`BLOCKS_CAP`]).
    pub reveal_blocks: u64,
    /// Blocks after the reveal (or its deadline) for the provider's score claim
    /// (1..=[`BLOCKS_CAP`]).
    pub claim_blocks: u64,
    /// The reward multiplier `m(g)`, ppm of improvement to ppm, piecewise linear (see
    /// [`super::quality::multiplier_ppm`]).
    pub quality_knots: Vec<(u64, u64)>,
    /// Least verified improvement, ppm, that registers a model version.
    pub registry_min_improvement_ppm: u64,
    /// Root of the canary issuers' leaves (see [`super::canary`]), hex; none: no canaries.
    #[serde(with = "hex32_option")]
    pub canary_root: Option<[u8; 32]>,
    /// Leaves under `canary_root`.
    pub canary_leaves: u64,
    /// Share of its bond, bps, a validator caught matching a canary loses (0..10,000).
    pub lazy_slash_bps: u32,
    /// Blocks each party of a dispute has for its move (1..=[`BLOCKS_CAP`]).
    pub move_blocks: u64,
    /// Most operators a step's trace may have in a dispute (1..=[`OPS_PER_STEP_CAP`]).
    pub ops_per_step_max: u64,
    /// Least challenge bond, base units (10 POI).
    #[serde(with = "amount_string")]
    pub challenge_bond_min: Amount,
    /// Challenge bond as a share of the job's escrow, bps (0..=10,000).
    pub challenge_bond_bps: u32,
}

/// Largest `ops_per_step_max`.
pub const OPS_PER_STEP_CAP: u64 = 1 << 16;

/// `Option<[u8; 32]>` as an optional hex string.
mod hex32_option {
    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(v: &Option<[u8; 32]>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            Some(bytes) => s.serialize_str(&hex::encode(bytes)),
            None => s.serialize_str(""),
        }
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<[u8; 32]>, D::Error> {
        let text = String::deserialize(d)?;
        if text.is_empty() {
            return Ok(None);
        }
        let bytes = hex::decode(&text).map_err(serde::de::Error::custom)?;
        let array: [u8; 32] = bytes
            .try_into()
            .map_err(|_| serde::de::Error::custom("a canary root is 32 bytes"))?;
        Ok(Some(array))
    }
}

/// Largest `verifier_checks_max`.
pub const CHECKS_PER_VERIFIER_CAP: u32 = 1_024;
/// Largest `check_blocks` and `jail_blocks`.
pub const BLOCKS_CAP: u64 = 1_000_000;

/// Least `beacon_delay_views`: the seed of the commit's own view, or the next, could be known
/// to a coalition of validators before the commit is final.
pub const BEACON_DELAY_MIN: u64 = 3;
/// Largest `beacon_delay_views` and `beacon_timeout_views`.
pub const BEACON_VIEWS_CAP: u64 = 100_000;
/// Largest `seeds_per_block_max` (each seed costs a pairing check, about a millisecond).
pub const SEEDS_PER_BLOCK_CAP: u32 = 64;
/// Largest `draws_per_block_max`.
pub const DRAWS_PER_BLOCK_CAP: u32 = 4_096;

impl Default for PoiParams {
    fn default() -> Self {
        Self {
            segments_target: 256,
            spec_bytes_max: 1_024,
            steps_max: STEPS_CAP,
            requests_max: 4_096,
            verifier_bond_min: 1_000 * BASE_UNITS_PER_POI,
            beacon_delay_views: 20,
            beacon_timeout_views: 200,
            seeds_per_block_max: 8,
            draws_per_block_max: 64,
            check_bps: 300,
            infer_check_bps: 300,
            verifier_checks_max: 16,
            check_blocks: 120,
            check_attempts_max: 3,
            referees: 3,
            strikes_to_jail: 3,
            jail_blocks: 10_000,
            deadlines_per_block_max: 64,
            reveal_blocks: 50,
            claim_blocks: 30,
            quality_knots: vec![
                (0, 0),
                (50_000, 500_000),
                (200_000, 1_000_000),
                (500_000, 1_500_000),
            ],
            registry_min_improvement_ppm: 1,
            canary_root: None,
            canary_leaves: 0,
            lazy_slash_bps: 2_000,
            move_blocks: 20,
            ops_per_step_max: 4_096,
            challenge_bond_min: 10 * BASE_UNITS_PER_POI,
            challenge_bond_bps: 1_000,
        }
    }
}

impl PoiParams {
    /// Checks the invariants; the reason names the offending field.
    pub fn validate(&self) -> Result<(), String> {
        let ranges = [
            ("segments_target", self.segments_target, SEGMENTS_TARGET_CAP),
            (
                "spec_bytes_max",
                u64::from(self.spec_bytes_max),
                u64::from(SPEC_BYTES_CAP),
            ),
            ("steps_max", self.steps_max, STEPS_CAP),
            ("requests_max", self.requests_max, REQUESTS_CAP),
            (
                "beacon_timeout_views",
                self.beacon_timeout_views,
                BEACON_VIEWS_CAP,
            ),
            (
                "seeds_per_block_max",
                u64::from(self.seeds_per_block_max),
                u64::from(SEEDS_PER_BLOCK_CAP),
            ),
            (
                "draws_per_block_max",
                u64::from(self.draws_per_block_max),
                u64::from(DRAWS_PER_BLOCK_CAP),
            ),
            (
                "verifier_checks_max",
                u64::from(self.verifier_checks_max),
                u64::from(CHECKS_PER_VERIFIER_CAP),
            ),
            ("check_blocks", self.check_blocks, BLOCKS_CAP),
            ("check_attempts_max", u64::from(self.check_attempts_max), 16),
            ("referees", u64::from(self.referees), 15),
            ("strikes_to_jail", u64::from(self.strikes_to_jail), 100),
            ("jail_blocks", self.jail_blocks, BLOCKS_CAP),
            ("reveal_blocks", self.reveal_blocks, BLOCKS_CAP),
            ("move_blocks", self.move_blocks, BLOCKS_CAP),
            ("ops_per_step_max", self.ops_per_step_max, OPS_PER_STEP_CAP),
            ("claim_blocks", self.claim_blocks, BLOCKS_CAP),
            (
                "deadlines_per_block_max",
                u64::from(self.deadlines_per_block_max),
                u64::from(DRAWS_PER_BLOCK_CAP),
            ),
        ];
        for (name, value, cap) in ranges {
            if value == 0 || value > cap {
                return Err(format!("poi.{name} = {value}, must be 1..={cap}"));
            }
        }
        if !(BEACON_DELAY_MIN..=BEACON_VIEWS_CAP).contains(&self.beacon_delay_views) {
            return Err(format!(
                "poi.beacon_delay_views = {}, must be {BEACON_DELAY_MIN}..={BEACON_VIEWS_CAP}",
                self.beacon_delay_views
            ));
        }
        for (name, bps) in [
            ("check_bps", self.check_bps),
            ("infer_check_bps", self.infer_check_bps),
        ] {
            if bps > 10_000 {
                return Err(format!("poi.{name} = {bps}, must be at most 10000"));
            }
        }
        super::quality::validate_knots(&self.quality_knots)?;
        if self.challenge_bond_bps > 10_000 || self.challenge_bond_min == 0 {
            return Err(
                "poi.challenge_bond_bps is 0..=10000 and challenge_bond_min positive".into(),
            );
        }
        if self.lazy_slash_bps >= 10_000 {
            return Err(format!(
                "poi.lazy_slash_bps = {}, must be below 10000 (a slashed bond stays positive)",
                self.lazy_slash_bps
            ));
        }
        if self.canary_root.is_some() != (self.canary_leaves > 0) {
            return Err("poi.canary_root and poi.canary_leaves are set together".into());
        }
        if self.referees.is_multiple_of(2) {
            return Err(format!(
                "poi.referees = {}, must be odd so a majority always exists",
                self.referees
            ));
        }
        if self.verifier_bond_min == 0 {
            return Err("poi.verifier_bond_min must be positive".into());
        }
        Ok(())
    }

    /// `segment_steps = max(1, ceil(steps / segments_target))`; `None` only if
    /// `segments_target` is 0 (which validation refuses).
    pub fn segment_steps(&self, steps: u64) -> Option<u64> {
        if self.segments_target == 0 {
            return None;
        }
        Some(steps.div_ceil(self.segments_target).max(1))
    }
}
