//! `poi provider run` and `poi validator run`: the Proof-of-Intelligence agents of
//! `poi-agents` in the foreground, signing with a keystore key. State lives under
//! `HOME/agents/<name>/`, so a restarted agent resumes its jobs. Stop with Ctrl-C.

use std::net::SocketAddr;
use std::sync::atomic::AtomicBool;

use anyhow::Context;
use clap::{Args, Subcommand};
use poi_agents::provider::{Provider, ProviderConfig};
use poi_agents::validator::{Validator, ValidatorConfig};
use poi_agents::{ProviderBehaviour, ValidatorBehaviour};
use poi_core::token::parse_amount;

use crate::cli::Global;
use crate::client::home;
use crate::cmd_keys;

/// `poi provider run` options.
#[derive(Debug, Args)]
pub(crate) struct ProviderRunArgs {
    /// Name of the signing key (the provider's account).
    #[arg(long)]
    pub(crate) from: String,
    /// Address to serve jobs on, e.g. 127.0.0.1:9000; `http://ADDR` is the registered endpoint.
    #[arg(long)]
    pub(crate) endpoint: SocketAddr,
    /// How to behave: honest, fake-segments=<bps>, skip-steps, wrong-checkpoint,
    /// withhold-checkpoint, wrong-inference or forge-score.
    ///
    /// Anything but `honest` cheats on purpose and is slashed when caught (tests, devnet).
    #[arg(long, default_value = "honest")]
    pub(crate) behaviour: String,
    /// Training threads (results do not depend on it).
    #[arg(long, default_value_t = 1)]
    pub(crate) threads: usize,
    /// Collateral to lock at registration: base units or POI [default: 1000 POI].
    #[arg(long)]
    pub(crate) collateral: Option<String>,
    /// Capacity to register, compute units per block.
    #[arg(long, default_value_t = 1_000)]
    pub(crate) capacity: u64,
    /// Ask price per compute unit: base units or POI.
    #[arg(long, default_value = "1")]
    pub(crate) ask: String,
    /// Agent name: its directory is HOME/agents/<name> [default: the key name].
    #[arg(long)]
    pub(crate) name: Option<String>,
}

/// `poi validator ...`.
#[derive(Debug, Subcommand)]
pub(crate) enum ValidatorCmd {
    /// Bond, register as a PoI verifier, then re-execute and attest every check assigned.
    Run(ValidatorRunArgs),
    /// Stand for the consensus validator set: lock collateral from your bonded stake (bond
    /// first with `poi stake bond`). The top `validators.set_size_max` candidates by bonded
    /// stake are elected at each epoch boundary; the key is then reshared to them.
    Register {
        /// Collateral to lock: base units or POI (10poi); at least `validators.min_self_bond`.
        #[arg(long)]
        self_bond: String,
        #[command(flatten)]
        tx: crate::cli::TxOptions,
    },
    /// Leave candidacy: unlocks the collateral; you are in no set elected afterwards.
    Leave {
        #[command(flatten)]
        tx: crate::cli::TxOptions,
    },
    /// End a downtime jail once `jailed_until` has passed (`poi query` the validators).
    Unjail {
        #[command(flatten)]
        tx: crate::cli::TxOptions,
    },
}

/// `poi validator run` options.
#[derive(Debug, Args)]
pub(crate) struct ValidatorRunArgs {
    /// Name of the signing key (the verifier's account).
    #[arg(long)]
    pub(crate) from: String,
    /// How to behave: honest, lazy (always match, no re-execution) or contrarian (always
    /// mismatch).
    #[arg(long, default_value = "honest")]
    pub(crate) behaviour: String,
    /// Re-execution threads.
    #[arg(long, default_value_t = 1)]
    pub(crate) threads: usize,
    /// Verifier bond: base units or POI [default: the chain's `poi.verifier_bond_min`].
    #[arg(long)]
    pub(crate) bond: Option<String>,
    /// Agent name: its directory is HOME/agents/<name> [default: the key name].
    #[arg(long)]
    pub(crate) name: Option<String>,
}

/// The node URL from --node or HOME/config.toml (as the other commands resolve it).
fn node_url(global: &Global) -> anyhow::Result<String> {
    if let Some(url) = &global.node {
        return Ok(url.trim_end_matches('/').to_owned());
    }
    let home = home(global);
    let config = home.config().with_context(|| {
        format!(
            "no --node given and cannot read {}",
            home.config_path().display()
        )
    })?;
    let mut addr = config.api_addr;
    if addr.ip().is_unspecified() {
        addr.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
    }
    Ok(format!("http://{addr}"))
}

fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("POI_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn,poi_agents=info"));
    let _ = tracing_subscriber::fmt().with_env_filter(filter).try_init();
}

/// `poi provider run`.
pub(crate) fn run_provider(global: &Global, args: ProviderRunArgs) -> anyhow::Result<()> {
    let behaviour: ProviderBehaviour = args.behaviour.parse()?;
    let key = cmd_keys::unlock(global, &args.from)?;
    let name = args.name.unwrap_or_else(|| args.from.clone());
    let mut config = ProviderConfig::new(
        &name,
        home(global).root().to_owned(),
        &node_url(global)?,
        args.endpoint,
    );
    config.behaviour = behaviour;
    config.threads = args.threads;
    config.capacity_units_per_block = args.capacity;
    config.ask_price = parse_amount(&args.ask)?;
    if let Some(c) = &args.collateral {
        config.collateral = parse_amount(c)?;
        config.bond = config.collateral;
    }
    init_logging();
    let mut provider = Provider::start(config, key)?;
    println!(
        "provider {} serving {} ({behaviour})",
        provider.address(),
        provider.endpoint()
    );
    provider.run(&AtomicBool::new(false))?;
    Ok(())
}

/// `poi validator run`.
pub(crate) fn run_validator(global: &Global, cmd: ValidatorCmd) -> anyhow::Result<()> {
    let args = match cmd {
        ValidatorCmd::Run(args) => args,
        ValidatorCmd::Register { self_bond, tx } => {
            return crate::cmd_validator::register(global, &self_bond, &tx);
        }
        ValidatorCmd::Leave { tx } => return crate::cmd_validator::leave(global, &tx),
        ValidatorCmd::Unjail { tx } => return crate::cmd_validator::unjail(global, &tx),
    };
    let behaviour: ValidatorBehaviour = args.behaviour.parse()?;
    let key = cmd_keys::unlock(global, &args.from)?;
    let name = args.name.unwrap_or_else(|| args.from.clone());
    let mut config =
        ValidatorConfig::new(&name, home(global).root().to_owned(), &node_url(global)?);
    config.behaviour = behaviour;
    config.threads = args.threads;
    config.bond = args.bond.as_deref().map(parse_amount).transpose()?;
    init_logging();
    let mut validator = Validator::new(config, key)?;
    println!("validator {} ({behaviour})", validator.address());
    validator.run(&AtomicBool::new(false))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use crate::cli::{Cli, Command, ProviderCmd};

    use super::ValidatorCmd;

    #[test]
    fn agent_commands_parse() {
        let cli = Cli::try_parse_from([
            "poi",
            "provider",
            "run",
            "--from",
            "bob",
            "--endpoint",
            "127.0.0.1:9000",
            "--behaviour",
            "fake-segments=500",
            "--threads",
            "2",
        ])
        .expect("provider run parses");
        let Command::Provider(ProviderCmd::Run(args)) = cli.command else {
            panic!("provider run");
        };
        assert_eq!((args.from.as_str(), args.threads), ("bob", 2));
        assert_eq!(args.endpoint.port(), 9000);
        assert_eq!(args.behaviour, "fake-segments=500");
        let cli = Cli::try_parse_from([
            "poi",
            "validator",
            "run",
            "--from",
            "carol",
            "--behaviour",
            "lazy",
        ])
        .expect("validator run parses");
        let Command::Validator(ValidatorCmd::Run(args)) = cli.command else {
            panic!("validator run");
        };
        assert_eq!(
            (args.from.as_str(), args.behaviour.as_str()),
            ("carol", "lazy")
        );
        assert!(
            Cli::try_parse_from([
                "poi",
                "provider",
                "run",
                "--from",
                "bob",
                "--endpoint",
                "nope"
            ])
            .is_err()
        );
    }
}
