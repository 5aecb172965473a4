package ingest

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/breachwatch/breachwatch/event"
	"github.com/breachwatch/breachwatch/store/sqlite"
	"github.com/breachwatch/breachwatch/store/storetest"
)

const (
	accessTopic = "breachwatch.access"
	configTopic = "breachwatch.config"
)

// faultyStore wraps a real store and fails writes while failing is set:
// a store outage, as the consumer sees it.
type faultyStore struct {
	Store
	failing atomic.Bool
	calls   atomic.Int64
}

func (f *faultyStore) Write(ctx context.Context, b *event.Batch) error {
	f.calls.Add(1)
	if f.failing.Load() {
		return errors.New("store unavailable (injected)")
	}
	return f.Store.Write(ctx, b)
}

type counter interface {
	Count(ctx context.Context) (int64, int64, error)
}

func newCluster(t *testing.T, opts ...kfake.Opt) *kfake.Cluster {
	t.Helper()
	c, err := kfake.NewCluster(append([]kfake.Opt{kfake.SeedTopics(3, accessTopic, configTopic, accessTopic+".dlq", configTopic+".dlq")}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

func newSQLite(t *testing.T) *sqlite.Store {
	t.Helper()
	s, err := sqlite.Open(context.Background(), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

type running struct {
	c      *Consumer
	m      *Metrics
	cancel context.CancelFunc
	done   chan struct{} // closed when Run returned
	err    error         // what Run returned
}

// stop stops the consumer (a clean shutdown) and checks how it ended. It may
// be called more than once.
func (r *running) stop(t *testing.T) {
	t.Helper()
	r.cancel()
	<-r.done
	if r.err != nil {
		t.Errorf("consumer.Run: %v", r.err)
	}
}

func startConsumer(t *testing.T, brokers []string, st Store, o ConsumerOptions) *running {
	return startConsumerTo(t, brokers, st, nil, o)
}

func startConsumerTo(t *testing.T, brokers []string, st Store, next Handoff, o ConsumerOptions) *running {
	t.Helper()
	m, err := NewMetrics(prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	log := zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel))
	w := NewWriter(st, Backoff{Min: 10 * time.Millisecond, Max: 100 * time.Millisecond}, m, log)
	o.AccessTopic, o.ConfigTopic = accessTopic, configTopic
	if o.MaxWait == 0 {
		o.MaxWait = 50 * time.Millisecond
	}
	o.Backoff = Backoff{Min: 10 * time.Millisecond, Max: 200 * time.Millisecond}
	c, err := NewConsumer(KafkaOptions{Brokers: brokers}, o, w, next, m, log)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{c: c, m: m, cancel: cancel, done: make(chan struct{})}
	go func() {
		r.err = c.Run(ctx)
		close(r.done)
	}()
	t.Cleanup(func() { r.stop(t) })
	return r
}

func producer(t *testing.T, brokers []string) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ProducerLinger(5*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}

func produce(t *testing.T, cl *kgo.Client, recs ...*kgo.Record) {
	t.Helper()
	if err := cl.ProduceSync(context.Background(), recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
}

func accessRecords(prefix string, n int) []*kgo.Record {
	evs := storetest.Access(prefix, storetest.Day0, n)
	recs := make([]*kgo.Record, n)
	for i := range evs {
		recs[i] = &kgo.Record{Topic: accessTopic, Key: []byte(evs[i].Tenant), Value: evs[i].AppendJSON(nil)}
	}
	return recs
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func countIs(t *testing.T, s counter, access, config int64) func() bool {
	return func() bool {
		a, c, err := s.Count(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		return a == access && c == config
	}
}

// committedAll reports whether the group has committed the end offset of
// every partition of topic.
func committedAll(t *testing.T, adm *kadm.Client, group string, topics ...string) bool {
	t.Helper()
	ctx := context.Background()
	ends, err := adm.ListEndOffsets(ctx, topics...)
	if err != nil {
		t.Fatal(err)
	}
	committed, err := adm.FetchOffsets(ctx, group)
	if err != nil {
		return false
	}
	ok := true
	ends.Each(func(o kadm.ListedOffset) {
		c, found := committed.Lookup(o.Topic, o.Partition)
		if o.Offset > 0 && (!found || c.At != o.Offset) {
			ok = false
		}
	})
	return ok
}

func TestConsumerStoresValidAndDeadLettersInvalid(t *testing.T) {
	c := newCluster(t)
	brokers := c.ListenAddrs()
	st := newSQLite(t)
	r := startConsumer(t, brokers, st, ConsumerOptions{Group: "g1", MaxEventBytes: 4096})

	cl := producer(t, brokers)
	good := accessRecords("ok", 500)
	invalid := []struct {
		value, kind, field, reason string
	}{
		{`{"id":"x1","time":`, "syntax", "", "invalid JSON"},
		{`not json at all`, "syntax", "", "invalid JSON"},
		{strings.Replace(string(good[0].Value), `"tenant":"cust-0000",`, "", 1), "missing", "tenant", "required"},
		{strings.Replace(string(good[0].Value), `"records":1`, `"records":"1"`, 1), "type", "records", "want a non-negative integer"},
		{strings.Replace(string(good[0].Value), `"action":"read"`, `"action":"exfiltrate"`, 1), "value", "action", "must be one of"},
		{`{"id":"huge","pad":"` + strings.Repeat("x", 5000) + `"}`, "too_large", "", "larger than the limit of 4096"},
		{``, "syntax", "", "empty input"},
		// A date far ahead of the receiving clock would move detection's
		// clocks past every real event.
		{regexp.MustCompile(`"time":"[^"]*"`).ReplaceAllString(string(good[0].Value), `"time":"2105-12-31T00:00:00Z"`), "value", "time", "after the time it was received"},
	}
	// Interleave: valid, bad, valid, ... so valid records sit around each bad one.
	var recs []*kgo.Record
	for i, g := range good {
		recs = append(recs, g)
		if i%50 == 0 && i/50 < len(invalid) {
			recs = append(recs, &kgo.Record{Topic: accessTopic, Key: []byte("k"), Value: []byte(invalid[i/50].value),
				Headers: []kgo.RecordHeader{{Key: "origin", Value: []byte("test")}}})
		}
	}
	recs = append(recs, &kgo.Record{Topic: configTopic, Value: []byte(`{"id":"c1","time":"2026-11-20T08:00:00Z","resource":{"id":"b","type":"bucket"},"setting":"public_access","after":true}`)},
		&kgo.Record{Topic: configTopic, Value: []byte(`{"id":"c2","time":"2026-11-20T08:00:00Z","resource":{"id":"b","type":"bucket"},"setting":"public_access"}`)})
	produce(t, cl, recs...)

	waitFor(t, "500 access events and 1 change stored", 20*time.Second, countIs(t, st, 500, 1))
	adm := kadm.NewClient(cl)
	waitFor(t, "all offsets committed", 20*time.Second, func() bool { return committedAll(t, adm, "g1", accessTopic, configTopic) })

	// Read the dead-letter topics back.
	dl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ConsumeTopics(accessTopic+".dlq", configTopic+".dlq"),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer dl.Close()
	var dead []*kgo.Record
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for len(dead) < len(invalid)+1 && ctx.Err() == nil {
		dead = append(dead, dl.PollFetches(ctx).Records()...)
	}
	if len(dead) != len(invalid)+1 {
		t.Fatalf("dead-letter topics hold %d records, want %d", len(dead), len(invalid)+1)
	}
	byValue := map[string]*kgo.Record{}
	for _, d := range dead {
		byValue[string(d.Value)] = d
	}
	for _, want := range invalid {
		d := byValue[want.value]
		if d == nil {
			t.Errorf("invalid record %.40q was not dead-lettered verbatim", want.value)
			continue
		}
		h := headers(d)
		if h[HeaderErrorKind] != want.kind || h[HeaderErrorField] != want.field || !strings.Contains(h[HeaderError], want.reason) {
			t.Errorf("record %.40q: headers %v; want kind %s field %q reason containing %q", want.value, h, want.kind, want.field, want.reason)
		}
		if h["origin"] != "test" || h[HeaderSourceTopic] != accessTopic || h[HeaderSourceOffset] == "" || d.Topic != accessTopic+".dlq" {
			t.Errorf("record %.40q: lost its own headers or its source: topic %s headers %v", want.value, d.Topic, h)
		}
	}
	if h := headers(byValue[`{"id":"c2","time":"2026-11-20T08:00:00Z","resource":{"id":"b","type":"bucket"},"setting":"public_access"}`]); h[HeaderErrorField] != "after" {
		t.Errorf("config record without after: headers %v", h)
	}
	r.stop(t)
}

func headers(r *kgo.Record) map[string]string {
	m := map[string]string{}
	if r == nil {
		return m
	}
	for _, h := range r.Headers {
		m[h.Key] = string(h.Value)
	}
	return m
}

// TestConsumerHoldsOffsetsWhileStoreIsDown: while the store fails, nothing
// is committed and the records wait; when it is back, everything is stored
// and committed.
func TestConsumerHoldsOffsetsWhileStoreIsDown(t *testing.T) {
	c := newCluster(t)
	brokers := c.ListenAddrs()
	st := &faultyStore{Store: newSQLite(t)}
	st.failing.Store(true)
	startConsumer(t, brokers, st, ConsumerOptions{Group: "g2", MaxBatch: 100})
	cl := producer(t, brokers)
	produce(t, cl, accessRecords("down", 1000)...)

	waitFor(t, "several failed write attempts", 10*time.Second, func() bool { return st.calls.Load() >= 5 })
	adm := kadm.NewClient(cl)
	committed, err := adm.FetchOffsets(context.Background(), "g2")
	if err == nil {
		committed.Each(func(o kadm.OffsetResponse) {
			if o.Topic == accessTopic && o.At > 0 {
				t.Errorf("offset %d committed on partition %d while the store was down", o.At, o.Partition)
			}
		})
	}
	sq := st.Store.(*sqlite.Store)
	if a, _, _ := sq.Count(context.Background()); a != 0 {
		t.Fatalf("%d events stored while the store was failing", a)
	}
	st.failing.Store(false)
	waitFor(t, "all 1000 stored after the outage", 20*time.Second, countIs(t, sq, 1000, 0))
	waitFor(t, "all offsets committed", 20*time.Second, func() bool { return committedAll(t, adm, "g2", accessTopic) })
}

// TestConsumerDeadLetterAckBeforeCommit: a bad record's offset is committed
// only after the dead-letter topic acknowledged it.
func TestConsumerDeadLetterAckBeforeCommit(t *testing.T) {
	c := newCluster(t)
	brokers := c.ListenAddrs()
	cl := producer(t, brokers)
	recs := accessRecords("dlq", 2)
	for _, r := range recs {
		r.Key = []byte("same") // one partition
	}
	bad := &kgo.Record{Topic: accessTopic, Key: []byte("same"), Value: []byte(`{broken`)}
	produce(t, cl, recs[0], bad, recs[1])

	// From now on the broker refuses every produce (retriably): only the
	// consumer's dead-letter writes are affected.
	var refuse atomic.Bool
	var refused atomic.Int64
	refuse.Store(true)
	c.ControlKey(int16(kmsg.Produce), func(req kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		if !refuse.Load() {
			return nil, nil, false
		}
		refused.Add(1)
		return refuseProduce(req.(*kmsg.ProduceRequest)), nil, true
	})
	st := newSQLite(t)
	first := startConsumer(t, brokers, st, ConsumerOptions{Group: "g3"})

	waitFor(t, "the good records stored", 10*time.Second, countIs(t, st, 2, 0))
	waitFor(t, "the dead-letter write tried and refused", 10*time.Second, func() bool { return refused.Load() >= 2 })
	// A clean stop commits every marked offset: had the batch been marked
	// before the dead-letter write was acknowledged, its offsets would be
	// committed now.
	first.stop(t)
	adm := kadm.NewClient(cl)
	if committedAll(t, adm, "g3", accessTopic) {
		t.Fatal("offsets committed although the dead-letter write was not acknowledged")
	}
	refuse.Store(false)
	startConsumer(t, brokers, st, ConsumerOptions{Group: "g3"})
	waitFor(t, "offsets committed once the dead-letter write went through", 20*time.Second,
		func() bool { return committedAll(t, adm, "g3", accessTopic) })
	ends, err := adm.ListEndOffsets(context.Background(), accessTopic+".dlq")
	if err != nil {
		t.Fatal(err)
	}
	var n int64
	ends.Each(func(o kadm.ListedOffset) { n += o.Offset })
	if n != 1 {
		t.Errorf("dead-letter topic holds %d records, want 1", n)
	}
}

// refuseProduce answers a produce request with a retriable error for every
// partition in it.
func refuseProduce(req *kmsg.ProduceRequest) *kmsg.ProduceResponse {
	resp := req.ResponseKind().(*kmsg.ProduceResponse)
	for _, t := range req.Topics {
		rt := kmsg.NewProduceResponseTopic()
		rt.Topic, rt.TopicID = t.Topic, t.TopicID
		for _, p := range t.Partitions {
			rp := kmsg.NewProduceResponseTopicPartition()
			rp.Partition = p.Partition
			rp.ErrorCode = kerr.NotLeaderForPartition.Code
			rt.Partitions = append(rt.Partitions, rp)
		}
		resp.Topics = append(resp.Topics, rt)
	}
	return resp
}

// TestConsumerRebalanceLosesNothing: members join and leave the group
// mid-stream; every event is stored.
func TestConsumerRebalanceLosesNothing(t *testing.T) {
	c := newCluster(t)
	brokers := c.ListenAddrs()
	st := newSQLite(t)
	const n = 6000
	cl := producer(t, brokers)
	first := startConsumer(t, brokers, st, ConsumerOptions{Group: "g4", MaxBatch: 200})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		recs := accessRecords("rb", n)
		for i := 0; i < n; i += 500 {
			produce(t, cl, recs[i:i+500]...)
			time.Sleep(20 * time.Millisecond)
		}
	}()
	waitFor(t, "some events stored", 10*time.Second, func() bool {
		a, _, _ := st.Count(context.Background())
		return a > 500
	})
	// The second member writes two batches at once; its marks stay in order.
	second := startConsumer(t, brokers, st, ConsumerOptions{Group: "g4", MaxBatch: 200, Writers: 2})
	waitFor(t, "more events stored", 10*time.Second, func() bool {
		a, _, _ := st.Count(context.Background())
		return a > 2500
	})
	first.stop(t) // clean leave: its partitions move to the second member
	wg.Wait()
	waitFor(t, fmt.Sprintf("all %d events stored", n), 30*time.Second, countIs(t, st, n, 0))
	adm := kadm.NewClient(cl)
	waitFor(t, "all offsets committed", 20*time.Second, func() bool { return committedAll(t, adm, "g4", accessTopic) })
	second.stop(t)
}

// TestEmbeddedBrokerKeepsRecordsAcrossRestart: with a data directory, what
// the embedded broker acknowledged is still there after it restarts.
func TestEmbeddedBrokerKeepsRecordsAcrossRestart(t *testing.T) {
	dir := t.TempDir()
	log := zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel))
	opts := EmbeddedOptions{Addr: "127.0.0.1:0", DataDir: dir, SyncWrites: true, Partitions: 2, Topics: []string{accessTopic, configTopic}}
	e, err := StartEmbedded(opts, log)
	if err != nil {
		t.Fatal(err)
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(e.Addr()))
	if err != nil {
		t.Fatal(err)
	}
	produce(t, cl, accessRecords("emb", 300)...)
	cl.Close()
	e.Close()

	opts.Addr = e.Addr() // same port again
	e, err = StartEmbedded(opts, log)
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	st := newSQLite(t)
	startConsumer(t, []string{e.Addr()}, st, ConsumerOptions{Group: "g5"})
	waitFor(t, "the 300 records from before the restart", 20*time.Second, countIs(t, st, 300, 0))
}

// handoffRecorder is a detection stage that records what it was handed,
// and checks the store already holds it.
type handoffRecorder struct {
	mu       sync.Mutex
	st       *sqlite.Store
	ids      map[string]int
	before   int // batches handed before they were in the store
	assigned []string
	empty    []string        // partitions said empty when assigned
	badClock int             // batches whose clocks do not say the newest event time of each partition
	behind   int             // clocks that said their partition had more to deliver
	last     map[string]bool // each partition's last clock: behind?
}

func (h *handoffRecorder) Handle(ctx context.Context, b *event.Batch) {
	h.mu.Lock()
	defer h.mu.Unlock()
	a, _, _ := h.st.Count(ctx)
	if a < int64(len(b.Access)) {
		h.before++
	}
	for i := range b.Access {
		h.ids[b.Access[i].ID]++
	}
	// Every partition's clock is the newest time of the events it gave.
	var newest time.Time
	for i := range b.Access {
		if b.Access[i].Time.After(newest) {
			newest = b.Access[i].Time
		}
	}
	var clockNewest time.Time
	for _, c := range b.Clocks {
		if !strings.HasPrefix(c.Source, "kafka:"+accessTopic+"/") {
			h.badClock++
		}
		if c.Behind {
			h.behind++
		}
		h.last[c.Source] = c.Behind
		if c.Newest.After(clockNewest) {
			clockNewest = c.Newest
		}
	}
	if !clockNewest.Equal(newest) {
		h.badClock++
	}
}

func (h *handoffRecorder) Assigned(sources []string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.assigned = append(h.assigned, sources...)
}

func (h *handoffRecorder) Revoked([]string) {}

func (h *handoffRecorder) Empty(sources []string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.empty = append(h.empty, sources...)
}

// TestConsumerHandsStoredBatchesOn: every stored event is handed to the
// next stage once, after the store has it, and offsets are committed. The
// records wait as a backlog: the batch clocks say their partition has more
// to deliver until its last batch.
func TestConsumerHandsStoredBatchesOn(t *testing.T) {
	c := newCluster(t)
	brokers := c.ListenAddrs()
	st := newSQLite(t)
	h := &handoffRecorder{st: st, ids: map[string]int{}, last: map[string]bool{}}
	cl := producer(t, brokers)
	produce(t, cl, accessRecords("h", 3000)...)
	startConsumerTo(t, brokers, st, h, ConsumerOptions{Group: "g6", MaxBatch: 300})
	waitFor(t, "all 3000 handed on", 20*time.Second, func() bool {
		h.mu.Lock()
		defer h.mu.Unlock()
		return len(h.ids) == 3000
	})
	adm := kadm.NewClient(cl)
	waitFor(t, "all offsets committed", 20*time.Second, func() bool { return committedAll(t, adm, "g6", accessTopic) })
	h.mu.Lock()
	defer h.mu.Unlock()
	for id, n := range h.ids {
		if n != 1 {
			t.Errorf("event %s handed on %d times", id, n)
		}
	}
	if h.before > 0 {
		t.Errorf("%d batches were handed on before the store had them", h.before)
	}
	if h.badClock > 0 {
		t.Errorf("%d batches carried clocks that do not match their events", h.badClock)
	}
	if h.behind == 0 {
		t.Error("no batch of the 3000-record backlog said its partition had more to deliver")
	}
	for src, behind := range h.last {
		if behind {
			t.Errorf("the last batch of %s says it has more to deliver", src)
		}
	}
	for p := range 3 {
		if src := ClockSource(accessTopic, int32(p)); !slices.Contains(h.assigned, src) {
			t.Errorf("the next stage was not told of partition %s (told %v)", src, h.assigned)
		}
		// The config topic is empty: each of its partitions is said so
		// (it would hold the watermark back until its idle timeout).
		if src := ClockSource(configTopic, int32(p)); !slices.Contains(h.empty, src) {
			t.Errorf("the next stage was not told partition %s is empty (told %v)", src, h.empty)
		}
	}
	for _, src := range h.empty {
		if !strings.HasPrefix(src, "kafka:"+configTopic+"/") {
			t.Errorf("partition %s was said empty; it holds records", src)
		}
	}
}

// stalledStore blocks every write until released (a store that hangs, not
// one that fails: no error comes back to retry on).
type stalledStore struct {
	Store
	release chan struct{}
	writes  atomic.Int64
}

func (s *stalledStore) Write(ctx context.Context, b *event.Batch) error {
	s.writes.Add(1)
	select {
	case <-s.release:
		return s.Store.Write(ctx, b)
	case <-ctx.Done():
		return ctx.Err()
	}
}

// TestRevokeDoesNotWaitForAStalledStore: a member whose store hangs holds
// batches in flight. When another member joins, the revocation waits for
// them only RevokeWait, so the rebalance completes and the new member gets
// the partitions; what the stalled member had not stored comes to the new
// one again, and nothing is lost.
func TestRevokeDoesNotWaitForAStalledStore(t *testing.T) {
	c := newCluster(t)
	brokers := c.ListenAddrs()
	cl := producer(t, brokers)
	produce(t, cl, accessRecords("stall", 3000)...)
	stalled := &stalledStore{Store: newSQLite(t), release: make(chan struct{})}
	defer close(stalled.release)
	startConsumer(t, brokers, stalled, ConsumerOptions{Group: "stall", MaxBatch: 200, RevokeWait: 500 * time.Millisecond})
	waitFor(t, "the stalled member to hold a batch", 10*time.Second, func() bool { return stalled.writes.Load() > 0 })
	good := newSQLite(t)
	startConsumer(t, brokers, good, ConsumerOptions{Group: "stall", MaxBatch: 200, RevokeWait: 500 * time.Millisecond})
	// Kafka's assignor may leave the stalled member some partitions; the
	// new member must get the others, and store their records, soon.
	waitFor(t, "the new member to store records", 20*time.Second, func() bool {
		a, _, _ := good.Count(context.Background())
		return a > 0
	})
}
