//! Liveness: missed leader views, counted per window, jail and a downtime slash.
//!
//! Threshold certificates do not say who voted (a recovered signature is the same whichever
//! `t` partials made it), so the chain cannot see absent voters. What it can see is skipped
//! views: every view strictly between the parent block's view and this block's was nullified
//! or timed out, and each had a leader who failed to get a block notarized. Leaders come from
//! commonware's `RoundRobin::<Sha256>::default()` elector (terms of one view, no shuffle):
//!
//! ```text
//! leader(epoch, view) = participants[(epoch + view) mod n]
//! ```
//!
//! over the participants (sorted by key bytes) of the current signer generation, whose number
//! is the consensus epoch ([`super::reshare`]; generation 0 is the genesis set). The engine
//! restarts views at 0 in a new epoch; blocks carry the chain view `view_offset + engine view`
//! (the generation's [`super::reshare::Generation::view_offset`]), so the leader of chain view
//! `V` is `participants[(epoch + V - view_offset) mod n]`. A view not after its parent's
//! (which honest nodes never build) only resynchronises. A skipped view can be the next leader's fault too (a view also
//! fails when the network partitions); a window threshold (`missed_views_max` per `liveness_window_blocks`)
//! tolerates that. Counting is arithmetic per participant, so a jump of any number of views
//! costs `O(n)`.
//!
//! At `missed_views_max` in one window the leader is jailed until `height + jail_blocks` and
//! `downtime_slash_bps` of its stake is burned; a jailed validator is not counted further.

use borsh::{BorshDeserialize, BorshSerialize};

use super::{Candidate, NAME, VIEW_KEY, candidate, slash_stake, write_candidate};
use crate::address::Address;
use crate::error::TxError;
use crate::event::Event;
use crate::module::ExecContext;

/// The leader index of `(epoch, view)` among `n` participants: commonware's
/// `RoundRobinElector::elect` with rotating terms and no shuffle (`term_index(view) = view`).
pub fn leader_index(epoch: u64, view: u64, n: u64) -> u64 {
    assert!(n > 0, "no participants");
    epoch.wrapping_add(view) % n
}

/// Views in `first..=last` congruent to `index` mod `n` (the views participant `index` leads
/// in epoch 0; callers shift `index` by the epoch). View
/// `u64::MAX` is never counted: no later block could show it skipped.
pub fn led_views(first: u64, last: u64, index: u64, n: u64) -> u64 {
    let last = last.min(u64::MAX - 1);
    if first > last {
        return 0;
    }
    // Views v <= x with v mod n == index.
    let upto = |x: u64| if x < index { 0 } else { (x - index) / n + 1 };
    upto(last) - if first == 0 { 0 } else { upto(first - 1) }
}

/// The last view discontinuity: the chain's views ran one per block from `view` at `height`
/// until the block being executed, unless a later mark says otherwise.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct ViewMark {
    /// Height of the block that broke the run (0: genesis).
    pub height: u64,
    /// Its view.
    pub view: u64,
}

/// The parent's view of a block at `height`, from the last mark: every block since the mark
/// advanced the view by exactly one (any other step would have written a new mark).
pub fn parent_view(mark: ViewMark, height: u64) -> u64 {
    mark.view
        .saturating_add(height.saturating_sub(1).saturating_sub(mark.height))
}

/// The begin-block hook: charges the leaders of views skipped since the parent's.
///
/// Writes only when the view did not advance by exactly one, so a block of consecutive views
/// with nothing else to do writes nothing (a restarted node builds on such blocks without
/// their state).
pub(crate) fn begin_block(ctx: &mut ExecContext<'_, '_>) -> Result<(), TxError> {
    let (height, view) = (ctx.block.height, ctx.block.view);
    let mark: ViewMark = ctx.state.get_borsh(VIEW_KEY)?.unwrap_or_default();
    let parent = parent_view(mark, height);
    if height == 0 || view == parent.saturating_add(1) {
        return Ok(());
    }
    ctx.state
        .put_borsh(VIEW_KEY.to_vec(), &ViewMark { height, view });
    let Some(generation) = super::reshare::generation_light(
        ctx.state,
        super::reshare::current_generation_number(ctx.state)?,
    )?
    else {
        return Ok(());
    };
    if view <= parent {
        // Not a forward step (views are strictly increasing along a chain; a new engine epoch
        // restarts them): resynchronise only.
        return Ok(());
    }
    let n = generation.participants.len() as u64;
    if n == 0 {
        return Ok(());
    }
    // leader(epoch, v) = (epoch + v - view_offset) mod n: participant `index` leads the chain
    // views with v mod n == (index - epoch + view_offset) mod n.
    let shift = (generation.generation % n + n - generation.view_offset % n) % n;
    for (index, leader) in generation.participants.iter().enumerate() {
        let residue = (index as u64 + n - shift) % n;
        let missed = led_views(parent + 1, view - 1, residue, n);
        if missed > 0 {
            charge(ctx, *leader, missed)?;
        }
    }
    Ok(())
}

fn charge(ctx: &mut ExecContext<'_, '_>, leader: Address, missed: u64) -> Result<(), TxError> {
    let Some(mut record) = candidate(ctx.state, &leader)? else {
        return Ok(());
    };
    if record.jailed || record.tombstoned_at.is_some() {
        return Ok(());
    }
    let rules = &ctx.params.validators;
    let window = ctx.block.height / rules.liveness_window_blocks;
    if record.window != window {
        record.window = window;
        record.missed = 0;
    }
    let missed = u32::try_from(missed).unwrap_or(u32::MAX);
    record.missed = record.missed.saturating_add(missed);
    if record.missed >= rules.missed_views_max {
        jail(ctx, leader, &mut record)?;
    }
    write_candidate(ctx.state, &leader, &record);
    Ok(())
}

fn jail(
    ctx: &mut ExecContext<'_, '_>,
    leader: Address,
    record: &mut Candidate,
) -> Result<(), TxError> {
    let rules = &ctx.params.validators;
    let until = ctx
        .block
        .height
        .checked_add(rules.jail_blocks)
        .ok_or(TxError::Overflow("jail height"))?;
    let bps = rules.downtime_slash_bps;
    record.jailed = true;
    record.jailed_until = until;
    let slashed = slash_stake(ctx, leader, record, bps)?;
    ctx.emit(
        Event::new(NAME, "jail")
            .with("validator", leader)
            .with("missed_views", u64::from(record.missed))
            .with("jailed_until", until)
            .with("slashed", slashed),
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_parent_view_follows_the_last_mark() {
        let genesis = ViewMark::default();
        assert_eq!(parent_view(genesis, 1), 0);
        assert_eq!(parent_view(genesis, 5), 4);
        let mark = ViewMark {
            height: 7,
            view: 10,
        };
        assert_eq!(parent_view(mark, 8), 10);
        assert_eq!(parent_view(mark, 12), 14);
    }

    #[test]
    fn led_views_counts_by_residue() {
        for n in 1..6u64 {
            for first in 0..12u64 {
                for last in 0..12u64 {
                    for index in 0..n {
                        let direct = (first..=last).filter(|v| leader_index(0, *v, n) == index);
                        assert_eq!(led_views(first, last, index, n), direct.count() as u64);
                    }
                }
            }
        }
        assert_eq!(led_views(1, u64::MAX, 0, 1), u64::MAX - 1);
        assert_eq!(led_views(0, u64::MAX, 1, 2), u64::MAX / 2);
    }
}
