//! `sim regress SCENARIO --baseline FILE`: run the baseline's seeds and compare every failover
//! percentile and finding count with it (see `report::regress` for what counts as a
//! regression). Exit 0: nothing regressed; 1: a figure regressed; 2: bad input.

use crate::commands::common::{load_scenario, run_report, run_shard, SeedOptions};
use crate::report::partial::Shard;
use crate::report::regress::{compare, Baseline, FigureVerdict, Tolerance};
use crate::report::RunReport;
use crate::scenario::Scenario;
use anyhow::Context;
use clap::Args;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(Args, Debug)]
#[command(
    mut_arg("seeds", |a| a.help(
        "Run this many seeds from the scenario's first seed instead of the baseline's seeds"
    )),
    mut_arg("overrides", |a| a.help(
        "More overrides, applied after the ones the baseline records (repeatable)"
    ))
)]
pub struct RegressArgs {
    /// The scenario file (RON).
    pub scenario: PathBuf,
    /// The baseline file, e.g. reports/baselines/leader_crash.ron.
    #[arg(long)]
    pub baseline: PathBuf,
    /// How much slower a timing figure may get, relative to the baseline (e.g. 10%, 0.1).
    #[arg(long, default_value = "10%")]
    pub tolerance: String,
    /// ...and in absolute terms: changes up to this never count (tiny figures, e.g. a 0 ms
    /// stale-leader window, would otherwise regress by "infinitely many" percent).
    #[arg(long, default_value = "50ms")]
    pub floor: String,
    /// Write the baseline from this run instead of comparing (creates the file if missing).
    #[arg(long)]
    pub update: bool,
    /// Exit 0 when figures changed for the better beyond the tolerance (faster failover, fewer
    /// findings), without rewriting the baseline. Without it such a change exits 1: with
    /// deterministic runs, a figure that gets much better after an unrelated edit is suspect.
    #[arg(long)]
    pub accept: bool,
    /// Run only shard K of N of the seeds and write a partial report under `--out` (no
    /// comparison); `sim merge` the shards, then compare the merged report with `--report`.
    #[arg(long, value_name = "K/N", conflicts_with_all = ["update", "report"])]
    pub shard: Option<Shard>,
    /// Compare this report (e.g. `sim merge`'s) with the baseline instead of running seeds.
    #[arg(long, value_name = "REPORT.ron")]
    pub report: Option<PathBuf>,
    /// Where `--shard` writes its partial report.
    #[arg(long, default_value = "reports")]
    pub out: PathBuf,
    #[command(flatten)]
    pub options: SeedOptions,
}

pub fn regress(args: RegressArgs) -> anyhow::Result<ExitCode> {
    let tolerance = Tolerance::parse(&args.tolerance, &args.floor)
        .map_err(anyhow::Error::msg)
        .context("--tolerance/--floor")?;
    let baseline = if args.update && !args.baseline.exists() {
        None
    } else {
        Some(Baseline::load(&args.baseline)?)
    };
    // What the baseline was measured with, then what the command line adds.
    let mut overrides: Vec<String> = baseline
        .iter()
        .flat_map(|b| b.overrides.iter().map(|(k, v)| format!("{k}={v}")))
        .collect();
    overrides.extend(args.options.overrides.iter().cloned());
    let scenario = load_scenario(&args.scenario, &overrides)?;
    if let Some(baseline) = &baseline {
        anyhow::ensure!(
            baseline.scenario == scenario.name,
            "{} is a baseline of scenario {:?}, not {:?}",
            args.baseline.display(),
            baseline.scenario,
            scenario.name
        );
    }
    let seeds: Vec<u64> = match (args.options.seeds, &baseline) {
        (Some(count), _) => (scenario.seeds.first..scenario.seeds.first + count).collect(),
        (None, Some(baseline)) => baseline.seeds.clone(),
        (None, None) => scenario.seeds.iter().collect(),
    };
    if let Some(shard) = args.shard {
        run_shard(&scenario, shard, &seeds, &args.options, &args.out)?;
        return Ok(ExitCode::SUCCESS);
    }
    let jobs = args.options.jobs();
    let started = std::time::Instant::now();
    let report = match &args.report {
        Some(path) => load_report(path, &scenario, &seeds)?,
        None => run_report(&scenario, &seeds, jobs, !args.options.quiet),
    };
    let wall = started.elapsed().as_secs_f64();
    println!(
        "scenario {} ({}, hash {}), {} seeds in {wall:.1} s wall",
        report.scenario,
        report.scenario_file,
        report.scenario_hash,
        seeds.len()
    );
    if args.update {
        let fresh = Baseline::from_report(&report);
        fresh
            .save(&args.baseline)
            .with_context(|| format!("writing {}", args.baseline.display()))?;
        println!("{}", crate::report::stages_table(&report));
        println!(
            "baseline written: {} ({} seeds, findings {:?})",
            args.baseline.display(),
            fresh.seeds.len(),
            fresh.findings_by_kind
        );
        return Ok(ExitCode::SUCCESS);
    }
    let baseline = baseline.expect("invariant: without --update the baseline was loaded");
    let comparison = compare(&baseline, &report, tolerance);
    println!(
        "compared with {} (tolerance {} and at least {} slower per timing figure; counts exact):",
        args.baseline.display(),
        args.tolerance,
        args.floor
    );
    println!("{}", comparison.table());
    for note in &comparison.notes {
        println!("note: {note}");
    }
    let regressed = comparison.count(FigureVerdict::Regressed);
    let changed = comparison.count(FigureVerdict::Changed);
    let update = format!(
        "cargo run --release -p sim -- regress {} --baseline {} --update",
        args.scenario.display(),
        args.baseline.display()
    );
    if regressed > 0 {
        println!(
            "REGRESSION: {regressed} figure(s) worse than the baseline ({changed} changed for \
             the better). If the change is intended: {update}"
        );
        Ok(ExitCode::from(1))
    } else if changed > 0 && !args.accept {
        println!(
            "CHANGED: {changed} figure(s) better than the baseline beyond the tolerance. Runs \
             are deterministic: find the edit that moved them. If it is intended: {update} \
             (or --accept to pass without rewriting the baseline)"
        );
        Ok(ExitCode::from(1))
    } else if changed > 0 {
        println!("no regression; {changed} figure(s) changed for the better, accepted");
        Ok(ExitCode::SUCCESS)
    } else {
        println!("no regression, and no figure changed beyond the tolerance");
        Ok(ExitCode::SUCCESS)
    }
}

/// `--report`: a report of this scenario (same file hash and overrides) and of these seeds.
fn load_report(path: &Path, scenario: &Scenario, seeds: &[u64]) -> anyhow::Result<RunReport> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let report: RunReport = ron::from_str(&text).map_err(|error| {
        anyhow::anyhow!(
            "{}:{}:{}: not a run report: {}",
            path.display(),
            error.position.line,
            error.position.col,
            error.code
        )
    })?;
    let expected_hash = scenario.source_hash.to_string();
    anyhow::ensure!(
        report.scenario == scenario.name && report.scenario_hash == expected_hash,
        "{} is a report of {:?} (hash {}), not of {} as it is now ({:?}, hash {expected_hash})",
        path.display(),
        report.scenario,
        report.scenario_hash,
        scenario.file_name,
        scenario.name
    );
    anyhow::ensure!(
        report.overrides == scenario.overrides,
        "{} was run with overrides {:?}, the baseline with {:?}",
        path.display(),
        report.overrides,
        scenario.overrides
    );
    anyhow::ensure!(
        report.seeds == seeds,
        "{} holds seeds {:?}, the comparison needs {:?}",
        path.display(),
        report.seeds,
        seeds
    );
    Ok(report)
}
