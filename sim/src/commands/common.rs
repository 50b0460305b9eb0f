//! What the subcommands share, below them all (siblings never import each other): the seed
//! options, loading a scenario with `--set` overrides, choosing variants and seeds, running
//! seeds into a report, writing report files, the replay command, and plots of a seed.

use crate::report::partial::{PartialReport, Shard};
use crate::report::plot::{failover_distribution_svg, timeline_svg};
use crate::report::{self, RunReport};
use crate::run::seeds as runner;
use crate::run::RunSpec;
use crate::scenario::Scenario;
use anyhow::Context;
use clap::Args;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The options of the commands that run seeds (`run`, `regress`, `sweep`, `compare`); each
/// command words `--seeds` and `--set` for what they mean there (`#[command(mut_arg(...))]`).
#[derive(Args, Debug)]
pub struct SeedOptions {
    /// Run this many seeds from the scenario's first seed instead of its count.
    #[arg(long)]
    pub seeds: Option<u64>,
    /// Seeds run at once (default: all cores).
    #[arg(long)]
    pub jobs: Option<usize>,
    /// Override a scenario field, e.g. `--set raft.heartbeat_interval=500ms` (repeatable).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub overrides: Vec<String>,
    /// Print no progress bar.
    #[arg(long)]
    pub quiet: bool,
}

impl SeedOptions {
    /// `--jobs`, or every core.
    pub fn jobs(&self) -> usize {
        self.jobs.unwrap_or_else(default_jobs)
    }
}

pub fn default_jobs() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// Loads a scenario and applies `--set` overrides.
pub fn load_scenario(path: &Path, overrides: &[String]) -> anyhow::Result<Scenario> {
    let mut scenario = Scenario::load(path)?;
    for item in overrides {
        let (key, value) = item
            .split_once('=')
            .with_context(|| format!("--set {item:?}: expected KEY=VALUE"))?;
        scenario = scenario.with_override(key, value)?;
    }
    RunSpec::check_supported(&scenario)?;
    Ok(scenario)
}

/// The command that replays one seed of this scenario exactly.
pub fn replay_command(scenario: &Scenario, seed: u64) -> String {
    let mut command = format!(
        "cargo run --release -p sim -- replay {} --seed {seed}",
        scenario.file_name
    );
    for (key, value) in &scenario.overrides {
        command.push_str(&format!(" --set {key}={value}"));
    }
    if let Some(variant) = &scenario.variant {
        command.push_str(&format!(" --variant {variant}"));
    }
    command
}

/// The scenarios a run covers: every variant (or the scenario itself if it has none), or only
/// the one `--variant` names.
pub fn select_variants(scenario: &Scenario, only: Option<&str>) -> anyhow::Result<Vec<Scenario>> {
    let all = scenario.variant_scenarios()?;
    match only {
        None => Ok(all),
        Some(name) => {
            let known: Vec<&str> = scenario.variants.iter().map(|v| v.name.as_str()).collect();
            let chosen: Vec<Scenario> = all
                .into_iter()
                .filter(|s| s.variant.as_deref() == Some(name))
                .collect();
            anyhow::ensure!(
                !chosen.is_empty(),
                "{}: no variant {name:?} (variants: {})",
                scenario.file_name,
                if known.is_empty() {
                    "none".to_string()
                } else {
                    known.join(", ")
                }
            );
            Ok(chosen)
        }
    }
}

/// `--seed S`: that seed; `--seeds N`: N seeds from the scenario's first; else its seeds.
pub fn seeds_of(scenario: &Scenario, count: Option<u64>, single: Option<u64>) -> Vec<u64> {
    match (single, count) {
        (Some(seed), _) => vec![seed],
        (None, Some(count)) => (scenario.seeds.first..scenario.seeds.first + count).collect(),
        (None, None) => scenario.seeds.iter().collect(),
    }
}

/// Runs the seeds and builds the report (no printing).
pub fn run_report(scenario: &Scenario, seeds: &[u64], jobs: usize, progress: bool) -> RunReport {
    let spec = Arc::new(RunSpec::from_scenario(scenario));
    let outcomes = runner::run_seeds(spec, seeds, jobs, progress);
    RunReport::new(scenario, seeds, outcomes)
}

/// `run_report` that stops at the first seed with a finding: the report covers the seeds up
/// to it (all of them when none has one).
pub fn run_report_until_finding(
    scenario: &Scenario,
    seeds: &[u64],
    jobs: usize,
    progress: bool,
) -> RunReport {
    let spec = Arc::new(RunSpec::from_scenario(scenario));
    let outcomes = runner::run_seeds_until(spec, seeds, jobs, progress, true);
    RunReport::new(scenario, &seeds[..outcomes.len()], outcomes)
}

/// `--shard K/N`: runs this shard's part of `seeds` and writes its partial report under
/// `out` (`sim merge` puts the shards together); prints what it wrote.
pub fn run_shard(
    scenario: &Scenario,
    shard: Shard,
    seeds: &[u64],
    options: &SeedOptions,
    out: &Path,
) -> anyhow::Result<PathBuf> {
    let mine = shard.seeds(seeds);
    let spec = Arc::new(RunSpec::from_scenario(scenario));
    let started = std::time::Instant::now();
    let outcomes = runner::run_seeds(spec, &mine, options.jobs(), !options.quiet);
    let findings: usize = outcomes.iter().map(|o| o.findings.len()).sum();
    let partial = PartialReport::new(scenario, shard, seeds, outcomes);
    let path = partial
        .write(out)
        .with_context(|| format!("writing the partial report under {}", out.display()))?;
    println!(
        "shard {shard} of {}: {} of {} seeds in {:.1} s wall, {findings} finding(s). Partial report: {} \
         (merge the {} shards with `sim merge`)",
        scenario.name,
        mine.len(),
        seeds.len(),
        started.elapsed().as_secs_f64(),
        path.display(),
        shard.count
    );
    Ok(path)
}

/// Writes the report files and the checker's pages under `out`; returns their paths.
pub fn write_reports(report: &RunReport, out: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let mut paths = report::write_report(report, out)
        .with_context(|| format!("writing the report under {}", out.display()))?;
    paths.extend(
        report::write_check_pages(report, out)
            .with_context(|| format!("writing checker pages under {}", out.display()))?,
    );
    Ok(paths)
}

/// Which seed `--plot` draws.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PlotChoice {
    /// The seed with the slowest client-perceived failover (ties: the lowest seed).
    Worst,
    Seed(u64),
}

impl std::str::FromStr for PlotChoice {
    type Err = String;
    fn from_str(text: &str) -> Result<PlotChoice, String> {
        match text {
            "worst" => Ok(PlotChoice::Worst),
            seed => seed
                .parse()
                .map(PlotChoice::Seed)
                .map_err(|_| format!("{text:?}: expected `worst` or a seed number")),
        }
    }
}

/// The seed `choice` names among the report's seeds.
pub fn chosen_seed(report: &RunReport, choice: PlotChoice) -> Option<u64> {
    match choice {
        PlotChoice::Seed(seed) => Some(seed),
        PlotChoice::Worst => report
            .per_seed
            .iter()
            .max_by_key(|o| (o.worst_client_us(), std::cmp::Reverse(o.seed)))
            .map(|o| o.seed),
    }
}

/// After `sim run --plot`: the chosen seed's timeline and the run's failover distribution.
pub fn plot_run(
    scenario: &Scenario,
    report: &RunReport,
    choice: PlotChoice,
    out_dir: &Path,
) -> anyhow::Result<Vec<PathBuf>> {
    let dir = out_dir.join(&report.scenario);
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let mut paths = Vec::new();
    let distribution = dir.join("failover-client.svg");
    write(&distribution, &failover_distribution_svg(report)?)?;
    paths.push(distribution);
    if let Some(seed) = chosen_seed(report, choice) {
        let why = match choice {
            PlotChoice::Worst => "worst client-perceived failover",
            PlotChoice::Seed(_) => "chosen",
        };
        paths.push(plot_seed(scenario, seed, why, out_dir)?);
    }
    Ok(paths)
}

/// Runs `seed` again, keeping everything, and writes `DIR/<scenario>/seed-<S>.timeline.svg`.
/// A timeline needs the seed's observations and history, which a report does not keep; the
/// seed is deterministic, so it is the same run.
pub fn plot_seed(
    scenario: &Scenario,
    seed: u64,
    why: &str,
    out_dir: &Path,
) -> anyhow::Result<PathBuf> {
    let spec = Arc::new(RunSpec::from_scenario(scenario));
    let (outcome, run) = runner::run_one_full(spec.clone(), seed)
        .map_err(|message| anyhow::anyhow!("seed {seed} panicked, nothing to plot: {message}"))?;
    let worst = outcome
        .failovers
        .iter()
        .max_by_key(|f| f.client_us)
        .map(|f| {
            format!(
                "; failover detect {} / elect {} / client {} ms",
                report::ms(f.detect_us),
                report::ms(f.elect_us),
                report::ms(f.client_us)
            )
        })
        .unwrap_or_default();
    let overrides: String = scenario
        .overrides
        .iter()
        .map(|(k, v)| format!(" {k}={v}"))
        .collect();
    let title = format!(
        "{} seed {seed} ({why}){overrides}{worst}; {} findings",
        scenario.name,
        outcome.findings.len()
    );
    let path = out_dir
        .join(&scenario.name)
        .join(format!("seed-{seed}.timeline.svg"));
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    write(
        &path,
        &timeline_svg(&spec, &scenario.faults, &run, &outcome, &title)?,
    )?;
    Ok(path)
}

fn write(path: &Path, text: &str) -> anyhow::Result<()> {
    std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))
}
