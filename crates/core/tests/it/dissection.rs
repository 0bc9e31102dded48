//! The 32-way dissection game (`poi::dissection`): the split rule, the round bound, the honest
//! side winning against a cheating one, deadlines, and every refusal.

use borsh::BorshDeserialize;
use poi_core::poi::dissection::{
    Digest, Dissection, DissectionError, DissectionParams, Move, Opening, Outcome, Party, Phase,
    PhaseKind, RefereeTask, Status, blocks_bound, ceil_log32, rounds_bound, split_points,
};
use proptest::prelude::*;

const MOVE_BLOCKS: u64 = 20;

fn params() -> DissectionParams {
    DissectionParams {
        move_blocks: MOVE_BLOCKS,
    }
}

fn h(tag: &str, a: u64, b: u64) -> Digest {
    let mut hasher = blake3::Hasher::new();
    hasher.update(tag.as_bytes());
    hasher.update(&a.to_le_bytes());
    hasher.update(&b.to_le_bytes());
    *hasher.finalize().as_bytes()
}

/// The true step digest after `k` steps (leaf 0 is the initial state).
fn truth_leaf(k: u64) -> Digest {
    h("truth/leaf", k, 0)
}

/// The true state after the first `k` of the `n` operators of step `s`: point 0 is leaf
/// `s - 1` and point `n` is leaf `s`, as the module defines.
fn truth_point(s: u64, k: u64, n: u64) -> Digest {
    if k == 0 {
        truth_leaf(s - 1)
    } else if k == n {
        truth_leaf(s)
    } else {
        h("truth/op", s, k)
    }
}

/// What a digest source says for point `point` of the given phase.
trait Oracle {
    fn leaf(&self, k: u64) -> Digest;
    fn point(&self, s: u64, k: u64, n: u64) -> Digest;
    fn at(&self, phase: &Phase, p: u64, n: u64) -> Digest {
        match phase {
            Phase::Steps => self.leaf(p),
            Phase::Ops { step, .. } => self.point(*step, p, n),
        }
    }
}

struct Truth;

impl Oracle for Truth {
    fn leaf(&self, k: u64) -> Digest {
        truth_leaf(k)
    }
    fn point(&self, s: u64, k: u64, n: u64) -> Digest {
        truth_point(s, k, n)
    }
}

/// A defender whose work first goes wrong at operator `op` of step `step`: every digest
/// before that divergence is true, every one after it is false (cumulative digests cannot
/// return to the truth once they leave it).
struct Liar {
    step: u64,
    op: u64,
}

impl Oracle for Liar {
    fn leaf(&self, k: u64) -> Digest {
        if k < self.step {
            truth_leaf(k)
        } else {
            h("lie/leaf", k, 0)
        }
    }
    fn point(&self, s: u64, k: u64, n: u64) -> Digest {
        if s != self.step {
            // Never reached against an honest challenger; the test asserts the step.
            h("lie/other-step", s, k)
        } else if k <= self.op {
            truth_point(s, k, n)
        } else if k == n {
            self.leaf(s)
        } else {
            h("lie/op", s, k)
        }
    }
}

/// The defender's digest for pivot `j` of the current range while a pick is due.
fn defender_at(game: &Dissection, j: u32) -> Digest {
    let m = game.pivots().len() as u32 + 1;
    if j == 0 {
        game.agreed()
    } else if j == m {
        game.disputed().0
    } else {
        game.pivots()[j as usize - 1]
    }
}

/// The challenger that knows the truth: the first sub-range whose left end is true and whose
/// right end is not, with the true digest of the right end as its claim.
fn honest_pick(game: &Dissection) -> (u32, Digest) {
    let m = game.pivots().len() as u32 + 1;
    for j in 1..=m {
        let (left, right) = game.sub_range(j).expect("in range");
        let n = game.ops();
        let left_true = defender_at(game, j - 1) == Truth.at(game.phase(), left, n);
        let right_true = defender_at(game, j) == Truth.at(game.phase(), right, n);
        if left_true && !right_true {
            return (j, Truth.at(game.phase(), right, n));
        }
    }
    panic!("the range holds no divergence: lo is false or hi is true");
}

/// Tiny deterministic generator for delays and a lying challenger's choices.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        // xorshift64*; the state is never 0.
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// Drives a game to its end with `defender` revealing and `pick` choosing, each move at a
/// random height within its deadline, and checks on every state that the round and block
/// bounds hold. `check` sees every state. Returns the outcome.
fn drive(
    game: &mut Dissection,
    defender: &dyn Oracle,
    pick: &mut dyn FnMut(&Dissection) -> (u32, Digest),
    rng: &mut Rng,
    check: &mut dyn FnMut(&Dissection),
) -> Outcome {
    let opened = game.height();
    let bound = rounds_bound(game.steps(), game.ops());
    let blocks = blocks_bound(game.steps(), game.ops(), MOVE_BLOCKS).expect("fits");
    loop {
        check(game);
        assert!(game.rounds() + game.rounds_left_bound() <= bound);
        if let Some(deadline) = game.deadline() {
            assert!(
                deadline <= opened + blocks,
                "deadline {deadline} past the block bound"
            );
        }
        match game.status().clone() {
            Status::AwaitingReveal { deadline } => {
                let phase = game.phase().clone();
                let digests = game
                    .pending_points()
                    .into_iter()
                    .map(|p| defender.at(&phase, p, game.ops()))
                    .collect();
                let now = game.height() + rng.below(deadline - game.height() + 1);
                let mv = Move::Reveal {
                    phase: phase.kind(),
                    digests,
                };
                game.apply(Party::Defender, &mv, now)
                    .expect("reveal accepted");
            }
            Status::AwaitingPick { deadline } => {
                let (index, claim) = pick(game);
                let now = game.height() + rng.below(deadline - game.height() + 1);
                let mv = Move::Pick {
                    phase: game.phase().kind(),
                    index,
                    claim,
                };
                game.apply(Party::Challenger, &mv, now)
                    .expect("pick accepted");
            }
            Status::Over(outcome) => {
                assert!(game.rounds() <= bound);
                return outcome;
            }
        }
    }
}

fn referee_task(outcome: Outcome) -> RefereeTask {
    match outcome {
        Outcome::Referee(task) => task,
        other => panic!("expected a referee task, got {other:?}"),
    }
}

/// An honest challenger against a defender lying from `(d, op)` on, over the whole job.
fn honest_challenger_run(steps: u64, ops: u64, d: u64, op: u64, seed: u64) -> (RefereeTask, u32) {
    let liar = Liar { step: d, op };
    let opening = Opening::full(
        steps,
        ops,
        truth_leaf(0),
        liar.leaf(steps),
        truth_leaf(steps),
    );
    let mut game = Dissection::open(params(), &opening, 1_000).expect("opens");
    let mut rng = Rng(seed | 1);
    let outcome = drive(&mut game, &liar, &mut honest_pick, &mut rng, &mut |_| {});
    (referee_task(outcome), game.rounds())
}

/// The task the referees get when the first divergence is operator `op` of step `d`.
fn expected_task(ops: u64, d: u64, op: u64) -> RefereeTask {
    let liar = Liar { step: d, op };
    RefereeTask {
        step: d,
        op,
        step_input: truth_leaf(d - 1),
        input: truth_point(d, op, ops),
        expected: liar.point(d, op + 1, ops),
        claim: truth_point(d, op + 1, ops),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1_000))]

    /// An honest challenger against a defender whose digests are true before the first
    /// divergence `(d, op)` and false after it always ends at exactly `(d, op)`: the task's
    /// input is the true state before operator `op` of step `d`, the defender's expected
    /// output is its false one and the challenger's claim the true one (so the referee, who
    /// computes the true output, finds the defender wrong), within `rounds_bound(S, N)`.
    #[test]
    fn honest_challenger_finds_the_first_divergence(
        steps in 1..=100_000u64,
        ops in 1..=5_000u64,
        d_seed: u64,
        op_seed: u64,
        seed: u64,
    ) {
        let d = 1 + d_seed % steps;
        let op = op_seed % ops;
        let (task, rounds) = honest_challenger_run(steps, ops, d, op, seed);
        prop_assert_eq!(&task, &expected_task(ops, d, op));
        prop_assert!(rounds <= rounds_bound(steps, ops));
        // The referee re-runs the one operator on the agreed input and gets the truth.
        prop_assert_eq!(task.input, truth_point(task.step, task.op, ops));
        prop_assert_ne!(truth_point(task.step, task.op + 1, ops), task.expected);
    }

    /// An honest defender against a challenger that opens on any range with a false claim
    /// and then picks sub-ranges and claims digests at random: on every state of the game,
    /// the agreed digest of `lo` and the defender's digest of `hi` are the true ones, so the
    /// challenger can never narrow to a range where the defender's digests are inconsistent
    /// with the truth. At the end, the task's input is the true state before operator `i` and
    /// its expected output is the true output, which the referee computes: the defender is
    /// right, and the challenger's claim differs from it. The round bound holds throughout.
    #[test]
    fn lying_challenger_never_corners_an_honest_defender(
        steps in 1..=100_000u64,
        ops in 1..=5_000u64,
        lo_seed: u64,
        hi_seed: u64,
        seed: u64,
    ) {
        let lo = lo_seed % steps;
        let hi = lo + 1 + hi_seed % (steps - lo);
        let opening = Opening {
            steps,
            ops,
            lo,
            hi,
            agreed: truth_leaf(lo),
            defender: truth_leaf(hi),
            challenger: h("liar/claim", hi, 0),
        };
        let mut game = Dissection::open(params(), &opening, 7).expect("opens");
        let mut rng = Rng(seed | 1);
        let mut choices = Rng(seed.rotate_left(17) | 1);
        let mut random_pick = |game: &Dissection| {
            let m = game.pivots().len() as u32 + 1;
            let j = 1 + choices.below(u64::from(m)) as u32;
            // The claim for the old `hi` cannot change; any other claim is a fresh lie.
            let claim = if j == m {
                game.disputed().1
            } else {
                h("liar/pick", choices.next(), 0)
            };
            (j, claim)
        };
        let mut consistent = |game: &Dissection| {
            let (lo, hi) = game.range();
            let n = game.ops();
            assert_eq!(game.agreed(), Truth.at(game.phase(), lo, n));
            assert_eq!(game.disputed().0, Truth.at(game.phase(), hi, n));
        };
        let outcome = drive(&mut game, &Truth, &mut random_pick, &mut rng, &mut consistent);
        let task = referee_task(outcome);
        prop_assert!(task.step > lo && task.step <= hi);
        prop_assert!(task.op < ops);
        prop_assert_eq!(task.step_input, truth_leaf(task.step - 1));
        prop_assert_eq!(task.input, truth_point(task.step, task.op, ops));
        prop_assert_eq!(task.expected, truth_point(task.step, task.op + 1, ops));
        prop_assert_ne!(task.claim, task.expected);
        prop_assert!(game.rounds() <= rounds_bound(steps, ops));
    }

    /// The split rule: `min(32, w) - 1` strictly increasing interior pivots, sub-ranges at
    /// most `ceil(w / 32)` wide, for any range in `u64` (extremes included).
    #[test]
    fn split_is_even_and_increasing(lo_seed: u64, width_seed: u64, small in 1..100u64) {
        for (lo, width) in [(lo_seed, small), (lo_seed / 2, width_seed / 2 + 1), (0, u64::MAX)] {
            let Some(hi) = lo.checked_add(width) else { continue };
            let points = split_points(lo, hi).expect("non-empty range");
            prop_assert_eq!(points.len() as u64, width.min(32) - 1);
            let mut all = vec![lo];
            all.extend(&points);
            all.push(hi);
            let widest = width.div_ceil(32).max(1);
            for pair in all.windows(2) {
                prop_assert!(pair[0] < pair[1]);
                prop_assert!(pair[1] - pair[0] <= widest);
            }
        }
    }
}

#[test]
fn honest_challenger_edge_cases() {
    for (steps, ops, d, op) in [
        (1, 1, 1, 0),
        (1, 5_000, 1, 4_999),
        (100_000, 1, 100_000, 0),
        (100_000, 5_000, 1, 0),
        (100_000, 5_000, 100_000, 4_999),
        (32, 32, 32, 31),
        (33, 33, 33, 32),
        (u64::MAX, u64::MAX, u64::MAX, u64::MAX - 1),
        (u64::MAX, u64::MAX, 1, 0),
        (u64::MAX, 4_096, u64::MAX / 3, 1_234),
    ] {
        let (task, rounds) = honest_challenger_run(steps, ops, d, op, 42);
        assert_eq!(task, expected_task(ops, d, op), "S {steps} N {ops}");
        assert!(rounds <= rounds_bound(steps, ops));
    }
}

/// With `S` and `N` powers of 32 every sub-range is equally wide, so every run takes
/// exactly the bound: it is tight.
#[test]
fn bound_is_reached_on_powers_of_32() {
    for (d, op) in [(1, 0), (512, 77), (1_024, 1_023), (333, 1_000)] {
        let (task, rounds) = honest_challenger_run(1_024, 1_024, d, op, 9);
        assert_eq!(task, expected_task(1_024, d, op));
        assert_eq!(rounds, 4);
    }
}

#[test]
fn rounds_bound_values() {
    assert_eq!(ceil_log32(0), 0);
    assert_eq!(ceil_log32(1), 0);
    assert_eq!(ceil_log32(2), 1);
    assert_eq!(ceil_log32(32), 1);
    assert_eq!(ceil_log32(33), 2);
    assert_eq!(ceil_log32(1_024), 2);
    assert_eq!(ceil_log32(1_025), 3);
    assert_eq!(ceil_log32(1 << 25), 5);
    assert_eq!(ceil_log32((1 << 25) + 1), 6);
    assert_eq!(ceil_log32(u64::MAX), 13);
    // The design's examples: S = 300, N about 150 is 2 + 2; STEPS_MAX 2^24, OPS_MAX 4,096
    // is 5 + 3, and with move_blocks 20 that is 320 blocks of moves.
    assert_eq!(rounds_bound(300, 150), 4);
    assert_eq!(rounds_bound(1 << 24, 4_096), 8);
    assert_eq!(blocks_bound(1 << 24, 4_096, 20), Some(320));
    assert_eq!(rounds_bound(100_000, 5_000), 7);
    assert_eq!(rounds_bound(u64::MAX, u64::MAX), 26);
    assert_eq!(blocks_bound(u64::MAX, u64::MAX, u64::MAX), None);
    // Against the definition: the least k with 32^k >= n.
    for n in 1..5_000u64 {
        let k = ceil_log32(n);
        assert!(32u64.pow(k) >= n);
        assert!(k == 0 || 32u64.pow(k - 1) < n);
    }
}

#[test]
fn split_rule_examples() {
    assert_eq!(split_points(5, 5), None);
    assert_eq!(split_points(6, 5), None);
    assert_eq!(split_points(5, 6), Some(vec![]));
    assert_eq!(split_points(0, 4), Some(vec![1, 2, 3]));
    assert_eq!(split_points(10, 42), Some((11..42).collect()));
    // w = 100: p_j = ceil(100 j / 32).
    let points = split_points(0, 100).unwrap();
    assert_eq!(&points[..5], &[4, 7, 10, 13, 16]);
    assert_eq!(points[30], 97);
}

// ---- the game step by step, timeouts and refusals ----

const OPENED: u64 = 100;

/// A game on `[0, 100]` with 50 operators: the defender must reveal 31 digests.
fn game() -> Dissection {
    let opening = Opening::full(100, 50, truth_leaf(0), h("lie", 100, 0), truth_leaf(100));
    Dissection::open(params(), &opening, OPENED).unwrap()
}

fn reveal(game: &Dissection) -> Move {
    let phase = game.phase().clone();
    Move::Reveal {
        phase: phase.kind(),
        digests: game
            .pending_points()
            .into_iter()
            .map(|p| h("revealed", p, 0))
            .collect(),
    }
}

/// The game after the first reveal, waiting for the challenger's pick.
fn revealed() -> Dissection {
    let mut g = game();
    let mv = reveal(&g);
    g.apply(Party::Defender, &mv, OPENED + 1).unwrap();
    g
}

/// A game in the operator phase (opened on a width-1 step range), a reveal due.
fn ops_game() -> Dissection {
    let opening = Opening {
        steps: 10,
        ops: 40,
        lo: 3,
        hi: 4,
        agreed: truth_leaf(3),
        defender: h("lie", 4, 0),
        challenger: truth_leaf(4),
    };
    Dissection::open(params(), &opening, OPENED).unwrap()
}

fn refused(game: &mut Dissection, who: Party, mv: &Move, now: u64) -> DissectionError {
    let before = game.clone();
    let err = game.apply(who, mv, now).unwrap_err();
    assert_eq!(
        *game, before,
        "a refused move must leave the game unchanged"
    );
    err
}

#[test]
fn opening_state() {
    let g = game();
    assert_eq!(g.phase(), &Phase::Steps);
    assert_eq!(g.range(), (0, 100));
    assert_eq!(g.mover(), Some(Party::Defender));
    assert_eq!(g.deadline(), Some(OPENED + MOVE_BLOCKS));
    assert_eq!(g.pending_points(), split_points(0, 100).unwrap());
    assert_eq!(g.rounds(), 0);
    assert_eq!(g.rounds_left_bound(), rounds_bound(100, 50));

    let g = revealed();
    assert_eq!(g.mover(), Some(Party::Challenger));
    assert_eq!(g.deadline(), Some(OPENED + 1 + MOVE_BLOCKS));
    assert_eq!(g.pivots().len(), 31);
    assert!(g.pending_points().is_empty());
    assert_eq!(g.sub_range(0), None);
    assert_eq!(g.sub_range(1), Some((0, 4)));
    assert_eq!(g.sub_range(32), Some((97, 100)));
    assert_eq!(g.sub_range(33), None);
}

#[test]
fn width_one_opening_goes_straight_to_ops_or_referee() {
    let g = ops_game();
    assert_eq!(
        g.phase(),
        &Phase::Ops {
            step: 4,
            step_input: truth_leaf(3),
            defender_output: h("lie", 4, 0),
            challenger_output: truth_leaf(4),
        }
    );
    assert_eq!(g.range(), (0, 40));
    assert_eq!(g.mover(), Some(Party::Defender));

    let opening = Opening::full(1, 1, truth_leaf(0), h("lie", 1, 0), truth_leaf(1));
    let g = Dissection::open(params(), &opening, OPENED).unwrap();
    assert_eq!(
        g.outcome(),
        Some(&Outcome::Referee(RefereeTask {
            step: 1,
            op: 0,
            step_input: truth_leaf(0),
            input: truth_leaf(0),
            expected: h("lie", 1, 0),
            claim: truth_leaf(1),
        }))
    );
    assert_eq!(g.rounds(), 0);
    assert_eq!(g.mover(), None);
    assert_eq!(g.deadline(), None);
}

#[test]
fn defender_missing_its_deadline_loses() {
    for mut g in [game(), ops_game()] {
        let deadline = g.deadline().unwrap();
        assert_eq!(
            g.timeout(deadline),
            Err(DissectionError::DeadlineNotReached {
                height: deadline,
                deadline
            })
        );
        assert_eq!(g.timeout(deadline + 1), Ok(Party::Defender));
        assert_eq!(
            g.outcome(),
            Some(&Outcome::Forfeit {
                loser: Party::Defender
            })
        );
        assert_eq!(g.height(), deadline + 1);
    }
}

#[test]
fn challenger_missing_its_deadline_loses() {
    let mut ops = ops_game();
    let mv = reveal(&ops);
    ops.apply(Party::Defender, &mv, OPENED + 20).unwrap();
    for mut g in [revealed(), ops] {
        let deadline = g.deadline().unwrap();
        assert!(matches!(
            g.timeout(deadline - 1),
            Err(DissectionError::DeadlineNotReached { .. })
        ));
        assert_eq!(g.timeout(deadline + 5), Ok(Party::Challenger));
        assert_eq!(
            g.outcome(),
            Some(&Outcome::Forfeit {
                loser: Party::Challenger
            })
        );
        assert!(g.pivots().is_empty());
    }
}

#[test]
fn moves_at_and_after_the_deadline() {
    // At the deadline: accepted.
    let mut g = game();
    let mv = reveal(&g);
    g.apply(Party::Defender, &mv, OPENED + MOVE_BLOCKS).unwrap();
    let deadline = g.deadline().unwrap();
    let pick = Move::Pick {
        phase: PhaseKind::Steps,
        index: 1,
        claim: truth_leaf(4),
    };
    g.apply(Party::Challenger, &pick, deadline).unwrap();

    // One block after: refused, for either side.
    let mut g = game();
    let mv = reveal(&g);
    assert_eq!(
        refused(&mut g, Party::Defender, &mv, OPENED + MOVE_BLOCKS + 1),
        DissectionError::DeadlinePassed {
            height: OPENED + MOVE_BLOCKS + 1,
            deadline: OPENED + MOVE_BLOCKS
        }
    );
    let mut g = revealed();
    let deadline = g.deadline().unwrap();
    assert_eq!(
        refused(&mut g, Party::Challenger, &pick, deadline + 1),
        DissectionError::DeadlinePassed {
            height: deadline + 1,
            deadline
        }
    );
}

#[test]
fn no_move_after_the_game_ended() {
    // Ended by a timeout.
    let mut g = game();
    g.timeout(OPENED + MOVE_BLOCKS + 1).unwrap();
    let mv = reveal(&game());
    assert_eq!(
        refused(&mut g, Party::Defender, &mv, OPENED + 22),
        DissectionError::GameOver
    );
    assert_eq!(g.timeout(OPENED + 1_000), Err(DissectionError::GameOver));

    // Ended with a referee task.
    let (steps, ops) = (3, 2);
    let liar = Liar { step: 2, op: 1 };
    let opening = Opening::full(
        steps,
        ops,
        truth_leaf(0),
        liar.leaf(steps),
        truth_leaf(steps),
    );
    let mut g = Dissection::open(params(), &opening, OPENED).unwrap();
    drive(&mut g, &liar, &mut honest_pick, &mut Rng(3), &mut |_| {});
    let pick = Move::Pick {
        phase: PhaseKind::Ops,
        index: 1,
        claim: truth_leaf(0),
    };
    let now = g.height();
    assert_eq!(
        refused(&mut g, Party::Challenger, &pick, now),
        DissectionError::GameOver
    );
    assert_eq!(g.timeout(now + 1_000), Err(DissectionError::GameOver));
}

#[test]
fn wrong_party() {
    let mut g = game();
    // A reveal is the defender's move, whoever's turn it is.
    let mv = reveal(&g);
    assert_eq!(
        refused(&mut g, Party::Challenger, &mv, OPENED),
        DissectionError::WrongParty {
            expected: Party::Defender,
            got: Party::Challenger
        }
    );
    // A pick is the challenger's.
    let pick = Move::Pick {
        phase: PhaseKind::Steps,
        index: 1,
        claim: truth_leaf(4),
    };
    assert_eq!(
        refused(&mut g, Party::Defender, &pick, OPENED),
        DissectionError::WrongParty {
            expected: Party::Challenger,
            got: Party::Defender
        }
    );
    // The challenger picking before the reveal: not its turn.
    assert_eq!(
        refused(&mut g, Party::Challenger, &pick, OPENED),
        DissectionError::WrongParty {
            expected: Party::Defender,
            got: Party::Challenger
        }
    );
    // The defender revealing again while the pick is due.
    let mut g = revealed();
    assert_eq!(
        refused(&mut g, Party::Defender, &mv, OPENED + 2),
        DissectionError::WrongParty {
            expected: Party::Challenger,
            got: Party::Defender
        }
    );
}

#[test]
fn wrong_phase() {
    let mut g = game();
    let Move::Reveal { digests, .. } = reveal(&g) else {
        unreachable!()
    };
    let mv = Move::Reveal {
        phase: PhaseKind::Ops,
        digests,
    };
    assert_eq!(
        refused(&mut g, Party::Defender, &mv, OPENED),
        DissectionError::WrongPhase {
            expected: PhaseKind::Steps,
            got: PhaseKind::Ops
        }
    );
    let mut g = ops_game();
    let Move::Reveal { digests, .. } = reveal(&g) else {
        unreachable!()
    };
    let mv = Move::Reveal {
        phase: PhaseKind::Steps,
        digests,
    };
    assert_eq!(
        refused(&mut g, Party::Defender, &mv, OPENED),
        DissectionError::WrongPhase {
            expected: PhaseKind::Ops,
            got: PhaseKind::Steps
        }
    );
    let mut g = revealed();
    let pick = Move::Pick {
        phase: PhaseKind::Ops,
        index: 1,
        claim: truth_leaf(4),
    };
    assert!(matches!(
        refused(&mut g, Party::Challenger, &pick, OPENED + 2),
        DissectionError::WrongPhase { .. }
    ));
}

#[test]
fn wrong_number_of_digests() {
    let mut g = game();
    for got in [0, 1, 30, 32, 100] {
        let mv = Move::Reveal {
            phase: PhaseKind::Steps,
            digests: vec![[7; 32]; got],
        };
        assert_eq!(
            refused(&mut g, Party::Defender, &mv, OPENED),
            DissectionError::WrongDigestCount {
                expected: 31,
                got: got as u64
            }
        );
    }
    // Under 32 wide, every interior point: a range of 4 needs 3.
    let opening = Opening::full(4, 1, truth_leaf(0), h("lie", 4, 0), truth_leaf(4));
    let mut g = Dissection::open(params(), &opening, OPENED).unwrap();
    let mv = Move::Reveal {
        phase: PhaseKind::Steps,
        digests: vec![[7; 32]; 31],
    };
    assert_eq!(
        refused(&mut g, Party::Defender, &mv, OPENED),
        DissectionError::WrongDigestCount {
            expected: 3,
            got: 31
        }
    );
}

#[test]
fn pick_out_of_range() {
    let mut g = revealed();
    for index in [0, 33, u32::MAX] {
        let pick = Move::Pick {
            phase: PhaseKind::Steps,
            index,
            claim: truth_leaf(0),
        };
        assert_eq!(
            refused(&mut g, Party::Challenger, &pick, OPENED + 2),
            DissectionError::PickOutOfRange { index, max: 32 }
        );
    }
}

#[test]
fn claims_must_dispute_and_stay_fixed() {
    let mut g = revealed();
    // Claiming the defender's own digest for p_1 = 4 is agreeing with it.
    let pick = Move::Pick {
        phase: PhaseKind::Steps,
        index: 1,
        claim: h("revealed", 4, 0),
    };
    assert_eq!(
        refused(&mut g, Party::Challenger, &pick, OPENED + 2),
        DissectionError::ClaimAgrees { point: 4 }
    );
    // The last sub-range keeps the claim for `hi` made at the opening.
    let pick = Move::Pick {
        phase: PhaseKind::Steps,
        index: 32,
        claim: h("another", 100, 0),
    };
    assert_eq!(
        refused(&mut g, Party::Challenger, &pick, OPENED + 2),
        DissectionError::ClaimChanged { point: 100 }
    );
    let pick = Move::Pick {
        phase: PhaseKind::Steps,
        index: 32,
        claim: truth_leaf(100),
    };
    g.apply(Party::Challenger, &pick, OPENED + 2).unwrap();
    assert_eq!(g.range(), (97, 100));
    assert_eq!(g.agreed(), h("revealed", 97, 0));
    assert_eq!(g.disputed(), (h("lie", 100, 0), truth_leaf(100)));
    assert_eq!(g.rounds(), 1);
    assert_eq!(g.mover(), Some(Party::Defender));
    assert_eq!(g.deadline(), Some(OPENED + 2 + MOVE_BLOCKS));
}

#[test]
fn bad_openings() {
    let good = Opening::full(10, 5, truth_leaf(0), h("lie", 10, 0), truth_leaf(10));
    assert_eq!(
        Dissection::open(DissectionParams { move_blocks: 0 }, &good, 0),
        Err(DissectionError::InvalidParams)
    );
    assert_eq!(
        Dissection::open(
            params(),
            &Opening {
                ops: 0,
                ..good.clone()
            },
            0
        ),
        Err(DissectionError::NoOps)
    );
    for (steps, lo, hi) in [(0, 0, 0), (10, 5, 5), (10, 6, 5), (10, 0, 11), (10, 10, 10)] {
        let opening = Opening {
            steps,
            lo,
            hi,
            ..good.clone()
        };
        assert_eq!(
            Dissection::open(params(), &opening, 0),
            Err(DissectionError::InvalidRange { lo, hi, steps })
        );
    }
    let agrees = Opening {
        challenger: good.defender,
        ..good.clone()
    };
    assert_eq!(
        Dissection::open(params(), &agrees, 0),
        Err(DissectionError::ClaimAgrees { point: 10 })
    );
    assert_eq!(
        Dissection::open(params(), &good, u64::MAX - 19),
        Err(DissectionError::HeightOverflow {
            height: u64::MAX - 19
        })
    );
    assert!(Dissection::open(params(), &good, u64::MAX - 20).is_ok());
}

#[test]
fn heights_never_go_back() {
    let mut g = revealed();
    let pick = Move::Pick {
        phase: PhaseKind::Steps,
        index: 1,
        claim: truth_leaf(4),
    };
    assert_eq!(
        refused(&mut g, Party::Challenger, &pick, OPENED),
        DissectionError::StaleHeight {
            height: OPENED,
            last: OPENED + 1
        }
    );
    let before = g.clone();
    assert_eq!(
        g.timeout(0),
        Err(DissectionError::StaleHeight {
            height: 0,
            last: OPENED + 1
        })
    );
    assert_eq!(g, before);
}

#[test]
fn deadline_overflow_on_a_move() {
    let opening = Opening::full(100, 50, truth_leaf(0), h("lie", 100, 0), truth_leaf(100));
    let mut g = Dissection::open(params(), &opening, u64::MAX - 20).unwrap();
    let mv = reveal(&g);
    assert_eq!(
        refused(&mut g, Party::Defender, &mv, u64::MAX),
        DissectionError::HeightOverflow { height: u64::MAX }
    );
}

/// Byte offsets in the borsh encoding of `Dissection`: params (8), steps (8), ops (8), the
/// phase tag (1, `Steps` has no data), then `lo` and `hi`.
const HI_OFFSET: usize = 8 + 8 + 8 + 1 + 8;

fn corrupt_hi(game: &Dissection, hi: u64) -> Dissection {
    let mut bytes = borsh::to_vec(game).unwrap();
    bytes[HI_OFFSET..HI_OFFSET + 8].copy_from_slice(&hi.to_le_bytes());
    Dissection::try_from_slice(&bytes).unwrap()
}

#[test]
fn corrupted_states_are_refused_not_panicked_on() {
    let pick = Move::Pick {
        phase: PhaseKind::Steps,
        index: 1,
        claim: truth_leaf(4),
    };
    // An empty range.
    let mut g = corrupt_hi(&revealed(), 0);
    assert_eq!(g.range(), (0, 0));
    assert_eq!(
        refused(&mut g, Party::Challenger, &pick, OPENED + 2),
        DissectionError::Inconsistent("empty range")
    );
    // 31 pivots stored for a range that has 9.
    let mut g = corrupt_hi(&revealed(), 10);
    assert_eq!(
        refused(&mut g, Party::Challenger, &pick, OPENED + 2),
        DissectionError::Inconsistent("pivot count")
    );
    // A reveal due on a range of width 1.
    let mut g = corrupt_hi(&game(), 1);
    let mv = Move::Reveal {
        phase: PhaseKind::Steps,
        digests: vec![],
    };
    assert_eq!(
        refused(&mut g, Party::Defender, &mv, OPENED),
        DissectionError::Inconsistent("reveal due on a width-1 range")
    );
}

#[test]
fn borsh_round_trip_in_every_status() {
    let mut over = game();
    over.timeout(OPENED + 100).unwrap();
    for g in [game(), revealed(), ops_game(), over] {
        let bytes = borsh::to_vec(&g).unwrap();
        assert_eq!(Dissection::try_from_slice(&bytes).unwrap(), g);
    }
}

#[test]
fn error_codes_are_distinct() {
    let errors = [
        DissectionError::InvalidParams,
        DissectionError::InvalidRange {
            lo: 0,
            hi: 0,
            steps: 0,
        },
        DissectionError::NoOps,
        DissectionError::ClaimAgrees { point: 0 },
        DissectionError::ClaimChanged { point: 0 },
        DissectionError::GameOver,
        DissectionError::WrongParty {
            expected: Party::Defender,
            got: Party::Challenger,
        },
        DissectionError::WrongPhase {
            expected: PhaseKind::Steps,
            got: PhaseKind::Ops,
        },
        DissectionError::WrongDigestCount {
            expected: 0,
            got: 1,
        },
        DissectionError::PickOutOfRange { index: 0, max: 1 },
        DissectionError::DeadlinePassed {
            height: 1,
            deadline: 0,
        },
        DissectionError::DeadlineNotReached {
            height: 0,
            deadline: 1,
        },
        DissectionError::StaleHeight { height: 0, last: 1 },
        DissectionError::HeightOverflow { height: 0 },
        DissectionError::Inconsistent("x"),
    ];
    let mut codes: Vec<_> = errors.iter().map(DissectionError::code).collect();
    codes.sort_unstable();
    codes.dedup();
    assert_eq!(codes.len(), errors.len());
    assert_eq!(Party::Defender.other(), Party::Challenger);
    assert_eq!(DissectionParams::default().move_blocks, 20);
}
