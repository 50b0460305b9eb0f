//! Scenario files: the RON schema of DESIGN.md, its validation, and errors that name the
//! file, line, column and field.
//!
//! ```ron
//! Scenario(
//!     name: "leader_crash",
//!     seeds: (first: 1, count: 200),
//!     duration: "60s",
//!     cluster: (groups: 1, replicas: 3, replication: DLedger,
//!               raft: (heartbeat_interval: "2s", max_heartbeat_leak: 3,
//!                      vote_interval: ("300ms", "1s"), max_wait_ack: "2500ms", pre_vote: true),
//!               network: (latency: ("1ms", "5ms"), loss_ppm: 0),
//!               disk: (fsync: "2ms")),
//!     workload: (producers: 4, send_rate: 50, topics: [(name: "orders", queues: 4)],
//!                consumers: 2, send_timeout: "3s"),
//!     faults: [
//!         (at: "10s", fault: Crash(Leader(group: 0))),
//!         (at: "20s", fault: Pause(target: Follower(group: 0), for: "5s")),
//!         (at: "40s", fault: Restart(AllCrashed)),
//!     ],
//!     expect: (linearizable: true, lost_acked: 0, failover_client_p99_max: "10s"),
//!     settle_max: "30s",
//! )
//! ```
//!
//! - Durations are strings with units (`"300ms"`, `"2.5s"`, `"1m 30s"`), whole milliseconds;
//!   clock offsets carry a sign (`"+300ms"`, `"-1s"`).
//! - Optional: every `cluster` field (1 group, 3 replicas, DLedger, DLedger's Raft timing,
//!   1–5 ms latency, no loss, 2 ms fsync, no name servers, brokers registering every 30 s and
//!   dropped after 120 s unheard), `workload.consumers` (0), `send_timeout` (3 s),
//!   `route_refresh` (30 s), `faults` (none), `expect` (linearizable, no acknowledged send
//!   lost, no latency bounds) and `settle_max` (30 s). Unknown fields are errors.
//! - Nodes are numbered across groups: replica `r` of group `g` is node `g × replicas + r`.
//! - Faults fire in time order; targets (`Leader(group: 0)`) are resolved by the runner when
//!   the fault fires.
//!
//! Every error is a [`ScenarioError`] whose message starts `file:line:column: field:`; the CLI
//! exits with [`ScenarioError::exit_code`] (2). Positions come from a small scanner over the
//! source (`source_map.rs`) that records where every field path is: ron's own error position is
//! mapped to the innermost field around it, and validation errors (which ron never sees) are
//! located by their path.

mod duration;
mod error;
mod fault;
mod overrides;
mod schema;
mod source_map;
pub mod swarm_config;
mod validate;

#[cfg(test)]
mod tests;

pub use duration::{parse_millis, parse_signed_millis, Millis, MillisRange, SignedMillis};
pub use error::{Location, ScenarioError, EXIT_CODE_BAD_INPUT};
pub use fault::{Atlas, CorruptAt, CutHeal, Fault, FaultKind, Target, TimedFault};
pub use overrides::OVERRIDE_KEYS;
pub use schema::{
    Broken, Cluster, DiskSettings, Expect, Fidelity, NetworkSettings, RaftSettings, ReadMode,
    Replication, Scenario, Seeds, SourceHash, Topic, Variant, Workload,
};
pub use validate::*;

use ron::error::{Error as RonError, SpannedError};
use source_map::{child_path, SourceMap};
use std::path::Path;

impl Scenario {
    /// Reads, parses and validates a scenario file. Errors name `path` as given.
    pub fn load(path: &Path) -> Result<Scenario, ScenarioError> {
        let file = path.display().to_string();
        let bytes = std::fs::read(path).map_err(|source| ScenarioError::Read {
            file: file.clone(),
            source,
        })?;
        match String::from_utf8(bytes) {
            Ok(source) => Scenario::parse(&source, &file),
            Err(error) => {
                let offset = error.utf8_error().valid_up_to();
                let lossy = String::from_utf8_lossy(error.as_bytes()).into_owned();
                Err(ScenarioError::Syntax {
                    location: source_map::location_in(&lossy, &file, offset),
                    field: String::new(),
                    message: "the file is not valid UTF-8".to_string(),
                })
            }
        }
    }

    /// Parses and validates scenario text; `file_name` is used in errors and reports.
    pub fn parse(source: &str, file_name: &str) -> Result<Scenario, ScenarioError> {
        // ron has a recursion limit (128) and has been fuzzed, but a scenario is untrusted
        // input at a process boundary: should it still panic, that is a bad file, not a
        // crash of the tool.
        let parsed =
            std::panic::catch_unwind(|| ron::Options::default().from_str::<Scenario>(source))
                .map_err(|_| ScenarioError::Syntax {
                    location: source_map::location_in(source, file_name, 0),
                    field: String::new(),
                    message: "the RON parser failed on this file (a ron bug: please report it)"
                        .to_string(),
                })?;
        let mut scenario = parsed.map_err(|error| from_ron_error(&error, source, file_name))?;
        scenario.file_name = file_name.to_string();
        scenario.source_hash = SourceHash::of(source.as_bytes());
        validate::validate(&scenario).map_err(|violation| {
            let map = SourceMap::scan(source);
            let offset = map.find_or_ancestor(&violation.path).map_or(0, |entry| {
                // Point at the value; for a field left to its default, at its parent.
                entry.value.start
            });
            ScenarioError::Invalid {
                location: map.location(file_name, offset),
                field: violation.path,
                message: violation.message,
            }
        })?;
        Ok(scenario)
    }

    /// Broker nodes in the cluster (`groups × replicas`).
    pub fn node_count(&self) -> u32 {
        self.cluster.node_count()
    }
}

/// Turns ron's error into ours: the field comes from the source map entry around ron's
/// position; data errors point at the start of that field, syntax errors where ron stopped.
fn from_ron_error(error: &SpannedError, source: &str, file: &str) -> ScenarioError {
    let map = SourceMap::scan(source);
    let ron_offset = match error.code {
        // Point after the last token, not at the blank line past it.
        RonError::Eof => source.trim_end().len(),
        // ron stops at the next token; the separator belongs right after the previous one.
        RonError::ExpectedComma
        | RonError::ExpectedStructLikeEnd
        | RonError::ExpectedArrayEnd
        | RonError::ExpectedMapEnd => {
            let stopped = map.offset_of_ron_position(error.position.line, error.position.col);
            source
                .get(..stopped)
                .map_or(stopped, |before| before.trim_end().len())
        }
        _ => map.offset_of_ron_position(error.position.line, error.position.col),
    };
    // A missing field is reported at the struct's closing `)`: look just past it, so the
    // struct, not its last value, is the innermost entry.
    let lookup_offset = match error.code {
        RonError::MissingStructField { .. } => ron_offset + 1,
        _ => ron_offset,
    };
    let entry = map.innermost_at(lookup_offset);
    let entry_path = entry.map_or(String::new(), |entry| entry.path.clone());
    if is_syntax_error(&error.code) {
        return ScenarioError::Syntax {
            location: map.location(file, ron_offset),
            field: entry_path,
            message: syntax_message(&error.code),
        };
    }
    let offset = entry.map_or(ron_offset, |entry| match entry.key {
        Some(key) if key.start <= ron_offset && ron_offset <= key.end => key.start,
        _ => entry.value.start,
    });
    let field = match &error.code {
        RonError::MissingStructField { field, .. } => child_path(&entry_path, field),
        _ => entry_path,
    };
    ScenarioError::Schema {
        location: map.location(file, offset),
        field,
        message: schema_message(&error.code),
    }
}

fn is_syntax_error(code: &RonError) -> bool {
    matches!(
        code,
        RonError::Io(_)
            | RonError::Eof
            | RonError::ExpectedArrayEnd
            | RonError::ExpectedAttribute
            | RonError::ExpectedAttributeEnd
            | RonError::ExpectedComma
            | RonError::ExpectedMapColon
            | RonError::ExpectedMapEnd
            | RonError::ExpectedOptionEnd
            | RonError::ExpectedStructLikeEnd
            | RonError::ExpectedStringEnd
            | RonError::InvalidEscape(_)
            | RonError::NoSuchExtension(_)
            | RonError::UnclosedBlockComment
            | RonError::UnderscoreAtBeginning
            | RonError::FloatUnderscore
            | RonError::UnexpectedByte(_)
            | RonError::Utf8Error(_)
            | RonError::TrailingCharacters
            | RonError::InvalidIdentifier(_)
            | RonError::SuggestRawIdentifier(_)
            | RonError::ExceededRecursionLimit
            | RonError::Base64Error(_)
    )
}

fn syntax_message(code: &RonError) -> String {
    match code {
        RonError::Eof => "unexpected end of file (an unclosed bracket?)".to_string(),
        RonError::ExpectedComma => "expected a comma here".to_string(),
        RonError::ExpectedStructLikeEnd => "expected `)` or a comma here".to_string(),
        RonError::ExpectedArrayEnd => "expected `]` or a comma here".to_string(),
        RonError::ExpectedMapEnd => "expected `}` or a comma here".to_string(),
        RonError::TrailingCharacters => "unexpected text after the scenario".to_string(),
        other => format!("RON syntax: {other}"),
    }
}

fn one_of(expected: &[&str]) -> String {
    expected.join(", ")
}

fn schema_message(code: &RonError) -> String {
    match code {
        RonError::Message(message) => message.clone(),
        RonError::NoSuchStructField {
            expected, found, ..
        } => format!(
            "unknown field {found:?} (expected one of: {})",
            one_of(expected)
        ),
        RonError::NoSuchEnumVariant {
            expected, found, ..
        } => format!(
            "unknown variant {found:?} (expected one of: {})",
            one_of(expected)
        ),
        RonError::MissingStructField { .. } => "missing (this field has no default)".to_string(),
        RonError::DuplicateStructField { .. } => "given more than once".to_string(),
        RonError::InvalidValueForType { expected, found } => {
            format!("expected {expected}, found {found}")
        }
        RonError::ExpectedDifferentLength { expected, found } => {
            format!("expected {expected}, found {found} element(s)")
        }
        RonError::ExpectedDifferentStructName { expected, found } => {
            format!("expected {expected}(...), found {found}(...)")
        }
        RonError::IntegerOutOfBounds => "integer out of range for this field".to_string(),
        RonError::ExpectedInteger => "expected an integer".to_string(),
        RonError::ExpectedString => "expected a string".to_string(),
        RonError::ExpectedBoolean => "expected true or false".to_string(),
        RonError::ExpectedArray => "expected a list [...]".to_string(),
        RonError::ExpectedStructLike => "expected (...)".to_string(),
        RonError::ExpectedNamedStructLike(name) => format!("expected {name}(...)"),
        RonError::ExpectedUnit => "expected ()".to_string(),
        other => other.to_string(),
    }
}
