//! The poi command: keys, transactions, queries, nodes and a one-command devnet.

use std::process::ExitCode;

use clap::Parser;

mod cli;
mod client;
mod cmd_bench;
mod cmd_keys;
mod cmd_node;
mod cmd_query;
mod cmd_tx;
pub mod keystore;
mod output;

fn main() -> ExitCode {
    let args = cli::Cli::parse();
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
        cli::Command::Node(cmd) => cmd_node::run_node(&global, cmd),
        cli::Command::Devnet(cmd) => cmd_node::run_devnet(&global, cmd),
        cli::Command::Bench(cmd) => cmd_bench::run(&global, cmd),
    }
}
