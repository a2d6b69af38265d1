//! The network edge: listeners, connections, Kafka framing. Bytes in, bytes
//! out; what a request means is the handlers' business.

pub mod authenticator;
pub mod connection;
pub mod connection_quotas;
pub mod frame;
pub mod memory_pool;
pub mod server;
pub mod tls;
