//! The parameters governance may change, each with the range a proposal must stay inside.
//!
//! A change names a parameter by its path in genesis TOML (`rewards.royalty_bps`) and a decimal
//! integer value. [`check`] refuses an unknown path or a value outside its range at
//! submission; [`apply`] writes a change into a copy of the parameters, which the caller then
//! validates as a whole ([`Params::validate`]), so no combination of changes can break an
//! invariant (shares summing past 100%, a quorum above 100%).
//!
//! The epoch length is not governable: epochs are numbered `height / epoch_blocks`, so
//! changing it would renumber them and collide with recorded epochs. Nor is the referee
//! count: accusations already drawn are decided by a majority of the count they were drawn
//! with.

use crate::params::Params;

/// One governable parameter: its path and inclusive range.
struct Governable {
    path: &'static str,
    min: u128,
    max: u128,
}

const fn g(path: &'static str, min: u128, max: u128) -> Governable {
    Governable { path, min, max }
}

/// Every parameter a proposal may change.
const TABLE: &[Governable] = &[
    g("fee_burn_bps", 0, 10_000),
    g("fee_treasury_bps", 0, 10_000),
    g("min_fee_base", 0, 1_000_000_000),
    g("min_fee_per_byte", 0, 1_000_000),
    g("rewards.job_fee_bps", 0, 5_000),
    g("rewards.royalty_bps", 0, 5_000),
    g("rewards.lineage_decay_bps", 0, 10_000),
    g("rewards.lineage_depth_max", 1, 64),
    g("burn.per_unit", 0, 1_000_000_000_000),
    g("burn.per_request", 0, 1_000_000_000_000_000),
    g("burn.payment_max_bps", 0, 10_000),
    g("poi.check_bps", 1, 10_000),
    g("poi.infer_check_bps", 1, 10_000),
    g("market.provider_jobs_max", 1, 1_000),
    g("market.dispute_blocks", 10, 1_000_000),
    g("governance.deposit_min", 1, 1_000_000_000_000_000_000),
    g("governance.voting_blocks", 10, 10_000_000),
    g(
        "governance.timelock_blocks",
        super::TIMELOCK_MIN_BLOCKS as u128,
        10_000_000,
    ),
    g("governance.extension_blocks", 0, 1_000_000),
    g("governance.quorum_bps", 1_000, 10_000),
    g("governance.threshold_bps", 5_000, 10_000),
    g("governance.veto_bps", 1_000, 10_000),
    // The consensus engine bounds its participant set at 1,024.
    g("validators.set_size_max", 4, 1_024),
    g("validators.min_self_bond", 1, 1_000_000_000_000_000_000),
    g("validators.equivocation_slash_bps", 100, 10_000),
    g("validators.liveness_window_blocks", 10, 1_000_000),
    g("validators.missed_views_max", 1, 1_000_000),
    g("validators.jail_blocks", 10, 10_000_000),
    g("validators.downtime_slash_bps", 0, 1_000),
    g("validators.evidence_reward_bps", 0, 10_000),
];

/// The governable paths, in table order.
pub fn paths() -> impl Iterator<Item = &'static str> {
    TABLE.iter().map(|g| g.path)
}

/// The parsed value of a change, or why it is refused: an unknown path or a value outside the
/// parameter's range.
pub fn check(path: &str, value: &str) -> Result<u128, String> {
    let g = TABLE
        .iter()
        .find(|g| g.path == path)
        .ok_or_else(|| format!("`{path}` is not a governable parameter"))?;
    let v: u128 = value
        .parse()
        .map_err(|_| format!("{path}: `{value}` is not a non-negative integer"))?;
    if !(g.min..=g.max).contains(&v) {
        return Err(format!(
            "{path} = {v} is outside its range {}..={}",
            g.min, g.max
        ));
    }
    Ok(v)
}

fn narrow<T: TryFrom<u128>>(path: &str, v: u128) -> Result<T, String> {
    T::try_from(v).map_err(|_| format!("{path} = {v} does not fit"))
}

/// Writes the checked change `path = value` into `params`.
pub fn apply(params: &mut Params, path: &str, value: &str) -> Result<(), String> {
    let v = check(path, value)?;
    match path {
        "fee_burn_bps" => params.fee_burn_bps = narrow(path, v)?,
        "fee_treasury_bps" => params.fee_treasury_bps = narrow(path, v)?,
        "min_fee_base" => params.min_fee_base = v,
        "min_fee_per_byte" => params.min_fee_per_byte = v,
        "rewards.job_fee_bps" => params.rewards.job_fee_bps = narrow(path, v)?,
        "rewards.royalty_bps" => params.rewards.royalty_bps = narrow(path, v)?,
        "rewards.lineage_decay_bps" => params.rewards.lineage_decay_bps = narrow(path, v)?,
        "rewards.lineage_depth_max" => params.rewards.lineage_depth_max = narrow(path, v)?,
        "burn.per_unit" => params.burn.per_unit = v,
        "burn.per_request" => params.burn.per_request = v,
        "burn.payment_max_bps" => params.burn.payment_max_bps = narrow(path, v)?,
        "poi.check_bps" => params.poi.check_bps = narrow(path, v)?,
        "poi.infer_check_bps" => params.poi.infer_check_bps = narrow(path, v)?,
        "market.provider_jobs_max" => params.market.provider_jobs_max = narrow(path, v)?,
        "market.dispute_blocks" => params.market.dispute_blocks = narrow(path, v)?,
        "governance.deposit_min" => params.governance.deposit_min = v,
        "governance.voting_blocks" => params.governance.voting_blocks = narrow(path, v)?,
        "governance.timelock_blocks" => params.governance.timelock_blocks = narrow(path, v)?,
        "governance.extension_blocks" => params.governance.extension_blocks = narrow(path, v)?,
        "governance.quorum_bps" => params.governance.quorum_bps = narrow(path, v)?,
        "governance.threshold_bps" => params.governance.threshold_bps = narrow(path, v)?,
        "governance.veto_bps" => params.governance.veto_bps = narrow(path, v)?,
        "validators.set_size_max" => params.validators.set_size_max = narrow(path, v)?,
        "validators.min_self_bond" => params.validators.min_self_bond = v,
        "validators.equivocation_slash_bps" => {
            params.validators.equivocation_slash_bps = narrow(path, v)?;
        }
        "validators.liveness_window_blocks" => {
            params.validators.liveness_window_blocks = narrow(path, v)?;
        }
        "validators.missed_views_max" => params.validators.missed_views_max = narrow(path, v)?,
        "validators.jail_blocks" => params.validators.jail_blocks = narrow(path, v)?,
        "validators.downtime_slash_bps" => params.validators.downtime_slash_bps = narrow(path, v)?,
        "validators.evidence_reward_bps" => {
            params.validators.evidence_reward_bps = narrow(path, v)?
        }
        _ => return Err(format!("`{path}` is not a governable parameter")),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_listed_path_applies_at_both_ends_of_its_range() {
        for g in TABLE {
            for v in [g.min, g.max] {
                let mut p = Params::default();
                apply(&mut p, g.path, &v.to_string()).unwrap_or_else(|e| panic!("{}: {e}", g.path));
            }
        }
    }

    #[test]
    fn out_of_range_and_unknown_changes_are_refused() {
        assert!(
            check("rewards.royalty_bps", "5001")
                .unwrap_err()
                .contains("outside")
        );
        assert!(check("rewards.royalty_bps", "-1").is_err());
        assert!(
            check("chain_id", "1")
                .unwrap_err()
                .contains("not a governable")
        );
        assert_eq!(check("rewards.royalty_bps", "250"), Ok(250));
    }
}
