//! `sim findability SCENARIO --seeds N [--variant V]`: how findable each kind of finding is.
//! Runs the seeds, then prints per finding kind the share of seeds that found it, the first
//! seed that did, the median number of seeds from one finding seed to the next (a sample of
//! "seeds to the first one" per stretch), and how many clean seeds in a row make a fix
//! believable at 95 % (if the share were still p, n clean seeds in a row happen with
//! probability (1 - p)^n < 0.05). Exit 0 (the figures are the answer); 2: bad input.

use crate::commands::common::{load_scenario, run_report, seeds_of, select_variants, SeedOptions};
use crate::run::outcome::{FindingKind, SeedOutcome};
use crate::run::RunSpec;
use clap::Args;
use comfy_table::{presets::UTF8_FULL_CONDENSED, Table};
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Args, Debug)]
pub struct FindabilityArgs {
    /// The scenario file (RON).
    pub scenario: PathBuf,
    #[command(flatten)]
    pub options: SeedOptions,
    /// Only this variant of a scenario with `variants` (default: each, one table each).
    #[arg(long)]
    pub variant: Option<String>,
}

/// One finding kind's figures over a run's seeds.
#[derive(Clone, Debug, PartialEq)]
pub struct Findability {
    pub kind: FindingKind,
    /// Seeds (of `seeds`) with at least one finding of this kind.
    pub hits: usize,
    pub seeds: usize,
    /// The first seed with it.
    pub first_seed: u64,
    /// Median of the stretches "seeds run until the next one with it", the first stretch
    /// counted from the start (so one hit gives its position, 1-based).
    pub median_seeds_to_find: usize,
    /// Clean seeds in a row that make a fix believable at 95 % confidence (None: every seed
    /// found it, so one clean seed already says it changed).
    pub clean_seeds_for_fix: Option<u64>,
}

/// The figures of every kind some seed of `per_seed` (a run's outcomes, in seed order) found,
/// in kind order.
pub fn findability(per_seed: &[SeedOutcome]) -> Vec<Findability> {
    let mut positions: BTreeMap<FindingKind, Vec<usize>> = BTreeMap::new();
    for (position, outcome) in per_seed.iter().enumerate() {
        let kinds: BTreeSet<FindingKind> = outcome.findings.iter().map(|f| f.kind()).collect();
        for kind in kinds {
            positions.entry(kind).or_default().push(position);
        }
    }
    let seeds = per_seed.len();
    positions
        .into_iter()
        .map(|(kind, at)| {
            let mut stretches: Vec<usize> = at
                .iter()
                .scan(None::<usize>, |previous, &position| {
                    let stretch = previous.map_or(position + 1, |p| position - p);
                    *previous = Some(position);
                    Some(stretch)
                })
                .collect();
            stretches.sort_unstable();
            let share = at.len() as f64 / seeds as f64;
            Findability {
                kind,
                hits: at.len(),
                seeds,
                first_seed: per_seed[at[0]].seed,
                median_seeds_to_find: stretches[(stretches.len() - 1) / 2],
                clean_seeds_for_fix: (share < 1.0)
                    .then(|| (0.05f64.ln() / (1.0 - share).ln()).ceil() as u64),
            }
        })
        .collect()
}

pub fn run(args: FindabilityArgs) -> anyhow::Result<ExitCode> {
    let base = load_scenario(&args.scenario, &args.options.overrides)?;
    for scenario in select_variants(&base, args.variant.as_deref())? {
        RunSpec::check_supported(&scenario)?;
        let seeds = seeds_of(&scenario, args.options.seeds, None);
        let report = run_report(&scenario, &seeds, args.options.jobs(), !args.options.quiet);
        let rows = findability(&report.per_seed);
        println!(
            "findability of {} over {} seeds:",
            scenario.name,
            seeds.len()
        );
        if rows.is_empty() {
            println!("no finding in any seed");
            continue;
        }
        let mut table = Table::new();
        table.load_preset(UTF8_FULL_CONDENSED).set_header(vec![
            "finding",
            "seeds with it",
            "share",
            "first seed",
            "median seeds to find",
            "clean seeds for a believable fix (95 %)",
        ]);
        for row in rows {
            table.add_row(vec![
                row.kind.as_str().to_string(),
                format!("{} of {}", row.hits, row.seeds),
                format!("{:.1} %", row.hits as f64 * 100.0 / row.seeds as f64),
                row.first_seed.to_string(),
                row.median_seeds_to_find.to_string(),
                row.clean_seeds_for_fix
                    .map_or_else(|| "1 (every seed found it)".to_string(), |n| n.to_string()),
            ]);
        }
        println!("{table}");
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::run::outcome::Finding;

    fn outcome(seed: u64, found: bool) -> SeedOutcome {
        let mut outcome = SeedOutcome::panicked(seed, String::new());
        if !found {
            outcome.findings.clear();
        }
        outcome
    }

    // Hits at positions 2, 5 and 6 of 10 seeds: stretches 3, 3, 1 (median 3); share 0.3 gives
    // ceil(ln 0.05 / ln 0.7) = 9 clean seeds.
    #[test]
    fn figures_follow_the_hits() {
        let per_seed: Vec<SeedOutcome> = (0..10u64)
            .map(|i| outcome(100 + i, [2, 5, 6].contains(&i)))
            .collect();
        let rows = findability(&per_seed);
        assert_eq!(rows.len(), 1);
        let row = &rows[0];
        assert_eq!(row.kind, FindingKind::Panic);
        assert_eq!((row.hits, row.seeds, row.first_seed), (3, 10, 102));
        assert_eq!(row.median_seeds_to_find, 3);
        assert_eq!(row.clean_seeds_for_fix, Some(9));
        assert!(matches!(per_seed[2].findings[0], Finding::Panic { .. }));
    }
}
