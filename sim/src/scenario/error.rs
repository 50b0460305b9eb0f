//! `ScenarioError`: everything that can be wrong with a scenario file, each naming the file,
//! line and column, and the field (`faults[2].at`). All of them are bad input: exit code 2.

use std::fmt;
use thiserror::Error;

/// The CLI's exit code for a scenario that cannot be used (DESIGN.md "CLI").
pub const EXIT_CODE_BAD_INPUT: i32 = 2;

/// Where in a file: line and column are 1-based; the column counts characters, not bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Location {
    pub file: String,
    pub line: u32,
    pub column: u32,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.file, self.line, self.column)
    }
}

#[derive(Debug, Error)]
pub enum ScenarioError {
    /// The file could not be read at all.
    #[error("{file}: cannot read the scenario file: {source}")]
    Read {
        file: String,
        #[source]
        source: std::io::Error,
    },
    /// Not well-formed RON: a missing comma, an unclosed bracket, a stray character.
    /// `field` is the innermost field the parser was inside, when known.
    #[error("{location}: {}{message}", field_prefix(field))]
    Syntax {
        location: Location,
        field: String,
        message: String,
    },
    /// Well-formed RON that does not fit the schema: an unknown field or variant, a missing
    /// field, a value of the wrong type, a duration without a unit.
    #[error("{location}: {}{message}", field_prefix(field))]
    Schema {
        location: Location,
        field: String,
        message: String,
    },
    /// Fits the schema but breaks a limit or a relation: 4 replicas, a node out of range,
    /// fault times out of order, vote interval min above max.
    #[error("{location}: {}{message}", field_prefix(field))]
    Invalid {
        location: Location,
        field: String,
        message: String,
    },
    /// A `--set key=value` override that names no known setting, has a bad value, or leaves
    /// the scenario invalid.
    #[error("--set {key}={value}: {message}")]
    Override {
        key: String,
        value: String,
        message: String,
    },
}

fn field_prefix(field: &str) -> String {
    if field.is_empty() {
        String::new()
    } else {
        format!("{field}: ")
    }
}

impl ScenarioError {
    /// Every scenario error is bad input.
    pub fn exit_code(&self) -> i32 {
        EXIT_CODE_BAD_INPUT
    }

    /// Where the error is, when it is in the file.
    pub fn location(&self) -> Option<&Location> {
        match self {
            ScenarioError::Syntax { location, .. }
            | ScenarioError::Schema { location, .. }
            | ScenarioError::Invalid { location, .. } => Some(location),
            ScenarioError::Read { .. } | ScenarioError::Override { .. } => None,
        }
    }

    /// The dotted path of the offending field (`cluster.raft.vote_interval`, `faults[2].at`);
    /// empty for the scenario as a whole. For an override, the key.
    pub fn field(&self) -> Option<&str> {
        match self {
            ScenarioError::Syntax { field, .. }
            | ScenarioError::Schema { field, .. }
            | ScenarioError::Invalid { field, .. } => Some(field),
            ScenarioError::Override { key, .. } => Some(key),
            ScenarioError::Read { .. } => None,
        }
    }
}
