//! Verifier registration: `RegisterVerifier`, `AddVerifierBond` and `DeregisterVerifier`.
//!
//! A verifier's bond is its own bonded stake, locked with [`staking::lock`] (PoI holds no
//! tokens for it), so the bond cannot be unbonded while the verifier is registered
//! (`stake_locked`) and can be slashed from staking for a proven fault (build steps 3 and 7).
//! Each verifier has an ordinal in the dense index `poi/vi/` (`0..count`); deregistration
//! moves the last ordinal into the freed one, so the index never has a hole and assignment can
//! draw `u mod count`.

use crate::address::Address;
use crate::error::{self, StateError, TxError};
use crate::event::Event;
use crate::module::ExecContext;
use crate::staking;
use crate::token::Amount;

use super::NAME;
use super::records::{
    Verifier, read_verifier, verifier_at, verifier_count, verifier_index_key, verifier_key,
    write_verifier, write_verifier_count,
};

/// `RegisterVerifier { bond }`: locks `bond` (at least `poi.verifier_bond_min`) of the
/// signer's free bonded stake and gives it the next ordinal.
pub(crate) fn register(
    ctx: &mut ExecContext<'_, '_>,
    signer: Address,
    bond: Amount,
) -> Result<(), TxError> {
    if read_verifier(ctx.state, &signer)?.is_some() {
        return Err(TxError::AlreadyVerifier(signer));
    }
    let min = ctx.params.poi.verifier_bond_min;
    if bond < min {
        return Err(TxError::VerifierBondTooLow { bond, min });
    }
    let ordinal = verifier_count(ctx.state)?;
    let count = ordinal
        .checked_add(1)
        .ok_or(TxError::Overflow("verifier count"))?;
    staking::lock(ctx.state, signer, bond)?;
    write_verifier(
        ctx.state,
        &Verifier {
            address: signer,
            bond,
            open_checks: 0,
            credits_units: 0,
            strikes: 0,
            jailed_until: 0,
            ordinal,
        },
    );
    ctx.state
        .put(verifier_index_key(ordinal), signer.as_bytes().to_vec());
    write_verifier_count(ctx.state, count);
    ctx.emit(
        Event::new(NAME, "verifier_registered")
            .with("verifier", signer)
            .with("bond", bond)
            .with("ordinal", u64::from(ordinal)),
    );
    Ok(())
}

/// `AddVerifierBond { amount }`: locks `amount` more of the signer's free bonded stake.
pub(crate) fn add_bond(
    ctx: &mut ExecContext<'_, '_>,
    signer: Address,
    amount: Amount,
) -> Result<(), TxError> {
    let mut v = read_verifier(ctx.state, &signer)?.ok_or(TxError::UnknownVerifier(signer))?;
    if amount == 0 {
        return Err(TxError::InvalidMessage(
            "the added verifier bond must be positive".into(),
        ));
    }
    v.bond = error::add(v.bond, amount, "verifier bond")?;
    staking::lock(ctx.state, signer, amount)?;
    write_verifier(ctx.state, &v);
    ctx.emit(
        Event::new(NAME, "verifier_bond_added")
            .with("verifier", signer)
            .with("amount", amount)
            .with("bond", v.bond),
    );
    Ok(())
}

/// `DeregisterVerifier`: only with no open checks. Unlocks the whole bond (the stake stays
/// bonded; the staker unbonds it as usual), deletes the record and keeps the index dense.
pub(crate) fn deregister(ctx: &mut ExecContext<'_, '_>, signer: Address) -> Result<(), TxError> {
    let v = read_verifier(ctx.state, &signer)?.ok_or(TxError::UnknownVerifier(signer))?;
    if v.open_checks > 0 {
        return Err(TxError::VerifierBusy {
            verifier: signer,
            open_checks: v.open_checks,
        });
    }
    let count = verifier_count(ctx.state)?;
    let last = count
        .checked_sub(1)
        .ok_or(TxError::Overflow("verifier count"))?;
    if v.ordinal != last {
        let moved = verifier_at(ctx.state, last)?
            .ok_or_else(|| StateError(format!("poi verifier index {last} is empty")))?;
        let mut m = read_verifier(ctx.state, &moved)?.ok_or(TxError::UnknownVerifier(moved))?;
        m.ordinal = v.ordinal;
        write_verifier(ctx.state, &m);
        ctx.state
            .put(verifier_index_key(v.ordinal), moved.as_bytes().to_vec());
    }
    ctx.state.delete(verifier_index_key(last));
    ctx.state.delete(verifier_key(&signer));
    write_verifier_count(ctx.state, last);
    staking::unlock(ctx.state, signer, v.bond)?;
    ctx.emit(
        Event::new(NAME, "verifier_deregistered")
            .with("verifier", signer)
            .with("bond", v.bond),
    );
    Ok(())
}
