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
use sim::check::gen_small::{small_kv, small_log, small_register, SmallOptions};
use sim::check::models::kv::KvModel;
use sim::check::models::register::RegisterModel;
use sim::check::records::records_to_ops;
use sim::check::reference::{kv_linearizable, log_linearizable, register_linearizable};
use sim::check::{check_log, check_ops, CheckOptions, Verdict};

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
}

impl Verdicts {
    fn agree(self) -> bool {
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

fn register_verdicts(
    records: &[sim::check::records::Record<
        sim::check::models::register::RegisterInput,
        sim::check::models::register::RegisterOutput,
    >],
) -> Verdicts {
    Verdicts {
        search: check_ops(&RegisterModel, records_to_ops(records), &options()).verdict,
        reference: register_linearizable(records).expect("small history"),
    }
}

fn kv_verdicts(
    records: &[sim::check::records::Record<
        sim::check::models::kv::KvInput,
        sim::check::models::kv::KvOutput,
    >],
) -> Verdicts {
    Verdicts {
        search: check_ops(&KvModel, records_to_ops(records), &options()).verdict,
        reference: kv_linearizable(records).expect("small history"),
    }
}

fn log_verdicts(history: &[sim::history::Operation]) -> Verdicts {
    Verdicts {
        search: check_log(history, None, &options()).verdict,
        reference: log_linearizable(history).expect("small history"),
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
        let kv = run(&KV, first, count, small);
        let log = run(&LOG, first, count, small);
        println!(
            "shape {shape}: register {register:?}, kv {kv:?}, log {log:?} \
             (linearizable, not) — all agree"
        );
    }
}
