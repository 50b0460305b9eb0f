//! `sim sweep SCENARIO --set raft.heartbeat_interval=100ms,500ms,2s [--set KEY=V1,V2]...`:
//! runs the scenario for every combination of the values (the cartesian product, the first
//! key varying slowest), prints one table of failover percentiles and finding counts per
//! combination, and writes `reports/<scenario>/sweep.svg` (client failover per combination)
//! and `sweep.ron` (each combination's figures, in the baseline format).
//! Exit 0: every combination ran without a safety finding; 1: some combination had one;
//! 2: bad input.
//!
//! Over many machines: `--shard K/N` runs shard K of every combination's seeds and writes one
//! partial report per combination (`DIR/<scenario>/sweep/<combination>/<scenario>/
//! partial-K-of-N.ron`, the combination numbered from 0 in the order above); once every shard
//! ran, `--from DIR` makes the table, chart and figures of them, as one machine would have.

use crate::commands::common::{load_scenario, run_report, run_shard, seeds_of, SeedOptions};
use crate::report::partial::{self, PartialReport, Shard};
use crate::report::plot::{sweep_svg, SweepPoint};
use crate::report::regress::Baseline;
use crate::report::{ms, RunReport};
use crate::run::outcome::FindingKind;
use crate::scenario::Scenario;
use anyhow::Context;
use clap::Args;
use comfy_table::{presets::UTF8_FULL_CONDENSED, Table};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// `--set` here is a key and its values: `options.overrides` holds the `KEY=V1,V2,...` items.
#[derive(Args, Debug)]
#[command(
    mut_arg("overrides", |a| a
        .value_name("KEY=V1,V2,...")
        .required(true)
        .display_order(0)
        .help(
            "A key and its values, comma-separated: `raft.heartbeat_interval=100ms,500ms,2s` \
             (ranges are written `300ms..1s`). Repeat for a cartesian product"
        )),
    mut_arg("seeds", |a| a.display_order(1).help(
        "Seeds per combination, from the scenario's first seed (default: the scenario's count)"
    )),
    mut_arg("jobs", |a| a.display_order(2)),
    mut_arg("quiet", |a| a.display_order(4))
)]
pub struct SweepArgs {
    /// The scenario file (RON).
    pub scenario: PathBuf,
    #[command(flatten)]
    pub options: SeedOptions,
    /// Where the SVG and RON files go (and `--shard`'s partial reports).
    #[arg(long, default_value = "reports", display_order = 3)]
    pub out: PathBuf,
    /// Run only shard K of N of every combination's seeds and write a partial report per
    /// combination under `--out`; make the sweep of them with `--from`.
    #[arg(long, value_name = "K/N", conflicts_with = "from", display_order = 5)]
    pub shard: Option<Shard>,
    /// Make the sweep of the partial reports `--shard` wrote under DIR (every shard of every
    /// combination) instead of running seeds.
    #[arg(long, value_name = "DIR", display_order = 6)]
    pub from: Option<PathBuf>,
}

/// Where combination `index`'s partial reports go under `dir` (`run_shard` adds
/// `<scenario>/partial-K-of-N.ron`).
fn combination_dir(dir: &Path, scenario: &str, index: usize) -> PathBuf {
    dir.join(scenario).join("sweep").join(index.to_string())
}

/// Merges the partial reports of combination `index` found under `dir`.
fn merged_report(dir: &Path, scenario: &Scenario, index: usize) -> anyhow::Result<RunReport> {
    let found = combination_dir(dir, &scenario.name, index).join(&scenario.name);
    let mut paths: Vec<PathBuf> = std::fs::read_dir(&found)
        .with_context(|| {
            format!(
                "--from: no partial reports of combination {index} in {} (run every `--shard K/N` \
                 into {} first)",
                found.display(),
                dir.display()
            )
        })?
        .filter_map(|entry| entry.ok().map(|entry| entry.path()))
        .filter(|path| {
            path.file_name()
                .and_then(|name| name.to_str())
                .is_some_and(|name| name.starts_with("partial-") && name.ends_with(".ron"))
        })
        .collect();
    paths.sort();
    let mut partials = Vec::new();
    for path in paths {
        let partial = PartialReport::load(&path)?;
        anyhow::ensure!(
            partial.overrides == scenario.overrides,
            "{}: a partial report of {:?}, not of this combination ({:?})",
            path.display(),
            partial.overrides,
            scenario.overrides
        );
        partials.push((path.display().to_string(), partial));
    }
    Ok(partial::merge(scenario, partials)?)
}

/// `key=v1,v2` -> (key, [v1, v2]).
pub fn parse_set(item: &str) -> anyhow::Result<(String, Vec<String>)> {
    let (key, values) = item
        .split_once('=')
        .with_context(|| format!("--set {item:?}: expected KEY=V1,V2,..."))?;
    let values: Vec<String> = values.split(',').map(|v| v.trim().to_string()).collect();
    anyhow::ensure!(
        values.iter().all(|v| !v.is_empty()),
        "--set {item:?}: an empty value"
    );
    Ok((key.trim().to_string(), values))
}

/// Every combination, the first key varying slowest, as `key=value` lists.
pub fn combinations(sets: &[(String, Vec<String>)]) -> Vec<Vec<String>> {
    sets.iter().fold(vec![Vec::new()], |done, (key, values)| {
        done.iter()
            .flat_map(|prefix| {
                values.iter().map(move |value| {
                    let mut next = prefix.clone();
                    next.push(format!("{key}={value}"));
                    next
                })
            })
            .collect()
    })
}

/// The figures of one combination's run that the table and the chart show.
fn stage_ms(report: &RunReport, stage: &str) -> [String; 3] {
    let p = report.stage(stage);
    [
        ms(p.and_then(|p| p.p50_us)),
        ms(p.and_then(|p| p.p99_us)),
        ms(p.and_then(|p| p.max_us)),
    ]
}

pub fn sweep(args: SweepArgs) -> anyhow::Result<ExitCode> {
    let sets: Vec<(String, Vec<String>)> = args
        .options
        .overrides
        .iter()
        .map(|s| parse_set(s))
        .collect::<anyhow::Result<_>>()?;
    let combos = combinations(&sets);
    // Load every combination first: a bad value fails before anything runs.
    let scenarios = combos
        .iter()
        .map(|combo| load_scenario(&args.scenario, combo))
        .collect::<anyhow::Result<Vec<_>>>()?;
    if let Some(shard) = args.shard {
        for (index, scenario) in scenarios.iter().enumerate() {
            let seeds = seeds_of(scenario, args.options.seeds, None);
            let dir = combination_dir(&args.out, &scenario.name, index);
            run_shard(scenario, shard, &seeds, &args.options, &dir)?;
        }
        return Ok(ExitCode::SUCCESS);
    }
    let jobs = args.options.jobs();
    let mut table = Table::new();
    table.load_preset(UTF8_FULL_CONDENSED).set_header(vec![
        "combination",
        "detect p50/p99/max (ms)",
        "elect p50/p99/max (ms)",
        "client p50/p99/max (ms)",
        "client not reached",
        "safety findings",
        "not settled",
    ]);
    let mut points = Vec::new();
    let mut summaries = Vec::new();
    let mut safety_total = 0u64;
    let started = std::time::Instant::now();
    for (index, (combo, scenario)) in combos.iter().zip(&scenarios).enumerate() {
        let seeds = seeds_of(scenario, args.options.seeds, None);
        let report = match &args.from {
            Some(dir) => {
                let report = merged_report(dir, scenario, index)?;
                anyhow::ensure!(
                    report.seeds == seeds,
                    "--from: combination {index} ({}) ran seeds {:?}, not {:?}: give the \
                     same --seeds as the shards",
                    combo.join(" "),
                    report.seeds,
                    seeds
                );
                report
            }
            None => {
                if !args.options.quiet {
                    eprintln!("sweep: {} ({} seeds)", combo.join(" "), seeds.len());
                }
                run_report(scenario, &seeds, jobs, !args.options.quiet)
            }
        };
        let safety: u64 = report
            .findings_by_kind
            .iter()
            .filter(|(kind, _)| !kind.is_liveness())
            .map(|(_, n)| u64::from(*n))
            .sum();
        safety_total += safety;
        let not_settled = report.count(FindingKind::NotSettled);
        let label = combo.join(" ");
        table.add_row(vec![
            label.clone(),
            stage_ms(&report, "detect").join(" / "),
            stage_ms(&report, "elect").join(" / "),
            stage_ms(&report, "client").join(" / "),
            report
                .stage("client")
                .map_or(0, |p| p.not_reached)
                .to_string(),
            safety.to_string(),
            not_settled.to_string(),
        ]);
        let client = report.stage("client");
        let detect = report.stage("detect");
        points.push(SweepPoint {
            label: combo
                .iter()
                .map(|kv| kv.split_once('=').map_or(kv.as_str(), |(_, v)| v))
                .collect::<Vec<_>>()
                .join(", "),
            figures: vec![
                ("client p50".into(), client.and_then(|p| p.p50_us)),
                ("client p99".into(), client.and_then(|p| p.p99_us)),
                ("client max".into(), client.and_then(|p| p.max_us)),
                ("detect p99".into(), detect.and_then(|p| p.p99_us)),
            ],
        });
        summaries.push(Baseline::from_report(&report));
    }
    let name = scenarios
        .first()
        .map(|s| s.name.clone())
        .context("a sweep has at least one combination")?;
    let seeds_each = summaries.first().map_or(0, |s| s.seeds.len());
    println!(
        "sweep of {name}: {} combinations × {seeds_each} seeds in {:.1} s wall",
        combos.len(),
        started.elapsed().as_secs_f64()
    );
    println!("{table}");
    let keys: Vec<&str> = sets.iter().map(|(k, _)| k.as_str()).collect();
    let dir = args.out.join(&name);
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let svg_path = dir.join("sweep.svg");
    let svg = sweep_svg(
        &format!(
            "{name}: failover per {} ({seeds_each} seeds each)",
            keys.join(" × ")
        ),
        &keys.join(", "),
        &points,
    )?;
    std::fs::write(&svg_path, svg).with_context(|| format!("writing {}", svg_path.display()))?;
    let ron_path = dir.join("sweep.ron");
    let ron_text = ron::ser::to_string_pretty(
        &summaries,
        ron::ser::PrettyConfig::default().compact_arrays(true),
    )
    .context("encoding the sweep summary")?;
    std::fs::write(&ron_path, ron_text + "\n")
        .with_context(|| format!("writing {}", ron_path.display()))?;
    println!(
        "Chart: {}, figures: {}",
        svg_path.display(),
        ron_path.display()
    );
    Ok(if safety_total == 0 {
        ExitCode::SUCCESS
    } else {
        println!(
            "{safety_total} safety findings across the sweep: run the combination to see them"
        );
        ExitCode::from(1)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    // The product must hold every pairing exactly once, first key slowest, or a sweep
    // silently skips settings.
    #[test]
    fn combinations_are_the_cartesian_product() {
        let sets = vec![
            parse_set("a=1,2").expect("valid"),
            parse_set("b=x,y,z").expect("valid"),
        ];
        let combos = combinations(&sets);
        assert_eq!(combos.len(), 6);
        assert_eq!(combos[0], vec!["a=1", "b=x"]);
        assert_eq!(combos[5], vec!["a=2", "b=z"]);
        assert!(parse_set("a=1,,2").is_err());
        assert!(parse_set("novalue").is_err());
    }
}
