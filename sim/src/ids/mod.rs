//! Identities and units shared by every layer of the simulator, at the bottom of the layering:
//! simulated time as a microseconds newtype, and the typed identity of a queue. Text forms
//! (`g0/orders/1`, `p3-17#1`) exist only at the file and terminal boundary.

mod finding;
mod queue;
mod time;

pub use finding::{FindingKind, UnknownFindingKind};
pub use queue::{attempt_body, message_of_body, QueueId, QueueIdError};
pub use time::SimTime;
