//! The Kafka wire protocol as kastle speaks it: request headers, the table of
//! supported API versions, the schema walker that vets request bodies before
//! the `kafka-protocol` crate decodes them, and response framing.
//!
//! Nothing here touches broker state; handlers build on these pieces.

pub mod delete_groups;
pub mod describe_log_dirs;
pub mod fields;
pub mod header;
pub mod offsets_by_id;
pub mod response;
pub mod same_as;
pub mod schema;
pub mod share_group_offsets;
pub mod share_v2;
pub mod streams;
pub mod versions;
pub mod wire;
pub mod write_txn_markers;

pub use header::{parse_request_header, RequestHeader};
