// Command franz drives kastle with franz-go (kgo + kadm) for the compat suite
// (test_franz_go.py).
//
// Usage: franz CMD SPEC.json, CMD one of produce, consume, txn, group, etl,
// admin; each command's spec type documents its fields. Output: JSON lines
// (internal/drv), ending with one "result" line.
//
// franz-go negotiates every request's version with ApiVersions (the highest
// both sides know) unless a spec pins maxVersions ("v0.11.0", ...); results
// carry the client's and the broker's ranges so the test can check, against
// what its relay saw on the wire, that the highest common version was used.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kversion"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"

	"kastle/compat-tests/gomod/internal/drv"
)

type baseSpec struct {
	Bootstrap string `json:"bootstrap"`
	ClientID  string `json:"clientId"`
	// "v0.11.0" etc.: pin kgo.MaxVersions to that Kafka release's versions.
	MaxVersions string `json:"maxVersions"`
	// TLS and SASL (test_secure_clients.py)
	Security drv.Security `json:"security"`
}

func (b baseSpec) maxVersions() (*kversion.Versions, error) {
	if b.MaxVersions == "" {
		return kversion.Stable(), nil // kgo's own default
	}
	v := kversion.FromString(b.MaxVersions)
	if v == nil {
		return nil, fmt.Errorf("unknown maxVersions %q (known: %v)", b.MaxVersions, kversion.VersionStrings())
	}
	return v, nil
}

func (b baseSpec) opts(defaultID string) ([]kgo.Opt, error) {
	id := b.ClientID
	if id == "" {
		id = defaultID
	}
	mv, err := b.maxVersions()
	if err != nil {
		return nil, err
	}
	// warnings and errors to stderr (shown by the test on failure);
	// FRANZ_LOG=debug|info for more
	level := map[string]kgo.LogLevel{"debug": kgo.LogLevelDebug, "info": kgo.LogLevelInfo}[os.Getenv("FRANZ_LOG")]
	if level == kgo.LogLevelNone {
		level = kgo.LogLevelWarn
	}
	opts := []kgo.Opt{kgo.SeedBrokers(b.Bootstrap), kgo.ClientID(id), kgo.MaxVersions(mv),
		kgo.WithLogger(kgo.BasicLogger(os.Stderr, level, nil)),
		kgo.RetryBackoffFn(func(int) time.Duration { return 100 * time.Millisecond })}
	return b.securityOpts(opts)
}

// securityOpts adds TLS and SASL (franz-go's own PLAIN and SCRAM) to opts.
func (b baseSpec) securityOpts(opts []kgo.Opt) ([]kgo.Opt, error) {
	sec := b.Security
	if sec.UsesTLS() {
		cfg, err := sec.TLSConfig()
		if err != nil {
			return nil, err
		}
		opts = append(opts, kgo.DialTLSConfig(cfg))
	}
	if sec.UsesSASL() {
		switch sec.Mechanism {
		case "PLAIN":
			opts = append(opts, kgo.SASL(plain.Auth{User: sec.Username, Pass: sec.Password}.AsMechanism()))
		case "SCRAM-SHA-256":
			opts = append(opts, kgo.SASL(scram.Auth{User: sec.Username, Pass: sec.Password}.AsSha256Mechanism()))
		case "SCRAM-SHA-512":
			opts = append(opts, kgo.SASL(scram.Auth{User: sec.Username, Pass: sec.Password}.AsSha512Mechanism()))
		default:
			return nil, fmt.Errorf("security.mechanism %q is not supported by this driver", sec.Mechanism)
		}
	}
	return opts, nil
}

func codec(name string) (kgo.CompressionCodec, error) {
	switch name {
	case "", "none":
		return kgo.NoCompression(), nil
	case "gzip":
		return kgo.GzipCompression(), nil
	case "snappy":
		return kgo.SnappyCompression(), nil
	case "lz4":
		return kgo.Lz4Compression(), nil
	case "zstd":
		return kgo.ZstdCompression(), nil
	}
	return kgo.NoCompression(), fmt.Errorf("unknown compression %q", name)
}

func toRecord(topic string, m drv.Msg) (*kgo.Record, error) {
	hs, err := m.Headers()
	if err != nil {
		return nil, err
	}
	r := &kgo.Record{Topic: topic, Partition: m.P, Key: m.K, Value: m.V, Timestamp: m.Time(),
		Context: context.WithValue(context.Background(), idxKey{}, m.I)}
	for _, h := range hs {
		r.Headers = append(r.Headers, kgo.RecordHeader{Key: h.Key, Value: h.Value})
	}
	return r, nil
}

type idxKey struct{}

func recordLine(r *kgo.Record) map[string]any {
	hs := make([]drv.Header, 0, len(r.Headers))
	for _, h := range r.Headers {
		hs = append(hs, drv.Header{Key: h.Key, Value: h.Value})
	}
	line := drv.Record(r.Partition, r.Offset, r.Key, r.Value, hs, r.Timestamp)
	line["tt"] = map[int8]string{0: "create", 1: "append"}[r.Attrs.TimestampType()]
	return line
}

// versionTable: for each API key the broker advertises, [client max, broker
// min, broker max] (the client's max from the versions it was configured with).
func versionTable(ctx context.Context, cl *kgo.Client, mv *kversion.Versions) (map[string][3]int16, error) {
	resp, err := kadm.NewClient(cl).ApiVersions(ctx)
	if err != nil {
		return nil, fmt.Errorf("api versions: %w", err)
	}
	out := map[string][3]int16{}
	for _, b := range resp.Sorted() {
		if b.Err != nil {
			return nil, fmt.Errorf("api versions from %d: %w", b.NodeID, b.Err)
		}
		b.EachKeySorted(func(key, min, max int16) {
			cmax, ok := mv.LookupMaxKeyVersion(key)
			if !ok {
				cmax = -1
			}
			out[fmt.Sprint(key)] = [3]int16{cmax, min, max}
		})
	}
	return out, nil
}

// ---------------------------------------------------------------------------
// produce: every message to its given partition (explicit CreateTime, headers),
// acks=all and idempotent unless disabled (franz-go's defaults); one "ack" line
// per message with the producer id/epoch it was written with.

type produceSpec struct {
	baseSpec
	Topic          string    `json:"topic"`
	Compression    string    `json:"compression"`
	NotIdempotent  bool      `json:"notIdempotent"`
	Messages       []drv.Msg `json:"messages"`
	ReportVersions bool      `json:"reportVersions"`
}

func produce(path string) error {
	var spec produceSpec
	drv.ReadSpec(path, &spec)
	opts, err := spec.opts("compat-franz-producer")
	if err != nil {
		return err
	}
	c, err := codec(spec.Compression)
	if err != nil {
		return err
	}
	// No RecordDeliveryTimeout: kgo measures it from each record's Timestamp,
	// and these carry explicit CreateTimes an hour old (the ctx bounds the run).
	opts = append(opts, kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.ProducerBatchCompression(c),
		kgo.ProducerLinger(5*time.Millisecond))
	if spec.NotIdempotent {
		opts = append(opts, kgo.DisableIdempotentWrite(), kgo.RequiredAcks(kgo.AllISRAcks()))
	}
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return fmt.Errorf("new client: %w", err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	recs := make([]*kgo.Record, 0, len(spec.Messages))
	for _, m := range spec.Messages {
		r, err := toRecord(spec.Topic, m)
		if err != nil {
			return err
		}
		recs = append(recs, r)
	}
	// Produce (async) everything, then wait: batches fill as in real use.
	var wg sync.WaitGroup
	var mu sync.Mutex
	var firstErr error
	for _, r := range recs {
		wg.Add(1)
		cl.Produce(ctx, r, func(r *kgo.Record, err error) {
			defer wg.Done()
			if err != nil {
				mu.Lock()
				if firstErr == nil {
					firstErr = fmt.Errorf("message %v: %w", r.Context.Value(idxKey{}), err)
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if firstErr != nil {
		return firstErr
	}
	pids := map[string]bool{}
	for _, r := range recs {
		drv.Emit(map[string]any{"type": "ack", "i": r.Context.Value(idxKey{}), "p": r.Partition,
			"o": r.Offset, "pid": r.ProducerID, "epoch": r.ProducerEpoch})
		pids[fmt.Sprintf("%d/%d", r.ProducerID, r.ProducerEpoch)] = true
	}
	res := map[string]any{"sent": len(recs), "producers": keys(pids)}
	if spec.ReportVersions {
		mv, _ := spec.maxVersions()
		if res["versions"], err = versionTable(ctx, cl, mv); err != nil {
			return err
		}
	}
	drv.Result(res)
	return nil
}

func keys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// ---------------------------------------------------------------------------
// consume: assign every partition from offset 0 (no group) and read until each
// partition has delivered a record at offset >= until[p]-1.

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
	opts, err := spec.opts("compat-franz-consumer")
	if err != nil {
		return err
	}
	parts := map[int32]kgo.Offset{}
	want := map[int32]int64{}
	for p := int32(0); p < spec.Partitions; p++ {
		parts[p] = kgo.NewOffset().At(0)
		if w := spec.Until[fmt.Sprint(p)]; w > 0 {
			want[p] = w
		}
	}
	opts = append(opts, kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{spec.Topic: parts}),
		kgo.FetchMaxWait(200*time.Millisecond))
	if spec.ReadCommitted {
		opts = append(opts, kgo.FetchIsolationLevel(kgo.ReadCommitted()))
	}
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return fmt.Errorf("new client: %w", err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Duration(spec.TimeoutMs)*time.Millisecond)
	defer cancel()
	next := map[int32]int64{}
	done := func() bool {
		for p, w := range want {
			if next[p] < w {
				return false
			}
		}
		return true
	}
	total := 0
	for !done() {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			return fmt.Errorf("timed out: next offsets %v, wanted %v", next, want)
		}
		if err := fetchErr(fs); err != nil {
			return err
		}
		fs.EachRecord(func(r *kgo.Record) {
			drv.Emit(recordLine(r))
			next[r.Partition] = r.Offset + 1
			total++
		})
	}
	drv.Result(map[string]any{"records": total})
	return nil
}

func fetchErr(fs kgo.Fetches) error {
	var msgs []string
	for _, e := range fs.Errors() {
		msgs = append(msgs, fmt.Sprintf("%s[%d]: %v", e.Topic, e.Partition, e.Err))
	}
	if len(msgs) > 0 {
		return fmt.Errorf("fetch errors: %s", strings.Join(msgs, "; "))
	}
	return nil
}

// ---------------------------------------------------------------------------
// txn: a transactional producer runs transactions one after another, each
// committed or aborted as the spec says (after every record was acked).

type txnSpec struct {
	baseSpec
	Topic string `json:"topic"`
	TxnID string `json:"txnId"`
	Txns  []struct {
		Commit   bool      `json:"commit"`
		Messages []drv.Msg `json:"messages"`
	} `json:"txns"`
}

func txn(path string) error {
	var spec txnSpec
	drv.ReadSpec(path, &spec)
	opts, err := spec.opts("compat-franz-txn")
	if err != nil {
		return err
	}
	opts = append(opts, kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.TransactionalID(spec.TxnID),
		kgo.TransactionTimeout(30*time.Second))
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return fmt.Errorf("new client: %w", err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	for n, t := range spec.Txns {
		if err := cl.BeginTransaction(); err != nil {
			return fmt.Errorf("txn %d: begin: %w", n, err)
		}
		recs := make([]*kgo.Record, 0, len(t.Messages))
		for _, m := range t.Messages {
			r, err := toRecord(spec.Topic, m)
			if err != nil {
				return err
			}
			recs = append(recs, r)
		}
		if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
			return fmt.Errorf("txn %d: produce: %w", n, err)
		}
		for _, r := range recs {
			drv.Emit(map[string]any{"type": "ack", "txn": n, "i": r.Context.Value(idxKey{}),
				"p": r.Partition, "o": r.Offset, "pid": r.ProducerID, "epoch": r.ProducerEpoch})
		}
		if err := cl.EndTransaction(ctx, kgo.TransactionEndTry(t.Commit)); err != nil {
			return fmt.Errorf("txn %d: end (commit=%v): %w", n, t.Commit, err)
		}
	}
	drv.Result(map[string]any{"txns": len(spec.Txns)})
	return nil
}

// ---------------------------------------------------------------------------
// group: one consumer-group member (classic protocol) that consumes, commits
// (autocommit every 200 ms, and synchronously before giving partitions up)
// and prints "assigned"/"revoked" lines with its whole assignment after each
// change, until stopFile exists; then it leaves the group.

type groupSpec struct {
	baseSpec
	Topic    string `json:"topic"`
	Group    string `json:"group"`
	Name     string `json:"name"`
	Balancer string `json:"balancer"` // cooperative-sticky | range | sticky | round-robin
	StopFile string `json:"stopFile"`
}

func balancer(name string) (kgo.GroupBalancer, error) {
	switch name {
	case "", "cooperative-sticky":
		return kgo.CooperativeStickyBalancer(), nil
	case "range":
		return kgo.RangeBalancer(), nil
	case "sticky":
		return kgo.StickyBalancer(), nil
	case "round-robin":
		return kgo.RoundRobinBalancer(), nil
	}
	return nil, fmt.Errorf("unknown balancer %q", name)
}

func group(path string) error {
	var spec groupSpec
	drv.ReadSpec(path, &spec)
	opts, err := spec.opts(spec.Name)
	if err != nil {
		return err
	}
	bal, err := balancer(spec.Balancer)
	if err != nil {
		return err
	}
	var mu sync.Mutex
	owned := map[int32]bool{}
	var errs []string
	sortedOwned := func() []int32 {
		out := []int32{}
		for p := range owned {
			out = append(out, p)
		}
		sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
		return out
	}
	change := func(kind string, cl *kgo.Client, ps map[string][]int32, add bool) {
		mu.Lock()
		defer mu.Unlock()
		for _, p := range ps[spec.Topic] {
			if add {
				owned[p] = true
			} else {
				delete(owned, p)
			}
		}
		_, gen := cl.GroupMetadata()
		drv.Emit(map[string]any{"type": kind, "name": spec.Name, "changed": ps[spec.Topic],
			"partitions": sortedOwned(), "generation": gen})
	}
	revoke := func(kind string) func(context.Context, *kgo.Client, map[string][]int32) {
		return func(ctx context.Context, cl *kgo.Client, ps map[string][]int32) {
			// replaces kgo's default revoke, which is this commit
			if kind == "revoked" {
				if err := cl.CommitUncommittedOffsets(ctx); err != nil {
					mu.Lock()
					errs = append(errs, "commit on revoke: "+err.Error())
					mu.Unlock()
				}
			}
			change(kind, cl, ps, false)
		}
	}
	opts = append(opts, kgo.ConsumerGroup(spec.Group), kgo.ConsumeTopics(spec.Topic), kgo.Balancers(bal),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.SessionTimeout(6*time.Second), kgo.HeartbeatInterval(300*time.Millisecond),
		kgo.AutoCommitInterval(200*time.Millisecond), kgo.FetchMaxWait(100*time.Millisecond),
		kgo.OnPartitionsAssigned(func(_ context.Context, cl *kgo.Client, ps map[string][]int32) {
			change("assigned", cl, ps, true)
		}),
		kgo.OnPartitionsRevoked(revoke("revoked")),
		kgo.OnPartitionsLost(revoke("lost")))
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return fmt.Errorf("new client: %w", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		<-drv.StopWhenFileExists(spec.StopFile)
		cancel()
	}()
	for ctx.Err() == nil {
		fs := cl.PollFetches(ctx)
		for _, e := range fs.Errors() {
			if !errors.Is(e.Err, context.Canceled) {
				mu.Lock()
				errs = append(errs, fmt.Sprintf("fetch %s[%d]: %v", e.Topic, e.Partition, e.Err))
				mu.Unlock()
			}
		}
		fs.EachRecord(func(r *kgo.Record) {
			line := recordLine(r)
			line["name"] = spec.Name
			drv.Emit(line)
		})
	}
	cl.Close() // leaves the group; the revoke callback commits first
	mu.Lock()
	defer mu.Unlock()
	if len(errs) > 0 {
		return fmt.Errorf("group member errors: %s", strings.Join(errs, "; "))
	}
	drv.Result(nil)
	return nil
}

// ---------------------------------------------------------------------------
// etl: consume-transform-produce in a kgo.GroupTransactSession: each poll's
// records go to the output topic (same partition, value "o:"+input value,
// key = input offset) in one transaction together with the group's offsets.
// Every abortEvery-th transaction is ended with TryAbort on purpose: the
// session then rewinds to the committed offsets and the records are processed
// again. Runs until the committed input offsets reach until[p].

type etlSpec struct {
	baseSpec
	Input      string           `json:"input"`
	Output     string           `json:"output"`
	Group      string           `json:"group"`
	TxnID      string           `json:"txnId"`
	Until      map[string]int64 `json:"until"`
	AbortEvery int              `json:"abortEvery"`
	TimeoutMs  int64            `json:"timeoutMs"`
}

func etl(path string) error {
	var spec etlSpec
	drv.ReadSpec(path, &spec)
	opts, err := spec.opts("compat-franz-etl")
	if err != nil {
		return err
	}
	opts = append(opts, kgo.ConsumerGroup(spec.Group), kgo.ConsumeTopics(spec.Input),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.TransactionalID(spec.TxnID), kgo.TransactionTimeout(30*time.Second),
		kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.DefaultProduceTopic(spec.Output),
		kgo.SessionTimeout(6*time.Second), kgo.HeartbeatInterval(300*time.Millisecond),
		kgo.FetchMaxWait(100*time.Millisecond), kgo.FetchMaxPartitionBytes(8<<10))
	sess, err := kgo.NewGroupTransactSession(opts...)
	if err != nil {
		return fmt.Errorf("new group transact session: %w", err)
	}
	defer sess.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Duration(spec.TimeoutMs)*time.Millisecond)
	defer cancel()
	committed := map[int32]int64{}
	done := func() bool {
		for p, w := range spec.Until {
			var pp int32
			fmt.Sscan(p, &pp)
			if committed[pp] < w {
				return false
			}
		}
		return true
	}
	txns, commits, aborts := 0, 0, 0
	for !done() {
		fs := sess.PollFetches(ctx)
		if ctx.Err() != nil {
			return fmt.Errorf("timed out: committed input offsets %v, wanted %v (%d txns)", committed, spec.Until, txns)
		}
		if err := fetchErr(fs); err != nil {
			return err
		}
		if fs.Empty() {
			continue
		}
		if err := sess.Begin(); err != nil {
			return fmt.Errorf("begin: %w", err)
		}
		next := map[int32]int64{}
		n := 0
		fs.EachRecord(func(r *kgo.Record) {
			out := &kgo.Record{Partition: r.Partition, Key: []byte(fmt.Sprint(r.Offset)),
				Value: append([]byte("o:"), r.Value...)}
			sess.Produce(ctx, out, func(_ *kgo.Record, err error) {
				if err != nil {
					drv.Emit(map[string]any{"type": "produce-error", "error": err.Error()})
				}
			})
			next[r.Partition] = r.Offset + 1
			n++
		})
		txns++
		want := spec.AbortEvery <= 0 || txns%spec.AbortEvery != 0
		// deliver before ending: an abort would drop records still buffered,
		// and the aborted ones must reach the log to prove they stay invisible
		if err := sess.Client().Flush(ctx); err != nil {
			return fmt.Errorf("flush: %w", err)
		}
		ok, err := sess.End(ctx, kgo.TransactionEndTry(want))
		if err != nil {
			return fmt.Errorf("end transaction %d (commit=%v): %w", txns, want, err)
		}
		if ok {
			commits++
			for p, o := range next {
				committed[p] = o
			}
		} else {
			aborts++
		}
		drv.Emit(map[string]any{"type": "txn", "n": txns, "records": n, "wantCommit": want, "committed": ok,
			"next": next})
	}
	drv.Result(map[string]any{"txns": txns, "commits": commits, "aborts": aborts})
	return nil
}

func main() {
	drv.Run("franz", map[string]func(string) error{
		"produce": produce, "consume": consume, "txn": txn, "group": group, "etl": etl, "admin": admin,
	})
}
