//! A reader of the plain Jepsen log of a cas-register test, as in Porcupine's
//! `test_data/jepsen/etcd_*.log`:
//!
//! ```text
//! (fields separated by tabs)
//! INFO  jepsen.util - 2    :invoke    :write    4
//! INFO  jepsen.util - 2    :ok    :write    4
//! INFO  jepsen.util - 0    :invoke    :cas    [3 0]
//! INFO  jepsen.util - 0    :fail    :cas    [3 0]
//! INFO  jepsen.util - 3    :fail    :read    :timed-out
//! INFO  jepsen.util - 4    :info    :write    :timed-out
//! ```
//!
//! Times are event positions (the line's rank among the operation lines). `:ok` completes an
//! operation; `:fail :cas` is a completed cas that found another value; `:fail` of a read or write
//! did not happen; `:info` (timed out) leaves the operation unknown: it may take effect at any
//! time after its call, or never. Operations still open at the end are unknown too. Other lines
//! are ignored.

use std::collections::BTreeMap;
use std::io::BufRead;

use super::model::{Op, NEVER_RETURNED_US};
use super::models::register::{RegisterInput, RegisterOutput};

#[derive(Debug, thiserror::Error)]
pub enum JepsenError {
    #[error("line {line}: {message}")]
    Format { line: usize, message: String },
    #[error("jepsen log i/o: {0}")]
    Io(#[from] std::io::Error),
}

type RegisterOp = Op<RegisterInput, RegisterOutput>;

/// Reads a Jepsen cas-register log into register operations, in call order.
pub fn read_jepsen_log<R: BufRead>(reader: R) -> Result<Vec<RegisterOp>, JepsenError> {
    let mut ops: Vec<Option<RegisterOp>> = Vec::new();
    let mut open: BTreeMap<u32, usize> = BTreeMap::new();
    let mut time: u64 = 0;
    for (number, line) in reader.lines().enumerate() {
        let line = line?;
        let Some(event) = parse_line(&line).map_err(|message| JepsenError::Format {
            line: number + 1,
            message,
        })?
        else {
            continue;
        };
        time += 1;
        let format_error = |message: String| JepsenError::Format {
            line: number + 1,
            message,
        };
        match event.kind {
            Kind::Invoke => {
                let input = parse_input(event.function, event.value).map_err(format_error)?;
                open.insert(event.process, ops.len());
                ops.push(Some(Op {
                    index: ops.len(),
                    client: event.process,
                    call_us: time,
                    return_us: NEVER_RETURNED_US,
                    input,
                    output: None,
                }));
            }
            Kind::Ok | Kind::Fail => {
                let Some(position) = open.remove(&event.process) else {
                    return Err(format_error(format!(
                        "process {} completes an operation it never invoked",
                        event.process
                    )));
                };
                let slot = &mut ops[position];
                let op = slot.as_mut().expect("an open operation is still recorded");
                match complete(&op.input, event.kind, event.value).map_err(format_error)? {
                    Completion::Output(output) => {
                        op.output = Some(output);
                        op.return_us = time;
                    }
                    Completion::Unknown => {}
                    Completion::NotApplied => *slot = None,
                }
            }
            // Timed out: stays open (unknown); Jepsen gives the process a new number.
            Kind::Info => {
                open.remove(&event.process);
            }
        }
    }
    Ok(ops.into_iter().flatten().collect())
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Invoke,
    Ok,
    Fail,
    Info,
}

struct Event<'a> {
    process: u32,
    kind: Kind,
    function: &'a str,
    value: &'a str,
}

/// `None` for lines that are not operation events.
fn parse_line(line: &str) -> Result<Option<Event<'_>>, String> {
    let Some(rest) = line.split_once("jepsen.util - ").map(|(_, rest)| rest) else {
        return Ok(None);
    };
    let mut rest = rest;
    let (Some(process), Some(kind), Some(function)) = (
        next_field(&mut rest),
        next_field(&mut rest),
        next_field(&mut rest),
    ) else {
        return Ok(None);
    };
    let Ok(process) = process.parse::<u32>() else {
        return Ok(None);
    };
    let kind = match kind {
        ":invoke" => Kind::Invoke,
        ":ok" => Kind::Ok,
        ":fail" => Kind::Fail,
        ":info" => Kind::Info,
        _ => return Ok(None),
    };
    let value = rest.trim();
    Ok(Some(Event {
        process,
        kind,
        function,
        value,
    }))
}

/// The next whitespace-separated field of `rest`, advancing it.
fn next_field<'a>(rest: &mut &'a str) -> Option<&'a str> {
    let trimmed = rest.trim_start();
    if trimmed.is_empty() {
        return None;
    }
    let end = trimmed.find(char::is_whitespace).unwrap_or(trimmed.len());
    let (field, remainder) = trimmed.split_at(end);
    *rest = remainder;
    Some(field)
}

fn parse_input(function: &str, value: &str) -> Result<RegisterInput, String> {
    match function {
        ":read" => Ok(RegisterInput::Read),
        ":write" => Ok(RegisterInput::Write {
            value: parse_number(value)?,
        }),
        ":cas" => {
            let (from, to) = parse_pair(value)?;
            Ok(RegisterInput::Cas { from, to })
        }
        other => Err(format!("unknown function {other}")),
    }
}

enum Completion {
    Output(RegisterOutput),
    Unknown,
    NotApplied,
}

fn complete(input: &RegisterInput, kind: Kind, value: &str) -> Result<Completion, String> {
    Ok(match (input, kind) {
        (RegisterInput::Read, Kind::Ok) => {
            let value = if value == "nil" {
                None
            } else {
                Some(parse_number(value)?)
            };
            Completion::Output(RegisterOutput::Read { value })
        }
        // A read that failed (timed out) constrains nothing.
        (RegisterInput::Read, _) => Completion::Unknown,
        (RegisterInput::Write { .. }, Kind::Ok) => Completion::Output(RegisterOutput::Written),
        (RegisterInput::Write { .. }, _) => Completion::NotApplied,
        (RegisterInput::Cas { .. }, Kind::Ok) => {
            Completion::Output(RegisterOutput::Cas { ok: true })
        }
        (RegisterInput::Cas { .. }, _) => Completion::Output(RegisterOutput::Cas { ok: false }),
    })
}

fn parse_number(text: &str) -> Result<i64, String> {
    text.trim()
        .parse()
        .map_err(|_| format!("expected a number, found {text:?}"))
}

fn parse_pair(text: &str) -> Result<(i64, i64), String> {
    let inner = text
        .trim()
        .strip_prefix('[')
        .and_then(|rest| rest.strip_suffix(']'))
        .ok_or_else(|| format!("expected [from to], found {text:?}"))?;
    let mut numbers = inner.split_whitespace();
    let (Some(from), Some(to), None) = (numbers.next(), numbers.next(), numbers.next()) else {
        return Err(format!("expected [from to], found {text:?}"));
    };
    Ok((parse_number(from)?, parse_number(to)?))
}
