// The admin command: sarama's ClusterAdmin against one topic and group, every
// observation in the result line (Kafka error codes as numbers) for
// test_sarama_modern.py to check.
package main

import (
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/IBM/sarama"

	"kastle/compat-tests/gomod/internal/drv"
)

type adminSpec struct {
	baseSpec
	Topic string `json:"topic"`
	Group string `json:"group"`
}

// errCode: the Kafka error code inside err (0 for nil, -2 if none is found).
func errCode(err error) int {
	if err == nil {
		return 0
	}
	var ke sarama.KError
	if errors.As(err, &ke) {
		return int(ke)
	}
	return -2
}

func admin(path string) error {
	var spec adminSpec
	drv.ReadSpec(path, &spec)
	cfg, err := newConfig(spec.baseSpec, "compat-sarama161-admin")
	if err != nil {
		return err
	}
	cfg.Admin.Timeout = 10 * time.Second
	a, err := sarama.NewClusterAdmin([]string{spec.Bootstrap}, cfg)
	if err != nil {
		return fmt.Errorf("new cluster admin: %w", err)
	}
	defer a.Close()
	res := map[string]any{}
	topic := spec.Topic

	partitions := func() (int, int, error) {
		md, err := a.DescribeTopics([]string{topic})
		if err != nil {
			return 0, 0, fmt.Errorf("describe topics: %w", err)
		}
		if len(md) != 1 || md[0].Name != topic {
			return 0, 0, fmt.Errorf("describe topics: unexpected answer (%d topics)", len(md))
		}
		return len(md[0].Partitions), int(md[0].Err), nil
	}
	configs := func() (map[string][2]string, error) {
		es, err := a.DescribeConfig(sarama.ConfigResource{Type: sarama.TopicResource, Name: topic,
			ConfigNames: []string{"retention.ms", "cleanup.policy"}})
		if err != nil {
			return nil, fmt.Errorf("describe config: %w", err)
		}
		out := map[string][2]string{}
		for _, e := range es {
			out[e.Name] = [2]string{e.Value, e.Source.String()}
		}
		return out, nil
	}

	// topics
	detail := &sarama.TopicDetail{NumPartitions: 2, ReplicationFactor: 1,
		ConfigEntries: map[string]*string{"retention.ms": strPtr("86400000")}}
	if err := a.CreateTopic(topic, detail, false); err != nil {
		return fmt.Errorf("create topic: %w", err)
	}
	res["createAgain"] = errCode(a.CreateTopic(topic, detail, false))
	n, _, err := partitions()
	if err != nil {
		return err
	}
	res["partitions"] = n

	// configs: describe, incremental set, invalid value, legacy AlterConfigs
	// (which replaces the topic's whole override set)
	if res["configsCreated"], err = configs(); err != nil {
		return err
	}
	set := func(v string) map[string]sarama.IncrementalAlterConfigsEntry {
		return map[string]sarama.IncrementalAlterConfigsEntry{"retention.ms": {
			Operation: sarama.IncrementalAlterConfigsOperationSet, Value: strPtr(v)}}
	}
	if err := a.IncrementalAlterConfig(sarama.TopicResource, topic, set("3600000"), false); err != nil {
		return fmt.Errorf("incremental alter config: %w", err)
	}
	if res["configsIncremental"], err = configs(); err != nil {
		return err
	}
	res["alterInvalid"] = errCode(a.IncrementalAlterConfig(sarama.TopicResource, topic, set("not-a-number"), false))
	if err := a.AlterConfig(sarama.TopicResource, topic,
		map[string]*string{"cleanup.policy": strPtr("compact,delete")}, false); err != nil {
		return fmt.Errorf("alter config: %w", err)
	}
	if res["configsReplaced"], err = configs(); err != nil {
		return err
	}

	// partitions: grow to 3; shrinking back is refused
	if err := a.CreatePartitions(topic, 3, nil, false); err != nil {
		return fmt.Errorf("create partitions: %w", err)
	}
	if res["partitionsGrown"], _, err = partitions(); err != nil {
		return err
	}
	res["shrink"] = errCode(a.CreatePartitions(topic, 2, nil, false))

	// 10 keyed records per partition, then list offsets and delete records
	prodCfg, _ := newConfig(spec.baseSpec, "compat-sarama161-admin-producer")
	prodCfg.Producer.RequiredAcks = sarama.WaitForAll
	prodCfg.Producer.Return.Successes = true
	prodCfg.Producer.Partitioner = sarama.NewManualPartitioner
	prod, err := sarama.NewSyncProducer([]string{spec.Bootstrap}, prodCfg)
	if err != nil {
		return fmt.Errorf("new producer: %w", err)
	}
	var msgs []*sarama.ProducerMessage
	for p := int32(0); p < 3; p++ {
		for i := 0; i < 10; i++ {
			msgs = append(msgs, &sarama.ProducerMessage{Topic: topic, Partition: p,
				Key: sarama.StringEncoder(fmt.Sprint("k", i)), Value: sarama.StringEncoder(fmt.Sprint(i))})
		}
	}
	err = prod.SendMessages(msgs)
	prod.Close()
	if err != nil {
		return fmt.Errorf("produce: %w", sendErr(err))
	}
	listOffsets := func(at int64) (map[string]int64, error) {
		req := map[string]map[int32]int64{topic: {0: at, 1: at, 2: at}}
		r, err := a.ListOffsets(req, nil)
		if err != nil {
			return nil, fmt.Errorf("list offsets: %w", err)
		}
		out := map[string]int64{}
		for p, o := range r[topic] {
			if o.Err != nil && !errors.Is(o.Err, sarama.ErrNoError) {
				return nil, fmt.Errorf("list offsets %d: %w", p, o.Err)
			}
			out[fmt.Sprint(p)] = o.Offset
		}
		return out, nil
	}
	if res["earliest"], err = listOffsets(sarama.OffsetOldest); err != nil {
		return err
	}
	if res["latest"], err = listOffsets(sarama.OffsetNewest); err != nil {
		return err
	}
	if err := a.DeleteRecords(topic, map[int32]int64{0: 4}); err != nil {
		return fmt.Errorf("delete records: %w", err)
	}
	res["deleteBeyond"] = errCode(a.DeleteRecords(topic, map[int32]int64{1: 50}))
	if res["earliestAfterDelete"], err = listOffsets(sarama.OffsetOldest); err != nil {
		return err
	}

	// groups: offsets committed through the admin API (no members), listed,
	// described, one partition's offset deleted, the group deleted
	group := spec.Group
	if _, err := a.AlterConsumerGroupOffsets(group, map[string]map[int32]sarama.OffsetAndMetadata{
		topic: {0: {Offset: 7}, 1: {Offset: 3}}}, nil); err != nil {
		return fmt.Errorf("alter consumer group offsets: %w", err)
	}
	groupOffsets := func() (map[string]int64, error) {
		r, err := a.ListConsumerGroupOffsets(group, map[string][]int32{topic: {0, 1, 2}})
		if err != nil {
			return nil, fmt.Errorf("list consumer group offsets: %w", err)
		}
		out := map[string]int64{}
		for p, b := range r.Blocks[topic] {
			if b.Err != sarama.ErrNoError {
				return nil, fmt.Errorf("list consumer group offsets %d: %w", p, b.Err)
			}
			out[fmt.Sprint(p)] = b.Offset
		}
		return out, nil
	}
	if res["groupOffsets"], err = groupOffsets(); err != nil {
		return err
	}
	listed := func() (bool, error) {
		gs, err := a.ListConsumerGroups()
		if err != nil {
			return false, fmt.Errorf("list consumer groups: %w", err)
		}
		_, ok := gs[group]
		return ok, nil
	}
	if res["groupListed"], err = listed(); err != nil {
		return err
	}
	ds, err := a.DescribeConsumerGroups([]string{group})
	if err != nil || len(ds) != 1 {
		return fmt.Errorf("describe consumer groups: %v (%d)", err, len(ds))
	}
	res["groupDescribed"] = map[string]any{"err": int(ds[0].Err), "state": ds[0].State, "members": len(ds[0].Members)}
	if err := a.DeleteConsumerGroupOffset(group, topic, 0); err != nil {
		return fmt.Errorf("delete consumer group offset: %w", err)
	}
	if res["groupOffsetsAfterDelete"], err = groupOffsets(); err != nil {
		return err
	}
	if err := a.DeleteConsumerGroup(group); err != nil {
		return fmt.Errorf("delete consumer group: %w", err)
	}
	if res["groupListedAfterDelete"], err = listed(); err != nil {
		return err
	}
	if ds, err = a.DescribeConsumerGroups([]string{group}); err != nil || len(ds) != 1 {
		return fmt.Errorf("describe deleted consumer group: %v (%d)", err, len(ds))
	}
	res["groupDescribedAfterDelete"] = map[string]any{"err": int(ds[0].Err), "state": ds[0].State}

	// cluster
	brokers, controller, err := a.DescribeCluster()
	if err != nil {
		return fmt.Errorf("describe cluster: %w", err)
	}
	ids := []int32{}
	for _, b := range brokers {
		ids = append(ids, b.ID())
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	res["cluster"] = map[string]any{"brokers": ids, "controller": controller}

	// delete the topic
	if err := a.DeleteTopic(topic); err != nil {
		return fmt.Errorf("delete topic: %w", err)
	}
	if _, res["afterDelete"], err = partitions(); err != nil {
		return err
	}
	drv.Result(res)
	return nil
}

func strPtr(s string) *string { return &s }
