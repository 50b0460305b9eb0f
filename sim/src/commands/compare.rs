//! `sim compare A.ron B.ron ... [--seeds N]`: runs each scenario (typically the same workload
//! and faults under different replication modes) and prints one table, a row per scenario
//! (`report::compare`). A scenario with `variants` gives one row per variant (e.g.
//! disk_corrupt_master: DLedger, SYNC and ASYNC master–slave under the same disk fault).
//! Exit 0: every scenario's expectations held; 1: some did not; 2: bad input.

use crate::commands::common::{load_scenario, run_report, seeds_of, select_variants, SeedOptions};
use crate::report::compare::{compare_table, CompareRow};
use clap::Args;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Args, Debug)]
#[command(
    mut_arg("seeds", |a| a.help(
        "Seeds per scenario, from each scenario's first seed (default: the scenario's count)"
    )),
    mut_arg("overrides", |a| a.help(
        "Override a field in every scenario, e.g. `--set workload.consumers=2` (repeatable)"
    ))
)]
pub struct CompareArgs {
    /// The scenario files (RON), one row each (one per variant for a scenario with `variants`).
    #[arg(required = true)]
    pub scenarios: Vec<PathBuf>,
    #[command(flatten)]
    pub options: SeedOptions,
}

pub fn compare(args: CompareArgs) -> anyhow::Result<ExitCode> {
    // Load every scenario (and its variants) first: a bad file fails before anything runs.
    let mut scenarios = Vec::new();
    for path in &args.scenarios {
        let scenario = load_scenario(path, &args.options.overrides)?;
        scenarios.extend(select_variants(&scenario, None)?);
    }
    let jobs = args.options.jobs();
    let started = std::time::Instant::now();
    let mut rows = Vec::new();
    for scenario in &scenarios {
        let seeds = seeds_of(scenario, args.options.seeds, None);
        if !args.options.quiet {
            eprintln!("compare: {} ({} seeds)", scenario.file_name, seeds.len());
        }
        let report = run_report(scenario, &seeds, jobs, !args.options.quiet);
        rows.push(CompareRow::from_report(scenario, &report));
    }
    println!(
        "compare: {} scenarios in {:.1} s wall; client unavailable = failover `client` stage \
         (fault to the first acknowledged send invoked after it), across seeds; delivered = \
         distinct messages consumers pulled, summed over seeds",
        scenarios.len(),
        started.elapsed().as_secs_f64()
    );
    println!("{}", compare_table(&rows));
    Ok(if rows.iter().all(|r| r.expectations_held) {
        ExitCode::SUCCESS
    } else {
        println!("some scenario's expectations did not hold: run it alone for the details");
        ExitCode::from(1)
    })
}
