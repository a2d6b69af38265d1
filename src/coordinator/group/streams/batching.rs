//! When a streams group computes a new target assignment (Kafka 4.4's
//! `maybeUpdateStreamsTargetAssignment`): not while the initial rebalance
//! delay runs (the coordinator timer computes it when the delay ends), nor
//! before the assignment interval since the last target has passed (KIP-1251
//! batching); a heartbeat meanwhile carries ASSIGNMENT_DELAYED.

use crate::coordinator::group::consumer::heartbeat::can_compute_next_target_assignment;
use crate::coordinator::group::timers::TimerKey;
use crate::protocol::streams::{status, Status};

use super::StreamsGroup;

impl StreamsGroup {
    /// Kafka 4.4's `maybeUpdateStreamsTargetAssignment`: while the initial
    /// rebalance delay runs, or the assignment interval since the last
    /// target has not passed, the target stays as it is and a heartbeat's
    /// `status` says ASSIGNMENT_DELAYED; otherwise a group epoch past the
    /// assignment epoch gets a new target at the group epoch.
    pub(super) fn maybe_update_target(&mut self, now: i64, status: Option<&mut Vec<Status>>) {
        let delayed = |detail: &str, status: Option<&mut Vec<Status>>| {
            if let Some(s) = status {
                s.push(Status {
                    status_code: status::ASSIGNMENT_DELAYED,
                    status_detail: detail.to_string(),
                });
            }
        };
        if self.initial_rebalance_timer.is_some() {
            delayed(
                "Assignment delayed due to the configured initial rebalance delay.",
                status,
            );
            return;
        }
        if self.assignment_epoch >= self.group_epoch {
            return;
        }
        if !can_compute_next_target_assignment(
            self.assignment_timestamp_ms,
            self.last_assignment_interval_ms,
            now,
        ) {
            delayed(
                "Assignment delayed due to the configured assignment interval.",
                status,
            );
            return;
        }
        self.compute_target();
        self.assignment_epoch = self.group_epoch;
        self.assignment_timestamp_ms = now;
        tracing::info!(group = %self.group_id, epoch = self.assignment_epoch, "computed a new streams target assignment");
    }

    /// The initial rebalance delay ended (Kafka's
    /// `computeDelayedTargetAssignment`): the target for the members that
    /// joined meanwhile; they get their tasks on their next heartbeat.
    /// False if the timer is not this group's current one.
    pub fn on_initial_rebalance_timer(&mut self, key: TimerKey, now: i64) -> bool {
        if self.initial_rebalance_timer != Some(key) {
            return false;
        }
        self.initial_rebalance_timer = None;
        if self.members.is_empty() {
            tracing::info!(group = %self.group_id, "skipping the delayed streams target assignment: the group is empty");
            return true;
        }
        if self.loaded {
            // Not configured since it was loaded: the next heartbeat
            // configures the topology and computes the target.
            return true;
        }
        self.maybe_update_target(now, None);
        true
    }
}
