//! What `sim run` and `sim replay` print after a run: the report's tables and explanations.

use crate::report::{self, RunReport};
use crate::run::outcome::{explain_by_disk_faults, FindingKind};
use crate::scenario::Scenario;

/// Prints a run's tables: failover stages, per group and topic, settling, healed cuts, worst
/// seeds, seeds with findings (`replay` gives a seed's replay command), explained losses and
/// expectations.
pub fn print_report(scenario: &Scenario, report: &RunReport, replay: impl Fn(u64) -> String) {
    println!(
        "scenario {} ({}, hash {}), {} seeds",
        report.scenario,
        report.scenario_file,
        report.scenario_hash,
        report.seeds.len()
    );
    println!("\nFailover, across seeds (DESIGN.md definitions):");
    println!("{}", report::stages_table(report));
    report::print_groups_and_topic(report);
    let settle: Vec<Option<u64>> = report
        .per_seed
        .iter()
        .flat_map(|o| o.settle_us.iter().copied())
        .collect();
    let p = crate::metrics::percentiles(&settle);
    println!(
        "Heal and settle (ms from heal until every group has one leader and all replicas caught up): \
         p50 {} / p99 {} / max {} over {} groups x seeds; {} did not settle within {}",
        report::ms(p.p50_us),
        report::ms(p.p99_us),
        report::ms(p.max_us),
        p.samples,
        p.not_reached,
        scenario.settle_max
    );
    println!("{}", elections_line(report));
    if let Some(text) = coverage_text(report) {
        println!("{text}");
    }
    let healed: Vec<Option<u64>> = report
        .per_seed
        .iter()
        .flat_map(|o| o.cuts_healed.iter().map(|cut| cut.client_us))
        .collect();
    if !healed.is_empty() {
        let p = crate::metrics::percentiles(&healed);
        println!(
            "Leader cut off from its majority but healed before any replica replaced it (not \
             failovers): {} times; client stage p50 {} / p99 {} / max {} ms, {} not reached",
            p.samples,
            report::ms(p.p50_us),
            report::ms(p.p99_us),
            report::ms(p.max_us),
            p.not_reached
        );
    }
    println!("\nWorst seeds by client-perceived failover:");
    println!("{}", report::worst_seeds_table(report, 5));
    if let Some(table) = report::failing_seeds_table(report, &replay) {
        println!("\nSeeds with findings:");
        println!("{table}");
    }
    if let Some(text) = lost_acks_explained(report) {
        println!("\nLost acknowledged sends, explained:");
        println!("{text}");
    }
    println!("\nExpectations:");
    println!("{}", report::expectations_table(report));
    for outcome in report
        .per_seed
        .iter()
        .filter(|o| !o.findings.is_empty())
        .take(3)
    {
        println!("REPRODUCE WITH: {}", replay(outcome.seed));
    }
}

/// Per seed with lost acknowledged sends: how many, and what the world saw that explains them
/// (a master–slave master restarting with fewer entries than it had acknowledged). None when
/// no seed lost an acknowledged send.
pub fn lost_acks_explained(report: &RunReport) -> Option<String> {
    let mut lines = Vec::new();
    for outcome in &report.per_seed {
        let lost = outcome.count(FindingKind::LostAcked);
        if lost == 0 && outcome.lost_writes.is_empty() {
            continue;
        }
        let reused = outcome.count(FindingKind::LostAckedOffsetReused);
        let skips = outcome.count(FindingKind::LostAckedConsumerSkip);
        let mut line = format!("seed {}: {lost} acknowledged sends lost", outcome.seed);
        if reused > 0 {
            line.push_str(&format!(
                " ({reused} offset conflicts with them: their queue offsets went to later sends)"
            ));
        }
        if skips > 0 {
            line.push_str(&format!(
                " ({skips} consumer skips over their offsets: consumers had read past them \
                 before the master restarted shorter)"
            ));
        }
        if outcome.lost_writes.is_empty() {
            match explain_by_disk_faults(&outcome.disk_faults, None, outcome.end_us) {
                Some(explained) => line.push_str(&format!("; no master lost writes; {explained}")),
                None => {
                    line.push_str("; no master lost writes: not explained by the replication mode")
                }
            }
        }
        for lost_writes in &outcome.lost_writes {
            line.push_str(&format!(
                "; master {} of group {} restarted at {:.1} s with {} of the {} committed entries",
                lost_writes.master,
                lost_writes.group,
                lost_writes.at_us as f64 / 1e6,
                lost_writes.recovered_index.0,
                lost_writes.committed_index.0,
            ));
            let gone = lost_writes.committed_index.0 - lost_writes.recovered_index.0;
            let disk = explain_by_disk_faults(
                &outcome.disk_faults,
                Some(lost_writes.master),
                lost_writes.at_us,
            );
            match disk {
                // The master's disk was damaged while it was down: it cut its log there.
                Some(explained) => line.push_str(&format!(
                    " ({gone} committed entries gone from its disk, {explained}; its slaves then cut those entries to follow the master)"
                )),
                None => line.push_str(&format!(
                    " ({gone} acknowledged but never flushed: ASYNC_FLUSH acks from the page cache and the power loss dropped them; its slaves then cut those entries to follow the master)"
                )),
            }
        }
        lines.push(line);
    }
    (!lines.is_empty()).then(|| lines.join("\n"))
}

/// Raft event coverage (`world::coverage`) and event triggers fired, per event: seeds that
/// reached it and times in total; an event no seed reached says so. None for master–slave
/// runs (no Raft events) with no triggers.
pub fn coverage_text(report: &RunReport) -> Option<String> {
    use std::collections::BTreeMap;
    let any_events = report.per_seed.iter().any(|o| !o.events.is_empty());
    let any_triggers = report.per_seed.iter().any(|o| !o.triggers.is_empty());
    if !any_events && !any_triggers {
        return None;
    }
    let tally = |pick: &dyn Fn(&crate::run::outcome::SeedOutcome) -> &BTreeMap<String, u32>| {
        let mut totals: BTreeMap<String, (u32, u64)> = BTreeMap::new();
        for outcome in &report.per_seed {
            for (name, count) in pick(outcome) {
                let entry = totals.entry(name.clone()).or_insert((0, 0));
                entry.0 += u32::from(*count > 0);
                entry.1 += u64::from(*count);
            }
        }
        totals
    };
    let mut lines = vec![format!(
        "Raft event coverage ({} seeds): event, seeds that reached it, times in total",
        report.per_seed.len()
    )];
    let events = tally(&|o| &o.events);
    for event in crate::world::coverage::EVENTS {
        match events.get(event) {
            Some((seeds, times)) if *times > 0 => {
                lines.push(format!("  {event:<40} {seeds:>6} seeds {times:>8} times"))
            }
            _ => lines.push(format!("  {event:<40} ZERO coverage: no seed reached it")),
        }
    }
    let triggers = tally(&|o| &o.triggers);
    if !triggers.is_empty() {
        lines.push("Event triggers fired: trigger, seeds, times".to_string());
        for (name, (seeds, times)) in &triggers {
            lines.push(format!("  {name:<40} {seeds:>6} seeds {times:>8} times"));
        }
    }
    Some(lines.join("\n"))
}

/// Leader elections per seed (p50 / p99 / max, nearest rank) and the highest term reached:
/// how many leader changes the faults caused, which deep bugs need many of.
pub fn elections_line(report: &RunReport) -> String {
    let mut elections: Vec<u32> = report.per_seed.iter().map(|o| o.elections).collect();
    let mut terms: Vec<u64> = report.per_seed.iter().map(|o| o.highest_term).collect();
    elections.sort_unstable();
    terms.sort_unstable();
    fn rank<T: Copy + Default>(sorted: &[T], percent: usize) -> T {
        if sorted.is_empty() {
            return T::default();
        }
        let index = (sorted.len() * percent).div_ceil(100).max(1) - 1;
        sorted[index.min(sorted.len() - 1)]
    }
    format!(
        "Leader elections per seed: p50 {} / p99 {} / max {}; highest term p50 {} / max {}",
        rank(&elections, 50),
        rank(&elections, 99),
        rank(&elections, 100),
        rank(&terms, 50),
        rank(&terms, 100)
    )
}
