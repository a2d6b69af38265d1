//! Shared harness of the integration tests, split by concern: the broker
//! process guard (`broker`), the raw client (`client`), record batches
//! (`batch`), and small helpers every area uses.

mod batch;
mod broker;
mod client;

pub use batch::*;
pub use broker::*;
pub use client::*;

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::Path;

/// Kafka error codes come from the protocol crate:
/// `E::UnknownTopicOrPartition.code()`.
pub use kafka_protocol::ResponseError as E;

/// The error code of success, which `ResponseError` has no variant for.
pub const NONE: i16 = 0;

pub fn sb(s: &str) -> kafka_protocol::protocol::StrBytes {
    kafka_protocol::protocol::StrBytes::from_string(s.to_string())
}

pub fn tn(s: &str) -> kafka_protocol::messages::TopicName {
    kafka_protocol::messages::TopicName(sb(s))
}

/// Creates a topic (CreateTopics v7, default replication factor) with
/// explicit configs, and asserts it was created.
pub fn create_topic_with(c: &mut Client, name: &str, partitions: i32, configs: &[(&str, &str)]) {
    use kafka_protocol::messages::create_topics_request::{
        CreatableTopic, CreatableTopicConfig, CreateTopicsRequest,
    };
    let topic = CreatableTopic::default()
        .with_name(tn(name))
        .with_num_partitions(partitions)
        .with_replication_factor(-1)
        .with_configs(
            configs
                .iter()
                .map(|(k, v)| {
                    CreatableTopicConfig::default()
                        .with_name(sb(k))
                        .with_value(Some(sb(v)))
                })
                .collect(),
        );
    let req = CreateTopicsRequest::default()
        .with_topics(vec![topic])
        .with_timeout_ms(10_000);
    let r = c.call(7, &req);
    assert_eq!(r.topics.len(), 1);
    assert_eq!(
        r.topics[0].error_code, 0,
        "create {name} {configs:?}: {:?}",
        r.topics[0].error_message
    );
}

/// Append bytes to a file (for crash-recovery tests).
pub fn append_to(path: &Path, bytes: &[u8]) {
    let mut f = OpenOptions::new()
        .append(true)
        .open(path)
        .expect("open for append");
    f.write_all(bytes).unwrap();
    f.sync_all().unwrap();
}

pub fn truncate_to(path: &Path, len: u64) {
    let f = File::options()
        .write(true)
        .open(path)
        .expect("open for truncate");
    f.set_len(len).unwrap();
    f.sync_all().unwrap();
}

/// Deterministic xorshift64* PRNG.
pub struct Rng(pub u64);

impl Rng {
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }
    pub fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next_u64() as u8).collect()
    }
}
