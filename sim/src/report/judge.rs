//! Every expectation a scenario can state (`expect: (...)`), judged across a run's seeds: the
//! one place that turns a run's figures into held or FAILED.

use crate::check::Verdict;
use crate::report::{ms, ExpectationCheck, RunReport};
use crate::run::outcome::{Finding, FindingKind, SeedOutcome};
use crate::scenario::{Millis, Scenario};

/// The scenario's expectations against the run's report, in the order the table shows them.
pub fn judge(scenario: &Scenario, report: &RunReport) -> Vec<ExpectationCheck> {
    let expect = &scenario.expect;
    let mut checks = vec![lost_acked(report, expect.lost_acked)];
    if expect.linearizable {
        checks.push(linearizable(report));
    }
    if expect.recovery_failed > 0 {
        checks.push(recovery_failed(report, expect.recovery_failed));
    }
    if !expect.must_find.is_empty() {
        checks.push(must_find(
            report,
            &expect.must_find,
            expect.must_find_pct_min,
        ));
    }
    checks.push(other_safety(
        report,
        expect.recovery_failed > 0,
        &expect.must_find,
    ));
    checks.push(settled(scenario, report));
    checks.push(elections_explained(report));
    let bounds = [
        ("detect", expect.failover_detect_p99_max),
        ("elect", expect.failover_elect_p99_max),
        ("commit", expect.failover_commit_p99_max),
        ("client", expect.failover_client_p99_max),
    ];
    for (stage, bound) in bounds {
        if let Some(bound) = bound {
            checks.push(stage_p99(report, stage, bound));
        }
    }
    if let Some(bound) = expect.topic_unavailable_p99_max {
        checks.push(topic_unavailable(report, bound));
    }
    checks
}

/// `expect.lost_acked`: the worst seed's lost acknowledged sends.
fn lost_acked(report: &RunReport, bound: u64) -> ExpectationCheck {
    let lost_worst = report
        .per_seed
        .iter()
        .map(|o| o.count(FindingKind::LostAcked) as u64)
        .max()
        .unwrap_or(0);
    ExpectationCheck {
        name: "lost acknowledged sends (per seed, worst)".into(),
        bound: format!("<= {bound}"),
        actual: lost_worst.to_string(),
        held: lost_worst <= bound,
    }
}

/// `expect.recovery_failed`: the worst seed's replicas that refused their damaged disk.
fn recovery_failed(report: &RunReport, bound: u64) -> ExpectationCheck {
    // Distinct replicas: a refused replica may be restarted (and refuse) again.
    let worst = report
        .per_seed
        .iter()
        .map(|o| {
            o.findings
                .iter()
                .filter_map(|finding| match finding {
                    Finding::RecoveryFailed { node, .. } => Some(*node),
                    _ => None,
                })
                .collect::<std::collections::BTreeSet<_>>()
                .len() as u64
        })
        .max()
        .unwrap_or(0);
    ExpectationCheck {
        name: "replicas refusing a damaged disk (per seed, worst)".into(),
        bound: format!("<= {bound}"),
        actual: worst.to_string(),
        held: worst <= bound,
    }
}

/// `expect.linearizable`: no seed's check found a violation or gave up.
fn linearizable(report: &RunReport) -> ExpectationCheck {
    let seeds_with = |verdict: Verdict| {
        report
            .per_seed
            .iter()
            .filter(|o: &&SeedOutcome| o.check.verdict == Some(verdict))
            .count()
    };
    let violations = seeds_with(Verdict::NotLinearizable);
    let unknown = seeds_with(Verdict::Unknown);
    ExpectationCheck {
        name: "every queue's log linearizable (seeds not / unknown)".into(),
        bound: "0 / 0".into(),
        actual: format!("{violations} / {unknown}"),
        held: violations == 0 && unknown == 0,
    }
}

/// `expect.must_find`: the bug the scenario's story plants or unlocks is caught, as one of the
/// kinds it names, on at least `pct_min` percent of the seeds and on one seed at least.
fn must_find(report: &RunReport, kinds: &[FindingKind], pct_min: u64) -> ExpectationCheck {
    let caught = report
        .per_seed
        .iter()
        .filter(|o| kinds.iter().any(|kind| o.count(*kind) > 0))
        .count() as u64;
    let seeds = report.per_seed.len() as u64;
    let names: Vec<&str> = kinds.iter().map(|kind| kind.as_str()).collect();
    ExpectationCheck {
        name: format!("seeds that catch the story's bug ({})", names.join(" or ")),
        bound: format!(">= {pct_min} %"),
        actual: format!("{caught} of {seeds}"),
        held: caught > 0 && caught * 100 >= pct_min * seeds,
    }
}

/// Always: no safety finding besides those the other expectations bound (lost sends and
/// their consequences, linearizability, settling, the kinds the story must produce).
fn other_safety(
    report: &RunReport,
    recovery_bounded: bool,
    expected: &[FindingKind],
) -> ExpectationCheck {
    let judged_elsewhere = |kind: FindingKind| {
        matches!(kind, FindingKind::LostAcked | FindingKind::NotLinearizable)
            || expected.contains(&kind)
            || (recovery_bounded && kind == FindingKind::RecoveryFailed)
            || kind.is_liveness()
            || kind.is_consequence_of_loss()
    };
    let other: u64 = report
        .findings_by_kind
        .iter()
        .filter(|(kind, _)| !judged_elsewhere(**kind))
        .map(|(_, n)| u64::from(*n))
        .sum();
    ExpectationCheck {
        name: "other safety findings (panics, Raft invariants, oracles)".into(),
        bound: "0".into(),
        actual: other.to_string(),
        held: other == 0,
    }
}

/// Always: every group settled within `settle_max` of healing.
fn settled(scenario: &Scenario, report: &RunReport) -> ExpectationCheck {
    let not_settled = u64::from(report.count(FindingKind::NotSettled));
    let bound = scenario.expect.not_settled_max;
    ExpectationCheck {
        name: format!("groups not settled within {}", scenario.settle_max),
        bound: bound.to_string(),
        actual: not_settled.to_string(),
        held: not_settled <= bound,
    }
}

/// Always: every new term had a cause (`run::elections`); a cluster whose timers fire with
/// nothing to explain it is broken even when no data is lost.
fn elections_explained(report: &RunReport) -> ExpectationCheck {
    let seeds = report
        .per_seed
        .iter()
        .filter(|o| o.count(FindingKind::UnexplainedElection) > 0)
        .count();
    ExpectationCheck {
        name: "seeds with elections no fault explains".into(),
        bound: "0".into(),
        actual: seeds.to_string(),
        held: seeds == 0,
    }
}

/// `expect.failover_<stage>_p99_max`: the stage's p99, every failover reaching it.
fn stage_p99(report: &RunReport, stage: &str, bound: Millis) -> ExpectationCheck {
    let p = report.stage(stage);
    let p99 = p.and_then(|p| p.p99_us);
    let not_reached = p.map_or(0, |p| p.not_reached);
    ExpectationCheck {
        name: format!("failover {stage} p99"),
        bound: format!("<= {bound}"),
        actual: format!("{} ms ({not_reached} not reached)", ms(p99)),
        held: not_reached == 0 && p99.is_none_or(|p99| p99 <= bound.as_ms() * 1_000),
    }
}

/// `expect.topic_unavailable_p99_max`: held when the topic level was measured and its p99 is
/// within `bound`.
fn topic_unavailable(report: &RunReport, bound: Millis) -> ExpectationCheck {
    let p99 = report.topic.as_ref().and_then(|t| t.unavailable.p99_us);
    ExpectationCheck {
        name: "topic unavailable p99".into(),
        bound: format!("<= {bound}"),
        actual: match &report.topic {
            Some(_) => format!("{} ms", ms(p99)),
            None => "not measured (no topic spans more than one group)".into(),
        },
        held: p99.is_some_and(|p99| p99 <= bound.as_ms() * 1_000),
    }
}
