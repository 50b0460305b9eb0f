//! The WGL search (`check_ops`, `check_log`) against the brute-force reference checker
//! (`sim::check::reference`) on random small histories of every model (`sim::check::gen_small`):
//! they must agree on every history. On a disagreement the test shrinks the history (removing
//! operations while the disagreement stays) and prints the smallest one as JSON lines, ready for
//! `sim check-history`.
//!
//! The long run (≥ 100,000 histories per model):
//! `cargo test --release -p sim --test check_differential -- --ignored --nocapture`.

use std::fmt::Debug;

use serde::Serialize;
use sim::check::gen_small::{
    small_kv, small_log, small_register, small_register_unique, SmallOptions,
};
use sim::check::models::kv::KvModel;
use sim::check::models::register::RegisterModel;
use sim::check::records::records_to_ops;
use sim::check::reference::{kv_linearizable, log_linearizable, register_linearizable};
use sim::check::register_unique::decide_unique;
use sim::check::{check_log, check_ops, CheckOptions, CheckReport, Decided, Verdict};

fn options() -> CheckOptions {
    CheckOptions {
        time_limit: None,
        threads: 1,
        ..CheckOptions::default()
    }
}

/// What the two checkers said about one history.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Verdicts {
    search: Verdict,
    reference: bool,
    /// Every witness of a NOT is a set of operations the reference cannot linearize either.
    witnesses_hold: bool,
}

impl Verdicts {
    fn agree(self) -> bool {
        if !self.witnesses_hold {
            return false;
        }
        match self.search {
            Verdict::Linearizable => self.reference,
            Verdict::NotLinearizable => !self.reference,
            Verdict::Unknown => false,
        }
    }
}

/// One model under test: how to generate a history and what each checker says.
struct Subject<T> {
    name: &'static str,
    generate: fn(u64, &SmallOptions) -> Vec<T>,
    verdicts: fn(&[T]) -> Verdicts,
}

/// True when the reference cannot linearize the records each witness of `report` names.
fn witnesses_hold<T: Clone>(
    report: &CheckReport,
    records: &[T],
    linearizable: fn(&[T]) -> bool,
) -> bool {
    report
        .parts
        .iter()
        .filter_map(|part| part.witness.as_ref())
        .all(|witness| {
            let chosen: Vec<T> = witness
                .ops
                .iter()
                .map(|&index| records[index].clone())
                .collect();
            !linearizable(&chosen)
        })
}

fn register_reference(
    records: &[sim::check::records::Record<
        sim::check::models::register::RegisterInput,
        sim::check::models::register::RegisterOutput,
    >],
) -> bool {
    register_linearizable(records).expect("small history")
}

fn register_verdicts(
    records: &[sim::check::records::Record<
        sim::check::models::register::RegisterInput,
        sim::check::models::register::RegisterOutput,
    >],
) -> Verdicts {
    let report = check_ops(&RegisterModel, records_to_ops(records), &options());
    Verdicts {
        search: report.verdict,
        reference: register_reference(records),
        witnesses_hold: witnesses_hold(&report, records, register_reference),
    }
}

fn kv_reference(
    records: &[sim::check::records::Record<
        sim::check::models::kv::KvInput,
        sim::check::models::kv::KvOutput,
    >],
) -> bool {
    kv_linearizable(records).expect("small history")
}

fn kv_verdicts(
    records: &[sim::check::records::Record<
        sim::check::models::kv::KvInput,
        sim::check::models::kv::KvOutput,
    >],
) -> Verdicts {
    let report = check_ops(&KvModel, records_to_ops(records), &options());
    Verdicts {
        search: report.verdict,
        reference: kv_reference(records),
        witnesses_hold: witnesses_hold(&report, records, kv_reference),
    }
}

fn log_verdicts(history: &[sim::history::Operation]) -> Verdicts {
    Verdicts {
        search: check_log(history, None, &options()).verdict,
        reference: log_linearizable(history).expect("small history"),
        witnesses_hold: true,
    }
}

/// Removes operations one at a time while the checkers still disagree.
fn shrink<T: Clone>(mut history: Vec<T>, verdicts: fn(&[T]) -> Verdicts) -> Vec<T> {
    let mut position = 0;
    while position < history.len() {
        let mut smaller = history.clone();
        smaller.remove(position);
        if !verdicts(&smaller).agree() {
            history = smaller;
            position = 0;
        } else {
            position += 1;
        }
    }
    history
}

fn json_lines<T: Serialize>(history: &[T]) -> String {
    history
        .iter()
        .map(|item| serde_json::to_string(item).expect("records serialise"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Checks `count` histories from `first_seed` on; panics with the smallest disagreement.
/// Returns (linearizable, not linearizable) counts.
fn run<T: Clone + Serialize + Debug>(
    subject: &Subject<T>,
    first_seed: u64,
    count: u64,
    small: &SmallOptions,
) -> (u64, u64) {
    let (mut valid, mut invalid) = (0, 0);
    for seed in first_seed..first_seed + count {
        let history = (subject.generate)(seed, small);
        let verdicts = (subject.verdicts)(&history);
        if !verdicts.agree() {
            let smallest = shrink(history.clone(), subject.verdicts);
            let shrunk = (subject.verdicts)(&smallest);
            panic!(
                "{} seed {seed}: search says {}, reference says {}\nsmallest disagreement \
                 (search {}, reference {}):\n{}\nwhole history:\n{}",
                subject.name,
                verdicts.search,
                verdicts.reference,
                shrunk.search,
                shrunk.reference,
                json_lines(&smallest),
                json_lines(&history),
            );
        }
        if verdicts.reference {
            valid += 1;
        } else {
            invalid += 1;
        }
    }
    (valid, invalid)
}

const REGISTER: Subject<
    sim::check::records::Record<
        sim::check::models::register::RegisterInput,
        sim::check::models::register::RegisterOutput,
    >,
> = Subject {
    name: "register",
    generate: small_register,
    verdicts: register_verdicts,
};

const REGISTER_UNIQUE: Subject<
    sim::check::records::Record<
        sim::check::models::register::RegisterInput,
        sim::check::models::register::RegisterOutput,
    >,
> = Subject {
    name: "register (unique values)",
    generate: small_register_unique,
    verdicts: register_verdicts,
};

const KV: Subject<
    sim::check::records::Record<sim::check::models::kv::KvInput, sim::check::models::kv::KvOutput>,
> = Subject {
    name: "kv",
    generate: small_kv,
    verdicts: kv_verdicts,
};

const LOG: Subject<sim::history::Operation> = Subject {
    name: "log",
    generate: small_log,
    verdicts: log_verdicts,
};

/// Both verdicts must be common, or the test would not be testing much.
fn assert_mixed(name: &str, (valid, invalid): (u64, u64)) {
    let total = valid + invalid;
    assert!(
        valid * 8 >= total && invalid * 8 >= total,
        "{name}: {valid} linearizable, {invalid} not: the generator is lopsided"
    );
}

#[test]
fn register_search_agrees_with_the_reference() {
    // Why: a false NOT on repeated-value registers (issue 18) went unnoticed without an oracle.
    let counts = run(&REGISTER, 0, 20_000, &SmallOptions::default());
    assert_mixed("register", counts);
}

#[test]
fn unique_register_rules_agree_with_the_reference() {
    // Why: unique written values are decided by rules (`register_unique`), not the search; the
    // rules must be exact, NOT and linearizable alike.
    let counts = run(&REGISTER_UNIQUE, 0, 20_000, &SmallOptions::default());
    assert_mixed("register (unique values)", counts);
}

#[test]
fn unique_register_rules_decide_almost_all_alone() {
    // Why: the rules are only worth having if they decide without the search; each answer they
    // give must be the reference's, and at most 2 % may be left open.
    let (mut decided, mut open) = (0u32, 0u32);
    for seed in 0..20_000 {
        let records = small_register_unique(seed, &SmallOptions::default());
        let reference = register_reference(&records);
        match decide_unique(&records_to_ops(&records)) {
            Decided::Linearizable => assert!(reference, "seed {seed}: rules say linearizable"),
            Decided::Not(witness) => assert!(!reference, "seed {seed}: rules say NOT: {witness:?}"),
            Decided::Open(_) => open += 1,
        }
        decided += 1;
    }
    eprintln!("open {open} of {decided}");
    assert!(open * 50 <= decided, "{open} of {decided} left open");
}

#[test]
fn kv_search_agrees_with_the_reference() {
    // Why: kv is split per key before the search; the reference checks the whole map at once.
    let counts = run(&KV, 0, 10_000, &SmallOptions::default());
    assert_mixed("kv", counts);
}

#[test]
fn log_search_agrees_with_the_reference() {
    // Why: the log search's shortcuts (reads first, unknown pulls left out) must stay sound.
    let counts = run(&LOG, 0, 10_000, &SmallOptions::default());
    assert_mixed("log", counts);
}

/// The long run: 100,000 histories per model and shape (see the module doc).
#[test]
#[ignore = "long: run with --ignored (about a minute in release)"]
fn long_differential_run() {
    let shapes = [
        SmallOptions::default(),
        SmallOptions {
            ops_max: 9,
            clients: 9,
            values: 2,
            unknown_ppm: 300_000,
            ..SmallOptions::default()
        },
    ];
    let count = 100_000;
    for (shape, small) in shapes.iter().enumerate() {
        let first = 1_000_000 * (shape as u64 + 1);
        let register = run(&REGISTER, first, count, small);
        let unique = run(&REGISTER_UNIQUE, first, count, small);
        let kv = run(&KV, first, count, small);
        let log = run(&LOG, first, count, small);
        println!(
            "shape {shape}: register {register:?}, unique register {unique:?}, kv {kv:?}, \
             log {log:?} \
             (linearizable, not) — all agree"
        );
    }
}
