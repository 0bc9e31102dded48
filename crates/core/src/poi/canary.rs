//! Canary jobs: forced errors that catch validators who attest without re-executing (the
//! forced errors of Truebit).
//!
//! Governance sets `poi.canary_root`, the root ([`super::merkle`]) of `poi.canary_leaves`
//! leaves `blake3("poi/canary-id/v1" | client | provider | blake3(secret_i))`, one per canary
//! an issuer may run. An issuer is a pair of ordinary-looking identities, a client and a
//! provider: when the market matches one of its client's jobs to its provider, the provider
//! commits digests that are wrong from some step of every segment on (so any drawn segment is
//! wrong and only a real re-execution finds out) with `sealed = blake3("poi/canary/v1" | job |
//! secret_i)`; honest agents fill `sealed` at random, so a canary looks like any job. The leaf
//! names both identities, so a canary can only ever be a job between the pair: nobody else's
//! escrow pays for planted work.
//!
//! Once the job is drawn (best after every spot check is answered), the issuer posts
//! `RevealCanary` with the secret and the leaf's proof. Then:
//! - every `match` on the canary, by a spot checker or a referee, is laziness: the validator
//!   loses `lazy_slash_bps` of its bond (burned), the units it was credited, and is jailed for
//!   `jail_blocks`; a [`super::checks::SlashRecord`] says so (`lazy_validator`);
//! - every accusation earns its validator the check's units again (double credit);
//! - accusations still being refereed end at once (their open re-checks are waived), so nobody
//!   is slashed for the planted errors, and the job settles: the market pays the issuer's
//!   provider identity from its client identity, so a canary costs the issuer only fees;
//! - verdicts that arrive after the reveal are judged the same way as they come in.
//!
//! An issuer that never reveals is treated as the cheat it looks like: honest validators'
//! mismatches are upheld and its provider identity is slashed.

use crate::address::Address;
use crate::error::TxError;
use crate::event::Event;
use crate::market;
use crate::module::ExecContext;
use crate::staking;
use crate::supply::{self, BurnReason};

use super::NAME;
use super::checks::{Check, CheckStatus, SlashRecord, Verdict, append_slash, job_checks};
use super::merkle;
use super::records::{PoiStatus, job_or_err, read_verifier, write_job, write_verifier};

/// `blake3("poi/canary-id/v1" | client | provider | blake3(secret))`: a leaf of
/// `canary_root`.
pub fn canary_leaf(client: &Address, provider: &Address, secret: &[u8; 32]) -> [u8; 32] {
    let mut h = blake3::Hasher::new();
    h.update(b"poi/canary-id/v1");
    h.update(client.as_bytes());
    h.update(provider.as_bytes());
    h.update(blake3::hash(secret).as_bytes());
    *h.finalize().as_bytes()
}

/// `blake3("poi/canary/v1" | job u64 LE | secret)`: the `sealed` field of a canary commit.
pub fn canary_seal(job: u64, secret: &[u8; 32]) -> [u8; 32] {
    let mut h = blake3::Hasher::new();
    h.update(b"poi/canary/v1");
    h.update(&job.to_le_bytes());
    h.update(secret);
    *h.finalize().as_bytes()
}

/// `RevealCanary` by the job's owner or provider.
pub(crate) fn reveal(
    ctx: &mut ExecContext<'_, '_>,
    signer: Address,
    id: u64,
    secret: [u8; 32],
    leaf_index: u64,
    proof: &[[u8; 32]],
) -> Result<(), TxError> {
    let mut job = job_or_err(ctx.state, id)?;
    let mj = market::job(ctx.state, id)?.ok_or(TxError::UnknownJob(id))?;
    if signer != mj.owner && Some(signer) != mj.provider {
        return Err(TxError::NotJobOwner {
            job: id,
            owner: mj.owner,
            signer,
        });
    }
    let commitment = job.commitment.as_ref().ok_or(TxError::BadJobState {
        job: id,
        state: "not committed",
        expected: "committed and checked",
    })?;
    if job.canary_revealed {
        return Err(TxError::BadJobState {
            job: id,
            state: "a revealed canary",
            expected: "a canary not yet revealed",
        });
    }
    if canary_seal(id, &secret) != commitment.sealed {
        return Err(TxError::InvalidMessage(format!(
            "job {id} is not sealed with this secret"
        )));
    }
    let params = &ctx.params.poi;
    let root = params
        .canary_root
        .ok_or_else(|| TxError::InvalidMessage("governance has set no canary root".into()))?;
    let provider = mj.provider.ok_or(TxError::NotPoiJob(id))?;
    merkle::verify(
        leaf_index,
        params.canary_leaves,
        proof,
        &canary_leaf(&mj.owner, &provider, &secret),
        &root,
    )
    .map_err(|e| TxError::InvalidMessage(format!("not a canary issuer's secret: {e}")))?;
    let checks = job_checks(ctx.state, id)?;
    let ready = match job.status {
        PoiStatus::Verified => true,
        PoiStatus::Verifying => job.randomness.is_some(),
        PoiStatus::Submitted | PoiStatus::Failed => false,
    };
    if !ready {
        return Err(TxError::BadJobState {
            job: id,
            state: "not yet drawn, or failed",
            expected: "drawn and verifying, or verified",
        });
    }
    job.canary_revealed = true;
    write_job(ctx.state, &job);
    ctx.emit(Event::new(NAME, "canary_revealed").with("job", id));
    let mut lazy = 0u64;
    for check in &checks {
        if judge(ctx, check)? {
            lazy += 1;
        }
    }
    // Accusations under way end: their open re-checks are no longer needed.
    for check in &checks {
        if matches!(
            check.status,
            CheckStatus::AwaitingReferees | CheckStatus::Refereed
        ) {
            super::spot::drop_accusation(ctx, check)?;
        }
    }
    ctx.emit(
        Event::new(NAME, "canary_settled")
            .with("job", id)
            .with("lazy", lazy),
    );
    Ok(())
}

/// Judges a verdict on a revealed canary: a `match` of planted work is punished, an
/// accusation rewarded. Returns whether the verdict was lazy.
pub(crate) fn judge(ctx: &mut ExecContext<'_, '_>, check: &Check) -> Result<bool, TxError> {
    match &check.verdict {
        Some(Verdict::Match { .. }) if check.subject != super::checks::CheckSubject::Eval => {
            punish_lazy(ctx, check)?;
            Ok(true)
        }
        Some(v) if v.accuses(None) => {
            reward(ctx, check)?;
            Ok(false)
        }
        _ => Ok(false),
    }
}

fn punish_lazy(ctx: &mut ExecContext<'_, '_>, check: &Check) -> Result<(), TxError> {
    let Some(address) = check.validator else {
        return Ok(());
    };
    let Some(mut v) = read_verifier(ctx.state, &address)? else {
        return Ok(());
    };
    // Rounded down, and lazy_slash_bps < 10,000, so the bond stays positive.
    let wanted = v
        .bond
        .checked_mul(u128::from(ctx.params.poi.lazy_slash_bps))
        .ok_or(TxError::Overflow("lazy slash"))?
        / 10_000;
    let slashed = staking::slash(ctx.state, address, wanted)?;
    v.bond = v.bond.saturating_sub(slashed);
    v.credits_units = v.credits_units.saturating_sub(check.units);
    crate::rewards::uncredit(
        ctx,
        crate::rewards::Class::Validators,
        address,
        check.units.into(),
    )?;
    v.jailed_until = ctx.block.height.saturating_add(ctx.params.poi.jail_blocks);
    write_verifier(ctx.state, &v);
    if slashed > 0 {
        supply::record_burn(ctx, slashed, BurnReason::Slash)?;
    }
    let seq = append_slash(
        ctx.state,
        SlashRecord {
            seq: 0,
            height: ctx.block.height,
            account: address,
            role: "validator".into(),
            reason: "lazy_validator".into(),
            job: check.job,
            check: check.index,
            evidence: check.verdict.clone().unwrap_or(Verdict::Unavailable),
            referees: Vec::new(),
            amount: slashed,
        },
    )?;
    ctx.emit(
        Event::new(NAME, "validator_slashed")
            .with("validator", address)
            .with("reason", "lazy_validator")
            .with("job", check.job)
            .with("check", u64::from(check.index))
            .with("amount", slashed)
            .with("slash", seq),
    );
    Ok(())
}

fn reward(ctx: &mut ExecContext<'_, '_>, check: &Check) -> Result<(), TxError> {
    let Some(address) = check.validator else {
        return Ok(());
    };
    if let Some(mut v) = read_verifier(ctx.state, &address)? {
        v.credits_units = v.credits_units.saturating_add(check.units);
        write_verifier(ctx.state, &v);
        crate::rewards::credit(
            ctx,
            crate::rewards::Class::Validators,
            address,
            check.units.into(),
        )?;
    }
    Ok(())
}
