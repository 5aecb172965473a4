package detect

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/zap"

	"github.com/breachwatch/breachwatch/demo"
	"github.com/breachwatch/breachwatch/event"
	"github.com/breachwatch/breachwatch/incident"
	"github.com/breachwatch/breachwatch/internal/testenv"
	"github.com/breachwatch/breachwatch/store/clickhouse"
	"github.com/breachwatch/breachwatch/store/sqlite"
)

type discard struct{}

func (discard) Findings(context.Context, []incident.Finding) error { return nil }

// BenchmarkDecodeEvaluate measures, on one core (run with -cpu 1) and in
// the same run, decoding and validating realistic demo traffic alone, and
// decoding, validating and evaluating the default rule set, in batches as
// ingest hands them over: events/s is the latter, decode-events/s the
// former, and rules-share their ratio (the rules' cost shows as how far
// below 1 it is). Each pass uses an engine of its own: evaluation does not
// depend on arrival order, so the same events again would be duplicates.
//
// order=time hands the events over in time order; order=partitions as a
// consumer of the access topic's 4 partitions (keyed by tenant) gets them
// with kafka.max_drift at its default (1m): each batch is a run of each
// partition in turn, partition i 20·i seconds of event time behind the
// first, so a batch holds events older than the newest of the batch
// before, and the groups they touch are evaluated again (what an
// end-to-end run does).
func BenchmarkDecodeEvaluate(b *testing.B) {
	n := benchN()
	g := demo.New(demo.Options{Seed: 7})
	start := time.Date(2026, 11, 20, 0, 0, 0, 0, time.UTC)
	var tmp event.Batch
	var timeOrder, config [][]byte
	type rec struct {
		t    time.Time
		line []byte
	}
	var parts [4][]rec // keyed by tenant
	for i := 0; len(timeOrder)+len(config) < n; i++ {
		tmp.Reset()
		g.Next(start.Add(time.Duration(i)*benchStep()), &tmp)
		for j := range tmp.Access {
			line := tmp.Access[j].AppendJSON(nil)
			timeOrder = append(timeOrder, line)
			p := fnv32(tmp.Access[j].Tenant) % 4
			parts[p] = append(parts[p], rec{tmp.Access[j].Time, line})
		}
		for j := range tmp.Config {
			config = append(config, tmp.Config[j].AppendJSON(nil))
		}
	}
	// Batches of 5000 events on average; partition i delivers up to its
	// horizon, 20·i seconds behind the first's.
	span := parts[0][len(parts[0])-1].t.Sub(start)
	step := span / time.Duration(len(timeOrder)/5000)
	var partitioned [][]byte
	var next [4]int
	for horizon := start.Add(step); len(partitioned) < len(timeOrder); horizon = horizon.Add(step) {
		for i, p := range parts {
			until := horizon.Add(-time.Duration(i) * 20 * time.Second)
			for ; next[i] < len(p) && (!p[next[i]].t.After(until) || horizon.Sub(start) > span+time.Minute); next[i]++ {
				partitioned = append(partitioned, p[next[i]].line)
			}
		}
	}
	for _, order := range []struct {
		name   string
		access [][]byte
	}{{"time", timeOrder}, {"partitions", partitioned}} {
		b.Run("order="+order.name, func(b *testing.B) { decodeEvaluate(b, order.access, config) })
	}
}

func fnv32(s string) uint32 {
	h := uint32(2166136261)
	for i := 0; i < len(s); i++ {
		h = (h ^ uint32(s[i])) * 16777619
	}
	return h
}

func decodeEvaluate(b *testing.B, access, config [][]byte) {
	set := defaultSet(b)
	var dec event.Decoder
	var batch event.Batch
	ctx := context.Background()
	// pass decodes every event in batches of 5000 and hands each batch to
	// eng (nil: decoding alone), after writing it to st (as ingest does:
	// the engine reads the store only to correct what came late, or what
	// it passed over). It returns the time taken, the writes left out.
	pass := func(eng *Engine, st *sqlite.Store) time.Duration {
		var took time.Duration
		hand := func() {
			if eng == nil {
				runtime.GC() // as after a write below: each batch starts on a collected heap
				return
			}
			if err := st.Write(ctx, &batch); err != nil {
				b.Fatal(err)
			}
			// The store's garbage is not the rules' to collect.
			runtime.GC()
			t0 := time.Now()
			if err := eng.Process(ctx, &batch); err != nil {
				b.Fatal(err)
			}
			took += time.Since(t0)
		}
		for i := 0; i < len(access); i += 5000 {
			batch.Reset()
			t0 := time.Now()
			for _, line := range access[i:min(i+5000, len(access))] {
				batch.Access = append(batch.Access, event.AccessEvent{})
				if err := dec.Access(line, &batch.Access[len(batch.Access)-1]); err != nil {
					b.Fatal(err)
				}
			}
			took += time.Since(t0)
			hand()
		}
		batch.Reset()
		t0 := time.Now()
		for _, line := range config {
			var err error
			if batch.Config, err = dec.ConfigRecord(line, batch.Config); err != nil {
				b.Fatal(err)
			}
		}
		took += time.Since(t0)
		hand()
		return took
	}
	b.ReportAllocs()
	var decodeOnly, withRules time.Duration
	events, reads := 0, 0.0
	for b.Loop() { // ns/op counts everything; the figures are the metrics below
		st, err := sqlite.Open(ctx, b.TempDir())
		if err != nil {
			b.Fatal(err)
		}
		eng, err := New(set, discard{}, Options{Store: st}, prometheus.NewRegistry(), zap.NewNop())
		if err != nil {
			b.Fatal(err)
		}
		runtime.GC()
		decodeOnly += pass(nil, nil)
		runtime.GC()
		withRules += pass(eng, st)
		events += len(access) + len(config)
		reads += testutil.ToFloat64(eng.m.corrected)
		st.Close()
	}
	b.ReportMetric(reads/float64(b.N), "store-reads/op")
	b.ReportMetric(float64(events)/withRules.Seconds(), "events/s")
	b.ReportMetric(float64(events)/decodeOnly.Seconds(), "decode-events/s")
	b.ReportMetric(decodeOnly.Seconds()/withRules.Seconds(), "rules-share")
	b.ReportMetric(float64(withRules.Nanoseconds())/float64(events), "ns/event")
}

// BenchmarkWindowGroupsMemory measures the heap that 1,000,000 live window
// groups take: one download each by a million different actors, so the
// bulk-export threshold rule holds a million groups with a window entry
// each. Goal: ≤ 300 MB.
func BenchmarkWindowGroupsMemory(b *testing.B) {
	const groups = 1_000_000
	var mib float64
	for b.Loop() {
		eng, err := New(defaultSet(b), discard{}, Options{MaxGroups: 2 * groups}, prometheus.NewRegistry(), zap.NewNop())
		if err != nil {
			b.Fatal(err)
		}
		runtime.GC()
		var before runtime.MemStats
		runtime.ReadMemStats(&before)
		start := time.Date(2026, 11, 20, 9, 0, 0, 0, time.UTC)
		var batch event.Batch
		for i := range groups {
			batch.Access = append(batch.Access, event.AccessEvent{
				ID: fmt.Sprintf("m-%07d", i), Time: start.Add(time.Duration(i) * 500 * time.Microsecond), Tenant: fmt.Sprintf("cust-%04d", i%5000),
				Actor:  event.Actor{ID: fmt.Sprintf("u-%07d", i), Type: event.ActorCustomerUser, Tenant: fmt.Sprintf("cust-%04d", i%5000)},
				Action: event.ActionDownload, Resource: event.Resource{Type: "file", Store: "s3://exports-eu"}, Records: 10, Outcome: event.OutcomeSuccess,
			})
			if len(batch.Access) == 10_000 {
				if err := eng.Process(context.Background(), &batch); err != nil {
					b.Fatal(err)
				}
				batch.Reset()
			}
		}
		batch = event.Batch{}
		runtime.GC()
		var after runtime.MemStats
		runtime.ReadMemStats(&after)
		if live := eng.groups.len(); live != groups {
			b.Fatalf("%d live groups, want %d", live, groups)
		}
		mib = float64(after.HeapAlloc-before.HeapAlloc) / (1 << 20)
		runtime.KeepAlive(eng)
	}
	b.ReportMetric(mib, "MiB/1M-groups")
}

// BenchmarkLateCorrection measures what a late event costs: a day of demo
// traffic is stored and evaluated; then, per operation, a download that
// comes six hours behind the watermark (its group long folded or swept)
// has its group read back from the store and evaluated again. The store is
// the embedded SQLite, and ClickHouse when BWTEST_CLICKHOUSE names one
// (make bench does). Reported: ms per corrected event, and how that
// compares with evaluating an event in order.
func BenchmarkLateCorrection(b *testing.B) {
	ctx := context.Background()
	stores := map[string]func(b *testing.B) correctionStore{
		"sqlite": func(b *testing.B) correctionStore {
			st, err := sqlite.Open(ctx, b.TempDir())
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { st.Close() })
			return st
		},
	}
	if os.Getenv(testenv.EnvClickHouse) != "" {
		stores["clickhouse"] = func(b *testing.B) correctionStore {
			addr := testenv.ClickHouse(b)
			st, err := clickhouse.Open(ctx, clickhouse.Options{Addr: []string{addr}, Database: testenv.Database(b, addr)})
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { st.Close() })
			return st
		}
	}
	for _, name := range []string{"sqlite", "clickhouse"} {
		open := stores[name]
		if open == nil {
			continue
		}
		b.Run("store="+name, func(b *testing.B) {
			st := open(b)
			const n = 500_000
			g := demo.New(demo.Options{Seed: 11})
			start := time.Date(2026, 11, 20, 0, 0, 0, 0, time.UTC)
			step := 24 * time.Hour / n
			sink := storeSink{st}
			eng, err := New(defaultSet(b), sink, Options{Store: st, Now: func() time.Time { return start.Add(25 * time.Hour) }},
				prometheus.NewRegistry(), zap.NewNop())
			if err != nil {
				b.Fatal(err)
			}
			var batch event.Batch
			inOrder := time.Duration(0)
			for i := range n {
				g.Next(start.Add(time.Duration(i)*step), &batch)
				if batch.Len() >= 10_000 || i == n-1 {
					if err := st.Write(ctx, &batch); err != nil {
						b.Fatal(err)
					}
					t0 := time.Now()
					if err := eng.Process(ctx, &batch); err != nil {
						b.Fatal(err)
					}
					inOrder += time.Since(t0)
					batch.Reset()
				}
			}
			perEvent := inOrder / n
			b.ResetTimer()
			i := 0
			for b.Loop() {
				late := event.Batch{Access: []event.AccessEvent{{ID: fmt.Sprintf("late-%d", i), Time: start.Add(18*time.Hour + time.Duration(i)*time.Second),
					Tenant: "cust-0001", Actor: event.Actor{ID: "u-0001-80", Type: event.ActorCustomerUser, Tenant: "cust-0001"},
					Action: event.ActionDownload, Resource: event.Resource{Type: "file", Store: "s3://exports-eu"}, Records: 10, Outcome: event.OutcomeSuccess}}}
				i++
				b.StopTimer()
				if err := st.Write(ctx, &late); err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
				if err := eng.Process(ctx, &late); err != nil {
					b.Fatal(err)
				}
			}
			if c := testutil.ToFloat64(eng.m.corrected); c < float64(b.N) {
				b.Fatalf("%v corrections for %d late events", c, b.N)
			}
			per := b.Elapsed() / time.Duration(b.N)
			b.ReportMetric(float64(per.Microseconds())/1000, "ms/late-event")
			b.ReportMetric(float64(per)/float64(perEvent), "x-in-order-event")
		})
	}
}

type correctionStore interface {
	Store
	Write(ctx context.Context, b *event.Batch) error
	SaveFindings(ctx context.Context, fs []incident.Finding) error
}

// storeSink saves findings in the store, as breachwatch's sink does.
type storeSink struct{ st correctionStore }

func (s storeSink) Findings(ctx context.Context, fs []incident.Finding) error {
	return s.st.SaveFindings(ctx, fs)
}

// benchN and benchStep size BenchmarkDecodeEvaluate: 200,000 events, one
// demo step each 5 ms; with BWBENCH_DETECT_DENSE=1 the end-to-end run's
// 2,000,000 events at 1 ms (its density of events per second of event
// time, where busy groups hold many more entries; a run takes minutes).
func benchN() int {
	if os.Getenv("BWBENCH_DETECT_DENSE") != "" {
		return 2_000_000
	}
	return 200_000
}

func benchStep() time.Duration {
	if os.Getenv("BWBENCH_DETECT_DENSE") != "" {
		return time.Millisecond
	}
	return 5 * time.Millisecond
}
