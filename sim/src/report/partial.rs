//! Sharded runs: `sim run --shard K/N` runs the seeds at positions ≡ K (mod N) of the run's
//! seed list and writes a partial report; `sim merge` puts N partials back together into the
//! report one unsharded run writes, byte for byte (the seeds' outcomes do not depend on which
//! machine ran them, and the summary is recomputed from all of them).

use crate::report::RunReport;
use crate::run::outcome::SeedOutcome;
use crate::scenario::Scenario;
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

/// Shards per run at most (a sanity bound on `--shard K/N`).
pub const SHARDS_MAX: u32 = 10_000;

/// One shard of a run: `index` of `count`, written `K/N` with 0 ≤ K < N.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Shard {
    pub index: u32,
    pub count: u32,
}

/// A `--shard` value that is not `K/N` with 0 ≤ K < N ≤ `SHARDS_MAX`.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("--shard {text:?}: {why} (expected K/N with 0 <= K < N <= {SHARDS_MAX}, e.g. 0/4)")]
pub struct ShardError {
    pub text: String,
    pub why: &'static str,
}

impl FromStr for Shard {
    type Err = ShardError;
    fn from_str(text: &str) -> Result<Shard, ShardError> {
        let error = |why| ShardError {
            text: text.to_string(),
            why,
        };
        let (index, count) = text.split_once('/').ok_or_else(|| error("no '/'"))?;
        let index: u32 = index
            .trim()
            .parse()
            .map_err(|_| error("K is not a number"))?;
        let count: u32 = count
            .trim()
            .parse()
            .map_err(|_| error("N is not a number"))?;
        if count == 0 || count > SHARDS_MAX {
            return Err(error("N is out of range"));
        }
        if index >= count {
            return Err(error("K must be below N"));
        }
        Ok(Shard { index, count })
    }
}

impl fmt::Display for Shard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

impl Shard {
    /// The seeds of `all` this shard runs: those at positions ≡ index (mod count).
    pub fn seeds(&self, all: &[u64]) -> Vec<u64> {
        all.iter()
            .enumerate()
            .filter(|(position, _)| {
                *position as u64 % u64::from(self.count) == u64::from(self.index)
            })
            .map(|(_, seed)| *seed)
            .collect()
    }
}

/// One seed of a partial report: its outcome and the checker page the report folder gets.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartialSeed {
    pub outcome: SeedOutcome,
    pub html: Option<String>,
}

/// What one shard wrote: enough to check that the shards belong together and to rebuild the
/// whole run's report.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartialReport {
    pub scenario: String,
    pub scenario_file: String,
    pub scenario_hash: String,
    pub variant: Option<String>,
    pub overrides: Vec<(String, String)>,
    pub shard: Shard,
    /// Every seed of the whole run, in its order.
    pub seeds: Vec<u64>,
    pub per_seed: Vec<PartialSeed>,
}

/// Why partial reports do not make one run.
#[derive(Debug, thiserror::Error)]
pub enum MergeError {
    #[error("{path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("{path}:{line}:{column}: not a partial report: {message}")]
    Parse {
        path: String,
        line: usize,
        column: usize,
        message: String,
    },
    #[error("no partial reports given")]
    Empty,
    #[error(
        "{path}: {field} is {found:?}, but {first} has {expected:?}: the shards are not of one run"
    )]
    Mismatch {
        path: String,
        first: String,
        field: &'static str,
        found: String,
        expected: String,
    },
    #[error("shard {shard} is given twice ({first} and {second})")]
    DuplicateShard {
        shard: Shard,
        first: String,
        second: String,
    },
    #[error("shards {missing} of {count} are missing (have: {have})")]
    MissingShards {
        missing: String,
        count: u32,
        have: String,
    },
    #[error("{path}: shard {shard} should hold seeds {expected:?}, but holds {found:?}")]
    WrongSeeds {
        path: String,
        shard: Shard,
        expected: Vec<u64>,
        found: Vec<u64>,
    },
    #[error("{path}: the scenario file changed since the shards ran (hash {found}, partials have {expected}); rerun the shards")]
    ScenarioChanged {
        path: String,
        found: String,
        expected: String,
    },
}

impl PartialReport {
    /// The partial report of one shard's outcomes.
    pub fn new(
        scenario: &Scenario,
        shard: Shard,
        seeds: &[u64],
        outcomes: Vec<SeedOutcome>,
    ) -> PartialReport {
        PartialReport {
            scenario: scenario.name.clone(),
            scenario_file: scenario.file_name.clone(),
            scenario_hash: scenario.source_hash.to_string(),
            variant: scenario.variant.clone(),
            overrides: scenario.overrides.clone(),
            shard,
            seeds: seeds.to_vec(),
            per_seed: outcomes
                .into_iter()
                .map(|outcome| PartialSeed {
                    html: outcome.html.clone(),
                    outcome,
                })
                .collect(),
        }
    }

    /// Where a shard's partial goes: `DIR/<scenario>/partial-K-of-N.ron`.
    pub fn path_in(&self, out_dir: &Path) -> PathBuf {
        out_dir.join(&self.scenario).join(format!(
            "partial-{}-of-{}.ron",
            self.shard.index, self.shard.count
        ))
    }

    pub fn write(&self, out_dir: &Path) -> std::io::Result<PathBuf> {
        let path = self.path_in(out_dir);
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let text = ron::ser::to_string_pretty(self, ron::ser::PrettyConfig::default())
            .map_err(std::io::Error::other)?;
        std::fs::write(&path, text + "\n")?;
        Ok(path)
    }

    pub fn load(path: &Path) -> Result<PartialReport, MergeError> {
        let text = std::fs::read_to_string(path).map_err(|source| MergeError::Read {
            path: path.display().to_string(),
            source,
        })?;
        ron::from_str(&text).map_err(|error| MergeError::Parse {
            path: path.display().to_string(),
            line: error.position.line,
            column: error.position.col,
            message: error.code.to_string(),
        })
    }
}

/// Checks that `partials` (with the files they came from) are every shard of one run, once:
/// the same scenario, variant, overrides and seed list, shards 0..N each once, each holding
/// exactly its seeds. Returns them sorted by shard.
pub fn check_complete(
    mut partials: Vec<(String, PartialReport)>,
) -> Result<Vec<(String, PartialReport)>, MergeError> {
    partials.sort_by_key(|(_, partial)| partial.shard);
    let (first_path, first) = partials.first().ok_or(MergeError::Empty)?.clone();
    for (path, partial) in &partials {
        let fields: [(&'static str, String, String); 6] = [
            ("scenario", partial.scenario.clone(), first.scenario.clone()),
            (
                "scenario_hash",
                partial.scenario_hash.clone(),
                first.scenario_hash.clone(),
            ),
            (
                "variant",
                format!("{:?}", partial.variant),
                format!("{:?}", first.variant),
            ),
            (
                "overrides",
                format!("{:?}", partial.overrides),
                format!("{:?}", first.overrides),
            ),
            (
                "shard count",
                partial.shard.count.to_string(),
                first.shard.count.to_string(),
            ),
            (
                "seeds",
                format!("{:?}", partial.seeds),
                format!("{:?}", first.seeds),
            ),
        ];
        for (field, found, expected) in fields {
            if found != expected {
                return Err(MergeError::Mismatch {
                    path: path.clone(),
                    first: first_path.clone(),
                    field,
                    found,
                    expected,
                });
            }
        }
        let expected = partial.shard.seeds(&partial.seeds);
        let found: Vec<u64> = partial.per_seed.iter().map(|s| s.outcome.seed).collect();
        if found != expected {
            return Err(MergeError::WrongSeeds {
                path: path.clone(),
                shard: partial.shard,
                expected,
                found,
            });
        }
    }
    for pair in partials.windows(2) {
        if pair[0].1.shard == pair[1].1.shard {
            return Err(MergeError::DuplicateShard {
                shard: pair[0].1.shard,
                first: pair[0].0.clone(),
                second: pair[1].0.clone(),
            });
        }
    }
    let have: BTreeSet<u32> = partials.iter().map(|(_, p)| p.shard.index).collect();
    let missing: Vec<String> = (0..first.shard.count)
        .filter(|index| !have.contains(index))
        .map(|index| index.to_string())
        .collect();
    if !missing.is_empty() {
        return Err(MergeError::MissingShards {
            missing: missing.join(", "),
            count: first.shard.count,
            have: have
                .iter()
                .map(u32::to_string)
                .collect::<Vec<_>>()
                .join(", "),
        });
    }
    Ok(partials)
}

/// The report of the whole run from its complete shards (`check_complete`) and the scenario
/// they ran (loaded again, with the same overrides and variant).
pub fn merge(
    scenario: &Scenario,
    partials: Vec<(String, PartialReport)>,
) -> Result<RunReport, MergeError> {
    let partials = check_complete(partials)?;
    let (first_path, first) = &partials[0];
    let hash = scenario.source_hash.to_string();
    if hash != first.scenario_hash {
        return Err(MergeError::ScenarioChanged {
            path: scenario.file_name.clone(),
            found: hash,
            expected: first.scenario_hash.clone(),
        });
    }
    if scenario.name != first.scenario {
        return Err(MergeError::Mismatch {
            path: scenario.file_name.clone(),
            first: first_path.clone(),
            field: "scenario",
            found: scenario.name.clone(),
            expected: first.scenario.clone(),
        });
    }
    let seeds = first.seeds.clone();
    let count = partials.len();
    // Seed at position p is in shard p mod N, at that shard's position p div N.
    let mut shards: Vec<std::vec::IntoIter<PartialSeed>> = partials
        .into_iter()
        .map(|(_, partial)| partial.per_seed.into_iter())
        .collect();
    let outcomes = (0..seeds.len())
        .map(|position| {
            let seed = shards[position % count]
                .next()
                .expect("invariant: check_complete matched every shard's seeds");
            let mut outcome = seed.outcome;
            outcome.html = seed.html;
            outcome
        })
        .collect();
    Ok(RunReport::new(scenario, &seeds, outcomes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_parse_and_split_the_seed_list() {
        let shard: Shard = "1/3".parse().expect("a shard");
        assert_eq!(shard, Shard { index: 1, count: 3 });
        assert_eq!(shard.to_string(), "1/3");
        assert_eq!(shard.seeds(&[10, 11, 12, 13, 14, 15, 16]), vec![11, 14]);
        for (bad, why) in [
            ("3/3", "K must be below N"),
            ("0/0", "N is out of range"),
            ("1", "no '/'"),
            ("a/2", "K is not a number"),
            ("0/99999", "N is out of range"),
        ] {
            let error = bad.parse::<Shard>().expect_err("not a shard");
            assert_eq!(error.why, why, "{bad}");
            assert!(error.to_string().contains(bad));
        }
    }
}
