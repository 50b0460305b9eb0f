//! `sim run --plot worst|SEED` and `sim replay --plot`: SVG pictures under
//! `reports/<scenario>/`. A timeline needs the seed's observations and history, which a
//! report does not keep: the seed is run again (it is deterministic, so it is the same run).

use crate::report::plot::{failover_distribution_svg, timeline_svg};
use crate::report::RunReport;
use crate::run::seeds as runner;
use crate::scenario::Scenario;
use crate::world::WorldSpec;
use anyhow::Context;
use std::path::{Path, PathBuf};
use std::sync::Arc;

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

/// After `sim run`: the chosen seed's timeline and the run's failover distribution.
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
pub fn plot_seed(
    scenario: &Scenario,
    seed: u64,
    why: &str,
    out_dir: &Path,
) -> anyhow::Result<PathBuf> {
    let spec = Arc::new(WorldSpec::from_scenario(scenario));
    let (outcome, run) = runner::run_one_full(spec.clone(), seed)
        .map_err(|message| anyhow::anyhow!("seed {seed} panicked, nothing to plot: {message}"))?;
    let worst = outcome
        .failovers
        .iter()
        .max_by_key(|f| f.client_us)
        .map(|f| {
            format!(
                "; failover detect {} / elect {} / client {} ms",
                crate::report::ms(f.detect_us),
                crate::report::ms(f.elect_us),
                crate::report::ms(f.client_us)
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
    write(&path, &timeline_svg(&spec, &run, &title)?)?;
    Ok(path)
}

fn write(path: &Path, text: &str) -> anyhow::Result<()> {
    std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))
}
