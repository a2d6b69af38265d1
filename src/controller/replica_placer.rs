//! `StripedReplicaPlacer`: Kafka's rack-aware replica placement. Brokers
//! are grouped by rack; each partition's leader comes from the next rack
//! in turn (an unfenced broker), its followers from the following racks,
//! so replicas spread over racks and leaders over brokers. Brokers in
//! controlled shutdown are not usable; fenced ones may hold followers
//! only. Randomness is Java's `java.util.Random` algorithm from a seed the
//! caller gives, so a placement is reproducible (Kafka seeds from the
//! clock; rack initialisation here runs in rack-name order where Java's
//! follows its HashMap).

use std::collections::BTreeMap;

use crate::metadata::MetadataImage;

/// `java.util.Random` (48-bit LCG), so shuffles match Java's algorithm.
pub struct JavaRandom {
    seed: u64,
}

const MULTIPLIER: u64 = 0x5_DEEC_E66D;
const MASK: u64 = (1 << 48) - 1;

impl JavaRandom {
    pub fn new(seed: u64) -> Self {
        JavaRandom {
            seed: (seed ^ MULTIPLIER) & MASK,
        }
    }

    fn next(&mut self, bits: u32) -> i32 {
        self.seed = (self.seed.wrapping_mul(MULTIPLIER).wrapping_add(0xB)) & MASK;
        (self.seed >> (48 - bits)) as i32
    }

    /// `nextInt(bound)`, bound > 0.
    pub fn next_int(&mut self, bound: i32) -> i32 {
        if bound <= 1 {
            return 0;
        }
        if bound & (bound - 1) == 0 {
            return ((i64::from(bound) * i64::from(self.next(31))) >> 31) as i32;
        }
        loop {
            let bits = self.next(31);
            let val = bits % bound;
            if bits.wrapping_sub(val).wrapping_add(bound - 1) >= 0 {
                return val;
            }
        }
    }

    /// `Collections.shuffle(list, random)`.
    pub fn shuffle<T>(&mut self, v: &mut [T]) {
        for i in (1..v.len()).rev() {
            let j = self.next_int(i as i32 + 1) as usize;
            v.swap(i, j);
        }
    }
}

/// Why a placement is impossible (Kafka's InvalidReplicationFactorException
/// message).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlacementError(pub String);

#[derive(Default)]
struct BrokerList {
    brokers: Vec<i32>,
    index: usize,
    offset: usize,
    epoch: usize,
}

impl BrokerList {
    fn initialize(&mut self, random: &mut JavaRandom) {
        if !self.brokers.is_empty() {
            self.brokers.sort_unstable();
            self.offset = random.next_int(self.brokers.len() as i32) as usize;
        }
    }

    fn next(&mut self, epoch: usize) -> Option<i32> {
        if self.brokers.is_empty() {
            return None;
        }
        if self.epoch != epoch {
            self.epoch = epoch;
            self.index = 0;
            self.offset = (self.offset + 1) % self.brokers.len();
        }
        if self.index >= self.brokers.len() {
            return None;
        }
        let b = self.brokers[(self.index + self.offset) % self.brokers.len()];
        self.index += 1;
        Some(b)
    }
}

#[derive(Default)]
struct Rack {
    fenced: BrokerList,
    unfenced: BrokerList,
}

impl Rack {
    fn next(&mut self, epoch: usize) -> Option<i32> {
        self.unfenced
            .next(epoch)
            .or_else(|| self.fenced.next(epoch))
    }
}

struct RackList {
    random: JavaRandom,
    racks: BTreeMap<Option<String>, Rack>,
    rack_names: Vec<Option<String>>,
    num_total: usize,
    num_unfenced: usize,
    epoch: usize,
    offset: usize,
}

impl RackList {
    fn new(image: &MetadataImage, seed: u64) -> Self {
        let mut random = JavaRandom::new(seed);
        let mut racks: BTreeMap<Option<String>, Rack> = BTreeMap::new();
        let (mut num_total, mut num_unfenced) = (0, 0);
        for b in image.brokers.values().filter(|b| !b.in_controlled_shutdown) {
            let rack = racks.entry(b.rack.clone()).or_default();
            if b.fenced {
                rack.fenced.brokers.push(b.id);
            } else {
                num_unfenced += 1;
                rack.unfenced.brokers.push(b.id);
            }
            num_total += 1;
        }
        for rack in racks.values_mut() {
            rack.fenced.initialize(&mut random);
            rack.unfenced.initialize(&mut random);
        }
        // None sorts first, as Kafka's OptionalStringComparator.
        let rack_names: Vec<Option<String>> = racks.keys().cloned().collect();
        let offset = if rack_names.is_empty() {
            0
        } else {
            random.next_int(rack_names.len() as i32) as usize
        };
        RackList {
            random,
            racks,
            rack_names,
            num_total,
            num_unfenced,
            epoch: 0,
            offset,
        }
    }

    fn shuffle(&mut self) {
        self.random.shuffle(&mut self.rack_names);
        for rack in self.racks.values_mut() {
            self.random.shuffle(&mut rack.fenced.brokers);
            self.random.shuffle(&mut rack.unfenced.brokers);
        }
    }

    fn rack(&mut self, i: usize) -> Option<&mut Rack> {
        let name = self.rack_names.get(i)?;
        self.racks.get_mut(name)
    }

    fn place(&mut self, replication_factor: usize) -> Result<Vec<i32>, PlacementError> {
        check(replication_factor, self.num_total, self.num_unfenced)?;
        if self.epoch == self.num_unfenced && self.num_unfenced > 1 {
            self.shuffle();
            self.epoch = 0;
        }
        let n = self.rack_names.len();
        if self.offset == n {
            self.offset = 0;
        }
        let epoch = self.epoch;
        let mut brokers = Vec::with_capacity(replication_factor);
        // The leader: the next unfenced broker, starting at this rack.
        let mut first_rack;
        let mut i = self.offset;
        // Some rack has an unfenced broker left this epoch (epoch < unfenced).
        let mut tries = 0;
        loop {
            if let Some(b) = self.rack(i).and_then(|r| r.unfenced.next(epoch)) {
                brokers.push(b);
                first_rack = Some(i);
                break;
            }
            i = (i + 1) % n;
            tries += 1;
            if tries > n * (self.num_total + 1) {
                return Err(PlacementError("All brokers are currently fenced.".into()));
            }
        }
        let mut rack_index = self.offset;
        for _ in 1..replication_factor {
            let mut tries = 0;
            let found = loop {
                let mut result = None;
                if Some(rack_index) == first_rack {
                    first_rack = None;
                } else {
                    result = self.rack(rack_index).and_then(|r| r.next(epoch));
                }
                rack_index = (rack_index + 1) % n;
                if result.is_some() {
                    break result;
                }
                tries += 1;
                if tries > n * (self.num_total + 1) {
                    break None;
                }
            };
            match found {
                Some(b) => brokers.push(b),
                None => {
                    return Err(PlacementError(format!(
                        "The target replication factor of {replication_factor} cannot be reached because only {} broker(s) are registered.",
                        self.num_total
                    )))
                }
            }
        }
        self.epoch += 1;
        self.offset += 1;
        Ok(brokers)
    }
}

/// Kafka's checks, in its order.
fn check(rf: usize, total: usize, unfenced: usize) -> Result<(), PlacementError> {
    if rf == 0 {
        return Err(PlacementError(format!(
            "Invalid replication factor {rf}: the replication factor must be positive."
        )));
    }
    if unfenced == 0 {
        return Err(PlacementError("All brokers are currently fenced.".into()));
    }
    if rf > total {
        return Err(PlacementError(format!(
            "The target replication factor of {rf} cannot be reached because only {total} broker(s) are registered."
        )));
    }
    Ok(())
}

/// Places `num_partitions` partitions of `replication_factor` replicas over
/// the image's usable brokers (`StripedReplicaPlacer.place`).
pub fn place(
    image: &MetadataImage,
    num_partitions: usize,
    replication_factor: usize,
    seed: u64,
) -> Result<Vec<Vec<i32>>, PlacementError> {
    let mut racks = RackList::new(image, seed);
    check(replication_factor, racks.num_total, racks.num_unfenced)?;
    (0..num_partitions)
        .map(|_| racks.place(replication_factor))
        .collect()
}

/// A seed derived from what is being placed (FNV-1a over the topic name and
/// the first partition id), so a decision is a pure function of its input.
pub fn seed_for(topic: &str, start_partition: i32) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in topic.bytes().chain(start_partition.to_be_bytes()) {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}
