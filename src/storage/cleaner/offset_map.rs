//! Kafka's `SkimpyOffsetMap`: the cleaner's bounded map from a key's
//! 128-bit hash to the latest offset holding that key, sized from
//! `log.cleaner.dedupe.buffer.size`.

use std::collections::hash_map::DefaultHasher;
use std::collections::HashMap;
use std::hash::{Hash, Hasher};

/// Kafka's `SkimpyOffsetMap` spends 24 bytes per slot (16-byte MD5 + 8-byte
/// offset) and fills to `log.cleaner.io.buffer.load.factor` 0.9. A Rust
/// `HashMap<u128, i64>` needs about 32 bytes per entry at its own load
/// factor, so dividing the dedupe buffer by 32 keeps real memory at about
/// the configured size.
pub(super) const BYTES_PER_MAP_ENTRY: usize = 32;

/// Kafka's `OffsetMap`: key hash → last offset seen, bounded.
pub struct OffsetMap {
    map: HashMap<u128, i64>,
    max_entries: usize,
    pub(super) latest_offset: i64,
}

fn hash_key(key: &[u8]) -> u128 {
    // Two independently seeded 64-bit SipHashes: collisions, like Kafka's
    // MD5 ones, are ignored as improbable.
    let mut a = DefaultHasher::new();
    0u8.hash(&mut a);
    key.hash(&mut a);
    let mut b = DefaultHasher::new();
    1u8.hash(&mut b);
    key.hash(&mut b);
    (u128::from(a.finish()) << 64) | u128::from(b.finish())
}

impl OffsetMap {
    /// A map using about `buffer_bytes` of memory (at least one entry).
    pub fn with_buffer_size(buffer_bytes: usize) -> Self {
        OffsetMap {
            map: HashMap::new(),
            max_entries: (buffer_bytes / BYTES_PER_MAP_ENTRY).max(1),
            latest_offset: -1,
        }
    }

    /// Records `offset` as the latest for `key`; false (nothing stored) when
    /// the map is full, as Kafka checks before every put.
    pub(super) fn put(&mut self, key: &[u8], offset: i64) -> bool {
        if self.map.len() >= self.max_entries {
            return false;
        }
        self.map.insert(hash_key(key), offset);
        self.latest_offset = self.latest_offset.max(offset);
        true
    }

    pub(super) fn get(&self, key: &[u8]) -> Option<i64> {
        self.map.get(&hash_key(key)).copied()
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    pub fn latest_offset(&self) -> i64 {
        self.latest_offset
    }
}
