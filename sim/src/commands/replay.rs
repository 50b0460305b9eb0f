//! `sim replay SCENARIO --seed S [--variant V] [--plot]`: runs one seed twice with a full
//! trace stamped with simulated time, writes the trace and the seed's history, and checks that
//! both runs are identical. Exit 0: deterministic and every expectation held; 1: not; 2: bad
//! input.

use crate::commands::common::{load_scenario, plot_seed, replay_command, select_variants};
use crate::history::{self, Operation};
use crate::report::print::print_report;
use crate::report::RunReport;
use crate::run::outcome::SeedOutcome;
use crate::run::seeds as runner;
use crate::run::RunSpec;
use anyhow::Context;
use clap::Args;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::{Arc, Mutex};

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
    RunSpec::check_supported(&scenario)?;
    let spec = Arc::new(RunSpec::from_scenario(&scenario));
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
        history::write_jsonl(history, std::io::BufWriter::new(file))
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
    if let Some(config) = &first.config {
        println!(
            "swarm configuration of seed {}:\n{}",
            args.seed,
            config.describe()
        );
    }
    let report = RunReport::new(&scenario, &[args.seed], vec![first.clone()]);
    print_report(&scenario, &report, |seed| replay_command(&scenario, seed));
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
        let path = plot_seed(&scenario, args.seed, "replayed", Path::new("reports"))?;
        println!("timeline: {}", path.display());
    }
    Ok(if deterministic && report.all_held() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// Runs one seed with a debug-level trace stamped with simulated time.
fn traced_run(spec: Arc<RunSpec>, seed: u64) -> (SeedOutcome, Vec<u8>, Option<Vec<Operation>>) {
    let buffer = TraceBuffer::default();
    let writer = buffer.clone();
    let subscriber = tracing_subscriber::fmt()
        // Only our own events: madsim's spans carry task ids that count across runtimes.
        .with_env_filter(tracing_subscriber::EnvFilter::new(
            std::env::var("SIM_TRACE").unwrap_or_else(|_| "sim=debug".into()),
        ))
        .with_target(false)
        .with_ansi(false)
        .with_timer(TraceTimer)
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
struct TraceTimer;

impl tracing_subscriber::fmt::time::FormatTime for TraceTimer {
    fn format_time(&self, w: &mut tracing_subscriber::fmt::format::Writer<'_>) -> std::fmt::Result {
        match madsim::time::TimeHandle::try_current() {
            Some(time) => write!(w, "{:>12.6}s", time.elapsed().as_secs_f64()),
            None => write!(w, "{:>13}", "-"),
        }
    }
}
