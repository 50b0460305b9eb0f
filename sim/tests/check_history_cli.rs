//! `sim check-history` gives the checker's verdict as an exit code: 0 for a linearizable
//! history, 1 with an HTML timeline for one that is not, 2 for a file it cannot read.

use std::process::Command;

use sim::check::gen::{register_history_values, GenOptions};
use sim::check::records::ops_to_records;

fn write(name: &str, lines: &[&str]) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("hasim-check-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join(name);
    std::fs::write(&path, lines.join("\n") + "\n").expect("temp file");
    path
}

fn check(path: &std::path::Path) -> (i32, String) {
    check_with(path, &[])
}

fn check_with(path: &std::path::Path, extra: &[&str]) -> (i32, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_sim"))
        .arg("check-history")
        .arg(path)
        .args(extra)
        .output()
        .expect("the sim binary runs");
    let text = String::from_utf8_lossy(&output.stdout).into_owned()
        + &String::from_utf8_lossy(&output.stderr);
    (output.status.code().expect("sim exits"), text)
}

const FIRST: &str = r#"{"client":0,"input":{"send":{"queue":"q","body":"a"}},"invoke_us":0,"complete_us":10,"outcome":{"sent":{"offset":OFFSET_A}}}"#;
const SECOND: &str = r#"{"client":1,"input":{"send":{"queue":"q","body":"b"}},"invoke_us":20,"complete_us":30,"outcome":{"sent":{"offset":OFFSET_B}}}"#;

#[test]
fn sequential_sends_in_order_are_linearizable() {
    let path = write(
        "ok.jsonl",
        &[
            &FIRST.replace("OFFSET_A", "0"),
            &SECOND.replace("OFFSET_B", "1"),
        ],
    );
    let (code, text) = check(&path);
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("verdict: linearizable"), "{text}");
}

#[test]
fn a_later_send_at_an_earlier_offset_is_caught_with_a_timeline() {
    // `b` was invoked after `a` was acknowledged at offset 1, yet got offset 0.
    let path = write(
        "bad.jsonl",
        &[
            &FIRST.replace("OFFSET_A", "1"),
            &SECOND.replace("OFFSET_B", "0"),
        ],
    );
    let (code, text) = check(&path);
    assert_eq!(code, 1, "{text}");
    assert!(text.contains("NOT linearizable"), "{text}");
    let html = std::fs::read_to_string(path.with_extension("html")).expect("the HTML timeline");
    assert!(
        html.contains("<html") || html.contains("<!DOCTYPE"),
        "not HTML"
    );
}

#[test]
fn an_unreadable_history_exits_2_naming_the_line() {
    let path = write(
        "broken.jsonl",
        &[&FIRST.replace("OFFSET_A", "0"), "{not json"],
    );
    let (code, text) = check(&path);
    assert_eq!(code, 2, "{text}");
    assert!(
        text.contains("broken.jsonl: line 2:"),
        "the message names line 2: {text}"
    );
    assert_eq!(text.matches("line 2").count(), 1, "said once: {text}");
}

#[test]
fn a_step_budget_of_zero_is_refused_with_exit_2() {
    let path = write("zero.jsonl", &[&FIRST.replace("OFFSET_A", "0")]);
    let (code, text) = check_with(&path, &["--steps", "0"]);
    assert_eq!(code, 2, "{text}");
    assert!(
        text.contains("--steps 0: the step budget per part must be at least 1"),
        "{text}"
    );
    assert!(!text.contains("verdict:"), "nothing was checked: {text}");
}

#[test]
fn a_small_step_budget_gives_unknown_saying_why_and_what_would_decide_it() {
    // Why: a verdict that cannot be reached within the budget must say which part, how many
    // operations stayed open, the budget it hit, and how to decide it; never guess.
    // Repeated values: the register's rules leave a valid history to the search, which needs
    // more than one step.
    let generated = register_history_values(
        &GenOptions {
            ops: 300,
            clients: 5,
            unknown_ppm: 50_000,
            seed: 3,
            ..GenOptions::default()
        },
        5,
    );
    let lines: Vec<String> = ops_to_records(&generated.ops)
        .iter()
        .map(|record| serde_json::to_string(record).expect("a record encodes"))
        .collect();
    let lines: Vec<&str> = lines.iter().map(String::as_str).collect();
    let path = write("repeated.jsonl", &lines);
    let extra = ["--model", "register"];

    let (code, text) = check_with(&path, &extra);
    assert_eq!(code, 0, "the default budget decides it: {text}");
    assert!(text.contains("┆ search"), "it needs the search: {text}");

    let (code, text) = check_with(&path, &[extra[0], extra[1], "--steps", "1"]);
    assert_eq!(code, 1, "{text}");
    assert!(text.contains("verdict: unknown"), "{text}");
    for words in [
        "part all unknown:",
        "the search hit its step budget (--steps 1)",
        "operations of unknown outcome left open",
        "--steps 10",
    ] {
        assert!(text.contains(words), "missing {words:?}: {text}");
    }
    let open: usize = text
        .split(" operations of unknown outcome left open")
        .next()
        .and_then(|head| head.rsplit(' ').next())
        .and_then(|count| count.parse().ok())
        .expect("a count of open operations");
    assert!(open >= 1, "{text}");
}
