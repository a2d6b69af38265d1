//! The replication data plane across real brokers: two `BrokerServer`s in
//! this process (real logs in temp dirs, real listeners on loopback ports,
//! the replica fetcher over real connections), with the metadata image's
//! decisions injected through `ReplicaManager::apply_delta` as the
//! controller (built on another branch) would publish them. Produce goes
//! through a real client connection (`NetworkClient`).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::produce_response::PartitionProduceResponse;
use kafka_protocol::messages::{FetchRequest, ProduceRequest, ProduceResponse, TopicName};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;
use uuid::Uuid;

use super::BrokerServer;
use crate::broker::alter_partition::{AlterPartitionManager, CommittedIsr, IsrFuture, IsrProposal};
use crate::broker::partition::Partition;
use crate::broker::replica_manager::LocalReplicaChange;
use crate::clients::network_client::{ClientLimits, NetworkClient};
use crate::config::BrokerConfig;
use crate::handlers::KafkaApis;
use crate::metadata::PartitionRegistration;
use crate::record::builder::BatchBuilder;

const TOPIC: &str = "replicated";

struct Node {
    id: i32,
    addr: String,
    apis: Arc<KafkaApis>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    done: Option<tokio::task::JoinHandle<()>>,
    _dir: tempfile::TempDir,
}

impl Node {
    async fn start(id: i32, extra: &[(&str, &str)]) -> Node {
        let dir = tempfile::tempdir().expect("temp dir");
        Node::start_in(id, dir, extra).await
    }

    async fn start_in(id: i32, dir: tempfile::TempDir, extra: &[(&str, &str)]) -> Node {
        // A free loopback port (released just before the broker binds it).
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port")
            .port();
        let addr = format!("127.0.0.1:{port}");
        let mut entries: Vec<(String, String)> = vec![
            ("node.id".into(), id.to_string()),
            ("log.dirs".into(), dir.path().display().to_string()),
            ("listeners".into(), format!("PLAINTEXT://{addr}")),
            ("replica.fetch.wait.max.ms".into(), "100".into()),
            ("replica.fetch.backoff.ms".into(), "100".into()),
        ];
        entries.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        let (config, _) = BrokerConfig::from_entries(entries).expect("config");
        let server = BrokerServer::start(config).await.expect("broker starts");
        let apis = server.apis.clone();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let done = tokio::spawn(server.run(async move {
            let _ = rx.await;
        }));
        Node {
            id,
            addr,
            apis,
            stop: Some(tx),
            done: Some(done),
            _dir: dir,
        }
    }

    /// Stops the broker (clean shutdown) and hands back its directory.
    async fn stop(mut self) -> tempfile::TempDir {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(done) = self.done.take() {
            let _ = done.await;
        }
        self._dir
    }

    fn apply(&self, topic_id: Uuid, reg: &PartitionRegistration, leader_addr: Option<&str>) {
        let endpoint = (reg.leader != self.id)
            .then(|| leader_addr.map(str::to_string))
            .flatten();
        self.apis
            .replicas
            .apply_delta(vec![LocalReplicaChange {
                topic: TOPIC.into(),
                topic_id,
                partition: 0,
                registration: Some(reg.clone()),
                leader_endpoint: endpoint,
                topic_configs: BTreeMap::new(),
            }])
            .expect("apply_delta");
    }

    fn partition(&self) -> Arc<Partition> {
        self.apis
            .replicas
            .topics
            .get(TOPIC)
            .and_then(|t| t.partition(0).cloned())
            .expect("partition")
    }

    async fn produce(&self, acks: i16, timeout_ms: i32, value: &str) -> PartitionProduceResponse {
        let mut resp = self.produce_v(9, acks, timeout_ms, value).await;
        resp.responses.remove(0).partition_responses.remove(0)
    }

    async fn produce_v(
        &self,
        version: i16,
        acks: i16,
        timeout_ms: i32,
        value: &str,
    ) -> ProduceResponse {
        let now = crate::util::now_ms();
        let batch = BatchBuilder::new(now)
            .push(Some(b"k"), Some(value.as_bytes()), &[], now)
            .build();
        let req = ProduceRequest::default()
            .with_acks(acks)
            .with_timeout_ms(timeout_ms)
            .with_topic_data(vec![TopicProduceData::default()
                .with_name(TopicName(StrBytes::from_static_str(TOPIC)))
                .with_partition_data(vec![PartitionProduceData::default()
                    .with_index(0)
                    .with_records(Some(Bytes::from(batch.to_vec())))])]);
        let mut client = NetworkClient::new(self.addr.clone(), "test", ClientLimits::default());
        client.send(&req, version).await.expect("produce answered")
    }
}

fn registration(replicas: &[i32], isr: &[i32], leader: i32, epoch: i32) -> PartitionRegistration {
    PartitionRegistration {
        replicas: replicas.to_vec(),
        directories: Vec::new(),
        isr: isr.to_vec(),
        removing_replicas: Vec::new(),
        adding_replicas: Vec::new(),
        elr: Vec::new(),
        last_known_elr: Vec::new(),
        leader,
        leader_recovery_state: 0,
        leader_epoch: epoch,
        partition_epoch: epoch,
    }
}

/// Every batch of the log from offset 0, as stored.
fn log_bytes(p: &Partition) -> Vec<u8> {
    p.fetch_for_follower(0, 64 << 20, true)
        .and_then(|r| {
            r.read().map_err(|e| {
                crate::broker::partition::PartitionError::Storage(crate::storage::StorageError::io(
                    p.dir(),
                    "read",
                    e,
                ))
            })
        })
        .map(|b| b.to_vec())
        .unwrap_or_default()
}

async fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !check() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A test double of the controller channel (the boundary the quorum branch
/// implements): records each proposal and commits it as proposed.
#[derive(Default)]
struct RecordingController {
    proposals: Mutex<Vec<IsrProposal>>,
}

impl AlterPartitionManager for RecordingController {
    fn submit(&self, proposal: IsrProposal) -> IsrFuture {
        self.proposals
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(proposal.clone());
        Box::pin(async move {
            Ok(CommittedIsr {
                leader: -1,
                leader_epoch: proposal.leader_epoch,
                partition_epoch: proposal.partition_epoch + 1,
                isr: proposal.new_isr,
            })
        })
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acks_all_waits_for_the_follower_and_the_isr_shrinks_without_it() {
    let lag = [("replica.lag.time.max.ms", "1500")];
    let leader = Node::start(1, &lag).await;
    let follower = Node::start(2, &lag).await;
    let controller = Arc::new(RecordingController::default());
    leader
        .apis
        .replicas
        .set_alter_partition_manager(controller.clone());
    let topic_id = Uuid::new_v4();
    let reg = registration(&[1, 2], &[1, 2], 1, 1);
    leader.apply(topic_id, &reg, None);
    follower.apply(topic_id, &reg, Some(&leader.addr));
    // Idempotent for the same input.
    leader.apply(topic_id, &reg, None);
    follower.apply(topic_id, &reg, Some(&leader.addr));

    for i in 0..5 {
        let r = leader.produce(-1, 10_000, &format!("v{i}")).await;
        assert_eq!(
            (r.error_code, r.base_offset),
            (0, i),
            "acks=all produce {i}"
        );
    }
    // acks=all answered, so the follower has the records and the high
    // watermark covers them.
    let (lp, fp) = (leader.partition(), follower.partition());
    assert_eq!(lp.state().high_watermark, 5);
    assert!(fp.log_end_offset() >= Some(5));
    eventually("the follower's high watermark", || {
        fp.state().high_watermark == 5
    })
    .await;
    // The same batches, byte for byte: offsets and leader epochs included.
    assert_eq!(log_bytes(&lp), log_bytes(&fp));
    assert_eq!(fp.epoch_for_offset(4), Some(1));
    // A client produce to the follower is refused.
    let r = follower.produce(1, 1_000, "x").await;
    assert_eq!(r.error_code, ResponseError::NotLeaderOrFollower.code());
    // KIP-951: v10+ names the leader and where it listens.
    let resp = follower.produce_v(10, 1, 1_000, "x").await;
    let r = &resp.responses[0].partition_responses[0];
    assert_eq!(r.error_code, ResponseError::NotLeaderOrFollower.code());
    assert_eq!(
        (r.current_leader.leader_id.0, r.current_leader.leader_epoch),
        (1, 1)
    );
    let ep = &resp.node_endpoints[0];
    assert_eq!(
        (ep.node_id.0, format!("{}:{}", ep.host, ep.port)),
        (1, leader.addr.clone())
    );
    // A consumer's fetch from the follower: v11+ carries client metadata,
    // so the follower serves it up to its high watermark (Kafka's
    // `fetchOnlyLeader` is false then); before v11 only the leader serves.
    let fetch = FetchRequest::default()
        .with_replica_id(kafka_protocol::messages::BrokerId(-1))
        .with_max_wait_ms(0)
        .with_max_bytes(1 << 20)
        .with_topics(vec![FetchTopic::default()
            .with_topic(TopicName(StrBytes::from_static_str(TOPIC)))
            .with_topic_id(topic_id)
            .with_partitions(vec![FetchPartition::default()
                .with_partition(0)
                .with_current_leader_epoch(-1)
                .with_partition_max_bytes(1 << 20)])]);
    let mut client = NetworkClient::new(follower.addr.clone(), "test", ClientLimits::default());
    let resp = client.send(&fetch, 16).await.expect("fetch answered");
    let d = &resp.responses[0].partitions[0];
    assert_eq!((d.error_code, d.high_watermark), (0, 5));
    assert!(d.records.as_ref().is_some_and(|r| !r.is_empty()));
    let resp = client.send(&fetch, 10).await.expect("fetch answered");
    let d = &resp.responses[0].partitions[0];
    assert_eq!(d.error_code, ResponseError::NotLeaderOrFollower.code());
    assert!(
        controller.proposals.lock().unwrap().is_empty(),
        "no ISR change while in sync"
    );

    // The follower stops: acks=all times out, acks=1 does not wait for it.
    follower.stop().await;
    let r = leader.produce(-1, 800, "late").await;
    assert_eq!(r.error_code, ResponseError::RequestTimedOut.code());
    let r = leader.produce(1, 10_000, "one").await;
    assert_eq!((r.error_code, r.base_offset), (0, 6));

    // After replica.lag.time.max.ms the leader proposes the ISR without it;
    // once committed, the high watermark moves on without it.
    eventually("the ISR shrink", || {
        !controller.proposals.lock().unwrap().is_empty()
    })
    .await;
    let p = controller.proposals.lock().unwrap()[0].clone();
    assert_eq!(
        (
            p.topic_id,
            p.partition,
            p.leader_epoch,
            p.partition_epoch,
            p.new_isr.clone()
        ),
        (topic_id, 0, 1, 1, vec![1])
    );
    eventually("the high watermark past the shrink", || {
        lp.state().high_watermark == 7
    })
    .await;
    assert_eq!(lp.replica_set().1, vec![1]);
    assert_eq!(lp.replica_set().2, 2);
    leader.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn not_enough_replicas_below_min_insync() {
    let leader = Node::start(1, &[("min.insync.replicas", "2")]).await;
    let topic_id = Uuid::new_v4();
    // Node 2 never fetches: the ISR holds only the leader.
    leader.apply(topic_id, &registration(&[1, 2], &[1], 1, 3), None);
    let r = leader.produce(-1, 1_000, "v").await;
    assert_eq!(r.error_code, ResponseError::NotEnoughReplicas.code());
    // acks=1 is still taken.
    let r = leader.produce(1, 1_000, "v").await;
    assert_eq!((r.error_code, r.base_offset), (0, 0));
    assert_eq!(leader.partition().epoch_for_offset(0), Some(3));
    leader.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_divergent_follower_truncates_to_the_leaders_epoch_end_offset() {
    let n1 = Node::start(1, &[]).await;
    let n2 = Node::start(2, &[]).await;
    let topic_id = Uuid::new_v4();
    // Epoch 1: node 1 leads, both in sync, three records everywhere.
    let reg = registration(&[1, 2], &[1, 2], 1, 1);
    n1.apply(topic_id, &reg, None);
    n2.apply(topic_id, &reg, Some(&n1.addr));
    for i in 0..3 {
        assert_eq!(n1.produce(-1, 10_000, &format!("a{i}")).await.error_code, 0);
    }
    // Epoch 2: node 2 leads alone (node 1 knows of no address to fetch
    // from) and takes two records node 1 never sees.
    let reg = registration(&[1, 2], &[2], 2, 2);
    n2.apply(topic_id, &reg, None);
    n1.apply(topic_id, &reg, None);
    for i in 0..2 {
        assert_eq!(n2.produce(1, 10_000, &format!("b{i}")).await.error_code, 0);
    }
    assert_eq!(n2.partition().log_end_offset(), Some(5));
    // Node 2 restarts with its divergent tail.
    let id2 = n2.id;
    let dir2 = n2.stop().await;
    // Epoch 3: node 1 leads (unclean, as the controller may decide) and
    // appends its own record at offset 3.
    let reg = registration(&[1, 2], &[1], 1, 3);
    n1.apply(topic_id, &reg, None);
    assert_eq!(n1.produce(1, 10_000, "c0").await.base_offset, 3);
    let n2 = Node::start_in(id2, dir2, &[]).await;
    n2.apply(topic_id, &reg, Some(&n1.addr));
    let (p1, p2) = (n1.partition(), n2.partition());
    eventually("the follower to catch up", || {
        p2.log_end_offset() == Some(4)
    })
    .await;
    // Offsets 3-4 of epoch 2 are gone; offset 3 is the leader's epoch 3 record.
    assert_eq!(log_bytes(&p1), log_bytes(&p2));
    assert_eq!(p2.epoch_for_offset(3), Some(3));
    n1.stop().await;
    n2.stop().await;
}
