//! Checking a log history that comes without final logs (`sim check-history`): each queue is
//! decided by rule where the history itself pins its log (`log_decide`, no search), and only
//! the queues it leaves ambiguous go to the search, after the unknown sends that pulls observed
//! are pinned at their offsets (so only the unobserved ones stay open).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use super::log_decide::{decide, Ambiguity, Decision, Witness};
use super::log_witness::explain;
use super::model::Part;
use super::models::log::{log_parts, log_parts_settled, LogInput, LogModel, LogOutput};
use super::report::{CheckReport, Mark, Method, PartReport, TimelineOp, WindowReport};
use super::run::{check_parts, describe, timeline, CheckOptions};
use super::settle::Settlement;
use super::wgl::Verdict;
use crate::history::Operation;

/// Checks `history` per queue with no final logs.
pub fn check_log_alone(history: &[Operation], options: &CheckOptions) -> CheckReport {
    let started = Instant::now();
    let (model, parts) = log_parts(history);
    let mut reports: Vec<Option<PartReport>> = vec![None; parts.len()];
    let mut pinned: Vec<(usize, Settlement)> = Vec::new();
    // Part name → (its slot, why it is ambiguous).
    let mut ambiguous: BTreeMap<String, (usize, Ambiguity)> = BTreeMap::new();
    for (slot, part) in parts.iter().enumerate() {
        let part_started = Instant::now();
        match decide(&model, part) {
            Decision::Linearizable { steps } => {
                reports[slot] = Some(graph_report(part, Verdict::Linearizable, steps));
            }
            Decision::NotLinearizable { steps, witness } => {
                let mut report = graph_report(part, Verdict::NotLinearizable, steps);
                add_witness(&mut report, &model, part, &witness, options);
                reports[slot] = Some(report);
            }
            Decision::Ambiguous(found) => {
                pinned.extend(found.settlements);
                ambiguous.insert(part.name.clone(), (slot, found.why));
            }
        }
        if let Some(report) = reports[slot].as_mut() {
            report.elapsed = part_started.elapsed();
        }
    }
    if !ambiguous.is_empty() {
        pinned.sort_by_key(|(index, _)| *index);
        let (pinned_model, pinned_parts) = log_parts_settled(history, &pinned);
        let chosen: Vec<Part<LogInput, LogOutput>> = pinned_parts
            .into_iter()
            .filter(|part| ambiguous.contains_key(&part.name))
            .collect();
        for mut report in check_parts(&pinned_model, &chosen, options).parts {
            let (slot, why) = ambiguous[&report.name];
            report.method = match why {
                Ambiguity::Gap { .. } => Method::PinnedSearch,
                Ambiguity::BodySentTwice { .. } => Method::Search,
            };
            if let Some(unknown) = report.unknown.as_mut() {
                unknown.ambiguity = Some(why.to_string());
            }
            reports[slot] = Some(report);
        }
    }
    let reports = reports
        .into_iter()
        .map(|report| report.expect("invariant: every part was decided or searched"))
        .collect();
    CheckReport::from_parts(reports, started.elapsed())
}

fn graph_report(part: &Part<LogInput, LogOutput>, verdict: Verdict, steps: u64) -> PartReport {
    PartReport {
        name: part.name.clone(),
        verdict,
        witness: None,
        method: Method::Graph,
        rule: None,
        unknown: None,
        ops: part.ops.len(),
        steps,
        elapsed: Duration::ZERO,
        window: None,
        timeline: Vec::new(),
    }
}

/// The witness as the part's window (its operations in call order, the culprit marked), the
/// rule in words, and the timeline around it.
fn add_witness(
    report: &mut PartReport,
    model: &LogModel,
    part: &Part<LogInput, LogOutput>,
    witness: &Witness,
    options: &CheckOptions,
) {
    let mut rows: Vec<TimelineOp> = witness
        .ops
        .iter()
        .map(|&position| {
            let mark = if position == witness.culprit {
                Mark::Culprit
            } else {
                Mark::Window
            };
            describe(model, &part.ops[position], mark)
        })
        .collect();
    rows.sort_by_key(|row| (row.call_us, row.index));
    rows.dedup_by_key(|row| row.index);
    report.timeline = timeline(&part.ops, &rows, options.timeline_ops_max, |position| {
        describe(model, &part.ops[position], Mark::Context)
    });
    report.rule = Some(explain(&witness.rule, model, &part.ops));
    report.window = Some(WindowReport {
        prefix_ops: 0,
        start_state: "the log the history pins".to_string(),
        ops: rows,
        culprit: Some(part.ops[witness.culprit].index),
    });
}
