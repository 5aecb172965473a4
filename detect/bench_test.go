package detect

import (
	"context"
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/breachwatch/breachwatch/demo"
	"github.com/breachwatch/breachwatch/event"
	"github.com/breachwatch/breachwatch/incident"
)

type discard struct{}

func (discard) Findings(context.Context, []incident.Finding) error { return nil }

// BenchmarkDecodeEvaluate measures decoding, validating and evaluating the
// default rule set, per event, on one core (run with -cpu 1): realistic
// demo traffic, in batches as ingest hands them over. Goal: ≥ 500k
// events/s.
func BenchmarkDecodeEvaluate(b *testing.B) {
	const n = 200_000
	g := demo.New(demo.Options{Seed: 7})
	start := time.Date(2026, 11, 20, 0, 0, 0, 0, time.UTC)
	var tmp event.Batch
	var access, config [][]byte
	for i := 0; len(access)+len(config) < n; i++ {
		tmp.Reset()
		g.Next(start.Add(time.Duration(i)*5*time.Millisecond), &tmp)
		for j := range tmp.Access {
			access = append(access, tmp.Access[j].AppendJSON(nil))
		}
		for j := range tmp.Config {
			config = append(config, tmp.Config[j].AppendJSON(nil))
		}
	}
	eng, err := New(defaultSet(b), discard{}, Options{}, prometheus.NewRegistry(), zap.NewNop())
	if err != nil {
		b.Fatal(err)
	}
	var dec event.Decoder
	var batch event.Batch
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	events := 0
	for b.Loop() {
		for i := 0; i < len(access); i += 5000 {
			batch.Reset()
			for _, line := range access[i:min(i+5000, len(access))] {
				batch.Access = append(batch.Access, event.AccessEvent{})
				if err := dec.Access(line, &batch.Access[len(batch.Access)-1]); err != nil {
					b.Fatal(err)
				}
			}
			if err := eng.Process(ctx, &batch); err != nil {
				b.Fatal(err)
			}
		}
		batch.Reset()
		for _, line := range config {
			var err error
			if batch.Config, err = dec.ConfigRecord(line, batch.Config); err != nil {
				b.Fatal(err)
			}
		}
		if err := eng.Process(ctx, &batch); err != nil {
			b.Fatal(err)
		}
		events += len(access) + len(config)
	}
	b.ReportMetric(float64(events)/b.Elapsed().Seconds(), "events/s")
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(events), "ns/event")
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
