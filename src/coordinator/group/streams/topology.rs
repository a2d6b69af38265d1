//! A streams group's topology configured against the broker's topics
//! (Kafka's `InternalTopicManager.configureTopics`): source topics must
//! exist, repartition topics get their partition counts (declared, else
//! the largest input of the subtopology writing them), copartition groups
//! are enforced, changelog topics get their subtopology's task count, and
//! internal topics that do not exist yet are listed for creation.

use std::collections::{BTreeMap, BTreeSet};

use crate::coordinator::group::consumer::TopicResolver;
use crate::protocol::streams::{status, Subtopology, TopicInfo};

/// Why a topology cannot run yet: a heartbeat status code and its detail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicConfigurationError {
    pub status: i8,
    pub detail: String,
}

/// An internal topic to create (Kafka's `CreatableTopic`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InternalTopic {
    pub name: String,
    pub partitions: i32,
    /// -1: the broker's default.
    pub replication_factor: i16,
    pub configs: Vec<(String, String)>,
}

/// The outcome of configuring a topology.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ConfiguredTopology {
    /// Tasks per subtopology; empty unless the topology is ready.
    pub tasks: BTreeMap<String, i32>,
    pub error: Option<TopicConfigurationError>,
    pub to_create: Vec<InternalTopic>,
}

impl ConfiguredTopology {
    pub fn is_ready(&self) -> bool {
        self.error.is_none()
    }
}

fn config_error(status: i8, detail: String) -> TopicConfigurationError {
    TopicConfigurationError { status, detail }
}

/// The partition count of a topic: the broker's, else one decided here.
fn count(topics: &dyn TopicResolver, decided: &BTreeMap<String, i32>, t: &str) -> Option<i32> {
    topics
        .by_name(t)
        .map(|(_, n)| n)
        .or_else(|| decided.get(t).copied())
}

/// Kafka's `configureTopics`. An invalid topology (a repartition topic no
/// subtopology writes, a cycle) is a STREAMS_INVALID_TOPOLOGY error: Err.
pub fn configure(
    subtopologies: &[Subtopology],
    topics: &dyn TopicResolver,
) -> Result<ConfiguredTopology, String> {
    let failed = |e: TopicConfigurationError| ConfiguredTopology {
        error: Some(e),
        ..ConfiguredTopology::default()
    };
    // 1. Source topics must exist.
    let missing: BTreeSet<&str> = subtopologies
        .iter()
        .flat_map(|s| s.source_topics.iter())
        .filter(|t| topics.by_name(t).is_none())
        .map(String::as_str)
        .collect();
    if !missing.is_empty() {
        let names: Vec<&str> = missing.into_iter().collect();
        return Ok(failed(config_error(
            status::MISSING_SOURCE_TOPICS,
            format!("Source topics {} are missing.", names.join(", ")),
        )));
    }
    // 2. Repartition topics: declared counts, then the largest input of the
    // subtopology that writes each, until every count is known.
    let mut decided: BTreeMap<String, i32> = BTreeMap::new();
    for s in subtopologies {
        for r in &s.repartition_source_topics {
            if r.partitions != 0 {
                decided.insert(r.name.clone(), r.partitions);
            }
        }
    }
    loop {
        let mut needed = false;
        let mut progress = false;
        for s in subtopologies {
            for sink in &s.repartition_sink_topics {
                if decided.contains_key(sink) {
                    continue;
                }
                let inputs = s
                    .source_topics
                    .iter()
                    .chain(s.repartition_source_topics.iter().map(|r| &r.name))
                    .filter_map(|t| count(topics, &decided, t))
                    .max();
                match inputs {
                    Some(n) => {
                        decided.insert(sink.clone(), n);
                        progress = true;
                    }
                    None => needed = true,
                }
            }
        }
        if !needed {
            break;
        }
        if !progress {
            return Err(
                "Failed to compute number of partitions for all repartition topics. \
                        There may be loops in the topology that cannot be resolved."
                    .to_string(),
            );
        }
    }
    if subtopologies.iter().any(|s| {
        s.repartition_source_topics
            .iter()
            .any(|r| !decided.contains_key(&r.name))
    }) {
        return Err(
            "Failed to compute number of partitions for all repartition topics, because \
                    a repartition source topic is never used as a sink topic."
                .to_string(),
        );
    }
    // 3. Copartition groups: one partition count; a repartition topic
    // without a declared count takes the group's.
    let declared: BTreeSet<&str> = subtopologies
        .iter()
        .flat_map(|s| s.repartition_source_topics.iter())
        .filter(|r| r.partitions != 0)
        .map(|r| r.name.as_str())
        .collect();
    for s in subtopologies {
        for g in &s.copartition_groups {
            let mut members: BTreeSet<String> = BTreeSet::new();
            for i in &g.source_topics {
                if let Some(t) = usize::try_from(*i)
                    .ok()
                    .and_then(|i| s.source_topics.get(i))
                {
                    members.insert(t.clone());
                }
            }
            for i in &g.repartition_source_topics {
                if let Some(t) = usize::try_from(*i)
                    .ok()
                    .and_then(|i| s.repartition_source_topics.get(i))
                {
                    members.insert(t.name.clone());
                }
            }
            let flexible_set: BTreeSet<String> = members
                .iter()
                .filter(|t| {
                    topics.by_name(t).is_none()
                        && !declared.contains(t.as_str())
                        && decided.contains_key(*t)
                })
                .cloned()
                .collect();
            let flexible = |t: &str| flexible_set.contains(t);
            let fixed: BTreeMap<&str, i32> = members
                .iter()
                .filter(|t| !flexible(t))
                .filter_map(|t| count(topics, &decided, t).map(|n| (t.as_str(), n)))
                .collect();
            let counts: BTreeSet<i32> = fixed.values().copied().collect();
            if counts.len() > 1 {
                let names: Vec<&str> = fixed.keys().copied().collect();
                return Ok(failed(config_error(
                    status::INCORRECTLY_PARTITIONED_TOPICS,
                    format!(
                        "Following topics do not have the same number of partitions: [{}]",
                        names.join(", ")
                    ),
                )));
            }
            let target = match counts.first() {
                Some(n) => *n,
                None => members
                    .iter()
                    .filter_map(|t| decided.get(t))
                    .copied()
                    .max()
                    .unwrap_or(0),
            };
            for t in members.iter().filter(|t| flexible(t)) {
                decided.insert(t.clone(), target);
            }
        }
    }
    // 4. Tasks per subtopology, and changelog topics sized to them.
    let mut tasks = BTreeMap::new();
    let mut internal: Vec<(&TopicInfo, i32)> = Vec::new();
    for s in subtopologies {
        let n = s
            .source_topics
            .iter()
            .chain(s.repartition_source_topics.iter().map(|r| &r.name))
            .filter_map(|t| count(topics, &decided, t))
            .max()
            .unwrap_or(0);
        tasks.insert(s.subtopology_id.clone(), n);
        for r in &s.repartition_source_topics {
            internal.push((r, decided.get(&r.name).copied().unwrap_or(n)));
        }
        for c in &s.state_changelog_topics {
            internal.push((c, n));
        }
    }
    // 5. Internal topics: existing ones must have the decided count.
    let mut to_create = Vec::new();
    for (info, partitions) in internal {
        match topics.by_name(&info.name) {
            Some((_, found)) if found != partitions => {
                return Ok(failed(config_error(
                    status::INCORRECTLY_PARTITIONED_TOPICS,
                    format!(
                        "Existing topic {} has different number of partitions: expected {partitions}, found {found}",
                        info.name
                    ),
                )));
            }
            Some(_) => {}
            None if to_create
                .iter()
                .any(|t: &InternalTopic| t.name == info.name) => {}
            None => to_create.push(InternalTopic {
                name: info.name.clone(),
                partitions,
                replication_factor: if info.replication_factor == 0 {
                    -1
                } else {
                    info.replication_factor
                },
                configs: info
                    .topic_configs
                    .iter()
                    .map(|kv| (kv.key.clone(), kv.value.clone()))
                    .collect(),
            }),
        }
    }
    if !to_create.is_empty() {
        let names: Vec<&str> = to_create.iter().map(|t| t.name.as_str()).collect();
        return Ok(ConfiguredTopology {
            tasks: BTreeMap::new(),
            error: Some(config_error(
                status::MISSING_INTERNAL_TOPICS,
                format!("Internal topics are missing: [{}]", names.join(", ")),
            )),
            to_create,
        });
    }
    Ok(ConfiguredTopology {
        tasks,
        error: None,
        to_create,
    })
}
