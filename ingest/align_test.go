package ingest

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/breachwatch/breachwatch/event"
	"github.com/breachwatch/breachwatch/store/storetest"
)

// TestAlignerInvariants drives the aligner with random assignments (with
// a backlog), polls (their oldest events, some near the wall clock),
// fetches and revocations while its wall clock moves, and checks after
// every step, against the rule restated here: a partition counts as behind
// when its last fetch (or assignment) said so and it is paused or fetched
// less than hold ago; it is paused exactly when it counts as behind, has
// delivered, is more than maxDrift behind the wall clock (live traffic
// never waits) and is more than maxDrift ahead of the slowest partition
// behind or some partition behind has not delivered yet. So the slowest is
// never paused, nor one at the end of its log, nor one that has not
// delivered; what plan and forget return is exactly the change; plan asks
// to be called again when the first unpaused partition's "behind" lapses;
// and some partition behind can always fetch.
func TestAlignerInvariants(t *testing.T) {
	const drift, hold = time.Minute, 10 * time.Second
	t0 := storetest.Day0
	var holds, pauses, lives int // the cases met, over all seeds
	for seed := range uint64(300) {
		r := rand.New(rand.NewPCG(seed, 7))
		a := newAligner(drift)
		paused := map[tp]bool{} // as the client would hold them
		keys := []tp{{"a", 0}, {"a", 1}, {"a", 2}, {"a", 3}, {"c", 0}}
		now := time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)
		for step := range 200 {
			now = now.Add(time.Duration(r.IntN(4000)) * time.Millisecond)
			k := keys[r.IntN(len(keys))]
			switch n := r.IntN(12); {
			case n >= 10:
				a.expect([]tp{k}, now)
			case n < 6:
				at := t0.Add(time.Duration(r.IntN(3600)) * time.Second)
				if r.IntN(10) == 0 {
					at = now.Add(-time.Duration(r.IntN(120)) * time.Second) // live
				}
				a.observe(k, at)
				a.fetched(k, r.IntN(8) != 0, now)
			case n < 9:
				a.fetched(k, r.IntN(3) != 0, now)
			default:
				for _, p := range flatten(a.forget(map[string][]int32{k.topic: {k.partition}})) {
					if !paused[p] {
						t.Fatalf("seed %d step %d: forget resumed %v, which was not paused", seed, step, p)
					}
					delete(paused, p)
				}
				if paused[k] {
					t.Fatalf("seed %d step %d: forgot %v but left it paused", seed, step, k)
				}
			}
			wasPaused := map[tp]bool{}
			for k, p := range a.parts {
				wasPaused[k] = p.paused
			}
			behind := func(k tp, p *partClock) bool {
				return p.behind && (wasPaused[k] || now.Sub(p.fetchedAt) < hold)
			}
			var slowest, lapse time.Time
			unknown := false
			for k, p := range a.parts {
				if !behind(k, p) {
					continue
				}
				if p.clock.IsZero() {
					unknown = true
				} else if slowest.IsZero() || p.clock.Before(slowest) {
					slowest = p.clock
				}
				if l := p.fetchedAt.Add(hold); !wasPaused[k] && (lapse.IsZero() || l.Before(lapse)) {
					lapse = l
				}
			}
			pause, resume, until := a.plan(now)
			for _, p := range flatten(pause) {
				if paused[p] {
					t.Fatalf("seed %d step %d: %v paused twice", seed, step, p)
				}
				paused[p] = true
			}
			for _, p := range flatten(resume) {
				if !paused[p] {
					t.Fatalf("seed %d step %d: %v resumed but not paused", seed, step, p)
				}
				delete(paused, p)
			}
			if unknown {
				holds++
			}
			pauses += len(flatten(pause))
			if !until.Equal(lapse) {
				t.Fatalf("seed %d step %d: plan again at %v, want %v", seed, step, until, lapse)
			}
			anyBehind := false
			for k, p := range a.parts {
				live := now.Sub(p.clock) <= drift
				want := behind(k, p) && !p.clock.IsZero() && !live && (p.clock.Sub(slowest) > drift || unknown)
				if live && behind(k, p) && p.clock.Sub(slowest) > drift {
					lives++
				}
				if paused[k] != want || p.paused != want {
					t.Fatalf("seed %d step %d: %v (clock %v, behind %v, slowest %v, unknown %v) paused %v, want %v",
						seed, step, k, p.clock.Sub(t0), p.behind, slowest.Sub(t0), unknown, paused[k], want)
				}
				anyBehind = anyBehind || behind(k, p)
			}
			if len(paused) != a.pausedCount() {
				t.Fatalf("seed %d step %d: %d paused, the aligner counts %d", seed, step, len(paused), a.pausedCount())
			}
			if anyBehind && !slices.ContainsFunc(keys, func(k tp) bool { p := a.parts[k]; return p != nil && behind(k, p) && !paused[k] }) {
				t.Fatalf("seed %d step %d: every partition behind is paused", seed, step)
			}
		}
	}
	if holds == 0 || pauses == 0 || lives == 0 {
		t.Fatalf("the random runs never held (%d), never paused (%d) or never met live traffic ahead (%d): they test nothing", holds, pauses, lives)
	}
	t.Logf("%d steps holding for a partition not delivered yet, %d pauses, %d live partitions ahead left running", holds, pauses, lives)
}

func flatten(m map[string][]int32) []tp {
	var out []tp
	for topic, ps := range m {
		for _, p := range ps {
			out = append(out, tp{topic, p})
		}
	}
	return out
}

// spreadRecorder is a next stage that follows, batch by batch, the newest
// event time each partition has delivered, and records the largest spread
// between partitions that still had events to deliver.
type spreadRecorder struct {
	mu     sync.Mutex
	total  map[string]int // events produced per partition (by id prefix)
	got    map[string]int
	newest map[string]time.Time
	ids    map[string]bool
	dups   int
	spread time.Duration
}

func newSpreadRecorder(total map[string]int) *spreadRecorder {
	return &spreadRecorder{total: total, got: map[string]int{}, newest: map[string]time.Time{}, ids: map[string]bool{}}
}

func (h *spreadRecorder) Handle(_ context.Context, b *event.Batch) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for i := range b.Access {
		e := &b.Access[i]
		if h.ids[e.ID] {
			h.dups++
			continue
		}
		h.ids[e.ID] = true
		p, _, _ := strings.Cut(e.ID, "-")
		h.got[p]++
		if e.Time.After(h.newest[p]) {
			h.newest[p] = e.Time
		}
	}
	var lo, hi time.Time
	for p, n := range h.total {
		if h.got[p] == n {
			continue // finished: nothing more to wait for
		}
		t := h.newest[p]
		if t.IsZero() {
			t = storetest.Day0 // not started: at its first event
		}
		if lo.IsZero() || t.Before(lo) {
			lo = t
		}
		if t.After(hi) {
			hi = t
		}
	}
	h.spread = max(h.spread, hi.Sub(lo))
}

func (h *spreadRecorder) delivered() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.ids)
}

// TestConsumerAlignsPartitionsByEventTime: a backlog over three partitions
// covering the same half hour, one sparse (an event a second) and two dense
// (ten a second). The broker returns about as many records of each per
// fetch, so unpaced the sparse partition runs far ahead in event time; with
// MaxDrift the partitions still delivering stay within MaxDrift plus two
// polls of the sparse partition (MaxBatch events, MaxBatch seconds each)
// of each other. Every event is delivered once either way: records of a paused
// partition the client had fetched are fetched again.
func TestConsumerAlignsPartitionsByEventTime(t *testing.T) {
	const (
		span     = 30 * time.Minute
		maxBatch = 200
		drift    = time.Minute
	)
	c := newCluster(t)
	brokers := c.ListenAddrs()
	total, n := skewedBacklog(t, brokers, span)
	// A partition is paused once its clock (a poll's oldest event) runs
	// more than drift ahead; by then it may have delivered that poll and
	// the one before in full: two polls of the sparse partition, MaxBatch
	// seconds each.
	bound := drift + 2*maxBatch*time.Second

	run := func(group string, maxDrift time.Duration) *spreadRecorder {
		h := newSpreadRecorder(total)
		r := startConsumerTo(t, brokers, newSQLite(t), h, ConsumerOptions{Group: group, MaxBatch: maxBatch, MaxDrift: maxDrift})
		waitFor(t, "every event delivered", 60*time.Second, func() bool { return h.delivered() == n })
		r.stop(t)
		if h.dups > 0 {
			t.Errorf("%s: %d events delivered twice", group, h.dups)
		}
		return h
	}
	unpaced := run("unpaced", 0)
	if unpaced.spread <= bound {
		t.Fatalf("unpaced, the partitions drifted only %v apart (bound %v): the scenario does not test the pacing", unpaced.spread, bound)
	}
	paced := run("paced", drift)
	t.Logf("largest spread between partitions still delivering: unpaced %v, paced %v (bound %v)", unpaced.spread, paced.spread, bound)
	if paced.spread > bound {
		t.Errorf("paced, the partitions drifted %v apart, more than %v", paced.spread, bound)
	}
}

// skewedBacklog produces, to partitions 0, 1 and 2 of the access topic, the
// same span of event time: an event a second on partition 0 ("p0-…") and
// ten a second on the others. It returns the events per partition (by id
// prefix) and in all.
func skewedBacklog(t *testing.T, brokers []string, span time.Duration) (map[string]int, int) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.ProducerLinger(5*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	total := map[string]int{}
	var recs []*kgo.Record
	for p, every := range []time.Duration{time.Second, 100 * time.Millisecond, 100 * time.Millisecond} {
		name := fmt.Sprintf("p%d", p)
		n := int(span / every)
		total[name] = n
		for i, e := range storetest.Access(name, storetest.Day0, n) {
			e.Time = storetest.Day0.Add(time.Duration(i) * every)
			recs = append(recs, &kgo.Record{Topic: accessTopic, Partition: int32(p), Value: e.AppendJSON(nil)})
		}
	}
	produce(t, cl, recs...)
	return total, len(recs)
}

// TestPacedConsumerRebalances: members join and leave while partitions are
// paused. A paused partition revoked is resumed (pauses outlive an
// assignment in the client), so the member that gets it fetches it, and
// every event is delivered.
func TestPacedConsumerRebalances(t *testing.T) {
	c := newCluster(t)
	brokers := c.ListenAddrs()
	total, n := skewedBacklog(t, brokers, 20*time.Minute)
	h := newSpreadRecorder(total)
	o := ConsumerOptions{Group: "paced-rb", MaxBatch: 100, MaxDrift: time.Minute}
	first := startConsumerTo(t, brokers, newSQLite(t), h, o)
	waitFor(t, "a partition paused", 20*time.Second, func() bool { return first.c.align.pausedCount() > 0 })
	second := startConsumerTo(t, brokers, newSQLite(t), h, o)
	waitFor(t, "a quarter delivered", 30*time.Second, func() bool { return h.delivered() > n/4 })
	first.stop(t) // its partitions, some paused, move to the second member
	waitFor(t, "every event delivered", 60*time.Second, func() bool { return h.delivered() == n })
	if k := second.c.align.pausedCount(); k != 0 {
		t.Errorf("%d partitions still paused once everything was delivered", k)
	}
}

// TestBacklogThatNeverComesHoldsOnlyBriefly: a partition whose backlog is
// all aborted transactional records looks, by its offsets, like one with a
// backlog, and never delivers. It holds the others for holdUnknown, not
// for ever.
func TestBacklogThatNeverComesHoldsOnlyBriefly(t *testing.T) {
	c := newCluster(t)
	brokers := c.ListenAddrs()
	transaction(t, brokers, "aborted", 2, kgo.TryAbort)
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	var recs []*kgo.Record
	for p := range 2 {
		for _, e := range storetest.Access(fmt.Sprintf("p%d", p), storetest.Day0.Add(time.Duration(p)*time.Hour), 500) {
			recs = append(recs, &kgo.Record{Topic: accessTopic, Partition: int32(p), Value: e.AppendJSON(nil)})
		}
	}
	produce(t, cl, recs...)
	h := newSpreadRecorder(map[string]int{"p0": 500, "p1": 500})
	r := startConsumerTo(t, brokers, newSQLite(t), h, ConsumerOptions{Group: "never", MaxBatch: 100, MaxDrift: time.Minute,
		holdUnknown: 500 * time.Millisecond})
	waitFor(t, "every committed event delivered", 30*time.Second, func() bool { return h.delivered() == len(recs) })
	if k := r.c.align.pausedCount(); k != 0 {
		t.Errorf("%d partitions still paused once everything was delivered", k)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.got["aborted"] > 0 {
		t.Errorf("%d aborted records delivered", h.got["aborted"])
	}
}

// TestTransactionMarkerDoesNotHoldOthers: a backlog written in a committed
// transaction ends with the commit marker, a record the consumer never
// gets: after its last data record the partition still looks behind
// (offset+1 < high watermark) and no later fetch says otherwise. It holds
// the partitions ahead of it only until its "behind" lapses.
func TestTransactionMarkerDoesNotHoldOthers(t *testing.T) {
	c := newCluster(t)
	brokers := c.ListenAddrs()
	transaction(t, brokers, "p0", 0, kgo.TryCommit)
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	var recs []*kgo.Record
	for _, e := range storetest.Access("p1", storetest.Day0.Add(time.Hour), 1000) {
		recs = append(recs, &kgo.Record{Topic: accessTopic, Partition: 1, Value: e.AppendJSON(nil)})
	}
	produce(t, cl, recs...)
	h := newSpreadRecorder(map[string]int{"p0": 50, "p1": 1000})
	r := startConsumerTo(t, brokers, newSQLite(t), h, ConsumerOptions{Group: "marker", MaxBatch: 100, MaxDrift: time.Minute,
		holdUnknown: 500 * time.Millisecond})
	waitFor(t, "all 1050 events delivered", 30*time.Second, func() bool { return h.delivered() == 1050 })
	if k := r.c.align.pausedCount(); k != 0 {
		t.Errorf("%d partitions still paused once everything was delivered", k)
	}
}

// TestEventDatedAheadDoesNotFreezeItsPartition: one event dated 14 minutes
// ahead (the decoder accepts up to 15) in a poll of a partition catching
// up moves that poll's newest time, not its oldest: the partition keeps
// its place in the catch-up instead of waiting for every other backlog.
func TestEventDatedAheadDoesNotFreezeItsPartition(t *testing.T) {
	now := time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)
	a := newAligner(time.Minute)
	victim, other := tp{"a", 0}, tp{"a", 1}
	start := now.Add(-2 * time.Hour)
	var b event.Batch
	for i := range 100 {
		b.Observe("victim", start.Add(time.Duration(i)*time.Second))
	}
	b.Observe("victim", now.Add(14*time.Minute))
	a.observe(victim, b.Clocks[0].Oldest)
	a.fetched(victim, true, now)
	a.observe(other, start)
	a.fetched(other, true, now)
	if pause, _, _ := a.plan(now); len(pause) != 0 {
		t.Fatalf("paused %v: the event dated ahead moved its partition's clock", pause)
	}
}

// transaction produces 50 events (ids prefix-…) to one partition of the
// access topic in one transaction, committed or aborted: the log then ends
// in the transaction's marker, which no consumer gets.
func transaction(t *testing.T, brokers []string, prefix string, partition int32, end kgo.TransactionEndTry) {
	t.Helper()
	txn, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.TransactionalID("txn-"+prefix))
	if err != nil {
		t.Fatal(err)
	}
	defer txn.Close()
	ctx := context.Background()
	if err := txn.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	for _, e := range storetest.Access(prefix, storetest.Day0, 50) {
		if err := txn.ProduceSync(ctx, &kgo.Record{Topic: accessTopic, Partition: partition, Value: e.AppendJSON(nil)}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	if err := txn.EndTransaction(ctx, end); err != nil {
		t.Fatal(err)
	}
}
