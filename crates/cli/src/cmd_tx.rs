//! `poi tx ...`.

use std::time::{Duration, Instant};

use anyhow::{Context, anyhow, bail};
use poi_core::Address;
use poi_core::bank::BankMsg;
use poi_core::params::Params;
use poi_core::token::parse_amount;
use poi_core::tx::{Msg, TxBody};
use serde_json::json;

use crate::cli::{Global, SendArgs, TxCmd, TxOptions};
use crate::client::Api;
use crate::{cmd_keys, output};

/// How often to ask whether a submitted transaction is committed.
const POLL_INTERVAL: Duration = Duration::from_millis(100);

pub(crate) fn run(global: &Global, cmd: TxCmd) -> anyhow::Result<()> {
    match cmd {
        TxCmd::Send(args) => send(global, args),
    }
}

fn send(global: &Global, args: SendArgs) -> anyhow::Result<()> {
    let amount = parse_amount(&args.amount)?;
    let to = cmd_keys::resolve_address(global, &args.to)?;
    let Some(committed) = submit(
        global,
        &args.tx,
        Msg::Bank(BankMsg::Transfer { to, amount }),
    )?
    else {
        return Ok(());
    };
    committed.print_line(
        global,
        &format!("sent {} to {to}", poi_core::token::format_poi(amount)),
    );
    Ok(())
}

/// A transaction committed with success.
pub(crate) struct Committed {
    /// Its hash, hex.
    pub(crate) hash: String,
    /// `GET /txs/{hash}`: height, index and receipt.
    pub(crate) status: serde_json::Value,
    /// The fee it paid.
    pub(crate) fee: poi_core::token::Amount,
    /// The signer.
    pub(crate) signer: Address,
}

impl Committed {
    /// Prints `committed HASH in block H: WHAT, fee F` for human output and says whether it
    /// did; with `--json` the transaction's status was printed already.
    pub(crate) fn print_line(&self, global: &Global, what: &str) -> bool {
        if global.json {
            return false;
        }
        println!(
            "committed {} in block {}: {what}, fee {}",
            self.hash,
            self.status["height"],
            poi_core::token::format_poi(self.fee)
        );
        true
    }

    /// The value of attribute `key` of the first `module`/`kind` event in its receipt.
    pub(crate) fn event_attribute(
        &self,
        module: &str,
        kind: &str,
        key: &str,
    ) -> anyhow::Result<String> {
        self.status["receipt"]["events"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|e| e["module"] == module && e["kind"] == kind)
            .and_then(|e| {
                e["attributes"]
                    .as_array()?
                    .iter()
                    .find(|pair| pair[0] == key)
                    .and_then(|pair| pair[1].as_str().map(str::to_string))
            })
            .ok_or_else(|| anyhow!("the receipt has no {module} {kind} event with {key}"))
    }
}

/// Signs `msg` with `options.from`'s key (next nonce, minimum fee unless given), submits it and
/// waits for its block. `None` with `--no-wait` (the pending line or JSON is printed); an
/// error if it is refused, fails in its block or is not committed in time. With `--json` the
/// committed status is printed here.
pub(crate) fn submit(
    global: &Global,
    options: &TxOptions,
    msg: Msg,
) -> anyhow::Result<Option<Committed>> {
    let key = cmd_keys::unlock(global, &options.from)?;
    let from = Address::from_public_key(&key.verifying_key());
    let api = Api::resolve(global)?;
    let status = api.get("/status")?;
    let chain_id = status["chain_id"]
        .as_str()
        .ok_or_else(|| anyhow!("node sent no chain id"))?;
    let account = api.get(&format!("/accounts/{from}"))?;
    let nonce = account["next_nonce"]
        .as_u64()
        .ok_or_else(|| anyhow!("node sent no nonce"))?;
    let params: Params =
        serde_json::from_value(api.get("/params")?).context("cannot read params")?;
    let mut body = TxBody {
        chain_id: chain_id.to_string(),
        signer: from,
        nonce,
        fee: 0,
        msg,
    };
    body.fee = match &options.fee {
        Some(fee) => parse_amount(fee)?,
        // The fee field has a fixed width, so the size (and minimum fee) does not depend on it.
        None => params.min_fee(body.clone().sign(&key).encoded_len()),
    };
    let tx = body.sign(&key);
    let submitted = api.post("/txs", &json!({ "tx": hex::encode(tx.encode()) }))?;
    let hash = submitted["hash"].as_str().unwrap_or_default().to_string();
    if options.no_wait {
        if global.json {
            output::json(&submitted);
        } else {
            println!("submitted {hash} (pending)");
        }
        return Ok(None);
    }
    let deadline = Instant::now() + Duration::from_secs(options.timeout_secs);
    loop {
        let status = api.get(&format!("/txs/{hash}"))?;
        if status["status"] == "committed" {
            let outcome = &status["receipt"]["outcome"];
            if global.json {
                output::json(&status);
            }
            if outcome["status"] != "success" {
                bail!(
                    "transaction {hash} was included in block {} but failed: {} ({})",
                    status["height"],
                    outcome["message"].as_str().unwrap_or("?"),
                    outcome["code"].as_str().unwrap_or("?")
                );
            }
            return Ok(Some(Committed {
                hash,
                status,
                fee: tx.body.fee,
                signer: from,
            }));
        }
        if Instant::now() >= deadline {
            bail!(
                "transaction {hash} still pending after {}s; check later with `poi query tx {hash}`",
                options.timeout_secs
            );
        }
        std::thread::sleep(POLL_INTERVAL);
    }
}
