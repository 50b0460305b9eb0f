//! One seed's evaluation: `SeedRun -> evaluate -> SeedOutcome` (the report layer judges the
//! outcomes against the scenario's expectations).

pub mod evaluate;
pub mod outcome;
