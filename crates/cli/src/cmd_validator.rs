//! `poi validator register|leave|unjail`: consensus candidacy (the chain elects the top
//! `validators.set_size_max` candidates by bonded stake at every epoch boundary; see
//! `docs/design/validators.md`). `poi validator run` (the PoI verifier agent) is in
//! `cmd_agents`.

use poi_core::token::{format_poi, parse_amount};
use poi_core::tx::Msg;
use poi_core::validators::ValidatorsMsg;

use crate::cli::{Global, TxOptions};
use crate::cmd_tx;

/// Submits one candidacy message and prints what it did.
fn submit(global: &Global, tx: &TxOptions, msg: ValidatorsMsg, what: &str) -> anyhow::Result<()> {
    if let Some(done) = cmd_tx::submit(global, tx, Msg::Validators(msg))? {
        done.print_line(global, what);
    }
    Ok(())
}

/// `poi validator register --self-bond AMOUNT`.
pub(crate) fn register(global: &Global, self_bond: &str, tx: &TxOptions) -> anyhow::Result<()> {
    let self_bond = parse_amount(self_bond)?;
    let what = format!(
        "locked {} as validator collateral; the set is elected at the next epoch boundary",
        format_poi(self_bond)
    );
    submit(global, tx, ValidatorsMsg::Register { self_bond }, &what)
}

/// `poi validator leave`.
pub(crate) fn leave(global: &Global, tx: &TxOptions) -> anyhow::Result<()> {
    let what = "left candidacy; the collateral is unlocked (unbond it with `poi stake unbond`)";
    submit(global, tx, ValidatorsMsg::Leave, what)
}

/// `poi validator unjail`.
pub(crate) fn unjail(global: &Global, tx: &TxOptions) -> anyhow::Result<()> {
    submit(global, tx, ValidatorsMsg::Unjail, "unjailed")
}
