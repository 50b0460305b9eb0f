//! `sim check-history` gives the checker's verdict as an exit code: 0 for a linearizable
//! history, 1 with an HTML timeline for one that is not, 2 for a file it cannot read.

use std::process::Command;

fn write(name: &str, lines: &[&str]) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("hasim-check-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join(name);
    std::fs::write(&path, lines.join("\n") + "\n").expect("temp file");
    path
}

fn check(path: &std::path::Path) -> (i32, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_sim"))
        .arg("check-history")
        .arg(path)
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
