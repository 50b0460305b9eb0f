//! What a run prints and writes: comfy-table tables and a RON + JSON report file that holds no
//! wall-clock data, so the same scenario, seeds and code give a byte-identical file.

use crate::check::Verdict;
use crate::metrics::{percentiles, Percentiles, STAGES};
use crate::run::outcome::{FindingKind, SeedOutcome};
use crate::scenario::Scenario;
use comfy_table::{presets::UTF8_FULL_CONDENSED, Cell, Color, Table};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

pub mod compare;
pub mod judge;
pub mod partial;
pub mod plot;
pub mod print;
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
    /// With more than one group: the stages per group (the failed group's own figures).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub stages_by_group: Vec<GroupStages>,
    /// With a topic spread over more than one group: what its writers saw (`metrics` doc).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub topic: Option<TopicSummary>,
    pub findings_by_kind: BTreeMap<FindingKind, u32>,
    pub expectations: Vec<ExpectationCheck>,
    pub per_seed: Vec<SeedOutcome>,
}

impl RunReport {
    /// The report of a run of `seeds`, their outcomes summarised and judged against the
    /// scenario's expectations (`judge`).
    pub fn new(scenario: &Scenario, seeds: &[u64], outcomes: Vec<SeedOutcome>) -> RunReport {
        let mut report = RunReport {
            scenario: scenario.name.clone(),
            scenario_file: scenario.file_name.clone(),
            scenario_hash: scenario.source_hash.to_string(),
            overrides: scenario.overrides.clone(),
            seeds: seeds.to_vec(),
            stages: stage_summaries(&outcomes),
            stages_by_group: group_stage_summaries(scenario.cluster.groups, &outcomes),
            topic: topic_summary(&outcomes),
            findings_by_kind: findings_by_kind(&outcomes),
            expectations: Vec::new(),
            per_seed: outcomes,
        };
        report.expectations = judge::judge(scenario, &report);
        report
    }

    /// Findings of `kind` across every seed.
    pub fn count(&self, kind: FindingKind) -> u32 {
        self.findings_by_kind.get(&kind).copied().unwrap_or(0)
    }

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

/// One group's failover stages, across the seeds.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupStages {
    pub group: u32,
    pub stages: Vec<StageSummary>,
}

/// Topic-level availability across every failover of every seed (`metrics::TopicAvailability`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TopicSummary {
    /// The longest stretch with no acknowledged send to the topic, per failover.
    pub unavailable: Percentiles,
    /// The slowest acknowledged message first sent in the window, per failover.
    pub message_wait_max: Percentiles,
    /// Messages first sent in the windows, summed over failovers and seeds.
    pub messages: u64,
    pub messages_retried: u64,
    pub messages_unacknowledged: u64,
}

/// Stage percentiles across every failover of every seed.
pub fn stage_summaries(outcomes: &[SeedOutcome]) -> Vec<StageSummary> {
    stage_summaries_where(outcomes, |_| true)
}

/// Per group (only with more than one group): the stages of that group's failovers.
pub fn group_stage_summaries(groups: u32, outcomes: &[SeedOutcome]) -> Vec<GroupStages> {
    if groups <= 1 {
        return Vec::new();
    }
    (0..groups)
        .map(|group| GroupStages {
            group,
            stages: stage_summaries_where(outcomes, |f| f.group == group),
        })
        .collect()
}

/// Topic-level percentiles; None when no failover has topic figures (one group).
pub fn topic_summary(outcomes: &[SeedOutcome]) -> Option<TopicSummary> {
    let topics: Vec<&crate::metrics::TopicAvailability> = outcomes
        .iter()
        .flat_map(|o| o.failovers.iter().filter_map(|f| f.topic.as_ref()))
        .collect();
    if topics.is_empty() {
        return None;
    }
    let sum = |f: fn(&crate::metrics::TopicAvailability) -> u32| -> u64 {
        topics.iter().map(|t| u64::from(f(t))).sum()
    };
    Some(TopicSummary {
        unavailable: percentiles(
            &topics
                .iter()
                .map(|t| Some(t.unavailable_us))
                .collect::<Vec<_>>(),
        ),
        message_wait_max: percentiles(
            &topics
                .iter()
                .map(|t| t.message_wait_max_us)
                .collect::<Vec<_>>(),
        ),
        messages: sum(|t| t.messages),
        messages_retried: sum(|t| t.messages_retried),
        messages_unacknowledged: sum(|t| t.messages_unacknowledged),
    })
}

fn stage_summaries_where(
    outcomes: &[SeedOutcome],
    keep: impl Fn(&crate::metrics::FailoverTimeline) -> bool,
) -> Vec<StageSummary> {
    STAGES
        .iter()
        .map(|stage| {
            let values: Vec<Option<u64>> = outcomes
                .iter()
                .flat_map(|o| {
                    o.failovers
                        .iter()
                        .filter(|f| keep(f))
                        .map(|f| f.stage_us(stage))
                })
                .collect();
            StageSummary {
                stage: (*stage).to_string(),
                percentiles: percentiles(&values),
            }
        })
        .collect()
}

pub fn findings_by_kind(outcomes: &[SeedOutcome]) -> BTreeMap<FindingKind, u32> {
    let mut counts = BTreeMap::new();
    for finding in outcomes.iter().flat_map(|o| o.findings.iter()) {
        *counts.entry(finding.kind()).or_insert(0) += 1;
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

const PERCENTILE_HEADER: [&str; 6] = ["samples", "p50", "p90", "p99", "max", "not reached"];

fn percentile_cells(p: &Percentiles) -> Vec<String> {
    vec![
        p.samples.to_string(),
        ms(p.p50_us),
        ms(p.p90_us),
        ms(p.p99_us),
        ms(p.max_us),
        p.not_reached.to_string(),
    ]
}

pub fn stages_table(report: &RunReport) -> Table {
    let mut header = vec!["stage (ms after fault)"];
    header.extend(PERCENTILE_HEADER);
    let mut table = new_table(header);
    for summary in &report.stages {
        let mut row = vec![summary.stage.clone()];
        row.extend(percentile_cells(&summary.percentiles));
        table.add_row(row);
    }
    table
}

/// Per group failover stages (None with one group). A group with no failover is left out.
pub fn group_stages_table(report: &RunReport) -> Option<Table> {
    if report.stages_by_group.is_empty() {
        return None;
    }
    let mut header = vec!["group", "stage (ms after fault)"];
    header.extend(PERCENTILE_HEADER);
    let mut table = new_table(header);
    for group in &report.stages_by_group {
        for summary in group.stages.iter().filter(|s| s.percentiles.samples > 0) {
            let mut row = vec![format!("g{}", group.group), summary.stage.clone()];
            row.extend(percentile_cells(&summary.percentiles));
            table.add_row(row);
        }
    }
    Some(table)
}

/// The per-group and topic-level tables, when the run has them (more than one group).
pub fn print_groups_and_topic(report: &RunReport) {
    if let Some(table) = group_stages_table(report) {
        println!("Per group:");
        println!("{table}");
    }
    if let Some(table) = topic_table(report) {
        let topic = report
            .topic
            .as_ref()
            .expect("invariant: a topic table has a summary");
        println!(
            "Topic level, from the fault until the failed group's client stage ended: a send to \
             the topic on any group acknowledged; messages first sent then: {} ({} retried on \
             another group, {} never acknowledged)",
            topic.messages, topic.messages_retried, topic.messages_unacknowledged
        );
        println!("{table}");
    }
}

/// Topic-level availability (None when no topic spans more than one group).
pub fn topic_table(report: &RunReport) -> Option<Table> {
    let topic = report.topic.as_ref()?;
    let mut header = vec!["topic level (ms)"];
    header.extend(PERCENTILE_HEADER);
    let mut table = new_table(header);
    let mut row = vec!["unavailable (longest stretch with no ack)".to_string()];
    row.extend(percentile_cells(&topic.unavailable));
    table.add_row(row);
    let mut row = vec!["slowest message (first try to ack)".to_string()];
    row.extend(percentile_cells(&topic.message_wait_max));
    table.add_row(row);
    Some(table)
}

pub fn worst_seeds_table(report: &RunReport, count: usize) -> Table {
    // Swarm-configured seeds show their draw (`swarm_config::SwarmConfig`'s short form).
    let drawn = report.per_seed.iter().any(|o| o.config.is_some());
    let mut header = vec![
        "seed",
        "detect",
        "elect",
        "commit",
        "client",
        "stale leader",
        "sends ok/fail/unknown",
        "check",
        "trace hash",
    ];
    if drawn {
        header.push("swarm configuration");
    }
    let mut table = new_table(header);
    let mut seeds: Vec<&SeedOutcome> = report.per_seed.iter().collect();
    seeds.sort_by_key(|o| (std::cmp::Reverse(o.worst_client_us()), o.seed));
    for outcome in seeds.into_iter().take(count) {
        let worst = outcome.failovers.iter().max_by_key(|f| f.client_us);
        let stage = |name: &str| ms(worst.and_then(|f| f.stage_us(name)));
        let mut row = vec![
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
            outcome.check.verdict_name().to_string(),
            outcome.trace_hash.clone(),
        ];
        if drawn {
            row.push(
                outcome
                    .config
                    .as_ref()
                    .map_or_else(|| "-".to_string(), ToString::to_string),
            );
        }
        table.add_row(row);
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
        if outcome.check.verdict == Some(Verdict::Unknown) {
            kinds.insert("linearizability unknown", 1);
        }
        for finding in &outcome.findings {
            *kinds.entry(finding.kind().as_str()).or_insert(0) += 1;
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
