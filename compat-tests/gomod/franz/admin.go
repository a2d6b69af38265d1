// The admin command: kadm against one topic, group and transactional id, with
// every observation in the result line for test_franz_go.py to check against
// what Kafka answers.
package main

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"kastle/compat-tests/gomod/internal/drv"
)

type adminSpec struct {
	baseSpec
	Topic  string `json:"topic"`
	Group  string `json:"group"`
	TxnID  string `json:"txnId"`
	BaseTs int64  `json:"baseTs"` // CreateTime of record i in each partition: baseTs + i
}

// errName: the Kafka error name ("TOPIC_ALREADY_EXISTS"), "" for nil.
func errName(err error) string {
	if err == nil {
		return ""
	}
	var ke *kerr.Error
	if errors.As(err, &ke) {
		return ke.Message
	}
	return err.Error()
}

func configsOf(rc kadm.ResourceConfigs, name string, keys ...string) (map[string][2]string, error) {
	r, err := rc.On(name, nil)
	if err != nil {
		return nil, err
	}
	if r.Err != nil {
		return nil, fmt.Errorf("describe configs %s: %w", name, r.Err)
	}
	out := map[string][2]string{}
	for _, c := range r.Configs {
		for _, k := range keys {
			if c.Key == k {
				out[k] = [2]string{c.MaybeValue(), c.Source.String()}
			}
		}
	}
	return out, nil
}

func offsetsOf(lo kadm.ListedOffsets, topic string) (map[string]int64, error) {
	out := map[string]int64{}
	for p, o := range lo[topic] {
		if o.Err != nil {
			return nil, fmt.Errorf("list offsets %s[%d]: %w", topic, p, o.Err)
		}
		out[fmt.Sprint(p)] = o.Offset
	}
	return out, nil
}

func producersOf(d kadm.DescribedProducersTopics, topic string) (map[string][]map[string]any, error) {
	out := map[string][]map[string]any{}
	for p, dp := range d[topic].Partitions {
		if dp.Err != nil {
			return nil, fmt.Errorf("describe producers %s[%d]: %w", topic, p, dp.Err)
		}
		list := []map[string]any{}
		for _, pr := range dp.ActiveProducers {
			list = append(list, map[string]any{"pid": pr.ProducerID, "epoch": pr.ProducerEpoch,
				"lastSeq": pr.LastSequence, "coordEpoch": pr.CoordinatorEpoch, "txnStart": pr.CurrentTxnStartOffset})
		}
		out[fmt.Sprint(p)] = list
	}
	return out, nil
}

func describeGroup(ctx context.Context, adm *kadm.Client, group, topic string) (map[string]any, error) {
	dg, err := adm.DescribeGroups(ctx, group)
	if err != nil {
		return nil, fmt.Errorf("describe groups: %w", err)
	}
	g := dg[group]
	if g.Err != nil {
		return nil, fmt.Errorf("describe group %s: %w", group, g.Err)
	}
	members := []map[string]any{}
	for _, m := range g.Members {
		parts := []int32{}
		if a, ok := m.Assigned.AsConsumer(); ok {
			for _, t := range a.Topics {
				if t.Topic == topic {
					parts = append(parts, t.Partitions...)
				}
			}
		}
		sort.Slice(parts, func(i, j int) bool { return parts[i] < parts[j] })
		members = append(members, map[string]any{"clientId": m.ClientID, "partitions": parts})
	}
	return map[string]any{"state": g.State, "protocolType": g.ProtocolType, "protocol": g.Protocol,
		"members": members}, nil
}

func fetchedOffsets(ctx context.Context, adm *kadm.Client, group, topic string) (map[string]int64, error) {
	os, err := adm.FetchOffsets(ctx, group)
	if err != nil {
		return nil, fmt.Errorf("fetch offsets: %w", err)
	}
	out := map[string]int64{}
	for p, o := range os[topic] {
		if o.Err != nil {
			return nil, fmt.Errorf("fetch offsets %s[%d]: %w", topic, p, o.Err)
		}
		out[fmt.Sprint(p)] = o.At
	}
	return out, nil
}

func listedGroup(ctx context.Context, adm *kadm.Client, group string) (string, error) {
	lg, err := adm.ListGroups(ctx)
	if err != nil {
		return "", fmt.Errorf("list groups: %w", err)
	}
	if g, ok := lg[group]; ok {
		return g.ProtocolType + "/" + g.State, nil
	}
	return "", nil
}

// topicMeta: partition count and error of one topic from a fresh Metadata
// request (kadm.ListTopics may answer from kgo's metadata cache, up to 5 s old).
func topicMeta(ctx context.Context, cl *kgo.Client, topic string) (int, string, error) {
	req := kmsg.NewPtrMetadataRequest()
	rt := kmsg.NewMetadataRequestTopic()
	rt.Topic = kmsg.StringPtr(topic)
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		return 0, "", fmt.Errorf("metadata: %w", err)
	}
	if len(resp.Topics) != 1 {
		return 0, "", fmt.Errorf("metadata: %d topics in the answer", len(resp.Topics))
	}
	t := resp.Topics[0]
	return len(t.Partitions), errName(kerr.ErrorForCode(t.ErrorCode)), nil
}

func admin(path string) error {
	var spec adminSpec
	drv.ReadSpec(path, &spec)
	opts, err := spec.opts("compat-franz-admin")
	if err != nil {
		return err
	}
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return fmt.Errorf("new client: %w", err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	res := map[string]any{}
	topic := spec.Topic

	// topics: create (with a config), create again, describe
	ct, err := adm.CreateTopics(ctx, 2, 1, map[string]*string{"retention.ms": kadm.StringPtr("86400000")}, topic)
	if err != nil || ct[topic].Err != nil {
		return fmt.Errorf("create topic: %v %v", err, ct[topic].Err)
	}
	res["created"] = map[string]any{"partitions": ct[topic].NumPartitions, "rf": ct[topic].ReplicationFactor}
	again, err := adm.CreateTopics(ctx, 2, 1, nil, topic)
	if err != nil {
		return fmt.Errorf("create topic again: %w", err)
	}
	res["createAgain"] = errName(again[topic].Err)
	td, err := adm.ListTopics(ctx, topic)
	if err != nil || td[topic].Err != nil {
		return fmt.Errorf("list topics: %v %v", err, td[topic].Err)
	}
	res["partitions"] = len(td[topic].Partitions)
	res["topicIdMatches"] = td[topic].ID == ct[topic].ID && td[topic].ID != kadm.TopicID{}

	// configs: describe, incremental set, delete (back to the default), invalid value
	keys := []string{"retention.ms", "cleanup.policy"}
	describe := func() (map[string][2]string, error) {
		rc, err := adm.DescribeTopicConfigs(ctx, topic)
		if err != nil {
			return nil, fmt.Errorf("describe topic configs: %w", err)
		}
		return configsOf(rc, topic, keys...)
	}
	alter := func(acs ...kadm.AlterConfig) (string, error) {
		r, err := adm.AlterTopicConfigs(ctx, acs, topic)
		if err != nil {
			return "", fmt.Errorf("alter topic configs: %w", err)
		}
		for _, a := range r {
			if a.Err != nil {
				return errName(a.Err), nil
			}
		}
		return "", nil
	}
	if res["configsCreated"], err = describe(); err != nil {
		return err
	}
	if e, err := alter(kadm.AlterConfig{Op: kadm.SetConfig, Name: "retention.ms", Value: kadm.StringPtr("3600000")},
		kadm.AlterConfig{Op: kadm.SetConfig, Name: "cleanup.policy", Value: kadm.StringPtr("compact,delete")}); err != nil || e != "" {
		return fmt.Errorf("alter (set): %v %s", err, e)
	}
	if res["configsAltered"], err = describe(); err != nil {
		return err
	}
	if e, err := alter(kadm.AlterConfig{Op: kadm.DeleteConfig, Name: "retention.ms"}); err != nil || e != "" {
		return fmt.Errorf("alter (delete): %v %s", err, e)
	}
	if res["configsReverted"], err = describe(); err != nil {
		return err
	}
	if res["alterInvalid"], err = alter(kadm.AlterConfig{Op: kadm.SetConfig, Name: "retention.ms",
		Value: kadm.StringPtr("not-a-number")}); err != nil {
		return err
	}

	// partitions: grow by one, try to shrink
	cp, err := adm.CreatePartitions(ctx, 1, topic)
	if err != nil || cp[topic].Err != nil {
		return fmt.Errorf("create partitions: %v %v", err, cp[topic].Err)
	}
	if res["partitionsGrown"], _, err = topicMeta(ctx, cl, topic); err != nil {
		return err
	}
	shrink, err := adm.UpdatePartitions(ctx, 2, topic)
	if err != nil {
		return fmt.Errorf("update partitions: %w", err)
	}
	res["shrink"] = errName(shrink[topic].Err)

	// cleanup.policy now includes compact: a record without a key is refused
	plain, err := kgo.NewClient(append(opts, kgo.ClientID("compat-franz-admin-plain"),
		kgo.DisableIdempotentWrite(), kgo.RecordPartitioner(kgo.ManualPartitioner()))...)
	if err != nil {
		return err
	}
	res["keylessOnCompacted"] = errName(plain.ProduceSync(ctx,
		&kgo.Record{Topic: topic, Partition: 0, Value: []byte("no key")}).FirstErr())
	plain.Close()

	// 10 records per partition (idempotent), timestamps baseTs+i
	prod, err := kgo.NewClient(append(opts, kgo.ClientID("compat-franz-admin-producer"),
		kgo.RecordPartitioner(kgo.ManualPartitioner()))...)
	if err != nil {
		return err
	}
	var recs []*kgo.Record
	for p := int32(0); p < 3; p++ {
		for i := int64(0); i < 10; i++ {
			recs = append(recs, &kgo.Record{Topic: topic, Partition: p, Key: []byte(fmt.Sprint("k", i)),
				Value: []byte(fmt.Sprint(i)), Timestamp: time.UnixMilli(spec.BaseTs + i)})
		}
	}
	if err := prod.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		prod.Close()
		return fmt.Errorf("produce: %w", err)
	}
	prod.Close()
	res["producerId"] = recs[0].ProducerID

	// offsets: start, end, by timestamp, max timestamp
	offs := map[string]any{}
	for name, f := range map[string]func() (kadm.ListedOffsets, error){
		"start":  func() (kadm.ListedOffsets, error) { return adm.ListStartOffsets(ctx, topic) },
		"end":    func() (kadm.ListedOffsets, error) { return adm.ListEndOffsets(ctx, topic) },
		"after5": func() (kadm.ListedOffsets, error) { return adm.ListOffsetsAfterMilli(ctx, spec.BaseTs+5, topic) },
		"maxTs":  func() (kadm.ListedOffsets, error) { return adm.ListMaxTimestampOffsets(ctx, topic) },
	} {
		lo, err := f()
		if err != nil {
			return fmt.Errorf("list offsets %s: %w", name, err)
		}
		if offs[name], err = offsetsOf(lo, topic); err != nil {
			return err
		}
	}
	res["offsets"] = offs

	// idempotent producer state
	all := kadm.TopicsSet{}
	all.Add(topic, 0, 1, 2)
	dp, err := adm.DescribeProducers(ctx, all)
	if err != nil {
		return fmt.Errorf("describe producers: %w", err)
	}
	if res["producers"], err = producersOf(dp, topic); err != nil {
		return err
	}

	// delete records: below the high watermark, and beyond it
	dr, err := adm.DeleteRecords(ctx, kadm.Offsets{topic: {0: {Topic: topic, Partition: 0, At: 4}}})
	if err != nil {
		return fmt.Errorf("delete records: %w", err)
	}
	d0, _ := dr.Lookup(topic, 0)
	res["deleteRecords"] = map[string]any{"err": errName(d0.Err), "lowWatermark": d0.LowWatermark}
	dr, err = adm.DeleteRecords(ctx, kadm.Offsets{topic: {1: {Topic: topic, Partition: 1, At: 50}}})
	if err != nil {
		return fmt.Errorf("delete records beyond: %w", err)
	}
	d1, _ := dr.Lookup(topic, 1)
	res["deleteBeyond"] = errName(d1.Err)
	lo, err := adm.ListStartOffsets(ctx, topic)
	if err != nil {
		return err
	}
	if res["startAfterDelete"], err = offsetsOf(lo, topic); err != nil {
		return err
	}

	// groups: a live member consumes everything and commits; describe it,
	// its offsets and lag; then it leaves: Empty, offsets deleted, group deleted
	if err := adminGroup(ctx, adm, opts, spec, res); err != nil {
		return err
	}

	// transactions: describe/list while ongoing and after commit
	if err := adminTxn(ctx, adm, opts, spec, res); err != nil {
		return err
	}

	mv, _ := spec.maxVersions()
	if res["versions"], err = versionTable(ctx, cl, mv); err != nil {
		return err
	}

	// delete the topic
	dt, err := adm.DeleteTopics(ctx, topic)
	if err != nil || dt[topic].Err != nil {
		return fmt.Errorf("delete topic: %v %v", err, dt[topic].Err)
	}
	if _, res["afterDelete"], err = topicMeta(ctx, cl, topic); err != nil {
		return err
	}
	drv.Result(res)
	return nil
}

func adminGroup(ctx context.Context, adm *kadm.Client, opts []kgo.Opt, spec adminSpec, res map[string]any) error {
	topic, group := spec.Topic, spec.Group
	member, err := kgo.NewClient(append(opts, kgo.ClientID("compat-franz-admin-member"),
		kgo.ConsumerGroup(group), kgo.ConsumeTopics(topic), kgo.DisableAutoCommit(),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(100*time.Millisecond),
		kgo.HeartbeatInterval(300*time.Millisecond))...)
	if err != nil {
		return err
	}
	defer member.Close()
	// p0 starts at 4 after DeleteRecords: 6 + 10 + 10 records
	got := 0
	for got < 26 {
		fs := member.PollFetches(ctx)
		if ctx.Err() != nil {
			return fmt.Errorf("group member: timed out after %d records", got)
		}
		if err := fetchErr(fs); err != nil {
			return err
		}
		got += fs.NumRecords()
	}
	if err := member.CommitUncommittedOffsets(ctx); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	if res["groupLive"], err = describeGroup(ctx, adm, group, topic); err != nil {
		return err
	}
	if res["groupOffsets"], err = fetchedOffsets(ctx, adm, group, topic); err != nil {
		return err
	}
	lags, err := adm.Lag(ctx, group)
	if err != nil {
		return fmt.Errorf("lag: %w", err)
	}
	if err := lags.Error(); err != nil {
		return fmt.Errorf("lag: %w", err)
	}
	res["groupLag"] = lags[group].Lag.Total()
	member.Close()
	if res["groupLeft"], err = describeGroup(ctx, adm, group, topic); err != nil {
		return err
	}
	if res["groupListed"], err = listedGroup(ctx, adm, group); err != nil {
		return err
	}
	p0 := kadm.TopicsSet{}
	p0.Add(topic, 0)
	do, err := adm.DeleteOffsets(ctx, group, p0)
	if err != nil {
		return fmt.Errorf("delete offsets: %w", err)
	}
	res["deleteOffsets"] = errName(do.Error())
	if res["groupOffsetsAfterDelete"], err = fetchedOffsets(ctx, adm, group, topic); err != nil {
		return err
	}
	dg, err := adm.DeleteGroup(ctx, group)
	if err != nil {
		return fmt.Errorf("delete group: %w", err)
	}
	res["deleteGroup"] = errName(dg.Err)
	gone, err := adm.DescribeGroups(ctx, group)
	if err != nil {
		return fmt.Errorf("describe deleted group: %w", err)
	}
	res["groupDescribedAfterDelete"] = errName(gone[group].Err) + "/" + gone[group].State
	if res["groupListedAfterDelete"], err = listedGroup(ctx, adm, group); err != nil {
		return err
	}
	return nil
}

func adminTxn(ctx context.Context, adm *kadm.Client, opts []kgo.Opt, spec adminSpec, res map[string]any) error {
	topic := spec.Topic
	tx, err := kgo.NewClient(append(opts, kgo.ClientID("compat-franz-admin-txn"),
		kgo.TransactionalID(spec.TxnID), kgo.TransactionTimeout(30*time.Second),
		kgo.RecordPartitioner(kgo.ManualPartitioner()))...)
	if err != nil {
		return err
	}
	defer tx.Close()
	if err := tx.BeginTransaction(); err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	var recs []*kgo.Record
	for i := 0; i < 3; i++ {
		recs = append(recs, &kgo.Record{Topic: topic, Partition: 2, Key: []byte("t"), Value: []byte(fmt.Sprint("t", i))})
	}
	if err := tx.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		return fmt.Errorf("txn produce: %w", err)
	}
	res["txnProducer"] = []int64{recs[0].ProducerID, int64(recs[0].ProducerEpoch)}
	describe := func() (map[string]any, error) {
		d, err := adm.DescribeTransactions(ctx, spec.TxnID)
		if err != nil {
			return nil, fmt.Errorf("describe transactions: %w", err)
		}
		t := d[spec.TxnID]
		if t.Err != nil {
			return nil, fmt.Errorf("describe transaction: %w", t.Err)
		}
		parts := map[string][]int32{}
		t.Topics.EachPartitions(func(tp string, ps []int32) {
			sort.Slice(ps, func(i, j int) bool { return ps[i] < ps[j] })
			parts[tp] = ps
		})
		return map[string]any{"state": t.State, "pid": t.ProducerID, "epoch": t.ProducerEpoch,
			"timeoutMs": t.TimeoutMillis, "partitions": parts[topic]}, nil
	}
	list := func(states ...string) (string, error) {
		l, err := adm.ListTransactions(ctx, nil, states)
		if err != nil {
			return "", fmt.Errorf("list transactions: %w", err)
		}
		if t, ok := l[spec.TxnID]; ok {
			return fmt.Sprintf("%s/%d", t.State, t.ProducerID), nil
		}
		return "", nil
	}
	if res["txnOngoing"], err = describe(); err != nil {
		return err
	}
	if res["txnListedOngoing"], err = list(); err != nil {
		return err
	}
	p2 := kadm.TopicsSet{}
	p2.Add(topic, 2)
	dp, err := adm.DescribeProducers(ctx, p2)
	if err != nil {
		return fmt.Errorf("describe producers: %w", err)
	}
	if res["producersInTxn"], err = producersOf(dp, topic); err != nil {
		return err
	}
	if err := tx.EndTransaction(ctx, kgo.TryCommit); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	if res["txnCommitted"], err = describe(); err != nil {
		return err
	}
	if res["txnListedCommitted"], err = list("CompleteCommit"); err != nil {
		return err
	}
	if res["txnListedAborting"], err = list("PrepareAbort", "CompleteAbort"); err != nil {
		return err
	}
	return nil
}
