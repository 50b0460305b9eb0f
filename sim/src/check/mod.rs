//! History checks (being written).
