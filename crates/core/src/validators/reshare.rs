//! Signer generations and the on-chain half of resharing the consensus group key to a new set.
//!
//! The consensus engine signs with threshold BLS (`bls12381_threshold::vrf`, MinSig). A recorded
//! set ([`super::set`]) can only run the engine once the group key is *reshared* to it, keeping
//! the group identity (so beacon seeds keep verifying). This module records who holds shares
//! (the *generations*) and runs the public part of commonware's Desmedt97 resharing
//! (`bls12381::dkg::feldman_desmedt`): the dealers' signed logs are transactions, so every
//! node feeds exactly the same logs to `observe` (the protocol's agreement requirement). The
//! private part (dealer to player shares, acks) is the node's, over p2p.
//!
//! # Generations
//! Generation `g` is a sharing of the group key among a participant set; the consensus engine
//! epoch is the generation number. `val/gen/<g u64 be>` -> [`Generation`]: first chain epoch
//! it signs, participants (ed25519 keys, ascending by bytes as commonware's `ordered::Set`
//! sorts them), the public polynomial (commonware codec of `Sharing<MinSig>`, as in
//! `genesis.beacon.polynomial`) and the encoded `feldman_desmedt::Output` a next round uses as
//! `previous`. `val/gcur` -> `u64` be: the current generation (absent: 0).
//!
//! Generation 0 is *virtual*: it is read from `val/g` (the genesis participants and
//! polynomial), not written, so chains started before this module need no migration and
//! genesis state roots do not change. Its `Output` (the genesis was dealt by a trusted dealer
//! whose `Output` is not on chain) is rebuilt deterministically: summary = blake3 of
//! [`GENESIS_OUTPUT_DOMAIN`], the namespace and the polynomial bytes; dealers = players = the
//! genesis participants; nothing revealed. Only the summary's *agreement* matters (every
//! party commits it into the round's transcript), not its value.
//!
//! # Rounds
//! At the last block of chain epoch `e`, after the set of `e + 1` is recorded (and after a
//! round of epoch `e` is closed, below): if the set's members differ from the current
//! generation's participants, round `r = e + 1` opens, `val/rs/<r u64 be>` -> [`ReshareRound`],
//! with dealers = the current generation's participants, players = the set's members,
//! previous = the current generation's `Output`; `val/ropen` -> `r`. Round numbers are chain
//! epochs, so they strictly increase and never repeat, failed rounds included. A chain without
//! a genesis polynomial opens no round.
//!
//! The round's `feldman_desmedt::Info` is rebuilt by anyone with [`round_info`]:
//! namespace = the consensus namespace of `val/g` followed by [`RESHARE_NAMESPACE_SUFFIX`]
//! (fixed for the chain's lifetime, as commonware requires), round = `r`, polynomial mode
//! `Mode::NonZeroCounter` (the genesis dealing's, the only BETA-stable one), `Reveal::V1`,
//! fault model `N3f1`.
//!
//! During epoch `e + 1` each dealer posts its encoded `SignedDealerLog` as
//! [`super::ValidatorsMsg::ReshareLog`], stored under `val/rl/<r u64 be><dealer>`. At the last
//! block of epoch `e + 1` the round closes: `observe` over every stored log. On success,
//! generation `g + 1` is recorded (first epoch `e + 2`, participants = players, polynomial =
//! the output's public sharing) and becomes current; otherwise the round is marked failed and
//! generation `g` stays. Either way the same boundary may then open round `e + 2`.
//!
//! `observe` needs an rng for batch-verification weights. The chain has no secret randomness,
//! so it gets ChaCha20 seeded with blake3 of [`OBSERVE_RNG_DOMAIN`], the round and every
//! stored log (in dealer order): the weights are fixed only after the last log is on chain
//! and depend on each log's bytes, so a dealer cannot choose reveals whose errors cancel
//! under weights it knows in advance (Fiat-Shamir style).
//!
//! # Invariants
//! - every recorded generation has the group identity (constant term) of generation 0;
//! - generation `g + 1` was produced by a round whose dealers were generation `g`'s
//!   participants, and its participants are that round's players;
//! - a round holds at most one log per dealer, each signed by a dealer of the round and
//!   submitted by that dealer; at most one round is open (`val/ropen`).

use std::num::NonZeroU32;

use borsh::{BorshDeserialize, BorshSerialize};
use commonware_codec::{Decode as _, DecodeExt as _, Encode as _};
use commonware_cryptography::bls12381::dkg::feldman_desmedt::{
    self, Failure, Info, Logs, Output, Reveal, SignedDealerLog,
};
use commonware_cryptography::bls12381::primitives::{
    sharing::{Mode, ModeVersion, Sharing},
    variant::MinSig,
};
use commonware_cryptography::ed25519;
use commonware_utils::{N3f1, ordered::Set};
use rand_chacha::ChaCha20Rng;
use rand_chacha::rand_core::SeedableRng as _;
use serde::Serialize;

use super::{NAME, ValidatorError, genesis_consensus};
use crate::address::Address;
use crate::error::{StateError, TxError};
use crate::event::Event;
use crate::module::ExecContext;
use crate::state::{self, StateReader};

/// Prefix of recorded generations (`val/gen/<g u64 be>`).
pub const GENERATION_PREFIX: &[u8] = b"val/gen/";
/// Key of the current generation number (`u64` big-endian; absent: generation 0).
pub const CURRENT_GENERATION_KEY: &[u8] = b"val/gcur";
/// Prefix of reshare rounds (`val/rs/<r u64 be>`).
pub const ROUND_PREFIX: &[u8] = b"val/rs/";
/// Prefix of posted dealer logs (`val/rl/<r u64 be><dealer 32 bytes>`).
pub const LOG_PREFIX: &[u8] = b"val/rl/";
/// Key of the open round's number (`u64` big-endian; absent: none open).
pub const OPEN_ROUND_KEY: &[u8] = b"val/ropen";
/// Appended to the consensus namespace to form the reshare namespace.
pub const RESHARE_NAMESPACE_SUFFIX: &[u8] = b"_RESHARE";
/// Domain of the summary of generation 0's rebuilt `Output`.
pub const GENESIS_OUTPUT_DOMAIN: &[u8] = b"poi/validators/genesis-output/v1";
/// Domain of the seed of `observe`'s rng.
pub const OBSERVE_RNG_DOMAIN: &[u8] = b"poi/validators/reshare-observe/v1";
/// Largest participant set decoded (bounds decoding work; the governable `set_size_max` is at
/// most this).
pub const PARTICIPANTS_MAX: u32 = 1_024;

/// The round information type of a reshare.
pub type ReshareInfo = Info<MinSig, ed25519::PublicKey>;
/// The public output of a round (and of a generation).
pub type ReshareOutput = Output<MinSig, ed25519::PublicKey>;
/// The logs of a round, as fed to `observe` or `Player::finalize`.
pub type ReshareLogs = Logs<MinSig, ed25519::PublicKey, N3f1>;
/// A dealer's signed log, as posted in [`super::ValidatorsMsg::ReshareLog`].
pub type ReshareSignedLog = SignedDealerLog<MinSig, ed25519::PublicKey>;

/// One signer generation: a sharing of the group key among a participant set.
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize)]
pub struct Generation {
    /// The generation number (the consensus engine epoch).
    pub generation: u64,
    /// The first chain epoch it signs.
    pub first_epoch: u64,
    /// Height it was recorded at (0 for generation 0): the last block the previous
    /// generation's engine finalizes, and the floor (genesis) of this generation's engine.
    pub recorded_at: u64,
    /// The chain view of the block at `recorded_at` (0 for generation 0). This generation's
    /// engine counts views from 0 again at that block, and a node writes chain view
    /// `view_offset + engine view` into the blocks it proposes, so chain views keep increasing
    /// across generations (PoI targets and liveness count in chain views).
    pub view_offset: u64,
    /// The reshare round that produced it (`None` for generation 0).
    pub round: Option<u64>,
    /// Participants' ed25519 keys, ascending by bytes (commonware's `ordered::Set` order).
    pub participants: Vec<Address>,
    /// Commonware codec of the public `Sharing<MinSig>` (empty: none, no beacon at genesis).
    #[serde(serialize_with = "super::hex_vec")]
    pub polynomial: Vec<u8>,
    /// Commonware codec of the `feldman_desmedt::Output` (empty when `polynomial` is).
    #[serde(serialize_with = "super::hex_vec")]
    pub output: Vec<u8>,
}

/// How a round ended (or that it has not).
#[derive(Debug, Clone, Copy, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize)]
pub enum RoundStatus {
    /// Accepting logs until the last block of its epoch.
    Open,
    /// Produced this generation.
    Succeeded {
        /// The generation recorded.
        generation: u64,
    },
    /// Too few usable logs: the generation stayed.
    Failed {
        /// Usable logs required.
        required: u32,
        /// Usable logs found.
        found: u32,
    },
}

/// One reshare round, under `val/rs/<round>`.
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize)]
pub struct ReshareRound {
    /// The round number (`e + 1` for a round opened at the end of chain epoch `e`).
    pub round: u64,
    /// The chain epoch logs are accepted in; the round closes at its last block.
    pub epoch: u64,
    /// Height it was opened at.
    pub opened_at: u64,
    /// The generation whose participants deal (its `Output` is the round's `previous`).
    pub generation: u64,
    /// Dealers: that generation's participants, ascending.
    pub dealers: Vec<Address>,
    /// Players: the members of the set of `epoch`, ascending.
    pub players: Vec<Address>,
    /// Logs posted so far.
    pub logs: u32,
    /// Open, or how it ended.
    pub status: RoundStatus,
}

/// Where the signers stand, for the node and `GET` endpoints.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReshareSummary {
    /// The current generation (the engine epoch to run).
    pub generation: u64,
    /// The first chain epoch it signs.
    pub first_epoch: u64,
    /// Its participants, ascending.
    pub participants: Vec<Address>,
    /// The open reshare round, if any.
    pub open_round: Option<u64>,
    /// Logs posted in the open round (0 when none is open).
    pub open_round_logs: u32,
}

/// The current generation and open round in one read (`None` on a chain without `val/g`).
pub fn summary(state: &dyn StateReader) -> Result<Option<ReshareSummary>, StateError> {
    let Some(current) = generation_light(state, current_generation_number(state)?)? else {
        return Ok(None);
    };
    let open = open_round(state)?;
    Ok(Some(ReshareSummary {
        generation: current.generation,
        first_epoch: current.first_epoch,
        participants: current.participants,
        open_round: open.as_ref().map(|r| r.round),
        open_round_logs: open.map_or(0, |r| r.logs),
    }))
}

/// The state key of generation `g`.
pub fn generation_key(g: u64) -> Vec<u8> {
    [GENERATION_PREFIX, &g.to_be_bytes()].concat()
}

/// The state key of round `r`.
pub fn round_key(r: u64) -> Vec<u8> {
    [ROUND_PREFIX, &r.to_be_bytes()].concat()
}

/// The state key of `dealer`'s log in round `r`.
pub fn log_key(r: u64, dealer: &Address) -> Vec<u8> {
    [LOG_PREFIX, &r.to_be_bytes(), dealer.as_bytes()].concat()
}

fn read_u64(state: &dyn StateReader, key: &[u8]) -> Result<Option<u64>, StateError> {
    match state.get(key)? {
        None => Ok(None),
        Some(v) => v
            .as_slice()
            .try_into()
            .map(|b| Some(u64::from_be_bytes(b)))
            .map_err(|_| StateError(format!("bad u64 under {}", hex::encode(key)))),
    }
}

/// The current generation's number (0 until a round succeeds).
pub fn current_generation_number(state: &dyn StateReader) -> Result<u64, StateError> {
    Ok(read_u64(state, CURRENT_GENERATION_KEY)?.unwrap_or(0))
}

/// Generation `g`, if known (generation 0 is read from `val/g`; `None` on a chain without it).
pub fn generation(state: &dyn StateReader, g: u64) -> Result<Option<Generation>, StateError> {
    let Some(mut record) = generation_light(state, g)? else {
        return Ok(None);
    };
    if g == 0 && record.output.is_empty() && !record.polynomial.is_empty() {
        let namespace = genesis_consensus(state)?.map_or_else(Vec::new, |g| g.namespace);
        match genesis_output(&record.participants, &record.polynomial, &namespace) {
            Ok(output) => record.output = output.encode().to_vec(),
            // Not a sharing among the participants (genesis validation refuses that).
            Err(_) => record.polynomial = Vec::new(),
        }
    }
    Ok(Some(record))
}

/// Generation `g` without rebuilding generation 0's `Output` (left empty; its polynomial is
/// `val/g`'s, unchecked): what evidence and liveness need, without decoding curve points.
pub(crate) fn generation_light(
    state: &dyn StateReader,
    g: u64,
) -> Result<Option<Generation>, StateError> {
    if let Some(record) = state::read_borsh(state, &generation_key(g))? {
        return Ok(Some(record));
    }
    if g != 0 {
        return Ok(None);
    }
    Ok(genesis_consensus(state)?.map(|genesis| Generation {
        generation: 0,
        first_epoch: 0,
        recorded_at: 0,
        view_offset: 0,
        round: None,
        participants: genesis.participants,
        polynomial: genesis.polynomial,
        output: Vec::new(),
    }))
}

/// The current generation (what the engine runs now), if the chain has one.
pub fn current_generation(state: &dyn StateReader) -> Result<Option<Generation>, StateError> {
    generation(state, current_generation_number(state)?)
}

/// Round `r`, if it was ever opened.
pub fn round(state: &dyn StateReader, r: u64) -> Result<Option<ReshareRound>, StateError> {
    state::read_borsh(state, &round_key(r))
}

/// The open round, if any.
pub fn open_round(state: &dyn StateReader) -> Result<Option<ReshareRound>, StateError> {
    match read_u64(state, OPEN_ROUND_KEY)? {
        None => Ok(None),
        Some(r) => round(state, r),
    }
}

/// The logs posted in round `r`, by dealer (ascending), as posted (encoded `SignedDealerLog`).
pub fn round_logs(state: &dyn StateReader, r: u64) -> Result<Vec<(Address, Vec<u8>)>, StateError> {
    let prefix = [LOG_PREFIX, &r.to_be_bytes()].concat();
    let mut out = Vec::new();
    let mut failure = None;
    state.scan_prefix(&prefix, &mut |key, value| {
        match <[u8; 32]>::try_from(&key[prefix.len()..]) {
            Ok(dealer) => out.push((Address(dealer), value.to_vec())),
            Err(_) => failure = Some(StateError(format!("bad key {}", hex::encode(key)))),
        }
        failure.is_none()
    })?;
    failure.map_or(Ok(out), Err)
}

fn bound(n: usize) -> NonZeroU32 {
    let n = u32::try_from(n)
        .unwrap_or(u32::MAX)
        .clamp(1, PARTICIPANTS_MAX);
    NonZeroU32::new(n).expect("clamped to at least 1")
}

fn unavailable(why: impl std::fmt::Display) -> ValidatorError {
    ValidatorError::ReshareUnavailable(why.to_string())
}

fn keys(addresses: &[Address]) -> Result<Set<ed25519::PublicKey>, ValidatorError> {
    let keys = addresses
        .iter()
        .map(|a| ed25519::PublicKey::decode(a.as_bytes().to_vec()))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| unavailable(format!("not an ed25519 key: {e}")))?;
    Set::try_from(keys).map_err(unavailable)
}

/// Decodes a public sharing among `n` participants (the bytes of [`Generation::polynomial`]).
pub fn decode_sharing(bytes: &[u8], n: usize) -> Result<Sharing<MinSig>, ValidatorError> {
    Sharing::<MinSig>::decode_cfg(bytes.to_vec(), &(bound(n), ModeVersion::v0()))
        .map_err(|e| unavailable(format!("polynomial: {e}")))
}

/// The group identity (compressed G2) of a generation's polynomial.
pub fn identity(generation: &Generation) -> Result<[u8; 96], ValidatorError> {
    let sharing = decode_sharing(&generation.polynomial, generation.participants.len())?;
    sharing
        .public()
        .encode()
        .as_ref()
        .try_into()
        .map_err(|_| unavailable("identity is not 96 bytes"))
}

/// The rebuilt `Output` of generation 0 (see the module doc).
fn genesis_output(
    participants: &[Address],
    polynomial: &[u8],
    namespace: &[u8],
) -> Result<ReshareOutput, ValidatorError> {
    let players = keys(participants)?;
    let sharing = decode_sharing(polynomial, participants.len())?;
    let mut h = blake3::Hasher::new();
    h.update(GENESIS_OUTPUT_DOMAIN);
    h.update(&(namespace.len() as u64).to_be_bytes());
    h.update(namespace);
    h.update(polynomial);
    // Output's codec: summary, public sharing, dealers, players, revealed.
    let mut bytes = h.finalize().as_bytes().to_vec();
    bytes.extend_from_slice(&sharing.encode());
    bytes.extend_from_slice(&players.encode());
    bytes.extend_from_slice(&players.encode());
    bytes.extend_from_slice(&Set::<ed25519::PublicKey>::default().encode());
    decode_output(&bytes, participants.len())
}

/// Decodes an encoded `Output` among at most `n` participants.
pub fn decode_output(bytes: &[u8], n: usize) -> Result<ReshareOutput, ValidatorError> {
    ReshareOutput::decode_cfg(bytes.to_vec(), &(bound(n), ModeVersion::v0()))
        .map_err(|e| unavailable(format!("output: {e}")))
}

/// The reshare namespace: the consensus namespace of `val/g` then
/// [`RESHARE_NAMESPACE_SUFFIX`].
pub fn reshare_namespace(state: &dyn StateReader) -> Result<Vec<u8>, TxError> {
    let genesis = genesis_consensus(state)?.ok_or_else(|| unavailable("no genesis consensus"))?;
    Ok([genesis.namespace.as_slice(), RESHARE_NAMESPACE_SUFFIX].concat())
}

fn build_info(
    namespace: &[u8],
    r: u64,
    previous: &Generation,
    players: &[Address],
) -> Result<ReshareInfo, ValidatorError> {
    if previous.output.is_empty() {
        return Err(unavailable("the generation has no polynomial"));
    }
    let n = previous.participants.len().max(players.len());
    let output = decode_output(&previous.output, n)?;
    ReshareInfo::new::<N3f1>(
        namespace,
        r,
        Some(output),
        Mode::NonZeroCounter,
        Reveal::V1,
        keys(&previous.participants)?,
        keys(players)?,
    )
    .map_err(|e| unavailable(format!("round info: {e}")))
}

/// The `feldman_desmedt::Info` of round `r`, rebuilt from chain state: what dealers pass to
/// `Dealer::start`, players to `Player::new`, and the chain to `SignedDealerLog::check`.
pub fn round_info(state: &dyn StateReader, r: u64) -> Result<ReshareInfo, TxError> {
    let record = round(state, r)?.ok_or(ValidatorError::UnknownReshareRound(r))?;
    let previous = generation(state, record.generation)?
        .ok_or_else(|| unavailable(format!("generation {} unknown", record.generation)))?;
    Ok(build_info(
        &reshare_namespace(state)?,
        r,
        &previous,
        &record.players,
    )?)
}

/// The checked logs of round `r`, exactly as the chain feeds them to `observe` (a player
/// passes these to `Player::finalize` to get its share).
pub fn round_checked_logs(state: &dyn StateReader, r: u64) -> Result<ReshareLogs, TxError> {
    let info = round_info(state, r)?;
    let record = round(state, r)?.ok_or(ValidatorError::UnknownReshareRound(r))?;
    let mut logs = ReshareLogs::new(info.clone());
    for (dealer, bytes) in round_logs(state, r)? {
        let signed = decode_log(&bytes, &record)?;
        let (key, log) = signed
            .check(&info)
            .ok_or(ValidatorError::InvalidReshareLog)?;
        if key.as_ref() != dealer.as_bytes().as_slice() {
            return Err(StateError(format!(
                "round {r}: log of {dealer} stored under another key"
            ))
            .into());
        }
        logs.record(key, log);
    }
    Ok(logs)
}

fn decode_log(bytes: &[u8], record: &ReshareRound) -> Result<ReshareSignedLog, ValidatorError> {
    let n = bound(record.players.len().max(record.dealers.len()));
    ReshareSignedLog::decode_cfg(bytes.to_vec(), &n)
        .map_err(|e| ValidatorError::MalformedReshareLog(e.to_string()))
}

/// Handles [`super::ValidatorsMsg::ReshareLog`]: check and store a dealer's signed log.
pub(crate) fn submit(
    ctx: &mut ExecContext<'_, '_>,
    signer: Address,
    r: u64,
    bytes: &[u8],
) -> Result<(), TxError> {
    let mut record = round(ctx.state, r)?.ok_or(ValidatorError::UnknownReshareRound(r))?;
    if record.status != RoundStatus::Open {
        return Err(ValidatorError::ReshareRoundClosed(r).into());
    }
    let signed = decode_log(bytes, &record)?;
    // The codec writes the dealer's key first; the cheap checks run on it, and the signature
    // check below confirms it (`check` returns the same field).
    let dealer = Address(
        bytes
            .get(..32)
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| ValidatorError::MalformedReshareLog("no dealer".into()))?,
    );
    if !record.dealers.contains(&dealer) {
        return Err(ValidatorError::NotReshareDealer(dealer).into());
    }
    if dealer != signer {
        return Err(ValidatorError::ReshareLogNotOwn { dealer, signer }.into());
    }
    let key = log_key(r, &dealer);
    if ctx.state.get(&key)?.is_some() {
        return Err(ValidatorError::DuplicateReshareLog { round: r, dealer }.into());
    }
    let info = round_info(ctx.state, r)?;
    let (checked, _) = signed
        .check(&info)
        .ok_or(ValidatorError::InvalidReshareLog)?;
    if checked.as_ref() != dealer.as_bytes().as_slice() {
        return Err(ValidatorError::InvalidReshareLog.into());
    }
    ctx.state.put(key, bytes.to_vec());
    record.logs = record.logs.saturating_add(1);
    ctx.state.put_borsh(round_key(r), &record);
    ctx.emit(
        Event::new(NAME, "reshare_log")
            .with("round", r)
            .with("dealer", dealer),
    );
    Ok(())
}

/// The seed of `observe`'s rng for round `r` over `logs` (see the module doc).
pub fn observe_seed(r: u64, logs: &[(Address, Vec<u8>)]) -> [u8; 32] {
    let mut h = blake3::Hasher::new();
    h.update(OBSERVE_RNG_DOMAIN);
    h.update(&r.to_be_bytes());
    for (dealer, bytes) in logs {
        h.update(dealer.as_bytes());
        h.update(&(bytes.len() as u64).to_be_bytes());
        h.update(bytes);
    }
    *h.finalize().as_bytes()
}

/// The epoch-boundary hook, run after the set of `epoch + 1` is recorded: closes the round of
/// `epoch` (if open), then opens round `epoch + 1` if the set differs from the signers.
pub(crate) fn end_block(ctx: &mut ExecContext<'_, '_>, epoch: u64) -> Result<(), TxError> {
    let next = epoch.checked_add(1).ok_or(TxError::Overflow("epoch"))?;
    if let Some(open) = open_round(ctx.state)?.filter(|open| open.epoch <= epoch) {
        close(ctx, open, next)?;
    }
    if open_round(ctx.state)?.is_some() {
        return Ok(());
    }
    let Some(current) = current_generation(ctx.state)? else {
        return Ok(());
    };
    if current.output.is_empty() {
        // No polynomial (a genesis without a beacon dealing): nothing to reshare.
        return Ok(());
    }
    let Some(set) = super::active_set(ctx.state, next)? else {
        return Ok(());
    };
    let mut players: Vec<Address> = set.members.iter().map(|m| m.address).collect();
    players.sort();
    if players == current.participants {
        return Ok(());
    }
    let namespace = reshare_namespace(ctx.state)?;
    if let Err(e) = build_info(&namespace, next, &current, &players) {
        ctx.emit(
            Event::new(NAME, "reshare_not_opened")
                .with("round", next)
                .with("reason", e.to_string()),
        );
        return Ok(());
    }
    let record = ReshareRound {
        round: next,
        epoch: next,
        opened_at: ctx.block.height,
        generation: current.generation,
        dealers: current.participants,
        players,
        logs: 0,
        status: RoundStatus::Open,
    };
    ctx.state.put_borsh(round_key(next), &record);
    ctx.state
        .put(OPEN_ROUND_KEY.to_vec(), next.to_be_bytes().to_vec());
    ctx.emit(
        Event::new(NAME, "reshare_open")
            .with("round", next)
            .with("generation", record.generation)
            .with("dealers", record.dealers.len() as u64)
            .with("players", record.players.len() as u64),
    );
    Ok(())
}

/// Closes `open` at the end of its epoch; a new generation signs from chain epoch `first`.
fn close(ctx: &mut ExecContext<'_, '_>, mut open: ReshareRound, first: u64) -> Result<(), TxError> {
    let r = open.round;
    ctx.state.delete(OPEN_ROUND_KEY.to_vec());
    let outcome = observe_round(ctx.state, r)?;
    let previous = generation(ctx.state, open.generation)?
        .ok_or_else(|| unavailable(format!("generation {} unknown", open.generation)))?;
    match outcome {
        Ok(output) => {
            let polynomial = output.public().encode().to_vec();
            let g = open
                .generation
                .checked_add(1)
                .ok_or(TxError::Overflow("generation"))?;
            let record = Generation {
                generation: g,
                first_epoch: first,
                recorded_at: ctx.block.height,
                view_offset: ctx.block.view,
                round: Some(r),
                participants: open.players.clone(),
                polynomial,
                output: output.encode().to_vec(),
            };
            // Desmedt97 keeps the constant term; commonware asserts it too. Checked again
            // here so that a generation with another identity is never recorded.
            if identity(&record)? != identity(&previous)? {
                return Err(
                    StateError(format!("reshare round {r} changed the group identity")).into(),
                );
            }
            ctx.state.put_borsh(generation_key(g), &record);
            ctx.state
                .put(CURRENT_GENERATION_KEY.to_vec(), g.to_be_bytes().to_vec());
            open.status = RoundStatus::Succeeded { generation: g };
            ctx.emit(
                Event::new(NAME, "generation")
                    .with("generation", g)
                    .with("round", r)
                    .with("first_epoch", first)
                    .with("participants", record.participants.len() as u64),
            );
        }
        Err((required, found)) => {
            open.status = RoundStatus::Failed { required, found };
            ctx.emit(
                Event::new(NAME, "reshare_failed")
                    .with("round", r)
                    .with("required", u64::from(required))
                    .with("found", u64::from(found)),
            );
        }
    }
    ctx.state.put_borsh(round_key(r), &open);
    Ok(())
}

/// Runs `observe` over round `r`'s stored logs: the output, or (required, found) usable logs.
pub fn observe_round(
    state: &dyn StateReader,
    r: u64,
) -> Result<Result<ReshareOutput, (u32, u32)>, TxError> {
    let logs = round_checked_logs(state, r)?;
    let mut rng = ChaCha20Rng::from_seed(observe_seed(r, &round_logs(state, r)?));
    match feldman_desmedt::observe::<MinSig, ed25519::PublicKey, N3f1>(
        &mut rng,
        logs,
        &commonware_parallel::Sequential,
    ) {
        Ok(output) => Ok(Ok(output)),
        Err(Failure::InsufficientLogs {
            required, found, ..
        }) => Ok(Err((required, found))),
    }
}

/// The module audit of generations: contiguous numbers up to the current one, each with the
/// identity of generation 0, participants sorted and unique, produced by a succeeded round.
pub(crate) fn check_invariants(state: &dyn StateReader) -> Result<(), String> {
    let s = |e: StateError| e.to_string();
    let current = current_generation_number(state).map_err(s)?;
    let Some(zero) = generation(state, 0).map_err(s)? else {
        return if current == 0 {
            Ok(())
        } else {
            Err("a current generation without generation 0".into())
        };
    };
    let base = if zero.polynomial.is_empty() {
        None
    } else {
        Some(identity(&zero).map_err(|e| e.to_string())?)
    };
    for g in 1..=current {
        let record = generation(state, g)
            .map_err(s)?
            .ok_or_else(|| format!("generation {g} missing below current {current}"))?;
        if record.generation != g
            || !record.participants.windows(2).all(|w| w[0] < w[1])
            || Some(identity(&record).map_err(|e| e.to_string())?) != base
        {
            return Err(format!(
                "generation {g}: wrong number, unsorted participants or another identity"
            ));
        }
        let r = record
            .round
            .ok_or(format!("generation {g} without a round"))?;
        let produced = round(state, r).map_err(s)?.map(|x| x.status);
        if produced != Some(RoundStatus::Succeeded { generation: g }) {
            return Err(format!("generation {g}: round {r} did not produce it"));
        }
    }
    if generation(state, current + 1).map_err(s)?.is_some() {
        return Err(format!("a generation beyond the current {current}"));
    }
    if let Some(r) = read_u64(state, OPEN_ROUND_KEY).map_err(s)? {
        let open = round(state, r).map_err(s)?;
        if open.map(|o| o.status) != Some(RoundStatus::Open) {
            return Err(format!("open round {r} is not open"));
        }
    }
    Ok(())
}
