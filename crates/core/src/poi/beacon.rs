//! PoI's use of the randomness beacon: draw targets, the seeds blocks carry, and the draw.
//!
//! A commitment made in a block at view `v` waits for the seed of view
//! `v + poi.beacon_delay_views` (a *target*). Consensus fixes that seed by the round alone, so
//! neither the provider nor the leader of that view can choose it, and nobody knows it when the
//! commitment is final. A proposer puts the seeds of due targets in its block header
//! ([`crate::chain::Chain::wanted_seeds`] says which); this module's begin-block hook verifies
//! each against the group identity and records it. Then, within `poi.draws_per_block_max`
//! entries per block, every target whose seed is recorded is drawn (the job gets the seed's
//! randomness) and a target that found no seed for `poi.beacon_timeout_views` views moves to
//! the current view plus the delay: the job draws later and learns nothing meanwhile.
//!
//! # Format
//! - `poi/b` -> [`Beacon`]: the group identity, the seed namespace, the epoch and counters,
//!   written at genesis (absent on a chain without a beacon: commitments then wait, undrawn);
//! - `poi/r/<epoch u64><view u64><job u64><slot u32>` -> empty: job `job` waits for
//!   `seed(epoch, view)`, to draw its spot checks (`slot` = [`JOB_SLOT`]) or the referees of
//!   its check `slot`;
//! - `poi/e/<epoch u64><view u64>` -> the 48 signature bytes of a recorded seed.
//!
//! # Invariants
//! - a block's seeds are strictly ascending by `(epoch, view)`, at most
//!   `poi.seeds_per_block_max`, each of the beacon's epoch, of a view before the block's, not
//!   yet recorded, the target of at least one job, and a valid signature: otherwise the block
//!   is invalid;
//! - every job target names a `verifying` job that has not drawn, and each such job has exactly
//!   one target; every check target names a check awaiting referees with that target, and each
//!   such check has exactly one (checked by the audit).
//!
//! The node checks that a header's `view` is its consensus round's; core trusts it.

use borsh::{BorshDeserialize, BorshSerialize};
use serde::Serialize;

use crate::beacon::{self, BeaconSeed, IDENTITY_BYTES, SEED_BYTES};
use crate::error::{StateError, TxError};
use crate::event::Event;
use crate::module::ExecContext;
use crate::state::{self, StateReader};

use super::NAME;
use super::records::{job_or_err, write_job};

/// Key of the beacon record.
pub const BEACON_KEY: &[u8] = b"poi/b";
/// Prefix of draw targets.
pub const TARGET_PREFIX: &[u8] = b"poi/r/";
/// Prefix of recorded seeds.
pub const SEED_PREFIX: &[u8] = b"poi/e/";
/// The slot of a job's own draw (its spot checks); other slots are check numbers.
pub const JOB_SLOT: u32 = u32::MAX;

/// The beacon: whose seeds count and how they are checked.
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize)]
pub struct Beacon {
    /// The group public key (BLS12-381 `MinSig`, compressed G2).
    #[serde(serialize_with = "hex_identity")]
    pub identity: [u8; IDENTITY_BYTES],
    /// The namespace seeds are signed under.
    #[serde(serialize_with = "hex_vec")]
    pub seed_namespace: Vec<u8>,
    /// The consensus epoch whose seeds count (0 while the validator set is fixed).
    pub epoch: u64,
    /// Seeds recorded so far.
    pub seeds_recorded: u64,
    /// View of the latest recorded seed (0 before the first).
    pub last_seed_view: u64,
}

/// Reads the beacon, if the chain has one.
pub fn read_beacon(state: &dyn StateReader) -> Result<Option<Beacon>, StateError> {
    state::read_borsh(state, BEACON_KEY)
}

/// Key of the target `(epoch, view)` of `job`'s draw `slot`.
pub fn target_key(epoch: u64, view: u64, job: u64, slot: u32) -> Vec<u8> {
    [
        TARGET_PREFIX,
        &epoch.to_be_bytes(),
        &view.to_be_bytes(),
        &job.to_be_bytes(),
        &slot.to_be_bytes(),
    ]
    .concat()
}

/// A draw target: `seed(epoch, view)` draws `job`'s `slot`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Target {
    /// Beacon epoch.
    pub epoch: u64,
    /// Beacon view.
    pub view: u64,
    /// Job.
    pub job: u64,
    /// [`JOB_SLOT`] or a check number.
    pub slot: u32,
}

/// The target a key names.
pub fn parse_target_key(key: &[u8]) -> Option<Target> {
    let rest = key.strip_prefix(TARGET_PREFIX)?;
    if rest.len() != 28 {
        return None;
    }
    let word = |i: usize| u64::from_be_bytes(rest[i..i + 8].try_into().expect("8 bytes"));
    Some(Target {
        epoch: word(0),
        view: word(8),
        job: word(16),
        slot: u32::from_be_bytes(rest[24..].try_into().expect("4 bytes")),
    })
}

/// Key of the recorded seed of `(epoch, view)`.
pub fn seed_key(epoch: u64, view: u64) -> Vec<u8> {
    [SEED_PREFIX, &epoch.to_be_bytes(), &view.to_be_bytes()].concat()
}

/// The recorded seed of `(epoch, view)`, if a block carried it.
pub fn read_seed(
    state: &dyn StateReader,
    epoch: u64,
    view: u64,
) -> Result<Option<BeaconSeed>, StateError> {
    let key = seed_key(epoch, view);
    state
        .get(&key)?
        .map(|bytes| {
            let signature: [u8; SEED_BYTES] = bytes
                .as_slice()
                .try_into()
                .map_err(|_| StateError(format!("poi seed {epoch}/{view}: not 48 bytes")))?;
            Ok(BeaconSeed {
                epoch,
                view,
                signature,
            })
        })
        .transpose()
}

/// Whether any job waits for `seed(epoch, view)`.
fn is_target(state: &dyn StateReader, epoch: u64, view: u64) -> Result<bool, StateError> {
    let prefix = [TARGET_PREFIX, &epoch.to_be_bytes(), &view.to_be_bytes()].concat();
    let mut found = false;
    state.scan_prefix(&prefix, &mut |_, _| {
        found = true;
        false
    })?;
    Ok(found)
}

/// The seeds a block proposed at `current_view` should carry: distinct targets of views before
/// it without a recorded seed, oldest first, at most `limit`. Empty without a beacon.
pub fn wanted_seeds(
    state: &dyn StateReader,
    current_view: u64,
    limit: usize,
) -> Result<Vec<(u64, u64)>, StateError> {
    let Some(beacon) = read_beacon(state)? else {
        return Ok(Vec::new());
    };
    let mut targets: Vec<(u64, u64)> = Vec::new();
    let prefix = [TARGET_PREFIX, &beacon.epoch.to_be_bytes()].concat();
    let mut last = None;
    state.scan_prefix(&prefix, &mut |key, _| match parse_target_key(key) {
        Some(t) if t.view < current_view => {
            if last != Some(t.view) {
                last = Some(t.view);
                targets.push((t.epoch, t.view));
            }
            true
        }
        _ => false,
    })?;
    let mut wanted = Vec::with_capacity(limit.min(targets.len()));
    for (epoch, view) in targets {
        if wanted.len() >= limit {
            break;
        }
        if read_seed(state, epoch, view)?.is_none() {
            wanted.push((epoch, view));
        }
    }
    Ok(wanted)
}

/// Sets `job`'s draw target to `seed(epoch, view_now + beacon_delay_views)`. Without a beacon
/// the job has no target and waits. Returns the target.
pub(crate) fn target_for_commit(
    ctx: &mut ExecContext<'_, '_>,
    job: u64,
) -> Result<Option<(u64, u64)>, TxError> {
    target(ctx, job, JOB_SLOT)
}

/// Sets the target that draws the referees of `job`'s check `check`.
pub(crate) fn target_for_check(
    ctx: &mut ExecContext<'_, '_>,
    job: u64,
    check: u32,
) -> Result<Option<(u64, u64)>, TxError> {
    target(ctx, job, check)
}

/// Removes a check's referee target (its job failed).
pub(crate) fn cancel_check_target(
    ctx: &mut ExecContext<'_, '_>,
    check: &super::checks::Check,
) -> Result<(), TxError> {
    if let Some((epoch, view)) = check.referee_target {
        ctx.state
            .delete(target_key(epoch, view, check.job, check.index));
    }
    Ok(())
}

fn target(
    ctx: &mut ExecContext<'_, '_>,
    job: u64,
    slot: u32,
) -> Result<Option<(u64, u64)>, TxError> {
    let Some(beacon) = read_beacon(ctx.state)? else {
        return Ok(None);
    };
    let view = ctx
        .block
        .view
        .checked_add(ctx.params.poi.beacon_delay_views)
        .ok_or(TxError::Overflow("beacon target view"))?;
    ctx.state
        .put(target_key(beacon.epoch, view, job, slot), Vec::new());
    Ok(Some((beacon.epoch, view)))
}

/// The begin-block hook: checks and records the block's seeds, then draws and retargets.
pub(crate) fn begin_block(ctx: &mut ExecContext<'_, '_>) -> Result<(), TxError> {
    let seeds = &ctx.block.seeds;
    let Some(mut beacon) = read_beacon(ctx.state)? else {
        if seeds.is_empty() {
            return Ok(());
        }
        return Err(TxError::InvalidMessage(
            "the block carries beacon seeds but the chain has no beacon".into(),
        ));
    };
    let max = ctx.params.poi.seeds_per_block_max;
    if seeds.len() > max as usize {
        return Err(TxError::InvalidMessage(format!(
            "the block carries {} seeds, the limit is {max}",
            seeds.len()
        )));
    }
    let mut previous: Option<(u64, u64)> = None;
    for seed in seeds {
        let round = (seed.epoch, seed.view);
        if previous.is_some_and(|p| p >= round) {
            return Err(TxError::InvalidMessage(
                "block seeds must be strictly ascending by (epoch, view)".into(),
            ));
        }
        previous = Some(round);
        let wanted = seed.epoch == beacon.epoch
            && seed.view < ctx.block.view
            && read_seed(ctx.state, seed.epoch, seed.view)?.is_none()
            && is_target(ctx.state, seed.epoch, seed.view)?;
        if !wanted {
            return Err(TxError::InvalidMessage(format!(
                "seed of epoch {} view {} is not wanted: no job waits for it, it is already \
                 recorded, or it is not of an earlier view of epoch {}",
                seed.epoch, seed.view, beacon.epoch
            )));
        }
        beacon::verify_seed(&beacon.identity, &beacon.seed_namespace, seed)
            .map_err(|e| TxError::InvalidMessage(e.to_string()))?;
        ctx.state
            .put(seed_key(seed.epoch, seed.view), seed.signature.to_vec());
        beacon.seeds_recorded = beacon
            .seeds_recorded
            .checked_add(1)
            .ok_or(TxError::Overflow("seeds recorded"))?;
        beacon.last_seed_view = beacon.last_seed_view.max(seed.view);
        ctx.emit(
            Event::new(NAME, "seed")
                .with("epoch", seed.epoch)
                .with("view", seed.view),
        );
    }
    if !seeds.is_empty() {
        ctx.state.put_borsh(BEACON_KEY.to_vec(), &beacon);
    }
    run_targets(ctx, &beacon)
}

/// Draws every due target whose seed is recorded and retargets the timed-out ones, visiting
/// at most `poi.draws_per_block_max` due targets.
fn run_targets(ctx: &mut ExecContext<'_, '_>, beacon: &Beacon) -> Result<(), TxError> {
    let now = ctx.block.view;
    let budget = ctx.params.poi.draws_per_block_max as usize;
    let mut due = Vec::new();
    let prefix = [TARGET_PREFIX, &beacon.epoch.to_be_bytes()].concat();
    ctx.state
        .scan_prefix(&prefix, &mut |key, _| match parse_target_key(key) {
            Some(target) if target.view < now && due.len() < budget => {
                due.push(target);
                true
            }
            _ => false,
        })?;
    for t in due {
        let key = target_key(t.epoch, t.view, t.job, t.slot);
        if let Some(seed) = read_seed(ctx.state, t.epoch, t.view)? {
            ctx.state.delete(key);
            ctx.emit(
                Event::new(NAME, "drawn")
                    .with("job", t.job)
                    .with("epoch", seed.epoch)
                    .with("view", seed.view),
            );
            if t.slot == JOB_SLOT {
                super::spot::on_drawn(ctx, t.job, seed.randomness())?;
            } else if t.slot >= super::dispute::DISPUTE_SLOT_BASE {
                let number = t.slot - super::dispute::DISPUTE_SLOT_BASE;
                super::dispute::draw_referees(ctx, t.job, number, seed.randomness())?;
            } else {
                super::spot::draw_referees(ctx, t.job, t.slot, seed.randomness())?;
            }
        } else if t.view.saturating_add(ctx.params.poi.beacon_timeout_views) < now {
            ctx.state.delete(key);
            let retarget = now
                .checked_add(ctx.params.poi.beacon_delay_views)
                .ok_or(TxError::Overflow("beacon target view"))?;
            ctx.state
                .put(target_key(t.epoch, retarget, t.job, t.slot), Vec::new());
            if t.slot == JOB_SLOT {
                let mut record = job_or_err(ctx.state, t.job)?;
                record.draw_target = Some((t.epoch, retarget));
                write_job(ctx.state, &record);
            } else if t.slot >= super::dispute::DISPUTE_SLOT_BASE {
                let number = t.slot - super::dispute::DISPUTE_SLOT_BASE;
                super::dispute::retarget(ctx, t.job, number, (t.epoch, retarget))?;
            } else {
                let mut check = super::checks::check_or_err(ctx.state, t.job, t.slot)?;
                check.referee_target = Some((t.epoch, retarget));
                super::checks::write_check(ctx.state, &check);
            }
            ctx.emit(
                Event::new(NAME, "retargeted")
                    .with("job", t.job)
                    .with("from_view", t.view)
                    .with("to_view", retarget),
            );
        }
    }
    Ok(())
}

/// The beacon record of a new chain.
pub(crate) fn genesis_record(identity: [u8; IDENTITY_BYTES], seed_namespace: Vec<u8>) -> Beacon {
    Beacon {
        identity,
        seed_namespace,
        epoch: 0,
        seeds_recorded: 0,
        last_seed_view: 0,
    }
}

fn hex_identity<S: serde::Serializer>(b: &[u8; IDENTITY_BYTES], s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&hex::encode(b))
}

fn hex_vec<S: serde::Serializer>(b: &[u8], s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&hex::encode(b))
}
