//! History checks: linearizability of each queue's log (a Wing–Gong/Lowe search with Porcupine's
//! improvements, generic over a `Model`), settling of unknown sends against the final logs,
//! linear-time safety oracles, the shortest failing window, and its HTML timeline.
//!
//! Entry points:
//! - `check_log(history, final_logs, options)`: a run's history (after the seed finished).
//! - `oracles::check(history, finals)`: the safety oracles.
//! - `check_history_file(path, model, options)`: `sim check-history FILE [--model …]`.
//! - `html::render_html(part)` / `CheckReport`'s `Display` (comfy-table) for reports.

pub mod gen;
pub mod gen_small;
pub mod hashing;
pub mod html;
pub mod jepsen;
pub mod log_check;
pub mod log_decide;
pub mod log_gen;
pub mod log_witness;
pub mod losses;
pub mod model;
pub mod models;
pub mod oracles;
pub mod read_witness;
pub mod records;
pub mod reference;
pub mod register_unique;
pub mod report;
pub mod run;
pub mod settle;
pub mod wgl;
pub mod window;

use std::fs::File;
use std::io::{BufRead, BufReader, Read, Seek};
use std::path::Path;
use std::str::FromStr;

pub use model::{Decided, Model, Op, Part, Witness, NEVER_RETURNED_US};
pub use report::{CheckReport, Mark, Method, PartReport, TimelineOp, UnknownReason, WindowReport};
pub use run::{check_ops, check_part, check_parts, CheckOptions};
pub use settle::{settle, settlements, FinalLogs, SettleSummary, Settlement};
pub use wgl::Verdict;

use crate::history::{read_jsonl, read_jsonl_of, HistoryError, Operation};
use models::kv::{KvInput, KvModel, KvOutput};
use models::log::log_parts_settled;
use models::register::{RegisterInput, RegisterModel, RegisterOutput};
use records::{records_to_ops, Record};

/// Checks a run's log history for linearizability, per queue. With `final_logs` and
/// `options.settle`, unknown sends are settled against the final logs first (see `settle`) and
/// every queue is searched. Without final logs, each queue is decided from the history alone
/// where it pins the log, and searched only where it does not (`log_check`).
pub fn check_log(
    history: &[Operation],
    final_logs: Option<&FinalLogs>,
    options: &CheckOptions,
) -> CheckReport {
    let (settled, summary) = match final_logs {
        Some(final_logs) if options.settle => {
            let (settled, summary) = settlements(history, final_logs);
            (settled, Some(summary))
        }
        None if options.decide_logs => return log_check::check_log_alone(history, options),
        _ => (Vec::new(), None),
    };
    let (model, parts) = log_parts_settled(history, &settled);
    let mut report = check_parts(&model, &parts, options);
    report.settle = summary;
    report
}

/// The models `check-history` knows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ModelName {
    Log,
    Register,
    Kv,
}

impl FromStr for ModelName {
    type Err = CheckFileError;
    fn from_str(name: &str) -> Result<ModelName, CheckFileError> {
        match name {
            "log" => Ok(ModelName::Log),
            "register" => Ok(ModelName::Register),
            "kv" => Ok(ModelName::Kv),
            other => Err(CheckFileError::UnknownModel(other.to_string())),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum CheckFileError {
    #[error("unknown model {0:?} (expected log, register or kv)")]
    UnknownModel(String),
    #[error("a Jepsen log holds a cas-register history; it cannot be checked as {0:?}")]
    JepsenNeedsRegister(ModelName),
    #[error("{path}: {source}")]
    History {
        path: String,
        #[source]
        source: HistoryError,
    },
    #[error("{path}: {source}")]
    Jepsen {
        path: String,
        #[source]
        source: jepsen::JepsenError,
    },
    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

/// Checks a history file: JSON lines of `model_name` (None: log), or a Jepsen cas-register log
/// (detected by a `.log` extension or a `jepsen.util` line at the top; checked as a register).
/// No final logs are known, so nothing is settled.
pub fn check_history_file(
    path: &Path,
    model_name: Option<ModelName>,
    options: &CheckOptions,
) -> Result<CheckReport, CheckFileError> {
    let shown = path.display().to_string();
    let io_error = |source| CheckFileError::Io {
        path: shown.clone(),
        source,
    };
    let mut file = File::open(path).map_err(io_error)?;
    let mut head = [0u8; 512];
    let read = file.read(&mut head).map_err(io_error)?;
    file.rewind().map_err(io_error)?;
    let is_jepsen = path.extension().is_some_and(|extension| extension == "log")
        || String::from_utf8_lossy(&head[..read]).contains("jepsen.util");
    let reader = BufReader::new(file);
    let history_error = |source| CheckFileError::History {
        path: shown.clone(),
        source,
    };
    if is_jepsen {
        if let Some(name) = model_name.filter(|name| *name != ModelName::Register) {
            return Err(CheckFileError::JepsenNeedsRegister(name));
        }
        let ops = jepsen::read_jepsen_log(reader).map_err(|source| CheckFileError::Jepsen {
            path: shown.clone(),
            source,
        })?;
        return Ok(check_ops(&RegisterModel, ops, options));
    }
    match model_name.unwrap_or(ModelName::Log) {
        ModelName::Log => {
            let history = read_jsonl(reader).map_err(history_error)?;
            Ok(check_log(&history, None, options))
        }
        ModelName::Register => {
            let records: Vec<Record<RegisterInput, RegisterOutput>> =
                read_jsonl_of(reader).map_err(history_error)?;
            Ok(check_ops(&RegisterModel, records_to_ops(&records), options))
        }
        ModelName::Kv => {
            let records: Vec<Record<KvInput, KvOutput>> =
                read_jsonl_of(reader).map_err(history_error)?;
            Ok(check_ops(&KvModel, records_to_ops(&records), options))
        }
    }
}

/// Reads a Jepsen cas-register log (see `jepsen`), for callers that hold a reader.
pub fn read_jepsen<R: BufRead>(
    reader: R,
) -> Result<Vec<Op<RegisterInput, RegisterOutput>>, jepsen::JepsenError> {
    jepsen::read_jepsen_log(reader)
}
