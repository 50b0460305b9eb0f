//! The `sim` command line. Exit codes: 0 every expectation held, 1 a finding or regression,
//! 2 bad input.

use clap::{Parser, Subcommand};
use sim::scenario::ScenarioError;
use std::process::ExitCode;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser, Debug)]
#[command(
    name = "sim",
    about = "Deterministic simulation of broker HA: failover latency and safety, per seed",
    after_help = "`sim SCENARIO.ron` is short for `sim run SCENARIO.ron`."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run a scenario's seeds and print the failover and findings tables.
    Run(sim::commands::run::RunArgs),
    /// Run one seed twice with a full trace and check that both runs are identical.
    Replay(sim::commands::replay::ReplayArgs),
    /// Compare a run with a committed baseline; exit 1 if a figure regressed.
    Regress(sim::commands::regress::RegressArgs),
    /// Run every combination of several `--set KEY=V1,V2` values; one table, one chart.
    Sweep(sim::commands::sweep::SweepArgs),
    /// Run several scenarios (e.g. one per replication mode) and print one table across them.
    Compare(sim::commands::compare::CompareArgs),
    /// Merge the partial reports of a sharded run (`run --shard K/N`) into the run's report.
    Merge(sim::commands::merge::MergeArgs),
    /// Per finding kind: the share of seeds that found it, the median seeds to find it, and
    /// how many clean seeds make a fix believable.
    Findability(sim::commands::findability::FindabilityArgs),
    /// Shrink a failing seed to the smallest scenario that still fails the same way.
    Shrink(sim::commands::shrink::ShrinkArgs),
    /// Check a history file for linearizability (JSON lines, or a Jepsen etcd log).
    CheckHistory(sim::commands::check_history::CheckHistoryArgs),
}

fn main() -> ExitCode {
    let mut args: Vec<String> = std::env::args().collect();
    // `sim SCENARIO.ron ...` means `sim run SCENARIO.ron ...`.
    if args.get(1).is_some_and(|a| a.ends_with(".ron")) {
        args.insert(1, "run".to_string());
    }
    let cli = Cli::parse_from(args);
    let result = match cli.command {
        Command::Run(args) => sim::commands::run::run(args),
        Command::Replay(args) => sim::commands::replay::replay(args),
        Command::Regress(args) => sim::commands::regress::regress(args),
        Command::Sweep(args) => sim::commands::sweep::sweep(args),
        Command::Compare(args) => sim::commands::compare::compare(args),
        Command::Merge(args) => sim::commands::merge::merge(args),
        Command::Findability(args) => sim::commands::findability::run(args),
        Command::Shrink(args) => sim::commands::shrink::run(args),
        Command::CheckHistory(args) => sim::commands::check_history::check_history(args),
    };
    match result {
        Ok(code) => code,
        Err(error) => {
            if let Some(scenario_error) = error.downcast_ref::<ScenarioError>() {
                eprintln!("error: {scenario_error}");
                return ExitCode::from(scenario_error.exit_code() as u8);
            }
            // Bad or unsupported input, or an IO failure writing reports: not a finding.
            eprintln!("error: {}", chain_message(&error));
            ExitCode::from(2)
        }
    }
}

/// The error and its causes, each once: many error types already print their source.
fn chain_message(error: &anyhow::Error) -> String {
    let mut message = error.to_string();
    for cause in error.chain().skip(1) {
        let text = cause.to_string();
        if !message.contains(&text) {
            message.push_str(": ");
            message.push_str(&text);
        }
    }
    message
}
