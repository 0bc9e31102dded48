//! Slashing: a provider's proven fault costs `slash_bps` of its collateral.
//!
//! Faults: a missed heartbeat (no heartbeat for `heartbeat_timeout_blocks`), a matched job not
//! started by its start deadline, a running job not committed by its commit deadline, and a
//! dispute decided against the provider ([`super::resolve_dispute`]).
//!
//! # Where the slashed stake goes
//! `slashed = min(floor(collateral x slash_bps / 10,000), locked stake)` leaves the staking
//! module ([`crate::staking::slash`]). It first compensates the users of the affected jobs (in
//! job-id order) up to their loss, defined as an SLA credit of
//! `floor(escrow x sla_credit_bps / 10,000)` per job. A dispute won by a challenger
//! ([`super::resolve_dispute_for`] with a winner) then pays it
//! `floor(rest x dispute_reward_bps / 10,000)` of what remains. Of what remains after that,
//! `floor(rest x slash_burn_bps / 10,000)` is burned ([`BurnReason::Slash`]) and the rest,
//! including the rounding remainder, goes to the treasury. So the parts always add up to
//! `slashed` exactly. The affected jobs themselves lose nothing: their escrow stays whole.

use crate::address::Address;
use crate::bank::{self, share_bps};
use crate::error::{self, TxError};
use crate::event::Event;
use crate::module::ExecContext;
use crate::staking;
use crate::supply::{self, BurnReason};
use crate::token::Amount;

use super::NAME;
use super::provider::reputation_after;
use super::records::{Job, Provider};

/// Why a provider was slashed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SlashReason {
    /// No heartbeat within `heartbeat_timeout_blocks`.
    MissedHeartbeat,
    /// A matched job not started by its start deadline.
    StartMissed,
    /// A running job not committed by its commit deadline.
    CommitMissed,
    /// A dispute decided against the provider.
    Dispute,
}

impl SlashReason {
    /// The stable name used in events.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::MissedHeartbeat => "missed_heartbeat",
            Self::StartMissed => "start_missed",
            Self::CommitMissed => "commit_missed",
            Self::Dispute => "dispute",
        }
    }
}

/// What a slash event records as evidence.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Evidence {
    /// The job the fault concerns (none for a heartbeat miss without jobs).
    pub job: Option<u64>,
    /// The provider's last heartbeat height.
    pub last_heartbeat: u64,
    /// The deadline that passed (for disputes: the commit height).
    pub deadline: u64,
}

/// How one slash was divided.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SlashOutcome {
    /// Removed from the provider's stake.
    pub slashed: Amount,
    /// Paid to affected users.
    pub compensated: Amount,
    /// Paid to the dispute's winning challenger.
    pub rewarded: Amount,
    /// Burned.
    pub burned: Amount,
    /// Sent to the treasury.
    pub treasury: Amount,
}

/// Slashes `p` for `reason`, compensating the owners of `victims` first, then paying `winner`
/// (a dispute's winning challenger, if any) its `dispute_reward_bps` of the rest. Updates the
/// provider's collateral, slash record and reputation (the caller writes `p` and the victims).
pub(crate) fn slash(
    ctx: &mut ExecContext<'_, '_>,
    p: &mut Provider,
    reason: SlashReason,
    victims: &mut [Job],
    evidence: Evidence,
    winner: Option<Address>,
) -> Result<SlashOutcome, TxError> {
    let params = &ctx.params.market;
    let wanted = share_bps(p.collateral, params.slash_bps)?;
    let slashed = staking::slash(ctx.state, p.address, wanted)?;
    p.collateral = error::sub(p.collateral, slashed, "collateral")?;
    p.slashes = p
        .slashes
        .checked_add(1)
        .ok_or(TxError::Overflow("slashes"))?;
    p.slashed_total = error::add(p.slashed_total, slashed, "slashed total")?;
    p.reputation_ppm = reputation_after(p.reputation_ppm, 0, params.reputation_weight_ppm);
    let mut rest = slashed;
    let mut compensated = 0;
    for job in victims.iter_mut() {
        let credit = share_bps(job.escrow, params.sla_credit_bps)?.min(rest);
        if credit > 0 {
            bank::credit(ctx.state, job.owner, credit)?;
            job.compensated = error::add(job.compensated, credit, "compensation")?;
            rest = error::sub(rest, credit, "slash rest")?;
            compensated = error::add(compensated, credit, "compensation")?;
        }
    }
    let mut rewarded = 0;
    if let Some(winner) = winner {
        rewarded = share_bps(rest, params.dispute_reward_bps)?;
        if rewarded > 0 {
            bank::credit(ctx.state, winner, rewarded)?;
            rest = error::sub(rest, rewarded, "slash rest")?;
        }
    }
    let burned = share_bps(rest, params.slash_burn_bps)?;
    let treasury = error::sub(rest, burned, "slash rest")?;
    if burned > 0 {
        supply::record_burn(ctx, burned, BurnReason::Slash)?;
    }
    if treasury > 0 {
        bank::credit(ctx.state, bank::treasury(), treasury)?;
    }
    let mut event = Event::new(NAME, "slash")
        .with("provider", p.address)
        .with("reason", reason.as_str())
        .with("slashed", slashed)
        .with("compensated", compensated)
        .with("rewarded", rewarded)
        .with("burned", burned)
        .with("treasury", treasury)
        .with("collateral_left", p.collateral)
        .with("last_heartbeat", evidence.last_heartbeat)
        .with("deadline", evidence.deadline);
    if let Some(job) = evidence.job {
        event = event.with("job", job);
    }
    if let Some(winner) = winner {
        event = event.with("winner", winner);
    }
    for job in victims.iter() {
        event = event.with("affected_job", job.id);
    }
    ctx.emit(event);
    Ok(SlashOutcome {
        slashed,
        compensated,
        rewarded,
        burned,
        treasury,
    })
}
