//! `sim sweep SCENARIO --set raft.heartbeat_interval=100ms,500ms,2s [--set KEY=V1,V2]...`:
//! runs the scenario for every combination of the values (the cartesian product, the first
//! key varying slowest), prints one table of failover percentiles and finding counts per
//! combination, and writes `reports/<scenario>/sweep.svg` (client failover per combination)
//! and `sweep.ron` (each combination's figures, in the baseline format).
//! Exit 0: every combination ran without a safety finding; 1: some combination had one;
//! 2: bad input.

use crate::commands::common::{load_scenario, run_report, seeds_of, SeedOptions};
use crate::report::plot::{sweep_svg, SweepPoint};
use crate::report::regress::Baseline;
use crate::report::{ms, RunReport};
use crate::run::outcome::FindingKind;
use anyhow::Context;
use clap::Args;
use comfy_table::{presets::UTF8_FULL_CONDENSED, Table};
use std::path::PathBuf;
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
    /// Where the SVG and RON files go.
    #[arg(long, default_value = "reports", display_order = 3)]
    pub out: PathBuf,
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
    for (combo, scenario) in combos.iter().zip(&scenarios) {
        let seeds = seeds_of(scenario, args.options.seeds, None);
        if !args.options.quiet {
            eprintln!("sweep: {} ({} seeds)", combo.join(" "), seeds.len());
        }
        let report = run_report(scenario, &seeds, jobs, !args.options.quiet);
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
