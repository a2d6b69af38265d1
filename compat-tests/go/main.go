// Command sarama-driver drives kastle with sarama (the Go client, Debian's
// golang-github-shopify-sarama-dev) for the compat suite (test_sarama.py).
//
// Usage: sarama-driver CMD SPEC.json
//
// CMD is produce, consume, group or admin; SPEC is a JSON file whose fields
// are described on each command's spec type. Output is JSON lines on stdout
// ("ack", "record", "assigned" lines, then one "result" line); the exit code
// is non-zero on any error, with the error in the result line.
//
// Built by the test session in GOPATH mode against the Debian package:
// GO111MODULE=off GOPATH=/usr/share/gocode go build -o DIR/sarama-driver .
package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/Shopify/sarama"
)

// common to every command
type baseSpec struct {
	Bootstrap string `json:"bootstrap"`
	// Kafka version sarama pretends to talk to: it picks every request's
	// version from this (sarama 1.22 does not negotiate with ApiVersions).
	Version string `json:"version"`
}

type msgSpec struct {
	I int         `json:"i"`
	P int32       `json:"p"`
	K []byte      `json:"k"` // base64 in JSON; null stays nil (a NULL key)
	V []byte      `json:"v"`
	H [][]*string `json:"h"` // [name, base64 value or null]
	T int64       `json:"t"` // CreateTime, ms
}

type produceSpec struct {
	baseSpec
	Topic       string    `json:"topic"`
	Idempotent  bool      `json:"idempotent"`
	Compression string    `json:"compression"`
	Messages    []msgSpec `json:"messages"`
}

type consumeSpec struct {
	baseSpec
	Topic      string           `json:"topic"`
	Partitions int32            `json:"partitions"`
	Until      map[string]int64 `json:"until"` // partition -> end offset to read up to
	TimeoutMs  int64            `json:"timeoutMs"`
}

type groupSpec struct {
	baseSpec
	Topic    string `json:"topic"`
	Group    string `json:"group"`
	StopFile string `json:"stopFile"`
	Name     string `json:"name"`
}

type adminSpec struct {
	baseSpec
	Topic         string `json:"topic"`
	Partitions    int32  `json:"partitions"`
	NewPartitions int32  `json:"newPartitions"`
	// describeOnly: only DescribeTopics (Metadata at the version's level), for
	// old-version runs where CreateTopics would be too old for Kafka 4.
	DescribeOnly bool `json:"describeOnly"`
}

var outMu sync.Mutex

func emit(v interface{}) {
	b, err := json.Marshal(v)
	if err != nil {
		b = []byte(fmt.Sprintf(`{"type":"result","ok":false,"error":%q}`, err.Error()))
	}
	outMu.Lock()
	defer outMu.Unlock()
	os.Stdout.Write(append(b, '\n'))
}

func fail(err error) {
	emit(map[string]interface{}{"type": "result", "ok": false, "error": err.Error()})
	os.Exit(1)
}

func newConfig(b baseSpec, clientID string) (*sarama.Config, error) {
	cfg := sarama.NewConfig()
	cfg.ClientID = clientID
	v, err := sarama.ParseKafkaVersion(b.Version)
	if err != nil {
		return nil, fmt.Errorf("version %q: %w", b.Version, err)
	}
	cfg.Version = v
	cfg.Metadata.Retry.Backoff = 100 * time.Millisecond
	cfg.Net.DialTimeout = 10 * time.Second
	return cfg, nil
}

func readSpec(path string, into interface{}) {
	data, err := os.ReadFile(path)
	if err != nil {
		fail(fmt.Errorf("reading spec %s: %w", path, err))
	}
	if err := json.Unmarshal(data, into); err != nil {
		fail(fmt.Errorf("parsing spec %s: %w", path, err))
	}
}

func codec(name string) (sarama.CompressionCodec, error) {
	switch name {
	case "", "none":
		return sarama.CompressionNone, nil
	case "gzip":
		return sarama.CompressionGZIP, nil
	case "snappy":
		return sarama.CompressionSnappy, nil
	case "lz4":
		return sarama.CompressionLZ4, nil
	case "zstd":
		return sarama.CompressionZSTD, nil
	}
	return sarama.CompressionNone, fmt.Errorf("unknown compression %q", name)
}

// produce: a SyncProducer with acks=all sends the messages in chunks to their
// given partitions (explicit CreateTime, headers); one "ack" line per message.
func produce(spec produceSpec) error {
	cfg, err := newConfig(spec.baseSpec, "compat-sarama-producer")
	if err != nil {
		return err
	}
	cfg.Producer.RequiredAcks = sarama.WaitForAll
	cfg.Producer.Return.Successes = true
	cfg.Producer.Partitioner = sarama.NewManualPartitioner
	cfg.Producer.Retry.Max = 5
	cfg.Producer.Retry.Backoff = 200 * time.Millisecond
	if cfg.Producer.Compression, err = codec(spec.Compression); err != nil {
		return err
	}
	if spec.Idempotent {
		cfg.Producer.Idempotent = true
		cfg.Net.MaxOpenRequests = 1
	}
	p, err := sarama.NewSyncProducer([]string{spec.Bootstrap}, cfg)
	if err != nil {
		return fmt.Errorf("new producer: %w", err)
	}
	const chunk = 1000
	for start := 0; start < len(spec.Messages); start += chunk {
		end := start + chunk
		if end > len(spec.Messages) {
			end = len(spec.Messages)
		}
		batch := make([]*sarama.ProducerMessage, 0, end-start)
		for _, m := range spec.Messages[start:end] {
			pm := &sarama.ProducerMessage{Topic: spec.Topic, Partition: m.P,
				Timestamp: time.Unix(0, m.T*int64(time.Millisecond)), Metadata: m.I}
			if m.K != nil {
				pm.Key = sarama.ByteEncoder(m.K)
			}
			if m.V != nil {
				pm.Value = sarama.ByteEncoder(m.V)
			}
			for _, h := range m.H {
				if len(h) != 2 || h[0] == nil {
					return fmt.Errorf("message %d: header must be [name, value]", m.I)
				}
				var val []byte // a null value stays nil: a NULL header value
				if h[1] != nil {
					if val, err = base64.StdEncoding.DecodeString(*h[1]); err != nil {
						return fmt.Errorf("message %d: header %s: %w", m.I, *h[0], err)
					}
				}
				pm.Headers = append(pm.Headers, sarama.RecordHeader{Key: []byte(*h[0]), Value: val})
			}
			batch = append(batch, pm)
		}
		if err := p.SendMessages(batch); err != nil {
			_ = p.Close()
			// name the broker's error, not just "failed to deliver N messages"
			if perr, ok := err.(sarama.ProducerErrors); ok && len(perr) > 0 {
				return fmt.Errorf("send messages %d..%d: %d failed, first: %w", start, end, len(perr), perr[0].Err)
			}
			return fmt.Errorf("send messages %d..%d: %w", start, end, err)
		}
		for _, pm := range batch {
			emit(map[string]interface{}{"type": "ack", "i": pm.Metadata, "p": pm.Partition, "o": pm.Offset})
		}
	}
	if err := p.Close(); err != nil {
		return fmt.Errorf("close producer: %w", err)
	}
	emit(map[string]interface{}{"type": "result", "ok": true, "sent": len(spec.Messages)})
	return nil
}

func recordLine(m *sarama.ConsumerMessage) map[string]interface{} {
	hs := make([][]interface{}, 0, len(m.Headers))
	for _, h := range m.Headers {
		hs = append(hs, []interface{}{string(h.Key), h.Value})
	}
	return map[string]interface{}{"type": "record", "p": m.Partition, "o": m.Offset,
		"k": m.Key, "v": m.Value, "h": hs, "t": m.Timestamp.UnixNano() / int64(time.Millisecond)}
}

// consume: one partition consumer per partition from the oldest offset until
// each partition's next offset reaches until[p].
func consume(spec consumeSpec) error {
	cfg, err := newConfig(spec.baseSpec, "compat-sarama-consumer")
	if err != nil {
		return err
	}
	cfg.Consumer.Return.Errors = true
	cfg.Consumer.MaxWaitTime = 200 * time.Millisecond
	c, err := sarama.NewConsumer([]string{spec.Bootstrap}, cfg)
	if err != nil {
		return fmt.Errorf("new consumer: %w", err)
	}
	defer c.Close()
	deadline := time.After(time.Duration(spec.TimeoutMs) * time.Millisecond)
	total := 0
	for p := int32(0); p < spec.Partitions; p++ {
		want := spec.Until[fmt.Sprint(p)]
		if want <= 0 {
			continue
		}
		pc, err := c.ConsumePartition(spec.Topic, p, sarama.OffsetOldest)
		if err != nil {
			return fmt.Errorf("consume partition %d: %w", p, err)
		}
		next := int64(0)
		for next < want {
			select {
			case m := <-pc.Messages():
				emit(recordLine(m))
				next = m.Offset + 1
				total++
			case e := <-pc.Errors():
				pc.Close()
				return fmt.Errorf("partition %d: %w", p, e)
			case <-deadline:
				pc.Close()
				return fmt.Errorf("timed out at partition %d offset %d (want %d)", p, next, want)
			}
		}
		if err := pc.Close(); err != nil {
			return fmt.Errorf("close partition consumer %d: %w", p, err)
		}
	}
	emit(map[string]interface{}{"type": "result", "ok": true, "records": total})
	return nil
}

type groupHandler struct{ name string }

func (h groupHandler) Setup(s sarama.ConsumerGroupSession) error {
	var parts []int32
	for _, ps := range s.Claims() {
		parts = append(parts, ps...)
	}
	sort.Slice(parts, func(i, j int) bool { return parts[i] < parts[j] })
	emit(map[string]interface{}{"type": "assigned", "name": h.name, "partitions": parts,
		"generation": s.GenerationID()})
	return nil
}

func (h groupHandler) Cleanup(sarama.ConsumerGroupSession) error { return nil }

func (h groupHandler) ConsumeClaim(s sarama.ConsumerGroupSession, c sarama.ConsumerGroupClaim) error {
	for m := range c.Messages() {
		line := recordLine(m)
		line["name"] = h.name
		emit(line)
		s.MarkMessage(m, "")
	}
	return nil
}

// group: a ConsumerGroup member that consumes and commits until stopFile exists,
// then leaves the group (committing what it marked).
func group(spec groupSpec) error {
	cfg, err := newConfig(spec.baseSpec, spec.Name)
	if err != nil {
		return err
	}
	cfg.Consumer.Return.Errors = true
	cfg.Consumer.Offsets.Initial = sarama.OffsetOldest
	cfg.Consumer.Offsets.CommitInterval = 100 * time.Millisecond
	// Without a retention time sarama 1.22 commits with OffsetCommit v1, which
	// Kafka 4 removed (KIP-896); any retention switches it to v2.
	cfg.Consumer.Offsets.Retention = 24 * time.Hour
	cfg.Consumer.Group.Session.Timeout = 6 * time.Second
	cfg.Consumer.Group.Heartbeat.Interval = 300 * time.Millisecond
	cfg.Consumer.MaxWaitTime = 100 * time.Millisecond
	g, err := sarama.NewConsumerGroup([]string{spec.Bootstrap}, spec.Group, cfg)
	if err != nil {
		return fmt.Errorf("new consumer group: %w", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var errs []string
	var errMu sync.Mutex
	go func() {
		for e := range g.Errors() {
			errMu.Lock()
			errs = append(errs, e.Error())
			errMu.Unlock()
		}
	}()
	go func() {
		for {
			if _, err := os.Stat(spec.StopFile); err == nil {
				cancel()
				return
			}
			time.Sleep(50 * time.Millisecond)
		}
	}()
	h := groupHandler{name: spec.Name}
	for ctx.Err() == nil {
		// Consume returns at every rebalance; join again until told to stop.
		if err := g.Consume(ctx, []string{spec.Topic}, h); err != nil && ctx.Err() == nil {
			errMu.Lock()
			errs = append(errs, "consume: "+err.Error())
			errMu.Unlock()
			time.Sleep(200 * time.Millisecond)
		}
	}
	if err := g.Close(); err != nil {
		return fmt.Errorf("close consumer group: %w", err)
	}
	errMu.Lock()
	defer errMu.Unlock()
	if len(errs) > 0 {
		return fmt.Errorf("consumer group errors: %s", strings.Join(errs, "; "))
	}
	emit(map[string]interface{}{"type": "result", "ok": true})
	return nil
}

func topicPartitions(a sarama.ClusterAdmin, topic string) (int, error) {
	md, err := a.DescribeTopics([]string{topic})
	if err != nil {
		return 0, fmt.Errorf("describe topics: %w", err)
	}
	if len(md) != 1 || md[0].Name != topic {
		return 0, fmt.Errorf("describe topics: unexpected answer for %s (%d topics)", topic, len(md))
	}
	if md[0].Err != sarama.ErrNoError {
		return 0, fmt.Errorf("describe topics %s: %w", topic, md[0].Err)
	}
	return len(md[0].Partitions), nil
}

// describeConfigs sends DescribeConfigs v1 through the controller: sarama
// 1.22's ClusterAdmin.DescribeConfig sends v0, which Kafka 4 removed.
func describeConfigs(spec adminSpec, cfg *sarama.Config) (map[string]string, error) {
	client, err := sarama.NewClient([]string{spec.Bootstrap}, cfg)
	if err != nil {
		return nil, fmt.Errorf("new client: %w", err)
	}
	defer client.Close()
	b, err := client.Controller()
	if err != nil {
		return nil, fmt.Errorf("controller: %w", err)
	}
	req := &sarama.DescribeConfigsRequest{Version: 1,
		Resources: []*sarama.ConfigResource{{Type: sarama.TopicResource, Name: spec.Topic}}}
	resp, err := b.DescribeConfigs(req)
	if err != nil {
		return nil, fmt.Errorf("describe configs: %w", err)
	}
	out := map[string]string{}
	for _, r := range resp.Resources {
		if r.ErrorCode != 0 {
			return nil, fmt.Errorf("describe configs %s: error %d %s", r.Name, r.ErrorCode, r.ErrorMsg)
		}
		for _, e := range r.Configs {
			out[e.Name] = e.Value
		}
	}
	return out, nil
}

// admin: create (and re-create: TopicAlreadyExists), describe, grow, alter and
// describe configs, delete records, delete the topic.
func admin(spec adminSpec) error {
	cfg, err := newConfig(spec.baseSpec, "compat-sarama-admin")
	if err != nil {
		return err
	}
	cfg.Admin.Timeout = 10 * time.Second
	a, err := sarama.NewClusterAdmin([]string{spec.Bootstrap}, cfg)
	if err != nil {
		return fmt.Errorf("new cluster admin: %w", err)
	}
	defer a.Close()
	res := map[string]interface{}{"type": "result", "ok": true}
	if spec.DescribeOnly {
		n, err := topicPartitions(a, spec.Topic)
		if err != nil {
			return err
		}
		res["partitions"] = n
		emit(res)
		return nil
	}
	detail := &sarama.TopicDetail{NumPartitions: spec.Partitions, ReplicationFactor: 1}
	if err := a.CreateTopic(spec.Topic, detail, false); err != nil {
		return fmt.Errorf("create topic: %w", err)
	}
	err = a.CreateTopic(spec.Topic, detail, false)
	res["createAgain"] = fmt.Sprint(err)
	if res["partitionsCreated"], err = topicPartitions(a, spec.Topic); err != nil {
		return err
	}
	if err := a.CreatePartitions(spec.Topic, spec.NewPartitions, nil, false); err != nil {
		return fmt.Errorf("create partitions: %w", err)
	}
	if res["partitionsGrown"], err = topicPartitions(a, spec.Topic); err != nil {
		return err
	}
	retention := "3600000"
	if err := a.AlterConfig(sarama.TopicResource, spec.Topic,
		map[string]*string{"retention.ms": &retention}, false); err != nil {
		return fmt.Errorf("alter config: %w", err)
	}
	configs, err := describeConfigs(spec, cfg)
	if err != nil {
		return err
	}
	res["retention.ms"] = configs["retention.ms"]
	res["cleanup.policy"] = configs["cleanup.policy"]
	if err := a.DeleteTopic(spec.Topic); err != nil {
		return fmt.Errorf("delete topic: %w", err)
	}
	emit(res)
	return nil
}

func main() {
	if len(os.Args) != 3 {
		fmt.Fprintln(os.Stderr, "usage: sarama-driver produce|consume|group|admin SPEC.json")
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "produce":
		var s produceSpec
		readSpec(os.Args[2], &s)
		err = produce(s)
	case "consume":
		var s consumeSpec
		readSpec(os.Args[2], &s)
		err = consume(s)
	case "group":
		var s groupSpec
		readSpec(os.Args[2], &s)
		err = group(s)
	case "admin":
		var s adminSpec
		readSpec(os.Args[2], &s)
		err = admin(s)
	default:
		err = fmt.Errorf("unknown command %q", os.Args[1])
	}
	if err != nil {
		fail(err)
	}
}
