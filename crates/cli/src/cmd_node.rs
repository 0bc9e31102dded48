//! `poi node init|start` and `poi devnet`.

use anyhow::{Context, bail};
use poi_core::Address;
use poi_core::genesis::{Genesis, GenesisAccount};
use poi_core::params::Params;
use poi_core::token::{BASE_UNITS_PER_POI, format_poi, parse_amount};
use poi_node::consensus::{BeaconKey, beacon};
use poi_node::home::{Home, NodeConfig};
use poi_node::service::{self, ReadyInfo, RunOptions};

use crate::cli::{DevnetArgs, Global, InitArgs, NodeCmd};
use crate::client::home;
use crate::keystore::{Keystore, Protection};

/// Names of devnet test accounts, in creation order.
pub(crate) const DEVNET_NAMES: [&str; 26] = [
    "alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi", "ivan", "judy", "mallory",
    "niaj", "olivia", "peggy", "quentin", "rupert", "sybil", "trent", "ursula", "victor", "walter",
    "xavier", "yolanda", "zoe", "arthur", "beth",
];

/// Chain id of every devnet.
const DEVNET_CHAIN_ID: &str = "poi-devnet";

/// POI each devnet account starts with.
pub(crate) const DEVNET_BALANCE_POI: u128 = 1_000_000;

pub(crate) fn random_seed() -> anyhow::Result<[u8; 32]> {
    let mut seed = [0u8; 32];
    getrandom::fill(&mut seed).map_err(|e| anyhow::anyhow!("no OS randomness: {e}"))?;
    Ok(seed)
}

pub(crate) fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

pub(crate) fn validator_address(seed: &[u8; 32]) -> Address {
    Address(poi_node::consensus::validator_public_key(seed))
}

/// Deals the beacon group key to the one validator of a new home (a trusted dealing: this
/// process is the whole validator set).
fn deal_single(seed: &[u8; 32]) -> anyhow::Result<BeaconKey> {
    let public = poi_node::consensus::validator_public_key(seed);
    let mut keys = beacon::deal(&[public]).context("cannot deal the beacon key")?;
    anyhow::ensure!(
        keys.len() == 1,
        "dealt {} beacon keys for one validator",
        keys.len()
    );
    Ok(keys.remove(0))
}

pub(crate) fn run_node(global: &Global, cmd: NodeCmd) -> anyhow::Result<()> {
    init_logging();
    let home = home(global);
    match cmd {
        NodeCmd::Init(args) => init(&home, args),
        NodeCmd::Start { api_addr } => {
            if !home.is_initialized() {
                bail!(
                    "{} is not a poi home. Consider `poi node init --home {0}` or `poi devnet --home {0}`",
                    home.root().display()
                );
            }
            let options = RunOptions {
                api_addr,
                on_ready: Some(print_ready),
            };
            Ok(service::run(&home, options)?)
        }
    }
}

fn init(home: &Home, args: InitArgs) -> anyhow::Result<()> {
    let mut accounts = Vec::new();
    for entry in &args.fund {
        let (address, amount) = entry
            .split_once('=')
            .with_context(|| format!("--fund {entry:?}: expected ADDRESS=AMOUNT"))?;
        let address: Address = address.parse()?;
        accounts.push(GenesisAccount {
            address,
            balance: parse_amount(amount)?,
        });
    }
    let seed = random_seed()?;
    let beacon = deal_single(&seed)?;
    let genesis_beacon = service::genesis_beacon(&args.chain_id, &beacon);
    let genesis = Genesis {
        chain_id: args.chain_id,
        genesis_time_ms: now_ms(),
        validators: vec![validator_address(&seed)],
        params: Params::default().with_economics(),
        accounts,
        beacon: Some(genesis_beacon),
        models: Vec::new(),
        data: Vec::new(),
    };
    let config = NodeConfig {
        api_addr: args.api_addr,
        p2p_addr: args.p2p_addr,
        block_interval_ms: args.block_interval_ms,
        peers: Vec::new(),
    };
    home.init(&config, &genesis, seed, &beacon)?;
    println!(
        "initialised {} (chain {})",
        home.root().display(),
        genesis.chain_id
    );
    println!("validator: {}", validator_address(&seed));
    println!(
        "start it with: poi node start --home {}",
        home.root().display()
    );
    Ok(())
}

/// The devnet's parameters: the defaults, with the market's timeouts scaled to the block
/// interval. Those timeouts are counted in blocks and their defaults assume one-second blocks;
/// scaled, a person at a terminal has the same seconds to start a job or send a heartbeat on a
/// fast devnet.
pub(crate) fn devnet_params(block_interval_ms: u64) -> Params {
    let mut params = Params::default().with_economics();
    // Epochs of 100 blocks, so a devnet session sees rewards and burns settle, and votes
    // of 40 blocks with the shortest timelock, so a proposal executes within a minute.
    params.rewards.epoch_blocks = 100;
    params.governance.voting_blocks = 40;
    params.governance.timelock_blocks = poi_core::governance::TIMELOCK_MIN_BLOCKS;
    params.governance.extension_blocks = 10;
    let scale = (1_000 / block_interval_ms.max(1)).max(1);
    let market = &mut params.market;
    for blocks in [
        &mut market.heartbeat_timeout_blocks,
        &mut market.start_blocks,
        &mut market.commit_grace_blocks,
        &mut market.verify_blocks,
        &mut market.queue_ttl_blocks,
    ] {
        *blocks = blocks.saturating_mul(scale);
    }
    params
}

/// The genesis accounts of devnet test keys `names`, each funded with
/// [`DEVNET_BALANCE_POI`]; a key missing from `keystore` is created (plaintext, devnet only).
pub(crate) fn test_accounts<'a>(
    keystore: &Keystore,
    names: impl IntoIterator<Item = &'a str>,
) -> anyhow::Result<Vec<GenesisAccount>> {
    let mut accounts = Vec::new();
    for name in names {
        let info = match keystore.info(name) {
            Ok(info) => info,
            Err(_) => keystore.generate(name, Protection::InsecurePlaintext)?,
        };
        accounts.push(GenesisAccount {
            address: Address(info.public_key),
            balance: DEVNET_BALANCE_POI * BASE_UNITS_PER_POI,
        });
    }
    Ok(accounts)
}

pub(crate) fn run_devnet(global: &Global, args: DevnetArgs) -> anyhow::Result<()> {
    init_logging();
    let root = match &global.home {
        Some(root) => root.clone(),
        None => std::env::temp_dir().join(format!("poi-devnet-{}", std::process::id())),
    };
    let home = Home::new(root);
    let keystore = Keystore::open(&home.keys_dir())?;
    if home.is_initialized() {
        println!("resuming the devnet in {}", home.root().display());
        let config = home.config()?;
        if args.p2p_addr.is_some_and(|addr| addr != config.p2p_addr) {
            bail!(
                "this devnet's p2p address is {}; edit {} to change it",
                config.p2p_addr,
                home.config_path().display()
            );
        }
    } else {
        let seed = random_seed()?;
        let beacon = deal_single(&seed)?;
        let mut accounts = Vec::new();
        let agent_names: Vec<&str> = if args.no_agents {
            Vec::new()
        } else {
            crate::devnet::AGENTS
                .iter()
                .map(|(name, _)| *name)
                .collect()
        };
        let names = DEVNET_NAMES
            .iter()
            .take(usize::from(args.accounts))
            .chain(agent_names.iter());
        accounts.extend(test_accounts(&keystore, names.copied())?);
        let mut params = devnet_params(args.block_interval_ms);
        if args.no_agents {
            crate::devnet::poi_params(&mut params, None);
        } else {
            let address = |name: &str| -> anyhow::Result<Address> {
                Ok(Address(keystore.info(name)?.public_key))
            };
            let canary = poi_agents::provider::canary::CanaryConfig {
                client: address("canary-client")?,
                secrets: crate::devnet::canary_secrets(&seed),
            };
            crate::devnet::poi_params(&mut params, Some((&canary, address("canary-prov")?)));
        }
        let data_owners: Vec<Address> = accounts.iter().take(3).map(|a| a.address).collect();
        let genesis = Genesis {
            chain_id: DEVNET_CHAIN_ID.into(),
            genesis_time_ms: now_ms(),
            validators: vec![validator_address(&seed)],
            params,
            accounts,
            beacon: Some(service::genesis_beacon(DEVNET_CHAIN_ID, &beacon)),
            models: Vec::new(),
            // The funded accounts own the shards of the tabular datasets the clients train on,
            // in turn, and are paid as data providers by each shard's measured value.
            data: ["winequality", "iris"]
                .into_iter()
                .map(|dataset| poi_core::genesis::GenesisData {
                    dataset: dataset.into(),
                    owners: data_owners.clone(),
                })
                .collect(),
        };
        let defaults = NodeConfig::default();
        let config = NodeConfig {
            api_addr: args.api_addr.unwrap_or(defaults.api_addr),
            p2p_addr: args.p2p_addr.unwrap_or(defaults.p2p_addr),
            block_interval_ms: args.block_interval_ms,
            peers: Vec::new(),
        };
        home.init(&config, &genesis, seed, &beacon)?;
        println!("created a devnet in {}", home.root().display());
    }
    let genesis = home.genesis()?;
    let config = home.config()?;
    let api_addr = args.api_addr.unwrap_or(config.api_addr);
    println!("chain:     {}", genesis.chain_id);
    println!("API:       http://{api_addr}");
    println!("events:    http://{api_addr}/events");
    println!("consensus: {} (1 validator)", config.p2p_addr);
    println!(
        "keys (plaintext, devnet only) in {}:",
        home.keys_dir().display()
    );
    for key in keystore.list()? {
        let address = Address(key.public_key);
        let balance = genesis
            .accounts
            .iter()
            .find(|a| a.address == address)
            .map_or(0, |a| a.balance);
        println!("  {:<8} {address}  {}", key.name, format_poi(balance));
    }
    println!(
        "try:       poi tx send --home {} --from alice --to <address> --amount 1.5poi",
        home.root().display()
    );
    println!(
        "stop with Ctrl-C; resume with: poi node start --home {}",
        home.root().display()
    );
    let _agents = if args.no_agents {
        None
    } else if keystore.info("canary-client").is_err() {
        println!("agents:    none (this devnet was created with --no-agents)");
        None
    } else {
        println!(
            "agents:    providers prov-1..3 (honest), cheater (fake-segments=5000), canary-prov; validators val-1..3 (honest), lazy; client, canary-client. State in {}",
            home.root().join("agents").display()
        );
        println!(
            "           a summary line follows every 5 s; query /jobs?status=settled, /slashes, /models"
        );
        Some(crate::devnet::start(
            &home,
            &keystore,
            format!("http://{api_addr}"),
        )?)
    };
    let options = RunOptions {
        api_addr: Some(api_addr),
        on_ready: Some(print_ready),
    };
    Ok(service::run(&home, options)?)
}

fn print_ready(info: &ReadyInfo) {
    println!(
        "node ready: chain {} at height {}, state root {}, API http://{}",
        info.chain_id,
        info.height,
        hex::encode(info.state_root),
        info.api_addr
    );
}

pub(crate) fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("POI_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn,poi_node=info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        // Colours only on a terminal: `poi localnet` writes validator logs to files.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .try_init();
}
