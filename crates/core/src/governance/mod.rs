//! Governance: stake-weighted proposals and votes over parameters, the treasury and text.
//!
//! Owns `gov/`. A proposal carries a typed payload ([`Payload`]) and a deposit, held by this
//! module. Its voting weight is fixed at submission: an account weighs the stake it had
//! bonded before the submission height ([`crate::staking::bonded_before`]), and no more than it
//! still has bonded when the vote is counted, so stake bonded or borrowed afterwards has no
//! weight (Beanstalk, 2022) and stake unbonded during the vote stops counting. An account may
//! delegate its weight to another ([`GovMsg::Delegate`], one hop, the delegation also fixed at
//! submission); a delegate's vote carries its delegators' weight unless they vote themselves,
//! which overrides it for their own stake, so no stake is counted twice.
//!
//! Votes (yes, no, abstain, veto) can change until the voting period ends. At its end the
//! tally decides, with Cosmos x/gov's rules and defaults (all governable):
//! - turnout below `quorum_bps` of the bonded stake at submission: `no_quorum`, deposit
//!   refunded (burned with `burn_no_quorum`);
//! - veto above `veto_bps` of the turnout: `vetoed`, deposit burned (refunded without
//!   `burn_vetoed`);
//! - yes above `threshold_bps` of the non-abstain votes: `passed`, deposit refunded;
//! - otherwise `rejected`, deposit refunded.
//!
//! Quorum reached only in the last `extension_blocks` extends the vote once by that much.
//! A passed proposal waits out `timelock_blocks` (never less than [`TIMELOCK_MIN_BLOCKS`]) and
//! then executes by itself, atomically, running exactly the payload whose hash it was approved
//! under: parameter changes at the end of the first epoch's last block after the timelock (so
//! they start with an epoch), after checking the changed parameters as a whole; a grant pays
//! out of the treasury. Execution that fails changes nothing and is recorded.
//!
//! # Format
//! - `gov/next` -> next proposal id;
//! - `gov/p/<id u64>` -> [`Proposal`];
//! - `gov/v/<id u64><voter 32>` -> [`VoteOption`];
//! - `gov/d/<delegator 32><height u64>` -> `Option<Address>`, delegation checkpoints;
//! - `gov/t/<height u64><id u64>` -> `()`, the proposals with a deadline at that height.
//!
//! # Invariants
//! Held tokens are the deposits of proposals still voting; every recorded tally is a sum of
//! eligible weights and never exceeds the bonded stake it was measured against.

pub mod governable;

use std::collections::BTreeMap;

use borsh::{BorshDeserialize, BorshSerialize};
use serde::{Deserialize, Serialize};

use crate::address::Address;
use crate::bank;
use crate::error::{StateError, TxError};
use crate::event::Event;
use crate::module::{ExecContext, Module};
use crate::state::{self, StateReader};
use crate::supply::{self, BurnReason};
use crate::token::Amount;

/// Module name.
pub const NAME: &str = "governance";
/// Owned prefix.
pub const PREFIX: &[u8] = b"gov/";
const NEXT_KEY: &[u8] = b"gov/next";
/// Prefix of proposals.
pub const PROPOSAL_PREFIX: &[u8] = b"gov/p/";
const VOTE_PREFIX: &[u8] = b"gov/v/";
const DELEGATION_PREFIX: &[u8] = b"gov/d/";
const TIMER_PREFIX: &[u8] = b"gov/t/";
/// The shortest timelock governance itself can set (Build Finance, 2022: no timelock, no time
/// to react).
pub const TIMELOCK_MIN_BLOCKS: u64 = 10;
/// Most parameter changes in one proposal.
pub const CHANGES_MAX: usize = 32;
/// Longest text of a text proposal.
pub const TEXT_BYTES_MAX: usize = 4_096;

/// Governable governance parameters (`params.governance`).
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GovParams {
    /// Smallest deposit of a proposal.
    #[serde(with = "crate::params::amount_string")]
    pub deposit_min: Amount,
    /// Blocks a proposal is open for votes.
    pub voting_blocks: u64,
    /// Blocks between passing and execution.
    pub timelock_blocks: u64,
    /// Extension when quorum is first reached in the last blocks of the vote.
    pub extension_blocks: u64,
    /// Turnout needed, bps of the bonded stake at submission.
    pub quorum_bps: u32,
    /// Yes needed, bps of yes + no + veto.
    pub threshold_bps: u32,
    /// Veto that fails and burns a proposal, bps of the turnout.
    pub veto_bps: u32,
    /// Whether a vetoed proposal's deposit is burned (else refunded).
    pub burn_vetoed: bool,
    /// Whether the deposit of a proposal that missed quorum is burned (else refunded).
    pub burn_no_quorum: bool,
}

impl Default for GovParams {
    /// Cosmos x/gov's defaults (quorum 33.4%, threshold 50%, veto 33.4%), with periods in
    /// blocks.
    fn default() -> Self {
        Self {
            deposit_min: 1_000 * crate::token::BASE_UNITS_PER_POI,
            voting_blocks: 1_000,
            timelock_blocks: 100,
            extension_blocks: 100,
            quorum_bps: 3_340,
            threshold_bps: 5_000,
            veto_bps: 3_340,
            burn_vetoed: true,
            burn_no_quorum: false,
        }
    }
}

impl GovParams {
    /// Checks the invariants.
    pub fn validate(&self) -> Result<(), String> {
        if self.voting_blocks == 0 || self.timelock_blocks < TIMELOCK_MIN_BLOCKS {
            return Err(format!(
                "governance.voting_blocks must be positive and timelock_blocks at least {TIMELOCK_MIN_BLOCKS}"
            ));
        }
        if [self.quorum_bps, self.threshold_bps, self.veto_bps]
            .iter()
            .any(|b| *b == 0 || *b > 10_000)
        {
            return Err("governance quorum, threshold and veto must be 1..=10000 bps".into());
        }
        Ok(())
    }
}

/// What a proposal does if it passes.
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Payload {
    /// Set governable parameters (`path`, decimal value), all at once.
    ParamChange(Vec<(String, String)>),
    /// Pay `amount` from the treasury to `to`.
    TreasuryGrant {
        /// Recipient.
        to: Address,
        /// Amount.
        #[serde(with = "crate::params::amount_string")]
        amount: Amount,
    },
    /// A signal: no effect but its record.
    Text(String),
    /// Make a registered model version the default its name serves.
    PromoteModel {
        /// Registry id.
        version: u64,
    },
    /// Retire a model version: no new inference job may use it.
    RetireModel {
        /// Registry id.
        version: u64,
    },
}

impl Payload {
    /// blake3 of the payload's borsh encoding: what votes approve.
    pub fn hash(&self) -> [u8; 32] {
        *blake3::hash(&borsh::to_vec(self).expect("encodes")).as_bytes()
    }
}

/// A vote.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum VoteOption {
    /// For.
    Yes,
    /// Against.
    No,
    /// Counts for quorum only.
    Abstain,
    /// Against, and burns the deposit past `veto_bps`.
    Veto,
}

/// Governance messages.
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub enum GovMsg {
    /// Submit a proposal, depositing `deposit` (at least `deposit_min`).
    Submit {
        /// What it does.
        payload: Payload,
        /// Deposit.
        deposit: Amount,
    },
    /// Vote on (or change one's vote on) an open proposal.
    Vote {
        /// Proposal id.
        proposal: u64,
        /// The vote.
        option: VoteOption,
    },
    /// Delegate voting weight to `to` (none: stop delegating).
    Delegate {
        /// The delegate.
        to: Option<Address>,
    },
}

/// Where a proposal is.
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize)]
#[serde(rename_all = "snake_case", tag = "status", content = "reason")]
pub enum ProposalStatus {
    /// Open for votes.
    Voting,
    /// Passed, waiting for its timelock and execution.
    Passed,
    /// Turnout below quorum.
    NoQuorum,
    /// Vetoed.
    Vetoed,
    /// Not enough yes.
    Rejected,
    /// Executed.
    Executed,
    /// Execution failed and changed nothing.
    ExecutionFailed(String),
}

/// Weights for each option.
#[derive(Debug, Clone, Default, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize)]
pub struct Tally {
    /// Yes.
    #[serde(serialize_with = "crate::event::decimal")]
    pub yes: Amount,
    /// No.
    #[serde(serialize_with = "crate::event::decimal")]
    pub no: Amount,
    /// Abstain.
    #[serde(serialize_with = "crate::event::decimal")]
    pub abstain: Amount,
    /// Veto.
    #[serde(serialize_with = "crate::event::decimal")]
    pub veto: Amount,
}

impl Tally {
    /// All votes.
    pub fn turnout(&self) -> Amount {
        self.yes
            .saturating_add(self.no)
            .saturating_add(self.abstain)
            .saturating_add(self.veto)
    }

    fn add(&mut self, option: VoteOption, weight: Amount) {
        let slot = match option {
            VoteOption::Yes => &mut self.yes,
            VoteOption::No => &mut self.no,
            VoteOption::Abstain => &mut self.abstain,
            VoteOption::Veto => &mut self.veto,
        };
        *slot = slot.saturating_add(weight);
    }
}

/// A proposal and its history.
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize)]
pub struct Proposal {
    /// Id.
    pub id: u64,
    /// Who submitted it.
    pub proposer: Address,
    /// What it does.
    pub payload: Payload,
    /// The hash votes approve; execution refuses a payload that does not match it.
    #[serde(serialize_with = "crate::event::hex32")]
    pub payload_hash: [u8; 32],
    /// Deposit held while it is voting.
    #[serde(serialize_with = "crate::event::decimal")]
    pub deposit: Amount,
    /// Submission height: weights are the stake bonded before it.
    pub submit_height: u64,
    /// Bonded stake at submission (the quorum's base).
    #[serde(serialize_with = "crate::event::decimal")]
    pub bonded: Amount,
    /// Last height of voting.
    pub voting_end: u64,
    /// Whether late quorum extended the vote.
    pub extended: bool,
    /// Whether quorum was already reached `extension_blocks` before the end (none: not
    /// checked).
    pub early_quorum: Option<bool>,
    /// Status.
    #[serde(flatten)]
    pub status: ProposalStatus,
    /// The final tally (after voting).
    pub tally: Option<Tally>,
    /// Turnout as bps of `bonded`.
    pub turnout_bps: Option<u64>,
    /// Earliest execution height (after the timelock).
    pub execute_after: Option<u64>,
    /// Each step and its height: submitted, extended, passed/rejected/..., executed.
    pub steps: Vec<(String, u64)>,
}

fn proposal_key(id: u64) -> Vec<u8> {
    [PROPOSAL_PREFIX, &id.to_be_bytes()].concat()
}

fn vote_key(id: u64, voter: &Address) -> Vec<u8> {
    [VOTE_PREFIX, &id.to_be_bytes(), voter.as_bytes()].concat()
}

fn timer_key(height: u64, id: u64) -> Vec<u8> {
    [TIMER_PREFIX, &height.to_be_bytes(), &id.to_be_bytes()].concat()
}

/// Proposal `id`.
pub fn read_proposal(state: &dyn StateReader, id: u64) -> Result<Option<Proposal>, StateError> {
    state::read_borsh(state, &proposal_key(id))
}

/// Proposals from id `from`, at most `limit`.
pub fn proposals(
    state: &dyn StateReader,
    from: u64,
    limit: usize,
) -> Result<Vec<Proposal>, StateError> {
    let mut out = Vec::new();
    let mut failure = None;
    state.scan_prefix(PROPOSAL_PREFIX, &mut |key, value| {
        match state::decode::<Proposal>(key, value) {
            Ok(p) if p.id >= from => out.push(p),
            Ok(_) => {}
            Err(e) => failure = Some(e),
        }
        failure.is_none() && out.len() < limit
    })?;
    failure.map_or(Ok(out), Err)
}

/// The votes cast on `id`, by voter.
pub fn votes(
    state: &dyn StateReader,
    id: u64,
) -> Result<BTreeMap<Address, VoteOption>, StateError> {
    let prefix = [VOTE_PREFIX, &id.to_be_bytes()].concat();
    let mut out = BTreeMap::new();
    let mut failure = None;
    state.scan_prefix(&prefix, &mut |key, value| {
        let who: Option<[u8; 32]> = key[prefix.len()..].try_into().ok();
        match (who, state::decode::<VoteOption>(key, value)) {
            (Some(who), Ok(v)) => {
                out.insert(Address(who), v);
            }
            (_, Err(e)) => failure = Some(e),
            (None, _) => failure = Some(StateError(format!("bad vote key {}", hex::encode(key)))),
        }
        failure.is_none()
    })?;
    failure.map_or(Ok(out), Err)
}

/// Every account's delegate before `height`, by delegator.
pub fn delegations_before(
    state: &dyn StateReader,
    height: u64,
) -> Result<BTreeMap<Address, Address>, StateError> {
    let mut current: BTreeMap<Address, Option<Address>> = BTreeMap::new();
    let mut failure = None;
    state.scan_prefix(DELEGATION_PREFIX, &mut |key, value| {
        let rest = &key[DELEGATION_PREFIX.len()..];
        if rest.len() != 40 {
            failure = Some(StateError(format!(
                "bad delegation key {}",
                hex::encode(key)
            )));
            return false;
        }
        let who = Address(rest[..32].try_into().expect("32 bytes"));
        let at = u64::from_be_bytes(rest[32..].try_into().expect("8 bytes"));
        if at < height {
            match state::decode::<Option<Address>>(key, value) {
                Ok(to) => {
                    current.insert(who, to);
                }
                Err(e) => failure = Some(e),
            }
        }
        failure.is_none()
    })?;
    if let Some(e) = failure {
        return Err(e);
    }
    Ok(current
        .into_iter()
        .filter_map(|(who, to)| to.map(|to| (who, to)))
        .collect())
}

/// An account's weight on a proposal submitted at `height`: what it had bonded before then,
/// and no more than it has bonded now.
pub fn weight(state: &dyn StateReader, who: &Address, height: u64) -> Result<Amount, StateError> {
    let then = crate::staking::bonded_before(state, who, height)?;
    let now = crate::staking::stake(state, who)?.bonded;
    Ok(then.min(now))
}

/// The tally of `proposal` now: each voter's weight on its option, plus the weight of every
/// account that delegated to a voter before submission and did not vote itself.
pub fn tally(state: &dyn StateReader, proposal: &Proposal) -> Result<Tally, StateError> {
    let votes = votes(state, proposal.id)?;
    let mut t = Tally::default();
    for (voter, option) in &votes {
        t.add(*option, weight(state, voter, proposal.submit_height)?);
    }
    for (delegator, delegate) in delegations_before(state, proposal.submit_height)? {
        if votes.contains_key(&delegator) {
            continue; // voted itself: its own vote overrides the delegate's
        }
        if let Some(option) = votes.get(&delegate) {
            t.add(*option, weight(state, &delegator, proposal.submit_height)?);
        }
    }
    Ok(t)
}

fn write(ctx: &mut ExecContext<'_, '_>, p: &Proposal) {
    ctx.state.put_borsh(proposal_key(p.id), p);
}

fn proposal_or_err(ctx: &ExecContext<'_, '_>, id: u64) -> Result<Proposal, TxError> {
    read_proposal(ctx.state, id)?.ok_or(TxError::UnknownProposal(id))
}

fn check_payload(ctx: &ExecContext<'_, '_>, payload: &Payload) -> Result<(), TxError> {
    match payload {
        Payload::ParamChange(changes) => {
            if changes.is_empty() || changes.len() > CHANGES_MAX {
                return Err(TxError::InvalidMessage(format!(
                    "a parameter change proposal has 1..={CHANGES_MAX} changes"
                )));
            }
            let mut params = ctx.params.clone();
            for (path, value) in changes {
                governable::apply(&mut params, path, value).map_err(TxError::ParamOutOfRange)?;
            }
            params
                .validate()
                .map_err(|e| TxError::ParamOutOfRange(e.to_string()))
        }
        Payload::TreasuryGrant { amount, .. } if *amount == 0 => Err(TxError::InvalidMessage(
            "a treasury grant must be positive".into(),
        )),
        Payload::TreasuryGrant { .. } => Ok(()),
        Payload::Text(text) if text.is_empty() || text.len() > TEXT_BYTES_MAX => Err(
            TxError::InvalidMessage(format!("a text proposal has 1..={TEXT_BYTES_MAX} bytes")),
        ),
        Payload::Text(_) => Ok(()),
        Payload::PromoteModel { version } | Payload::RetireModel { version } => {
            match crate::poi::registry::read_model(ctx.state, *version)? {
                Some(_) => Ok(()),
                None => Err(TxError::InvalidMessage(format!(
                    "model version {version} is not registered"
                ))),
            }
        }
    }
}

/// Applies a governance message signed by `signer`.
pub fn handle(ctx: &mut ExecContext<'_, '_>, signer: Address, msg: &GovMsg) -> Result<(), TxError> {
    let height = ctx.block.height;
    match msg {
        GovMsg::Submit { payload, deposit } => {
            let params = ctx.params.governance.clone();
            if *deposit < params.deposit_min {
                return Err(TxError::InvalidMessage(format!(
                    "deposit {deposit} is below the minimum {}",
                    params.deposit_min
                )));
            }
            check_payload(ctx, payload)?;
            bank::debit(ctx.state, signer, *deposit)?;
            let id: u64 = ctx.state.get_borsh(NEXT_KEY)?.unwrap_or(0);
            ctx.state.put_borsh(NEXT_KEY.to_vec(), &(id + 1));
            let voting_end = height
                .checked_add(params.voting_blocks)
                .ok_or(TxError::Overflow("voting end"))?;
            let p = Proposal {
                id,
                proposer: signer,
                payload_hash: payload.hash(),
                payload: payload.clone(),
                deposit: *deposit,
                submit_height: height,
                bonded: crate::staking::total_bonded(ctx.state)?,
                voting_end,
                extended: false,
                early_quorum: None,
                status: ProposalStatus::Voting,
                tally: None,
                turnout_bps: None,
                execute_after: None,
                steps: vec![("submitted".into(), height)],
            };
            write(ctx, &p);
            ctx.state.put_borsh(timer_key(voting_end, id), &());
            if params.extension_blocks > 0 && params.extension_blocks < params.voting_blocks {
                let check = voting_end - params.extension_blocks;
                ctx.state.put_borsh(timer_key(check, id), &());
            }
            ctx.emit(
                Event::new(NAME, "submitted")
                    .with("proposal", id)
                    .with("proposer", signer)
                    .with("deposit", *deposit)
                    .with("voting_end", voting_end),
            );
            Ok(())
        }
        GovMsg::Vote { proposal, option } => {
            let p = proposal_or_err(ctx, *proposal)?;
            if p.status != ProposalStatus::Voting || height > p.voting_end {
                return Err(TxError::VotingClosed(*proposal));
            }
            let own = weight(ctx.state, &signer, p.submit_height)?;
            let delegated = if own > 0 {
                false
            } else {
                delegations_before(ctx.state, p.submit_height)?
                    .values()
                    .any(|d| *d == signer)
            };
            if own == 0 && !delegated {
                return Err(TxError::NoVotingPower {
                    account: signer,
                    proposal: *proposal,
                });
            }
            ctx.state.put_borsh(vote_key(*proposal, &signer), option);
            ctx.emit(
                Event::new(NAME, "vote")
                    .with("proposal", *proposal)
                    .with("voter", signer)
                    .with("weight", own),
            );
            Ok(())
        }
        GovMsg::Delegate { to } => {
            if *to == Some(signer) {
                return Err(TxError::InvalidMessage(
                    "an account cannot delegate to itself".into(),
                ));
            }
            if let Some(to) = to {
                // One hop: a delegate does not pass on what it was given.
                let key_prefix = [DELEGATION_PREFIX, to.as_bytes()].concat();
                let mut delegates = false;
                ctx.state.scan_prefix(&key_prefix, &mut |_, v| {
                    delegates = borsh::from_slice::<Option<Address>>(v)
                        .map(|d| d.is_some())
                        .unwrap_or(false);
                    true
                })?;
                if delegates {
                    return Err(TxError::InvalidMessage(format!(
                        "{to} delegates its own weight: delegation is one hop"
                    )));
                }
            }
            let key = [DELEGATION_PREFIX, signer.as_bytes(), &height.to_be_bytes()].concat();
            ctx.state.put_borsh(key, to);
            let mut event = Event::new(NAME, "delegate").with("delegator", signer);
            if let Some(to) = to {
                event = event.with("to", *to);
            }
            ctx.emit(event);
            Ok(())
        }
    }
}

fn step(p: &mut Proposal, what: &str, height: u64) {
    p.steps.push((what.into(), height));
}

fn has_quorum(t: &Tally, p: &Proposal, params: &GovParams) -> bool {
    t.turnout().saturating_mul(10_000) >= p.bonded.saturating_mul(params.quorum_bps.into())
}

/// Ends the vote of `p` (its last voting block).
fn conclude(ctx: &mut ExecContext<'_, '_>, mut p: Proposal) -> Result<(), TxError> {
    let params = ctx.params.governance.clone();
    let height = ctx.block.height;
    let t = tally(ctx.state, &p)?;
    let turnout = t.turnout();
    let quorum = has_quorum(&t, &p, &params);
    let extend = params.extension_blocks;
    if quorum && !p.extended && p.early_quorum == Some(false) {
        // Quorum came only in the last `extend` blocks: give the other side time to answer.
        p.extended = true;
        p.voting_end = height.saturating_add(extend);
        step(&mut p, "extended", height);
        ctx.state.put_borsh(timer_key(p.voting_end, p.id), &());
        write(ctx, &p);
        return Ok(());
    }
    p.turnout_bps = Some(
        turnout
            .saturating_mul(10_000)
            .checked_div(p.bonded)
            .map_or(0, |bps| u64::try_from(bps).unwrap_or(u64::MAX)),
    );
    let non_abstain = t.yes.saturating_add(t.no).saturating_add(t.veto);
    let (status, burn) = if !quorum {
        (ProposalStatus::NoQuorum, params.burn_no_quorum)
    } else if t.veto.saturating_mul(10_000) > turnout.saturating_mul(params.veto_bps.into()) {
        (ProposalStatus::Vetoed, params.burn_vetoed)
    } else if t.yes.saturating_mul(10_000) > non_abstain.saturating_mul(params.threshold_bps.into())
    {
        (ProposalStatus::Passed, false)
    } else {
        (ProposalStatus::Rejected, false)
    };
    if burn {
        supply::record_burn(ctx, p.deposit, BurnReason::GovernanceDeposit)?;
    } else {
        bank::credit(ctx.state, p.proposer, p.deposit)?;
    }
    let name = match &status {
        ProposalStatus::NoQuorum => "no_quorum",
        ProposalStatus::Vetoed => "vetoed",
        ProposalStatus::Passed => "passed",
        _ => "rejected",
    };
    step(&mut p, name, height);
    if status == ProposalStatus::Passed {
        let after = height.saturating_add(params.timelock_blocks.max(TIMELOCK_MIN_BLOCKS));
        p.execute_after = Some(after);
        ctx.state.put_borsh(timer_key(after, p.id), &());
    }
    ctx.emit(
        Event::new(NAME, name)
            .with("proposal", p.id)
            .with("yes", t.yes)
            .with("no", t.no)
            .with("abstain", t.abstain)
            .with("veto", t.veto)
            .with("bonded", p.bonded),
    );
    p.status = status;
    p.tally = Some(t);
    p.deposit = 0;
    write(ctx, &p);
    Ok(())
}

/// Runs a passed proposal's payload, or records why it could not run (changing nothing).
fn execute(ctx: &mut ExecContext<'_, '_>, mut p: Proposal) -> Result<(), TxError> {
    let height = ctx.block.height;
    if let Payload::ParamChange(_) = p.payload {
        let e = ctx.params.rewards.epoch_blocks.max(1);
        if crate::rewards::ending_epoch(height, e).is_none() {
            // Parameter changes wait for the end of the epoch.
            let boundary = (height / e + 1) * e - 1;
            ctx.state.put_borsh(timer_key(boundary, p.id), &());
            return Ok(());
        }
    }
    let outcome = if p.payload.hash() != p.payload_hash {
        Err("the payload does not match the approved hash".to_string())
    } else {
        run_payload(ctx, &p.payload)
    };
    match outcome {
        Ok(()) => {
            p.status = ProposalStatus::Executed;
            step(&mut p, "executed", height);
            ctx.emit(Event::new(NAME, "executed").with("proposal", p.id));
        }
        Err(reason) => {
            step(&mut p, "execution_failed", height);
            ctx.emit(
                Event::new(NAME, "execution_failed")
                    .with("proposal", p.id)
                    .with("reason", reason.clone()),
            );
            p.status = ProposalStatus::ExecutionFailed(reason);
        }
    }
    write(ctx, &p);
    Ok(())
}

fn run_payload(ctx: &mut ExecContext<'_, '_>, payload: &Payload) -> Result<(), String> {
    match payload {
        Payload::ParamChange(changes) => {
            let mut params = ctx.params.clone();
            for (path, value) in changes {
                governable::apply(&mut params, path, value)?;
            }
            params.validate().map_err(|e| e.to_string())?;
            ctx.state
                .put_borsh(crate::params::PARAMS_KEY.to_vec(), &params);
            Ok(())
        }
        Payload::TreasuryGrant { to, amount } => {
            let treasury = bank::account(ctx.state, &bank::treasury())
                .map_err(|e| e.to_string())?
                .map_or(0, |a| a.balance);
            if treasury < *amount {
                return Err(format!(
                    "the treasury holds {treasury}, the grant is {amount}"
                ));
            }
            bank::transfer(ctx.state, bank::treasury(), *to, *amount).map_err(|e| e.to_string())
        }
        Payload::Text(_) => Ok(()),
        Payload::PromoteModel { version } => crate::poi::registry::promote(ctx, *version),
        Payload::RetireModel { version } => crate::poi::registry::retire(ctx, *version),
    }
}

/// The governance module.
#[derive(Debug, Default, Clone, Copy)]
pub struct Governance;

impl Module for Governance {
    fn name(&self) -> &'static str {
        NAME
    }

    fn prefix(&self) -> &'static [u8] {
        PREFIX
    }

    /// Ends votes and executes passed proposals whose time has come.
    fn end_block(&self, ctx: &mut ExecContext<'_, '_>) -> Result<(), TxError> {
        let prefix = [TIMER_PREFIX, &ctx.block.height.to_be_bytes()].concat();
        let mut due = Vec::new();
        ctx.state.scan_prefix(&prefix, &mut |key, _| {
            if let Ok(id) = key[prefix.len()..].try_into().map(u64::from_be_bytes) {
                due.push((key.to_vec(), id));
            }
            true
        })?;
        for (key, id) in due {
            ctx.state.delete(key);
            let Some(p) = read_proposal(ctx.state, id)? else {
                continue;
            };
            match p.status {
                ProposalStatus::Voting if p.voting_end == ctx.block.height => conclude(ctx, p)?,
                ProposalStatus::Voting if p.early_quorum.is_none() => {
                    let mut p = p;
                    let t = tally(ctx.state, &p)?;
                    p.early_quorum = Some(has_quorum(&t, &p, &ctx.params.governance));
                    write(ctx, &p);
                }
                ProposalStatus::Passed => execute(ctx, p)?,
                _ => {}
            }
        }
        Ok(())
    }

    /// A voting proposal holds its deposit.
    fn held_by_entry(&self, key: &[u8], value: &[u8]) -> Result<Amount, StateError> {
        if key.starts_with(PROPOSAL_PREFIX) {
            Ok(state::decode::<Proposal>(key, value)?.deposit)
        } else {
            Ok(0)
        }
    }

    fn check_invariants(&self, state: &dyn StateReader) -> Result<(), String> {
        state::check_records(state, PROPOSAL_PREFIX, |p: &Proposal| {
            (p.status != ProposalStatus::Voting && p.deposit != 0)
                .then(|| format!("proposal {} keeps its deposit after voting", p.id))
        })
    }
}
