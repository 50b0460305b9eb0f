//! Checks the parts of a history in parallel and turns each outcome into a `PartReport`.
//! Verdicts do not depend on thread scheduling: every part gets its own model clone and step
//! budget, results land in the part's own slot, and no part is cancelled because another failed.
//! Budgets are in model steps, so a verdict never depends on machine speed; the optional
//! wall-clock guard (`CheckOptions::time_limit`, off by default) is for benches only.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::model::{Decided, Model, Op, Part, Witness, NEVER_RETURNED_US};
use super::report::{
    CheckReport, Mark, Method, PartReport, TimelineOp, UnknownReason, WindowReport,
};
use super::wgl::{search, Budget, Verdict};
use super::window::shortest_window;

/// Limits and switches of a check.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CheckOptions {
    /// Model steps per part before its verdict is `Unknown` (deterministic).
    pub steps_per_part_max: u64,
    /// Wall-clock guard for the whole check; parts still running then are `Unknown`. `None`
    /// (the default) everywhere a verdict matters: with a guard the verdict depends on the
    /// machine's speed. Kept for benches and callers that must bound their own run time.
    pub time_limit: Option<Duration>,
    /// Worker threads; 0: as many as the machine has.
    pub threads: usize,
    /// Settle unknown sends against the final logs before the search (log histories).
    pub settle: bool,
    /// Without final logs, decide log queues from the history alone where it pins the log,
    /// searching only the rest (`log_check`); false: search every queue as it is.
    pub decide_logs: bool,
    /// Model steps per trial while shrinking a failing window.
    pub window_steps_max: u64,
    /// Most operations drawn on a failing part's HTML timeline.
    pub timeline_ops_max: usize,
}

impl Default for CheckOptions {
    fn default() -> CheckOptions {
        CheckOptions {
            steps_per_part_max: 200_000_000,
            time_limit: None,
            threads: 0,
            settle: true,
            decide_logs: true,
            window_steps_max: 2_000_000,
            timeline_ops_max: 400,
        }
    }
}

/// Partitions `ops` with the model and checks every part.
pub fn check_ops<M: Model + Sync>(
    model: &M,
    ops: Vec<Op<M::Input, M::Output>>,
    options: &CheckOptions,
) -> CheckReport {
    let parts = model.partition(ops);
    check_parts(model, &parts, options)
}

/// Checks every part, in parallel.
pub fn check_parts<M: Model + Sync>(
    model: &M,
    parts: &[Part<M::Input, M::Output>],
    options: &CheckOptions,
) -> CheckReport {
    let started = Instant::now();
    let deadline = options.time_limit.map(|limit| started + limit);
    let threads = match options.threads {
        0 => std::thread::available_parallelism().map_or(1, usize::from),
        threads => threads,
    }
    .clamp(1, parts.len().max(1));
    // Largest parts first, for balance; ties by part order.
    let mut order: Vec<usize> = (0..parts.len()).collect();
    order.sort_by_key(|&part| (std::cmp::Reverse(parts[part].ops.len()), part));
    let next = AtomicUsize::new(0);
    let slots: Mutex<Vec<Option<PartReport>>> = Mutex::new(vec![None; parts.len()]);
    std::thread::scope(|scope| {
        for _ in 0..threads {
            scope.spawn(|| loop {
                let taken = next.fetch_add(1, Ordering::Relaxed);
                let Some(&part) = order.get(taken) else {
                    break;
                };
                let report = check_part(model, &parts[part], options, deadline);
                slots
                    .lock()
                    .expect("no worker panics while holding the lock")[part] = Some(report);
            });
        }
    });
    let reports = slots
        .into_inner()
        .expect("workers are joined")
        .into_iter()
        .map(|report| report.expect("every part was checked"))
        .collect();
    CheckReport::from_parts(reports, started.elapsed())
}

/// Checks one part and, when it fails, finds its shortest failing window.
pub fn check_part<M: Model>(
    model: &M,
    part: &Part<M::Input, M::Output>,
    options: &CheckOptions,
    deadline: Option<Instant>,
) -> PartReport {
    let started = Instant::now();
    let mut searcher = model.clone();
    let init = searcher.init();
    // The model's rules first (an impossible read, then its polynomial decision); the search
    // only for what they leave open. A NOT by rule shows its witness as the window.
    let ruled = match searcher.refute(&part.ops) {
        Some(witness) => Decided::Not(witness),
        None => searcher.decide(&part.ops),
    };
    let ambiguity = match ruled {
        Decided::Linearizable => {
            return decided_report(part, Verdict::Linearizable, None, started);
        }
        Decided::Not(witness) => {
            let mut report = decided_report(part, Verdict::NotLinearizable, Some(witness), started);
            add_witness_window(&searcher, part, &mut report, options);
            report.elapsed = started.elapsed();
            return report;
        }
        Decided::Open(ambiguity) => ambiguity,
    };
    let budget = Budget {
        steps_max: options.steps_per_part_max,
        deadline,
    };
    let outcome = search(&mut searcher, init, &part.ops, &budget);
    let verdict = outcome.verdict;
    let unknown = (verdict == Verdict::Unknown).then(|| UnknownReason {
        open_ops: part
            .ops
            .iter()
            .filter(|op| op.output.is_none() && !model.unknown_is_noop(&op.input))
            .count(),
        steps_max: options.steps_per_part_max,
        deadline_hit: deadline.is_some() && outcome.steps <= options.steps_per_part_max,
        ambiguity,
    });
    let mut report = PartReport {
        name: part.name.clone(),
        verdict,
        witness: None,
        method: Method::Search,
        rule: None,
        unknown,
        ops: part.ops.len(),
        steps: outcome.steps,
        elapsed: Duration::ZERO,
        window: None,
        timeline: Vec::new(),
    };
    if outcome.verdict == Verdict::NotLinearizable {
        let window = shortest_window(&mut searcher, &part.ops, &outcome, options.window_steps_max);
        let describe = |position: usize, mark: Mark| describe(&searcher, &part.ops[position], mark);
        let mut rows: Vec<TimelineOp> = window
            .ops
            .iter()
            .map(|&position| {
                let mark = if Some(position) == window.culprit {
                    Mark::Culprit
                } else {
                    Mark::Window
                };
                describe(position, mark)
            })
            .chain(
                window
                    .relaxed
                    .iter()
                    .map(|&position| describe(position, Mark::Relaxed)),
            )
            .collect();
        rows.sort_by_key(|row| (row.call_us, row.index));
        report.timeline = timeline(&part.ops, &rows, options.timeline_ops_max, |position| {
            describe(position, Mark::Context)
        });
        report.window = Some(WindowReport {
            prefix_ops: window.prefix.len(),
            start_state: searcher.describe_state(&window.start_state),
            ops: rows,
            culprit: window.culprit.map(|position| part.ops[position].index),
        });
    }
    report.elapsed = started.elapsed();
    report
}

/// The report of a part the model decided without the search (`Model::decide`).
fn decided_report<I, O>(
    part: &Part<I, O>,
    verdict: Verdict,
    witness: Option<Witness>,
    started: Instant,
) -> PartReport {
    PartReport {
        name: part.name.clone(),
        verdict,
        method: Method::Rules,
        rule: None,
        unknown: None,
        ops: part.ops.len(),
        steps: 0,
        elapsed: started.elapsed(),
        window: None,
        witness,
        timeline: Vec::new(),
    }
}

/// When the part has a witness and no window yet: the witness as its window, its rule in
/// words, and the timeline around it.
fn add_witness_window<M: Model>(
    model: &M,
    part: &Part<M::Input, M::Output>,
    report: &mut PartReport,
    options: &CheckOptions,
) {
    let Some(witness) = &report.witness else {
        return;
    };
    let (rows, window) = witness_window(model, part, witness);
    report.timeline = timeline(&part.ops, &rows, options.timeline_ops_max, |position| {
        describe(model, &part.ops[position], Mark::Context)
    });
    report.rule = Some(witness.rule.clone());
    report.window = Some(window);
}

/// A window made of a witness's operations, from the initial state, when the search found none.
fn witness_window<M: Model>(
    model: &M,
    part: &Part<M::Input, M::Output>,
    witness: &Witness,
) -> (Vec<TimelineOp>, WindowReport) {
    let rows: Vec<TimelineOp> = part
        .ops
        .iter()
        .filter(|op| witness.ops.contains(&op.index))
        .map(|op| {
            let mark = if op.index == witness.culprit {
                Mark::Culprit
            } else {
                Mark::Window
            };
            describe(model, op, mark)
        })
        .collect();
    let mut rows = rows;
    rows.sort_by_key(|row| (row.call_us, row.index));
    let mut init_model = model.clone();
    let window = WindowReport {
        prefix_ops: 0,
        start_state: model.describe_state(&init_model.init()),
        ops: rows.clone(),
        culprit: Some(witness.culprit),
    };
    (rows, window)
}

pub(crate) fn describe<M: Model>(
    model: &M,
    op: &Op<M::Input, M::Output>,
    mark: Mark,
) -> TimelineOp {
    TimelineOp {
        index: op.index,
        client: op.client,
        call_us: op.call_us,
        return_us: (op.return_us != NEVER_RETURNED_US).then_some(op.return_us),
        description: model.describe_op(&op.input, op.output.as_ref()),
        mark,
    }
}

/// The window rows plus the operations overlapping the window's time span, nearest first, up to
/// `ops_max` in all; sorted by call time.
pub(crate) fn timeline<I, O>(
    ops: &[Op<I, O>],
    rows: &[TimelineOp],
    ops_max: usize,
    context: impl Fn(usize) -> TimelineOp,
) -> Vec<TimelineOp> {
    let Some(start) = rows.iter().map(|row| row.call_us).min() else {
        return Vec::new();
    };
    let end = rows
        .iter()
        .map(|row| row.return_us.unwrap_or(row.call_us))
        .max()
        .unwrap_or(start);
    let span = (end - start).max(1);
    let (from, to) = (start.saturating_sub(span), end.saturating_add(span));
    let shown: std::collections::BTreeSet<usize> = rows.iter().map(|row| row.index).collect();
    let mut nearby: Vec<(u64, usize)> = ops
        .iter()
        .enumerate()
        .filter(|(_, op)| {
            !shown.contains(&op.index) && op.call_us <= to && op.return_us.min(to) >= from
        })
        .map(|(position, op)| (op.call_us.abs_diff(start), position))
        .collect();
    nearby.sort_unstable();
    nearby.truncate(ops_max.saturating_sub(rows.len()));
    let mut all: Vec<TimelineOp> = rows.to_vec();
    all.extend(nearby.into_iter().map(|(_, position)| context(position)));
    all.sort_by_key(|row| (row.call_us, row.index));
    all
}
