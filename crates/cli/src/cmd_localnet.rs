//! `poi localnet`: a network of real validator processes on loopback, one shared genesis.
//!
//! Layout under `--home DIR`:
//! ```text
//! DIR/node0 .. DIR/node{N-1}   one node home each (config.toml with [[peers]], genesis.toml
//!                              identical in all, node key and beacon share, data/)
//! DIR/node{i}/node.log         that validator's log
//! DIR/full0 .. DIR/full{M-1}   full node homes (`--full-nodes M`): config, genesis, node key,
//!                              no beacon share; they follow and verify without voting
//! DIR/node0/keys/              the funded test accounts (plaintext, like the devnet's)
//! ```
//! Every node lists every other in `[[peers]]`: validators dial validators, full nodes dial
//! validators, and validators accept the full nodes they list.
//!
//! The parent process only supervises: each node is a `poi node start --home DIR/...`
//! child, so killing one (even with SIGKILL) is a real crash of one node. Running the
//! command again on the same DIR restarts the same network where it stopped.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{Context, bail};
use poi_core::genesis::{Genesis, GenesisAccount};
use poi_core::token::BASE_UNITS_PER_POI;
use poi_node::consensus::beacon;
use poi_node::home::{Home, NodeConfig, PeerConfig};
use poi_node::service;

use crate::cli::LocalnetArgs;
use crate::cmd_node::{
    DEVNET_BALANCE_POI, DEVNET_NAMES, devnet_params, now_ms, random_seed, test_accounts,
    validator_address,
};
use crate::keystore::Keystore;

/// Chain id of every localnet.
const LOCALNET_CHAIN_ID: &str = "poi-localnet";

/// The home of validator `index`.
pub(crate) fn node_home(root: &Path, index: usize) -> Home {
    Home::new(root.join(format!("node{index}")))
}

/// The home of full node `index`.
pub(crate) fn full_node_home(root: &Path, index: usize) -> Home {
    Home::new(root.join(format!("full{index}")))
}

/// `port` itself, or a free loopback port when `port` is 0.
fn loopback(port: u16) -> anyhow::Result<SocketAddr> {
    if port != 0 {
        return Ok(SocketAddr::from(([127, 0, 0, 1], port)));
    }
    let listener = std::net::TcpListener::bind("127.0.0.1:0").context("no free loopback port")?;
    Ok(listener.local_addr()?)
}

/// The `(api, p2p)` addresses of node `index` (validators first, then full nodes).
fn addresses(base_port: u16, index: usize) -> anyhow::Result<(SocketAddr, SocketAddr)> {
    if base_port == 0 {
        return Ok((loopback(0)?, loopback(0)?));
    }
    let offset = u16::try_from(2 * index).context("too many nodes")?;
    let api = base_port
        .checked_add(offset)
        .context("--base-port too high for this many validators")?;
    let p2p = api
        .checked_add(1)
        .context("--base-port too high for this many validators")?;
    Ok((loopback(api)?, loopback(p2p)?))
}

/// Creates the homes of a new localnet in `root` (any count of validators from 1 up, and
/// `args.full_nodes` full nodes).
pub(crate) fn create(root: &Path, args: &LocalnetArgs) -> anyhow::Result<()> {
    let count = usize::from(args.validators);
    let total = count + usize::from(args.full_nodes);
    let mut seeds = Vec::with_capacity(total);
    for _ in 0..total {
        seeds.push(random_seed()?);
    }
    let keys: Vec<[u8; 32]> = seeds
        .iter()
        .map(poi_node::consensus::validator_public_key)
        .collect();
    let shares = beacon::deal(&keys[..count]).context("cannot deal the beacon key")?;
    anyhow::ensure!(shares.len() == count, "dealt {} beacon keys", shares.len());
    let keystore = Keystore::open(&node_home(root, 0).keys_dir())?;
    let names = DEVNET_NAMES
        .iter()
        .take(usize::from(args.accounts))
        .copied();
    let mut accounts = test_accounts(&keystore, names)?;
    // Validators hold funds too: to bond collateral, and to pay the fee of the evidence and
    // reshare transactions their nodes submit; full nodes, to bond and register as candidates.
    for seed in &seeds {
        accounts.push(GenesisAccount {
            address: validator_address(seed),
            balance: DEVNET_BALANCE_POI * BASE_UNITS_PER_POI,
        });
    }
    let mut params = devnet_params(args.block_interval_ms);
    crate::devnet::poi_params(&mut params, None);
    params.rewards.epoch_blocks = args.epoch_blocks;
    let genesis = Genesis {
        chain_id: LOCALNET_CHAIN_ID.into(),
        genesis_time_ms: now_ms(),
        validators: seeds[..count].iter().map(validator_address).collect(),
        params,
        accounts,
        beacon: Some(service::genesis_beacon(LOCALNET_CHAIN_ID, &shares[0])),
        models: Vec::new(),
        data: Vec::new(),
    };
    let mut addrs = Vec::with_capacity(total);
    for index in 0..total {
        addrs.push(addresses(args.base_port, index)?);
    }
    for (index, seed) in seeds.iter().enumerate() {
        let peers = keys
            .iter()
            .zip(&addrs)
            .enumerate()
            .filter(|(other, _)| *other != index)
            .map(|(_, (key, (_, p2p)))| PeerConfig {
                public_key: hex::encode(key),
                p2p_addr: *p2p,
            })
            .collect();
        let config = NodeConfig {
            api_addr: addrs[index].0,
            p2p_addr: addrs[index].1,
            block_interval_ms: args.block_interval_ms,
            peers,
        };
        match shares.get(index) {
            Some(share) => node_home(root, index).init(&config, &genesis, *seed, share)?,
            None => full_node_home(root, index - count).init_full_node(&config, &genesis, *seed)?,
        }
    }
    Ok(())
}

/// How many validator homes `root` holds (node0, node1, ... without gaps).
fn existing(root: &Path) -> usize {
    (0..)
        .take_while(|&i| node_home(root, i).is_initialized())
        .count()
}

/// How many full node homes `root` holds (full0, full1, ... without gaps).
fn existing_full_nodes(root: &Path) -> usize {
    (0..)
        .take_while(|&i| full_node_home(root, i).is_initialized())
        .count()
}

/// A supervised node process (validator or full node).
pub(crate) struct Validator {
    name: String,
    home: Home,
    child: Child,
    exited: bool,
}

/// Starts validator `index` as a `poi node start` child, its output in `node.log`.
pub(crate) fn spawn(index: usize, home: Home) -> anyhow::Result<Validator> {
    spawn_named(format!("node {index}"), home)
}

/// Starts the node in `home` as a `poi node start` child, its output in `node.log`.
pub(crate) fn spawn_named(name: String, home: Home) -> anyhow::Result<Validator> {
    let exe = std::env::current_exe().context("cannot find the poi executable")?;
    let log_path = home.root().join("node.log");
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log_path)
        .with_context(|| format!("cannot open {}", log_path.display()))?;
    let mut command = Command::new(exe);
    command
        .arg("node")
        .arg("start")
        .arg("--home")
        .arg(home.root())
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log);
    #[cfg(target_os = "linux")]
    {
        use std::os::unix::process::CommandExt;
        // The validators stop with the supervisor, even when it is killed outright.
        // SAFETY: prctl is async-signal-safe and touches only this (forked) process.
        unsafe {
            command.pre_exec(|| {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
    }
    let child = command
        .spawn()
        .with_context(|| format!("cannot start {name}"))?;
    Ok(Validator {
        name,
        home,
        child,
        exited: false,
    })
}

pub(crate) fn run(global: &crate::cli::Global, args: LocalnetArgs) -> anyhow::Result<()> {
    let root: PathBuf = match &global.home {
        Some(root) => root.clone(),
        None => std::env::temp_dir().join(format!("poi-localnet-{}", std::process::id())),
    };
    let count = existing(&root);
    if count == 0 {
        if root.join("node0").exists() {
            bail!(
                "{} holds a partial localnet (node0 is not initialised); delete it or use another --home",
                root.display()
            );
        }
        create(&root, &args)?;
        println!(
            "created a localnet of {} validators and {} full nodes in {}",
            args.validators,
            args.full_nodes,
            root.display()
        );
    } else if count != usize::from(args.validators)
        || existing_full_nodes(&root) != usize::from(args.full_nodes)
    {
        bail!(
            "{} holds a localnet of {count} validators and {} full nodes, not {} and {}; use \
             another --home to start a new one",
            root.display(),
            existing_full_nodes(&root),
            args.validators,
            args.full_nodes
        );
    } else {
        println!("resuming the localnet in {}", root.display());
    }
    let count = usize::from(args.validators);
    let genesis = node_home(&root, 0).genesis()?;
    println!("chain:     {} ({count} validators)", genesis.chain_id);
    let mut validators = Vec::with_capacity(count);
    for index in 0..count {
        let home = node_home(&root, index);
        let config = home.config()?;
        let validator = spawn(index, home.clone())?;
        println!(
            "node {index}:    API http://{}  p2p {}  pid {}  log {}",
            config.api_addr,
            config.p2p_addr,
            validator.child.id(),
            home.root().join("node.log").display()
        );
        validators.push(validator);
    }
    for index in 0..usize::from(args.full_nodes) {
        let home = full_node_home(&root, index);
        let config = home.config()?;
        let node = spawn_named(format!("full {index}"), home.clone())?;
        println!(
            "full {index}:    API http://{}  p2p {}  pid {}  log {}",
            config.api_addr,
            config.p2p_addr,
            node.child.id(),
            home.root().join("node.log").display()
        );
        validators.push(node);
    }
    println!(
        "keys:      funded test accounts in {} (use --home {})",
        node_home(&root, 0).keys_dir().display(),
        node_home(&root, 0).root().display()
    );
    println!("stop with Ctrl-C; resume with the same command");
    supervise(&mut validators)
}

/// Waits for Ctrl-C or SIGTERM, reporting validators that exit meanwhile, then stops them all.
fn supervise(validators: &mut [Validator]) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let mut terminate =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        let mut tick = tokio::time::interval(Duration::from_millis(500));
        loop {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => break,
                _ = terminate.recv() => break,
                _ = tick.tick() => report_exits(validators),
            }
        }
        anyhow::Ok(())
    })?;
    println!("stopping {} nodes", validators.len());
    stop(validators);
    Ok(())
}

/// SIGTERMs every validator still running and waits for all of them.
pub(crate) fn stop(validators: &mut [Validator]) {
    for validator in validators.iter_mut().filter(|v| !v.exited) {
        // SIGTERM: each node closes its journal and store cleanly.
        let pid = libc::pid_t::try_from(validator.child.id()).unwrap_or(0);
        // SAFETY: signalling our own child by pid.
        unsafe {
            libc::kill(pid, libc::SIGTERM);
        }
    }
    for validator in validators.iter_mut() {
        let _ = validator.child.wait();
    }
}

fn report_exits(validators: &mut [Validator]) {
    for validator in validators.iter_mut().filter(|v| !v.exited) {
        if let Ok(Some(status)) = validator.child.try_wait() {
            validator.exited = true;
            println!(
                "{} exited ({status}); restart it with: poi node start --home {}",
                validator.name,
                validator.home.root().display()
            );
        }
    }
}
