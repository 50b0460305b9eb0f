//! Seeds per CPU-second, whole seeds (world, workload, faults, checker): issue 16's targets
//! are leader_crash ≥ 1,000 seeds/min on 2 cores and swarm ≥ 200 seeds/min. Each sample is
//! one seed on this thread (`run_one`, as `sim run` does it, on its own OS thread); the figure
//! printed per scenario is what 2 cores make of the median: 2 × 60 s / median seed time.
//!
//! `cargo bench -p sim --bench seeds` (a few minutes); one scenario: `... -- leader_crash`.

use criterion::{criterion_group, Criterion};
use sim::run::seeds::run_one;
use sim::run::RunSpec;
use sim::scenario::Scenario;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

// As the `sim` binary.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The stock scenarios measured, by file name under `scenarios/`.
const SCENARIOS: [&str; 3] = ["leader_crash", "swarm", "swarm_dledger"];

fn spec(name: &str) -> Arc<RunSpec> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../scenarios")
        .join(format!("{name}.ron"));
    let scenario = Scenario::load(&path).expect("a stock scenario parses");
    Arc::new(RunSpec::from_scenario(&scenario))
}

fn bench_seeds(criterion: &mut Criterion) {
    let mut group = criterion.benchmark_group("seed");
    group.sample_size(10);
    group.warm_up_time(Duration::from_millis(500));
    group.measurement_time(Duration::from_secs(8));
    for name in SCENARIOS {
        let spec = spec(name);
        // Once on its own, for the summary line (criterion prints its own statistics).
        let seeds = 1..=6u64;
        let started = Instant::now();
        let simulated_s: f64 = seeds
            .clone()
            .map(|seed| run_one(spec.clone(), seed, None).end_us as f64 / 1e6)
            .sum();
        let per_seed_s = started.elapsed().as_secs_f64() / seeds.count() as f64;
        println!(
            "seed/{name}: {:.3} s per seed on one core = {:.0} seeds/min on 2 cores, \
             {:.0} simulated s per wall s per core",
            per_seed_s,
            2.0 * 60.0 / per_seed_s,
            simulated_s / 6.0 / per_seed_s
        );
        let mut seed = 0u64;
        group.bench_function(name, |bencher| {
            bencher.iter(|| {
                seed += 1;
                run_one(spec.clone(), seed, None)
            })
        });
    }
    group.finish();
}

criterion_group!(benches, bench_seeds);

fn main() {
    benches();
    Criterion::default().configure_from_args().final_summary();
}
