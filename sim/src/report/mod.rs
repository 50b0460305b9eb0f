//! What a run prints and writes: comfy-table tables and a RON + JSON report file that holds no
//! wall-clock data, so the same scenario, seeds and code give a byte-identical file.

use crate::metrics::{percentiles, Percentiles, STAGES};
use crate::verdict::SeedOutcome;
use comfy_table::{presets::UTF8_FULL_CONDENSED, Cell, Color, Table};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

pub mod plot;
pub mod regress;

/// One expectation of the scenario, checked across all seeds.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExpectationCheck {
    pub name: String,
    pub bound: String,
    pub actual: String,
    pub held: bool,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StageSummary {
    pub stage: String,
    pub percentiles: Percentiles,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunReport {
    pub scenario: String,
    pub scenario_file: String,
    pub scenario_hash: String,
    pub overrides: Vec<(String, String)>,
    pub seeds: Vec<u64>,
    pub stages: Vec<StageSummary>,
    pub findings_by_kind: BTreeMap<String, u32>,
    pub expectations: Vec<ExpectationCheck>,
    pub per_seed: Vec<SeedOutcome>,
}

impl RunReport {
    pub fn all_held(&self) -> bool {
        self.expectations.iter().all(|e| e.held)
    }

    pub fn stage(&self, stage: &str) -> Option<&Percentiles> {
        self.stages
            .iter()
            .find(|s| s.stage == stage)
            .map(|s| &s.percentiles)
    }
}

/// Stage percentiles across every failover of every seed.
pub fn stage_summaries(outcomes: &[SeedOutcome]) -> Vec<StageSummary> {
    STAGES
        .iter()
        .map(|stage| {
            let values: Vec<Option<u64>> = outcomes
                .iter()
                .flat_map(|o| o.failovers.iter().map(|f| f.stage_us(stage)))
                .collect();
            StageSummary {
                stage: (*stage).to_string(),
                percentiles: percentiles(&values),
            }
        })
        .collect()
}

pub fn findings_by_kind(outcomes: &[SeedOutcome]) -> BTreeMap<String, u32> {
    let mut counts = BTreeMap::new();
    for finding in outcomes.iter().flat_map(|o| o.findings.iter()) {
        *counts.entry(finding.kind().to_string()).or_insert(0) += 1;
    }
    counts
}

/// Milliseconds with one decimal, or "-" when absent.
pub fn ms(us: Option<u64>) -> String {
    us.map_or_else(
        || "-".to_string(),
        |us| format!("{:.1}", us as f64 / 1000.0),
    )
}

fn new_table(header: Vec<&str>) -> Table {
    let mut table = Table::new();
    table.load_preset(UTF8_FULL_CONDENSED).set_header(header);
    table
}

pub fn stages_table(report: &RunReport) -> Table {
    let mut table = new_table(vec![
        "stage (ms after fault)",
        "samples",
        "p50",
        "p90",
        "p99",
        "max",
        "not reached",
    ]);
    for summary in &report.stages {
        let p = &summary.percentiles;
        table.add_row(vec![
            summary.stage.clone(),
            p.samples.to_string(),
            ms(p.p50_us),
            ms(p.p90_us),
            ms(p.p99_us),
            ms(p.max_us),
            p.not_reached.to_string(),
        ]);
    }
    table
}

pub fn worst_seeds_table(report: &RunReport, count: usize) -> Table {
    let mut table = new_table(vec![
        "seed",
        "detect",
        "elect",
        "commit",
        "client",
        "stale leader",
        "sends ok/fail/unknown",
        "trace hash",
    ]);
    let mut seeds: Vec<&SeedOutcome> = report.per_seed.iter().collect();
    seeds.sort_by_key(|o| (std::cmp::Reverse(o.worst_client_us()), o.seed));
    for outcome in seeds.into_iter().take(count) {
        let worst = outcome.failovers.iter().max_by_key(|f| f.client_us);
        let stage = |name: &str| ms(worst.and_then(|f| f.stage_us(name)));
        table.add_row(vec![
            outcome.seed.to_string(),
            stage("detect"),
            stage("elect"),
            stage("commit"),
            stage("client"),
            stage("stale_leader_window"),
            format!(
                "{}/{}/{}",
                outcome.ops.sent_ok, outcome.ops.failed, outcome.ops.unknown
            ),
            outcome.check.verdict.clone(),
            outcome.trace_hash.clone(),
        ]);
    }
    table
}

pub fn failing_seeds_table(report: &RunReport, replay: impl Fn(u64) -> String) -> Option<Table> {
    let failing: Vec<&SeedOutcome> = report
        .per_seed
        .iter()
        .filter(|o| !o.findings.is_empty())
        .collect();
    if failing.is_empty() {
        return None;
    }
    let mut table = new_table(vec!["seed", "findings", "replay"]);
    for outcome in failing {
        let mut kinds: BTreeMap<&str, u32> = BTreeMap::new();
        if outcome.check.verdict == "unknown" {
            kinds.insert("linearizability unknown", 1);
        }
        for finding in &outcome.findings {
            *kinds.entry(finding.kind()).or_insert(0) += 1;
        }
        let first = outcome
            .findings
            .first()
            .map(|f| format!("{f:?}"))
            .unwrap_or_default();
        let summary = kinds
            .iter()
            .map(|(k, n)| format!("{k} ×{n}"))
            .collect::<Vec<_>>()
            .join(", ");
        table.add_row(vec![
            Cell::new(outcome.seed),
            Cell::new(format!("{summary}\nfirst: {}", truncate(&first, 160))).fg(Color::Red),
            Cell::new(replay(outcome.seed)),
        ]);
    }
    Some(table)
}

pub fn expectations_table(report: &RunReport) -> Table {
    let mut table = new_table(vec!["expectation", "bound", "actual", "verdict"]);
    for e in &report.expectations {
        let verdict = if e.held {
            Cell::new("held").fg(Color::Green)
        } else {
            Cell::new("FAILED").fg(Color::Red)
        };
        table.add_row(vec![
            Cell::new(&e.name),
            Cell::new(&e.bound),
            Cell::new(&e.actual),
            verdict,
        ]);
    }
    table
}

fn truncate(text: &str, max_chars: usize) -> String {
    if text.chars().count() <= max_chars {
        text.to_string()
    } else {
        let cut: String = text.chars().take(max_chars).collect();
        format!("{cut}…")
    }
}

/// Writes `DIR/<scenario>/report.ron` and `report.json`; returns their paths.
pub fn write_report(report: &RunReport, out_dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let dir = out_dir.join(&report.scenario);
    std::fs::create_dir_all(&dir)?;
    let ron_path = dir.join("report.ron");
    let json_path = dir.join("report.json");
    let ron_text = ron::ser::to_string_pretty(report, ron::ser::PrettyConfig::default())
        .map_err(std::io::Error::other)?;
    std::fs::write(&ron_path, ron_text + "\n")?;
    let json_text = serde_json::to_string_pretty(report).map_err(std::io::Error::other)?;
    std::fs::write(&json_path, json_text + "\n")?;
    Ok(vec![ron_path, json_path])
}

/// Writes `DIR/<scenario>/seed-<S>.html`, the checker's timeline, for every seed whose history
/// is not linearizable; returns their paths.
pub fn write_check_pages(report: &RunReport, out_dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let dir = out_dir.join(&report.scenario);
    let mut paths = Vec::new();
    for outcome in &report.per_seed {
        if let Some(html) = &outcome.html {
            std::fs::create_dir_all(&dir)?;
            let path = dir.join(format!("seed-{}.html", outcome.seed));
            std::fs::write(&path, html)?;
            paths.push(path);
        }
    }
    Ok(paths)
}
