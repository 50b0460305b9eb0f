//! One file per subcommand, siblings that never import each other, over `common` (the shared
//! options and helpers). `main.rs` only parses arguments and maps errors to exit codes.

pub mod check_history;
pub mod common;
pub mod compare;
pub mod findability;
pub mod merge;
pub mod regress;
pub mod replay;
pub mod run;
pub mod shrink;
pub mod sweep;
