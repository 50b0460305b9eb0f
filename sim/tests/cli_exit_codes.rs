//! The `sim` binary answers bad input with exit code 2 and a message naming file, line and
//! field, never a panic; and a good scenario runs to exit code 0.

mod common;
use common::sim;

fn write_temp(name: &str, text: &str) -> String {
    let dir = std::env::temp_dir().join(format!("hasim-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join(name);
    std::fs::write(&path, text).expect("temp file");
    path.display().to_string()
}

const VALID: &str = r#"Scenario(
    name: "tiny",
    seeds: (first: 1, count: 1),
    duration: "20s",
    cluster: (replicas: 3),
    workload: (producers: 1, send_rate: 10, topics: [(name: "t", queues: 1)]),
    faults: [
        (at: "12s", fault: Crash(Leader(group: 0))),
    ],
)
"#;

#[test]
fn unknown_field_exits_2_naming_line_and_field() {
    let path = write_temp(
        "unknown.ron",
        &VALID.replace(
            "cluster: (replicas: 3),",
            "cluster: (replicas: 3, colour: 1),",
        ),
    );
    let (code, _, stderr) = sim(&[&path]);
    assert_eq!(code, 2, "stderr: {stderr}");
    assert!(stderr.contains(&format!("{path}:5:")), "stderr: {stderr}");
    assert!(stderr.contains("colour"), "stderr: {stderr}");
    assert!(!stderr.contains("panicked"), "stderr: {stderr}");
}

#[test]
fn bad_duration_exits_2_naming_line_and_field() {
    let path = write_temp("duration.ron", &VALID.replace("\"12s\"", "\"12 parsecs\""));
    let (code, _, stderr) = sim(&["run", &path]);
    assert_eq!(code, 2, "stderr: {stderr}");
    assert!(stderr.contains(&format!("{path}:8:")), "stderr: {stderr}");
    assert!(stderr.contains("faults[0].at"), "stderr: {stderr}");
}

#[test]
fn node_out_of_range_exits_2() {
    let path = write_temp(
        "range.ron",
        &VALID.replace("Crash(Leader(group: 0))", "Crash(Node(9))"),
    );
    let (code, _, stderr) = sim(&[&path]);
    assert_eq!(code, 2, "stderr: {stderr}");
    assert!(stderr.contains(&format!("{path}:8:")), "stderr: {stderr}");
    assert!(stderr.contains("faults[0]"), "stderr: {stderr}");
}

#[test]
fn ron_syntax_error_exits_2() {
    let path = write_temp(
        "syntax.ron",
        &VALID.replace(
            "seeds: (first: 1, count: 1),",
            "seeds: (first: 1 count: 1),",
        ),
    );
    let (code, _, stderr) = sim(&[&path]);
    assert_eq!(code, 2, "stderr: {stderr}");
    assert!(stderr.contains(&format!("{path}:3:")), "stderr: {stderr}");
}

#[test]
fn missing_file_exits_2() {
    let (code, _, stderr) = sim(&["run", "no/such/scenario.ron"]);
    assert_eq!(code, 2, "stderr: {stderr}");
    assert!(stderr.contains("no/such/scenario.ron"), "stderr: {stderr}");
}

#[test]
fn a_valid_scenario_runs_and_exits_0() {
    let path = write_temp("valid.ron", VALID);
    let out = std::env::temp_dir().join(format!("hasim-cli-out-{}", std::process::id()));
    let (code, stdout, stderr) = sim(&[&path, "--quiet", "--out", &out.display().to_string()]);
    assert_eq!(code, 0, "stdout: {stdout}\nstderr: {stderr}");
    assert!(stdout.contains("client"), "stdout: {stdout}");
    assert!(out.join("tiny/report.ron").exists());
}

// Master–slave modes are simulated (MasterSlaveBroker), not refused and not replaced by DLedger.
#[test]
fn a_master_slave_scenario_runs_and_exits_0() {
    let path = write_temp(
        "master_slave.ron",
        &VALID.replace(
            "cluster: (replicas: 3),",
            "cluster: (replicas: 3, replication: AsyncMasterSlave),",
        ),
    );
    let out = std::env::temp_dir().join(format!("hasim-cli-ms-{}", std::process::id()));
    let (code, stdout, stderr) = sim(&[&path, "--quiet", "--out", &out.display().to_string()]);
    assert_eq!(code, 0, "stdout: {stdout}\nstderr: {stderr}");
}

#[test]
fn more_clients_than_simulated_hosts_is_bad_input_not_a_panic() {
    let path = write_temp(
        "clients.ron",
        &VALID.replace("producers: 1,", "producers: 200, consumers: 100,"),
    );
    let (code, _, stderr) = sim(&[&path]);
    assert_eq!(code, 2, "stderr: {stderr}");
    assert!(stderr.contains("workload.consumers"), "stderr: {stderr}");
    assert!(stderr.contains("at most 254"), "stderr: {stderr}");
    assert!(!stderr.contains("panicked"), "stderr: {stderr}");
}
