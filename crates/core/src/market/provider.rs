//! Providers: registration, heartbeats, updates, collateral and reputation.
//!
//! Collateral is the provider's own bonded stake, locked with [`staking::lock`] so that the one
//! unbonding rule applies to it and it stays in the staking module's supply entry. The market
//! only records how much of the lock is collateral ([`Provider::collateral`]).
//!
//! # Reputation
//! A moving average in parts per million of outcomes: each outcome with value `x` (1,000,000
//! for a job settled in the provider's favour or a heartbeat, 0 for a slash) and weight `w`
//! (`reputation_weight_ppm` for jobs and slashes, `uptime_weight_ppm` for heartbeats) gives
//! `r' = (r x (1e6 - w) + x x w) / 1e6`, rounded down. It stays in `[0, 1e6]`; rounding down
//! can only lower it by less than one ppm per outcome.

use crate::address::Address;
use crate::error::{self, TxError};
use crate::event::Event;
use crate::module::ExecContext;
use crate::staking;
use crate::token::Amount;

use super::NAME;
use super::params::{MarketParams, PPM_ONE};
use super::records::{
    DeadlineKind, MarketState, Provider, deadline_key, provider_key, provider_or_err,
    read_provider, write_provider,
};

/// Longest hardware description, in bytes.
pub const HARDWARE_BYTES_MAX: usize = 128;
/// Longest endpoint URL, in bytes.
pub const ENDPOINT_BYTES_MAX: usize = 256;

/// What a provider registers with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Registration {
    /// Hardware description (at most [`HARDWARE_BYTES_MAX`] bytes).
    pub hardware: String,
    /// Benchmarked metered compute units per block (positive).
    pub capacity_units_per_block: u64,
    /// Provider class (must be below `market.class_min_tier.len()`).
    pub class: u8,
    /// Lowest price per unit accepted, base units.
    pub ask_price: Amount,
    /// Checkpoint URL (at most [`ENDPOINT_BYTES_MAX`] bytes).
    pub endpoint: String,
    /// Bonded stake to lock as collateral, base units.
    pub collateral: Amount,
}

/// Collateral a provider of `capacity` units per block needs at `multiplier_ppm`:
/// `ceil(capacity x collateral_per_unit x multiplier / 1e6)`. Rounds up, so no provider is
/// under-collateralised by rounding.
pub fn required_collateral(
    params: &MarketParams,
    capacity: u64,
    multiplier_ppm: u32,
) -> Result<Amount, TxError> {
    u128::from(capacity)
        .checked_mul(params.collateral_per_unit)
        .and_then(|v| v.checked_mul(u128::from(multiplier_ppm)))
        .map(|v| v.div_ceil(u128::from(PPM_ONE)))
        .ok_or(TxError::Overflow("required collateral"))
}

/// The reputation after one outcome of value `sample_ppm` with weight `weight_ppm` (see the
/// module docs).
pub fn reputation_after(reputation_ppm: u32, sample_ppm: u32, weight_ppm: u32) -> u32 {
    let (r, x, w) = (
        u64::from(reputation_ppm.min(PPM_ONE)),
        u64::from(sample_ppm.min(PPM_ONE)),
        u64::from(weight_ppm.min(PPM_ONE)),
    );
    let one = u64::from(PPM_ONE);
    u32::try_from((r * (one - w) + x * w) / one).expect("average of ppm values fits u32")
}

fn check_text(what: &str, text: &str, max: usize) -> Result<(), TxError> {
    if text.len() > max {
        return Err(TxError::InvalidMessage(format!(
            "{what} is {} bytes, at most {max}",
            text.len()
        )));
    }
    Ok(())
}

/// Checks a capacity: positive, and `capacity x backlog_blocks` (the most unfinished work the
/// provider may hold) fits `u64`, so its load can never overflow.
fn check_capacity(params: &MarketParams, capacity: u64) -> Result<(), TxError> {
    if capacity == 0 {
        return Err(TxError::InvalidMessage("capacity must be positive".into()));
    }
    if capacity
        .checked_mul(u64::from(params.backlog_blocks))
        .is_none()
    {
        return Err(TxError::InvalidMessage(format!(
            "capacity {capacity} x market.backlog_blocks {} exceeds 2^64 - 1",
            params.backlog_blocks
        )));
    }
    Ok(())
}

/// The collateral a provider of `capacity` must hold: the requirement, and at least
/// `provider_collateral_min`.
fn collateral_floor(
    params: &MarketParams,
    capacity: u64,
    multiplier_ppm: u32,
) -> Result<Amount, TxError> {
    Ok(required_collateral(params, capacity, multiplier_ppm)?.max(params.provider_collateral_min))
}

fn positive(amount: Amount, what: &str) -> Result<(), TxError> {
    if amount == 0 {
        return Err(TxError::InvalidMessage(format!("{what} must be positive")));
    }
    Ok(())
}

fn heartbeat_due(p: &mut Provider, ctx: &mut ExecContext<'_, '_>) -> Result<(), TxError> {
    if p.heartbeat_deadline != 0 {
        ctx.state.delete(deadline_key(
            p.heartbeat_deadline,
            DeadlineKind::Heartbeat,
            p.address.as_bytes(),
        ));
    }
    let due = ctx
        .block
        .height
        .checked_add(ctx.params.market.heartbeat_timeout_blocks)
        .ok_or(TxError::Overflow("heartbeat deadline"))?;
    ctx.state.put(
        deadline_key(due, DeadlineKind::Heartbeat, p.address.as_bytes()),
        Vec::new(),
    );
    p.heartbeat_deadline = due;
    p.last_heartbeat = ctx.block.height;
    Ok(())
}

/// Marks `p` online and counts its capacity.
fn go_online(p: &mut Provider, ms: &mut MarketState) -> Result<(), TxError> {
    if !p.online {
        p.online = true;
        ms.providers_online = ms
            .providers_online
            .checked_add(1)
            .ok_or(TxError::Overflow("online providers"))?;
        ms.capacity_online = error::add(
            ms.capacity_online,
            u128::from(p.capacity_units_per_block),
            "online capacity",
        )?;
    }
    Ok(())
}

/// Marks `p` offline and stops counting its capacity (a missed heartbeat).
pub(crate) fn go_offline(p: &mut Provider, ms: &mut MarketState) -> Result<(), TxError> {
    if p.online {
        p.online = false;
        ms.providers_online = ms
            .providers_online
            .checked_sub(1)
            .ok_or(TxError::Overflow("online providers"))?;
        ms.capacity_online = error::sub(
            ms.capacity_online,
            u128::from(p.capacity_units_per_block),
            "online capacity",
        )?;
    }
    p.heartbeat_deadline = 0;
    Ok(())
}

/// `Register`: lock the collateral and list the provider.
pub(crate) fn register(
    ctx: &mut ExecContext<'_, '_>,
    ms: &mut MarketState,
    signer: Address,
    reg: &Registration,
) -> Result<(), TxError> {
    let params = &ctx.params.market;
    if read_provider(ctx.state, &signer)?.is_some() {
        return Err(TxError::AlreadyRegistered(signer));
    }
    check_text("hardware", &reg.hardware, HARDWARE_BYTES_MAX)?;
    check_text("endpoint", &reg.endpoint, ENDPOINT_BYTES_MAX)?;
    check_capacity(params, reg.capacity_units_per_block)?;
    if reg.class as usize >= params.class_min_tier.len() {
        return Err(TxError::InvalidMessage(format!(
            "provider class {} is unknown: market.class_min_tier defines {} classes",
            reg.class,
            params.class_min_tier.len()
        )));
    }
    let required = collateral_floor(params, reg.capacity_units_per_block, ms.multiplier_ppm)?;
    if reg.collateral < required {
        return Err(TxError::InsufficientCollateral {
            provider: signer,
            collateral: reg.collateral,
            required,
        });
    }
    staking::lock(ctx.state, signer, reg.collateral)?;
    let mut p = Provider {
        address: signer,
        hardware: reg.hardware.clone(),
        capacity_units_per_block: reg.capacity_units_per_block,
        class: reg.class,
        ask_price: reg.ask_price,
        endpoint: reg.endpoint.clone(),
        collateral: reg.collateral,
        registered_height: ctx.block.height,
        last_heartbeat: ctx.block.height,
        heartbeat_deadline: 0,
        online: false,
        listed_at: None,
        load_units: 0,
        jobs: Vec::new(),
        reputation_ppm: params.reputation_start_ppm,
        jobs_settled: 0,
        slashes: 0,
        slashed_total: 0,
    };
    heartbeat_due(&mut p, ctx)?;
    go_online(&mut p, ms)?;
    ms.providers = ms
        .providers
        .checked_add(1)
        .ok_or(TxError::Overflow("providers"))?;
    write_provider(ctx.state, &ctx.params.market, &mut p);
    ctx.emit(
        Event::new(NAME, "provider_registered")
            .with("provider", signer)
            .with("capacity_units_per_block", reg.capacity_units_per_block)
            .with("class", u64::from(reg.class))
            .with("ask_price", reg.ask_price)
            .with("collateral", reg.collateral)
            .with("required_collateral", required),
    );
    Ok(())
}

/// Whether a heartbeat at `height` counts for uptime: heights are cut into windows of
/// `heartbeat_timeout_blocks` from registration, and only the first heartbeat of a window
/// counts (registration counts for window 0), so sending more heartbeats buys no reputation.
fn counts_for_uptime(p: &Provider, params: &MarketParams, height: u64) -> bool {
    let window = params.heartbeat_timeout_blocks.max(1);
    let of = |h: u64| h.saturating_sub(p.registered_height) / window;
    of(height) > of(p.last_heartbeat)
}

/// `Heartbeat`: the provider is alive; brings it back online after a miss. Refused
/// (`heartbeat_late`) after the heartbeat deadline while the miss waits to be processed.
pub(crate) fn heartbeat(
    ctx: &mut ExecContext<'_, '_>,
    ms: &mut MarketState,
    signer: Address,
) -> Result<(), TxError> {
    let mut p = provider_or_err(ctx.state, signer)?;
    if p.online && ctx.block.height > p.heartbeat_deadline {
        return Err(TxError::HeartbeatLate {
            provider: signer,
            deadline: p.heartbeat_deadline,
        });
    }
    let params = &ctx.params.market;
    let uptime = counts_for_uptime(&p, params, ctx.block.height);
    heartbeat_due(&mut p, ctx)?;
    go_online(&mut p, ms)?;
    let params = &ctx.params.market;
    if uptime {
        p.reputation_ppm = reputation_after(p.reputation_ppm, PPM_ONE, params.uptime_weight_ppm);
    }
    write_provider(ctx.state, params, &mut p);
    ctx.emit(
        Event::new(NAME, "heartbeat")
            .with("provider", signer)
            .with("next_due", p.heartbeat_deadline),
    );
    Ok(())
}

/// `Update`: change ask, endpoint or capacity. Raising the capacity needs the collateral for
/// it; lowering it is refused (`provider_busy`) while the provider has active jobs, so the
/// collateral answering for them cannot shrink with it.
pub(crate) fn update(
    ctx: &mut ExecContext<'_, '_>,
    ms: &mut MarketState,
    signer: Address,
    ask_price: Option<Amount>,
    endpoint: Option<&String>,
    capacity: Option<u64>,
) -> Result<(), TxError> {
    let params = &ctx.params.market;
    let mut p = provider_or_err(ctx.state, signer)?;
    if let Some(endpoint) = endpoint {
        check_text("endpoint", endpoint, ENDPOINT_BYTES_MAX)?;
        p.endpoint.clone_from(endpoint);
    }
    if let Some(ask) = ask_price {
        p.ask_price = ask;
    }
    if let Some(capacity) = capacity {
        check_capacity(params, capacity)?;
        if capacity < p.capacity_units_per_block && !p.jobs.is_empty() {
            return Err(TxError::ProviderBusy {
                provider: signer,
                active_jobs: u32::try_from(p.jobs.len()).unwrap_or(u32::MAX),
            });
        }
        let required = collateral_floor(params, capacity, ms.multiplier_ppm)?;
        if capacity > p.capacity_units_per_block && p.collateral < required {
            return Err(TxError::InsufficientCollateral {
                provider: signer,
                collateral: p.collateral,
                required,
            });
        }
        if p.online {
            ms.capacity_online = error::add(
                error::sub(
                    ms.capacity_online,
                    u128::from(p.capacity_units_per_block),
                    "online capacity",
                )?,
                u128::from(capacity),
                "online capacity",
            )?;
        }
        p.capacity_units_per_block = capacity;
    }
    write_provider(ctx.state, params, &mut p);
    ctx.emit(
        Event::new(NAME, "provider_updated")
            .with("provider", signer)
            .with("ask_price", p.ask_price)
            .with("capacity_units_per_block", p.capacity_units_per_block),
    );
    Ok(())
}

/// `AddCollateral` / `RemoveCollateral`. Removal goes at most down to
/// `provider_collateral_min`, and while the provider has active jobs at most down to what its
/// capacity requires (which cannot shrink while they are active: see [`update`]).
pub(crate) fn change_collateral(
    ctx: &mut ExecContext<'_, '_>,
    ms: &MarketState,
    signer: Address,
    amount: Amount,
    add: bool,
) -> Result<(), TxError> {
    positive(amount, "collateral amount")?;
    let params = &ctx.params.market;
    let mut p = provider_or_err(ctx.state, signer)?;
    if add {
        staking::lock(ctx.state, signer, amount)?;
        p.collateral = error::add(p.collateral, amount, "collateral")?;
    } else {
        let left = p.collateral.checked_sub(amount);
        let required = if p.jobs.is_empty() {
            params.provider_collateral_min
        } else {
            collateral_floor(params, p.capacity_units_per_block, ms.multiplier_ppm)?
        };
        match left {
            Some(left) if left >= required => p.collateral = left,
            _ => {
                return Err(TxError::InsufficientCollateral {
                    provider: signer,
                    collateral: left.unwrap_or(0),
                    required: required.max(amount.saturating_sub(p.collateral)),
                });
            }
        }
        staking::unlock(ctx.state, signer, amount)?;
    }
    write_provider(ctx.state, params, &mut p);
    ctx.emit(
        Event::new(
            NAME,
            if add {
                "collateral_added"
            } else {
                "collateral_removed"
            },
        )
        .with("provider", signer)
        .with("amount", amount)
        .with("collateral", p.collateral),
    );
    Ok(())
}

/// `Deregister`: only without active jobs; unlocks all collateral.
pub(crate) fn deregister(
    ctx: &mut ExecContext<'_, '_>,
    ms: &mut MarketState,
    signer: Address,
) -> Result<(), TxError> {
    let mut p = provider_or_err(ctx.state, signer)?;
    if !p.jobs.is_empty() {
        return Err(TxError::ProviderBusy {
            provider: signer,
            active_jobs: u32::try_from(p.jobs.len()).unwrap_or(u32::MAX),
        });
    }
    if p.heartbeat_deadline != 0 {
        ctx.state.delete(deadline_key(
            p.heartbeat_deadline,
            DeadlineKind::Heartbeat,
            signer.as_bytes(),
        ));
    }
    go_offline(&mut p, ms)?;
    // Offline providers are never listed, so this removes the ask-index entry.
    write_provider(ctx.state, &ctx.params.market, &mut p);
    ctx.state.delete(provider_key(&signer));
    staking::unlock(ctx.state, signer, p.collateral)?;
    ms.providers = ms
        .providers
        .checked_sub(1)
        .ok_or(TxError::Overflow("providers"))?;
    ctx.emit(
        Event::new(NAME, "provider_deregistered")
            .with("provider", signer)
            .with("collateral_released", p.collateral),
    );
    Ok(())
}
