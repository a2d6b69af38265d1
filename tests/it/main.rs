//! kastle's black-box integration tests, as one test binary: every test
//! starts the real `kastle` binary on its own free port with its own
//! temporary data directory and drives it over the Kafka protocol (or its
//! HTTP metrics endpoint, or its command line). One module per area; the
//! shared harness and the request helpers per Kafka API family are in
//! `support`.

mod support;

mod acls;
mod admin;
mod cli;
mod cli_group_member;
mod cli_profiles;
mod cluster;
mod cluster_reads;
mod cluster_txn;
mod compression;
mod configs;
mod console;
mod consumer_groups;
mod dropin;
mod features;
mod fetch_sessions;
mod fuzz_corpus;
mod group_migration;
mod groups;
mod idempotence;
mod internode_security;
mod limits;
mod meta;
mod metrics;
mod overload;
mod produce_errors;
mod protocol;
mod quotas;
mod recovery;
mod retention;
mod sasl;
mod sasl_oauth;
mod sasl_reauth;
mod sasl_stalled;
mod share_dlq;
mod share_groups;
mod share_v2;
mod startup;
mod streams_groups;
mod tls;
mod transactions;
mod txn_offsets;
mod txn_v2;
