//! Baselines and the regression gate. A baseline is a small RON file (`reports/baselines/`,
//! committed): which scenario file (name and hash), seeds and overrides it was measured with,
//! every failover stage's percentiles, and the count of each kind of finding. Because a run is
//! deterministic, `sim regress` can compare a fresh run with it exactly, with no flaky numbers.
//!
//! What counts as a regression:
//! - a timing figure (a stage's p50/p90/p99/max) that got slower by more than the tolerance,
//!   relative to the baseline, *and* by more than an absolute floor (so a 0 ms stale-leader
//!   window that becomes 3 ms is not "infinitely" worse); faster by as much is an improvement,
//!   reported but not failing;
//! - a stage reached in the baseline but never now, or reached by fewer failovers
//!   (`not reached` grew);
//! - any count of findings (safety kinds, and `not_settled` for liveness) above the baseline's.

use crate::metrics::{Percentiles, STAGES};
use crate::report::{ms, RunReport, StageSummary};
use comfy_table::{presets::UTF8_FULL_CONDENSED, Cell, Color, Table};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// A report's finding counts keyed by the kinds' text, as baseline files hold them (a
/// baseline may name kinds this build no longer has).
fn findings_by_text(report: &RunReport) -> BTreeMap<String, u32> {
    report
        .findings_by_kind
        .iter()
        .map(|(kind, n)| (kind.as_str().to_string(), *n))
        .collect()
}

/// What a baseline file holds.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Baseline {
    pub scenario: String,
    pub scenario_file: String,
    pub scenario_hash: String,
    pub overrides: Vec<(String, String)>,
    pub seeds: Vec<u64>,
    pub stages: Vec<StageSummary>,
    pub findings_by_kind: BTreeMap<String, u32>,
}

impl Baseline {
    pub fn from_report(report: &RunReport) -> Baseline {
        Baseline {
            scenario: report.scenario.clone(),
            scenario_file: report.scenario_file.clone(),
            scenario_hash: report.scenario_hash.clone(),
            overrides: report.overrides.clone(),
            seeds: report.seeds.clone(),
            stages: report.stages.clone(),
            findings_by_kind: findings_by_text(report),
        }
    }

    pub fn stage(&self, stage: &str) -> Option<&Percentiles> {
        self.stages
            .iter()
            .find(|s| s.stage == stage)
            .map(|s| &s.percentiles)
    }

    pub fn load(path: &Path) -> Result<Baseline, BaselineError> {
        let text = std::fs::read_to_string(path).map_err(|source| BaselineError::Read {
            path: path.display().to_string(),
            source,
        })?;
        ron::from_str(&text).map_err(|error| BaselineError::Parse {
            path: path.display().to_string(),
            line: error.position.line,
            column: error.position.col,
            message: error.code.to_string(),
        })
    }

    /// The RON text: seed lists on one line, the rest one field per line.
    pub fn to_ron(&self) -> String {
        let config = ron::ser::PrettyConfig::default().compact_arrays(true);
        let text = ron::ser::to_string_pretty(self, config)
            .expect("invariant: a baseline is plain data and always serialises");
        format!("// Written by `sim regress ... --update`: the figures `sim regress` compares against.\n{text}\n")
    }

    pub fn save(&self, path: &Path) -> std::io::Result<()> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)?;
        }
        std::fs::write(path, self.to_ron())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum BaselineError {
    #[error("cannot read the baseline {path}: {source}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}:{line}:{column}: not a baseline: {message}")]
    Parse {
        path: String,
        line: usize,
        column: usize,
        message: String,
    },
}

/// How much slower a timing figure may get before it is a regression: both more than
/// `relative_ppm` of the baseline value and more than `floor_us`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Tolerance {
    pub relative_ppm: u64,
    pub floor_us: u64,
}

impl Tolerance {
    /// Parses `"10%"`, `"2.5%"` or a bare fraction `"0.1"`, and a floor such as `"50ms"`.
    pub fn parse(relative: &str, floor: &str) -> Result<Tolerance, String> {
        let relative_ppm = parse_ppm(relative)?;
        let floor = crate::scenario::parse_millis(floor)?;
        Ok(Tolerance {
            relative_ppm,
            floor_us: floor.as_ms() * 1_000,
        })
    }

    /// The change allowed either way around `baseline_us`.
    pub fn allowed_us(&self, baseline_us: u64) -> u64 {
        let relative = u128::from(baseline_us) * u128::from(self.relative_ppm) / 1_000_000;
        u64::try_from(relative)
            .unwrap_or(u64::MAX)
            .max(self.floor_us)
    }
}

/// `"10%"` -> 100_000 ppm; `"0.1"` -> 100_000 ppm; up to 4 decimals.
fn parse_ppm(text: &str) -> Result<u64, String> {
    let bad = || format!("{text:?} is not a tolerance (expected e.g. 10% or 0.1)");
    let trimmed = text.trim();
    let (number, scale_ppm) = match trimmed.strip_suffix('%') {
        Some(percent) => (percent.trim(), 10_000u64),
        None => (trimmed, 1_000_000u64),
    };
    let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
    if whole.is_empty() && fraction.is_empty()
        || fraction.len() > 4
        || !whole
            .chars()
            .chain(fraction.chars())
            .all(|c| c.is_ascii_digit())
    {
        return Err(bad());
    }
    let whole: u64 = if whole.is_empty() {
        0
    } else {
        whole.parse().map_err(|_| bad())?
    };
    let fraction_digits: u64 = if fraction.is_empty() {
        0
    } else {
        fraction.parse().map_err(|_| bad())?
    };
    let fraction_scale = 10u64.pow(fraction.len() as u32);
    whole
        .checked_mul(scale_ppm)
        .and_then(|w| w.checked_add(fraction_digits * scale_ppm / fraction_scale))
        .ok_or_else(bad)
}

/// The verdict on one figure.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum FigureVerdict {
    /// Equal.
    Same,
    /// Different, but by no more than the tolerance.
    Within,
    /// Better than the baseline by more than the tolerance (faster, fewer findings). Runs are
    /// deterministic: a figure that moves this much after an unrelated edit is as much worth a
    /// look as one that got worse.
    Changed,
    /// The baseline had no value (e.g. a stage with no samples then); nothing to compare.
    New,
    Regressed,
}

impl FigureVerdict {
    pub fn name(self) -> &'static str {
        match self {
            FigureVerdict::Same => "same",
            FigureVerdict::Within => "within tolerance",
            FigureVerdict::Changed => "changed",
            FigureVerdict::New => "new",
            FigureVerdict::Regressed => "REGRESSED",
        }
    }
}

/// One row of the comparison.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FigureRow {
    /// e.g. "detect p99 (ms)", "findings: lost_acked".
    pub figure: String,
    pub baseline: String,
    pub now: String,
    pub change: String,
    pub verdict: FigureVerdict,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Comparison {
    pub rows: Vec<FigureRow>,
    /// Differences in what was run (scenario hash, seeds, overrides): they explain changes.
    pub notes: Vec<String>,
}

impl Comparison {
    pub fn regressed(&self) -> bool {
        self.rows
            .iter()
            .any(|r| r.verdict == FigureVerdict::Regressed)
    }

    pub fn count(&self, verdict: FigureVerdict) -> usize {
        self.rows.iter().filter(|r| r.verdict == verdict).count()
    }

    pub fn table(&self) -> Table {
        let mut table = Table::new();
        table
            .load_preset(UTF8_FULL_CONDENSED)
            .set_header(vec!["figure", "baseline", "now", "change", "verdict"]);
        for row in &self.rows {
            let colour = match row.verdict {
                FigureVerdict::Regressed => Color::Red,
                FigureVerdict::Changed => Color::Yellow,
                _ => Color::Reset,
            };
            table.add_row(vec![
                Cell::new(&row.figure),
                Cell::new(&row.baseline),
                Cell::new(&row.now),
                Cell::new(&row.change),
                Cell::new(row.verdict.name()).fg(colour),
            ]);
        }
        table
    }
}

/// Compares a fresh run with the baseline, figure by figure.
pub fn compare(baseline: &Baseline, now: &RunReport, tolerance: Tolerance) -> Comparison {
    let mut rows = Vec::new();
    let mut notes = Vec::new();
    if baseline.scenario_hash != now.scenario_hash || baseline.scenario_file != now.scenario_file {
        notes.push(format!(
            "the scenario file differs from the baseline's: {} (hash {}) now, {} (hash {}) then",
            now.scenario_file, now.scenario_hash, baseline.scenario_file, baseline.scenario_hash
        ));
    }
    if baseline.overrides != now.overrides {
        notes.push(format!(
            "overrides differ: {:?} now, {:?} then",
            now.overrides, baseline.overrides
        ));
    }
    if baseline.seeds != now.seeds {
        notes.push(format!(
            "seeds differ: {} now, {} then",
            seed_summary(&now.seeds),
            seed_summary(&baseline.seeds)
        ));
    }
    let empty = crate::metrics::percentiles(&[]);
    for stage in STAGES {
        let then = baseline.stage(stage).unwrap_or(&empty);
        let current = now.stage(stage).unwrap_or(&empty);
        let figures = [
            ("p50", then.p50_us, current.p50_us),
            ("p90", then.p90_us, current.p90_us),
            ("p99", then.p99_us, current.p99_us),
            ("max", then.max_us, current.max_us),
        ];
        for (name, then_us, now_us) in figures {
            rows.push(timing_row(
                format!("{stage} {name} (ms)"),
                then_us,
                now_us,
                tolerance,
            ));
        }
        rows.push(count_row(
            format!("{stage} not reached"),
            u64::from(then.not_reached),
            u64::from(current.not_reached),
        ));
        if then.samples != current.samples {
            notes.push(format!(
                "{stage}: {} failovers measured now, {} then",
                current.samples, then.samples
            ));
        }
    }
    let now_findings = findings_by_text(now);
    let kinds: BTreeSet<&String> = baseline
        .findings_by_kind
        .keys()
        .chain(now_findings.keys())
        .collect();
    let count =
        |map: &BTreeMap<String, u32>, kind: &str| u64::from(map.get(kind).copied().unwrap_or(0));
    for kind in &kinds {
        rows.push(count_row(
            format!("findings: {kind}"),
            count(&baseline.findings_by_kind, kind),
            count(&now_findings, kind),
        ));
    }
    if kinds.is_empty() {
        rows.push(count_row("findings (all kinds)".into(), 0, 0));
    }
    Comparison { rows, notes }
}

fn seed_summary(seeds: &[u64]) -> String {
    let contiguous = seeds.windows(2).all(|w| w[1] == w[0] + 1);
    match (seeds.first(), seeds.last()) {
        (Some(first), Some(last)) if contiguous => {
            format!("{} seeds {first}..={last}", seeds.len())
        }
        _ => format!("{} seeds {seeds:?}", seeds.len()),
    }
}

fn timing_row(
    figure: String,
    then_us: Option<u64>,
    now_us: Option<u64>,
    tolerance: Tolerance,
) -> FigureRow {
    let (change, verdict) = match (then_us, now_us) {
        (None, None) => ("-".to_string(), FigureVerdict::Same),
        (None, Some(_)) => ("-".to_string(), FigureVerdict::New),
        (Some(_), None) => ("no longer reached".to_string(), FigureVerdict::Regressed),
        (Some(then), Some(now)) => {
            let allowed = tolerance.allowed_us(then);
            let verdict = if now == then {
                FigureVerdict::Same
            } else if now > then.saturating_add(allowed) {
                FigureVerdict::Regressed
            } else if then > now.saturating_add(allowed) {
                FigureVerdict::Changed
            } else {
                FigureVerdict::Within
            };
            (signed_change(then, now), verdict)
        }
    };
    FigureRow {
        figure,
        baseline: ms(then_us),
        now: ms(now_us),
        change,
        verdict,
    }
}

/// "+512.3 ms (+7.9%)"; the percentage is left out when the baseline is 0.
fn signed_change(then_us: u64, now_us: u64) -> String {
    let (sign, delta) = if now_us >= then_us {
        ('+', now_us - then_us)
    } else {
        ('-', then_us - now_us)
    };
    let percent = if then_us == 0 {
        String::new()
    } else {
        format!(" ({sign}{:.1}%)", delta as f64 * 100.0 / then_us as f64)
    };
    format!("{sign}{} ms{percent}", ms(Some(delta)))
}

/// Counts are compared exactly: any rise is a regression.
fn count_row(figure: String, then: u64, now: u64) -> FigureRow {
    let verdict = match now.cmp(&then) {
        std::cmp::Ordering::Greater => FigureVerdict::Regressed,
        std::cmp::Ordering::Less => FigureVerdict::Changed,
        std::cmp::Ordering::Equal => FigureVerdict::Same,
    };
    let change = if now >= then {
        format!("+{}", now - then)
    } else {
        format!("-{}", then - now)
    };
    FigureRow {
        figure,
        baseline: then.to_string(),
        now: now.to_string(),
        change,
        verdict,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tolerance() -> Tolerance {
        Tolerance::parse("10%", "50ms").expect("valid tolerance")
    }

    // Tolerances are written the way people say them; a typo must be refused, not read as 0.
    #[test]
    fn tolerance_parses_percent_and_fraction() {
        assert_eq!(parse_ppm("10%"), Ok(100_000));
        assert_eq!(parse_ppm("2.5%"), Ok(25_000));
        assert_eq!(parse_ppm("0.1"), Ok(100_000));
        assert!(parse_ppm("ten").is_err());
        assert!(parse_ppm("%").is_err());
    }

    // Slower beyond both the relative tolerance and the floor regresses; faster improves; a
    // tiny absolute move on a near-zero figure (the stale-leader window) does neither.
    #[test]
    fn timing_verdicts_use_relative_tolerance_and_floor() {
        let t = tolerance();
        let verdict = |then, now| timing_row("x".into(), Some(then), Some(now), t).verdict;
        assert_eq!(verdict(6_500_000, 7_200_000), FigureVerdict::Regressed);
        assert_eq!(verdict(6_500_000, 7_100_000), FigureVerdict::Within);
        assert_eq!(verdict(6_500_000, 5_500_000), FigureVerdict::Changed);
        assert_eq!(verdict(0, 40_000), FigureVerdict::Within);
        assert_eq!(verdict(0, 60_000), FigureVerdict::Regressed);
        assert_eq!(verdict(5, 5), FigureVerdict::Same);
        assert_eq!(
            timing_row("x".into(), Some(1), None, t).verdict,
            FigureVerdict::Regressed
        );
    }

    // A finding count that rises is a regression however small; one that falls is not.
    #[test]
    fn count_verdicts_are_exact() {
        assert_eq!(
            count_row("f".into(), 0, 1).verdict,
            FigureVerdict::Regressed
        );
        assert_eq!(count_row("f".into(), 2, 1).verdict, FigureVerdict::Changed);
        assert_eq!(count_row("f".into(), 1, 1).verdict, FigureVerdict::Same);
    }
}
