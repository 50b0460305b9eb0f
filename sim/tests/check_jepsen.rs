//! Agreement with Porcupine on Jepsen's etcd cas-register histories: real-cluster histories with
//! expected verdicts are the best evidence that the search and the Jepsen reader are right.
//!
//! The data is not in this repository (it is Porcupine's): point `HASIM_JEPSEN_DIR` at a
//! directory holding `etcd_000.log` … `etcd_102.log` from Porcupine's `test_data/jepsen/`.
//! Without it the test prints why it is skipped and passes.

use std::fs::File;
use std::io::BufReader;
use std::path::PathBuf;
use std::time::Instant;

use sim::check::models::register::RegisterModel;
use sim::check::{check_ops, read_jepsen, CheckOptions, Verdict};

/// The histories Porcupine's `porcupine_test.go` expects to be linearizable (`checkJepsen(t, n,
/// true)`); every other one from 0 to 102 is expected not to be, except 95 (its etcd cluster
/// failed to start; the log is empty and Porcupine has no test for it).
const LINEARIZABLE: [u32; 23] = [
    2, 5, 7, 18, 25, 31, 38, 45, 48, 49, 51, 53, 56, 67, 75, 76, 80, 87, 92, 98, 100, 101, 102,
];
const NO_EXPECTATION: u32 = 95;

#[test]
fn porcupine_etcd_histories_agree() {
    let Some(directory) = std::env::var_os("HASIM_JEPSEN_DIR").map(PathBuf::from) else {
        println!("SKIPPED: set HASIM_JEPSEN_DIR to Porcupine's test_data/jepsen to run this");
        return;
    };
    let options = CheckOptions {
        time_limit: None,
        ..CheckOptions::default()
    };
    let started = Instant::now();
    let mut disagreements = Vec::new();
    let mut checked = 0;
    for number in (0..=102).filter(|&number| number != NO_EXPECTATION) {
        let path = directory.join(format!("etcd_{number:03}.log"));
        let file = File::open(&path).unwrap_or_else(|error| panic!("{}: {error}", path.display()));
        let ops = read_jepsen(BufReader::new(file)).expect("Porcupine's logs parse");
        let report = check_ops(&RegisterModel, ops, &options);
        let expected = if LINEARIZABLE.contains(&number) {
            Verdict::Linearizable
        } else {
            Verdict::NotLinearizable
        };
        if report.verdict != expected {
            disagreements.push(format!(
                "etcd_{number:03}: {} (expected {expected})",
                report.verdict
            ));
        }
        checked += 1;
    }
    println!(
        "{checked} Jepsen etcd histories checked in {:.3} s, {} disagreements",
        started.elapsed().as_secs_f64(),
        disagreements.len()
    );
    assert!(disagreements.is_empty(), "{disagreements:#?}");
    assert_eq!(checked, 102);
}
