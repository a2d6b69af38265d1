//! The GroupCoordinator's streams group entry points (Kafka's
//! `GroupCoordinatorService.streamsGroupHeartbeat` and
//! `streamsGroupDescribe`): the request checked, the shard locked, this
//! broker's coordination of the group checked.

use kafka_protocol::ResponseError;

use super::{HeartbeatContext, StreamsGroup, StreamsHeartbeatOutcome};
use crate::coordinator::group::api::code;
use crate::coordinator::group::consumer::TopicResolver;
use crate::coordinator::group::GroupCoordinator;
use crate::protocol::streams::StreamsGroupHeartbeatRequest;
use crate::util::now_ms;

impl GroupCoordinator {
    /// StreamsGroupHeartbeat (KIP-1071): the group changes in memory only.
    pub fn streams_group_heartbeat(
        &self,
        r: &StreamsGroupHeartbeatRequest,
        cx: &HeartbeatContext,
        topics: &dyn TopicResolver,
    ) -> StreamsHeartbeatOutcome {
        // Kafka checks the request before it looks for the group's shard.
        if let Err(message) = super::validate(r) {
            return StreamsHeartbeatOutcome::error(ResponseError::InvalidRequest, Some(message));
        }
        let mut shard = self.lock();
        if let Err(e) = self.check_coordinator(&shard, &r.group_id) {
            return StreamsHeartbeatOutcome {
                error: e,
                ..StreamsHeartbeatOutcome::default()
            };
        }
        let groups = &mut shard.groups;
        if groups.groups.contains_key(&r.group_id)
            || groups.consumer_groups.contains_key(&r.group_id)
        {
            return StreamsHeartbeatOutcome::error(
                ResponseError::GroupIdNotFound,
                Some(format!("Group {} is not a streams group.", r.group_id)),
            );
        }
        super::heartbeat(&mut groups.streams_groups, r, cx, topics)
    }

    /// StreamsGroupDescribe of one group (its expired members fenced
    /// first): Err((code, message)).
    pub fn streams_group_describe(
        &self,
        group_id: &str,
        topics: &dyn TopicResolver,
    ) -> Result<StreamsGroup, (i16, Option<String>)> {
        let mut shard = self.lock();
        self.check_coordinator(&shard, group_id)
            .map_err(|e| (e, None))?;
        let Some(g) = shard.groups.streams_groups.get_mut(group_id) else {
            let message = if shard.groups.groups.contains_key(group_id)
                || shard.groups.consumer_groups.contains_key(group_id)
            {
                format!("Group {group_id} is not a streams group.")
            } else {
                format!("Group {group_id} not found.")
            };
            return Err((code(ResponseError::GroupIdNotFound), Some(message)));
        };
        if g.expire_members(now_ms()) {
            super::refresh(g, topics, now_ms());
        }
        Ok(g.clone())
    }
}
