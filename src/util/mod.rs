//! Small utilities every layer may use: the wall clock in Kafka's unit and
//! crash-safe file replacement. Nothing here knows about Kafka's protocol or
//! the broker's state.

pub mod fs;
pub mod shutdown;
pub mod time;

pub use time::now_ms;
