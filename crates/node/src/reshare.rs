//! The node's half of resharing the consensus group key: a sans-IO state machine,
//! [`Resharer`], that plays this validator's dealer and player roles in the chain's reshare
//! rounds (`poi_core::validators::reshare`).
//!
//! Stability: ALPHA. The wire and journal formats below are versioned (version byte 1).
//!
//! # What it owns
//! - this validator's ed25519 signer (from its 32-byte seed) and its newest share of the group
//!   key with the generation it belongs to;
//! - the state of at most one reshare round: the commonware `feldman_desmedt::Dealer` (while
//!   acks are collected), the dealings it sends and who acked them, the signed log once
//!   finalized; the `feldman_desmedt::Player` and the acks it sent;
//! - the player *journal*: every dealing this player accepted in the round (dealer, public
//!   message, private message), which the node persists (see [`ReshareOutput::Persist`]).
//!
//! It does no I/O, keeps no clock and spawns nothing: the node calls [`Resharer::on_commit`]
//! after each committed block, [`Resharer::on_message`] for each message of the DKG p2p
//! channel and [`Resharer::on_tick`] about once a second, and carries out the returned
//! [`ReshareOutput`]s **in order**.
//!
//! # Protocol flow (round `r`, opened at the last block of chain epoch `r - 1`)
//! 1. The first commit that shows round `r` open: a *player* (its key is among the round's
//!    players) builds its `Player` (or resumes it from the journal, `Player::resume`, checked
//!    against the logs already on chain); a *dealer* (among the round's dealers, holding the
//!    share of the round's generation) runs `Dealer::start` with an rng derived from
//!    (seed, round), so a restarted dealer regenerates the very same dealing, and sends each
//!    player its dealing (delivered in-process when the dealer is a player too).
//! 2. A player checks a dealing from a dealer of the round (`dealer_message`), appends it to
//!    the journal, emits `Persist` and *then* `Send`s the ack back. A re-sent dealing gets
//!    the same ack again.
//! 3. A dealer records valid acks. Once every player acked, or at the first commit of height
//!    `opened_at + max(2, epoch_blocks / 2)`, it finalizes and emits `PostLog` once. A commit
//!    that shows the log on chain confirms it; if none does by the round's last quarter
//!    (height `close - epoch_blocks / 4`), it posts the same log again every
//!    `max(1, epoch_blocks / 8)` blocks (the chain refuses a second log of a dealer harmlessly).
//!    Until it finalizes, [`Resharer::on_tick`] re-sends dealings to players that have not
//!    acked (p2p drops messages to peers it is not connected to yet).
//! 4. The commit that shows the round closed: `Succeeded { generation }` and a player: it runs
//!    `Player::finalize` over `round_checked_logs` (exactly the logs the chain observed),
//!    checks that the output's polynomial is the recorded generation's and that the share is a
//!    point of it, and emits `Share`, then an emptied journal (`Persist`). `Failed`: the round
//!    state is dropped (the journal too). The same commit may open the next round, which is
//!    then joined at once. A node restarted after the close with the round's journal (and
//!    without the new share) computes the share at its first commit.
//!
//! # What the node must do
//! - at start: `Resharer::new(seed, Some((generation, share bytes)), &journal file or [])`, the
//!   share being the newest one persisted (a `Share` output, or the genesis share as
//!   generation 0); then `on_commit` with the committed state (never a speculative block);
//! - carry out outputs in order: `Persist` (durable, atomic, private file) before any later
//!   output; `Send` on the DKG channel (best effort: ticks and re-sent dealings heal losses);
//!   `PostLog` as a `ValidatorsMsg::ReshareLog` transaction signed with the validator's own
//!   account key (the chain refuses a log submitted by anyone but its dealer; a 4-player log
//!   is about 1 KB, so its fee is a size-based one); `Share`: persist share and polynomial,
//!   then run the engine of that generation from its first epoch (`Generation::first_epoch`).
//!
//! Randomness: the dealer's and the finalizer's rngs are blake3's extendable output under a
//! derive-key context, keyed by (seed, purpose, round): deterministic, so a restart
//! regenerates the same dealing (a different one would be an equivocation the players'
//! earlier acks do not cover), and secret, since the seed is.
//!
//! # Invariants
//! - an ack is only ever emitted after the `Persist` of a journal holding its dealing (in the
//!   same output list, earlier): a player that acks a dealing and then loses it could not
//!   compute its share, so the node must write the journal durably before it sends;
//! - a `Share` is only emitted when `BeaconKey::from_bytes(polynomial, share)` succeeds and
//!   the polynomial is the one the chain recorded for that generation;
//! - a dealer never posts a log other than the one `Dealer::finalize` produced for the
//!   deterministic dealing of (seed, round);
//! - peer input never panics: malformed bytes, unknown rounds, senders of the wrong role and
//!   invalid dealings or acks are logged and ignored, with no state change.
//!
//! # Wire format (DKG channel; the sender is the authenticated p2p peer)
//! ```text
//! dealing: [version 1 = 0x01][kind = 0x01][round u64 BE][private msg, 32 bytes][public msg]
//! ack:     [version 1 = 0x01][kind = 0x02][round u64 BE][PlayerAck, 64 bytes]
//! ```
//! The private message is commonware's `DealerPrivMsg` codec (a non-zero scalar), the public
//! message commonware's `DealerPubMsg` codec (a commitment polynomial, decoded with the round's
//! participant count as its bound, no trailing bytes), the ack commonware's `PlayerAck` (an
//! ed25519 signature). Messages longer than [`DKG_MESSAGE_BYTES_MAX`] are refused unread.
//! The channel must be private (commonware's encrypted p2p is): a dealing holds a secret.
//!
//! # Journal format ([`ReshareOutput::Persist`], [`Resharer::journal_bytes`])
//! ```text
//! [version 1 = 0x01][round u64 BE][count u32 BE] then count times:
//!     [dealer ed25519 key, 32 bytes][public msg length u32 BE][public msg][private msg, 32]
//! ```
//! Round 0 with no entries is the empty journal. It holds private shares: the node keeps it
//! in a file readable only by itself.

use std::collections::{BTreeMap, BTreeSet};
use std::convert::Infallible;
use std::num::NonZeroU32;

use commonware_codec::{Decode as _, DecodeExt as _, Encode as _, FixedSize as _};
use commonware_cryptography::bls12381::dkg::feldman_desmedt::{
    Dealer, DealerLog, DealerPrivMsg, DealerPubMsg, Player, PlayerAck,
};
use commonware_cryptography::bls12381::primitives::{group::Share, variant::MinSig};
use commonware_cryptography::{Signer as _, ed25519};
use commonware_parallel::Sequential;
use commonware_utils::N3f1;
use poi_core::Address;
use poi_core::params::{PARAMS_KEY, Params};
use poi_core::state::{self, StateReader};
use poi_core::validators::reshare::{
    self as chain, PARTICIPANTS_MAX, ReshareInfo, ReshareRound, ReshareSignedLog, RoundStatus,
};
use tracing::{debug, error, info, warn};

use crate::consensus::BeaconKey;

/// Version byte of DKG-channel messages and of the journal.
pub const RESHARE_FORMAT_VERSION: u8 = 1;
/// Largest DKG-channel message accepted (a dealing for [`PARTICIPANTS_MAX`] players is at most
/// 98 KB); the p2p channel's message limit should be at least this.
pub const DKG_MESSAGE_BYTES_MAX: usize = 128 * 1024;

const KIND_DEALING: u8 = 1;
const KIND_ACK: u8 = 2;
/// Version, kind, round.
const HEADER_BYTES: usize = 1 + 1 + 8;
/// Derive-key context of the dealer's and finalizer's rngs.
const RNG_CONTEXT: &str = "poi node reshare rng v1";

type Signer = ed25519::PrivateKey;
type Key = ed25519::PublicKey;

/// What the node must do, in the order returned.
#[derive(Clone, PartialEq, Eq)]
pub enum ReshareOutput {
    /// Write `journal` durably (write a temporary file, fsync, rename over the old one) before
    /// carrying out any later output of the same list. Secret: the file must be private.
    Persist {
        /// The whole journal (replaces the previous one); pass it back to [`Resharer::new`].
        journal: Vec<u8>,
    },
    /// Send `bytes` to the peer with ed25519 key `to` on the DKG channel.
    Send {
        /// The recipient's ed25519 public key.
        to: [u8; 32],
        /// The message (see the module doc's wire format).
        bytes: Vec<u8>,
    },
    /// Submit a signed `ValidatorsMsg::ReshareLog { round, log }` transaction from this
    /// validator's account (the chain requires the dealer itself to submit its log).
    PostLog {
        /// The reshare round.
        round: u64,
        /// Commonware codec of the `SignedDealerLog`.
        log: Vec<u8>,
    },
    /// This validator's share of `generation`: persist it before using it (then start the
    /// engine of that generation from its first epoch). `BeaconKey::from_bytes(&polynomial,
    /// &share)` succeeds on it.
    Share {
        /// The generation the share belongs to.
        generation: u64,
        /// The generation's public polynomial (commonware codec of `Sharing<MinSig>`).
        polynomial: Vec<u8>,
        /// The share (commonware codec of `Share`; secret).
        share: Vec<u8>,
    },
}

impl std::fmt::Debug for ReshareOutput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Persist { journal } => f
                .debug_struct("Persist")
                .field("bytes", &journal.len())
                .finish(),
            Self::Send { to, bytes } => f
                .debug_struct("Send")
                .field("to", &hex::encode(to))
                .field("bytes", &bytes.len())
                .finish(),
            Self::PostLog { round, log } => f
                .debug_struct("PostLog")
                .field("round", round)
                .field("bytes", &log.len())
                .finish(),
            Self::Share { generation, .. } => f
                .debug_struct("Share")
                .field("generation", generation)
                .field("share", &"<redacted>")
                .finish(),
        }
    }
}

/// Why [`Resharer::new`] refused its inputs.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ReshareError {
    /// The share bytes are not a commonware `Share`.
    #[error("share: {0}")]
    Share(String),
    /// The journal bytes are not a journal of this format.
    #[error("journal: {0}")]
    Journal(String),
}

/// A deterministic rng: blake3's extendable output keyed by (seed, purpose, round).
struct SeededRng(blake3::OutputReader);

impl SeededRng {
    fn new(seed: &[u8; 32], purpose: &[u8], round: u64) -> Self {
        let mut h = blake3::Hasher::new_derive_key(RNG_CONTEXT);
        h.update(seed);
        h.update(&(purpose.len() as u64).to_be_bytes());
        h.update(purpose);
        h.update(&round.to_be_bytes());
        Self(h.finalize_xof())
    }
}

impl rand_core::TryRng for SeededRng {
    type Error = Infallible;

    fn try_next_u32(&mut self) -> Result<u32, Infallible> {
        let mut b = [0u8; 4];
        self.0.fill(&mut b);
        Ok(u32::from_le_bytes(b))
    }

    fn try_next_u64(&mut self) -> Result<u64, Infallible> {
        let mut b = [0u8; 8];
        self.0.fill(&mut b);
        Ok(u64::from_le_bytes(b))
    }

    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Infallible> {
        self.0.fill(dst);
        Ok(())
    }
}

impl rand_core::TryCryptoRng for SeededRng {}

/// One accepted dealing, as journaled (raw codec bytes).
#[derive(Clone, Debug, PartialEq, Eq)]
struct JournalEntry {
    dealer: [u8; 32],
    pub_msg: Vec<u8>,
    priv_msg: Vec<u8>,
}

/// The player journal of one round (round 0, no entries: empty).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct Journal {
    round: u64,
    dealings: Vec<JournalEntry>,
}

impl Journal {
    fn encode(&self) -> Vec<u8> {
        let mut out = vec![RESHARE_FORMAT_VERSION];
        out.extend_from_slice(&self.round.to_be_bytes());
        out.extend_from_slice(&(self.dealings.len() as u32).to_be_bytes());
        for e in &self.dealings {
            out.extend_from_slice(&e.dealer);
            out.extend_from_slice(&(e.pub_msg.len() as u32).to_be_bytes());
            out.extend_from_slice(&e.pub_msg);
            out.extend_from_slice(&e.priv_msg);
        }
        out
    }

    fn decode(bytes: &[u8]) -> Result<Self, ReshareError> {
        if bytes.is_empty() {
            return Ok(Self::default());
        }
        let bad = |why: &str| ReshareError::Journal(why.to_string());
        let mut r = Reader(bytes);
        if r.take(1).ok_or_else(|| bad("empty"))? != [RESHARE_FORMAT_VERSION] {
            return Err(bad("unknown version"));
        }
        let round = r.u64().ok_or_else(|| bad("truncated round"))?;
        let count = r.u32().ok_or_else(|| bad("truncated count"))?;
        if count > PARTICIPANTS_MAX {
            return Err(bad("too many dealings"));
        }
        let mut dealings = Vec::with_capacity(count as usize);
        for _ in 0..count {
            let dealer = r
                .take(32)
                .and_then(|b| <[u8; 32]>::try_from(b).ok())
                .ok_or_else(|| bad("truncated dealer"))?;
            let len = r.u32().ok_or_else(|| bad("truncated length"))? as usize;
            if len > DKG_MESSAGE_BYTES_MAX {
                return Err(bad("public message too long"));
            }
            let pub_msg = r.take(len).ok_or_else(|| bad("truncated public"))?.to_vec();
            let priv_msg = r
                .take(DealerPrivMsg::SIZE)
                .ok_or_else(|| bad("truncated private"))?
                .to_vec();
            dealings.push(JournalEntry {
                dealer,
                pub_msg,
                priv_msg,
            });
        }
        if !r.0.is_empty() {
            return Err(bad("trailing bytes"));
        }
        Ok(Self { round, dealings })
    }
}

/// A bounds-checked byte cursor.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.0.len() < n {
            return None;
        }
        let (head, tail) = self.0.split_at(n);
        self.0 = tail;
        Some(head)
    }

    fn u32(&mut self) -> Option<u32> {
        self.take(4)
            .and_then(|b| b.try_into().ok())
            .map(u32::from_be_bytes)
    }

    fn u64(&mut self) -> Option<u64> {
        self.take(8)
            .and_then(|b| b.try_into().ok())
            .map(u64::from_be_bytes)
    }
}

/// A decoded DKG-channel message (payloads still in codec bytes).
#[derive(Debug, PartialEq, Eq)]
enum Wire<'a> {
    Dealing {
        round: u64,
        priv_msg: &'a [u8],
        pub_msg: &'a [u8],
    },
    Ack {
        round: u64,
        ack: &'a [u8],
    },
}

fn encode_dealing(round: u64, priv_msg: &DealerPrivMsg, pub_msg: &DealerPubMsg<MinSig>) -> Vec<u8> {
    let mut out = vec![RESHARE_FORMAT_VERSION, KIND_DEALING];
    out.extend_from_slice(&round.to_be_bytes());
    out.extend_from_slice(&priv_msg.encode());
    out.extend_from_slice(&pub_msg.encode());
    out
}

fn encode_ack(round: u64, ack: &PlayerAck<Key>) -> Vec<u8> {
    let mut out = vec![RESHARE_FORMAT_VERSION, KIND_ACK];
    out.extend_from_slice(&round.to_be_bytes());
    out.extend_from_slice(&ack.encode());
    out
}

fn decode_wire(bytes: &[u8]) -> Result<Wire<'_>, &'static str> {
    if bytes.len() > DKG_MESSAGE_BYTES_MAX {
        return Err("too long");
    }
    if bytes.len() < HEADER_BYTES {
        return Err("truncated header");
    }
    let mut r = Reader(bytes);
    let header = r.take(2).ok_or("truncated header")?;
    if header[0] != RESHARE_FORMAT_VERSION {
        return Err("unknown version");
    }
    let round = r.u64().ok_or("truncated round")?;
    match header[1] {
        KIND_DEALING => {
            let priv_msg = r.take(DealerPrivMsg::SIZE).ok_or("truncated dealing")?;
            if r.0.is_empty() {
                return Err("no public message");
            }
            Ok(Wire::Dealing {
                round,
                priv_msg,
                pub_msg: r.0,
            })
        }
        KIND_ACK => {
            if r.0.len() != PlayerAck::<Key>::SIZE {
                return Err("ack of the wrong length");
            }
            Ok(Wire::Ack { round, ack: r.0 })
        }
        _ => Err("unknown kind"),
    }
}

fn key_of(bytes: &[u8; 32]) -> Option<Key> {
    Key::decode(bytes.to_vec()).ok()
}

fn bytes_of(key: &Key) -> [u8; 32] {
    // An ed25519 public key is always 32 bytes.
    <[u8; 32]>::try_from(key.as_ref()).unwrap_or_default()
}

/// The codec bound of a round's messages.
fn bound(record: &ReshareRound) -> NonZeroU32 {
    let n = record.players.len().max(record.dealers.len());
    let n = u32::try_from(n)
        .unwrap_or(u32::MAX)
        .clamp(1, PARTICIPANTS_MAX);
    NonZeroU32::new(n).unwrap_or(NonZeroU32::MIN)
}

/// The dealer side of the open round.
struct DealerSide {
    /// Until finalized.
    dealer: Option<Dealer<MinSig, Signer>>,
    /// The wire dealing for each other player.
    dealings: BTreeMap<[u8; 32], Vec<u8>>,
    /// Players whose valid ack was received (self included).
    acked: BTreeSet<[u8; 32]>,
    /// The finalized signed log.
    log: Option<Vec<u8>>,
    /// Height of the last `PostLog`.
    last_post: Option<u64>,
    /// Our log is on chain.
    confirmed: bool,
}

/// The player side of a round.
struct PlayerSide {
    player: Player<MinSig, Signer>,
    /// The ack sent to each dealer.
    acks: BTreeMap<[u8; 32], PlayerAck<Key>>,
}

/// The state of one round.
struct Round {
    number: u64,
    record: ReshareRound,
    info: ReshareInfo,
    dealers: BTreeSet<[u8; 32]>,
    players: BTreeSet<[u8; 32]>,
    post_at: u64,
    repost_from: u64,
    repost_every: u64,
    dealer: Option<DealerSide>,
    player: Option<PlayerSide>,
}

/// This validator's dealer and player in the chain's reshare rounds; see the module doc.
pub struct Resharer {
    seed: [u8; 32],
    signer: Signer,
    me: [u8; 32],
    share: Option<(u64, Share)>,
    journal: Journal,
    round: Option<Round>,
    /// Highest round finished here (finalized, failed or given up): never rebuilt.
    done: u64,
    /// Height of the last commit seen.
    height: u64,
}

impl std::fmt::Debug for Resharer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Resharer")
            .field("me", &hex::encode(self.me))
            .field("generation", &self.share.as_ref().map(|(g, _)| *g))
            .field("round", &self.round.as_ref().map(|r| r.number))
            .field("journal_round", &self.journal.round)
            .field("journaled", &self.journal.dealings.len())
            .finish()
    }
}

impl Resharer {
    /// A resharer for the validator with ed25519 seed `seed`, holding `current` (its share of
    /// generation `.0`, commonware codec, as `BeaconKey::share_bytes` writes; `None` for a
    /// validator without one, e.g. a newcomer) and the journal it last persisted (`&[]` when
    /// there is none). Nothing happens until the first [`Resharer::on_commit`].
    pub fn new(
        seed: [u8; 32],
        current: Option<(u64, Vec<u8>)>,
        journal: &[u8],
    ) -> Result<Self, ReshareError> {
        let signer =
            Signer::decode(seed.to_vec()).map_err(|e| ReshareError::Share(format!("seed: {e}")))?;
        let me = bytes_of(&signer.public_key());
        let share = match current {
            None => None,
            Some((g, bytes)) => Some((
                g,
                Share::decode(bytes.to_vec()).map_err(|e| ReshareError::Share(e.to_string()))?,
            )),
        };
        Ok(Self {
            seed,
            signer,
            me,
            share,
            journal: Journal::decode(journal)?,
            round: None,
            done: 0,
            height: 0,
        })
    }

    /// This validator's ed25519 public key.
    pub fn public_key(&self) -> [u8; 32] {
        self.me
    }

    /// The generation of the newest share held (`None`: none).
    pub fn generation(&self) -> Option<u64> {
        self.share.as_ref().map(|(g, _)| *g)
    }

    /// The round this resharer takes part in now, if any.
    pub fn round(&self) -> Option<u64> {
        self.round.as_ref().map(|r| r.number)
    }

    /// The journal as last emitted in [`ReshareOutput::Persist`] (what [`Resharer::new`]
    /// takes back).
    pub fn journal_bytes(&self) -> Vec<u8> {
        self.journal.encode()
    }

    /// Call after each committed block, `state` being the committed state at `height`: starts
    /// the dealer and player of a newly open round, posts (or re-posts) the dealer log, and
    /// finishes a round that closed (emitting the new share).
    pub fn on_commit(&mut self, state: &dyn StateReader, height: u64) -> Vec<ReshareOutput> {
        self.height = height;
        let mut out = Vec::new();
        let open = match chain::open_round(state) {
            Ok(open) => open,
            Err(e) => {
                warn!(error = %e, "reshare: cannot read the open round");
                return out;
            }
        };
        let open_number = open.as_ref().map(|o| o.round);
        if self
            .round
            .as_ref()
            .is_some_and(|r| Some(r.number) != open_number)
        {
            self.close(state, &mut out);
        }
        // Restarted after a round closed but before its share was computed: finish it.
        if self.round.is_none()
            && self.journal.round > self.done
            && Some(self.journal.round) != open_number
        {
            match chain::round(state, self.journal.round) {
                Ok(Some(record)) if record.status != RoundStatus::Open => {
                    self.round = self.build(state, record, &mut out);
                    if self.round.is_some() {
                        self.close(state, &mut out);
                    } else {
                        self.done = self.journal.round;
                    }
                }
                Ok(_) => {}
                Err(e) => warn!(error = %e, "reshare: cannot read the journal's round"),
            }
        }
        // Down for a whole round (no journal of it, e.g. restarted after the switch and caught
        // up past it): the share may still come from the dealers' reveals of the dealings this
        // player never received.
        if self.round.is_none()
            && let Some(number) = self.missed_round(state)
        {
            match chain::round(state, number) {
                Ok(Some(record)) if record.status != RoundStatus::Open => {
                    self.round = self.build(state, record, &mut out);
                    if self.round.is_some() {
                        self.close(state, &mut out);
                    }
                    self.done = self.done.max(number);
                }
                Ok(_) => {}
                Err(e) => warn!(error = %e, "reshare: cannot read a missed round"),
            }
        }
        if let Some(record) = open
            && record.round > self.done
            && self.round.is_none()
        {
            let number = record.round;
            self.round = self.build(state, record, &mut out);
            if self.round.is_none() {
                self.done = number;
            }
        }
        self.progress(state, height, &mut out);
        out
    }

    /// A DKG-channel message from peer `from` (its ed25519 key, authenticated by p2p; the
    /// content is not trusted). Ignores (logs) anything malformed, for another round, or
    /// from a peer of the wrong role.
    pub fn on_message(&mut self, from: [u8; 32], bytes: &[u8]) -> Vec<ReshareOutput> {
        let mut out = Vec::new();
        if from == self.me {
            return out;
        }
        let wire = match decode_wire(bytes) {
            Ok(wire) => wire,
            Err(why) => {
                debug!(from = %hex::encode(from), why, "reshare: malformed message");
                return out;
            }
        };
        let Some(round) = self.round.as_mut() else {
            debug!(from = %hex::encode(from), "reshare: message while no round runs");
            return out;
        };
        let Some(from_key) = key_of(&from) else {
            return out;
        };
        match wire {
            Wire::Dealing {
                round: number,
                priv_msg,
                pub_msg,
            } => {
                if number != round.number {
                    debug!(number, "reshare: dealing of another round");
                    return out;
                }
                if !round.dealers.contains(&from) {
                    warn!(from = %hex::encode(from), "reshare: dealing from a non-dealer");
                    return out;
                }
                let Some(side) = round.player.as_mut() else {
                    debug!("reshare: dealing but not a player");
                    return out;
                };
                if let Some(ack) = side.acks.get(&from) {
                    let same = self.journal.dealings.iter().any(|e| {
                        e.dealer == from && e.pub_msg == pub_msg && e.priv_msg == priv_msg
                    });
                    if same {
                        // A re-send: the dealer missed our ack.
                        out.push(ReshareOutput::Send {
                            to: from,
                            bytes: encode_ack(number, ack),
                        });
                    } else {
                        warn!(from = %hex::encode(from), "reshare: another dealing from a dealer already acked");
                    }
                    return out;
                }
                let Ok(priv_decoded) = DealerPrivMsg::decode(priv_msg.to_vec()) else {
                    warn!(from = %hex::encode(from), "reshare: bad private message");
                    return out;
                };
                let Ok(pub_decoded) =
                    DealerPubMsg::<MinSig>::decode_cfg(pub_msg.to_vec(), &bound(&round.record))
                else {
                    warn!(from = %hex::encode(from), "reshare: bad public message");
                    return out;
                };
                match side
                    .player
                    .dealer_message::<N3f1>(from_key, pub_decoded, priv_decoded)
                {
                    Ok(Some(ack)) => {
                        self.journal.dealings.push(JournalEntry {
                            dealer: from,
                            pub_msg: pub_msg.to_vec(),
                            priv_msg: priv_msg.to_vec(),
                        });
                        // Persist before the ack leaves (module invariant).
                        out.push(ReshareOutput::Persist {
                            journal: self.journal.encode(),
                        });
                        out.push(ReshareOutput::Send {
                            to: from,
                            bytes: encode_ack(number, &ack),
                        });
                        side.acks.insert(from, ack);
                        debug!(round = number, dealer = %hex::encode(from), "reshare: acked");
                    }
                    Ok(None) => debug!("reshare: dealing already processed"),
                    Err(e) => {
                        warn!(from = %hex::encode(from), error = %e, "reshare: invalid dealing");
                    }
                }
            }
            Wire::Ack { round: number, ack } => {
                if number != round.number {
                    debug!(number, "reshare: ack of another round");
                    return out;
                }
                if !round.players.contains(&from) {
                    warn!(from = %hex::encode(from), "reshare: ack from a non-player");
                    return out;
                }
                let Some(side) = round.dealer.as_mut() else {
                    debug!("reshare: ack but not a dealer");
                    return out;
                };
                let Some(dealer) = side.dealer.as_mut() else {
                    debug!("reshare: ack after the log was finalized");
                    return out;
                };
                let Ok(ack) = PlayerAck::<Key>::decode(ack.to_vec()) else {
                    warn!(from = %hex::encode(from), "reshare: bad ack");
                    return out;
                };
                if let Err(e) = dealer.receive_player_ack(from_key, ack) {
                    warn!(from = %hex::encode(from), error = %e, "reshare: invalid ack");
                    return out;
                }
                side.acked.insert(from);
                if side.acked.len() == round.players.len() {
                    let height = self.height;
                    post(round.number, side, height, &mut out);
                }
            }
        }
        out
    }

    /// Call about once a second: re-sends this dealer's dealing to every player that has not
    /// acked it yet, until the log is finalized.
    pub fn on_tick(&mut self) -> Vec<ReshareOutput> {
        let Some(side) = self.round.as_ref().and_then(|r| r.dealer.as_ref()) else {
            return Vec::new();
        };
        if side.dealer.is_none() || side.confirmed {
            return Vec::new();
        }
        side.dealings
            .iter()
            .filter(|(to, _)| !side.acked.contains(*to))
            .map(|(to, bytes)| ReshareOutput::Send {
                to: *to,
                bytes: bytes.clone(),
            })
            .collect()
    }

    /// Builds the state of `record` (the dealer side only while it is open).
    /// The round that produced the chain's current generation, when this validator is one of
    /// its participants, holds no share of it and has not finished that round here.
    fn missed_round(&self, state: &dyn StateReader) -> Option<u64> {
        let current = match chain::current_generation(state) {
            Ok(current) => current?,
            Err(e) => {
                warn!(error = %e, "reshare: cannot read the current generation");
                return None;
            }
        };
        let number = current.round?;
        let member = current.participants.iter().any(|a| a.0 == self.me);
        let behind = self.generation().is_none_or(|g| g < current.generation);
        (member && behind && number > self.done).then_some(number)
    }

    fn build(
        &mut self,
        state: &dyn StateReader,
        record: ReshareRound,
        out: &mut Vec<ReshareOutput>,
    ) -> Option<Round> {
        let number = record.round;
        let dealers: BTreeSet<[u8; 32]> = record.dealers.iter().map(|a| a.0).collect();
        let players: BTreeSet<[u8; 32]> = record.players.iter().map(|a| a.0).collect();
        let (is_dealer, is_player) = (dealers.contains(&self.me), players.contains(&self.me));
        if !is_dealer && !is_player {
            debug!(round = number, "reshare: neither dealer nor player");
            return None;
        }
        let info = match chain::round_info(state, number) {
            Ok(info) => info,
            Err(e) => {
                warn!(round = number, error = %e, "reshare: no round info");
                return None;
            }
        };
        let epoch_blocks = match state::read_borsh::<Params>(state, PARAMS_KEY) {
            Ok(Some(p)) => p.rewards.epoch_blocks.max(1),
            _ => {
                warn!(round = number, "reshare: no params");
                return None;
            }
        };
        let close_at = record
            .epoch
            .saturating_add(1)
            .saturating_mul(epoch_blocks)
            .saturating_sub(1);
        let post_at = record.opened_at.saturating_add((epoch_blocks / 2).max(2));
        let mut round = Round {
            number,
            info,
            dealers,
            players,
            post_at,
            repost_from: close_at.saturating_sub(epoch_blocks / 4).max(post_at),
            repost_every: (epoch_blocks / 8).max(1),
            dealer: None,
            player: None,
            record,
        };
        if is_player {
            round.player = self.start_player(state, &round, out);
        }
        if is_dealer && round.record.status == RoundStatus::Open {
            round.dealer = self.start_dealer(state, &mut round, out);
        }
        info!(
            round = number,
            dealer = round.dealer.is_some(),
            player = round.player.is_some(),
            "reshare: round joined"
        );
        Some(round)
    }

    fn start_player(
        &mut self,
        state: &dyn StateReader,
        round: &Round,
        out: &mut Vec<ReshareOutput>,
    ) -> Option<PlayerSide> {
        let number = round.number;
        if self.journal.round != number {
            self.journal = Journal {
                round: number,
                dealings: Vec::new(),
            };
            out.push(ReshareOutput::Persist {
                journal: self.journal.encode(),
            });
        }
        let mut msgs = Vec::new();
        for e in &self.journal.dealings {
            let (Some(dealer), Ok(pub_msg), Ok(priv_msg)) = (
                key_of(&e.dealer),
                DealerPubMsg::<MinSig>::decode_cfg(e.pub_msg.clone(), &bound(&round.record)),
                DealerPrivMsg::decode(e.priv_msg.clone()),
            ) else {
                error!(
                    round = number,
                    "reshare: undecodable journal entry, skipped"
                );
                continue;
            };
            msgs.push((dealer, pub_msg, priv_msg));
        }
        let logs = checked_logs(state, round);
        match Player::resume::<N3f1>(round.info.clone(), self.signer.clone(), &logs, msgs.clone()) {
            Ok((player, acks)) => Some(PlayerSide {
                player,
                acks: acks.iter().map(|(k, a)| (bytes_of(k), a.clone())).collect(),
            }),
            Err(e) => {
                error!(
                    round = number,
                    error = %e,
                    "reshare: the journal does not match the logs on chain; this share may be lost"
                );
                let mut player = match Player::new(round.info.clone(), self.signer.clone()) {
                    Ok(p) => p,
                    Err(e) => {
                        warn!(round = number, error = %e, "reshare: cannot play");
                        return None;
                    }
                };
                let mut acks = BTreeMap::new();
                for (dealer, pub_msg, priv_msg) in msgs {
                    if let Ok(Some(ack)) =
                        player.dealer_message::<N3f1>(dealer.clone(), pub_msg, priv_msg)
                    {
                        acks.insert(bytes_of(&dealer), ack);
                    }
                }
                Some(PlayerSide { player, acks })
            }
        }
    }

    fn start_dealer(
        &mut self,
        state: &dyn StateReader,
        round: &mut Round,
        out: &mut Vec<ReshareOutput>,
    ) -> Option<DealerSide> {
        let number = round.number;
        let share = match &self.share {
            Some((g, share)) if *g == round.record.generation => share.clone(),
            _ => {
                warn!(
                    round = number,
                    generation = round.record.generation,
                    held = ?self.generation(),
                    "reshare: a dealer without the share of the round's generation"
                );
                return None;
            }
        };
        let rng = SeededRng::new(&self.seed, b"dealer", number);
        let (mut dealer, pub_msg, priv_msgs) = match Dealer::start::<N3f1>(
            rng,
            round.info.clone(),
            self.signer.clone(),
            Some(share),
        ) {
            Ok(started) => started,
            Err(e) => {
                warn!(round = number, error = %e, "reshare: cannot deal");
                return None;
            }
        };
        let confirmed = on_chain(state, number, &self.me);
        let mut side = DealerSide {
            dealer: None,
            dealings: BTreeMap::new(),
            acked: BTreeSet::new(),
            log: None,
            last_post: None,
            confirmed,
        };
        for (pk, priv_msg) in priv_msgs {
            let to = bytes_of(&pk);
            if to == self.me {
                let Some(player) = round.player.as_mut() else {
                    continue;
                };
                let ack = match player.player.dealer_message::<N3f1>(
                    pk.clone(),
                    pub_msg.clone(),
                    priv_msg.clone(),
                ) {
                    Ok(Some(ack)) => {
                        self.journal.dealings.push(JournalEntry {
                            dealer: to,
                            pub_msg: pub_msg.encode().to_vec(),
                            priv_msg: priv_msg.encode().to_vec(),
                        });
                        out.push(ReshareOutput::Persist {
                            journal: self.journal.encode(),
                        });
                        player.acks.insert(to, ack.clone());
                        Some(ack)
                    }
                    Ok(None) => player.acks.get(&to).cloned(),
                    Err(e) => {
                        error!(round = number, error = %e, "reshare: own dealing refused");
                        None
                    }
                };
                if let Some(ack) = ack
                    && dealer.receive_player_ack(pk, ack).is_ok()
                {
                    side.acked.insert(to);
                }
                continue;
            }
            let bytes = encode_dealing(number, &priv_msg, &pub_msg);
            if !confirmed {
                out.push(ReshareOutput::Send {
                    to,
                    bytes: bytes.clone(),
                });
            }
            side.dealings.insert(to, bytes);
        }
        if !confirmed {
            side.dealer = Some(dealer);
            if side.acked.len() == round.players.len() {
                post(number, &mut side, self.height, out);
            }
        }
        Some(side)
    }

    /// Posts or re-posts the dealer log, by height.
    fn progress(&mut self, state: &dyn StateReader, height: u64, out: &mut Vec<ReshareOutput>) {
        let me = self.me;
        let Some(round) = self.round.as_mut() else {
            return;
        };
        let Some(side) = round.dealer.as_mut() else {
            return;
        };
        if side.confirmed {
            return;
        }
        if on_chain(state, round.number, &me) {
            info!(round = round.number, "reshare: our dealer log is on chain");
            side.confirmed = true;
            side.dealer = None;
            return;
        }
        match side.last_post {
            None if height >= round.post_at => post(round.number, side, height, out),
            Some(last)
                if height >= round.repost_from
                    && height >= last.saturating_add(round.repost_every) =>
            {
                if let Some(log) = &side.log {
                    info!(round = round.number, "reshare: re-posting our dealer log");
                    out.push(ReshareOutput::PostLog {
                        round: round.number,
                        log: log.clone(),
                    });
                    side.last_post = Some(height);
                }
            }
            _ => {}
        }
    }

    /// Finishes the round held: the share if it succeeded and we play; drops it otherwise.
    fn close(&mut self, state: &dyn StateReader, out: &mut Vec<ReshareOutput>) {
        let Some(round) = self.round.take() else {
            return;
        };
        let number = round.number;
        self.done = self.done.max(number);
        let status = match chain::round(state, number) {
            Ok(Some(record)) => record.status,
            Ok(None) => {
                warn!(round = number, "reshare: our round is not on chain");
                return;
            }
            Err(e) => {
                warn!(round = number, error = %e, "reshare: cannot read our round");
                return;
            }
        };
        let generation = match status {
            RoundStatus::Succeeded { generation } => generation,
            RoundStatus::Failed { required, found } => {
                info!(round = number, required, found, "reshare: round failed");
                self.clear_journal(number, out);
                return;
            }
            RoundStatus::Open => {
                warn!(
                    round = number,
                    "reshare: our round is still open but not current"
                );
                return;
            }
        };
        let Some(side) = round.player else {
            return;
        };
        if self.generation().is_some_and(|g| g >= generation) {
            self.clear_journal(number, out);
            return;
        }
        match self.finalize(state, number, generation, side) {
            Ok((polynomial, share)) => {
                info!(round = number, generation, "reshare: new share");
                out.push(ReshareOutput::Share {
                    generation,
                    polynomial,
                    share: share.encode().to_vec(),
                });
                self.share = Some((generation, share));
                self.clear_journal(number, out);
            }
            // The journal is kept: a restart retries.
            Err(why) => error!(round = number, generation, why, "reshare: no share"),
        }
    }

    fn finalize(
        &self,
        state: &dyn StateReader,
        number: u64,
        generation: u64,
        side: PlayerSide,
    ) -> Result<(Vec<u8>, Share), String> {
        let logs = chain::round_checked_logs(state, number).map_err(|e| e.to_string())?;
        let record = chain::generation(state, generation)
            .map_err(|e| e.to_string())?
            .ok_or("the generation is not recorded")?;
        let mut rng = SeededRng::new(&self.seed, b"finalize", number);
        let (output, share) = side
            .player
            .finalize::<N3f1>(&mut rng, logs, &Sequential)
            .map_err(|e| format!("finalize: {e:?}"))?;
        if output.public().encode().as_ref() != record.polynomial.as_slice() {
            return Err("our output's polynomial is not the recorded one".into());
        }
        BeaconKey::from_bytes(&record.polynomial, &share.encode())
            .map_err(|e| format!("the share is not a point of the polynomial: {e}"))?;
        Ok((record.polynomial, share))
    }

    fn clear_journal(&mut self, number: u64, out: &mut Vec<ReshareOutput>) {
        if self.journal.round == number {
            self.journal = Journal::default();
            out.push(ReshareOutput::Persist {
                journal: self.journal.encode(),
            });
        }
    }
}

/// Finalizes the dealer (if not yet) and posts its log.
fn post(number: u64, side: &mut DealerSide, height: u64, out: &mut Vec<ReshareOutput>) {
    if side.log.is_none() {
        let Some(dealer) = side.dealer.take() else {
            return;
        };
        side.log = Some(dealer.finalize::<N3f1>().encode().to_vec());
    }
    if let Some(log) = &side.log {
        info!(
            round = number,
            acked = side.acked.len(),
            "reshare: posting our dealer log"
        );
        out.push(ReshareOutput::PostLog {
            round: number,
            log: log.clone(),
        });
        side.last_post = Some(height);
    }
}

fn on_chain(state: &dyn StateReader, number: u64, me: &[u8; 32]) -> bool {
    matches!(
        state.get(&chain::log_key(number, &Address(*me))),
        Ok(Some(_))
    )
}

/// The round's logs on chain, checked, by dealer (for `Player::resume`).
fn checked_logs(state: &dyn StateReader, round: &Round) -> BTreeMap<Key, DealerLog<MinSig, Key>> {
    let mut logs = BTreeMap::new();
    let Ok(posted) = chain::round_logs(state, round.number) else {
        return logs;
    };
    for (_, bytes) in posted {
        let Ok(signed) = ReshareSignedLog::decode_cfg(bytes, &bound(&round.record)) else {
            continue;
        };
        if let Some((dealer, log)) = signed.check(&round.info) {
            logs.insert(dealer, log);
        }
    }
    logs
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn journals_round_trip_and_refuse_malformed_bytes() {
        let journal = Journal {
            round: 7,
            dealings: vec![JournalEntry {
                dealer: [3; 32],
                pub_msg: vec![1, 2, 3],
                priv_msg: vec![9; 32],
            }],
        };
        let bytes = journal.encode();
        assert_eq!(Journal::decode(&bytes), Ok(journal));
        assert_eq!(Journal::decode(&[]), Ok(Journal::default()));
        for cut in 1..bytes.len() {
            assert!(Journal::decode(&bytes[..cut]).is_err(), "cut at {cut}");
        }
        let mut trailing = bytes.clone();
        trailing.push(0);
        assert!(Journal::decode(&trailing).is_err());
        let mut version = bytes;
        version[0] = 2;
        assert!(Journal::decode(&version).is_err());
    }

    #[test]
    fn wire_messages_are_bounded_and_versioned() {
        let ack = [vec![1, KIND_ACK], 5u64.to_be_bytes().to_vec(), vec![0; 64]].concat();
        assert_eq!(
            decode_wire(&ack),
            Ok(Wire::Ack {
                round: 5,
                ack: &[0; 64]
            })
        );
        assert!(decode_wire(&ack[..ack.len() - 1]).is_err());
        assert!(decode_wire(&[ack.as_slice(), &[0]].concat()).is_err());
        let mut other = ack.clone();
        other[0] = 2;
        assert!(decode_wire(&other).is_err());
        other[0] = 1;
        other[1] = 9;
        assert!(decode_wire(&other).is_err());
        let dealing = [
            vec![1, KIND_DEALING],
            5u64.to_be_bytes().to_vec(),
            vec![4; 40],
        ]
        .concat();
        assert_eq!(
            decode_wire(&dealing),
            Ok(Wire::Dealing {
                round: 5,
                priv_msg: &[4; 32],
                pub_msg: &[4; 8]
            })
        );
        assert!(decode_wire(&dealing[..HEADER_BYTES + 32]).is_err());
        assert!(decode_wire(&vec![1; DKG_MESSAGE_BYTES_MAX + 1]).is_err());
        for cut in 0..HEADER_BYTES {
            assert!(decode_wire(&ack[..cut]).is_err());
        }
    }

    #[test]
    fn the_dealer_rng_is_deterministic_per_seed_and_round() {
        use rand_core::Rng as _;
        let draw = |seed: [u8; 32], round| SeededRng::new(&seed, b"dealer", round).next_u64();
        assert_eq!(draw([1; 32], 3), draw([1; 32], 3));
        assert_ne!(draw([1; 32], 3), draw([1; 32], 4));
        assert_ne!(draw([1; 32], 3), draw([2; 32], 3));
    }
}
