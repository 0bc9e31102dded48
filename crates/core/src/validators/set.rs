//! The active set: computed from stake at each epoch's last block, recorded per epoch.
//!
//! At the last block of chain epoch `e` (`rewards::ending_epoch`), the set of epoch `e + 1` is
//! the candidates that are registered, not jailed, not tombstoned and hold collateral of at
//! least `min_self_bond`, sorted by bonded stake descending then address ascending, cut to the
//! first `set_size_max`; each member has one seat. Stake moved during an epoch therefore takes
//! effect exactly at the next boundary, never before.
//!
//! If that set would be empty, the previous set is carried over instead (less its tombstoned
//! members, unless that too would leave it empty): the chain never records a set without
//! validators. A carried-over set is marked `carried_over`.

use std::collections::BTreeSet;

use borsh::{BorshDeserialize, BorshSerialize};
use serde::Serialize;

use super::{CANDIDATE_PREFIX, Candidate, NAME, SET_PREFIX, candidate};
use crate::address::Address;
use crate::error::{StateError, TxError};
use crate::event::Event;
use crate::module::ExecContext;
use crate::params::Params;
use crate::rewards::{ending_epoch, epoch_of};
use crate::staking;
use crate::state::{self, StateReader};
use crate::token::Amount;

/// One member of a set.
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize)]
pub struct Member {
    /// The validator (its ed25519 consensus key).
    pub address: Address,
    /// Its bonded stake when the set was computed.
    #[serde(serialize_with = "crate::event::decimal")]
    pub stake: Amount,
    /// Consensus votes it holds: always 1 (simplex weighs participants equally).
    pub seats: u32,
}

/// The set of one chain epoch.
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize)]
pub struct ActiveSet {
    /// The chain epoch it is the set of.
    pub epoch: u64,
    /// Height it was computed at (0 for the genesis set).
    pub recorded_at: u64,
    /// The computed set was empty, so the previous one was kept.
    pub carried_over: bool,
    /// `set_size_max` when it was computed.
    pub size_max: u32,
    /// Members by (stake desc, address asc).
    pub members: Vec<Member>,
}

/// A validator's status, for `GET /validators`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ValidatorStatus {
    /// The validator.
    pub address: Address,
    /// In candidacy.
    pub registered: bool,
    /// Locked self-bond.
    #[serde(serialize_with = "crate::event::decimal")]
    pub collateral: Amount,
    /// Bonded stake now.
    #[serde(serialize_with = "crate::event::decimal")]
    pub stake: Amount,
    /// Seats in the current set (0 when not a member).
    pub seats: u32,
    /// Missed leader views in the current liveness window.
    pub missed_views: u32,
    /// Jailed for downtime.
    pub jailed: bool,
    /// First height it may unjail at (meaningful while jailed).
    pub jailed_until: u64,
    /// Convicted of equivocation.
    pub tombstoned: bool,
    /// Evidence records against it.
    pub evidence: u32,
    /// Stake slashed from it so far.
    #[serde(serialize_with = "crate::event::decimal")]
    pub slashed: Amount,
}

/// The state key of epoch `epoch`'s set.
pub fn set_key(epoch: u64) -> Vec<u8> {
    [SET_PREFIX, &epoch.to_be_bytes()].concat()
}

/// The set recorded for chain epoch `epoch`, if any.
pub fn active_set(state: &dyn StateReader, epoch: u64) -> Result<Option<ActiveSet>, StateError> {
    state::read_borsh(state, &set_key(epoch))
}

/// The set in force at `height`: its epoch's, or the latest recorded before it.
pub fn current_set(
    state: &dyn StateReader,
    height: u64,
    params: &Params,
) -> Result<Option<ActiveSet>, StateError> {
    let epoch = epoch_of(height, params.rewards.epoch_blocks);
    if let Some(set) = active_set(state, epoch)? {
        return Ok(Some(set));
    }
    let mut latest = None;
    let mut failure = None;
    state.scan_prefix(
        SET_PREFIX,
        &mut |key, value| match state::decode::<ActiveSet>(key, value) {
            Ok(set) if set.epoch <= epoch => {
                latest = Some(set);
                true
            }
            Ok(_) => false,
            Err(e) => {
                failure = Some(e);
                false
            }
        },
    )?;
    failure.map_or(Ok(latest), Err)
}

/// Every candidate record, by address.
pub fn candidates(state: &dyn StateReader) -> Result<Vec<(Address, Candidate)>, StateError> {
    let mut out = Vec::new();
    let mut failure = None;
    state.scan_prefix(CANDIDATE_PREFIX, &mut |key, value| {
        let address = key[CANDIDATE_PREFIX.len()..].try_into().map(Address);
        match (address, state::decode::<Candidate>(key, value)) {
            (Ok(address), Ok(record)) => out.push((address, record)),
            (_, Err(e)) => failure = Some(e),
            (Err(_), _) => failure = Some(StateError(format!("bad key {}", hex::encode(key)))),
        }
        failure.is_none()
    })?;
    failure.map_or(Ok(out), Err)
}

/// The set the rule gives for `state` now: eligible candidates, top `set_size_max` by
/// (stake desc, address asc).
pub fn compute(state: &dyn StateReader, params: &Params) -> Result<Vec<Member>, StateError> {
    let rules = &params.validators;
    let mut members = Vec::new();
    for (address, c) in candidates(state)? {
        let eligible = c.registered
            && !c.jailed
            && c.tombstoned_at.is_none()
            && c.collateral >= rules.min_self_bond;
        if eligible {
            let stake = staking::stake(state, &address)?.bonded;
            members.push(Member {
                address,
                stake,
                seats: 1,
            });
        }
    }
    members.sort_by(|a, b| b.stake.cmp(&a.stake).then(a.address.cmp(&b.address)));
    members.truncate(rules.set_size_max as usize);
    Ok(members)
}

/// The end-block hook: at an epoch's last block, computes and records the next epoch's set.
pub(crate) fn end_block(ctx: &mut ExecContext<'_, '_>) -> Result<(), TxError> {
    let height = ctx.block.height;
    let Some(epoch) = ending_epoch(height, ctx.params.rewards.epoch_blocks) else {
        return Ok(());
    };
    let next = epoch.checked_add(1).ok_or(TxError::Overflow("epoch"))?;
    let previous = active_set(ctx.state, epoch)?.map_or_else(Vec::new, |s| s.members);
    let mut members = compute(ctx.state, ctx.params)?;
    let carried_over = members.is_empty();
    if carried_over {
        let mut kept = Vec::new();
        for m in &previous {
            let tombstoned =
                candidate(ctx.state, &m.address)?.is_some_and(|c| c.tombstoned_at.is_some());
            if !tombstoned {
                kept.push(m.clone());
            }
        }
        members = if kept.is_empty() {
            previous.clone()
        } else {
            kept
        };
    }
    let changed = addresses(&members) != addresses(&previous);
    let set = ActiveSet {
        epoch: next,
        recorded_at: height,
        carried_over,
        size_max: ctx.params.validators.set_size_max,
        members,
    };
    if changed {
        ctx.emit(
            Event::new(NAME, "set_changed")
                .with("epoch", next)
                .with("members", set.members.len() as u64)
                .with("carried_over", if carried_over { "true" } else { "false" }),
        );
    }
    ctx.state.put_borsh(set_key(next), &set);
    Ok(())
}

fn addresses(members: &[Member]) -> Vec<Address> {
    members.iter().map(|m| m.address).collect()
}

/// `address`'s status at `height`.
pub fn status(
    state: &dyn StateReader,
    params: &Params,
    height: u64,
    address: &Address,
) -> Result<Option<ValidatorStatus>, StateError> {
    let Some(c) = candidate(state, address)? else {
        return Ok(None);
    };
    let set = current_set(state, height, params)?;
    Ok(Some(status_of(
        state,
        params,
        height,
        set.as_ref(),
        *address,
        &c,
    )?))
}

/// Every candidate's status at `height`, by address (for `GET /validators`).
pub fn status_all(
    state: &dyn StateReader,
    params: &Params,
    height: u64,
) -> Result<Vec<ValidatorStatus>, StateError> {
    let set = current_set(state, height, params)?;
    candidates(state)?
        .into_iter()
        .map(|(address, c)| status_of(state, params, height, set.as_ref(), address, &c))
        .collect()
}

fn status_of(
    state: &dyn StateReader,
    params: &Params,
    height: u64,
    set: Option<&ActiveSet>,
    address: Address,
    c: &Candidate,
) -> Result<ValidatorStatus, StateError> {
    let window = height / params.validators.liveness_window_blocks.max(1);
    let seats = set
        .and_then(|s| s.members.iter().find(|m| m.address == address))
        .map_or(0, |m| m.seats);
    Ok(ValidatorStatus {
        address,
        registered: c.registered,
        collateral: c.collateral,
        stake: staking::stake(state, &address)?.bonded,
        seats,
        missed_views: if c.window == window { c.missed } else { 0 },
        jailed: c.jailed,
        jailed_until: c.jailed_until,
        tombstoned: c.tombstoned_at.is_some(),
        evidence: c.evidence,
        slashed: c.slashed,
    })
}

/// The module's audit (see the module doc's invariants).
pub(crate) fn check_invariants(state: &dyn StateReader) -> Result<(), String> {
    let all = candidates(state).map_err(|e| e.to_string())?;
    for (address, c) in &all {
        let stake = staking::stake(state, address).map_err(|e| e.to_string())?;
        if c.collateral > stake.bonded {
            return Err(format!(
                "{address}: collateral {} exceeds bonded stake",
                c.collateral
            ));
        }
    }
    let tombstones: Vec<(Address, u64)> = all
        .iter()
        .filter_map(|(a, c)| c.tombstoned_at.map(|t| (*a, t)))
        .collect();
    let mut problem = None;
    state
        .scan_prefix(SET_PREFIX, &mut |key, value| {
            problem = match state::decode::<ActiveSet>(key, value) {
                Ok(set) => check_set(&set, &tombstones).err(),
                Err(e) => Some(e.to_string()),
            };
            problem.is_none()
        })
        .map_err(|e| e.to_string())?;
    problem.map_or(Ok(()), Err)
}

fn check_set(set: &ActiveSet, tombstones: &[(Address, u64)]) -> Result<(), String> {
    let e = set.epoch;
    if set.members.len() > set.size_max as usize {
        return Err(format!(
            "set {e} has {} members, max {}",
            set.members.len(),
            set.size_max
        ));
    }
    let ordered = set.members.windows(2).all(|w| {
        (w[0].stake > w[1].stake) || (w[0].stake == w[1].stake && w[0].address < w[1].address)
    });
    let unique: BTreeSet<Address> = set.members.iter().map(|m| m.address).collect();
    if !ordered || unique.len() != set.members.len() {
        return Err(format!(
            "set {e} is not sorted by (stake desc, address asc) or repeats"
        ));
    }
    if set.members.iter().any(|m| m.seats != 1) {
        return Err(format!("set {e}: a member without exactly one seat"));
    }
    for (address, at) in tombstones {
        if !set.carried_over && set.recorded_at >= *at && unique.contains(address) {
            return Err(format!("set {e} includes {address}, tombstoned at {at}"));
        }
    }
    Ok(())
}
