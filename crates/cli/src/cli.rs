//! Command-line definitions. Every flag has a one-line help and a long help.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// poi: a network where AI work is the proof.
#[derive(Debug, Parser)]
#[command(name = "poi", version, about, propagate_version = true)]
pub(crate) struct Cli {
    #[command(flatten)]
    pub(crate) global: Global,
    #[command(subcommand)]
    pub(crate) command: Command,
}

/// Options every command accepts.
#[derive(Debug, Clone, Args)]
pub(crate) struct Global {
    /// Node home directory (config, genesis, keys, data).
    ///
    /// Defaults to $POI_HOME, then ~/.poi. `poi devnet` without --home uses a new temporary
    /// directory.
    #[arg(long, global = true, env = "POI_HOME")]
    pub(crate) home: Option<PathBuf>,
    /// API endpoint of a running node, e.g. http://127.0.0.1:7070.
    ///
    /// Defaults to the api_addr in HOME/config.toml.
    #[arg(long, global = true, value_name = "URL")]
    pub(crate) node: Option<String>,
    /// Print machine-readable JSON instead of human text.
    #[arg(long, global = true)]
    pub(crate) json: bool,
    /// Read key passwords from this file (first line) instead of $POI_PASSWORD or a prompt.
    #[arg(long, global = true, value_name = "FILE")]
    pub(crate) password_file: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Manage keys in the encrypted keystore (HOME/keys).
    #[command(subcommand)]
    Keys(KeysCmd),
    /// Sign and submit transactions.
    #[command(subcommand)]
    Tx(TxCmd),
    /// Read chain state from a node.
    #[command(subcommand)]
    Query(QueryCmd),
    /// Bond, unbond and withdraw stake; show an account's stake and tier.
    #[command(subcommand)]
    Stake(StakeCmd),
    /// Governance: propose parameter changes, treasury grants or text; vote; delegate.
    #[command(subcommand)]
    Gov(GovCmd),
    /// Offer compute: register as a provider, send heartbeats, show a provider's state.
    #[command(subcommand)]
    Provider(ProviderCmd),
    /// Consensus candidacy (register, leave, unjail) and the PoI validator agent that verifies
    /// AI work (run; see docs/agents.md).
    #[command(subcommand)]
    Validator(crate::cmd_agents::ValidatorCmd),
    /// Buy compute: submit training and inference jobs, follow and settle them.
    #[command(subcommand)]
    Job(JobCmd),
    /// The compute market: utilisation, base price, queues by tier.
    #[command(subcommand)]
    Market(MarketCmd),
    /// Initialise or start a node.
    #[command(subcommand)]
    Node(NodeCmd),
    /// Start a single-validator local chain with funded test accounts; runs until Ctrl-C.
    Devnet(DevnetArgs),
    /// Start a network of N validator processes on loopback with one shared genesis; runs
    /// until Ctrl-C. Each validator is a `poi node start` child process with its own home.
    Localnet(LocalnetArgs),
    /// Measure this machine.
    #[command(subcommand)]
    Bench(BenchCmd),
    /// Reproducible AI work on local files: train, evaluate, infer, replay, verify.
    #[command(subcommand)]
    Work(WorkCmd),
}

#[derive(Debug, Subcommand)]
pub(crate) enum WorkCmd {
    /// Train a model, committing to every step (root, checkpoints, summary in --out).
    ///
    /// Threads come from $POI_THREADS (default: every core); the results do not depend on it.
    Train(TrainArgs),
    /// Evaluate a checkpoint of a job directory on the held-out split.
    Eval {
        /// Job directory written by `poi work train`.
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
        /// Checkpoint step to evaluate [default: the last step].
        #[arg(long)]
        step: Option<u64>,
    },
    /// Classify feature rows (mlp) or generate text (charlm) from a checkpoint.
    Infer(InferArgs),
    /// Re-run a committed segment from a saved checkpoint and compare every step digest.
    ///
    /// Exits non-zero when a digest differs or the checkpoint does not match the commitment.
    Replay {
        /// Job directory written by `poi work train`.
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
        /// Step of the checkpoint to start from (0, a multiple of the checkpoint interval, or
        /// the last step).
        #[arg(long)]
        from: u64,
        /// Steps to re-execute.
        #[arg(long)]
        steps: u64,
    },
    /// Verify a segment as a validator: checkpoint, spec, committed digests and root.
    ///
    /// Exits non-zero when anything does not match the commitment.
    VerifySegment {
        /// Checkpoint file the segment starts from.
        #[arg(long, value_name = "FILE")]
        checkpoint: PathBuf,
        /// Job spec (job.json).
        #[arg(long, value_name = "FILE")]
        spec: PathBuf,
        /// Committed step digests (digests.json).
        #[arg(long, value_name = "FILE")]
        digests: PathBuf,
        /// The committed Merkle root (64 hex digits) [default: the root in --digests].
        #[arg(long, value_name = "HEX")]
        root: Option<String>,
        /// Steps to re-execute.
        #[arg(long)]
        steps: u64,
    },
}

#[derive(Debug, Args)]
pub(crate) struct TrainArgs {
    /// Model: mlp (classifier) or charlm (character transformer).
    #[arg(long, value_parser = ["mlp", "charlm"])]
    pub(crate) model: String,
    /// Shipped dataset: winequality, iris, diabetes (mlp) or liber-primus (charlm).
    ///
    /// Defaults to winequality for mlp and liber-primus for charlm.
    #[arg(long)]
    pub(crate) dataset: Option<String>,
    /// Optimizer steps.
    #[arg(long, default_value_t = 300)]
    pub(crate) steps: u64,
    /// Seed of initialisation and data order.
    #[arg(long, default_value_t = 1)]
    pub(crate) seed: u64,
    /// Job directory to write (created; earlier checkpoints there are replaced).
    #[arg(long, value_name = "DIR")]
    pub(crate) out: PathBuf,
    /// Rows (mlp) or windows (charlm) per step [default: 32 for mlp, 16 for charlm].
    #[arg(long)]
    pub(crate) batch: Option<u32>,
    /// Learning rate [default: 3e-3].
    #[arg(long)]
    pub(crate) lr: Option<f32>,
    /// Optimizer: adamw or sgd (with --momentum).
    #[arg(long, default_value = "adamw", value_parser = ["adamw", "sgd"])]
    pub(crate) optimizer: String,
    /// SGD momentum.
    #[arg(long, default_value_t = 0.9)]
    pub(crate) momentum: f32,
    /// Steps between checkpoints (step 0 and the last are always saved).
    #[arg(long, default_value_t = 100)]
    pub(crate) checkpoint_every: u64,
    /// MLP hidden widths, comma separated [default: 64,64].
    #[arg(long, value_delimiter = ',')]
    pub(crate) hidden: Vec<u32>,
    /// Transformer width [default: 64].
    #[arg(long)]
    pub(crate) d_model: Option<u32>,
    /// Transformer blocks [default: 2].
    #[arg(long)]
    pub(crate) layers: Option<u32>,
    /// Attention heads [default: 4].
    #[arg(long)]
    pub(crate) heads: Option<u32>,
    /// Context length in characters [default: 64].
    #[arg(long)]
    pub(crate) context: Option<u32>,
}

#[derive(Debug, Args)]
pub(crate) struct InferArgs {
    /// Job directory written by `poi work train`.
    #[arg(long, value_name = "DIR")]
    pub(crate) out: PathBuf,
    /// Checkpoint step to use [default: the last step].
    #[arg(long)]
    pub(crate) step: Option<u64>,
    /// A row of raw feature values, comma separated (mlp; repeatable).
    #[arg(long, value_name = "VALUES")]
    pub(crate) row: Vec<String>,
    /// Text to continue (charlm).
    #[arg(long)]
    pub(crate) prompt: Option<String>,
    /// Characters to generate (charlm).
    #[arg(long, default_value_t = 200)]
    pub(crate) tokens: u32,
    /// Sample with this seed instead of decoding greedily (charlm).
    #[arg(long)]
    pub(crate) seed: Option<u64>,
}

#[derive(Debug, Subcommand)]
pub(crate) enum BenchCmd {
    /// Signed transfers committed per second vs the raw ed25519 verification rate.
    Ledger {
        /// Blocks to measure (after one warm-up block).
        #[arg(long, default_value_t = 5)]
        blocks: u32,
        /// Transfers per block.
        #[arg(long, default_value_t = 10_000)]
        txs_per_block: u32,
        /// Funded accounts the transfers move between.
        #[arg(long, default_value_t = 20_000)]
        accounts: u32,
        /// Signatures for the raw verification rates.
        #[arg(long, default_value_t = 20_000)]
        signatures: u32,
    },
    /// Finality latency and signed-transfer throughput of N validator processes on
    /// loopback, for each N given, in one run.
    Network {
        /// Validator counts to measure, comma-separated.
        #[arg(long, value_delimiter = ',', default_value = "1,4")]
        validators: Vec<usize>,
        /// Transfers sent one at a time for the latency.
        #[arg(long, default_value_t = 30)]
        latency_samples: usize,
        /// Transfers in the throughput burst.
        #[arg(long, default_value_t = 2_000)]
        burst: usize,
        /// Milliseconds between blocks.
        #[arg(long, default_value_t = 100)]
        block_interval_ms: u64,
    },
    /// What moving the validator set costs: four validators and a full node on loopback; the
    /// set changes at an epoch boundary, the key is reshared and every engine switches.
    Reshare {
        /// Blocks per chain epoch (the switch comes one to two epochs after registering).
        #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u64).range(10..=10_000))]
        epoch_blocks: u64,
        /// Milliseconds between blocks.
        #[arg(long, default_value_t = 100)]
        block_interval_ms: u64,
    },
}

#[derive(Debug, Subcommand)]
pub(crate) enum KeysCmd {
    /// Generate a new key.
    New {
        /// Key name (letters, digits, '-' and '_').
        name: String,
        /// Store the key unencrypted. Only for throwaway devnet keys.
        #[arg(long)]
        insecure_plaintext: bool,
    },
    /// List key names, one per line.
    List,
    /// Show a key's address and public key.
    Show {
        /// Key name.
        name: String,
        /// Print only the address.
        #[arg(long)]
        address: bool,
    },
    /// Import a 32-byte ed25519 seed (64 hex digits) read from a file or standard input.
    Import {
        /// Key name.
        name: String,
        /// File holding the hex seed; standard input if absent.
        #[arg(long, value_name = "FILE")]
        seed_file: Option<PathBuf>,
        /// Store the key unencrypted. Only for throwaway devnet keys.
        #[arg(long)]
        insecure_plaintext: bool,
    },
    /// Print a key's secret seed as hex. Anyone with it controls the account.
    Export {
        /// Key name.
        name: String,
    },
}

#[derive(Debug, Subcommand)]
pub(crate) enum TxCmd {
    /// Transfer tokens.
    Send(SendArgs),
}

#[derive(Debug, Args)]
pub(crate) struct SendArgs {
    /// Recipient address (poi1...) or key name.
    #[arg(long)]
    pub(crate) to: String,
    /// Amount: base units (1500) or POI (1.5poi).
    #[arg(long)]
    pub(crate) amount: String,
    #[command(flatten)]
    pub(crate) tx: TxOptions,
}

/// What every command that signs and submits a transaction takes.
#[derive(Debug, Args)]
pub(crate) struct TxOptions {
    /// Name of the signing key (fee payer).
    #[arg(long)]
    pub(crate) from: String,
    /// Fee in base units or POI; defaults to the chain's minimum for this transaction.
    #[arg(long)]
    pub(crate) fee: Option<String>,
    /// Return after the node admits the transaction instead of waiting for its block.
    #[arg(long)]
    pub(crate) no_wait: bool,
    /// Seconds to wait for the transaction to be committed.
    #[arg(long, default_value_t = 30)]
    pub(crate) timeout_secs: u64,
}

#[derive(Debug, Subcommand)]
pub(crate) enum GovCmd {
    /// Submit a proposal with a deposit (default: `governance.deposit_min`).
    Propose {
        /// A parameter change PATH=VALUE (repeatable), e.g. rewards.royalty_bps=500.
        #[arg(long)]
        param: Vec<String>,
        /// Treasury grant recipient (address or key name).
        #[arg(long)]
        grant_to: Option<String>,
        /// Treasury grant amount: base units or POI (1.5poi).
        #[arg(long)]
        grant_amount: Option<String>,
        /// A text (signal) proposal.
        #[arg(long)]
        text: Option<String>,
        /// Make this registry version the default its name serves (`GET /models`).
        #[arg(long)]
        promote: Option<u64>,
        /// Retire this registry version: no new inference job may use it.
        #[arg(long)]
        retire: Option<u64>,
        /// Deposit: base units or POI.
        #[arg(long)]
        deposit: Option<String>,
        #[command(flatten)]
        tx: TxOptions,
    },
    /// Vote yes, no, abstain or veto on a proposal (can be changed until voting ends).
    Vote {
        /// Proposal id.
        proposal: u64,
        /// yes, no, abstain or veto.
        option: String,
        #[command(flatten)]
        tx: TxOptions,
    },
    /// Delegate your voting weight to an address or key name (`none` to stop).
    Delegate {
        /// Delegate address, key name, or `none`.
        #[arg(long)]
        to: String,
        #[command(flatten)]
        tx: TxOptions,
    },
    /// A proposal: status, tally, turnout and the height of each step.
    Show {
        /// Proposal id.
        proposal: u64,
    },
    /// Every proposal.
    List,
}

#[derive(Debug, Subcommand)]
pub(crate) enum StakeCmd {
    /// Bond exactly what is missing to reach tier N (thresholds: `poi query params`).
    Tier {
        /// The tier to reach, 1 or more.
        tier: u8,
        #[command(flatten)]
        tx: TxOptions,
    },
    /// Bond tokens from your balance: bonded stake sets your tier (see `poi stake show`).
    Bond {
        /// Amount: base units (1500) or POI (1.5poi).
        #[arg(long)]
        amount: String,
        #[command(flatten)]
        tx: TxOptions,
    },
    /// Start unbonding: the tokens leave your tier at once and can be withdrawn after the
    /// unbonding period (`staking.unbonding_blocks`).
    Unbond {
        /// Amount: base units (1500) or POI (1.5poi).
        #[arg(long)]
        amount: String,
        #[command(flatten)]
        tx: TxOptions,
    },
    /// Move every unbonding chunk whose period has passed back to your balance.
    Withdraw {
        #[command(flatten)]
        tx: TxOptions,
    },
    /// An account's bonded, locked and unbonding stake and its tier.
    Show {
        /// Address (poi1...) or key name.
        address: String,
    },
}

/// One compute unit is [`poi_repops::meter::FLOPS_PER_COMPUTE_UNIT`] metered FLOPs.
#[derive(Debug, Subcommand)]
pub(crate) enum ProviderCmd {
    /// Register the signing key's account as a provider, locking collateral from its bonded
    /// stake (bond first with `poi stake bond`).
    Register(RegisterArgs),
    /// Measure this machine: metered compute units per block it delivers on a reference job.
    Benchmark {
        /// Block interval the capacity is expressed per, in milliseconds.
        #[arg(long, default_value_t = 1_000)]
        block_ms: u64,
    },
    /// Tell the chain this provider is alive (due every `market.heartbeat_timeout_blocks`).
    Heartbeat {
        #[command(flatten)]
        tx: TxOptions,
    },
    /// A provider's capacity, ask, collateral and required collateral, reputation, slashes.
    Status {
        /// Address (poi1...) or key name.
        address: String,
    },
    /// Stop being a provider (no active jobs); its collateral is unlocked.
    Deregister {
        #[command(flatten)]
        tx: TxOptions,
    },
    /// Run the PoI provider agent: register, heartbeat, train and commit matched jobs, serve
    /// checkpoints and digests on --endpoint (see docs/agents.md).
    Run(crate::cmd_agents::ProviderRunArgs),
}

/// `poi provider register` options.
#[derive(Debug, Args)]
pub(crate) struct RegisterArgs {
    /// Capacity in compute units per block [default: measured by `poi provider benchmark`].
    #[arg(long)]
    pub(crate) capacity: Option<u64>,
    /// Lowest price per compute unit accepted: base units or POI [default: the current base
    /// price].
    #[arg(long)]
    pub(crate) ask: Option<String>,
    /// URL serving this provider's checkpoints.
    #[arg(long)]
    pub(crate) endpoint: String,
    /// Hardware description [default: this machine's CPU model and core count].
    #[arg(long)]
    pub(crate) hardware: Option<String>,
    /// Provider class: 0 standard, higher premium (`market.class_min_tier`).
    #[arg(long, default_value_t = 0)]
    pub(crate) class: u8,
    /// Stake to lock as collateral [default: what the capacity requires now].
    #[arg(long)]
    pub(crate) collateral: Option<String>,
    #[command(flatten)]
    pub(crate) tx: TxOptions,
}

#[derive(Debug, Subcommand)]
pub(crate) enum JobCmd {
    /// Submit a job; its maximum payment (units x max price) is escrowed at once.
    #[command(subcommand)]
    Submit(SubmitCmd),
    /// A job's status, provider, price, deadline, payment and refund.
    Status {
        /// Job id.
        id: u64,
    },
    /// Jobs in id order, optionally only those in one status.
    List {
        /// queued, matched, running, committed, disputed, settled, cancelled, expired or failed.
        #[arg(long)]
        status: Option<String>,
        /// Only jobs with ids above this one (the `next_after` of the previous page).
        #[arg(long)]
        after: Option<u64>,
        /// Most jobs to list (1 to 200).
        #[arg(long, default_value_t = 50)]
        limit: usize,
    },
    /// Cancel your job while it is queued or matched but not started: full refund.
    Cancel {
        /// Job id.
        id: u64,
        #[command(flatten)]
        tx: TxOptions,
    },
    /// (Provider) start a job matched to you, before its start deadline.
    Start {
        /// Job id.
        id: u64,
        #[command(flatten)]
        tx: TxOptions,
    },
    /// (Provider) commit a running job's result root and the units delivered.
    Commit {
        /// Job id.
        id: u64,
        /// Merkle root of the result, 64 hex digits (`root` of `poi work train --json`).
        #[arg(long)]
        result_root: String,
        /// Compute units delivered [default: the units bought].
        #[arg(long)]
        units_delivered: Option<u64>,
        #[command(flatten)]
        tx: TxOptions,
    },
    /// Accept a committed result: the job settles now instead of after the challenge window.
    Accept {
        /// Job id.
        id: u64,
        #[command(flatten)]
        tx: TxOptions,
    },
    /// Dispute a committed result within the challenge window.
    Dispute {
        /// Job id.
        id: u64,
        #[command(flatten)]
        tx: TxOptions,
    },
}

#[derive(Debug, Subcommand)]
pub(crate) enum SubmitCmd {
    /// A training job: the units are metered from the reference run of one step.
    Training(TrainingJobArgs),
    /// An inference job on a model version.
    Inference(InferenceJobArgs),
}

/// `poi job submit training` options.
#[derive(Debug, Args)]
pub(crate) struct TrainingJobArgs {
    /// Model: mlp or charlm.
    #[arg(long)]
    pub(crate) model: String,
    /// Dataset id (repeat for several): iris, winequality, diabetes, liber-primus.
    #[arg(long = "dataset", required = true)]
    pub(crate) datasets: Vec<String>,
    /// Training steps.
    #[arg(long, default_value_t = 300)]
    pub(crate) steps: u64,
    /// Seed of the job spec (its hash is the committed hyperparameters).
    #[arg(long, default_value_t = 1)]
    pub(crate) seed: u64,
    /// Compute units to buy [default: metered from one reference step x steps].
    #[arg(long)]
    pub(crate) units: Option<u64>,
    /// Highest price per compute unit you accept: base units or POI [default: twice the
    /// current base price]. It is escrowed for every unit and never exceeded.
    #[arg(long)]
    pub(crate) max_price: Option<String>,
    /// Commitment to the held-out eval set, 64 hex digits [default: blake3 of the job spec
    /// and "eval"].
    #[arg(long)]
    pub(crate) eval_commitment: Option<String>,
    #[command(flatten)]
    pub(crate) tx: TxOptions,
}

/// `poi job submit inference` options.
#[derive(Debug, Args)]
pub(crate) struct InferenceJobArgs {
    /// Model: mlp or charlm.
    #[arg(long)]
    pub(crate) model: String,
    /// Model version.
    #[arg(long, default_value_t = 1)]
    pub(crate) model_version: u32,
    /// The input (its blake3 hash is what goes on chain).
    #[arg(long)]
    pub(crate) input: String,
    /// Compute units to buy.
    #[arg(long)]
    pub(crate) units: u64,
    /// Highest price per compute unit you accept: base units or POI [default: twice the
    /// current base price]. It is escrowed for every unit and never exceeded.
    #[arg(long)]
    pub(crate) max_price: Option<String>,
    #[command(flatten)]
    pub(crate) tx: TxOptions,
}

#[derive(Debug, Subcommand)]
pub(crate) enum MarketCmd {
    /// Utilisation, base price, collateral multiplier, queue length and mean wait by tier.
    Stats,
}

#[derive(Debug, Subcommand)]
pub(crate) enum QueryCmd {
    /// An account's balance and nonce.
    Account {
        /// Address (poi1...) or key name.
        address: String,
        /// Include and check a Merkle proof of the account against the block's state root.
        #[arg(long)]
        prove: bool,
    },
    /// A block by height or hash (default: latest).
    Block {
        /// Height, 64-hex hash or "latest".
        #[arg(default_value = "latest")]
        id: String,
    },
    /// A transaction's status and receipt.
    Tx {
        /// Transaction hash (hex).
        hash: String,
    },
    /// Supply: genesis, minted, burned (by reason), staked, escrowed, treasury, circulating.
    Supply,
    /// What an epoch paid each stakeholder class and account, with yields.
    Rewards {
        /// The epoch (default: the last one that ended).
        #[arg(long)]
        epoch: Option<u64>,
    },
    /// Usage burns: the current rate and the burn history per epoch.
    Burn {
        /// First epoch of the history.
        #[arg(long, default_value_t = 0)]
        from: u64,
        /// Most epochs shown.
        #[arg(long, default_value_t = 20)]
        limit: usize,
    },
    /// Chain parameters.
    Params,
}

#[derive(Debug, Subcommand)]
pub(crate) enum NodeCmd {
    /// Create a home directory: config, genesis and a new validator key.
    Init(InitArgs),
    /// Start the node in HOME; runs until Ctrl-C and resumes where it stopped.
    Start {
        /// Override the API address from config.toml.
        #[arg(long)]
        api_addr: Option<SocketAddr>,
    },
}

#[derive(Debug, Args)]
pub(crate) struct InitArgs {
    /// Chain id (a-z, 0-9, '-', '_').
    #[arg(long, default_value = "poi-local")]
    pub(crate) chain_id: String,
    /// HTTP API address.
    #[arg(long, default_value = poi_node::home::API_ADDR_DEFAULT)]
    pub(crate) api_addr: SocketAddr,
    /// Consensus p2p address.
    #[arg(long, default_value = poi_node::home::P2P_ADDR_DEFAULT)]
    pub(crate) p2p_addr: SocketAddr,
    /// Milliseconds between blocks.
    #[arg(long, default_value_t = poi_node::home::BLOCK_INTERVAL_MS_DEFAULT)]
    pub(crate) block_interval_ms: u64,
    /// Fund an account at genesis: ADDRESS=AMOUNT (repeatable), e.g. poi1...=1000poi.
    #[arg(long, value_name = "ADDRESS=AMOUNT")]
    pub(crate) fund: Vec<String>,
}

#[derive(Debug, Args)]
pub(crate) struct LocalnetArgs {
    /// Validators to run (2..=16), each a separate process.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u8).range(2..=16))]
    pub(crate) validators: u8,
    /// First loopback port: validator i serves its API on BASE+2i and p2p on BASE+2i+1.
    /// 0 picks free ports. Fixed once the localnet exists.
    #[arg(long, default_value_t = 7400)]
    pub(crate) base_port: u16,
    /// Full nodes to run beside the validators (0..=8): they follow and verify the chain and
    /// serve the API, but do not vote. Full node j uses the ports after the validators'.
    #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u8).range(0..=8))]
    pub(crate) full_nodes: u8,
    /// Blocks per chain epoch (2..=100000). The validator set, and so a key reshare and an
    /// engine switch, can change only at epoch boundaries. Fixed once the localnet exists.
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u64).range(2..=100_000))]
    pub(crate) epoch_blocks: u64,
    /// Funded test accounts to create (0..=26).
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u8).range(0..=26))]
    pub(crate) accounts: u8,
    /// Milliseconds between blocks.
    #[arg(long, default_value_t = poi_node::home::BLOCK_INTERVAL_MS_DEFAULT)]
    pub(crate) block_interval_ms: u64,
}

#[derive(Debug, Args)]
pub(crate) struct DevnetArgs {
    /// HTTP API address [default: 127.0.0.1:7070, or config.toml's when resuming].
    #[arg(long)]
    pub(crate) api_addr: Option<SocketAddr>,
    /// Consensus p2p address [default: 127.0.0.1:7071]; fixed once the devnet exists.
    #[arg(long)]
    pub(crate) p2p_addr: Option<SocketAddr>,
    /// Funded test accounts to create (1..=26).
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u8).range(1..=26))]
    pub(crate) accounts: u8,
    /// Milliseconds between blocks.
    #[arg(long, default_value_t = poi_node::home::BLOCK_INTERVAL_MS_DEFAULT)]
    pub(crate) block_interval_ms: u64,
    /// Run only the chain: no providers, validators or clients doing AI work.
    #[arg(long)]
    pub(crate) no_agents: bool,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn definitions_are_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn parses_acceptance_commands() {
        let cli = Cli::try_parse_from([
            "poi", "tx", "send", "--home", "/d", "--from", "alice", "--to", "poi1x", "--amount",
            "5",
        ])
        .unwrap();
        assert_eq!(cli.global.home, Some(PathBuf::from("/d")));
        let cli =
            Cli::try_parse_from(["poi", "keys", "show", "alice", "--home", "/d", "--address"])
                .unwrap();
        assert!(matches!(
            cli.command,
            Command::Keys(KeysCmd::Show { address: true, .. })
        ));
        assert!(Cli::try_parse_from(["poi", "devnet", "--accounts", "0"]).is_err());
        assert!(Cli::try_parse_from(["poi", "devnet", "--api-addr", "nope"]).is_err());
    }
}
