//! Coordinators: broker-side state machines that clients address through
//! FindCoordinator. For now the GroupCoordinator (classic consumer groups
//! and committed offsets); the transaction coordinator will live beside it.

pub mod group;
pub mod txn;
