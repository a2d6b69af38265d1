//! ElectLeaders, the auto leader rebalance and unclean elections of
//! leaderless partitions, applied to a copy of the image.

use kafka_protocol::messages::elect_leaders_request::TopicPartitions;
use kafka_protocol::messages::ElectLeadersRequest;
use kafka_protocol::ResponseError;

use super::*;
use crate::controller::replication_control::fence_broker;
use crate::controller::tests::{apply, cluster, defaults, name, part, with_partitions};

fn codes(d: &Decision<ElectLeadersResponse>) -> Vec<(i32, i16, Option<String>)> {
    d.response
        .replica_election_results
        .iter()
        .flat_map(|t| t.partition_result.iter())
        .map(|p| {
            (
                p.partition_id,
                p.error_code,
                p.error_message.as_ref().map(|m| m.to_string()),
            )
        })
        .collect()
}

fn request(election_type: i8, partitions: Option<Vec<i32>>) -> ElectLeadersRequest {
    ElectLeadersRequest::default()
        .with_election_type(election_type)
        .with_topic_partitions(partitions.map(|p| {
            vec![TopicPartitions::default()
                .with_topic(name("t"))
                .with_partitions(p)]
        }))
}

/// p0 led by its preferred replica, p1 by another, p2 leaderless (ISR [1]),
/// with broker 1 fenced afterwards where noted.
fn image() -> MetadataImage {
    let image = cluster(&[None, None, None]);
    with_partitions(
        &image,
        "t",
        &[
            (&[1, 2], &[1, 2], 1),
            (&[1, 2], &[1, 2], 2),
            (&[3, 2], &[3], -1),
        ],
    )
    .0
}

#[test]
fn preferred_elections_as_kafka() {
    let image = image();
    let d = elect_leaders(&image, &request(0, Some(vec![0, 1, 2, 7])), 2);
    let not_needed = Some("Leader election not needed for topic partition.".to_string());
    assert_eq!(
        codes(&d),
        [
            (0, ResponseError::ElectionNotNeeded.code(), not_needed),
            (1, 0, None),
            (2, 0, None),
            (
                7,
                ResponseError::UnknownTopicOrPartition.code(),
                Some("No such partition as t-7".into())
            ),
        ]
    );
    let after = apply(&image, &d.records);
    assert_eq!(
        (
            part(&after, "t", 1).leader,
            part(&after, "t", 1).leader_epoch
        ),
        (1, 6)
    );
    assert_eq!(part(&after, "t", 2).leader, 3);
    // The preferred replica fenced: not available.
    let fenced = apply(&image, &fence_broker(&image, 1, &defaults()));
    let d = elect_leaders(&fenced, &request(0, Some(vec![1])), 2);
    assert_eq!(
        codes(&d),
        [(
            1,
            ResponseError::PreferredLeaderNotAvailable.code(),
            Some("The preferred leader was not available.".into())
        )]
    );
    // All partitions (null): those needing none are left out.
    let d = elect_leaders(&image, &request(0, None), 2);
    assert_eq!(codes(&d).iter().map(|c| c.0).collect::<Vec<_>>(), [1, 2]);
    // An unknown election type refuses the request.
    assert_eq!(
        elect_leaders(&image, &request(5, None), 2)
            .response
            .error_code,
        ResponseError::InvalidRequest.code()
    );
}

#[test]
fn unclean_elections_as_kafka() {
    let image = cluster(&[None, None]);
    let (image, _) = with_partitions(&image, "t", &[(&[1, 2], &[1], 1), (&[1, 2], &[1, 2], 1)]);
    let fenced = apply(&image, &fence_broker(&image, 1, &defaults()));
    assert_eq!(part(&fenced, "t", 0).leader, -1);
    let d = elect_leaders(&fenced, &request(1, Some(vec![0, 1])), 2);
    assert_eq!(codes(&d)[0].1, 0);
    assert_eq!(codes(&d)[1].1, ResponseError::ElectionNotNeeded.code());
    let after = apply(&fenced, &d.records);
    let p = part(&after, "t", 0);
    assert_eq!(
        (p.leader, p.isr.clone(), p.leader_recovery_state),
        (2, vec![2], 1)
    );
    // Nobody alive to lead: ELIGIBLE_LEADERS_NOT_AVAILABLE.
    let both = apply(&fenced, &fence_broker(&fenced, 2, &defaults()));
    let d = elect_leaders(&both, &request(1, Some(vec![0])), 2);
    assert_eq!(
        codes(&d)[0].1,
        ResponseError::EligibleLeadersNotAvailable.code()
    );
    // The timer's unclean pass only touches topics that allow it.
    assert!(elect_unclean_leaders(&fenced, &defaults(), 10).0.is_empty());
    let mut d = defaults();
    d.unclean_leader_election = true;
    let (records, more) = elect_unclean_leaders(&fenced, &d, 10);
    assert!(!more);
    assert_eq!(part(&apply(&fenced, &records), "t", 0).leader, 2);
}

#[test]
fn auto_rebalance_moves_leaders_back_to_preferred() {
    let image = image();
    let (records, more) = balance_partition_leaders(&image, MAX_ELECTIONS_PER_IMBALANCE);
    assert!(!more);
    let after = apply(&image, &records);
    for p in 0..3 {
        let r = part(&after, "t", p);
        assert_eq!(r.leader, r.replicas[0], "partition {p}");
    }
    assert!(balance_partition_leaders(&after, 10).0.is_empty());
    // The cap: one election per pass, more to do.
    let (records, more) = balance_partition_leaders(&image, 1);
    assert_eq!((records.len(), more), (1, true));
}
