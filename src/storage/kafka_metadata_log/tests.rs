//! Tests of the Kafka metadata log reader.
