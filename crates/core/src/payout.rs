//! What a verified job's payment pays for, besides the provider.
//!
//! Owns no state. When PoI settles a verified job the market has paid the provider `paid`;
//! this takes from it, in order:
//! 1. the **job fee**: `paid x job_fee_bps / 10^4` into the reward pool, counted as the epoch's
//!    fees ([`crate::rewards::add_fee`]);
//! 2. **royalties** (inference on a registered version): `paid x royalty_bps / 10^4`, split
//!    along the version's lineage: the served version weighs 10,000, its base
//!    `10,000 x lineage_decay_bps / 10^4`, the next one that times the decay again, up to
//!    `lineage_depth_max` versions; each version's weight is shared by its developers' bps, and
//!    the royalty is split by those weights with the largest-remainder method
//!    ([`crate::rewards::split`]), exact to the base unit;
//! 3. the **usage burn** ([`crate::burn`]), at most `payment_max_bps` of `paid` and at most
//!    what is left.
//!
//! Every share rounds down, so the parts never exceed `paid`; the provider keeps the rest,
//! including all rounding. Nothing is created or destroyed except the recorded burn.

use crate::address::Address;
use crate::bank;
use crate::error::TxError;
use crate::event::Event;
use crate::module::ExecContext;
use crate::poi::registry;
use crate::supply::{self, BurnReason};
use crate::token::Amount;

/// A verified job's payment, as settled.
#[derive(Debug, Clone)]
pub(crate) struct Payment {
    /// The job.
    pub job: u64,
    /// Who was paid.
    pub provider: Address,
    /// What the market paid.
    pub paid: Amount,
    /// Units delivered.
    pub units: u64,
    /// Inference (else training).
    pub inference: bool,
    /// The served version (inference).
    pub version: Option<u64>,
    /// The verified quality multiplier, ppm (the job's for training, the version's for
    /// inference).
    pub quality_ppm: u64,
}

/// What the payment was split into.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Split {
    /// To the reward pool.
    pub fee: Amount,
    /// To developers.
    pub royalties: Amount,
    /// Burned.
    pub burned: Amount,
    /// Left with the provider.
    pub provider: Amount,
}

/// Royalty weights along `version`'s lineage, merged per developer (ordered by address).
pub fn royalty_weights(
    lineage: &[registry::ModelVersion],
    decay_bps: u32,
    depth_max: u32,
) -> Vec<(Address, u128)> {
    let mut merged: std::collections::BTreeMap<Address, u128> = Default::default();
    let mut step: u128 = 10_000;
    for version in lineage.iter().take(depth_max as usize) {
        if step == 0 {
            break;
        }
        for d in &version.developers {
            let w = step.saturating_mul(u128::from(d.bps));
            let e = merged.entry(d.address).or_default();
            *e = e.saturating_add(w);
        }
        step = step * u128::from(decay_bps.min(10_000)) / 10_000;
    }
    merged.into_iter().collect()
}

fn bps_of(amount: Amount, bps: u32) -> Result<Amount, TxError> {
    amount
        .checked_mul(Amount::from(bps.min(10_000)))
        .map(|v| v / 10_000)
        .ok_or(TxError::Overflow("payment share"))
}

/// Takes the fee, royalties and burn out of a verified job's payment.
pub(crate) fn split_payment(ctx: &mut ExecContext<'_, '_>, p: &Payment) -> Result<Split, TxError> {
    let rewards = ctx.params.rewards.clone();
    let fee = bps_of(p.paid, rewards.job_fee_bps)?;
    if fee > 0 {
        crate::rewards::add_fee(ctx, p.provider, fee)?;
    }
    let mut royalties = 0;
    if p.inference
        && let Some(version) = p.version
    {
        let cut = bps_of(p.paid, rewards.royalty_bps)?;
        let lineage = registry::lineage(ctx.state, version)?;
        let weights = royalty_weights(
            &lineage,
            rewards.lineage_decay_bps,
            rewards.lineage_depth_max,
        );
        if cut > 0
            && let Some(parts) = crate::rewards::split(cut, &weights)
        {
            for (who, amount) in parts {
                if amount == 0 {
                    continue;
                }
                bank::transfer(ctx.state, p.provider, who, amount)?;
                royalties += amount;
                ctx.emit(
                    Event::new(crate::rewards::NAME, "royalty")
                        .with("job", p.job)
                        .with("version", version)
                        .with("to", who)
                        .with("amount", amount),
                );
            }
        }
    }
    let left = p.paid - fee - royalties;
    let mut burned = 0;
    if ctx.params.burn.enabled() {
        let demand = ctx
            .params
            .burn
            .demand(p.units, p.inference, p.quality_ppm)
            .ok_or(TxError::Overflow("burn demand"))?;
        let cap = bps_of(p.paid, ctx.params.burn.payment_max_bps)?;
        burned = crate::burn::meter(ctx, demand)?.min(cap).min(left);
        let reason = if p.inference {
            BurnReason::UsageInference
        } else {
            BurnReason::UsageTraining
        };
        supply::burn(ctx, p.provider, burned, reason)?;
        crate::burn::burned(ctx, burned)?;
    }
    Ok(Split {
        fee,
        royalties,
        burned,
        provider: left - burned,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::poi::registry::{DeveloperShare, ModelVersion};

    fn version(id: u64, devs: &[(u8, u32)]) -> ModelVersion {
        ModelVersion {
            id,
            name: "m".into(),
            version: 1,
            model: "mlp".into(),
            params_digest: [0; 32],
            job: None,
            base: None,
            datasets: vec![],
            developers: devs
                .iter()
                .map(|(a, bps)| DeveloperShare {
                    address: Address([*a; 32]),
                    bps: *bps,
                })
                .collect(),
            provider: None,
            score: 0,
            base_score: 0,
            improvement_ppm: 0,
            multiplier_ppm: 0,
            height: 0,
        }
    }

    #[test]
    fn lineage_weights_decay_and_merge() {
        let lineage = [
            version(2, &[(1, 10_000)]),
            version(1, &[(2, 5_000), (3, 5_000)]),
            version(0, &[(1, 10_000)]),
        ];
        let w = royalty_weights(&lineage, 5_000, 8);
        // Served: 10,000 x 10,000 to dev 1; base: 5,000 x 5,000 each to 2 and 3;
        // root: 2,500 x 10,000 back to dev 1.
        assert_eq!(
            w,
            vec![
                (Address([1; 32]), 100_000_000 + 25_000_000),
                (Address([2; 32]), 25_000_000),
                (Address([3; 32]), 25_000_000),
            ]
        );
        // Depth 1 pays only the served version.
        assert_eq!(royalty_weights(&lineage, 5_000, 1).len(), 1);
        let parts = crate::rewards::split(1_001, &w).expect("weights");
        assert_eq!(parts.iter().map(|p| p.1).sum::<u128>(), 1_001);
    }
}
