//! `sim check-history FILE [--model log|register|kv]`: the linearizability checker on its own,
//! for histories written by runs (JSON lines) or by a real cluster (Jepsen's etcd log format).

use crate::check::{self, CheckOptions, ModelName, Verdict};
use anyhow::Context;
use clap::Args;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Args, Debug)]
pub struct CheckHistoryArgs {
    /// A history: JSON lines (see README) or a Jepsen `.log`.
    pub file: PathBuf,
    /// The model to check against (default: log for JSON lines, register for Jepsen logs).
    #[arg(long)]
    pub model: Option<String>,
    /// Check unknown sends as they are, without settling them against the final logs.
    #[arg(long)]
    pub no_settle: bool,
    /// Model steps the search may try per part (queue, key) before that part's verdict is
    /// unknown. A budget in steps, not seconds: the verdict never depends on the machine.
    #[arg(long, default_value_t = CheckOptions::default().steps_per_part_max)]
    pub steps: u64,
    /// Where to write the HTML timeline of a failing part (default: next to FILE).
    #[arg(long)]
    pub html: Option<PathBuf>,
}

/// Exit 0: linearizable; 1: not linearizable, or unknown within the step budget; 2: bad input.
pub fn check_history(args: CheckHistoryArgs) -> anyhow::Result<ExitCode> {
    anyhow::ensure!(
        args.steps >= 1,
        "--steps {}: the step budget per part must be at least 1",
        args.steps
    );
    let model = args
        .model
        .as_deref()
        .map(str::parse::<ModelName>)
        .transpose()
        .context("--model")?;
    let options = CheckOptions {
        settle: !args.no_settle,
        steps_per_part_max: args.steps,
        ..CheckOptions::default()
    };
    let report = check::check_history_file(&args.file, model, &options)?;
    println!("{report}");
    if let Some(html) = check::html::render_report_html(&report) {
        let path = args
            .html
            .unwrap_or_else(|| args.file.with_extension("html"));
        std::fs::write(&path, html).with_context(|| format!("writing {}", path.display()))?;
        println!("timeline of the failing part: {}", path.display());
    }
    println!(
        "verdict: {}",
        match report.verdict {
            Verdict::Linearizable => "linearizable",
            Verdict::NotLinearizable => "NOT linearizable",
            Verdict::Unknown => "unknown (a part's search hit its step budget; see above)",
        }
    );
    Ok(if report.verdict == Verdict::Linearizable {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
