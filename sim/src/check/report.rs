//! What a check found, ready to print: a verdict per part, the failing window as a table, and
//! the operations to draw on the HTML timeline. Model-independent (operations are described as
//! text), so the runner and the CLI handle one type whatever the model.

use std::fmt;
use std::time::Duration;

use comfy_table::{presets, Cell, Table};

use super::settle::SettleSummary;
use super::wgl::Verdict;

/// How an operation is drawn and listed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Mark {
    /// Near the window, for orientation (or linearized before it).
    Context,
    /// In the failing window.
    Window,
    /// Concurrent with the window, kept with its outcome made unknown.
    Relaxed,
    /// The operation the search could not linearize before it returned.
    Culprit,
}

impl Mark {
    pub fn label(self) -> &'static str {
        match self {
            Mark::Context => "context",
            Mark::Window => "window",
            Mark::Relaxed => "relaxed",
            Mark::Culprit => "CULPRIT",
        }
    }
}

/// One operation on the timeline.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TimelineOp {
    /// Position in the source history (line number − 1 in a JSON lines file).
    pub index: usize,
    pub client: u32,
    pub call_us: u64,
    /// `None`: never returned (outcome unknown).
    pub return_us: Option<u64>,
    pub description: String,
    pub mark: Mark,
}

/// The shortest failing window found in a part.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WindowReport {
    /// How many operations the search linearized before the window.
    pub prefix_ops: usize,
    /// The model state after them, from which the window fails.
    pub start_state: String,
    /// The window (and relaxed) operations in call order.
    pub ops: Vec<TimelineOp>,
    /// Source index of the culprit, when known.
    pub culprit: Option<usize>,
}

/// How a part's verdict was reached.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Method {
    /// The WGL search over every interleaving (exponential in the worst case).
    Search,
    /// The log decided from the history alone: facts pinned by unique bodies, then order
    /// constraints in one pass (`log_decide`), no search.
    Graph,
    /// The search, after the unknown sends that pulls observed were pinned at their offsets
    /// (the history left an offset unobserved, see `UnknownReason::ambiguity`).
    PinnedSearch,
    /// A register or kv part decided by the model's polynomial rules, no search: an impossible
    /// read (`Model::refute`, `read_witness`), or for unique written values the runs of each
    /// value ordered by real time (`Model::decide`, `register_unique`).
    Rules,
}

impl Method {
    pub fn label(self) -> &'static str {
        match self {
            Method::Search => "search",
            Method::Graph => "graph",
            Method::PinnedSearch => "pinned search",
            Method::Rules => "rules",
        }
    }
}

/// Why a part's verdict is unknown, and what would decide it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnknownReason {
    /// Operations of the part whose outcome is unknown (each may take effect anywhere, or not).
    pub open_ops: usize,
    /// The step budget the search hit (`steps_per_part_max`, `check-history --steps`).
    pub steps_max: u64,
    /// The optional wall-clock guard (`CheckOptions::time_limit`) ended the search before the
    /// step budget (machine-dependent; never with the default options).
    pub deadline_hit: bool,
    /// What left the part ambiguous for the polynomial decision, when it was tried.
    pub ambiguity: Option<String>,
}

impl fmt::Display for UnknownReason {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.deadline_hit {
            write!(
                formatter,
                "a wall-clock guard ended the search before its step budget (--steps {})",
                self.steps_max
            )?;
        } else {
            write!(
                formatter,
                "the search hit its step budget (--steps {})",
                self.steps_max
            )?;
        }
        write!(
            formatter,
            " with {} operations of unknown outcome left open",
            self.open_ops
        )?;
        if let Some(ambiguity) = &self.ambiguity {
            write!(
                formatter,
                "; not decidable without a search because {ambiguity}"
            )?;
        }
        write!(
            formatter,
            ". What would decide it: a larger budget (e.g. --steps {}), or for a log the final \
             logs (which unknown sends landed, and where)",
            self.steps_max.saturating_mul(10)
        )
    }
}

/// The verdict on one part (one queue, one key).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PartReport {
    pub name: String,
    pub verdict: Verdict,
    pub method: Method,
    /// For a part that is not linearizable and was decided by rule: the rule its witness
    /// breaks, in words (the window then holds the witness).
    pub rule: Option<String>,
    /// For an unknown part: why.
    pub unknown: Option<UnknownReason>,
    /// Operations in the part (after settling, without failed ones).
    pub ops: usize,
    /// Model steps the search tried.
    pub steps: u64,
    /// Wall-clock time of the search (not deterministic; never part of a trace hash).
    pub elapsed: Duration,
    pub window: Option<WindowReport>,
    /// Operations that cannot be linearized together and the rule they break, when the model
    /// found one without the search (`Model::refute` or `Model::decide`: register and kv); the
    /// window then holds them and `rule` the rule.
    pub witness: Option<crate::check::model::Witness>,
    /// Operations to draw in the HTML file: the window and what overlaps it. Empty unless the
    /// part failed.
    pub timeline: Vec<TimelineOp>,
}

/// The verdict on a whole history.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CheckReport {
    /// The combination of the parts' verdicts (any failure, else any unknown).
    pub verdict: Verdict,
    pub parts: Vec<PartReport>,
    pub elapsed: Duration,
    /// What settling did, when it ran.
    pub settle: Option<SettleSummary>,
}

impl CheckReport {
    pub fn from_parts(parts: Vec<PartReport>, elapsed: Duration) -> CheckReport {
        let verdict = parts.iter().fold(Verdict::Linearizable, |verdict, part| {
            verdict.combine(part.verdict)
        });
        CheckReport {
            verdict,
            parts,
            elapsed,
            settle: None,
        }
    }

    /// Parts that are not linearizable, in part order.
    pub fn failing_parts(&self) -> impl Iterator<Item = &PartReport> {
        self.parts
            .iter()
            .filter(|part| part.verdict == Verdict::NotLinearizable)
    }

    /// One row per part: name, verdict, operations, steps, time.
    pub fn summary_table(&self) -> Table {
        let mut table = Table::new();
        table.load_preset(presets::UTF8_FULL_CONDENSED);
        table.set_header(vec![
            "part", "verdict", "method", "ops", "steps", "time", "window",
        ]);
        for part in &self.parts {
            let window = part.window.as_ref().map_or_else(String::new, |window| {
                if part.rule.is_some() {
                    format!("witness of {} ops", window.ops.len())
                } else {
                    format!("{} ops after {}", window.ops.len(), window.prefix_ops)
                }
            });
            table.add_row(vec![
                Cell::new(&part.name),
                Cell::new(part.verdict),
                Cell::new(part.method.label()),
                Cell::new(part.ops),
                Cell::new(part.steps),
                Cell::new(format!("{:.1} ms", part.elapsed.as_secs_f64() * 1e3)),
                Cell::new(window),
            ]);
        }
        table
    }

    /// The failing window of a part, one row per operation.
    pub fn window_table(part: &PartReport) -> Option<Table> {
        let window = part.window.as_ref()?;
        let mut table = Table::new();
        table.load_preset(presets::UTF8_FULL_CONDENSED);
        table.set_header(vec![
            "#",
            "client",
            "call µs",
            "return µs",
            "operation",
            "mark",
        ]);
        for op in &window.ops {
            table.add_row(vec![
                Cell::new(op.index),
                Cell::new(op.client),
                Cell::new(op.call_us),
                Cell::new(
                    op.return_us
                        .map_or_else(|| "never".to_string(), |at| at.to_string()),
                ),
                Cell::new(&op.description),
                Cell::new(op.mark.label()),
            ]);
        }
        Some(table)
    }
}

impl fmt::Display for CheckReport {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            formatter,
            "verdict: {} ({} parts, {:.1} ms)",
            self.verdict,
            self.parts.len(),
            self.elapsed.as_secs_f64() * 1e3
        )?;
        if let Some(settle) = &self.settle {
            writeln!(
                formatter,
                "settled unknown sends: {} landed, {} never happened, {} left unknown",
                settle.landed, settle.never_happened, settle.left_unknown
            )?;
        }
        writeln!(formatter, "{}", self.summary_table())?;
        for part in &self.parts {
            if let Some(reason) = &part.unknown {
                writeln!(formatter, "part {} unknown: {reason}", part.name)?;
            }
        }
        for part in self.failing_parts() {
            if let (Some(rule), Some(table)) = (&part.rule, Self::window_table(part)) {
                writeln!(formatter, "part {}: {rule}", part.name)?;
                writeln!(
                    formatter,
                    "witness: these operations cannot be linearized together:"
                )?;
                writeln!(formatter, "{table}")?;
            } else if let (Some(window), Some(table)) = (&part.window, Self::window_table(part)) {
                writeln!(
                    formatter,
                    "part {}: shortest failing window found, from state {} after {} linearized ops:",
                    part.name, window.start_state, window.prefix_ops
                )?;
                writeln!(formatter, "{table}")?;
            }
        }
        Ok(())
    }
}
