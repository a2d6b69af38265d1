//! A cluster broker's configs follow the metadata image (Kafka's
//! `DynamicConfigPublisher`): the BROKER ConfigRecords of the cluster
//! default ("") and of this node feed its `DynamicBrokerConfig` (layered
//! over the static configuration, reconfigurables notified), and each
//! topic's ConfigRecords become the explicit configs of its local log, in
//! effect on every local partition as an altered config is on a standalone
//! node. Called from the metadata callback in `server/cluster.rs`.

use crate::broker::dynamic_config::DynamicBrokerConfig;
use crate::broker::replica_manager::ReplicaManager;
use crate::metadata::image::CONFIG_RESOURCE_TOPIC;
use crate::metadata::MetadataImage;

/// `ConfigResource.Type.BROKER`.
const CONFIG_RESOURCE_BROKER: i8 = 4;

/// Applies `image`'s configs to this broker: broker configs first (topics
/// without an override follow the new defaults), then every local topic
/// whose explicit configs differ from the image's.
pub fn apply_configs(
    image: &MetadataImage,
    node_id: i32,
    dynamic: &DynamicBrokerConfig,
    replicas: &ReplicaManager,
) {
    let broker = |name: String| {
        image
            .configs
            .get(&(CONFIG_RESOURCE_BROKER, name))
            .cloned()
            .unwrap_or_default()
    };
    dynamic.apply_image(broker(String::new()), broker(node_id.to_string()));
    for topic in replicas.topics.list() {
        // Only the log of the image's topic of that name (a deleted
        // topic's old log is replaced by the replica changes).
        if image.topic_ids.get(&topic.name) != Some(&topic.id) {
            continue;
        }
        let configs = image
            .configs
            .get(&(CONFIG_RESOURCE_TOPIC, topic.name.clone()))
            .cloned()
            .unwrap_or_default();
        if let Err(e) = replicas.topics.apply_image_configs(&topic.name, &configs) {
            tracing::error!(topic = %topic.name, "applying the image's topic configs: {}", e.message);
        }
    }
}
