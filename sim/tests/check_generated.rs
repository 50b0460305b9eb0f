//! Generated histories with known verdicts: a linearizable run of each model passes, and the same
//! run with one response changed fails, naming the part and a window holding the changed op.

use sim::check::gen::{kv_history, log_history, register_history, GenOptions, Plant};
use sim::check::models::kv::KvModel;
use sim::check::models::register::RegisterModel;
use sim::check::{check_log, check_ops, CheckOptions, CheckReport, Mark, Method, Verdict};

fn options() -> CheckOptions {
    CheckOptions {
        time_limit: None,
        ..CheckOptions::default()
    }
}

/// The window of the only failing part, asserting there is exactly one.
fn failing_window(report: &CheckReport) -> &sim::check::WindowReport {
    let failing: Vec<_> = report.failing_parts().collect();
    assert_eq!(failing.len(), 1, "one failing part expected:\n{report}");
    failing[0]
        .window
        .as_ref()
        .expect("a failing part has a window")
}

#[test]
fn valid_log_histories_pass() {
    // Why: a checker that rejects linearizable runs would flood every seed with false alarms.
    for seed in 0..20 {
        for (clients, parts) in [(1, 1), (4, 1), (8, 3), (20, 2)] {
            let generated = log_history(&GenOptions {
                ops: 600,
                clients,
                parts,
                seed,
                ..GenOptions::default()
            });
            let report = check_log(&generated.history, Some(&generated.final_logs), &options());
            assert_eq!(
                report.verdict,
                Verdict::Linearizable,
                "seed {seed}:\n{report}"
            );
            let unsettled = check_log(&generated.history, None, &options());
            assert_eq!(
                unsettled.verdict,
                Verdict::Linearizable,
                "seed {seed}:\n{unsettled}"
            );
        }
    }
}

#[test]
fn planted_log_violations_fail_with_the_culprit_in_the_window() {
    // Why: the checker must catch one wrong response among hundreds and show it to a person.
    for seed in 0..20 {
        for plant in [Plant::Ghost, Plant::Stale] {
            let generated = log_history(&GenOptions {
                ops: 600,
                clients: 8,
                parts: 2,
                seed,
                plant: Some(plant),
                ..GenOptions::default()
            });
            let planted = generated.planted.expect("a response was changed");
            let report = check_log(&generated.history, Some(&generated.final_logs), &options());
            assert_eq!(
                report.verdict,
                Verdict::NotLinearizable,
                "seed {seed} {plant:?}"
            );
            let window = failing_window(&report);
            assert!(
                window.ops.iter().any(|op| op.index == planted),
                "seed {seed} {plant:?}: planted op {planted} not in window\n{report}"
            );
            assert!(
                window.ops.len() <= 40,
                "seed {seed}: window too long\n{report}"
            );
        }
    }
}

#[test]
fn log_histories_with_unknown_outcomes() {
    // Why: timeouts are the normal case under faults; an unknown send may have landed or not,
    // and both settled and unsettled checks must accept honest runs and reject a changed one.
    for seed in 0..10 {
        let valid = GenOptions {
            ops: 300,
            clients: 6,
            parts: 1,
            unknown_ppm: 50_000,
            seed,
            ..GenOptions::default()
        };
        let generated = log_history(&valid);
        let settled = check_log(&generated.history, Some(&generated.final_logs), &options());
        assert_eq!(
            settled.verdict,
            Verdict::Linearizable,
            "seed {seed}:\n{settled}"
        );
        let summary = settled.settle.expect("settling ran");
        assert!(
            summary.landed + summary.never_happened > 0,
            "seed {seed}: nothing to settle"
        );
        // Without settling, each unknown send may land anywhere or nowhere (exponential, as in
        // Porcupine): a bounded search may give up, but must never call an honest run wrong.
        let bounded = CheckOptions {
            steps_per_part_max: 300_000,
            ..options()
        };
        let unsettled = check_log(&generated.history, None, &bounded);
        assert_ne!(
            unsettled.verdict,
            Verdict::NotLinearizable,
            "seed {seed}:\n{unsettled}"
        );
        let small = log_history(&GenOptions {
            ops: 80,
            ..valid.clone()
        });
        let unsettled = check_log(&small.history, None, &options());
        assert_eq!(
            unsettled.verdict,
            Verdict::Linearizable,
            "seed {seed}:\n{unsettled}"
        );

        let planted = log_history(&GenOptions {
            plant: Some(Plant::Ghost),
            ..valid
        });
        let report = check_log(&planted.history, Some(&planted.final_logs), &options());
        assert_eq!(report.verdict, Verdict::NotLinearizable, "seed {seed}");
    }
}

#[test]
fn register_histories() {
    // Why: the register is the model Porcupine's Jepsen data uses; it must be right on its own.
    for seed in 0..30 {
        for unknown_ppm in [0, 30_000] {
            let base = GenOptions {
                ops: 400,
                clients: 5,
                unknown_ppm,
                seed,
                ..GenOptions::default()
            };
            let valid = register_history(&base);
            let report = check_ops(&RegisterModel, valid.ops, &options());
            assert_eq!(
                report.verdict,
                Verdict::Linearizable,
                "seed {seed}:\n{report}"
            );
            for plant in [Plant::Ghost, Plant::Stale] {
                let planted = register_history(&GenOptions {
                    plant: Some(plant),
                    ..base.clone()
                });
                let culprit = planted.planted.expect("a response was changed");
                let report = check_ops(&RegisterModel, planted.ops, &options());
                assert_eq!(
                    report.verdict,
                    Verdict::NotLinearizable,
                    "seed {seed} {plant:?}"
                );
                let window = failing_window(&report);
                assert!(
                    window.ops.iter().any(|op| op.index == culprit),
                    "seed {seed} {plant:?}: culprit {culprit} not in window\n{report}"
                );
            }
        }
    }
}

#[test]
fn unique_value_registers_are_decided_by_rules() {
    // Why: issue 18: with distinct written values (20 and 50 clients, 1 % unknown) the search
    // gave up; the rules (`register_unique`) decide them without it, and planted anomalies
    // still fail.
    for seed in 0..4 {
        for clients in [20, 50] {
            let base = GenOptions {
                ops: 3_000,
                clients,
                unknown_ppm: 10_000,
                seed,
                ..GenOptions::default()
            };
            let report = check_ops(&RegisterModel, register_history(&base).ops, &options());
            assert_eq!(
                report.verdict,
                Verdict::Linearizable,
                "seed {seed}:\n{report}"
            );
            assert_eq!(report.parts[0].method, Method::Rules, "seed {seed}");
            assert_eq!(report.parts[0].steps, 0, "seed {seed}: no search step");
            let planted = register_history(&GenOptions {
                plant: Some(Plant::Stale),
                ..base
            });
            let report = check_ops(&RegisterModel, planted.ops, &options());
            assert_eq!(report.verdict, Verdict::NotLinearizable, "seed {seed}");
        }
    }
}

#[test]
fn kv_histories_split_per_key() {
    // Why: P-compositionality must split per key and blame only the key that broke.
    for seed in 0..10 {
        let base = GenOptions {
            ops: 500,
            clients: 6,
            parts: 4,
            unknown_ppm: 20_000,
            seed,
            ..GenOptions::default()
        };
        let valid = kv_history(&base);
        let report = check_ops(&KvModel, valid.ops, &options());
        assert_eq!(
            report.verdict,
            Verdict::Linearizable,
            "seed {seed}:\n{report}"
        );
        assert_eq!(report.parts.len(), 4);
        let planted = kv_history(&GenOptions {
            plant: Some(Plant::Ghost),
            ..base
        });
        let culprit = planted.planted.expect("a response was changed");
        let report = check_ops(&KvModel, planted.ops, &options());
        assert_eq!(report.verdict, Verdict::NotLinearizable, "seed {seed}");
        let window = failing_window(&report);
        let marked = window.ops.iter().find(|op| op.index == culprit);
        assert!(
            marked.is_some(),
            "seed {seed}: culprit not in window\n{report}"
        );
    }
}

#[test]
fn the_culprit_is_marked() {
    // Why: the table and HTML point a person at one operation; it should be the changed one.
    let generated = log_history(&GenOptions {
        ops: 2_000,
        clients: 8,
        seed: 7,
        plant: Some(Plant::Ghost),
        ..GenOptions::default()
    });
    let planted = generated.planted.expect("a response was changed");
    let report = check_log(&generated.history, Some(&generated.final_logs), &options());
    let window = failing_window(&report);
    assert_eq!(window.culprit, Some(planted), "\n{report}");
    let marks: Vec<Mark> = window
        .ops
        .iter()
        .filter(|op| op.index == planted)
        .map(|op| op.mark)
        .collect();
    assert_eq!(marks, vec![Mark::Culprit]);
}

#[test]
fn a_large_history_is_decided_quickly() {
    // Why: the target is 10k single-queue ops with 8 clients in milliseconds; this guards
    // against an accidental quadratic path (loosely: debug-ish test profile, shared machine).
    let generated = log_history(&GenOptions {
        ops: 10_000,
        clients: 8,
        seed: 3,
        ..GenOptions::default()
    });
    let started = std::time::Instant::now();
    let report = check_log(&generated.history, Some(&generated.final_logs), &options());
    assert_eq!(report.verdict, Verdict::Linearizable);
    assert!(
        started.elapsed().as_secs_f64() < 2.0,
        "took {:?}",
        started.elapsed()
    );
}

#[test]
fn repeated_value_register_histories() {
    // Why: issue 18: Jepsen-style histories (values 0–4, 10 clients, :info ops) generated from a
    // linearization were called NOT linearizable; each must pass, and a planted stale read fail.
    use sim::check::gen::register_history_values;
    let bounded = CheckOptions {
        steps_per_part_max: 20_000_000,
        ..options()
    };
    for seed in 0..8 {
        for (ops, clients) in [(1_000, 10), (2_000, 5)] {
            let base = GenOptions {
                ops,
                clients,
                unknown_ppm: 20_000,
                seed,
                ..GenOptions::default()
            };
            let valid = register_history_values(&base, 5);
            let report = check_ops(&RegisterModel, valid.ops, &bounded);
            assert_eq!(
                report.verdict,
                Verdict::Linearizable,
                "seed {seed} {ops} ops:\n{report}"
            );
            for plant in [Plant::Stale, Plant::Ghost] {
                let planted = register_history_values(
                    &GenOptions {
                        plant: Some(plant),
                        ..base.clone()
                    },
                    5,
                );
                let report = check_ops(&RegisterModel, planted.ops, &bounded);
                assert_eq!(
                    report.verdict,
                    Verdict::NotLinearizable,
                    "seed {seed} {ops} ops {plant:?}:\n{report}"
                );
            }
        }
    }
}

/// A witness of the only failing part: the planted operation is its culprit.
fn assert_witness_names(report: &CheckReport, culprit: usize, context: &str) {
    let failing: Vec<_> = report.failing_parts().collect();
    assert_eq!(failing.len(), 1, "{context}: one failing part\n{report}");
    let witness = failing[0]
        .witness
        .as_ref()
        .unwrap_or_else(|| panic!("{context}: a witness\n{report}"));
    assert_eq!(witness.culprit, culprit, "{context}\n{report}");
    assert!(witness.ops.contains(&culprit), "{context}");
    assert_eq!(failing[0].method, Method::Rules, "{context}");
    assert!(failing[0].rule.is_some(), "{context}: the rule in words");
}

#[test]
fn repeated_value_kv_histories() {
    // Why: issue 18: kv histories with repeated values (puts and appends of a few letters)
    // generated from a linearization must pass; a planted stale get must fail with a witness
    // naming it and the overwrite, found without the search.
    use sim::check::gen::kv_history_values;
    for seed in 0..6 {
        for (ops, clients, parts) in [(2_000, 5, 1), (3_000, 10, 4), (3_000, 20, 4)] {
            let base = GenOptions {
                ops,
                clients,
                parts,
                unknown_ppm: 10_000,
                seed,
                ..GenOptions::default()
            };
            let context = format!("seed {seed} {ops} ops {clients} clients {parts} keys");
            let valid = kv_history_values(&base, 3);
            let report = check_ops(&KvModel, valid.ops, &options());
            assert_eq!(
                report.verdict,
                Verdict::Linearizable,
                "{context}:\n{report}"
            );
            let planted = kv_history_values(
                &GenOptions {
                    plant: Some(Plant::Stale),
                    ..base
                },
                3,
            );
            let culprit = planted.planted.expect("a get was changed");
            let report = check_ops(&KvModel, planted.ops, &options());
            assert_eq!(report.verdict, Verdict::NotLinearizable, "{context}");
            assert_witness_names(&report, culprit, &context);
        }
    }
}

/// 20,000-operation histories of register (repeated values with 5 and 10 clients, unique
/// values with 20 and 50) and kv (repeated values, up to 50 clients over 8 keys), valid and
/// with a planted stale read: `cargo test --release -p sim --test check_generated -- --ignored`.
#[test]
#[ignore = "long: 20k-op histories (seconds in release, longer in the test profile)"]
fn twenty_thousand_op_register_and_kv_histories() {
    use sim::check::gen::{kv_history_values, register_history_values};
    for seed in 0..3 {
        for clients in [5, 10, 20, 50] {
            let base = GenOptions {
                ops: 20_000,
                clients,
                parts: 8,
                unknown_ppm: 10_000,
                seed,
                ..GenOptions::default()
            };
            let stale = GenOptions {
                plant: Some(Plant::Stale),
                ..base.clone()
            };
            let context = format!("seed {seed} {clients} clients");
            let (valid, planted) = if clients <= 10 {
                (
                    register_history_values(&base, 5),
                    register_history_values(&stale, 5),
                )
            } else {
                (register_history(&base), register_history(&stale))
            };
            let report = check_ops(&RegisterModel, valid.ops, &options());
            assert_eq!(
                report.verdict,
                Verdict::Linearizable,
                "register {context}:\n{report}"
            );
            let culprit = planted.planted.expect("a read was changed");
            let report = check_ops(&RegisterModel, planted.ops, &options());
            assert_witness_names(&report, culprit, &format!("register {context}"));
            let report = check_ops(&KvModel, kv_history_values(&base, 3).ops, &options());
            assert_eq!(
                report.verdict,
                Verdict::Linearizable,
                "kv {context}:\n{report}"
            );
            let planted = kv_history_values(&stale, 3);
            let culprit = planted.planted.expect("a get was changed");
            let report = check_ops(&KvModel, planted.ops, &options());
            assert_witness_names(&report, culprit, &format!("kv {context}"));
        }
    }
}
