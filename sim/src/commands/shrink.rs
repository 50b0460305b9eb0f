//! `sim shrink SCENARIO --seed S [--variant V]`: from a failing seed to the smallest scenario
//! that still fails the same way.
//!
//! The seed is run once and the faults its nemesis played (fixed, drawn by a swarm, and their
//! undos) are written out as an explicit timeline; that scenario must show the same finding.
//! Then passes reduce it while the finding stays (each trial is one deterministic run of the
//! same seed): remove faults (ddmin, Zeller & Hildebrandt 2002), shorten the run, move the
//! faults earlier, shorten pauses and strobes, lower the workload (producers, rate,
//! consumers, queues), then shrink parameters (latency, loss). The passes repeat until none
//! shrinks anything or the trial budget is spent.
//!
//! "The same finding" is the finding's kind and, for a Raft invariant, which invariant (for a
//! panic, its message): a lost acknowledged send stays a lost acknowledged send.
//! Candidates of a step are tried `--jobs` at a time, in a fixed order, and the first that
//! still fails (in that order) is taken, so the result does not depend on `--jobs`.
//!
//! Writes `OUT/<scenario>/seed-<S>.min.ron` (a standalone scenario whose header says what was
//! shrunk from what and what it still finds) and its timeline beside it. Exit 0: shrunk; 1:
//! the explicit schedule did not reproduce the finding; 2: bad input (a seed with no finding,
//! an unknown `--finding`, a trial budget of 0).

use crate::commands::common::{load_scenario, plot_seed, select_variants};
use crate::run::outcome::{Finding, FindingKind, SeedOutcome};
use crate::run::seeds as runner;
use crate::run::RunSpec;
use crate::scenario::{Fault, Millis, MillisRange, Scenario, Seeds, TimedFault};
use crate::world::observe::InvariantViolation;
use anyhow::Context;
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use std::collections::BTreeSet;
use std::fmt;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

#[derive(Args, Debug)]
pub struct ShrinkArgs {
    /// The scenario file (RON).
    pub scenario: PathBuf,
    /// The failing seed.
    #[arg(long)]
    pub seed: u64,
    /// Which variant of a scenario with `variants` (required for such a scenario).
    #[arg(long)]
    pub variant: Option<String>,
    /// Override a scenario field, e.g. `--set raft.heartbeat_interval=500ms` (repeatable).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub overrides: Vec<String>,
    /// Keep this finding: a kind (e.g. `lost_acked`) or a word of its text (e.g.
    /// `CommittedEntryTruncated`); default: the seed's first finding.
    #[arg(long)]
    pub finding: Option<String>,
    /// Trials run at once (default: all cores).
    #[arg(long)]
    pub jobs: Option<usize>,
    /// Stop after this many trials (each is one run of the seed).
    #[arg(long, default_value_t = 400)]
    pub max_trials: u32,
    /// Where to write the minimal scenario (OUT/<scenario>/seed-<S>.min.ron).
    #[arg(long, default_value = "reports")]
    pub out: PathBuf,
    /// Print no progress bar.
    #[arg(long)]
    pub quiet: bool,
}

/// What a trial must still show: a finding kind and, for Raft invariants and panics, which.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Signature {
    pub kind: FindingKind,
    pub detail: String,
}

impl fmt::Display for Signature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.detail.is_empty() {
            write!(f, "{}", self.kind)
        } else {
            write!(f, "{} ({})", self.kind, self.detail)
        }
    }
}

/// The leading identifier of a Debug text: `CommittedEntryTruncated { .. }` → its name.
fn variant_name(debug: &str) -> &str {
    let end = debug
        .find(|c: char| !c.is_alphanumeric() && c != '_')
        .unwrap_or(debug.len());
    &debug[..end]
}

fn invariant_name(violation: &InvariantViolation) -> String {
    match violation {
        InvariantViolation::ReportedByNode { violation, .. } => {
            format!(
                "ReportedByNode: {}",
                variant_name(&format!("{violation:?}"))
            )
        }
        other => variant_name(&format!("{other:?}")).to_string(),
    }
}

/// The signatures of a seed's findings.
pub fn signatures(outcome: &SeedOutcome) -> BTreeSet<Signature> {
    outcome.findings.iter().map(signature).collect()
}

/// What a finding is, for a shrink to keep: its kind and, for Raft invariants and panics,
/// which.
fn signature(finding: &Finding) -> Signature {
    Signature {
        kind: finding.kind(),
        detail: match finding {
            Finding::RaftInvariant { violation, .. } => invariant_name(violation),
            Finding::Panic { message } => message.clone(),
            _ => String::new(),
        },
    }
}

/// How big a candidate is, for the progress bar and the header.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Size {
    faults: usize,
    triggers: usize,
    duration: Millis,
    producers: u32,
    send_rate: u32,
    consumers: u32,
}

impl Size {
    fn of(scenario: &Scenario) -> Size {
        Size {
            faults: scenario.faults.len(),
            triggers: scenario.triggers.len(),
            duration: scenario.duration,
            producers: scenario.workload.producers,
            send_rate: scenario.workload.send_rate,
            consumers: scenario.workload.consumers,
        }
    }
}

impl fmt::Display for Size {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} faults, {}, {} producers x {}/s, {} consumers",
            self.faults, self.duration, self.producers, self.send_rate, self.consumers
        )?;
        if self.triggers > 0 {
            write!(f, ", {} event triggers armed", self.triggers)?;
        }
        Ok(())
    }
}

/// Runs candidates and keeps count.
struct Trials {
    seed: u64,
    target: Signature,
    jobs: usize,
    run: u32,
    max: u32,
    bar: ProgressBar,
    file_name: String,
}

impl Trials {
    fn left(&self) -> u32 {
        self.max.saturating_sub(self.run)
    }

    /// The candidate's outcome (one trial).
    fn outcome(&mut self, scenario: &Scenario) -> SeedOutcome {
        self.run += 1;
        self.bar.inc(1);
        runner::run_one(Arc::new(RunSpec::from_scenario(scenario)), self.seed, None)
    }

    /// Whether the candidate still shows the target finding.
    fn fails(scenario: &Scenario, seed: u64, target: &Signature) -> bool {
        let spec = Arc::new(RunSpec::from_scenario(scenario));
        signatures(&runner::run_one(spec, seed, None)).contains(target)
    }

    /// The first candidate (in order) that still fails, tried `jobs` at a time. Candidates
    /// that do not read back as a valid scenario are skipped (never tried).
    fn first_failing(&mut self, candidates: Vec<Scenario>) -> Option<Scenario> {
        let valid: Vec<Scenario> = candidates
            .into_iter()
            .filter_map(|candidate| reparse(&candidate, &self.file_name).ok())
            .collect();
        for chunk in valid.chunks(self.jobs.max(1)) {
            let budget = self.left() as usize;
            if budget == 0 {
                return None;
            }
            let chunk = &chunk[..chunk.len().min(budget)];
            let (seed, target) = (self.seed, &self.target);
            let results: Vec<bool> = std::thread::scope(|scope| {
                let handles: Vec<_> = chunk
                    .iter()
                    .map(|candidate| scope.spawn(move || Trials::fails(candidate, seed, target)))
                    .collect();
                handles
                    .into_iter()
                    .map(|handle| handle.join().expect("invariant: run_one catches panics"))
                    .collect()
            });
            self.run += chunk.len() as u32;
            self.bar.inc(chunk.len() as u64);
            if let Some(found) = results.iter().position(|fails| *fails) {
                let found = chunk[found].clone();
                self.bar
                    .set_message(format!("best so far: {}", Size::of(&found)));
                return Some(found);
            }
        }
        None
    }
}

/// The candidate as the file `sim shrink` would write, read back (validated): what is tried
/// is exactly what is written.
fn reparse(scenario: &Scenario, file_name: &str) -> anyhow::Result<Scenario> {
    let text = to_ron(scenario)?;
    let mut parsed = Scenario::parse(&text, file_name)?;
    RunSpec::check_supported(&parsed)?;
    parsed.file_name = file_name.to_string();
    Ok(parsed)
}

fn to_ron(scenario: &Scenario) -> anyhow::Result<String> {
    let config = ron::ser::PrettyConfig::default()
        .compact_arrays(true)
        .extensions(ron::extensions::Extensions::IMPLICIT_SOME);
    ron::ser::to_string_pretty(scenario, config).context("writing the scenario as RON")
}

/// ddmin over the fault list: the empty list first, then chunks and their complements.
fn remove_faults(trials: &mut Trials, best: &mut Scenario) -> bool {
    let mut changed = false;
    if !best.faults.is_empty() {
        let mut empty = best.clone();
        empty.faults.clear();
        if let Some(found) = trials.first_failing(vec![empty]) {
            *best = found;
            return true;
        }
    }
    let mut parts = 2usize;
    while best.faults.len() >= 2 && trials.left() > 0 {
        let faults = best.faults.clone();
        let parts_now = parts.min(faults.len());
        let size = faults.len().div_ceil(parts_now);
        let chunks: Vec<Vec<TimedFault>> = faults.chunks(size).map(<[_]>::to_vec).collect();
        let with = |kept: Vec<TimedFault>| {
            let mut candidate = best.clone();
            candidate.faults = kept;
            candidate
        };
        let mut candidates: Vec<Scenario> = chunks.iter().cloned().map(with).collect();
        if chunks.len() > 2 {
            for skip in 0..chunks.len() {
                let complement: Vec<TimedFault> = chunks
                    .iter()
                    .enumerate()
                    .filter(|(index, _)| *index != skip)
                    .flat_map(|(_, chunk)| chunk.iter().cloned())
                    .collect();
                candidates.push(with(complement));
            }
        }
        let count = chunks.len();
        match trials.first_failing(candidates) {
            Some(found) => {
                let kept_chunk = found.faults.len() <= size;
                *best = found;
                changed = true;
                parts = if kept_chunk { 2 } else { (count - 1).max(2) };
            }
            None => {
                if count >= faults.len() {
                    break;
                }
                parts = (parts * 2).min(faults.len());
            }
        }
    }
    changed
}

/// When the seed first showed `target`, in ms, for findings that carry a time (Raft
/// invariants, recovery refusals).
fn finding_at_ms(outcome: &SeedOutcome, target: &Signature) -> Option<u64> {
    outcome
        .findings
        .iter()
        .filter(|finding| signature(finding) == *target)
        .filter_map(|finding| match finding {
            Finding::RaftInvariant { at_us, .. } | Finding::RecoveryFailed { at_us, .. } => {
                Some(*at_us)
            }
            _ => None,
        })
        .min()
        .map(|at_us| at_us.div_ceil(1_000))
}

/// Everything after the finding cut off: faults that come later cannot have caused it (the
/// run is deterministic, so its prefix up to the finding is unchanged), and the run ends a
/// little after it. One trial learns when the best candidate shows the finding.
fn cut_after_finding(trials: &mut Trials, best: &mut Scenario) -> bool {
    if trials.left() == 0 {
        return false;
    }
    let outcome = trials.outcome(best);
    let Some(at_ms) = finding_at_ms(&outcome, &trials.target) else {
        return false;
    };
    let mut candidate = best.clone();
    candidate.faults.retain(|fault| fault.at.0 <= at_ms);
    let end_ms = (at_ms + 1_000).max(last_fault_ms(&candidate) + 1);
    candidate.duration = Millis(end_ms.min(best.duration.0));
    if candidate.faults.len() == best.faults.len() && candidate.duration == best.duration {
        return false;
    }
    take(trials, best, vec![candidate])
}

/// Each fault removed on its own, the latest first: where removing a chunk changes the
/// whole interleaving (ddmin stalls), single faults often still go.
fn remove_one_at_a_time(trials: &mut Trials, best: &mut Scenario) -> bool {
    let mut changed = false;
    let mut index = best.faults.len();
    while index > 0 && trials.left() > 0 {
        index -= 1;
        let mut candidate = best.clone();
        candidate.faults.remove(index);
        if let Some(found) = trials.first_failing(vec![candidate]) {
            *best = found;
            changed = true;
        }
        index = index.min(best.faults.len());
    }
    changed
}

fn last_fault_ms(scenario: &Scenario) -> u64 {
    scenario.faults.iter().map(|f| f.at.0).max().unwrap_or(0)
}

/// A shorter fault phase: just past the last fault, then halfway.
fn shorten_run(trials: &mut Trials, best: &mut Scenario) -> bool {
    let last_ms = last_fault_ms(best);
    let now_ms = best.duration.0;
    let mut lengths: Vec<u64> = [
        last_ms + 1_000,
        last_ms + 3_000,
        last_ms + (now_ms - last_ms.min(now_ms)) / 2,
    ]
    .into_iter()
    .filter(|ms| *ms < now_ms && *ms > 0)
    .collect();
    lengths.sort_unstable();
    lengths.dedup();
    let candidates = lengths
        .into_iter()
        .map(|ms| {
            let mut candidate = best.clone();
            candidate.duration = Millis(ms);
            candidate
        })
        .collect();
    take(trials, best, candidates)
}

/// Every fault earlier by the same amount (the order kept), the run as much shorter.
fn move_earlier(trials: &mut Trials, best: &mut Scenario) -> bool {
    let Some(first_ms) = best.faults.iter().map(|f| f.at.0).min() else {
        return false;
    };
    let candidates = [first_ms * 3 / 4, first_ms / 2, first_ms / 4]
        .into_iter()
        .filter(|by| *by > 0)
        .map(|by| {
            let mut candidate = best.clone();
            for fault in &mut candidate.faults {
                fault.at = Millis(fault.at.0 - by);
            }
            candidate.duration = Millis(candidate.duration.0 - by);
            candidate
        })
        .collect();
    take(trials, best, candidates)
}

/// Pauses and strobes half as long, one at a time.
fn shorten_faults(trials: &mut Trials, best: &mut Scenario) -> bool {
    let mut changed = false;
    for index in 0..best.faults.len() {
        let mut candidate = best.clone();
        let halved = match &mut candidate.faults[index].fault {
            Fault::Pause { length, .. } | Fault::ClockStrobe { length, .. } if length.0 > 1 => {
                *length = Millis(length.0 / 2);
                true
            }
            _ => false,
        };
        if halved && trials.left() > 0 {
            changed |= take(trials, best, vec![candidate]);
        }
    }
    changed
}

/// Fewer producers, a lower rate, fewer consumers, one queue per topic.
fn lower_workload(trials: &mut Trials, best: &mut Scenario) -> bool {
    let workload = best.workload.clone();
    let mut candidates = Vec::new();
    let mut with = |change: &dyn Fn(&mut Scenario)| {
        let mut candidate = best.clone();
        change(&mut candidate);
        if candidate.workload != workload {
            candidates.push(candidate);
        }
    };
    with(&|s| s.workload.producers = 1);
    with(&|s| s.workload.producers = (s.workload.producers / 2).max(1));
    with(&|s| s.workload.send_rate = (s.workload.send_rate / 4).max(1));
    with(&|s| s.workload.send_rate = (s.workload.send_rate / 2).max(1));
    with(&|s| s.workload.consumers = 0);
    with(&|s| s.workload.consumers /= 2);
    with(&|s| {
        for topic in &mut s.workload.topics {
            topic.queues = 1;
        }
    });
    take(trials, best, candidates)
}

/// No loss, the smallest latency.
fn shrink_parameters(trials: &mut Trials, best: &mut Scenario) -> bool {
    let network = best.cluster.network.clone();
    let mut candidates = Vec::new();
    if network.loss_ppm > 0 {
        let mut candidate = best.clone();
        candidate.cluster.network.loss_ppm = 0;
        candidates.push(candidate);
    }
    if network.latency.max > network.latency.min {
        let mut candidate = best.clone();
        candidate.cluster.network.latency = MillisRange {
            min: network.latency.min,
            max: network.latency.min,
        };
        candidates.push(candidate);
    }
    take(trials, best, candidates)
}

/// Event triggers (`world::triggers`) disarmed, all at once, then one at a time.
fn disarm_triggers(trials: &mut Trials, best: &mut Scenario) -> bool {
    if best.triggers.is_empty() {
        return false;
    }
    let mut none = best.clone();
    none.triggers.clear();
    if take(trials, best, vec![none]) {
        return true;
    }
    let mut changed = false;
    let mut index = 0;
    while index < best.triggers.len() && trials.left() > 0 {
        let mut candidate = best.clone();
        candidate.triggers.remove(index);
        if take(trials, best, vec![candidate]) {
            changed = true;
        } else {
            index += 1;
        }
    }
    changed
}

/// Takes the first candidate that still fails; whether one did.
fn take(trials: &mut Trials, best: &mut Scenario, candidates: Vec<Scenario>) -> bool {
    match trials.first_failing(candidates) {
        Some(found) => {
            *best = found;
            true
        }
        None => false,
    }
}

/// The result of a shrink.
pub struct Shrunk {
    pub scenario: Scenario,
    pub target: Signature,
    pub from: String,
    pub to: String,
    pub trials: u32,
}

/// Shrinks `scenario` at `seed` keeping `target` (the scenario's schedule must already be
/// explicit); `None` when the starting point itself does not fail that way.
fn shrink(mut trials: Trials, start: Scenario) -> Option<Shrunk> {
    let from = Size::of(&start).to_string();
    let mut best = trials.first_failing(vec![start])?;
    loop {
        // Triggers first: armed, they keep firing and every other change moves them.
        let mut changed = disarm_triggers(&mut trials, &mut best);
        changed |= cut_after_finding(&mut trials, &mut best);
        changed |= remove_faults(&mut trials, &mut best);
        changed |= remove_one_at_a_time(&mut trials, &mut best);
        changed |= shorten_run(&mut trials, &mut best);
        changed |= move_earlier(&mut trials, &mut best);
        changed |= shorten_faults(&mut trials, &mut best);
        changed |= lower_workload(&mut trials, &mut best);
        changed |= shrink_parameters(&mut trials, &mut best);
        if !changed || trials.left() == 0 {
            break;
        }
    }
    trials.bar.finish_and_clear();
    Some(Shrunk {
        to: Size::of(&best).to_string(),
        scenario: best,
        target: trials.target,
        from,
        trials: trials.run,
    })
}

fn pick_target(outcome: &SeedOutcome, wanted: Option<&str>) -> anyhow::Result<Signature> {
    let found = signatures(outcome);
    let kinds: Vec<String> = found.iter().map(ToString::to_string).collect();
    // The seed's first finding (safety before liveness, as the report lists them).
    let first = outcome.findings.first().map(|finding| finding.kind());
    let chosen = match wanted {
        Some(name) => found
            .iter()
            .find(|s| s.kind.as_str() == name)
            .or_else(|| found.iter().find(|s| s.to_string().contains(name))),
        None => first.and_then(|kind| found.iter().find(|s| s.kind == kind)),
    };
    chosen.cloned().with_context(|| match wanted {
        Some(name) => format!(
            "seed {} has no {name:?} finding (it has: {})",
            outcome.seed,
            kinds.join(", ")
        ),
        None => format!("seed {} has no finding: nothing to shrink", outcome.seed),
    })
}

/// The header of the minimal scenario file.
fn header(original: &Scenario, seed: u64, shrunk: &Shrunk, path: &Path) -> String {
    let variant = original
        .variant
        .as_ref()
        .map(|v| format!(" --variant {v}"))
        .unwrap_or_default();
    format!(
        "// Shrunk by `sim shrink {} --seed {seed}{variant}` in {} trials.\n\
         // From: {}.\n\
         // To:   {}.\n\
         // Still finds: {} (seed {seed}).\n\
         // Replay: cargo run --release -p sim -- replay {} --seed {seed}\n",
        original.file_name,
        shrunk.trials,
        shrunk.from,
        shrunk.to,
        shrunk.target,
        path.display()
    )
}

pub fn run(args: ShrinkArgs) -> anyhow::Result<ExitCode> {
    let bad_input = |message: String| -> anyhow::Result<ExitCode> {
        eprintln!("error: {message}");
        Ok(ExitCode::from(2))
    };
    if args.max_trials == 0 {
        return bad_input("--max-trials must be at least 1".to_string());
    }
    let base = load_scenario(&args.scenario, &args.overrides)?;
    let chosen = select_variants(&base, args.variant.as_deref())?;
    anyhow::ensure!(
        chosen.len() == 1,
        "{} has variants: choose one with --variant",
        base.file_name
    );
    let original = chosen
        .into_iter()
        .next()
        .expect("invariant: one variant chosen");
    let seed = args.seed;
    let spec = Arc::new(RunSpec::from_scenario(&original));
    let (outcome, played) = match runner::run_one_full(spec, seed) {
        Ok((outcome, run)) => (outcome, run.played),
        Err(message) => {
            return bad_input(format!(
                "seed {seed} panicked ({message}); a panicking seed's schedule is not \
                 recorded, so it cannot be made explicit"
            ))
        }
    };
    let target = match pick_target(&outcome, args.finding.as_deref()) {
        Ok(target) => target,
        Err(error) => return bad_input(format!("{}: {error:#}", original.file_name)),
    };
    let dir = args.out.join(&base.name);
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let path = dir.join(match &original.variant {
        Some(variant) => format!("seed-{seed}-{variant}.min.ron"),
        None => format!("seed-{seed}.min.ron"),
    });
    let file_name = path.display().to_string();

    // A swarm-configured scenario: this seed's draw, fixed (its triggers stay armed).
    let (mut start, _) = crate::scenario::swarm_config::for_seed(&original, seed);
    // The clients start when they did, whatever becomes of the first fault.
    start.workload.start = Some(crate::run::spec::workload_start(&start));
    start.faults = played;
    start.variants = Vec::new();
    start.variant = None;
    start.overrides = Vec::new();
    start.seeds = Seeds {
        first: seed,
        count: 1,
    };
    start.name = format!("{}-seed{seed}-min", original.name);
    println!(
        "{} seed {seed}: shrinking while it finds {target}; its schedule made explicit: {} \
         faults",
        original.name,
        start.faults.len()
    );
    let bar = if args.quiet {
        ProgressBar::hidden()
    } else {
        let bar = ProgressBar::new(u64::from(args.max_trials));
        bar.set_style(
            ProgressStyle::with_template(
                "{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} trials {msg}",
            )
            .expect("invariant: the template is valid"),
        );
        bar
    };
    let trials = Trials {
        seed,
        target: target.clone(),
        jobs: args
            .jobs
            .unwrap_or_else(crate::commands::common::default_jobs),
        run: 0,
        max: args.max_trials,
        bar,
        file_name: file_name.clone(),
    };
    if let Err(error) = reparse(&start, &file_name) {
        anyhow::bail!(
            "seed {seed}'s schedule, made explicit, is not a valid scenario (a bug of sim \
             shrink): {error:#}"
        );
    }
    let explicit = start.clone();
    let Some(shrunk) = shrink(trials, start) else {
        let path = path.with_extension("explicit.ron");
        std::fs::write(&path, to_ron(&explicit)?)
            .with_context(|| format!("writing {}", path.display()))?;
        eprintln!(
            "error: seed {seed}'s schedule, made explicit ({}), no longer finds {target}: \
             nothing shrunk",
            path.display()
        );
        return Ok(ExitCode::from(1));
    };
    let text = format!(
        "{}{}\n",
        header(&original, seed, &shrunk, &path),
        to_ron(&shrunk.scenario)?
    );
    std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
    let svg = plot_seed(&shrunk.scenario, seed, "shrunk", &args.out)?;
    let beside = path.with_extension("timeline.svg");
    std::fs::rename(&svg, &beside)
        .with_context(|| format!("moving {} to {}", svg.display(), beside.display()))?;
    if let Some(parent) = svg.parent() {
        // The plot's own folder, now empty; another file there keeps it.
        let _ = std::fs::remove_dir(parent);
    }
    println!(
        "shrunk in {} trials: {} -> {}; still finds {}",
        shrunk.trials, shrunk.from, shrunk.to, shrunk.target
    );
    println!("minimal scenario: {}", path.display());
    println!("timeline: {}", beside.display());
    println!(
        "REPRODUCE WITH: cargo run --release -p sim -- replay {} --seed {seed}",
        path.display()
    );
    Ok(ExitCode::SUCCESS)
}
