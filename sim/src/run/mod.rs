//! One run of a scenario: one seed played from start to settled (`seed`), many seeds on
//! threads (`seeds`), and each seed's evaluation, `SeedRun -> evaluate -> SeedOutcome`
//! (`evaluate`, `outcome`; the report layer judges the outcomes against the expectations).

pub mod elections;
pub mod evaluate;
pub mod outcome;
pub mod seed;
pub mod seeds;
mod settle;
pub mod spec;

pub use seed::{run_seed, SeedRun};
pub use spec::{RunSpec, UnsupportedScenario};
