//! Broken scenario files must fail with a message that names the file, the line and column,
//! and the field, and exit code 2; the stock scenarios must all load; and no input, however
//! mangled, may panic the parser.
//!
//! Each file in `tests/data/bad_scenarios/` opens with its expectation:
//! `// expect: LINE:COLUMN FIELD | KIND | TEXT` (KIND is Syntax, Schema or Invalid).

use proptest::prelude::*;
use sim::scenario::{Fault, Millis, Scenario, ScenarioError, Target, EXIT_CODE_BAD_INPUT};
use std::path::{Path, PathBuf};

fn bad_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/bad_scenarios")
}

fn stock_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios")
}

struct Expectation {
    line: u32,
    column: u32,
    field: String,
    kind: String,
    text: String,
}

fn expectation(source: &str, file: &str) -> Expectation {
    let header = source
        .lines()
        .next()
        .and_then(|line| line.strip_prefix("// expect: "))
        .unwrap_or_else(|| panic!("{file}: first line must be `// expect: ...`"));
    let mut parts = header.splitn(3, " | ");
    let (position, field) = parts
        .next()
        .and_then(|place| place.split_once(' '))
        .unwrap_or_else(|| panic!("{file}: expected `LINE:COLUMN FIELD`"));
    let (line, column) = position
        .split_once(':')
        .and_then(|(line, column)| Some((line.parse().ok()?, column.parse().ok()?)))
        .unwrap_or_else(|| panic!("{file}: bad LINE:COLUMN {position:?}"));
    Expectation {
        line,
        column,
        field: field.to_string(),
        kind: parts.next().expect("KIND").to_string(),
        text: parts.next().expect("TEXT").to_string(),
    }
}

fn kind(error: &ScenarioError) -> &'static str {
    match error {
        ScenarioError::Read { .. } => "Read",
        ScenarioError::Syntax { .. } => "Syntax",
        ScenarioError::Schema { .. } => "Schema",
        ScenarioError::Invalid { .. } => "Invalid",
        ScenarioError::Override { .. } => "Override",
    }
}

/// Loads `name` from the bad scenarios and checks the error against the file's header.
fn check_bad(name: &str) {
    let path = bad_dir().join(name);
    let source = std::fs::read_to_string(&path).expect("test input exists");
    let expected = expectation(&source, name);
    let error = Scenario::load(&path).expect_err("a bad scenario must not load");
    let message = error.to_string();
    let file = path.display().to_string();
    let prefix = format!(
        "{file}:{}:{}: {}: ",
        expected.line, expected.column, expected.field
    );
    assert!(
        message.starts_with(&prefix),
        "{name}:\n  got      {message}\n  expected {prefix}..."
    );
    assert!(message.contains(&expected.text), "{name}: {message}");
    assert_eq!(kind(&error), expected.kind, "{name}: {message}");
    assert_eq!(error.field(), Some(expected.field.as_str()));
    assert_eq!(error.exit_code(), EXIT_CODE_BAD_INPUT);
    assert_eq!(error.exit_code(), 2);
}

const BAD_FILES: &[&str] = &[
    "bad_clock_offset.ron",
    "bad_duration.ron",
    "corrupt_zero_bits.ron",
    "fault_after_duration.ron",
    "missing_workload.ron",
    "node_out_of_range.ron",
    "partition_overlap.ron",
    "syntax_error.ron",
    "truncate_zero_entries.ron",
    "unclosed.ron",
    "unknown_fault.ron",
    "unknown_field.ron",
    "unsorted_faults.ron",
    "vote_interval_inverted.ron",
    "wrong_replicas.ron",
    "wrong_type.ron",
];

#[test]
fn unknown_field() {
    check_bad("unknown_field.ron");
}

#[test]
fn bad_duration() {
    check_bad("bad_duration.ron");
}

#[test]
fn node_out_of_range() {
    check_bad("node_out_of_range.ron");
}

#[test]
fn unsorted_fault_times() {
    check_bad("unsorted_faults.ron");
}

#[test]
fn ron_syntax_error() {
    check_bad("syntax_error.ron");
}

#[test]
fn wrong_replicas_count() {
    check_bad("wrong_replicas.ron");
}

// The rest of the directory, and a guard that no file in it is left unchecked.
#[test]
fn every_bad_file() {
    let mut on_disk: Vec<String> = std::fs::read_dir(bad_dir())
        .expect("bad_scenarios exists")
        .map(|entry| {
            entry
                .expect("readable")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .filter(|name| name.ends_with(".ron"))
        .collect();
    on_disk.sort();
    assert_eq!(on_disk, BAD_FILES, "update BAD_FILES");
    for name in BAD_FILES {
        check_bad(name);
    }
}

#[test]
fn missing_file_is_a_read_error() {
    let path = bad_dir().join("does_not_exist.ron");
    let error = Scenario::load(&path).expect_err("no such file");
    assert!(matches!(error, ScenarioError::Read { .. }), "{error:?}");
    assert!(error.to_string().starts_with(&path.display().to_string()));
    assert_eq!(error.exit_code(), 2);
}

// Every stock scenario loads, is named after its file, and opens with a header comment that
// says what it traps.
#[test]
fn stock_scenarios_load() {
    let mut count = 0;
    for entry in std::fs::read_dir(stock_dir()).expect("scenarios/ exists") {
        let path = entry.expect("readable").path();
        if path.extension().and_then(|ext| ext.to_str()) != Some("ron") {
            continue;
        }
        let scenario = Scenario::load(&path).unwrap_or_else(|error| panic!("{error}"));
        let stem = path
            .file_stem()
            .and_then(|stem| stem.to_str())
            .expect("a name");
        assert_eq!(scenario.name, stem, "{}", path.display());
        let source = std::fs::read_to_string(&path).expect("readable");
        assert!(
            source.starts_with("// "),
            "{}: no header comment",
            path.display()
        );
        assert!(
            source.contains("Traps:"),
            "{}: header must say what it traps",
            path.display()
        );
        count += 1;
    }
    assert!(
        count >= 5,
        "expected the five stock scenarios, found {count}"
    );
}

// leader_crash is the front door (issue 4): pin exactly what it asks for.
#[test]
fn leader_crash_is_as_specified() {
    let scenario = Scenario::load(&stock_dir().join("leader_crash.ron")).expect("loads");
    assert_eq!((scenario.seeds.first, scenario.seeds.count), (1, 200));
    assert_eq!(scenario.duration, Millis(60_000));
    assert_eq!(scenario.cluster.replicas, 3);
    assert_eq!(scenario.cluster.raft, Default::default());
    assert_eq!(
        (scenario.workload.producers, scenario.workload.send_rate),
        (4, 50)
    );
    assert_eq!(scenario.faults.len(), 2);
    assert_eq!(scenario.faults[0].at, Millis(10_000));
    assert_eq!(
        scenario.faults[0].fault,
        Fault::Crash(Target::Leader { group: 0 })
    );
    assert_eq!(scenario.faults[1].at, Millis(40_000));
    assert_eq!(scenario.faults[1].fault, Fault::Restart(Target::AllCrashed));
    assert_eq!(scenario.expect.failover_client_p99_max, Some(Millis(7500)));
    assert_eq!(scenario.expect.lost_acked, 0);
    assert_eq!(scenario.source_hash.to_string().len(), 16);
}

/// Mangles `source`: each edit deletes, inserts or replaces at a byte offset.
fn mangle(source: &[u8], edits: &[(u8, usize, usize, &str)]) -> String {
    let mut bytes = source.to_vec();
    for &(operation, at, length, token) in edits {
        let at = at % (bytes.len() + 1);
        let end = (at + length).min(bytes.len());
        match operation % 3 {
            0 => {
                bytes.drain(at..end);
            }
            1 => {
                bytes.splice(at..at, token.bytes());
            }
            _ => {
                bytes.splice(at..end, token.bytes());
            }
        }
    }
    String::from_utf8_lossy(&bytes).into_owned()
}

const TOKENS: &[&str] = &[
    "",
    "(",
    ")",
    "[",
    "]",
    "{",
    "}",
    ",",
    ":",
    "\"",
    "'",
    "//",
    "/*",
    "*/",
    "\n",
    "\\",
    "r#",
    "r#\"",
    "#![enable(implicit_some)]",
    "-",
    "+",
    "0",
    "99999999999999999999999",
    "1.5e3",
    "é",
    "\u{0}",
    "Node(",
    "Leader(group: 9)",
    "\"10x\"",
    "\"1s\"",
    "Some(",
    "None",
    "faults",
    "at",
    "x",
    "Heal",
    "Partition([[0],[0]])",
    "((((((((((",
    "]]]]]",
];

fn assert_well_formed(source: &str, result: Result<Scenario, ScenarioError>) {
    let Err(error) = result else { return };
    let message = error.to_string();
    assert!(message.starts_with("fuzz.ron:"), "{message}");
    let location = error
        .location()
        .expect("parse errors are located in the file");
    let lines = u32::try_from(source.lines().count()).expect("small") + 1;
    assert!(location.line >= 1 && location.line <= lines, "{message}");
    assert!(location.column >= 1, "{message}");
    assert_eq!(error.exit_code(), 2);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    // Random edits of a valid file: any result but a panic, and errors stay inside the file.
    #[test]
    fn mangled_scenarios_never_panic(
        edits in prop::collection::vec(
            (any::<u8>(), any::<usize>(), 0usize..40, prop::sample::select(TOKENS)),
            1..6,
        )
    ) {
        let source = std::fs::read(stock_dir().join("leader_crash.ron")).expect("readable");
        let mangled = mangle(&source, &edits);
        let result = Scenario::parse(&mangled, "fuzz.ron");
        assert_well_formed(&mangled, result);
    }

    #[test]
    fn arbitrary_text_never_panics(text in "\\PC{0,200}") {
        assert_well_formed(&text, Scenario::parse(&text, "fuzz.ron"));
    }
}

#[test]
#[ignore = "prints every bad file's message, for reading"]
fn show_messages() {
    for name in BAD_FILES {
        let error =
            Scenario::load(&Path::new("tests/data/bad_scenarios").join(name)).expect_err("bad");
        println!("{error}");
    }
}
