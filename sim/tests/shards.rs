//! Sharded runs through the `sim` binary: the shards' partial reports merged are the report of
//! one unsharded run, byte for byte (report.ron, report.json and the checker pages), and a
//! merge of shards that do not make one run is refused with the reason and exit 2.

mod common;
use common::sim;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

fn temp_dir(name: &str) -> PathBuf {
    common::temp_dir("shards", name)
}

/// Every file under `dir`, by its path relative to `dir`, with its bytes.
fn files(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut found = BTreeMap::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(folder) = pending.pop() {
        for entry in std::fs::read_dir(&folder).expect("a readable folder") {
            let path = entry.expect("a directory entry").path();
            if path.is_dir() {
                pending.push(path);
            } else {
                let bytes = std::fs::read(&path).expect("a readable file");
                let relative = path.strip_prefix(dir).expect("under dir").to_path_buf();
                found.insert(relative, bytes);
            }
        }
    }
    found
}

fn run_shards(scenario: &str, seeds: &str, shards: u32, out: &Path) -> Vec<String> {
    (0..shards)
        .map(|index| {
            let shard = format!("{index}/{shards}");
            let (code, stdout, stderr) = sim(&[
                "run",
                scenario,
                "--seeds",
                seeds,
                "--shard",
                &shard,
                "--jobs",
                "2",
                "--quiet",
                "--out",
                out.to_str().expect("a UTF-8 temp path"),
            ]);
            assert_eq!(code, 0, "shard {shard}: {stdout}\n{stderr}");
            assert!(stdout.contains("Partial report:"), "{stdout}");
            let name = Path::new(scenario)
                .file_stem()
                .expect("a file name")
                .to_string_lossy()
                .into_owned();
            out.join(name)
                .join(format!("partial-{index}-of-{shards}.ron"))
                .display()
                .to_string()
        })
        .collect()
}

/// 2 shards of 3 seeds (2 and 1 seeds) merged = one run of the 3 seeds, for a clean scenario
/// and for one with findings and checker pages; the exit codes agree too.
#[test]
fn merged_shards_are_the_single_run_byte_for_byte() {
    for (scenario, name) in [
        ("scenarios/leader_crash.ron", "leader_crash"),
        (
            "sim/tests/data/faults/broken_ack_before_commit.ron",
            "broken_ack_before_commit",
        ),
    ] {
        let single = temp_dir(&format!("{name}-single"));
        let (single_code, stdout, stderr) = sim(&[
            "run",
            scenario,
            "--seeds",
            "3",
            "--jobs",
            "2",
            "--quiet",
            "--out",
            single.to_str().expect("a UTF-8 temp path"),
        ]);
        assert!(single_code <= 1, "{stdout}\n{stderr}");

        let parts = temp_dir(&format!("{name}-parts"));
        let partials = run_shards(scenario, "3", 2, &parts);
        let merged = temp_dir(&format!("{name}-merged"));
        let mut args = vec!["merge"];
        args.extend(partials.iter().map(String::as_str));
        args.extend(["--out", merged.to_str().expect("a UTF-8 temp path")]);
        let (merge_code, stdout, stderr) = sim(&args);
        assert_eq!(merge_code, single_code, "{stdout}\n{stderr}");
        assert!(stdout.contains("merged 2 shards"), "{stdout}");

        let (expected, got) = (files(&single), files(&merged));
        assert!(
            expected.keys().any(|path| path.ends_with("report.ron")),
            "{expected:?}"
        );
        if name == "broken_ack_before_commit" {
            assert!(
                expected.keys().any(|path| path.ends_with("seed-3.html")),
                "the broken broker's seeds have checker pages: {:?}",
                expected.keys().collect::<Vec<_>>()
            );
        }
        assert_eq!(
            expected.keys().collect::<Vec<_>>(),
            got.keys().collect::<Vec<_>>()
        );
        for (path, bytes) in &expected {
            assert!(got[path] == *bytes, "{name}: {} differs", path.display());
        }
        if name == "leader_crash" {
            // The regression gate compares the merged report with a baseline of these seeds.
            let report = merged.join(name).join("report.ron");
            let (code, stdout, stderr) = sim(&[
                "regress",
                scenario,
                "--baseline",
                "sim/tests/data/baselines/leader_crash_3_seeds.ron",
                "--report",
                report.to_str().expect("a UTF-8 temp path"),
            ]);
            assert_eq!(code, 0, "{stdout}\n{stderr}");
            assert!(stdout.contains("no regression"), "{stdout}");
        }
    }
}

/// A missing shard, a shard given twice, and shards of different seed lists are refused with
/// exit 2 and a message that says which.
#[test]
fn incomplete_or_mixed_shards_are_refused() {
    let scenario = "scenarios/leader_crash.ron";
    let parts = temp_dir("mixed");
    let partials = run_shards(scenario, "2", 2, &parts);
    let other = temp_dir("other");
    let other_partials = run_shards(scenario, "3", 2, &other);
    for (args, expected) in [
        (vec![partials[0].clone()], "shards 1 of 2 are missing"),
        (
            vec![partials[0].clone(), partials[0].clone()],
            "shard 0/2 is given twice",
        ),
        (
            vec![partials[0].clone(), other_partials[1].clone()],
            "seeds is",
        ),
    ] {
        let mut command = vec!["merge".to_string()];
        command.extend(args);
        let command: Vec<&str> = command.iter().map(String::as_str).collect();
        let (code, stdout, stderr) = sim(&command);
        assert_eq!(code, 2, "{stdout}\n{stderr}");
        assert!(stderr.contains(expected), "{expected:?} in:\n{stderr}");
    }
    let (code, _, stderr) = sim(&["run", scenario, "--shard", "2/2"]);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("K must be below N"), "{stderr}");
}

/// `sweep --shard K/N` on each of 2 shards, then `sweep --from`: the same sweep.ron and
/// sweep.svg as one unsharded sweep; `--from` a folder missing a shard is refused, exit 2.
#[test]
fn sharded_sweep_is_the_single_sweep_byte_for_byte() {
    let sweep = |extra: &[&str], out: &Path| {
        let out = out.to_str().expect("a UTF-8 temp path").to_string();
        let mut args = vec![
            "sweep",
            "scenarios/leader_crash.ron",
            "--set",
            "raft.heartbeat_interval=1s,2s",
            "--seeds",
            "2",
            "--jobs",
            "2",
            "--quiet",
            "--out",
        ];
        args.push(&out);
        args.extend_from_slice(extra);
        sim(&args)
    };
    let single = temp_dir("sweep-single");
    let (code, stdout, stderr) = sweep(&[], &single);
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    let sharded = temp_dir("sweep-sharded");
    for shard in ["0/2", "1/2"] {
        let (code, stdout, stderr) = sweep(&["--shard", shard], &sharded);
        assert_eq!(code, 0, "shard {shard}: {stdout}\n{stderr}");
        assert!(stdout.contains("Partial report:"), "{stdout}");
    }
    let merged = temp_dir("sweep-merged");
    let from = sharded.to_str().expect("a UTF-8 temp path").to_string();
    let (code, stdout, stderr) = sweep(&["--from", &from], &merged);
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    for file in ["sweep.ron", "sweep.svg"] {
        let one = std::fs::read(single.join("leader_crash").join(file)).expect("single sweep file");
        let two = std::fs::read(merged.join("leader_crash").join(file)).expect("merged sweep file");
        assert!(
            one == two,
            "{file} differs between the single and the sharded sweep"
        );
    }
    // A shard missing: refused with the reason.
    let partial = sharded.join("leader_crash/sweep/1/leader_crash/partial-1-of-2.ron");
    std::fs::remove_file(&partial).expect("remove one shard's partial");
    let (code, stdout, stderr) = sweep(&["--from", &from], &temp_dir("sweep-refused"));
    assert_eq!(code, 2, "{stdout}\n{stderr}");
    assert!(stderr.contains("shard"), "names what is missing: {stderr}");
}
