//! `poi bench ...`.

use anyhow::Context;
use poi_node::bench::{LedgerBenchOptions, run_ledger_bench};

use crate::cli::{BenchCmd, Global};
use crate::output;

pub(crate) fn run(global: &Global, cmd: BenchCmd) -> anyhow::Result<()> {
    match cmd {
        BenchCmd::Reshare {
            epoch_blocks,
            block_interval_ms,
        } => {
            let run = crate::cmd_bench_reshare::run(epoch_blocks, block_interval_ms, |step| {
                eprintln!("bench: {step}")
            })?;
            if global.json {
                output::json(&serde_json::to_value(&run)?);
                return Ok(());
            }
            println!(
                "reshare: 4 validators + 1 full node on loopback, {block_interval_ms} ms blocks, \
                 {epoch_blocks}-block epochs"
            );
            println!(
                "  registered -> generation 1 running: {:.1} s (boundary block {})",
                run.registered_to_switch_s, run.boundary_height
            );
            println!(
                "  switch gap: {} ms; median block gap around it: {} ms (x{:.1})",
                run.switch_gap_ms,
                run.block_gap_p50_ms,
                run.switch_gap_ms as f64 / run.block_gap_p50_ms.max(1) as f64
            );
        }
        BenchCmd::Network {
            validators,
            latency_samples,
            burst,
            block_interval_ms,
        } => {
            anyhow::ensure!(
                latency_samples > 0 && burst > 0,
                "--latency-samples and --burst must be positive"
            );
            let runs = crate::cmd_bench_network::run(
                &validators,
                latency_samples,
                burst,
                block_interval_ms,
                |step| eprintln!("bench: {step}"),
            )?;
            if global.json {
                output::json(&serde_json::to_value(&runs)?);
                return Ok(());
            }
            println!(
                "network: validator processes on loopback, {block_interval_ms} ms block interval"
            );
            println!("  validators  latency p50   latency p90   transfers/s");
            for run in &runs {
                println!(
                    "  {:>10}  {:>8.0} ms   {:>8.0} ms   {:>11.0}",
                    run.validators, run.latency_p50_ms, run.latency_p90_ms, run.tps
                );
            }
            if let (Some(first), Some(last)) = (runs.first(), runs.last())
                && runs.len() > 1
            {
                println!(
                    "  {} vs {} validators: latency x{:.2}, throughput x{:.2}",
                    last.validators,
                    first.validators,
                    last.latency_p50_ms / first.latency_p50_ms,
                    last.tps / first.tps
                );
            }
        }
        BenchCmd::Ledger {
            blocks,
            txs_per_block,
            accounts,
            signatures,
        } => {
            anyhow::ensure!(
                blocks > 0 && txs_per_block > 0,
                "--blocks and --txs-per-block must be positive"
            );
            anyhow::ensure!(
                txs_per_block <= poi_core::limits::BLOCK_TXS_MAX,
                "--txs-per-block is above the block limit {}",
                poi_core::limits::BLOCK_TXS_MAX
            );
            anyhow::ensure!(
                accounts >= txs_per_block,
                "--accounts must be at least --txs-per-block"
            );
            let dir = tempfile::tempdir().context("cannot create a temporary directory")?;
            let options = LedgerBenchOptions {
                blocks,
                txs_per_block,
                accounts,
                signatures,
            };
            let report = run_ledger_bench(dir.path(), &options, |step| eprintln!("bench: {step}"))?;
            if global.json {
                output::json(&serde_json::to_value(&report)?);
                return Ok(());
            }
            println!(
                "ledger: {} blocks of {} signed transfers, {} threads",
                report.blocks, report.txs_per_block, report.threads
            );
            println!(
                "  committed         {:>10.0} transfers/s  ({:.1} ms per block)",
                report.ledger_tps, report.block_ms
            );
            println!(
                "    CPU, all threads{:>10.1} ms  (user + system)",
                report.cpu_ms
            );
            println!(
                "    signature stage {:>10.1} ms  (decode + batch verify, overlaps the rest)",
                report.check_ms
            );
            println!("    waiting for it  {:>10.1} ms", report.wait_ms);
            println!("    execute         {:>10.1} ms", report.execute_ms);
            println!("    state root      {:>10.1} ms", report.root_ms);
            println!(
                "    commit (fsync)  {:>10.1} ms  (commit thread, overlaps the next block)",
                report.commit_ms
            );
            println!("    waiting for it  {:>10.1} ms", report.commit_wait_ms);
            println!("ed25519 verification (the limit for signed transactions):");
            println!(
                "  one core          {:>10.0} signatures/s",
                report.verify_single_core
            );
            println!(
                "  all cores         {:>10.0} signatures/s",
                report.verify_all_cores
            );
            println!(
                "  batched, all      {:>10.0} signatures/s  (batches of 128)",
                report.verify_batch_all_cores
            );
            println!(
                "  batched, all      {:>10.0} signatures/s  (batches of 1024)",
                report.verify_large_batch_all_cores
            );
            println!(
                "ledger / limit      {:>10.1} %",
                report.ratio_to_limit * 100.0
            );
        }
    }
    Ok(())
}
