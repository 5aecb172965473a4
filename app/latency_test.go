package app

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/zap"

	"github.com/breachwatch/breachwatch/demo"
	"github.com/breachwatch/breachwatch/detect"
	"github.com/breachwatch/breachwatch/event"
	"github.com/breachwatch/breachwatch/incident"
	"github.com/breachwatch/breachwatch/ingest"
	"github.com/breachwatch/breachwatch/internal/testenv"
	"github.com/breachwatch/breachwatch/store/clickhouse"
)

// latencySink records when each new finding arrives.
type latencySink struct {
	mu    sync.Mutex
	sent  map[string]time.Time // injected event id → when it was produced
	seen  map[string]bool      // fingerprints reported
	delay []time.Duration
}

func (s *latencySink) Findings(_ context.Context, fs []incident.Finding) error {
	now := time.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, f := range fs {
		if s.seen[f.Fingerprint] || len(f.EventIDs) == 0 {
			continue
		}
		s.seen[f.Fingerprint] = true
		if at, ok := s.sent[f.EventIDs[0]]; ok {
			s.delay = append(s.delay, now.Sub(at))
		}
	}
	return nil
}

// BenchmarkDetectionLatency measures the time from producing an event to
// the finding it causes, through the whole pipeline (kfake, the consumer,
// ClickHouse, the rules), with 20,000 events/s of demo traffic flowing.
// A cross-tenant read under a new actor is injected every 200ms; each one
// is a new finding. Goal: p99 ≤ 1s.
func BenchmarkDetectionLatency(b *testing.B) {
	const rate, seconds = 20_000, 30
	chAddr := testenv.ClickHouse(b)
	brokers := newBroker(b, "breachwatch.access", "breachwatch.config")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	st, err := clickhouse.Open(ctx, clickhouse.Options{Addr: []string{chAddr}, Database: testenv.Database(b, chAddr)})
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	set, err := detect.LoadSet("../rules", "../deploy/inventory.example.yaml")
	if err != nil {
		b.Fatal(err)
	}
	sink := &latencySink{sent: map[string]time.Time{}, seen: map[string]bool{}}
	reg := prometheus.NewRegistry()
	eng, err := detect.New(set, sink, detect.Options{}, reg, zap.NewNop())
	if err != nil {
		b.Fatal(err)
	}
	m, err := ingest.NewMetrics(reg)
	if err != nil {
		b.Fatal(err)
	}
	o := Defaults()
	w := ingest.NewWriter(st, ingest.Backoff{}, m, zap.NewNop())
	c, err := ingest.NewConsumer(ingest.KafkaOptions{Brokers: brokers}, ingest.ConsumerOptions{Group: "latency",
		AccessTopic: "breachwatch.access", ConfigTopic: "breachwatch.config", MaxBatch: o.Kafka.BatchMaxRecords,
		MaxWait: time.Duration(o.Kafka.BatchMaxWait), FetchMaxBytes: int32(o.Kafka.FetchMaxBytes)}, w, eng, m, zap.NewNop())
	if err != nil {
		b.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	defer func() { cancel(); <-done }()

	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ProducerLinger(time.Millisecond))
	if err != nil {
		b.Fatal(err)
	}
	defer cl.Close()
	g := demo.New(demo.Options{Seed: 12})
	var batch event.Batch
	b.ResetTimer()
	for b.Loop() {
		start := time.Now()
		t := time.NewTicker(10 * time.Millisecond)
		for tick := 0; tick < seconds*100; tick++ {
			now := <-t.C
			for range rate / 100 {
				batch.Reset()
				g.Next(now, &batch)
				for i := range batch.Access {
					cl.Produce(ctx, &kgo.Record{Topic: "breachwatch.access", Value: batch.Access[i].AppendJSON(nil)}, nil)
				}
			}
			if tick%20 == 0 { // every 200ms: a cross-tenant read by a new actor
				id := fmt.Sprintf("lat-%d", tick)
				ev := event.AccessEvent{ID: id, Time: now.UTC(), Tenant: "cust-0042",
					Actor:  event.Actor{ID: "u-intruder-" + id, Type: event.ActorCustomerUser, Tenant: "cust-0007"},
					Action: event.ActionRead, Resource: event.Resource{Type: "booking", Store: "postgres-eu-1"}, Records: 1, Outcome: event.OutcomeSuccess}
				sink.mu.Lock()
				sink.sent[id] = time.Now()
				sink.mu.Unlock()
				cl.Produce(ctx, &kgo.Record{Topic: "breachwatch.access", Value: ev.AppendJSON(nil)}, nil)
			}
		}
		t.Stop()
		b.Logf("produced %d events/s for %v", rate, time.Since(start).Round(time.Second))
		waitFor(b, "the last injected finding", time.Minute, func() bool {
			sink.mu.Lock()
			defer sink.mu.Unlock()
			return len(sink.delay) >= seconds*5
		})
	}
	sink.mu.Lock()
	d := slices.Clone(sink.delay)
	sink.mu.Unlock()
	slices.Sort(d)
	p := func(q float64) time.Duration { return d[min(len(d)-1, int(q*float64(len(d))))] }
	b.Logf("%d findings: latency p50 %v, p90 %v, p99 %v, max %v", len(d), p(0.5), p(0.9), p(0.99), d[len(d)-1])
	b.ReportMetric(float64(p(0.5).Milliseconds()), "p50-ms")
	b.ReportMetric(float64(p(0.99).Milliseconds()), "p99-ms")
}
