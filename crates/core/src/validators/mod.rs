//! Validators: candidacy, the active set computed from stake at epoch boundaries, equivocation
//! evidence and liveness (missed leader views), with their slashes, jail and tombstone.
//!
//! Owns `val/`:
//! - `val/g` -> [`GenesisConsensus`]: the consensus participants of the genesis set (sorted as
//!   commonware's `ordered::Set` sorts ed25519 keys), the public polynomial of the beacon
//!   dealing and the consensus namespace, written at genesis; it is signer generation 0;
//! - `val/c/<address>` -> [`Candidate`]: candidacy, collateral, jail, tombstone, counters;
//! - `val/set/<epoch u64 be>` -> [`ActiveSet`]: the set of chain epoch `epoch`, recorded at the
//!   last block of the epoch before (epoch 0 at genesis: exactly `genesis.validators`);
//! - `val/ev/<blake3 of evidence bytes>` -> [`EvidenceRecord`] (the bytes are kept on chain);
//! - `val/ek/<offender><kind u8><view u64 be>` -> the evidence hash: one conviction per offence;
//! - `val/view` -> [`liveness::ViewMark`]: the last block whose view did not follow its
//!   parent's by exactly one (written only then, so consecutive empty blocks write nothing);
//! - `val/gen/<g>`, `val/gcur`, `val/rs/<r>`, `val/rl/<r><dealer>`, `val/ropen`: signer
//!   generations and reshare rounds, see [`reshare`]. Evidence verifies against the generation
//!   its consensus epoch names; the leader formula uses the current generation.
//!
//! # Seats
//! Simplex gives every participant one equal vote, so every member has `seats = 1`. The BFT
//! bound is on the *count* of members (`f < n/3` of them Byzantine), not on stake: stake only
//! buys membership. The sybil control is the rule that enters a set: at least
//! `min_self_bond` locked as collateral, and only the top `set_size_max` by bonded stake.
//!
//! # Invariants
//! - every recorded set is sorted by (stake desc, address asc), has unique members, each
//!   with one seat, and at most the `set_size_max` in force when it was recorded;
//! - a tombstoned validator is in no set computed at or after its tombstone's height (a set
//!   carried over unchanged because the new one would be empty is exempt, see [`set`]);
//! - a candidate's collateral is at most its bonded stake (it is locked stake).
//!
//! This module holds no tokens: collateral stays in staking (locked), and slashed stake is
//! burned ([`crate::supply::BurnReason::ValidatorSlash`]), except the share of an
//! equivocation slash (`evidence_reward_bps`, floor) paid to the evidence's submitter.
//!
//! The chain records who signs ([`reshare`] generations, the group key reshared with the
//! dealers' logs as transactions); the node runs the interactive part of a round
//! (`poi_node::reshare`) and one consensus engine per generation; see
//! `docs/design/network.md`.
//!
//! Stability: ALPHA.

mod error;
pub mod evidence;
pub mod liveness;
mod params;
pub mod reshare;
pub mod set;

use borsh::{BorshDeserialize, BorshSerialize};
use serde::Serialize;

pub use error::ValidatorError;
pub use evidence::{EvidenceKind, EvidenceRecord, encode_evidence};
pub use params::ValidatorParams;
pub use set::{ActiveSet, Member, ValidatorStatus, active_set, current_set, status, status_all};

use crate::address::Address;
use crate::error::{StateError, TxError};
use crate::event::Event;
use crate::module::{ExecContext, Module};
use crate::staking;
use crate::state::{self, Overlay, StateReader, WriteSet};
use crate::token::Amount;

/// Module name.
pub const NAME: &str = "validators";
/// Owned prefix.
pub const PREFIX: &[u8] = b"val/";
/// Key of the genesis consensus record.
pub const GENESIS_KEY: &[u8] = b"val/g";
/// Prefix of candidate records.
pub const CANDIDATE_PREFIX: &[u8] = b"val/c/";
/// Prefix of recorded sets.
pub const SET_PREFIX: &[u8] = b"val/set/";
/// Prefix of evidence records.
pub const EVIDENCE_PREFIX: &[u8] = b"val/ev/";
/// Prefix of the offence index.
pub const OFFENCE_PREFIX: &[u8] = b"val/ek/";
/// Key of the last view discontinuity ([`liveness::ViewMark`]).
pub const VIEW_KEY: &[u8] = b"val/view";

/// What the genesis consensus group is: who votes, and how their votes verify.
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize)]
pub struct GenesisConsensus {
    /// The ed25519 keys of `genesis.validators`, ascending by bytes (commonware's order).
    pub participants: Vec<Address>,
    /// Commonware codec of the public `Sharing<MinSig>` of the dealing (empty: none).
    #[serde(serialize_with = "hex_vec")]
    pub polynomial: Vec<u8>,
    /// The consensus namespace: `chain_id ++ "_CONSENSUS"`.
    #[serde(serialize_with = "hex_vec")]
    pub namespace: Vec<u8>,
}

/// One validator candidate (or former one).
#[derive(Debug, Clone, Default, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize)]
pub struct Candidate {
    /// In candidacy (a genesis validator, or registered and not left).
    pub registered: bool,
    /// Locked self-bond (staking stake locked by this module).
    #[serde(serialize_with = "crate::event::decimal")]
    pub collateral: Amount,
    /// Jailed for downtime: excluded from sets until it unjails.
    pub jailed: bool,
    /// First height at which a jailed validator may unjail.
    pub jailed_until: u64,
    /// Height of its equivocation conviction; tombstoned validators never return.
    pub tombstoned_at: Option<u64>,
    /// Missed leader views in liveness window `window`.
    pub missed: u32,
    /// The liveness window `missed` counts in (`height / liveness_window_blocks`).
    pub window: u64,
    /// Evidence records against it.
    pub evidence: u32,
    /// Stake slashed from it so far.
    #[serde(serialize_with = "crate::event::decimal")]
    pub slashed: Amount,
}

/// Validator messages.
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub enum ValidatorsMsg {
    /// Lock `self_bond` more of the signer's free bonded stake as validator collateral and
    /// become (or stay) a candidate; the collateral must reach `min_self_bond`.
    Register {
        /// Base units; positive.
        self_bond: Amount,
    },
    /// Leave candidacy: the collateral unlocks; the signer is in no set computed afterwards.
    /// The record is deleted unless it holds history (evidence, slashes, a jail).
    Leave,
    /// Equivocation evidence: [`encode_evidence`] of commonware's codec bytes.
    Evidence {
        /// Kind byte then the encoded conflicting votes.
        bytes: Vec<u8>,
    },
    /// End the signer's jail (from `jailed_until` on).
    Unjail,
    /// A dealer's signed log of an open reshare round ([`reshare`]), submitted by the dealer.
    ReshareLog {
        /// The round number.
        round: u64,
        /// Commonware codec of `feldman_desmedt::SignedDealerLog<MinSig, ed25519::PublicKey>`.
        log: Vec<u8>,
    },
}

/// The state key of `address`'s candidate record.
pub fn candidate_key(address: &Address) -> Vec<u8> {
    [CANDIDATE_PREFIX, address.as_bytes()].concat()
}

/// Reads `address`'s candidate record, if any.
pub fn candidate(
    state: &dyn StateReader,
    address: &Address,
) -> Result<Option<Candidate>, StateError> {
    state::read_borsh(state, &candidate_key(address))
}

/// Reads the genesis consensus record (absent on a chain started before this module).
pub fn genesis_consensus(state: &dyn StateReader) -> Result<Option<GenesisConsensus>, StateError> {
    state::read_borsh(state, GENESIS_KEY)
}

/// The module's genesis writes: the consensus record, a candidate record per genesis
/// validator, and the epoch-0 set (exactly `validators`, with no stake: genesis bonds none).
pub fn genesis_writes(
    chain_id: &str,
    validators: &[Address],
    polynomial: Vec<u8>,
    size_max: u32,
) -> WriteSet {
    let mut participants = validators.to_vec();
    participants.sort();
    let mut namespace = chain_id.as_bytes().to_vec();
    namespace.extend_from_slice(b"_CONSENSUS");
    let record = GenesisConsensus {
        participants: participants.clone(),
        polynomial,
        namespace,
    };
    let mut writes = WriteSet::new();
    put(&mut writes, GENESIS_KEY.to_vec(), &record);
    let fresh = Candidate {
        registered: true,
        ..Candidate::default()
    };
    for v in &participants {
        put(&mut writes, candidate_key(v), &fresh);
    }
    let members = participants
        .iter()
        .map(|address| Member {
            address: *address,
            stake: 0,
            seats: 1,
        })
        .collect();
    let set = ActiveSet {
        epoch: 0,
        recorded_at: 0,
        carried_over: false,
        size_max,
        members,
    };
    put(&mut writes, set::set_key(0), &set);
    writes
}

fn put<T: BorshSerialize>(writes: &mut WriteSet, key: Vec<u8>, value: &T) {
    writes.insert(
        key,
        Some(borsh::to_vec(value).expect("borsh encoding into a Vec cannot fail")),
    );
}

/// Applies a validator message signed by `signer`.
pub fn handle(
    ctx: &mut ExecContext<'_, '_>,
    signer: Address,
    msg: &ValidatorsMsg,
) -> Result<(), TxError> {
    match msg {
        ValidatorsMsg::Register { self_bond } => register(ctx, signer, *self_bond),
        ValidatorsMsg::Leave => leave(ctx, signer),
        ValidatorsMsg::Evidence { bytes } => evidence::submit(ctx, signer, bytes),
        ValidatorsMsg::Unjail => unjail(ctx, signer),
        ValidatorsMsg::ReshareLog { round, log } => reshare::submit(ctx, signer, *round, log),
    }
}

fn register(
    ctx: &mut ExecContext<'_, '_>,
    signer: Address,
    self_bond: Amount,
) -> Result<(), TxError> {
    if self_bond == 0 {
        return Err(TxError::InvalidMessage("self_bond must be positive".into()));
    }
    let mut record = candidate(ctx.state, &signer)?.unwrap_or_default();
    if record.tombstoned_at.is_some() {
        return Err(ValidatorError::Tombstoned(signer).into());
    }
    let collateral = crate::error::add(record.collateral, self_bond, "validator collateral")?;
    let min = ctx.params.validators.min_self_bond;
    if collateral < min {
        return Err(ValidatorError::BondBelowMinimum { collateral, min }.into());
    }
    staking::lock(ctx.state, signer, self_bond)?;
    record.collateral = collateral;
    record.registered = true;
    write_candidate(ctx.state, &signer, &record);
    ctx.emit(
        Event::new(NAME, "register")
            .with("validator", signer)
            .with("self_bond", self_bond)
            .with("collateral", collateral),
    );
    Ok(())
}

fn leave(ctx: &mut ExecContext<'_, '_>, signer: Address) -> Result<(), TxError> {
    let mut record = candidate(ctx.state, &signer)?
        .filter(|c| c.registered)
        .ok_or(ValidatorError::NotCandidate(signer))?;
    staking::unlock(ctx.state, signer, record.collateral)?;
    let released = record.collateral;
    record.collateral = 0;
    record.registered = false;
    let history = record.evidence > 0 || record.slashed > 0 || record.jailed;
    if history {
        write_candidate(ctx.state, &signer, &record);
    } else {
        // Nothing to remember: drop the record, so leaving candidates do not pile up in the
        // scan every epoch boundary makes.
        ctx.state.delete(candidate_key(&signer));
    }
    ctx.emit(
        Event::new(NAME, "leave")
            .with("validator", signer)
            .with("released", released),
    );
    Ok(())
}

fn unjail(ctx: &mut ExecContext<'_, '_>, signer: Address) -> Result<(), TxError> {
    let mut record = candidate(ctx.state, &signer)?
        .filter(|c| c.jailed)
        .ok_or(ValidatorError::NotJailed(signer))?;
    if ctx.block.height < record.jailed_until {
        let until = record.jailed_until;
        return Err(ValidatorError::StillJailed {
            address: signer,
            until,
        }
        .into());
    }
    record.jailed = false;
    record.missed = 0;
    write_candidate(ctx.state, &signer, &record);
    ctx.emit(Event::new(NAME, "unjail").with("validator", signer));
    Ok(())
}

pub(crate) fn write_candidate(state: &mut Overlay<'_>, address: &Address, record: &Candidate) {
    state.put_borsh(candidate_key(address), record);
}

/// Takes up to `bps` of `address`'s bonded stake for a fault and burns it; returns the amount.
///
/// The slash reaches the validator collateral, plus the unbonding chunks when no other
/// commitment locks stake of the account (then [`staking::slash`], which takes locked stake
/// first, cannot touch stake that backs a market commitment).
pub(crate) fn slash_stake(
    ctx: &mut ExecContext<'_, '_>,
    address: Address,
    record: &mut Candidate,
    bps: u16,
) -> Result<Amount, TxError> {
    let removed = take_stake(ctx, address, record, bps)?;
    if removed > 0 {
        crate::supply::record_burn(ctx, removed, crate::supply::BurnReason::ValidatorSlash)?;
    }
    Ok(removed)
}

/// [`slash_stake`] without the burn: the caller must pay out or burn every base unit returned,
/// in the same transaction.
pub(crate) fn take_stake(
    ctx: &mut ExecContext<'_, '_>,
    address: Address,
    record: &mut Candidate,
    bps: u16,
) -> Result<Amount, TxError> {
    let stake = staking::stake(ctx.state, &address)?;
    let wanted = stake
        .bonded
        .checked_mul(Amount::from(bps))
        .ok_or(TxError::Overflow("validator slash"))?
        / Amount::from(crate::params::BPS_ONE);
    let unbonding = stake.held().ok_or(TxError::Overflow("stake"))? - stake.bonded;
    let reach = if stake.locked == record.collateral {
        crate::error::add(record.collateral, unbonding, "slash reach")?
    } else {
        record.collateral
    };
    if wanted.min(reach) == 0 {
        return Ok(0);
    }
    let removed = staking::slash(ctx.state, address, wanted.min(reach))?;
    let from_collateral = removed.min(record.collateral);
    record.collateral = crate::error::sub(record.collateral, from_collateral, "collateral")?;
    record.slashed = crate::error::add(record.slashed, removed, "slashed")?;
    Ok(removed)
}

/// Splits `slashed` into the submitter's reward (`floor(slashed * bps / 10,000)`) and the
/// burned rest; the two always sum to `slashed`.
pub fn evidence_reward_split(slashed: Amount, bps: u16) -> Result<(Amount, Amount), TxError> {
    let reward = slashed
        .checked_mul(Amount::from(bps.min(crate::params::BPS_ONE)))
        .ok_or(TxError::Overflow("evidence reward"))?
        / Amount::from(crate::params::BPS_ONE);
    Ok((reward, crate::error::sub(slashed, reward, "evidence burn")?))
}

/// The validators module.
#[derive(Debug, Default, Clone, Copy)]
pub struct Validators;

impl Module for Validators {
    fn name(&self) -> &'static str {
        NAME
    }

    fn prefix(&self) -> &'static [u8] {
        PREFIX
    }

    fn begin_block(&self, ctx: &mut ExecContext<'_, '_>) -> Result<(), TxError> {
        liveness::begin_block(ctx)
    }

    fn end_block(&self, ctx: &mut ExecContext<'_, '_>) -> Result<(), TxError> {
        set::end_block(ctx)?;
        match crate::rewards::ending_epoch(ctx.block.height, ctx.params.rewards.epoch_blocks) {
            Some(epoch) => reshare::end_block(ctx, epoch),
            None => Ok(()),
        }
    }

    fn held_by_entry(&self, _key: &[u8], _value: &[u8]) -> Result<Amount, StateError> {
        Ok(0)
    }

    fn check_invariants(&self, state: &dyn StateReader) -> Result<(), String> {
        set::check_invariants(state)?;
        reshare::check_invariants(state)
    }
}

fn hex_vec<S: serde::Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&hex::encode(bytes))
}
