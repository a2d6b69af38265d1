//! The active controller's mutation quota (KIP-599, Kafka's
//! `ControllerMutationQuotaManager` as the controller keeps it): the
//! partitions a client creates, deletes or adds are charged to its
//! user/client-id `controller_mutation_rate`, read from the metadata
//! image's client quotas. Brokers forward a client's CreateTopics,
//! DeleteTopics and CreatePartitions in an Envelope naming the client, so
//! the client is charged wherever it connected; a request without one (a
//! broker's own internal or auto-created topics) is not charged.

use std::sync::Mutex;

use crate::broker::quota_managers::{ControllerMutationQuota, QuotaManagers};
use crate::broker::quotas::QuotaMap;
use crate::config::BrokerConfig;
use crate::metadata::MetadataImage;

pub struct ControllerMutationQuotaManager {
    managers: QuotaManagers,
    /// The client quotas last put in force (the image's, when it changes).
    applied: Mutex<QuotaMap>,
}

impl ControllerMutationQuotaManager {
    pub fn new(config: &BrokerConfig) -> ControllerMutationQuotaManager {
        ControllerMutationQuotaManager {
            managers: QuotaManagers::new(config),
            applied: Mutex::new(QuotaMap::new()),
        }
    }

    /// The quota of one request from `client` (the user principal's name
    /// and the client id an Envelope names) decided over `image`: strict
    /// (refusing once exhausted) or permissive by the request's version;
    /// unbounded without a client (a broker's own request).
    pub fn quota_for(
        &self,
        image: &MetadataImage,
        client: Option<(&str, &str)>,
        strict: bool,
    ) -> ControllerMutationQuota<'_> {
        let Some((user, client_id)) = client else {
            return self.managers.unbounded_mutation_quota();
        };
        {
            let mut applied = self.applied.lock().unwrap_or_else(|p| p.into_inner());
            if *applied != image.client_quotas.0 {
                self.managers.update(&image.client_quotas.0);
                *applied = image.client_quotas.0.clone();
            }
        }
        self.managers.mutation_quota(user, client_id, strict)
    }

    /// The throttle a response carries for `quota`, counted on its sensor.
    pub fn finish(&self, quota: &ControllerMutationQuota<'_>) -> i32 {
        let ms = quota.throttle_time_ms();
        quota.count_throttle(ms);
        ms
    }
}
