//! The poi command: keys, transactions, queries, nodes and a one-command devnet.

use std::process::ExitCode;

use clap::Parser;

mod cli;
mod client;
mod cmd_agents;
mod cmd_bench;
mod cmd_bench_network;
mod cmd_bench_reshare;
mod cmd_gov;
mod cmd_keys;
mod cmd_localnet;
mod cmd_market;
mod cmd_node;
mod cmd_query;
mod cmd_stake;
mod cmd_tx;
mod cmd_validator;
mod cmd_work;
mod devnet;
pub mod keystore;
mod output;

// The node allocates and frees many small buffers per transaction (keys, values, events,
// receipts); mimalloc's thread-local free lists serve them faster than glibc's malloc and keep
// freed pages instead of returning them to the OS between blocks. See docs/benchmarks.md.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let args = cli::Cli::parse();
    if !matches!(
        args.command,
        cli::Command::Node(_)
            | cli::Command::Devnet(_)
            | cli::Command::Validator(_)
            | cli::Command::Provider(cli::ProviderCmd::Run(_))
    ) {
        restore_sigpipe();
    }
    match run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            // One line: the error and its causes, prefixed with the program name.
            let mut line = format!("poi: error: {error}");
            for cause in error.chain().skip(1) {
                line.push_str(&format!(": {cause}"));
            }
            eprintln!("{line}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: cli::Cli) -> anyhow::Result<()> {
    let global = args.global;
    match args.command {
        cli::Command::Keys(cmd) => cmd_keys::run(&global, cmd),
        cli::Command::Tx(cmd) => cmd_tx::run(&global, cmd),
        cli::Command::Query(cmd) => cmd_query::run(&global, cmd),
        cli::Command::Stake(cmd) => cmd_stake::run(&global, cmd),
        cli::Command::Gov(cmd) => cmd_gov::run(&global, cmd),
        cli::Command::Provider(cmd) => cmd_market::run_provider(&global, cmd),
        cli::Command::Validator(cmd) => cmd_agents::run_validator(&global, cmd),
        cli::Command::Job(cmd) => cmd_market::run_job(&global, cmd),
        cli::Command::Market(cmd) => cmd_market::run_market(&global, cmd),
        cli::Command::Node(cmd) => cmd_node::run_node(&global, cmd),
        cli::Command::Devnet(cmd) => cmd_node::run_devnet(&global, cmd),
        cli::Command::Localnet(cmd) => cmd_localnet::run(&global, cmd),
        cli::Command::Bench(cmd) => cmd_bench::run(&global, cmd),
        cli::Command::Work(cmd) => cmd_work::run(&global, cmd),
    }
}

/// Lets `poi query ... | head` end quietly when the reader goes away, like other Unix filters,
/// instead of panicking inside `println!`. Not used for the node, whose sockets must survive
/// peers that hang up.
fn restore_sigpipe() {
    #[cfg(unix)]
    // SAFETY: called at start-up before any thread exists; SIG_DFL is a valid disposition.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}
