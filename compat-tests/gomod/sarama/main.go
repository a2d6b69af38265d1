// Command sarama drives kastle with a current IBM/sarama (the version pinned in
// ../go.mod) for the compat suite (test_sarama_modern.py); Debian's sarama 1.22
// has its own driver in ../../go.
//
// Usage: sarama CMD SPEC.json, CMD one of produce, consume, txn, group, admin;
// each command's spec type documents its fields. Output: JSON lines
// (internal/drv), ending with one "result" line.
//
// sarama picks each request's version from config.Version (here a modern Kafka,
// "4.0.0" unless the spec says otherwise) and lowers it to the broker's
// maximum from ApiVersions.
package main

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/IBM/sarama"

	"kastle/compat-tests/gomod/internal/drv"
)

type baseSpec struct {
	Bootstrap string `json:"bootstrap"`
	Version   string `json:"version"` // sarama.ParseKafkaVersion; default 4.0.0
	// TLS and SASL (test_secure_clients.py)
	Security drv.Security `json:"security"`
}

func newConfig(b baseSpec, clientID string) (*sarama.Config, error) {
	cfg := sarama.NewConfig()
	cfg.ClientID = clientID
	ver := b.Version
	if ver == "" {
		ver = "4.0.0"
	}
	v, err := sarama.ParseKafkaVersion(ver)
	if err != nil {
		return nil, fmt.Errorf("version %q: %w", ver, err)
	}
	cfg.Version = v
	cfg.Metadata.Retry.Backoff = 100 * time.Millisecond
	cfg.Net.DialTimeout = 10 * time.Second
	return cfg, applySecurity(cfg, b.Security)
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

func toMessage(topic string, m drv.Msg) (*sarama.ProducerMessage, error) {
	pm := &sarama.ProducerMessage{Topic: topic, Partition: m.P, Timestamp: m.Time(), Metadata: m.I}
	if m.K != nil {
		pm.Key = sarama.ByteEncoder(m.K)
	}
	if m.V != nil {
		pm.Value = sarama.ByteEncoder(m.V)
	}
	hs, err := m.Headers()
	if err != nil {
		return nil, err
	}
	for _, h := range hs {
		pm.Headers = append(pm.Headers, sarama.RecordHeader{Key: []byte(h.Key), Value: h.Value})
	}
	return pm, nil
}

// sendErr names the broker's error rather than "failed to deliver N messages".
func sendErr(err error) error {
	var perr sarama.ProducerErrors
	if errors.As(err, &perr) && len(perr) > 0 {
		return fmt.Errorf("%d failed, first: %w", len(perr), perr[0].Err)
	}
	return err
}

func recordLine(m *sarama.ConsumerMessage) map[string]any {
	hs := make([]drv.Header, 0, len(m.Headers))
	for _, h := range m.Headers {
		hs = append(hs, drv.Header{Key: string(h.Key), Value: h.Value})
	}
	return drv.Record(m.Partition, m.Offset, m.Key, m.Value, hs, m.Timestamp)
}

// ---------------------------------------------------------------------------
// produce: a SyncProducer with acks=all sends the messages in chunks to their
// given partitions; one "ack" line per message.

type produceSpec struct {
	baseSpec
	Topic       string    `json:"topic"`
	Idempotent  bool      `json:"idempotent"`
	Compression string    `json:"compression"`
	Messages    []drv.Msg `json:"messages"`
}

func produce(path string) error {
	var spec produceSpec
	drv.ReadSpec(path, &spec)
	cfg, err := newConfig(spec.baseSpec, "compat-sarama161-producer")
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
		end := min(start+chunk, len(spec.Messages))
		batch := make([]*sarama.ProducerMessage, 0, end-start)
		for _, m := range spec.Messages[start:end] {
			pm, err := toMessage(spec.Topic, m)
			if err != nil {
				return err
			}
			batch = append(batch, pm)
		}
		if err := p.SendMessages(batch); err != nil {
			_ = p.Close()
			return fmt.Errorf("send messages %d..%d: %w", start, end, sendErr(err))
		}
		for _, pm := range batch {
			drv.Emit(map[string]any{"type": "ack", "i": pm.Metadata, "p": pm.Partition, "o": pm.Offset})
		}
	}
	if err := p.Close(); err != nil {
		return fmt.Errorf("close producer: %w", err)
	}
	drv.Result(map[string]any{"sent": len(spec.Messages)})
	return nil
}

// ---------------------------------------------------------------------------
// consume: one partition consumer per partition from the oldest offset until
// it delivered a record at offset >= until[p]-1.

type consumeSpec struct {
	baseSpec
	Topic         string           `json:"topic"`
	Partitions    int32            `json:"partitions"`
	Until         map[string]int64 `json:"until"`
	TimeoutMs     int64            `json:"timeoutMs"`
	ReadCommitted bool             `json:"readCommitted"`
}

func consume(path string) error {
	var spec consumeSpec
	drv.ReadSpec(path, &spec)
	cfg, err := newConfig(spec.baseSpec, "compat-sarama161-consumer")
	if err != nil {
		return err
	}
	cfg.Consumer.Return.Errors = true
	cfg.Consumer.MaxWaitTime = 200 * time.Millisecond
	if spec.ReadCommitted {
		cfg.Consumer.IsolationLevel = sarama.ReadCommitted
	}
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
				drv.Emit(recordLine(m))
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
	drv.Result(map[string]any{"records": total})
	return nil
}

// ---------------------------------------------------------------------------
// txn: a transactional SyncProducer runs transactions one after another; each
// sends its messages, optionally adds group offsets (AddOffsetsToTxn, i.e.
// TxnOffsetCommit), and commits or aborts.

type txnSpec struct {
	baseSpec
	Topic string `json:"topic"`
	TxnID string `json:"txnId"`
	Txns  []struct {
		Commit   bool      `json:"commit"`
		Messages []drv.Msg `json:"messages"`
		// offsets to commit in the transaction: group, topic, partition -> offset
		Group   string           `json:"group"`
		OTopic  string           `json:"offsetsTopic"`
		Offsets map[string]int64 `json:"offsets"`
	} `json:"txns"`
}

func txn(path string) error {
	var spec txnSpec
	drv.ReadSpec(path, &spec)
	cfg, err := newConfig(spec.baseSpec, "compat-sarama161-txn")
	if err != nil {
		return err
	}
	cfg.Producer.RequiredAcks = sarama.WaitForAll
	cfg.Producer.Return.Successes = true
	cfg.Producer.Partitioner = sarama.NewManualPartitioner
	cfg.Producer.Idempotent = true
	cfg.Producer.Transaction.ID = spec.TxnID
	cfg.Producer.Transaction.Timeout = 30 * time.Second
	cfg.Net.MaxOpenRequests = 1
	p, err := sarama.NewSyncProducer([]string{spec.Bootstrap}, cfg)
	if err != nil {
		return fmt.Errorf("new producer: %w", err)
	}
	defer p.Close()
	for n, t := range spec.Txns {
		if err := p.BeginTxn(); err != nil {
			return fmt.Errorf("txn %d: begin: %w", n, err)
		}
		batch := make([]*sarama.ProducerMessage, 0, len(t.Messages))
		for _, m := range t.Messages {
			pm, err := toMessage(spec.Topic, m)
			if err != nil {
				return err
			}
			batch = append(batch, pm)
		}
		if err := p.SendMessages(batch); err != nil {
			return fmt.Errorf("txn %d: send: %w", n, sendErr(err))
		}
		for _, pm := range batch {
			drv.Emit(map[string]any{"type": "ack", "txn": n, "i": pm.Metadata, "p": pm.Partition, "o": pm.Offset})
		}
		if t.Group != "" {
			var pos []*sarama.PartitionOffsetMetadata
			for ps, o := range t.Offsets {
				var part int32
				fmt.Sscan(ps, &part)
				pos = append(pos, &sarama.PartitionOffsetMetadata{Partition: part, Offset: o})
			}
			if err := p.AddOffsetsToTxn(map[string][]*sarama.PartitionOffsetMetadata{t.OTopic: pos}, t.Group); err != nil {
				return fmt.Errorf("txn %d: add offsets: %w", n, err)
			}
		}
		end := p.CommitTxn
		if !t.Commit {
			end = p.AbortTxn
		}
		if err := end(); err != nil {
			return fmt.Errorf("txn %d: end (commit=%v): %w", n, t.Commit, err)
		}
	}
	drv.Result(map[string]any{"txns": len(spec.Txns)})
	return nil
}

// ---------------------------------------------------------------------------
// group: a ConsumerGroup member (range assignor, sarama's default) that
// consumes and commits until stopFile exists, then leaves the group
// (committing what it marked). "assigned" lines carry its whole assignment.

type groupSpec struct {
	baseSpec
	Topic    string `json:"topic"`
	Group    string `json:"group"`
	StopFile string `json:"stopFile"`
	Name     string `json:"name"`
}

type groupHandler struct{ name string }

func (h groupHandler) Setup(s sarama.ConsumerGroupSession) error {
	parts := []int32{}
	for _, ps := range s.Claims() {
		parts = append(parts, ps...)
	}
	sort.Slice(parts, func(i, j int) bool { return parts[i] < parts[j] })
	drv.Emit(map[string]any{"type": "assigned", "name": h.name, "partitions": parts,
		"generation": s.GenerationID()})
	return nil
}

func (h groupHandler) Cleanup(sarama.ConsumerGroupSession) error { return nil }

func (h groupHandler) ConsumeClaim(s sarama.ConsumerGroupSession, c sarama.ConsumerGroupClaim) error {
	for m := range c.Messages() {
		line := recordLine(m)
		line["name"] = h.name
		drv.Emit(line)
		s.MarkMessage(m, "")
	}
	return nil
}

func group(path string) error {
	var spec groupSpec
	drv.ReadSpec(path, &spec)
	cfg, err := newConfig(spec.baseSpec, spec.Name)
	if err != nil {
		return err
	}
	cfg.Consumer.Return.Errors = true
	cfg.Consumer.Offsets.Initial = sarama.OffsetOldest
	cfg.Consumer.Offsets.AutoCommit.Interval = 100 * time.Millisecond
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
		<-drv.StopWhenFileExists(spec.StopFile)
		cancel()
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
	drv.Result(nil)
	return nil
}

func main() {
	drv.Run("sarama", map[string]func(string) error{
		"produce": produce, "consume": consume, "txn": txn, "group": group, "admin": admin,
	})
}
