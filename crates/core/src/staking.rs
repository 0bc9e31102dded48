//! Staking: bonded stake, unbonding with a delay, and the user tiers stake buys.
//!
//! Owns: `stk/s/<address>` → [`Stake`] (bonded amount, the part of it locked behind active
//! commitments, and the queue of unbonding chunks). Every base unit in a record is held by this
//! module: bonding moves tokens out of the bank, withdrawing a matured chunk moves them back.
//!
//! Invariants: `locked <= bonded`; every unbonding chunk has a positive amount, and a new chunk
//! is refused once [`StakingParams::unbonding_entries_max`] wait; a record with nothing bonded
//! and nothing unbonding is deleted. Stake that is unbonding has no tier and no weight; it only
//! waits out [`StakingParams::unbonding_blocks`], so that stake answerable for past behaviour
//! (a provider's jobs, a validator's votes) cannot leave before a fault can be proven.
//!
//! Every bond and unbond also writes a checkpoint `stk/h/<address><height>` of the account's
//! bonded stake, so [`bonded_before`] answers what an account had bonded before any height
//! (voting weight is fixed at a proposal's submission); `stk/total` is the sum of all bonded
//! stake.
//!
//! Other modules lock and unlock stake through [`lock`] and [`unlock`] (the market locks a
//! provider's collateral and a user's tier stake while they back active jobs), and take locked
//! stake away for a proven fault with [`slash`].

use borsh::{BorshDeserialize, BorshSerialize};
use serde::{Deserialize, Serialize};

use crate::address::Address;
use crate::bank;
use crate::error::{self, StateError, TxError};
use crate::event::Event;
use crate::module::{ExecContext, Module};
use crate::state::{self, Overlay, StateReader};
use crate::token::Amount;

/// Module name.
pub const NAME: &str = "staking";
/// Owned prefix.
pub const PREFIX: &[u8] = b"stk/";
/// Prefix of stake records.
pub const STAKE_PREFIX: &[u8] = b"stk/s/";
/// Prefix of bonded-stake checkpoints: `stk/h/<address><height u64>` -> the account's bonded
/// stake after a bond or unbond at that height (governance weighs votes by them).
pub const CHECKPOINT_PREFIX: &[u8] = b"stk/h/";
/// Total bonded stake of all accounts.
pub const TOTAL_KEY: &[u8] = b"stk/total";
/// Most tiers the thresholds may define.
pub const TIERS_MAX: usize = 8;

/// Governable staking parameters.
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StakingParams {
    /// Blocks between an unbond and the withdrawal of its tokens.
    pub unbonding_blocks: u64,
    /// Most unbonding chunks one account may have waiting at once (bounds the record's size).
    pub unbonding_entries_max: u32,
    /// Bonded stake needed for tier 1, 2, ...: strictly ascending, positive. Tier 0 needs none.
    #[serde(with = "amounts_string")]
    pub tier_thresholds: Vec<Amount>,
}

impl Default for StakingParams {
    fn default() -> Self {
        const POI: Amount = crate::token::BASE_UNITS_PER_POI;
        Self {
            // About a day at one block per second.
            unbonding_blocks: 86_400,
            unbonding_entries_max: 7,
            tier_thresholds: vec![100 * POI, 1_000 * POI, 10_000 * POI],
        }
    }
}

impl StakingParams {
    /// Checks the invariants; the reason names the offending field.
    pub fn validate(&self) -> Result<(), String> {
        if self.unbonding_entries_max == 0 {
            return Err("staking.unbonding_entries_max must be at least 1".into());
        }
        if self.tier_thresholds.len() > TIERS_MAX {
            return Err(format!(
                "staking.tier_thresholds has {} tiers, at most {TIERS_MAX}",
                self.tier_thresholds.len()
            ));
        }
        if self.tier_thresholds.first() == Some(&0) {
            return Err("staking.tier_thresholds must be positive".into());
        }
        if self
            .tier_thresholds
            .windows(2)
            .any(|pair| pair[0] >= pair[1])
        {
            return Err("staking.tier_thresholds must be strictly ascending".into());
        }
        Ok(())
    }

    /// The tier `bonded` stake reaches: how many thresholds it meets.
    pub fn tier(&self, bonded: Amount) -> u8 {
        let tiers = self
            .tier_thresholds
            .iter()
            .filter(|t| bonded >= **t)
            .count();
        u8::try_from(tiers).expect("at most TIERS_MAX tiers")
    }
}

/// Tokens on their way out of stake.
#[derive(Debug, Clone, Copy, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize)]
pub struct Unbonding {
    /// Base units.
    #[serde(serialize_with = "crate::event::decimal")]
    pub amount: Amount,
    /// First height at which they can be withdrawn.
    pub release_height: u64,
}

/// One account's stake.
#[derive(Debug, Clone, Default, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize)]
pub struct Stake {
    /// Bonded base units: they count for tiers and weight.
    #[serde(serialize_with = "crate::event::decimal")]
    pub bonded: Amount,
    /// The part of `bonded` that backs active commitments and cannot be unbonded.
    #[serde(serialize_with = "crate::event::decimal")]
    pub locked: Amount,
    /// Chunks waiting out the unbonding period, by release height.
    pub unbonding: Vec<Unbonding>,
}

impl Stake {
    /// Base units this record holds: bonded plus unbonding.
    pub fn held(&self) -> Option<Amount> {
        self.unbonding
            .iter()
            .try_fold(self.bonded, |sum, chunk| sum.checked_add(chunk.amount))
    }

    /// Bonded stake that is free to unbond.
    pub fn free(&self) -> Amount {
        self.bonded.saturating_sub(self.locked)
    }
}

/// Staking messages.
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub enum StakingMsg {
    /// Move `amount` base units from the signer's balance into its bonded stake.
    Bond {
        /// Base units; must be positive.
        amount: Amount,
    },
    /// Start unbonding `amount` of the signer's free bonded stake.
    Unbond {
        /// Base units; must be positive.
        amount: Amount,
    },
    /// Move every matured unbonding chunk back to the signer's balance.
    Withdraw,
}

/// The state key of `address`'s stake.
pub fn stake_key(address: &Address) -> Vec<u8> {
    [STAKE_PREFIX, address.as_bytes()].concat()
}

/// Reads `address`'s stake (all zero if it never staked).
pub fn stake(state: &dyn StateReader, address: &Address) -> Result<Stake, StateError> {
    Ok(state::read_borsh(state, &stake_key(address))?.unwrap_or_default())
}

/// The tier of `address` under `params`.
pub fn tier(
    state: &dyn StateReader,
    params: &StakingParams,
    address: &Address,
) -> Result<u8, StateError> {
    Ok(params.tier(stake(state, address)?.bonded))
}

/// Total bonded stake.
pub fn total_bonded(state: &dyn StateReader) -> Result<Amount, StateError> {
    Ok(state::read_borsh(state, TOTAL_KEY)?.unwrap_or(0))
}

/// What `address` had bonded at the end of height `height - 1` (0 before its first bond).
pub fn bonded_before(
    state: &dyn StateReader,
    address: &Address,
    height: u64,
) -> Result<Amount, StateError> {
    let prefix = [CHECKPOINT_PREFIX, address.as_bytes()].concat();
    let mut bonded = 0;
    let mut failure = None;
    state.scan_prefix(&prefix, &mut |key, value| {
        let at = key[prefix.len()..]
            .try_into()
            .map(u64::from_be_bytes)
            .unwrap_or(u64::MAX);
        if at >= height {
            return false;
        }
        match state::decode::<Amount>(key, value) {
            Ok(v) => bonded = v,
            Err(e) => failure = Some(e),
        }
        failure.is_none()
    })?;
    failure.map_or(Ok(bonded), Err)
}

fn checkpoint(state: &mut Overlay<'_>, address: &Address, height: u64, bonded: Amount) {
    let key = [CHECKPOINT_PREFIX, address.as_bytes(), &height.to_be_bytes()].concat();
    state.put_borsh(key, &bonded);
}

fn write(state: &mut Overlay<'_>, address: &Address, stake: &Stake) {
    let before = state
        .get_borsh::<Stake>(&stake_key(address))
        .ok()
        .flatten()
        .map_or(0, |s| s.bonded);
    if before != stake.bonded {
        let total = state
            .get_borsh::<Amount>(TOTAL_KEY)
            .ok()
            .flatten()
            .unwrap_or(0);
        // Bonded stake is bounded by the supply, so neither side can overflow.
        let total = total.saturating_add(stake.bonded).saturating_sub(before);
        state.put_borsh(TOTAL_KEY.to_vec(), &total);
    }
    if stake.bonded == 0 && stake.unbonding.is_empty() {
        state.delete(stake_key(address));
    } else {
        state.put_borsh(stake_key(address), stake);
    }
}

/// Locks `amount` more of `address`'s free bonded stake behind a commitment.
pub fn lock(state: &mut Overlay<'_>, address: Address, amount: Amount) -> Result<(), TxError> {
    let mut record = stake(state, &address)?;
    if amount > record.free() {
        return Err(TxError::InsufficientStake {
            account: address,
            free: record.free(),
            needed: amount,
        });
    }
    record.locked = error::add(record.locked, amount, "locked stake")?;
    write(state, &address, &record);
    Ok(())
}

/// Releases `amount` of `address`'s locked stake; more than is locked is a bug of the caller.
pub fn unlock(state: &mut Overlay<'_>, address: Address, amount: Amount) -> Result<(), TxError> {
    let mut record = stake(state, &address)?;
    record.locked = error::sub(record.locked, amount, "locked stake")?;
    write(state, &address, &record);
    Ok(())
}

/// Destroys up to `amount` of `address`'s stake answering for a proven fault (of the commitment
/// its locked stake backed) and returns how much was removed. Locked stake goes first; if it
/// is not enough, the account's unbonding chunks follow, newest first (stake that left the
/// commitment most recently, possibly to escape it), emptied chunks being dropped. Free bonded
/// stake is never touched. So `removed = min(amount, locked + unbonding)`. The removed base
/// units leave this module's holdings, so the caller must put exactly that much somewhere (a
/// victim's balance, the treasury) or record it as burned in the same transaction; otherwise
/// the chain's supply check fails the block.
pub fn slash(state: &mut Overlay<'_>, address: Address, amount: Amount) -> Result<Amount, TxError> {
    let mut record = stake(state, &address)?;
    let from_locked = amount.min(record.locked);
    record.locked = error::sub(record.locked, from_locked, "locked stake")?;
    record.bonded = error::sub(record.bonded, from_locked, "slashed stake")?;
    let mut removed = from_locked;
    for chunk in record.unbonding.iter_mut().rev() {
        let want = error::sub(amount, removed, "slash")?;
        if want == 0 {
            break;
        }
        let take = want.min(chunk.amount);
        chunk.amount = error::sub(chunk.amount, take, "unbonding chunk")?;
        removed = error::add(removed, take, "slashed stake")?;
    }
    record.unbonding.retain(|chunk| chunk.amount > 0);
    write(state, &address, &record);
    Ok(removed)
}

/// Applies a staking message signed by `signer`.
pub fn handle(
    ctx: &mut ExecContext<'_, '_>,
    signer: Address,
    msg: &StakingMsg,
) -> Result<(), TxError> {
    let params = &ctx.params.staking;
    let mut record = stake(ctx.state, &signer)?;
    match *msg {
        StakingMsg::Bond { amount } => {
            positive(amount, "bond")?;
            bank::debit(ctx.state, signer, amount)?;
            record.bonded = error::add(record.bonded, amount, "bonded stake")?;
            write(ctx.state, &signer, &record);
            checkpoint(ctx.state, &signer, ctx.block.height, record.bonded);
            ctx.emit(
                Event::new(NAME, "bond")
                    .with("staker", signer)
                    .with("amount", amount)
                    .with("bonded", record.bonded)
                    .with("tier", u64::from(params.tier(record.bonded))),
            );
        }
        StakingMsg::Unbond { amount } => {
            positive(amount, "unbond")?;
            if amount > record.free() {
                return Err(if amount > record.bonded {
                    TxError::InsufficientStake {
                        account: signer,
                        free: record.free(),
                        needed: amount,
                    }
                } else {
                    TxError::StakeLocked {
                        account: signer,
                        locked: record.locked,
                        requested: amount,
                    }
                });
            }
            if record.unbonding.len() >= params.unbonding_entries_max as usize {
                return Err(TxError::TooManyUnbondings {
                    account: signer,
                    max: params.unbonding_entries_max,
                });
            }
            let release_height = ctx
                .block
                .height
                .checked_add(params.unbonding_blocks)
                .ok_or(TxError::Overflow("release height"))?;
            record.bonded -= amount;
            record.unbonding.push(Unbonding {
                amount,
                release_height,
            });
            write(ctx.state, &signer, &record);
            checkpoint(ctx.state, &signer, ctx.block.height, record.bonded);
            ctx.emit(
                Event::new(NAME, "unbond")
                    .with("staker", signer)
                    .with("amount", amount)
                    .with("release_height", release_height)
                    .with("bonded", record.bonded)
                    .with("tier", u64::from(params.tier(record.bonded))),
            );
        }
        StakingMsg::Withdraw => {
            let height = ctx.block.height;
            let (matured, waiting): (Vec<Unbonding>, Vec<Unbonding>) = record
                .unbonding
                .iter()
                .partition(|chunk| chunk.release_height <= height);
            if matured.is_empty() {
                return Err(TxError::NothingToWithdraw {
                    account: signer,
                    next_release: waiting.iter().map(|c| c.release_height).min(),
                });
            }
            let amount = matured
                .iter()
                .try_fold(0, |sum: Amount, chunk| sum.checked_add(chunk.amount))
                .ok_or(TxError::Overflow("withdrawal"))?;
            record.unbonding = waiting;
            write(ctx.state, &signer, &record);
            bank::credit(ctx.state, signer, amount)?;
            ctx.emit(
                Event::new(NAME, "withdraw")
                    .with("staker", signer)
                    .with("amount", amount),
            );
        }
    }
    Ok(())
}

fn positive(amount: Amount, what: &str) -> Result<(), TxError> {
    if amount == 0 {
        return Err(TxError::InvalidMessage(format!(
            "{what} amount must be positive"
        )));
    }
    Ok(())
}

/// The staking module.
#[derive(Debug, Default, Clone, Copy)]
pub struct Staking;

impl Module for Staking {
    fn name(&self) -> &'static str {
        NAME
    }

    fn prefix(&self) -> &'static [u8] {
        PREFIX
    }

    fn held_by_entry(&self, key: &[u8], value: &[u8]) -> Result<Amount, StateError> {
        if !key.starts_with(STAKE_PREFIX) {
            return Ok(0);
        }
        state::decode::<Stake>(key, value)?
            .held()
            .ok_or_else(|| StateError(format!("stake under {} overflows", hex::encode(key))))
    }

    fn check_invariants(&self, state: &dyn StateReader) -> Result<(), String> {
        let mut problem = None;
        state
            .scan_prefix(STAKE_PREFIX, &mut |key, value| {
                problem = check_record(key, value).err();
                problem.is_none()
            })
            .map_err(|e| e.to_string())?;
        if let Some(problem) = problem {
            return Err(problem);
        }
        let mut sum: Amount = 0;
        state
            .scan_prefix(STAKE_PREFIX, &mut |key, value| {
                if let Ok(s) = state::decode::<Stake>(key, value) {
                    sum = sum.saturating_add(s.bonded);
                }
                true
            })
            .map_err(|e| e.to_string())?;
        let total = total_bonded(state).map_err(|e| e.to_string())?;
        if sum != total {
            return Err(format!("stk/total is {total}, bonded stake sums to {sum}"));
        }
        Ok(())
    }
}

fn check_record(key: &[u8], value: &[u8]) -> Result<(), String> {
    if key.len() != STAKE_PREFIX.len() + 32 {
        return Err(format!("bad stake key {}", hex::encode(key)));
    }
    let record: Stake = state::decode(key, value).map_err(|e| e.to_string())?;
    let who = hex::encode(&key[STAKE_PREFIX.len()..]);
    if record.locked > record.bonded {
        return Err(format!("stake of {who}: locked exceeds bonded"));
    }
    if record.bonded == 0 && record.unbonding.is_empty() {
        return Err(format!("stake of {who}: empty record kept"));
    }
    if record.unbonding.iter().any(|chunk| chunk.amount == 0) {
        return Err(format!("stake of {who}: empty unbonding chunk"));
    }
    if record.held().is_none() {
        return Err(format!("stake of {who}: holdings overflow"));
    }
    Ok(())
}

/// Lists of `u128` amounts as decimal strings in TOML/JSON.
mod amounts_string {
    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(amounts: &[u128], s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(amounts.iter().map(|a| a.to_string()))
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u128>, D::Error> {
        Vec::<String>::deserialize(d)?
            .iter()
            .map(|text| crate::token::parse_amount(text).map_err(serde::de::Error::custom))
            .collect()
    }
}
