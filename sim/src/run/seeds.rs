//! Runs seeds in parallel, each on a fresh OS thread with its own madsim runtime, outside of
//! which the progress bar lives. A panic inside a seed is a finding, not a crash of the tool.

use super::seed::{run_seed, SeedRun};
use crate::history::Operation;
use crate::run::evaluate;
use crate::run::outcome::SeedOutcome;
use crate::run::RunSpec;
use indicatif::{ProgressBar, ProgressStyle};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

/// Runs one seed on a fresh thread (std's HashMap seeding is deterministic only there),
/// with `trace` as that thread's tracing subscriber when given.
pub fn run_one(spec: Arc<RunSpec>, seed: u64, trace: Option<tracing::Dispatch>) -> SeedOutcome {
    run_one_keeping_history(spec, seed, trace).0
}

/// `run_one`, also handing back the seed's client history (None when the seed panicked).
pub fn run_one_keeping_history(
    spec: Arc<RunSpec>,
    seed: u64,
    trace: Option<tracing::Dispatch>,
) -> (SeedOutcome, Option<Vec<Operation>>) {
    let thread = std::thread::Builder::new()
        .name(format!("seed-{seed}"))
        .spawn(move || {
            let run = || {
                let (spec, config) = spec.for_seed(seed);
                let run = run_seed(spec.clone(), seed);
                let mut outcome = evaluate::evaluate(&spec, &run);
                outcome.config = config;
                (outcome, Some(run.history))
            };
            match trace {
                Some(dispatch) => tracing::dispatcher::with_default(&dispatch, run),
                None => run(),
            }
        })
        .expect("invariant: the OS can start a thread per seed");
    match thread.join() {
        Ok(result) => result,
        Err(payload) => (
            SeedOutcome::panicked(seed, panic_message(payload.as_ref())),
            None,
        ),
    }
}

/// Runs every seed with up to `jobs` at once; results come back in seed order.
pub fn run_seeds(
    spec: Arc<RunSpec>,
    seeds: &[u64],
    jobs: usize,
    progress: bool,
) -> Vec<SeedOutcome> {
    run_seeds_until(spec, seeds, jobs, progress, false)
}

/// `run_seeds`, or with `until_finding` only up to the first seed (in the list's order) that
/// has a finding: seeds after it are not started, seeds before it all run (so which seed is
/// first never depends on which worker was quicker). The outcomes are those seeds', in order.
pub fn run_seeds_until(
    spec: Arc<RunSpec>,
    seeds: &[u64],
    jobs: usize,
    progress: bool,
    until_finding: bool,
) -> Vec<SeedOutcome> {
    let bar = if progress {
        let bar = ProgressBar::new(seeds.len() as u64);
        bar.set_style(
            ProgressStyle::with_template(
                "{spinner} [{elapsed_precise}] {bar:40} {pos}/{len} seeds {msg}",
            )
            .expect("invariant: the template is valid"),
        );
        bar
    } else {
        ProgressBar::hidden()
    };
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<Option<SeedOutcome>>> = Mutex::new(vec![None; seeds.len()]);
    let failing = AtomicUsize::new(0);
    // With `until_finding`: the index of the first seed known to have a finding.
    let first_finding = AtomicUsize::new(usize::MAX);
    std::thread::scope(|scope| {
        for _ in 0..jobs.max(1).min(seeds.len().max(1)) {
            scope.spawn(|| loop {
                let index = next.fetch_add(1, Ordering::Relaxed);
                if index > first_finding.load(Ordering::Relaxed) {
                    break;
                }
                let Some(seed) = seeds.get(index) else {
                    break;
                };
                let outcome = run_one(spec.clone(), *seed, None);
                if !outcome.findings.is_empty() {
                    let n = failing.fetch_add(1, Ordering::Relaxed) + 1;
                    bar.set_message(format!("({n} with findings)"));
                    if until_finding {
                        first_finding.fetch_min(index, Ordering::Relaxed);
                    }
                }
                results
                    .lock()
                    .expect("invariant: no worker panics holding the lock")[index] = Some(outcome);
                bar.inc(1);
            });
        }
    });
    bar.finish_and_clear();
    let ran = first_finding
        .into_inner()
        .saturating_add(1)
        .min(seeds.len());
    results
        .into_inner()
        .expect("invariant: no worker panicked holding the lock")
        .into_iter()
        .take(ran)
        .map(|r| r.expect("invariant: every seed up to the first finding was run"))
        .collect()
}

fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        String::from("panic with a non-string payload")
    }
}

/// Runs one seed on a fresh thread and hands back its whole raw run (history, observations,
/// failover faults) with its outcome, for plots; Err(panic message) when the seed panicked.
pub fn run_one_full(spec: Arc<RunSpec>, seed: u64) -> Result<(SeedOutcome, SeedRun), String> {
    let thread = std::thread::Builder::new()
        .name(format!("seed-{seed}"))
        .spawn(move || {
            let (spec, config) = spec.for_seed(seed);
            let run = run_seed(spec.clone(), seed);
            let mut outcome = evaluate::evaluate(&spec, &run);
            outcome.config = config;
            (outcome, run)
        })
        .expect("invariant: the OS can start a thread per seed");
    thread
        .join()
        .map_err(|payload| panic_message(payload.as_ref()))
}
