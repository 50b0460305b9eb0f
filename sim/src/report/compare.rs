//! The comparison table of several runs (`sim compare`, and `sim run` of a scenario with
//! variants), a row per scenario: acknowledged sends lost, duplicates, offset conflicts,
//! non-linearizable seeds, the client-perceived unavailability (the failover `client` stage),
//! send outcomes and the messages consumers received; when some scenario spreads a topic over
//! more than one group, also the topic-level unavailability (`metrics::TopicAvailability`).

use crate::check::Verdict;
use crate::report::{ms, RunReport};
use crate::run::outcome::{Finding, FindingKind, OpCounts};
use crate::scenario::Scenario;
use crate::world::observe::InvariantViolation;
use comfy_table::{presets::UTF8_FULL_CONDENSED, Table};

/// One scenario's row of the comparison.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CompareRow {
    pub scenario: String,
    pub replication: String,
    pub seeds: usize,
    /// Seeds with any safety finding (lost or reordered messages, Raft invariants, panics).
    pub safety_findings_seeds: u64,
    /// Committed entries replicas truncated and recorded (DLedger fidelity only).
    pub committed_truncated: u64,
    pub lost_acked_total: u64,
    pub lost_acked_worst: u64,
    pub duplicates: u64,
    pub offset_conflicts: u64,
    pub not_linearizable_seeds: u64,
    pub client_p50_us: Option<u64>,
    pub client_p99_us: Option<u64>,
    pub client_max_us: Option<u64>,
    pub client_not_reached: u32,
    /// Topic level (None: no topic spans more than one group): p50, p99, max of the longest
    /// stretch with no acknowledged send to the topic.
    pub topic_unavailable_us: Option<(Option<u64>, Option<u64>, Option<u64>)>,
    pub sends_ok: u64,
    pub sends_failed: u64,
    pub sends_unknown: u64,
    /// Distinct messages consumers received, summed over seeds.
    pub delivered: u64,
    pub expectations_held: bool,
}

impl CompareRow {
    pub fn from_report(scenario: &Scenario, report: &RunReport) -> CompareRow {
        let count = |kind: FindingKind| u64::from(report.count(kind));
        let lost_per_seed: Vec<u64> = report
            .per_seed
            .iter()
            .map(|o| o.count(FindingKind::LostAcked) as u64)
            .collect();
        let client = report.stage("client");
        let sum = |f: &dyn Fn(&OpCounts) -> u32| -> u64 {
            report.per_seed.iter().map(|o| u64::from(f(&o.ops))).sum()
        };
        CompareRow {
            scenario: scenario.name.clone(),
            replication: if scenario.cluster.fidelity.is_raft() {
                format!("{:?}", scenario.cluster.replication)
            } else {
                format!(
                    "{:?} ({} fidelity)",
                    scenario.cluster.replication, scenario.cluster.fidelity
                )
            },
            safety_findings_seeds: report
                .per_seed
                .iter()
                .filter(|o| o.findings.iter().any(|f| f.is_safety()))
                .count() as u64,
            committed_truncated: report
                .per_seed
                .iter()
                .flat_map(|o| o.findings.iter())
                .map(|f| match f {
                    Finding::RaftInvariant {
                        violation: InvariantViolation::ReportedByNode { .. },
                        repeats,
                        ..
                    } => 1 + u64::from(*repeats),
                    _ => 0,
                })
                .sum(),
            seeds: report.seeds.len(),
            lost_acked_total: lost_per_seed.iter().sum(),
            lost_acked_worst: lost_per_seed.iter().copied().max().unwrap_or(0),
            duplicates: count(FindingKind::Duplicate),
            offset_conflicts: count(FindingKind::OffsetConflict),
            not_linearizable_seeds: report
                .per_seed
                .iter()
                .filter(|o| o.check.verdict == Some(Verdict::NotLinearizable))
                .count() as u64,
            client_p50_us: client.and_then(|p| p.p50_us),
            client_p99_us: client.and_then(|p| p.p99_us),
            client_max_us: client.and_then(|p| p.max_us),
            client_not_reached: client.map_or(0, |p| p.not_reached),
            topic_unavailable_us: report.topic.as_ref().map(|topic| {
                let p = &topic.unavailable;
                (p.p50_us, p.p99_us, p.max_us)
            }),
            sends_ok: sum(&|c| c.sent_ok),
            sends_failed: sum(&|c| c.failed),
            sends_unknown: sum(&|c| c.unknown),
            delivered: sum(&|c| c.delivered),
            expectations_held: report.expectations.iter().all(|e| e.held),
        }
    }
}

pub fn compare_table(rows: &[CompareRow]) -> Table {
    let with_topic = rows.iter().any(|row| row.topic_unavailable_us.is_some());
    let mut header = vec![
        "scenario",
        "replication",
        "seeds",
        "seeds with safety findings",
        "committed entries truncated",
        "acked lost (total / worst seed)",
        "duplicates",
        "offset conflicts",
        "not linearizable seeds",
        "client unavailable p50/p99/max (ms)",
    ];
    if with_topic {
        header.push("topic unavailable p50/p99/max (ms)");
    }
    header.extend([
        "sends ok/fail/unknown",
        "delivered to consumers",
        "expectations",
    ]);
    let mut table = Table::new();
    table.load_preset(UTF8_FULL_CONDENSED).set_header(header);
    for row in rows {
        let mut client = format!(
            "{} / {} / {}",
            ms(row.client_p50_us),
            ms(row.client_p99_us),
            ms(row.client_max_us)
        );
        if row.client_not_reached > 0 {
            client.push_str(&format!(" ({} not reached)", row.client_not_reached));
        }
        let mut cells = vec![
            row.scenario.clone(),
            row.replication.clone(),
            row.seeds.to_string(),
            row.safety_findings_seeds.to_string(),
            row.committed_truncated.to_string(),
            format!("{} / {}", row.lost_acked_total, row.lost_acked_worst),
            row.duplicates.to_string(),
            row.offset_conflicts.to_string(),
            row.not_linearizable_seeds.to_string(),
            client,
        ];
        if with_topic {
            cells.push(row.topic_unavailable_us.map_or_else(
                || "- (one group)".to_string(),
                |(p50, p99, max)| format!("{} / {} / {}", ms(p50), ms(p99), ms(max)),
            ));
        }
        cells.extend([
            format!(
                "{}/{}/{}",
                row.sends_ok, row.sends_failed, row.sends_unknown
            ),
            row.delivered.to_string(),
            if row.expectations_held {
                "held"
            } else {
                "NOT held"
            }
            .to_string(),
        ]);
        table.add_row(cells);
    }
    table
}
