//! Small utilities every layer may use: the wall clock in Kafka's unit,
//! crash-safe file replacement and RE2-syntax whole-string patterns. Nothing
//! here knows about Kafka's protocol or the broker's state.

pub mod fs;
pub mod re2;
pub mod shutdown;
pub mod time;

pub use time::now_ms;
