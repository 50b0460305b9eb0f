//! History files, settling and the search's limits: the plumbing a verdict depends on.

use std::collections::BTreeMap;
use std::io::BufReader;

use sim::check::gen::{log_history, register_history, GenOptions, Plant};
use sim::check::html::render_html;
use sim::check::models::register::RegisterModel;
use sim::check::records::ops_to_records;
use sim::check::{
    check_history_file, check_log, check_ops, settle, CheckOptions, ModelName, Verdict,
};
use sim::history::{read_jsonl, write_jsonl, HistoryError, OpInput, OpOutcome, Operation};

fn options() -> CheckOptions {
    CheckOptions {
        time_limit: None,
        ..CheckOptions::default()
    }
}

fn temp_path(name: &str) -> std::path::PathBuf {
    std::env::temp_dir().join(format!("hasim-check-{}-{name}", std::process::id()))
}

#[test]
fn jsonl_round_trip() {
    // Why: a history written by a run must read back identical, or a replayed check lies.
    let generated = log_history(&GenOptions {
        ops: 500,
        unknown_ppm: 50_000,
        parts: 2,
        ..GenOptions::default()
    });
    let mut bytes = Vec::new();
    write_jsonl(&generated.history, &mut bytes).expect("writing to memory works");
    assert_eq!(bytes.iter().filter(|&&byte| byte == b'\n').count(), 500);
    let read = read_jsonl(BufReader::new(bytes.as_slice())).expect("it reads back");
    assert_eq!(read, generated.history);
}

#[test]
fn jsonl_errors_name_the_line() {
    // Why: a user fixing a hand-edited history needs the line.
    let text = "{\"client\":0,\"input\":{\"send\":{\"queue\":\"q\",\"body\":\"a\"}},\"invoke_us\":1,\"complete_us\":2,\"outcome\":{\"sent\":{\"offset\":0}}}\n\n{\"client\":0}\n";
    match read_jsonl(BufReader::new(text.as_bytes())) {
        Err(HistoryError::Parse { line, .. }) => assert_eq!(line, 3),
        other => panic!("expected a parse error on line 3, got {other:?}"),
    }
}

#[test]
fn check_history_file_reads_each_format() {
    // Why: `sim check-history` is how a saved failing history is re-checked.
    let generated = log_history(&GenOptions {
        ops: 400,
        plant: Some(Plant::Ghost),
        ..GenOptions::default()
    });
    let path = temp_path("log.jsonl");
    let file = std::fs::File::create(&path).expect("temp dir is writable");
    write_jsonl(&generated.history, file).expect("write");
    let report = check_history_file(&path, None, &options()).expect("readable");
    assert_eq!(report.verdict, Verdict::NotLinearizable);

    let register = register_history(&GenOptions::default());
    let path = temp_path("register.jsonl");
    let mut text = String::new();
    for record in ops_to_records(&register.ops) {
        text.push_str(&serde_json::to_string(&record).expect("records serialise"));
        text.push('\n');
    }
    std::fs::write(&path, text).expect("write");
    let model = "register".parse::<ModelName>().expect("a known model");
    let report = check_history_file(&path, Some(model), &options()).expect("readable");
    assert_eq!(report.verdict, Verdict::Linearizable);

    let path = temp_path("etcd.log");
    std::fs::write(
        &path,
        "INFO  jepsen.util - 0\t:invoke\t:write\t1\nINFO  jepsen.util - 0\t:ok\t:write\t1\n\
         INFO  jepsen.util - 1\t:invoke\t:read\tnil\nINFO  jepsen.util - 1\t:ok\t:read\t2\n",
    )
    .expect("write");
    let report = check_history_file(&path, None, &options()).expect("readable");
    assert_eq!(report.verdict, Verdict::NotLinearizable);
    assert!("graph".parse::<ModelName>().is_err());
}

#[test]
fn settling_resolves_unknown_sends() {
    // Why: settling turns the exponential unknown-send search into a linear one; it must put a
    // landed send at its offset and drop one that never landed, keeping indices.
    let operation = |client, body: &str, outcome| Operation {
        client,
        input: OpInput::Send {
            queue: "q".to_string(),
            body: body.to_string(),
        },
        invoke_us: 0,
        complete_us: 10,
        outcome,
    };
    let history = vec![
        operation(0, "landed", OpOutcome::Unknown),
        operation(1, "lost", OpOutcome::Unknown),
        operation(2, "acked", OpOutcome::Sent { offset: 1 }),
    ];
    let final_logs = BTreeMap::from([(
        "q".to_string(),
        vec!["landed".to_string(), "acked".to_string()],
    )]);
    let (settled, summary) = settle(&history, &final_logs);
    assert_eq!(settled[0].outcome, OpOutcome::Sent { offset: 0 });
    // Bounded by the acknowledged send at offset 1, which had to come after it.
    assert_eq!(settled[0].complete_us, 10);
    assert_eq!(settled[1].outcome, OpOutcome::Fail);
    assert_eq!(
        (summary.landed, summary.never_happened, summary.left_unknown),
        (1, 1, 0)
    );
}

#[test]
fn step_budget_gives_unknown() {
    // Why: a search that cannot finish must say so instead of hanging or guessing.
    let generated = log_history(&GenOptions {
        ops: 3_000,
        clients: 8,
        ..GenOptions::default()
    });
    let tiny = CheckOptions {
        steps_per_part_max: 100,
        ..options()
    };
    let report = check_log(&generated.history, Some(&generated.final_logs), &tiny);
    assert_eq!(report.verdict, Verdict::Unknown);
    let report = check_log(&generated.history, Some(&generated.final_logs), &options());
    assert_eq!(report.verdict, Verdict::Linearizable);
}

#[test]
fn verdicts_do_not_depend_on_threads() {
    // Why: a seed must give the same verdict and window on every machine and run.
    let generated = log_history(&GenOptions {
        ops: 4_000,
        clients: 10,
        parts: 8,
        unknown_ppm: 20_000,
        plant: Some(Plant::Stale),
        seed: 11,
    });
    let run = |threads| {
        let report = check_log(
            &generated.history,
            Some(&generated.final_logs),
            &CheckOptions {
                threads,
                ..options()
            },
        );
        let parts: Vec<_> = report
            .parts
            .iter()
            .map(|part| {
                (
                    part.name.clone(),
                    part.verdict,
                    part.steps,
                    part.window.clone(),
                )
            })
            .collect();
        (report.verdict, parts)
    };
    let single = run(1);
    assert_eq!(single.0, Verdict::NotLinearizable);
    assert_eq!(run(4), single);
}

#[test]
fn html_and_table_name_the_failing_part() {
    // Why: the report is what a person reads first; it must point at the part and the culprit.
    let generated = register_history(&GenOptions {
        ops: 300,
        plant: Some(Plant::Ghost),
        ..GenOptions::default()
    });
    let culprit = generated.planted.expect("planted");
    let report = check_ops(&RegisterModel, generated.ops, &options());
    let part = report.failing_parts().next().expect("a failing part");
    let html = render_html(part);
    assert!(html.starts_with("<!DOCTYPE html>"));
    assert!(html.contains("\"mark\":\"culprit\""));
    assert!(
        !html.contains("http://") && !html.contains("https://"),
        "self-contained"
    );
    let text = report.to_string();
    assert!(text.contains("NOT linearizable"), "{text}");
    assert!(text.contains("CULPRIT"), "{text}");
    assert!(text.contains(&culprit.to_string()), "{text}");
}
