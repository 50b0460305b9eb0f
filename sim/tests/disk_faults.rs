//! issue 15: the unsafe switch (`cluster.broken: VoteAfterDiskLoss`) must be caught by
//! lost_vote_double_leader, and the same schedule with the switch off must be clean: the wiped
//! replica votes for nobody until it has caught up from a leader.

use sim::commands::common::run_report;
use sim::report::judge::judge;
use sim::report::print::lost_acks_explained;
use sim::run::outcome::Finding;
use sim::scenario::{Broken, Scenario};
use std::path::Path;

const SEEDS: [u64; 2] = [1, 2];

fn scenario() -> Scenario {
    let path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios/lost_vote_double_leader.ron");
    Scenario::load(&path).expect("lost_vote_double_leader is valid")
}

#[test]
fn the_unsafe_switch_is_caught() {
    let scenario = scenario();
    assert_eq!(Broken::VoteAfterDiskLoss, scenario.cluster.broken);
    let report = run_report(&scenario, &SEEDS, 2, false);
    for outcome in &report.per_seed {
        assert!(
            !outcome.findings.is_empty(),
            "seed {}: the wiped replica voted at once and nothing was found",
            outcome.seed
        );
    }
    // The scenario says the bug is its story (`expect.must_find`): the table holds.
    let checks = judge(&scenario, &report);
    let failed: Vec<_> = checks.iter().filter(|check| !check.held).collect();
    assert!(failed.is_empty(), "{failed:?}");
    assert!(checks
        .iter()
        .any(|check| check.name.starts_with("seeds that catch") && check.actual == "2 of 2"));
}

#[test]
fn the_same_schedule_without_the_switch_is_clean() {
    let mut scenario = scenario();
    scenario.cluster.broken = Broken::Off;
    let report = run_report(&scenario, &SEEDS, 2, false);
    for outcome in &report.per_seed {
        assert!(
            outcome.findings.is_empty(),
            "seed {}: {:?}",
            outcome.seed,
            outcome.findings
        );
    }
}

fn load(name: &str) -> Scenario {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("../scenarios/{name}.ron"));
    Scenario::load(&path).expect("a stock scenario is valid")
}

/// The number after "entry i" in a recovery error or a fault's description.
fn entry_after(text: &str, marker: &str) -> u64 {
    let start = text.find(marker).expect("the marker is in the text") + marker.len();
    text[start..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect::<String>()
        .parse()
        .expect("an index follows the marker")
}

// A refused recovery names the disk fault that explains it: the Corrupt fault on that very
// replica, at the time it fired, and the entry it flipped bits in is the entry refused.
#[test]
fn a_refused_recovery_names_the_corrupt_fault() {
    let scenario = load("corrupt_majority");
    let report = run_report(&scenario, &[1], 1, false);
    let outcome = &report.per_seed[0];
    let refusals: Vec<_> = outcome
        .findings
        .iter()
        .filter_map(|finding| match finding {
            Finding::RecoveryFailed { node, error, .. } => Some((*node, error.clone())),
            _ => None,
        })
        .collect();
    assert_eq!(2, refusals.len(), "{:?}", outcome.findings);
    for (node, error) in refusals {
        let refused = entry_after(&error, "disk damage: entry i");
        let expected = format!(
            "; explained by the disk faults: Corrupt (bits flipped in entry i{refused}) on {node} at 15.000 s"
        );
        assert!(error.ends_with(&expected), "{error}");
    }
}

// ASYNC master-slave under the same master disk corruption: the loss is explained by the disk
// fault (the master cut its log at the bad entry), not by ASYNC_FLUSH and a power loss.
#[test]
fn a_master_disk_loss_names_the_corrupt_fault() {
    let variants = load("disk_corrupt_master")
        .variant_scenarios()
        .expect("the variants apply");
    let async_master = variants
        .iter()
        .find(|scenario| scenario.variant.as_deref() == Some("async"))
        .expect("disk_corrupt_master has an async variant");
    let report = run_report(async_master, &[1], 1, false);
    let text = lost_acks_explained(&report).expect("the async master lost acknowledged sends");
    let cut = entry_after(&text, "Corrupt (bits flipped in entry i");
    assert!(
        text.contains(&format!(
            "master n0 of group 0 restarted at 20.0 s with {} of the",
            cut - 1
        )),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "explained by the disk faults: Corrupt (bits flipped in entry i{cut}) on n0 at 15.000 s"
        )),
        "{text}"
    );
    assert!(!text.contains("ASYNC_FLUSH"), "{text}");
}

// `sim compare` on a scenario with variants: a row per variant, each under its mode.
#[test]
fn compare_gives_a_row_per_variant() {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_sim"))
        .args(["compare", "--seeds", "1", "--jobs", "1", "--quiet"])
        .arg(workspace.join("scenarios/disk_corrupt_master.ron"))
        .current_dir(&workspace)
        .output()
        .expect("the sim binary runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    // 0 or 1: the sync variant's expectations do not hold today (a read of an unacknowledged
    // send besides the losses; on main too), which is the row's business, not the table's.
    assert!(matches!(output.status.code(), Some(0 | 1)), "{stdout}");
    for (row, mode) in [
        ("disk_corrupt_master-dledger", "DLedger"),
        ("disk_corrupt_master-sync", "SyncMasterSlave"),
        ("disk_corrupt_master-async", "AsyncMasterSlave"),
    ] {
        let rows = stdout
            .lines()
            .filter(|line| line.contains(row) && line.contains(mode))
            .count();
        assert_eq!(1, rows, "{row}: {stdout}");
    }
}
