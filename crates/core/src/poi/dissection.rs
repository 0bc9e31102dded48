//! The 32-way dissection game of a dispute, as a pure state machine.
//!
//! A dispute starts when a challenger says a provider's committed work is wrong. Rather than
//! re-running the work, the two parties bisect (32 ways at a time) down to a single operator of
//! a single training step on whose input they agree and on whose output they differ. Referees
//! then re-run only that operator. This module is that narrowing game: deterministic data types
//! (stored with borsh by the later `poi` chain module, shown with serde by the API) and their
//! transition functions. It reads no state, checks no Merkle proofs and moves no tokens: the
//! chain module verifies each revealed digest against the provider's committed root *before*
//! it calls [`Dissection::apply`], and settles bonds from the [`Outcome`]. In the operator
//! phase that root is the trace root each side posts for the step (the design's `Trace`
//! move). A disagreement on the operator count `N` is also settled outside this game, which
//! takes `N` from the model's layout when it opens.
//!
//! # Points and the two phases
//!
//! The game is played over *points*, each with a 32-byte digest, where a point is a state and
//! agreeing on a point means agreeing on everything before it (each digest commits to the
//! whole history up to it). The disputed range `[lo, hi]` always satisfies: both parties agree
//! on the digest of `lo` (it is the defender's, and the challenger accepted it) and disagree on
//! the digest of `hi` (the game holds both parties' digests for it).
//!
//! 1. **Steps** ([`PhaseKind::Steps`]). The points are the leaves `0..=S` of the provider's
//!    committed step-digest list: leaf `k` is the step digest after `k` training steps and
//!    leaf 0 is the initial state that the spec fixes. A full dispute opens on `[0, S]`
//!    ([`Opening::full`]); a challenge may open on any committed `[lo, hi]` inside it.
//! 2. **Operators of step `s`** ([`PhaseKind::Ops`]). When the step range has width 1,
//!    `[s - 1, s]`, the game moves into step `s`, whose trace has `N` operators (`N` is fixed
//!    when the game opens: the model's layout gives it). The points are `0..=N`: point `k` is
//!    the state after the first `k` operators of step `s`. Point 0 *is* leaf `s - 1` (the state
//!    before operator 0, agreed), and point `N` *is* leaf `s` (the last operator is the state
//!    pseudo-operator, which outputs the step digest), so the phase starts on `[0, N]` with the
//!    same three digests the step phase ended with. The digest of an interior point `k` is
//!    whatever the trace format defines for "leaf `s - 1` then entries `0..k`"; it must commit
//!    to that whole prefix, or agreeing on a point would not imply agreeing before it.
//!
//! When the operator range has width 1, `[i, i + 1]`, the game is over with a
//! [`RefereeTask`]: re-run operator `i` of step `s` on the agreed input digest `X` (point `i`)
//! and compare with the defender's output digest `Y` (point `i + 1`) and the challenger's.
//!
//! # A round
//!
//! While the range is wider than 1, each round is two moves:
//!
//! 1. the defender ([`Party::Defender`], the provider) reveals its digests for the interior
//!    pivots of the range ([`Move::Reveal`], exactly [`split_points`]`(lo, hi).len()` digests,
//!    at most [`PIVOTS_MAX`]);
//! 2. the challenger ([`Party::Challenger`]) picks sub-range `j` (1-based, [`Move::Pick`]): the
//!    first one whose left end it agrees with and whose right end it disagrees with, with its
//!    own digest for that right end. The range becomes that sub-range.
//!
//! **Split rule.** For `w = hi - lo >= 2`, let `m = min(32, w)` sub-ranges. The pivots are
//! `p_j = lo + ceil(j * w / m)` for `j = 0..=m`, computed as `lo + (j * w).div_ceil(m)` in
//! `u128` so that it cannot overflow; `p_0 = lo`, `p_m = hi`, and the defender reveals
//! `p_1..p_{m-1}`. For `w >= 32` this is the design's `lo + ceil(j (hi - lo) / 32)`; below 32
//! it is every interior point. Consecutive pivots differ by `floor(w / m)` or `ceil(w / m)`,
//! so they are strictly increasing (`w >= m`) and every sub-range is at most `ceil(w / 32)`
//! wide. Since `ceil(ceil(w / 32^a) / 32) = ceil(w / 32^(a+1))`, a range of width `w` reaches
//! width 1 in at most `ceil(log32 w)` rounds, so the whole game takes at most
//! [`rounds_bound`]`(S, N) = ceil(log32 S) + ceil(log32 N)` rounds.
//!
//! # Deadlines
//!
//! Every move has a deadline: `move_blocks` after the height of the previous move (or of the
//! opening). The deadline is the last height at which the move is accepted. After it, anyone
//! may call [`Dissection::timeout`] and **the party that had to move loses at once**, because
//! silence is the only way left to stall a dispute. A game of at most `R` rounds makes at most
//! `2R` moves, so every deadline it sets is at most `opened + 2R x move_blocks`
//! ([`blocks_bound`]).
//!
//! # Why the honest party wins
//!
//! Against a lying defender, an honest challenger keeps `lo` at a true digest and `hi` at a
//! false one, so the range always holds the first divergence and ends on it. Against an
//! honest defender, every digest the game holds for the defender is true, whatever the
//! challenger picks, so the referee re-running operator `i` on the true `X` computes the
//! defender's `Y`. The integration tests check both as properties.
//!
//! All arithmetic is integer and checked; no input makes a function panic. A refused move
//! returns a [`DissectionError`] and leaves the game unchanged.

use borsh::{BorshDeserialize, BorshSerialize};
use serde::Serialize;

use crate::event::hex32;

/// A 32-byte digest: a step digest (a leaf of the committed list) or a trace point.
pub type Digest = [u8; 32];

/// Sub-ranges per round: each reveal splits the range at most this many ways.
pub const FANOUT: u64 = 32;
/// Most digests one reveal holds (`FANOUT - 1` interior pivots).
pub const PIVOTS_MAX: usize = 31;

/// One of the two sides of a dispute.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, BorshSerialize, BorshDeserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Party {
    /// The provider, who committed the digests and reveals them.
    Defender,
    /// The party that disputes them and picks sub-ranges.
    Challenger,
}

impl Party {
    /// The other side.
    pub fn other(self) -> Party {
        match self {
            Party::Defender => Party::Challenger,
            Party::Challenger => Party::Defender,
        }
    }
}

/// Parameters of one game, fixed when it opens (so a governance change never alters the
/// deadlines of a running dispute).
#[derive(Debug, Clone, Copy, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize)]
pub struct DissectionParams {
    /// Blocks each party has for its move (positive). Design default 20.
    pub move_blocks: u64,
}

impl Default for DissectionParams {
    fn default() -> Self {
        DissectionParams { move_blocks: 20 }
    }
}

/// Which of the two phases a game is in, or a move is meant for. Moves name their phase so a
/// move built for the step phase can never be applied to the operator phase after the game
/// moved on (the indices and digests would mean something else there).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, BorshSerialize, BorshDeserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PhaseKind {
    /// Dissecting the step-digest leaves.
    Steps,
    /// Dissecting the operator trace of one step.
    Ops,
}

/// The phase of a game, with what the operator phase remembers of the step phase.
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    /// Points are step leaves `0..=S`.
    Steps,
    /// Points are the states `0..=N` inside step `step`.
    Ops {
        /// The disputed step `s` (`1..=S`): the parties agree on leaf `s - 1`, not on leaf `s`.
        step: u64,
        /// Leaf `s - 1`, agreed: the state a referee loads tensors from (point 0).
        #[serde(serialize_with = "hex32")]
        step_input: Digest,
        /// The defender's leaf `s` (point `N`).
        #[serde(serialize_with = "hex32")]
        defender_output: Digest,
        /// The challenger's leaf `s` (point `N`).
        #[serde(serialize_with = "hex32")]
        challenger_output: Digest,
    },
}

impl Phase {
    /// The phase without its data.
    pub fn kind(&self) -> PhaseKind {
        match self {
            Phase::Steps => PhaseKind::Steps,
            Phase::Ops { .. } => PhaseKind::Ops,
        }
    }
}

/// How a game opens: the committed step range in dispute and the three digests at its ends.
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize)]
pub struct Opening {
    /// `S`, the job's step count: the committed list has leaves `0..=S` (positive).
    pub steps: u64,
    /// `N`, operators in one step's trace, the state pseudo-operator included (positive).
    pub ops: u64,
    /// Left end of the disputed range, a leaf both accept.
    pub lo: u64,
    /// Right end of the disputed range (`lo < hi <= steps`).
    pub hi: u64,
    /// The defender's committed digest for leaf `lo`, which the challenger accepts.
    #[serde(serialize_with = "hex32")]
    pub agreed: Digest,
    /// The defender's committed digest for leaf `hi`.
    #[serde(serialize_with = "hex32")]
    pub defender: Digest,
    /// The challenger's digest for leaf `hi` (must differ from the defender's).
    #[serde(serialize_with = "hex32")]
    pub challenger: Digest,
}

impl Opening {
    /// A dispute over the whole job, `[0, S]`: leaf 0 is the initial state fixed by the spec,
    /// leaf `S` the provider's final digest against the challenger's.
    pub fn full(
        steps: u64,
        ops: u64,
        initial: Digest,
        defender_final: Digest,
        challenger_final: Digest,
    ) -> Opening {
        Opening {
            steps,
            ops,
            lo: 0,
            hi: steps,
            agreed: initial,
            defender: defender_final,
            challenger: challenger_final,
        }
    }
}

/// A move of one party.
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Move {
    /// The defender's digests for the interior pivots of the current range, in order.
    Reveal {
        /// The phase this move is for.
        phase: PhaseKind,
        /// Exactly one digest per point of [`Dissection::pending_points`].
        #[serde(serialize_with = "hex32_vec")]
        digests: Vec<Digest>,
    },
    /// The challenger's choice of sub-range.
    Pick {
        /// The phase this move is for.
        phase: PhaseKind,
        /// Sub-range `j`, 1-based: `[p_{j-1}, p_j]`.
        index: u32,
        /// The challenger's digest for `p_j`. It must differ from the defender's; for the last
        /// sub-range (`p_j = hi`) it must repeat the challenger's existing claim for `hi`.
        #[serde(serialize_with = "hex32")]
        claim: Digest,
    },
}

impl Move {
    /// The only party that may make this move.
    pub fn party(&self) -> Party {
        match self {
            Move::Reveal { .. } => Party::Defender,
            Move::Pick { .. } => Party::Challenger,
        }
    }

    /// The phase the move is for.
    pub fn phase(&self) -> PhaseKind {
        match self {
            Move::Reveal { phase, .. } | Move::Pick { phase, .. } => *phase,
        }
    }
}

/// The one operator the referees re-run, and what each side says it outputs.
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize)]
pub struct RefereeTask {
    /// The step `s`, `1..=S`.
    pub step: u64,
    /// The operator `i`, `0..N`.
    pub op: u64,
    /// Leaf `s - 1`, agreed: the state the operator's state inputs come from.
    #[serde(serialize_with = "hex32")]
    pub step_input: Digest,
    /// `X`, point `i`: the agreed state before operator `i`.
    #[serde(serialize_with = "hex32")]
    pub input: Digest,
    /// `Y`, the defender's point `i + 1`: the output the referees expect if the defender is
    /// right.
    #[serde(serialize_with = "hex32")]
    pub expected: Digest,
    /// The challenger's point `i + 1` (differs from `expected`).
    #[serde(serialize_with = "hex32")]
    pub claim: Digest,
}

/// How a game ended.
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Narrowed to one operator; the referees decide.
    Referee(RefereeTask),
    /// `loser` missed its deadline and loses the dispute.
    Forfeit {
        /// The party that did not move in time.
        loser: Party,
    },
}

/// Whose move it is, until when, or how the game ended.
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// The defender must reveal the pivots by `deadline` (inclusive).
    AwaitingReveal {
        /// Last height at which the reveal is accepted.
        deadline: u64,
    },
    /// The challenger must pick a sub-range by `deadline` (inclusive).
    AwaitingPick {
        /// Last height at which the pick is accepted.
        deadline: u64,
    },
    /// The game is over; no move is accepted.
    Over(Outcome),
}

/// Why a move (or an opening, or a timeout) was refused. The game is unchanged.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DissectionError {
    /// `move_blocks` is 0: no party could ever move after the opening block.
    #[error("move_blocks must be positive")]
    InvalidParams,
    /// The opening range is not `lo < hi <= steps`.
    #[error("disputed range [{lo}, {hi}] is not a non-empty range inside [0, {steps}]")]
    InvalidRange {
        /// Left end given.
        lo: u64,
        /// Right end given.
        hi: u64,
        /// Steps of the job.
        steps: u64,
    },
    /// The opening says a step has no operators.
    #[error("a step has at least one operator")]
    NoOps,
    /// The challenger's digest for `point` equals the defender's, so it does not dispute it.
    #[error("the challenger's digest for point {point} equals the defender's")]
    ClaimAgrees {
        /// The point (a leaf or a trace point of the current phase).
        point: u64,
    },
    /// The challenger picked the last sub-range but changed its claim for `hi`.
    #[error("the challenger's digest for point {point} differs from its earlier claim")]
    ClaimChanged {
        /// The right end of the range.
        point: u64,
    },
    /// The game is over.
    #[error("the dissection game is over")]
    GameOver,
    /// The move is not `got`'s to make now: either it is `expected`'s turn, or the move kind
    /// belongs to `expected` (reveals are the defender's, picks the challenger's).
    #[error("this move must come from the {expected:?}, it came from the {got:?}")]
    WrongParty {
        /// The party that may make the move.
        expected: Party,
        /// The party that sent it.
        got: Party,
    },
    /// The move names a phase the game is not in.
    #[error("the game is in the {expected:?} phase, the move is for the {got:?} phase")]
    WrongPhase {
        /// The game's phase.
        expected: PhaseKind,
        /// The move's phase.
        got: PhaseKind,
    },
    /// A reveal with the wrong number of digests.
    #[error("{got} digests revealed, the range needs {expected}")]
    WrongDigestCount {
        /// Interior pivots of the current range.
        expected: u64,
        /// Digests in the move.
        got: u64,
    },
    /// A pick outside `1..=max`.
    #[error("pick {index} is outside 1..={max}")]
    PickOutOfRange {
        /// Index picked.
        index: u32,
        /// Sub-ranges of the current range.
        max: u32,
    },
    /// The move came after its deadline (the mover can now only lose by timeout).
    #[error("move at height {height} is after the deadline {deadline}")]
    DeadlinePassed {
        /// Height of the move.
        height: u64,
        /// Last height the move was accepted.
        deadline: u64,
    },
    /// A timeout was claimed while the mover still has time.
    #[error("no timeout at height {height}: the deadline {deadline} has not passed")]
    DeadlineNotReached {
        /// Height of the claim.
        height: u64,
        /// Last height the mover may still move.
        deadline: u64,
    },
    /// A call with a height before the game's last update (heights only grow on chain; a
    /// lower one would set an earlier deadline than the rules give).
    #[error("height {height} is before the game's last update at {last}")]
    StaleHeight {
        /// Height given.
        height: u64,
        /// Height of the last update.
        last: u64,
    },
    /// `height + move_blocks` does not fit a `u64`.
    #[error("the deadline after height {height} overflows")]
    HeightOverflow {
        /// Height of the move.
        height: u64,
    },
    /// The stored game breaks its own invariants (only a corrupted or hand-made encoding can).
    #[error("inconsistent dissection state: {0}")]
    Inconsistent(&'static str),
}

impl DissectionError {
    /// Stable machine-readable code, for the chain module's refusals.
    pub fn code(&self) -> &'static str {
        match self {
            DissectionError::InvalidParams => "invalid_params",
            DissectionError::InvalidRange { .. } => "invalid_range",
            DissectionError::NoOps => "no_ops",
            DissectionError::ClaimAgrees { .. } => "claim_agrees",
            DissectionError::ClaimChanged { .. } => "claim_changed",
            DissectionError::GameOver => "game_over",
            DissectionError::WrongParty { .. } => "wrong_party",
            DissectionError::WrongPhase { .. } => "wrong_phase",
            DissectionError::WrongDigestCount { .. } => "wrong_digest_count",
            DissectionError::PickOutOfRange { .. } => "pick_out_of_range",
            DissectionError::DeadlinePassed { .. } => "deadline_passed",
            DissectionError::DeadlineNotReached { .. } => "deadline_not_reached",
            DissectionError::StaleHeight { .. } => "stale_height",
            DissectionError::HeightOverflow { .. } => "height_overflow",
            DissectionError::Inconsistent(_) => "inconsistent",
        }
    }
}

/// `ceil(log32 n)`: the fewest rounds that narrow a range of width `n` to width 1. Defined as
/// 0 for `n <= 1` (nothing to narrow). Integer only: `32^k >= n` iff `2^(5k) >= n`, and
/// `ceil(log2 n)` is the bit length of `n - 1`.
pub fn ceil_log32(n: u64) -> u32 {
    if n <= 1 {
        return 0;
    }
    let bits = u64::BITS - (n - 1).leading_zeros();
    bits.div_ceil(5)
}

/// Most rounds a game over `steps` leaves with `ops` operators per step can take:
/// `ceil(log32 steps) + ceil(log32 ops)` (at most 26 for any `u64` inputs).
pub fn rounds_bound(steps: u64, ops: u64) -> u32 {
    ceil_log32(steps) + ceil_log32(ops)
}

/// Blocks from the opening within which every deadline of the game falls:
/// `rounds_bound x 2 x move_blocks` (two moves a round). `None` if it overflows `u64`.
pub fn blocks_bound(steps: u64, ops: u64, move_blocks: u64) -> Option<u64> {
    u64::from(rounds_bound(steps, ops))
        .checked_mul(2)?
        .checked_mul(move_blocks)
}

/// Sub-ranges a range of width `w` splits into: `min(32, w)`.
fn fanout(width: u64) -> u64 {
    width.min(FANOUT)
}

/// Pivot `p_j = lo + ceil(j w / m)` of `[lo, hi]` (see the split rule in the module doc), for
/// `j <= m`. `None` only if the range is empty or `j > m`.
fn pivot(lo: u64, hi: u64, j: u64) -> Option<u64> {
    let width = hi.checked_sub(lo).filter(|w| *w > 0)?;
    let m = fanout(width);
    if j > m {
        return None;
    }
    // j <= 32 and width < 2^64, so j * width fits u128 with room to spare.
    let offset = (u128::from(j) * u128::from(width)).div_ceil(u128::from(m));
    // offset <= width, so it fits u64 and lo + offset <= hi.
    lo.checked_add(u64::try_from(offset).ok()?)
}

/// The interior pivots `p_1..p_{m-1}` of `[lo, hi]`, in increasing order: the points whose
/// digests a reveal holds. Empty for width 1; `None` if `lo >= hi`.
pub fn split_points(lo: u64, hi: u64) -> Option<Vec<u64>> {
    let width = hi.checked_sub(lo).filter(|w| *w > 0)?;
    let m = fanout(width);
    (1..m).map(|j| pivot(lo, hi, j)).collect()
}

/// The state of one dissection game. Fields are private so every change goes through the
/// transition functions, which keep the invariants documented in the module doc.
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize)]
pub struct Dissection {
    params: DissectionParams,
    steps: u64,
    ops: u64,
    phase: Phase,
    lo: u64,
    hi: u64,
    #[serde(serialize_with = "hex32")]
    lo_digest: Digest,
    #[serde(serialize_with = "hex32")]
    hi_defender: Digest,
    #[serde(serialize_with = "hex32")]
    hi_challenger: Digest,
    /// The defender's digests for `split_points(lo, hi)` while a pick is due; empty otherwise.
    #[serde(serialize_with = "hex32_vec")]
    pivots: Vec<Digest>,
    status: Status,
    rounds: u32,
    /// Height of the opening or of the last move or timeout.
    height: u64,
}

impl Dissection {
    /// Opens a game at height `now`. A range of width 1 goes straight to the operator phase of
    /// step `hi` (a spot-check mismatch needs no step rounds), and a step of one operator
    /// straight to the referees.
    pub fn open(
        params: DissectionParams,
        opening: &Opening,
        now: u64,
    ) -> Result<Dissection, DissectionError> {
        if params.move_blocks == 0 {
            return Err(DissectionError::InvalidParams);
        }
        if opening.ops == 0 {
            return Err(DissectionError::NoOps);
        }
        if opening.lo >= opening.hi || opening.hi > opening.steps {
            return Err(DissectionError::InvalidRange {
                lo: opening.lo,
                hi: opening.hi,
                steps: opening.steps,
            });
        }
        if opening.defender == opening.challenger {
            return Err(DissectionError::ClaimAgrees { point: opening.hi });
        }
        let mut game = Dissection {
            params,
            steps: opening.steps,
            ops: opening.ops,
            phase: Phase::Steps,
            lo: opening.lo,
            hi: opening.hi,
            lo_digest: opening.agreed,
            hi_defender: opening.defender,
            hi_challenger: opening.challenger,
            pivots: Vec::new(),
            // Replaced by `advance` below; a game is never returned in this state.
            status: Status::AwaitingReveal { deadline: now },
            rounds: 0,
            height: now,
        };
        game.advance(now)?;
        Ok(game)
    }

    /// Applies `mv`, sent by `who` at height `now`. On error the game is unchanged.
    pub fn apply(&mut self, who: Party, mv: &Move, now: u64) -> Result<(), DissectionError> {
        // Work on a copy so a refusal halfway through can never leave a half-applied move.
        let mut next = self.clone();
        next.apply_in_place(who, mv, now)?;
        *self = next;
        Ok(())
    }

    /// Ends the game at height `now` if the party to move has let its deadline pass, and
    /// returns that party, the loser. Anyone may call it.
    pub fn timeout(&mut self, now: u64) -> Result<Party, DissectionError> {
        let (mover, deadline) = self.turn()?;
        self.check_height(now)?;
        if now <= deadline {
            return Err(DissectionError::DeadlineNotReached {
                height: now,
                deadline,
            });
        }
        self.pivots.clear();
        self.status = Status::Over(Outcome::Forfeit { loser: mover });
        self.height = now;
        Ok(mover)
    }

    fn apply_in_place(&mut self, who: Party, mv: &Move, now: u64) -> Result<(), DissectionError> {
        let (mover, deadline) = self.turn()?;
        self.check_height(now)?;
        if mv.party() != who {
            return Err(DissectionError::WrongParty {
                expected: mv.party(),
                got: who,
            });
        }
        if who != mover {
            return Err(DissectionError::WrongParty {
                expected: mover,
                got: who,
            });
        }
        if mv.phase() != self.phase.kind() {
            return Err(DissectionError::WrongPhase {
                expected: self.phase.kind(),
                got: mv.phase(),
            });
        }
        if now > deadline {
            return Err(DissectionError::DeadlinePassed {
                height: now,
                deadline,
            });
        }
        match mv {
            Move::Reveal { digests, .. } => self.reveal(digests, now),
            Move::Pick { index, claim, .. } => self.pick(*index, *claim, now),
        }
    }

    fn reveal(&mut self, digests: &[Digest], now: u64) -> Result<(), DissectionError> {
        let expected = self.pending_count()?;
        let got = u64::try_from(digests.len()).unwrap_or(u64::MAX);
        if got != expected {
            return Err(DissectionError::WrongDigestCount { expected, got });
        }
        self.pivots = digests.to_vec();
        self.status = Status::AwaitingPick {
            deadline: self.deadline_after(now)?,
        };
        self.height = now;
        Ok(())
    }

    fn pick(&mut self, index: u32, claim: Digest, now: u64) -> Result<(), DissectionError> {
        let width = self.width()?;
        let m = fanout(width);
        let max = u32::try_from(m).map_err(|_| DissectionError::Inconsistent("fanout"))?;
        if index == 0 || index > max {
            return Err(DissectionError::PickOutOfRange { index, max });
        }
        if u64::try_from(self.pivots.len()).ok() != m.checked_sub(1) {
            return Err(DissectionError::Inconsistent("pivot count"));
        }
        let j = u64::from(index);
        let new_lo =
            pivot(self.lo, self.hi, j - 1).ok_or(DissectionError::Inconsistent("pivot"))?;
        let new_hi = pivot(self.lo, self.hi, j).ok_or(DissectionError::Inconsistent("pivot"))?;
        // pivots[k] is the defender's digest for p_{k+1}.
        let slot = |k: u32| -> Result<Digest, DissectionError> {
            let k = usize::try_from(k).map_err(|_| DissectionError::Inconsistent("pivot"))?;
            self.pivots
                .get(k)
                .copied()
                .ok_or(DissectionError::Inconsistent("pivot"))
        };
        let new_lo_digest = if index == 1 {
            self.lo_digest
        } else {
            slot(index - 2)?
        };
        let new_hi_defender = if index == max {
            if claim != self.hi_challenger {
                return Err(DissectionError::ClaimChanged { point: self.hi });
            }
            self.hi_defender
        } else {
            let defender = slot(index - 1)?;
            if claim == defender {
                return Err(DissectionError::ClaimAgrees { point: new_hi });
            }
            defender
        };
        self.rounds = self
            .rounds
            .checked_add(1)
            .ok_or(DissectionError::Inconsistent("round count"))?;
        self.lo = new_lo;
        self.hi = new_hi;
        self.lo_digest = new_lo_digest;
        self.hi_defender = new_hi_defender;
        self.hi_challenger = claim;
        self.pivots.clear();
        self.height = now;
        self.advance(now)
    }

    /// Sets the status after the range changed: another reveal while the range is wider
    /// than 1; at width 1, into the operator phase of step `hi`, or over with a referee task.
    fn advance(&mut self, now: u64) -> Result<(), DissectionError> {
        if self.width()? > 1 {
            self.status = Status::AwaitingReveal {
                deadline: self.deadline_after(now)?,
            };
            return Ok(());
        }
        if self.phase == Phase::Steps {
            // [s - 1, s] in leaves becomes [0, N] in step s: point 0 is leaf s - 1 and point N
            // is leaf s, so the three end digests carry over unchanged.
            self.phase = Phase::Ops {
                step: self.hi,
                step_input: self.lo_digest,
                defender_output: self.hi_defender,
                challenger_output: self.hi_challenger,
            };
            self.lo = 0;
            self.hi = self.ops;
            if self.width()? > 1 {
                self.status = Status::AwaitingReveal {
                    deadline: self.deadline_after(now)?,
                };
                return Ok(());
            }
        }
        let Phase::Ops {
            step, step_input, ..
        } = self.phase
        else {
            return Err(DissectionError::Inconsistent("phase"));
        };
        self.status = Status::Over(Outcome::Referee(RefereeTask {
            step,
            op: self.lo,
            step_input,
            input: self.lo_digest,
            expected: self.hi_defender,
            claim: self.hi_challenger,
        }));
        Ok(())
    }

    /// The party to move and its deadline, or `GameOver`.
    fn turn(&self) -> Result<(Party, u64), DissectionError> {
        match self.status {
            Status::AwaitingReveal { deadline } => Ok((Party::Defender, deadline)),
            Status::AwaitingPick { deadline } => Ok((Party::Challenger, deadline)),
            Status::Over(_) => Err(DissectionError::GameOver),
        }
    }

    fn check_height(&self, now: u64) -> Result<(), DissectionError> {
        if now < self.height {
            return Err(DissectionError::StaleHeight {
                height: now,
                last: self.height,
            });
        }
        Ok(())
    }

    fn deadline_after(&self, now: u64) -> Result<u64, DissectionError> {
        now.checked_add(self.params.move_blocks)
            .ok_or(DissectionError::HeightOverflow { height: now })
    }

    fn width(&self) -> Result<u64, DissectionError> {
        self.hi
            .checked_sub(self.lo)
            .filter(|w| *w > 0)
            .ok_or(DissectionError::Inconsistent("empty range"))
    }

    /// Interior pivots of the current range (what a reveal must hold).
    fn pending_count(&self) -> Result<u64, DissectionError> {
        let width = self.width()?;
        if width < 2 {
            return Err(DissectionError::Inconsistent(
                "reveal due on a width-1 range",
            ));
        }
        Ok(fanout(width) - 1)
    }

    /// The game's parameters.
    pub fn params(&self) -> DissectionParams {
        self.params
    }

    /// `S`, the job's steps.
    pub fn steps(&self) -> u64 {
        self.steps
    }

    /// `N`, operators per step.
    pub fn ops(&self) -> u64 {
        self.ops
    }

    /// The current phase.
    pub fn phase(&self) -> &Phase {
        &self.phase
    }

    /// The disputed range `(lo, hi)` in the current phase's points. When the game is over
    /// with a referee task it is `(i, i + 1)`.
    pub fn range(&self) -> (u64, u64) {
        (self.lo, self.hi)
    }

    /// The agreed digest of `lo`.
    pub fn agreed(&self) -> Digest {
        self.lo_digest
    }

    /// The defender's and the challenger's digests for `hi`, in that order.
    pub fn disputed(&self) -> (Digest, Digest) {
        (self.hi_defender, self.hi_challenger)
    }

    /// The defender's revealed pivot digests while a pick is due; empty otherwise.
    pub fn pivots(&self) -> &[Digest] {
        &self.pivots
    }

    /// The points whose digests the defender must reveal now (the chain checks each revealed
    /// leaf's proof at these indices); empty unless a reveal is due.
    pub fn pending_points(&self) -> Vec<u64> {
        match self.status {
            Status::AwaitingReveal { .. } => split_points(self.lo, self.hi).unwrap_or_default(),
            _ => Vec::new(),
        }
    }

    /// Sub-range `index` (1-based) of the current range, `None` if out of range.
    pub fn sub_range(&self, index: u32) -> Option<(u64, u64)> {
        let j = u64::from(index);
        if j == 0 {
            return None;
        }
        Some((pivot(self.lo, self.hi, j - 1)?, pivot(self.lo, self.hi, j)?))
    }

    /// Whose move, its deadline, or the outcome.
    pub fn status(&self) -> &Status {
        &self.status
    }

    /// The party to move, `None` once over.
    pub fn mover(&self) -> Option<Party> {
        self.turn().ok().map(|(party, _)| party)
    }

    /// The current move's deadline, `None` once over.
    pub fn deadline(&self) -> Option<u64> {
        self.turn().ok().map(|(_, deadline)| deadline)
    }

    /// The outcome, `None` while the game runs.
    pub fn outcome(&self) -> Option<&Outcome> {
        match &self.status {
            Status::Over(outcome) => Some(outcome),
            _ => None,
        }
    }

    /// Rounds completed (a round is a reveal and its pick).
    pub fn rounds(&self) -> u32 {
        self.rounds
    }

    /// Most rounds the game can still take from here: `ceil(log32 width)` in this phase, plus
    /// `ceil(log32 N)` if the operator phase is still to come. `rounds() + rounds_left_bound()`
    /// never exceeds [`rounds_bound`]`(S, N)` for a game opened on a range inside `[0, S]`.
    pub fn rounds_left_bound(&self) -> u32 {
        if self.outcome().is_some() {
            return 0;
        }
        let here = ceil_log32(self.hi.saturating_sub(self.lo));
        match self.phase {
            Phase::Steps => here + ceil_log32(self.ops),
            Phase::Ops { .. } => here,
        }
    }

    /// Height of the opening or of the last move or timeout.
    pub fn height(&self) -> u64 {
        self.height
    }
}

/// Serialises a list of digests as lowercase hex strings.
fn hex32_vec<S: serde::Serializer>(digests: &[Digest], s: S) -> Result<S::Ok, S::Error> {
    s.collect_seq(digests.iter().map(hex::encode))
}
