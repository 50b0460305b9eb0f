//! `sim run SCENARIO [--seeds N | --seed S] [--variant V] [--plot worst|SEED]`: runs the seeds
//! of a scenario (each variant, side by side), prints the failover and findings tables and
//! writes the report. Exit 0: every expectation held; 1: some did not; 2: bad input.

use crate::commands::common::{
    load_scenario, plot_run, replay_command, run_report, run_report_until_finding, run_shard,
    seeds_of, select_variants, write_reports, PlotChoice, SeedOptions,
};
use crate::report::compare::{compare_table, CompareRow};
use crate::report::partial::Shard;
use crate::report::print::print_report;
use crate::report::RunReport;
use crate::run::RunSpec;
use crate::scenario::Scenario;
use clap::Args;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Args, Debug)]
#[command(
    mut_arg("seeds", |a| a.conflicts_with("seed").display_order(0)),
    mut_arg("jobs", |a| a.display_order(2)),
    mut_arg("overrides", |a| a.display_order(4)),
    mut_arg("quiet", |a| a.display_order(5))
)]
pub struct RunArgs {
    /// The scenario file (RON).
    pub scenario: PathBuf,
    #[command(flatten)]
    pub options: SeedOptions,
    /// Run only this seed.
    #[arg(long, display_order = 1)]
    pub seed: Option<u64>,
    /// Where report files go.
    #[arg(long, default_value = "reports", display_order = 3)]
    pub out: PathBuf,
    /// Draw a seed's timeline (`worst`: the slowest client failover, or a seed number) and the
    /// client failover histogram as SVGs under the report folder.
    #[arg(long, value_name = "worst|SEED", display_order = 6)]
    pub plot: Option<PlotChoice>,
    /// Run only this variant of a scenario with `variants` (default: all, side by side).
    #[arg(long, display_order = 7)]
    pub variant: Option<String>,
    /// Run only shard K of N of the seeds (positions ≡ K mod N) and write a partial report
    /// (`reports/<scenario>/partial-K-of-N.ron`); `sim merge` makes the run's report of them.
    #[arg(long, value_name = "K/N", display_order = 8)]
    pub shard: Option<Shard>,
    /// Stop at the first seed (in order) with a finding and print its replay command; seeds
    /// after it are not run. Exit 1 when one was found, 0 when none of the seeds had one.
    #[arg(long, conflicts_with = "shard", display_order = 9)]
    pub until_finding: bool,
}

pub fn run(args: RunArgs) -> anyhow::Result<ExitCode> {
    let base = load_scenario(&args.scenario, &args.options.overrides)?;
    let scenarios = select_variants(&base, args.variant.as_deref())?;
    if let Some(shard) = args.shard {
        anyhow::ensure!(
            args.plot.is_none(),
            "--plot draws from the whole run: plot after `sim merge`, not on a shard"
        );
        // A shard writes what it ran; the merge judges the run (exit 1 there, not here).
        for scenario in &scenarios {
            RunSpec::check_supported(scenario)?;
            let seeds = seeds_of(scenario, args.options.seeds, args.seed);
            run_shard(scenario, shard, &seeds, &args.options, &args.out)?;
        }
        return Ok(ExitCode::SUCCESS);
    }
    let mut rows = Vec::new();
    let mut all_held = true;
    for scenario in &scenarios {
        let report = run_one_scenario(&args, scenario)?;
        all_held &= if args.until_finding {
            report
                .per_seed
                .iter()
                .all(|outcome| outcome.findings.is_empty())
        } else {
            report.all_held()
        };
        rows.push(CompareRow::from_report(scenario, &report));
    }
    if scenarios.len() > 1 {
        println!("\nVariants of {}, side by side:", base.file_name);
        println!("{}", compare_table(&rows));
    }
    Ok(if all_held {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn run_one_scenario(args: &RunArgs, scenario: &Scenario) -> anyhow::Result<RunReport> {
    RunSpec::check_supported(scenario)?;
    let seeds = seeds_of(scenario, args.options.seeds, args.seed);
    let jobs = args.options.jobs();
    let started = std::time::Instant::now();
    let report = if args.until_finding {
        run_report_until_finding(scenario, &seeds, jobs, !args.options.quiet)
    } else {
        run_report(scenario, &seeds, jobs, !args.options.quiet)
    };
    let wall = started.elapsed();
    print_report(scenario, &report, |seed| replay_command(scenario, seed));
    let mut paths = write_reports(&report, &args.out)?;
    if let Some(choice) = args.plot {
        paths.extend(plot_run(scenario, &report, choice, &args.out)?);
    }
    let wall_s = wall.as_secs_f64().max(1e-9);
    let ran = report.per_seed.len();
    let seeds_per_minute = ran as f64 / wall_s * 60.0;
    let simulated_s: f64 = report
        .per_seed
        .iter()
        .map(|outcome| outcome.end_us as f64 / 1e6)
        .sum();
    println!(
        "{} seeds in {:.1} s wall ({:.0} seeds/min, {:.0} simulated s per wall s, {jobs} jobs). \
         Report: {}",
        ran,
        wall.as_secs_f64(),
        seeds_per_minute,
        simulated_s / wall_s,
        paths
            .iter()
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>()
            .join(", ")
    );
    if args.until_finding {
        match report
            .per_seed
            .iter()
            .find(|outcome| !outcome.findings.is_empty())
        {
            Some(first) => {
                let kinds: Vec<&str> = first
                    .findings
                    .iter()
                    .map(|finding| finding.kind().as_str())
                    .collect::<std::collections::BTreeSet<_>>()
                    .into_iter()
                    .collect();
                println!(
                    "first finding after {} of {} seeds: seed {} ({}). REPRODUCE WITH: {}",
                    report.per_seed.len(),
                    seeds.len(),
                    first.seed,
                    kinds.join(", "),
                    replay_command(scenario, first.seed)
                );
            }
            None => println!("no finding in {} seeds", seeds.len()),
        }
    }
    Ok(report)
}
