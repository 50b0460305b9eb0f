//! What each subcommand does; `main.rs` only parses arguments and maps errors to exit codes.

use crate::report::{self, ExpectationCheck, RunReport};
use crate::run::seeds as runner;
use crate::scenario::Scenario;
use crate::verdict::SeedOutcome;
use crate::world::WorldSpec;
use anyhow::Context;
use clap::Args;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::{Arc, Mutex};

#[derive(Args, Debug)]
pub struct RunArgs {
    /// The scenario file (RON).
    pub scenario: PathBuf,
    /// Run this many seeds from the scenario's first seed instead of its count.
    #[arg(long, conflicts_with = "seed")]
    pub seeds: Option<u64>,
    /// Run only this seed.
    #[arg(long)]
    pub seed: Option<u64>,
    /// Seeds run at once (default: all cores).
    #[arg(long)]
    pub jobs: Option<usize>,
    /// Where report files go.
    #[arg(long, default_value = "reports")]
    pub out: PathBuf,
    /// Override a scenario field, e.g. `--set raft.heartbeat_interval=500ms` (repeatable).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub overrides: Vec<String>,
    /// Print no progress bar.
    #[arg(long)]
    pub quiet: bool,
    /// Draw a seed's timeline (`worst`: the slowest client failover, or a seed number) and the
    /// client failover histogram as SVGs under the report folder.
    #[arg(long, value_name = "worst|SEED")]
    pub plot: Option<crate::commands::plot::PlotChoice>,
    /// Run only this variant of a scenario with `variants` (default: all, side by side).
    #[arg(long)]
    pub variant: Option<String>,
}

#[derive(Args, Debug)]
pub struct ReplayArgs {
    pub scenario: PathBuf,
    #[arg(long)]
    pub seed: u64,
    /// Write the full trace here (default: reports/<scenario>/seed-<S>.trace).
    #[arg(long)]
    pub trace: Option<PathBuf>,
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub overrides: Vec<String>,
    /// Also draw this seed's timeline: reports/<scenario>/seed-<S>.timeline.svg.
    #[arg(long)]
    pub plot: bool,
    /// Which variant of a scenario with `variants` to replay (required for such a scenario).
    #[arg(long)]
    pub variant: Option<String>,
}

/// Loads a scenario and applies `--set` overrides.
pub fn load_scenario(path: &Path, overrides: &[String]) -> anyhow::Result<Scenario> {
    let mut scenario = Scenario::load(path)?;
    for item in overrides {
        let (key, value) = item
            .split_once('=')
            .with_context(|| format!("--set {item:?}: expected KEY=VALUE"))?;
        scenario = scenario.with_override(key, value)?;
    }
    WorldSpec::check_supported(&scenario)?;
    Ok(scenario)
}

/// The command that replays one seed of this scenario exactly.
pub fn replay_command(scenario: &Scenario, seed: u64) -> String {
    let mut command = format!(
        "cargo run --release -p sim -- replay {} --seed {seed}",
        scenario.file_name
    );
    for (key, value) in &scenario.overrides {
        command.push_str(&format!(" --set {key}={value}"));
    }
    if let Some(variant) = &scenario.variant {
        command.push_str(&format!(" --variant {variant}"));
    }
    command
}

/// The scenarios a run covers: every variant (or the scenario itself if it has none), or only
/// the one `--variant` names.
pub fn select_variants(scenario: &Scenario, only: Option<&str>) -> anyhow::Result<Vec<Scenario>> {
    let all = scenario.variant_scenarios()?;
    match only {
        None => Ok(all),
        Some(name) => {
            let known: Vec<&str> = scenario.variants.iter().map(|v| v.name.as_str()).collect();
            let chosen: Vec<Scenario> = all
                .into_iter()
                .filter(|s| s.variant.as_deref() == Some(name))
                .collect();
            anyhow::ensure!(
                !chosen.is_empty(),
                "{}: no variant {name:?} (variants: {})",
                scenario.file_name,
                if known.is_empty() {
                    "none".to_string()
                } else {
                    known.join(", ")
                }
            );
            Ok(chosen)
        }
    }
}

pub fn seeds_of(scenario: &Scenario, count: Option<u64>, single: Option<u64>) -> Vec<u64> {
    match (single, count) {
        (Some(seed), _) => vec![seed],
        (None, Some(count)) => (scenario.seeds.first..scenario.seeds.first + count).collect(),
        (None, None) => scenario.seeds.iter().collect(),
    }
}

/// Runs the seeds and builds the report (no printing).
pub fn run_report(scenario: &Scenario, seeds: &[u64], jobs: usize, progress: bool) -> RunReport {
    let spec = Arc::new(WorldSpec::from_scenario(scenario));
    let outcomes = runner::run_seeds(spec, seeds, jobs, progress);
    build_report(scenario, seeds, outcomes)
}

pub fn build_report(scenario: &Scenario, seeds: &[u64], outcomes: Vec<SeedOutcome>) -> RunReport {
    let stages = report::stage_summaries(&outcomes);
    let findings_by_kind = report::findings_by_kind(&outcomes);
    let mut report = RunReport {
        scenario: scenario.name.clone(),
        scenario_file: scenario.file_name.clone(),
        scenario_hash: scenario.source_hash.to_string(),
        overrides: scenario.overrides.clone(),
        seeds: seeds.to_vec(),
        stages,
        stages_by_group: report::group_stage_summaries(scenario.cluster.groups, &outcomes),
        topic: report::topic_summary(&outcomes),
        findings_by_kind,
        expectations: Vec::new(),
        per_seed: outcomes,
    };
    report.expectations = expectations(scenario, &report);
    report
}

fn expectations(scenario: &Scenario, report: &RunReport) -> Vec<ExpectationCheck> {
    let expect = &scenario.expect;
    let mut checks = Vec::new();
    let lost_per_seed = |o: &SeedOutcome| {
        o.findings
            .iter()
            .filter(|f| f.kind() == "lost_acked")
            .count() as u64
    };
    let lost_worst = report.per_seed.iter().map(lost_per_seed).max().unwrap_or(0);
    checks.push(ExpectationCheck {
        name: "lost acknowledged sends (per seed, worst)".into(),
        bound: format!("<= {}", expect.lost_acked),
        actual: lost_worst.to_string(),
        held: lost_worst <= expect.lost_acked,
    });
    if expect.linearizable {
        let verdicts = |v: &str| {
            report
                .per_seed
                .iter()
                .filter(|o| o.check.verdict == v)
                .count()
        };
        let (violations, unknown) = (verdicts("not_linearizable"), verdicts("unknown"));
        checks.push(ExpectationCheck {
            name: "every queue's log linearizable (seeds not / unknown)".into(),
            bound: "0 / 0".into(),
            actual: format!("{violations} / {unknown}"),
            held: violations == 0 && unknown == 0,
        });
    }
    let other_safety: u64 = report
        .findings_by_kind
        .iter()
        .filter(|(kind, _)| {
            !matches!(
                kind.as_str(),
                "lost_acked" | "not_linearizable" | "not_settled"
            ) && !crate::verdict::CONSEQUENCES_OF_LOSS.contains(&kind.as_str())
        })
        .map(|(_, n)| u64::from(*n))
        .sum();
    checks.push(ExpectationCheck {
        name: "other safety findings (panics, Raft invariants, oracles)".into(),
        bound: "0".into(),
        actual: other_safety.to_string(),
        held: other_safety == 0,
    });
    let not_settled = u64::from(
        report
            .findings_by_kind
            .get("not_settled")
            .copied()
            .unwrap_or(0),
    );
    checks.push(ExpectationCheck {
        name: format!("groups not settled within {}", scenario.settle_max),
        bound: "0".into(),
        actual: not_settled.to_string(),
        held: not_settled == 0,
    });
    let bounds = [
        ("detect", expect.failover_detect_p99_max),
        ("elect", expect.failover_elect_p99_max),
        ("commit", expect.failover_commit_p99_max),
        ("client", expect.failover_client_p99_max),
    ];
    for (stage, bound) in bounds {
        let Some(bound) = bound else { continue };
        let p = report.stage(stage).cloned();
        let p99 = p.as_ref().and_then(|p| p.p99_us);
        let not_reached = p.as_ref().map_or(0, |p| p.not_reached);
        checks.push(ExpectationCheck {
            name: format!("failover {stage} p99"),
            bound: format!("<= {bound}"),
            actual: format!("{} ms ({not_reached} not reached)", report::ms(p99)),
            held: not_reached == 0 && p99.is_none_or(|p99| p99 <= bound.as_ms() * 1_000),
        });
    }
    if let Some(bound) = expect.topic_unavailable_p99_max {
        checks.push(report::topic_expectation(report, bound));
    }
    checks
}

pub fn default_jobs() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

pub fn run(args: RunArgs) -> anyhow::Result<ExitCode> {
    let base = load_scenario(&args.scenario, &args.overrides)?;
    let scenarios = select_variants(&base, args.variant.as_deref())?;
    let mut rows = Vec::new();
    let mut all_held = true;
    for scenario in &scenarios {
        let report = run_one_scenario(&args, scenario)?;
        all_held &= report.all_held();
        rows.push(crate::commands::compare::CompareRow::from_report(
            scenario, &report,
        ));
    }
    if scenarios.len() > 1 {
        println!("\nVariants of {}, side by side:", base.file_name);
        println!("{}", crate::commands::compare::compare_table(&rows));
    }
    Ok(if all_held {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn run_one_scenario(args: &RunArgs, scenario: &Scenario) -> anyhow::Result<RunReport> {
    WorldSpec::check_supported(scenario)?;
    let scenario = scenario.clone();
    let seeds = seeds_of(&scenario, args.seeds, args.seed);
    let jobs = args.jobs.unwrap_or_else(default_jobs);
    let started = std::time::Instant::now();
    let report = run_report(&scenario, &seeds, jobs, !args.quiet);
    let wall = started.elapsed();
    print_report(&scenario, &report);
    let mut paths = report::write_report(&report, &args.out)
        .with_context(|| format!("writing the report under {}", args.out.display()))?;
    paths.extend(
        report::write_check_pages(&report, &args.out)
            .with_context(|| format!("writing checker pages under {}", args.out.display()))?,
    );
    if let Some(choice) = args.plot {
        paths.extend(crate::commands::plot::plot_run(
            &scenario, &report, choice, &args.out,
        )?);
    }
    let seeds_per_minute = seeds.len() as f64 / wall.as_secs_f64().max(1e-9) * 60.0;
    println!(
        "{} seeds in {:.1} s wall ({:.0} seeds/min, {jobs} jobs). Report: {}",
        seeds.len(),
        wall.as_secs_f64(),
        seeds_per_minute,
        paths
            .iter()
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>()
            .join(", ")
    );
    Ok(report)
}

pub fn print_report(scenario: &Scenario, report: &RunReport) {
    println!(
        "scenario {} ({}, hash {}), {} seeds",
        report.scenario,
        report.scenario_file,
        report.scenario_hash,
        report.seeds.len()
    );
    println!("\nFailover, across seeds (DESIGN.md definitions):");
    println!("{}", report::stages_table(report));
    report::print_groups_and_topic(report);
    let settle: Vec<Option<u64>> = report
        .per_seed
        .iter()
        .flat_map(|o| o.settle_us.iter().copied())
        .collect();
    let p = crate::metrics::percentiles(&settle);
    println!(
        "Heal and settle (ms from heal until every group has one leader and all replicas caught up): \
         p50 {} / p99 {} / max {} over {} groups x seeds; {} did not settle within {}",
        report::ms(p.p50_us),
        report::ms(p.p99_us),
        report::ms(p.max_us),
        p.samples,
        p.not_reached,
        scenario.settle_max
    );
    let healed: Vec<Option<u64>> = report
        .per_seed
        .iter()
        .flat_map(|o| o.cuts_healed.iter().map(|cut| cut.client_us))
        .collect();
    if !healed.is_empty() {
        let p = crate::metrics::percentiles(&healed);
        println!(
            "Leader cut off from its majority but healed before any replica replaced it (not \
             failovers): {} times; client stage p50 {} / p99 {} / max {} ms, {} not reached",
            p.samples,
            report::ms(p.p50_us),
            report::ms(p.p99_us),
            report::ms(p.max_us),
            p.not_reached
        );
    }
    println!("\nWorst seeds by client-perceived failover:");
    println!("{}", report::worst_seeds_table(report, 5));
    if let Some(table) = report::failing_seeds_table(report, |seed| replay_command(scenario, seed))
    {
        println!("\nSeeds with findings:");
        println!("{table}");
    }
    if let Some(text) = lost_acks_explained(report) {
        println!("\nLost acknowledged sends, explained:");
        println!("{text}");
    }
    println!("\nExpectations:");
    println!("{}", report::expectations_table(report));
    for outcome in report
        .per_seed
        .iter()
        .filter(|o| !o.findings.is_empty())
        .take(3)
    {
        println!("REPRODUCE WITH: {}", replay_command(scenario, outcome.seed));
    }
}

/// Per seed with lost acknowledged sends: how many, and what the world saw that explains them
/// (a master–slave master restarting with fewer entries than it had acknowledged). None when
/// no seed lost an acknowledged send.
pub fn lost_acks_explained(report: &RunReport) -> Option<String> {
    let mut lines = Vec::new();
    for outcome in &report.per_seed {
        let count = |kind: &str| outcome.findings.iter().filter(|f| f.kind() == kind).count();
        let lost = count("lost_acked");
        if lost == 0 && outcome.lost_writes.is_empty() {
            continue;
        }
        let reused = count(crate::verdict::LOST_ACKED_OFFSET_REUSED);
        let skips = count(crate::verdict::LOST_ACKED_CONSUMER_SKIP);
        let mut line = format!("seed {}: {lost} acknowledged sends lost", outcome.seed);
        if reused > 0 {
            line.push_str(&format!(
                " ({reused} offset conflicts with them: their queue offsets went to later sends)"
            ));
        }
        if skips > 0 {
            line.push_str(&format!(
                " ({skips} consumer skips over their offsets: consumers had read past them \
                 before the master restarted shorter)"
            ));
        }
        if outcome.lost_writes.is_empty() {
            line.push_str("; no master lost writes: not explained by the replication mode");
        }
        for lost_writes in &outcome.lost_writes {
            line.push_str(&format!(
                "; master {} of group {} restarted at {:.1} s with {} of the {} committed entries ({} acknowledged but never flushed: ASYNC_FLUSH acks from the page cache and the power loss dropped them; its slaves then cut those entries to follow the master)",
                lost_writes.master,
                lost_writes.group,
                lost_writes.at_us as f64 / 1e6,
                lost_writes.recovered_index.0,
                lost_writes.committed_index.0,
                lost_writes.committed_index.0 - lost_writes.recovered_index.0,
            ));
        }
        lines.push(line);
    }
    (!lines.is_empty()).then(|| lines.join("\n"))
}

pub fn replay(args: ReplayArgs) -> anyhow::Result<ExitCode> {
    let base = load_scenario(&args.scenario, &args.overrides)?;
    let mut chosen = select_variants(&base, args.variant.as_deref())?;
    anyhow::ensure!(
        chosen.len() == 1,
        "{} has {} variants: replay one with --variant NAME",
        base.file_name,
        chosen.len()
    );
    let scenario = chosen.remove(0);
    WorldSpec::check_supported(&scenario)?;
    let spec = Arc::new(WorldSpec::from_scenario(&scenario));
    let (first, first_trace, history) = traced_run(spec.clone(), args.seed);
    let (second, second_trace, _) = traced_run(spec, args.seed);
    let trace_path = args.trace.unwrap_or_else(|| {
        PathBuf::from("reports")
            .join(&scenario.name)
            .join(format!("seed-{}.trace", args.seed))
    });
    if let Some(dir) = trace_path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(&trace_path, &first_trace)
        .with_context(|| format!("writing {}", trace_path.display()))?;
    if let Some(history) = &history {
        let history_path = trace_path.with_extension("history.jsonl");
        let file = std::fs::File::create(&history_path)
            .with_context(|| format!("writing {}", history_path.display()))?;
        crate::history::write_jsonl(history, std::io::BufWriter::new(file))
            .with_context(|| format!("writing {}", history_path.display()))?;
        println!(
            "history: {} ({} operations)",
            history_path.display(),
            history.len()
        );
    }
    let hash = |bytes: &[u8]| {
        let mut h = crate::world::observe::Fnv64::new();
        h.write(bytes);
        h.finish()
    };
    let (hash_a, hash_b) = (hash(&first_trace), hash(&second_trace));
    if hash_a != hash_b {
        let second_path = trace_path.with_extension("trace.second");
        std::fs::write(&second_path, &second_trace)
            .with_context(|| format!("writing {}", second_path.display()))?;
        println!("the second run's trace differs: {}", second_path.display());
    }
    let report = build_report(&scenario, &[args.seed], vec![first.clone()]);
    print_report(&scenario, &report);
    println!(
        "trace: {} ({} lines); trace hashes {hash_a:016x} / {hash_b:016x}: {}",
        trace_path.display(),
        first_trace.iter().filter(|b| **b == b'\n').count(),
        if hash_a == hash_b && first == second {
            "identical, the run is deterministic"
        } else {
            "DIFFERENT: the run is not deterministic"
        }
    );
    let deterministic = hash_a == hash_b && first == second;
    if args.plot {
        let path = crate::commands::plot::plot_seed(
            &scenario,
            args.seed,
            "replayed",
            Path::new("reports"),
        )?;
        println!("timeline: {}", path.display());
    }
    Ok(if deterministic && report.all_held() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// Runs one seed with a debug-level trace stamped with simulated time.
fn traced_run(
    spec: Arc<WorldSpec>,
    seed: u64,
) -> (SeedOutcome, Vec<u8>, Option<Vec<crate::history::Operation>>) {
    let buffer = TraceBuffer::default();
    let writer = buffer.clone();
    let subscriber = tracing_subscriber::fmt()
        // Only our own events: madsim's spans carry task ids that count across runtimes.
        .with_env_filter(tracing_subscriber::EnvFilter::new(
            std::env::var("SIM_TRACE").unwrap_or_else(|_| "sim=debug".into()),
        ))
        .with_target(false)
        .with_ansi(false)
        .with_timer(SimTime)
        .with_writer(move || writer.clone())
        .finish();
    let (outcome, history) =
        runner::run_one_keeping_history(spec, seed, Some(tracing::Dispatch::new(subscriber)));
    let bytes = buffer
        .0
        .lock()
        .expect("invariant: the traced run has finished")
        .clone();
    (outcome, bytes, history)
}

#[derive(Clone, Default)]
struct TraceBuffer(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for TraceBuffer {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .expect("invariant: writers do not panic holding the lock")
            .extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Stamps trace lines with simulated time since the start of the run.
struct SimTime;

impl tracing_subscriber::fmt::time::FormatTime for SimTime {
    fn format_time(&self, w: &mut tracing_subscriber::fmt::format::Writer<'_>) -> std::fmt::Result {
        match madsim::time::TimeHandle::try_current() {
            Some(time) => write!(w, "{:>12.6}s", time.elapsed().as_secs_f64()),
            None => write!(w, "{:>13}", "-"),
        }
    }
}
