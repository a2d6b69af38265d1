//! Tests of the Kafka metadata import.
