//! The validator module's governable parameters and their ranges.

use borsh::{BorshDeserialize, BorshSerialize};
use serde::{Deserialize, Serialize};

use crate::params::{BPS_ONE, amount_string};
use crate::token::{Amount, BASE_UNITS_PER_POI};

/// Validator-set, slashing and liveness parameters.
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ValidatorParams {
    /// Most members of a computed set (the top candidates by stake).
    pub set_size_max: u32,
    /// Least validator collateral (locked self-bond) a candidate needs to enter a set.
    #[serde(with = "amount_string")]
    pub min_self_bond: Amount,
    /// Share of the offender's bonded stake an equivocation costs, basis points.
    pub equivocation_slash_bps: u16,
    /// Length of a liveness window, blocks: missed views are counted per window.
    pub liveness_window_blocks: u64,
    /// Missed leader views in one window that jail the leader.
    pub missed_views_max: u32,
    /// Blocks a jailed validator waits before it may unjail.
    pub jail_blocks: u64,
    /// Share of the bonded stake a jailing for downtime costs, basis points.
    pub downtime_slash_bps: u16,
    /// Share of an equivocation slash paid to the evidence's submitter, basis points (the
    /// rest is burned). Missing in older genesis files: the default.
    #[serde(default = "default_evidence_reward_bps")]
    pub evidence_reward_bps: u16,
}

fn default_evidence_reward_bps() -> u16 {
    1_000
}

impl Default for ValidatorParams {
    fn default() -> Self {
        Self {
            set_size_max: 100,
            min_self_bond: BASE_UNITS_PER_POI,
            equivocation_slash_bps: 500,
            liveness_window_blocks: 100,
            missed_views_max: 50,
            jail_blocks: 200,
            downtime_slash_bps: 10,
            evidence_reward_bps: default_evidence_reward_bps(),
        }
    }
}

impl ValidatorParams {
    /// Checks the invariants; the reason names the offending field.
    pub fn validate(&self) -> Result<(), String> {
        if self.set_size_max == 0 {
            return Err("validators.set_size_max must be at least 1".into());
        }
        if self.min_self_bond == 0 {
            return Err("validators.min_self_bond must be positive".into());
        }
        if self.equivocation_slash_bps > BPS_ONE
            || self.downtime_slash_bps > BPS_ONE
            || self.evidence_reward_bps > BPS_ONE
        {
            return Err(
                "validators slash and evidence reward shares must be at most 10000 bps".into(),
            );
        }
        if self.liveness_window_blocks == 0 || self.jail_blocks == 0 {
            return Err(
                "validators.liveness_window_blocks and jail_blocks must be positive".into(),
            );
        }
        if self.missed_views_max == 0
            || u64::from(self.missed_views_max) > self.liveness_window_blocks
        {
            return Err(format!(
                "validators.missed_views_max = {} must be in 1..=liveness_window_blocks ({})",
                self.missed_views_max, self.liveness_window_blocks
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_bad_ranges_are_refused() {
        let ok = ValidatorParams::default();
        assert_eq!(ok.validate(), Ok(()));
        let bad = [
            ValidatorParams {
                set_size_max: 0,
                ..ok.clone()
            },
            ValidatorParams {
                min_self_bond: 0,
                ..ok.clone()
            },
            ValidatorParams {
                equivocation_slash_bps: 10_001,
                ..ok.clone()
            },
            ValidatorParams {
                downtime_slash_bps: 10_001,
                ..ok.clone()
            },
            ValidatorParams {
                evidence_reward_bps: 10_001,
                ..ok.clone()
            },
            ValidatorParams {
                liveness_window_blocks: 0,
                ..ok.clone()
            },
            ValidatorParams {
                jail_blocks: 0,
                ..ok.clone()
            },
            ValidatorParams {
                missed_views_max: 0,
                ..ok.clone()
            },
            ValidatorParams {
                missed_views_max: 101,
                ..ok.clone()
            },
        ];
        for p in bad {
            assert!(p.validate().is_err(), "{p:?}");
        }
        let edge = ValidatorParams {
            evidence_reward_bps: 10_000,
            ..ok.clone()
        };
        assert_eq!(edge.validate(), Ok(()));
        assert_eq!(ok.evidence_reward_bps, 1_000);
    }
}
