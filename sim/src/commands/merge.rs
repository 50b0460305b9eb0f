//! `sim merge PARTIAL... [--out DIR]`: the report of a sharded run (`sim run --shard K/N` on
//! several machines), byte for byte the one a single run writes, from every shard's partial
//! report. Partials of several variants may be given together: one report per variant.
//! Exit 0: every expectation held; 1: some did not; 2: bad input (a shard missing or twice,
//! shards of different runs, a scenario file that changed since).

use crate::commands::common::{load_scenario, replay_command, select_variants, write_reports};
use crate::report::partial::{self, PartialReport};
use crate::report::print::print_report;
use anyhow::Context;
use clap::Args;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(Args, Debug)]
pub struct MergeArgs {
    /// The shards' partial reports (`reports/<scenario>/partial-K-of-N.ron`).
    #[arg(required = true)]
    pub partials: Vec<PathBuf>,
    /// Where the merged report goes.
    #[arg(long, default_value = "reports")]
    pub out: PathBuf,
}

pub fn merge(args: MergeArgs) -> anyhow::Result<ExitCode> {
    // Per run (scenario name, variants included): its partials.
    let mut runs: BTreeMap<String, Vec<(String, PartialReport)>> = BTreeMap::new();
    for path in &args.partials {
        let partial = PartialReport::load(path)?;
        runs.entry(partial.scenario.clone())
            .or_default()
            .push((path.display().to_string(), partial));
    }
    let mut all_held = true;
    for (name, partials) in runs {
        let first = &partials[0].1;
        let overrides: Vec<String> = first
            .overrides
            .iter()
            .map(|(key, value)| format!("{key}={value}"))
            .collect();
        let base = load_scenario(Path::new(&first.scenario_file), &overrides)
            .with_context(|| format!("loading the scenario of {name} again"))?;
        let scenario = select_variants(&base, first.variant.as_deref())?
            .into_iter()
            .find(|scenario| scenario.name == name)
            .with_context(|| format!("{}: no run named {name:?}", first.scenario_file))?;
        let shards = partials.len();
        let report = partial::merge(&scenario, partials)?;
        print_report(&scenario, &report, |seed| replay_command(&scenario, seed));
        let paths = write_reports(&report, &args.out)?;
        println!(
            "merged {shards} shards of {name}: {} seeds. Report: {}",
            report.seeds.len(),
            paths
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        );
        all_held &= report.all_held();
    }
    Ok(if all_held {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
