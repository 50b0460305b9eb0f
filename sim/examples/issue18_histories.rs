//! Writes issue 18's kinds of history as files for `sim check-history`, so that the release
//! binary can be timed on each as a user would run it:
//!
//! ```text
//! cargo run --release -p sim --example issue18_histories -- target/issue18-histories [SEED]
//! ```
//!
//! Each line of `DIR/manifest.tsv` is `file<TAB>model<TAB>expected verdict<TAB>ops<TAB>kind`.
//! Log histories (our JSON lines, no final logs): 1, 4 and 8 queues, 4–64 clients,
//! 200–96,000 operations, 2–30 % unknown sends landing up to 8 s late or never; valid ones and
//! one per planted `LogAnomaly`; a few undrained ones (some unknown sends landed where no pull
//! read them). Register histories (JSON lines records, `--model register`): repeated values 0–4,
//! 10 and 20 clients, 1,000–2,000 operations, 2 % `:info`, valid and with a stale read; unique
//! values with 20 and 50 clients, 1 % `:info`.

use std::fmt::Write as _;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use anyhow::Context;
use sim::check::gen::{register_history, register_history_values, GenOptions, Plant};
use sim::check::log_gen::{late_log_history, LateLogOptions, LogAnomaly};
use sim::check::models::register::{RegisterInput, RegisterOutput};
use sim::check::records::ops_to_records;
use sim::history::write_jsonl;

struct Row {
    file: String,
    model: &'static str,
    expected: &'static str,
    ops: usize,
    kind: String,
}

fn main() -> anyhow::Result<()> {
    let dir = PathBuf::from(
        std::env::args()
            .nth(1)
            .unwrap_or_else(|| "target/issue18-histories".to_string()),
    );
    let seed: u64 = match std::env::args().nth(2) {
        Some(seed) => seed
            .parse()
            .with_context(|| format!("SEED {seed:?}: expected a whole number"))?,
        None => 18,
    };
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let mut rows = Vec::new();
    log_histories(&dir, seed, &mut rows)?;
    register_histories(&dir, seed, &mut rows)?;
    let mut manifest = String::new();
    for row in &rows {
        writeln!(
            manifest,
            "{}\t{}\t{}\t{}\t{}",
            row.file, row.model, row.expected, row.ops, row.kind
        )?;
    }
    let path = dir.join("manifest.tsv");
    std::fs::write(&path, manifest).with_context(|| format!("writing {}", path.display()))?;
    println!("{} histories in {}", rows.len(), dir.display());
    Ok(())
}

fn create(dir: &Path, file: &str) -> anyhow::Result<BufWriter<std::fs::File>> {
    let path = dir.join(file);
    let created =
        std::fs::File::create(&path).with_context(|| format!("creating {}", path.display()))?;
    Ok(BufWriter::new(created))
}

fn log_histories(dir: &Path, seed: u64, rows: &mut Vec<Row>) -> anyhow::Result<()> {
    // (queues, clients, ops, unknown %).
    let shapes: [(u32, u32, usize, u32); 6] = [
        (1, 4, 200, 2),
        (1, 8, 2_000, 10),
        (1, 8, 10_000, 10),
        (4, 16, 20_000, 30),
        (4, 32, 50_000, 5),
        (8, 64, 96_000, 5),
    ];
    let mut write_one = |gen: LateLogOptions, expected: &'static str| -> anyhow::Result<()> {
        let generated = late_log_history(&gen);
        if gen.anomaly.is_some() {
            anyhow::ensure!(
                generated.planted.is_some(),
                "no room for {:?} in {gen:?}",
                gen.anomaly
            );
        }
        let what = gen
            .anomaly
            .map_or_else(|| "valid".to_string(), |anomaly| format!("{anomaly:?}"));
        let drained = if gen.drain { "" } else { ", undrained" };
        let file = format!(
            "log-{}q-{}c-{}ops-{}pc-{}{}.jsonl",
            gen.queues,
            gen.clients,
            gen.ops,
            gen.unknown_ppm / 10_000,
            what,
            if gen.drain { "" } else { "-undrained" }
        );
        write_jsonl(&generated.history, create(dir, &file)?)
            .with_context(|| format!("writing {file}"))?;
        rows.push(Row {
            file,
            model: "log",
            expected,
            ops: generated.history.len(),
            kind: format!(
                "log {what}: {} q, {} clients, {} % unknown{drained}",
                gen.queues,
                gen.clients,
                gen.unknown_ppm / 10_000
            ),
        });
        Ok(())
    };
    let base = |(queues, clients, ops, unknown_pc): (u32, u32, usize, u32)| LateLogOptions {
        ops,
        clients,
        queues,
        unknown_ppm: unknown_pc * 10_000,
        late_us_max: 8_000_000,
        drain: true,
        anomaly: None,
        seed,
    };
    for shape in shapes {
        write_one(base(shape), "linearizable")?;
    }
    // Each anomaly in a smaller shape and in the largest, so that every kind meets two sizes.
    for (anomaly, shape) in LogAnomaly::ALL
        .iter()
        .zip([1, 2, 3, 4, 2, 0].map(|at| shapes[at]))
    {
        write_one(
            LateLogOptions {
                anomaly: Some(*anomaly),
                ..base(shape)
            },
            "NOT linearizable",
        )?;
        write_one(
            LateLogOptions {
                anomaly: Some(*anomaly),
                ..base(shapes[5])
            },
            "NOT linearizable",
        )?;
    }
    for shape in [shapes[1], shapes[3]] {
        write_one(
            LateLogOptions {
                drain: false,
                ..base(shape)
            },
            "linearizable",
        )?;
    }
    Ok(())
}

fn register_histories(dir: &Path, seed: u64, rows: &mut Vec<Row>) -> anyhow::Result<()> {
    let gen = |ops, clients, unknown_ppm, plant| GenOptions {
        ops,
        clients,
        parts: 1,
        unknown_ppm,
        plant,
        seed,
    };
    let mut write_one = |name: String,
                         kind: String,
                         expected: &'static str,
                         records: Vec<String>|
     -> anyhow::Result<()> {
        let mut out = create(dir, &name)?;
        for line in &records {
            writeln!(out, "{line}").with_context(|| format!("writing {name}"))?;
        }
        out.flush().with_context(|| format!("writing {name}"))?;
        rows.push(Row {
            file: name,
            model: "register",
            expected,
            ops: records.len(),
            kind,
        });
        Ok(())
    };
    let encode =
        |records: &[sim::check::Op<RegisterInput, RegisterOutput>]| -> anyhow::Result<Vec<String>> {
            ops_to_records(records)
                .iter()
                .map(|record| serde_json::to_string(record).context("encoding a record"))
                .collect()
        };
    for (ops, clients) in [(1_000, 10), (2_000, 10), (1_000, 20), (2_000, 20)] {
        for (plant, expected, what) in [
            (None, "linearizable", "valid"),
            (Some(Plant::Stale), "NOT linearizable", "stale read"),
        ] {
            let generated = register_history_values(&gen(ops, clients, 20_000, plant), 5);
            write_one(
                format!(
                    "register-values5-{clients}c-{ops}ops-{}.jsonl",
                    what.replace(' ', "-")
                ),
                format!("register, values 0-4, {what}: {clients} clients, 2 % :info"),
                expected,
                encode(&generated.ops)?,
            )?;
        }
    }
    for (ops, clients) in [(2_000, 20), (5_000, 20), (2_000, 50), (5_000, 50)] {
        let generated = register_history(&gen(ops, clients, 10_000, None));
        write_one(
            format!("register-unique-{clients}c-{ops}ops.jsonl"),
            format!("register, unique values: {clients} clients, 1 % :info"),
            "linearizable",
            encode(&generated.ops)?,
        )?;
    }
    Ok(())
}
