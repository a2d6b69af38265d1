//! The GroupCoordinator's streams group entry points (Kafka's
//! `GroupCoordinatorService.streamsGroupHeartbeat` and
//! `streamsGroupDescribe`): the request checked, the shard locked, this
//! broker's coordination of the group checked, and what changed written
//! to `__consumer_offsets` (a failed write undoes the change).

use std::collections::BTreeMap;

use kafka_protocol::ResponseError;

use super::{records, HeartbeatContext, StreamsGroup, StreamsHeartbeatOutcome};
use crate::coordinator::group::api::code;
use crate::coordinator::group::classic_group::GroupState;
use crate::coordinator::group::consumer::TopicResolver;
use crate::coordinator::group::record_serde;
use crate::coordinator::group::timers::TimerKey;
use crate::coordinator::group::writer::{
    map_append_error, CoordRecord, CoordinatorWriter, DurableWait,
};
use crate::coordinator::group::GroupCoordinator;
use crate::protocol::streams::StreamsGroupHeartbeatRequest;
use crate::util::now_ms;

impl GroupCoordinator {
    /// StreamsGroupHeartbeat (KIP-1071), with the write the answer must
    /// wait for.
    pub fn streams_group_heartbeat(
        &self,
        r: &StreamsGroupHeartbeatRequest,
        cx: &HeartbeatContext,
        topics: &dyn TopicResolver,
    ) -> (StreamsHeartbeatOutcome, Option<DurableWait>) {
        // Kafka checks the request before it looks for the group's shard.
        if let Err(message) = super::validate(r) {
            let e = StreamsHeartbeatOutcome::error(ResponseError::InvalidRequest, Some(message));
            return (e, None);
        }
        let mut shard = self.lock();
        if let Err(e) = self.check_coordinator(&shard, &r.group_id) {
            let e = StreamsHeartbeatOutcome {
                error: e,
                ..StreamsHeartbeatOutcome::default()
            };
            return (e, None);
        }
        let gmm = &mut shard.groups;
        // Kafka 4.4's getOrCreateStreamsGroup: an empty classic group (one
        // with offsets only) becomes a streams group when a member joins;
        // any other group of that id is not a streams group.
        let mut classic_tombstone = false;
        let mut other_type = false;
        if !gmm.streams_groups.contains_key(&r.group_id) {
            let empty_classic = gmm
                .groups
                .get(&r.group_id)
                .map(|c| c.is(GroupState::Empty) && c.members.is_empty());
            let other = gmm.consumer_groups.contains_key(&r.group_id)
                || gmm.share_groups.groups.contains_key(&r.group_id);
            match empty_classic {
                Some(true) if r.member_epoch == 0 => classic_tombstone = true,
                Some(_) => other_type = true,
                None => other_type = other,
            }
        }
        if other_type {
            let e = StreamsHeartbeatOutcome::error(
                ResponseError::GroupIdNotFound,
                Some(format!("Group {} is not a streams group.", r.group_id)),
            );
            return (e, None);
        }
        let groups = &mut gmm.streams_groups;
        let before = groups.get(&r.group_id).cloned();
        let out = super::heartbeat(groups, &mut gmm.timers, r, cx, topics);
        if groups
            .get(&r.group_id)
            .is_some_and(|g| g.initial_rebalance_timer.is_some())
        {
            // The timer task sleeps until its earliest deadline.
            self.timer_wake.notify_one();
        }
        let written = persist(&self.writer, groups, &r.group_id, before, classic_tombstone);
        if classic_tombstone && written.is_ok() && groups.contains_key(&r.group_id) {
            gmm.groups.remove(&r.group_id);
            tracing::info!(group = %r.group_id, "converted the empty classic group to a streams group");
        }
        match written {
            Ok(wait) => (out, wait),
            Err(e) => (
                StreamsHeartbeatOutcome {
                    error: e,
                    ..StreamsHeartbeatOutcome::default()
                },
                None,
            ),
        }
    }

    /// StreamsGroupDescribe of one group (its expired members fenced
    /// first, a group replayed from the log configured against the topics;
    /// either is written, not waited for): Err((code, message)).
    pub fn streams_group_describe(
        &self,
        group_id: &str,
        topics: &dyn TopicResolver,
    ) -> Result<StreamsGroup, (i16, Option<String>)> {
        let mut shard = self.lock();
        self.check_coordinator(&shard, group_id)
            .map_err(|e| (e, None))?;
        let groups = &mut shard.groups;
        let Some(g) = groups.streams_groups.get_mut(group_id) else {
            let message = if groups.groups.contains_key(group_id)
                || groups.consumer_groups.contains_key(group_id)
            {
                format!("Group {group_id} is not a streams group.")
            } else {
                format!("Group {group_id} not found.")
            };
            return Err((code(ResponseError::GroupIdNotFound), Some(message)));
        };
        let before = g.clone();
        if g.expire_members(now_ms()) || g.loaded {
            super::refresh(g, topics, now_ms());
        }
        let after = g.clone();
        if let Err(e) = persist(
            &self.writer,
            &mut groups.streams_groups,
            group_id,
            Some(before.clone()),
            false,
        ) {
            tracing::warn!(group = %group_id, error = e, "writing the streams group's fenced members failed");
            return Ok(before);
        }
        Ok(after)
    }
}

/// Writes the records that take group `gid` from `before` to what it is
/// now (after the tombstone of the classic group it replaces, if
/// `classic_tombstone`); if they cannot be written the group goes back to
/// `before`. Err: the error code of the failed write.
fn persist(
    writer: &CoordinatorWriter,
    groups: &mut BTreeMap<String, StreamsGroup>,
    gid: &str,
    before: Option<StreamsGroup>,
    classic_tombstone: bool,
) -> Result<Option<DurableWait>, i16> {
    // A group a failed first heartbeat created is not kept.
    if before.is_none() && groups.get(gid).is_some_and(|g| g.members.is_empty()) {
        groups.remove(gid);
        return Ok(None);
    }
    let recs = records::diff(gid, before.as_ref(), groups.get(gid));
    if recs.is_empty() {
        return Ok(None);
    }
    let classic = classic_tombstone.then(|| record_serde::group_key(gid).map(|k| (k, None)));
    let raw: Result<Vec<CoordRecord>, _> = classic
        .into_iter()
        .chain(recs.iter().map(|r| r.encode()))
        .collect();
    let written = match raw {
        Ok(raw) => writer
            .append(gid, &raw)
            .map_err(|e| map_append_error(e, false)),
        Err(e) => {
            tracing::warn!(group = %gid, error = %e, "a streams group record cannot be serialized");
            Err(code(ResponseError::UnknownServerError))
        }
    };
    if written.is_err() {
        match before {
            Some(b) => groups.insert(gid.to_string(), b),
            None => groups.remove(gid),
        };
    }
    written.map(Some)
}

/// A streams group's initial rebalance delay ended (the coordinator's
/// timer task): its target assignment computed and written, not waited
/// for (Kafka's `computeDelayedTargetAssignment`).
pub fn on_initial_rebalance_timer(
    writer: &CoordinatorWriter,
    groups: &mut BTreeMap<String, StreamsGroup>,
    gid: &str,
    key: TimerKey,
) {
    let Some(g) = groups.get_mut(gid) else {
        return;
    };
    let before = g.clone();
    if !g.on_initial_rebalance_timer(key, now_ms()) {
        return;
    }
    if let Err(e) = persist(writer, groups, gid, Some(before), false) {
        tracing::warn!(group = %gid, error = e, "writing the streams group's delayed target assignment failed");
    }
}
