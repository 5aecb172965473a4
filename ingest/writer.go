package ingest

import (
	"context"
	"errors"
	"math/rand/v2"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/breachwatch/breachwatch/event"
)

// Store is where ingest writes events. Write must be all-or-nothing or
// idempotent: ingest retries a failed batch in full, and Kafka redelivers a
// batch whose offsets were not committed.
type Store interface {
	Write(ctx context.Context, b *event.Batch) error
}

// Handoff receives every batch after the store has acknowledged it (the
// detection stage), before the batch's offsets are committed. It must not
// keep the batch or its slices after it returns (ingest reuses them), and
// it must be safe for concurrent use (the Kafka consumer and HTTP requests
// hand batches over independently).
type Handoff interface {
	Handle(ctx context.Context, b *event.Batch)
}

// Backoff is a capped exponential backoff with full jitter.
type Backoff struct {
	Min, Max time.Duration
}

// Delay is the wait before retry number attempt (1-based).
func (b Backoff) Delay(attempt int) time.Duration {
	d := b.Min
	for i := 1; i < attempt && d < b.Max; i++ {
		d *= 2
	}
	d = min(d, b.Max)
	return d/2 + rand.N(d/2+1)
}

// DefaultBackoff is used when a Backoff is zero: 100ms doubling up to 15s.
func DefaultBackoff() Backoff { return Backoff{Min: 100 * time.Millisecond, Max: 15 * time.Second} }

// Writer writes batches to the store, retrying with backoff until the store
// acknowledges the batch or the context ends. It is safe for concurrent use
// (the Kafka consumer and HTTP requests share one).
type Writer struct {
	store   Store
	backoff Backoff
	m       *Metrics
	log     *zap.Logger
	failing atomic.Bool
}

// NewWriter returns a Writer.
func NewWriter(store Store, backoff Backoff, m *Metrics, log *zap.Logger) *Writer {
	if backoff == (Backoff{}) {
		backoff = DefaultBackoff()
	}
	return &Writer{store: store, backoff: backoff, m: m, log: log}
}

// Healthy reports whether the last store write succeeded.
func (w *Writer) Healthy() bool { return !w.failing.Load() }

// Write stores b, retrying until it is acknowledged. It returns an error
// only when ctx ends first; then nothing can be said about what was stored.
func (w *Writer) Write(ctx context.Context, b *event.Batch) error {
	if b.Len() == 0 {
		return nil
	}
	for attempt := 1; ; attempt++ {
		start := time.Now()
		err := w.store.Write(ctx, b)
		w.m.writeSeconds.Observe(time.Since(start).Seconds())
		if err == nil {
			if w.failing.Swap(false) {
				w.log.Info("store writes succeed again", zap.Int("attempts", attempt))
			}
			w.m.storeUp.Set(1)
			w.m.batchSize.Observe(float64(b.Len()))
			w.m.stored.WithLabelValues(kindAccess).Add(float64(len(b.Access)))
			w.m.stored.WithLabelValues(kindConfig).Add(float64(len(b.Config)))
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		w.failing.Store(true)
		w.m.storeUp.Set(0)
		w.m.writeErrors.Inc()
		delay := w.backoff.Delay(attempt)
		w.log.Warn("store write failed; holding the batch and retrying",
			zap.Int("events", b.Len()), zap.Int("attempt", attempt), zap.Duration("retry_in", delay), zap.Error(err))
		if err := sleep(ctx, delay); err != nil {
			return err
		}
	}
}

// sleep waits for d, or returns ctx's error if it ends first.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

const (
	kindAccess = "access"
	kindConfig = "config"
)

// Metrics are ingest's Prometheus metrics.
type Metrics struct {
	consumed     *prometheus.CounterVec   // topic
	stored       *prometheus.CounterVec   // kind
	deadLettered *prometheus.CounterVec   // topic, reason
	lag          *prometheus.GaugeVec     // topic
	paused       prometheus.Gauge         // partitions paused to align event time
	batchSize    prometheus.Histogram     // events per store write
	writeSeconds prometheus.Histogram     // store write latency
	writeErrors  prometheus.Counter       // failed store writes (each retry counts)
	storeUp      prometheus.Gauge         // 1 when the last store write succeeded
	fetchErrors  *prometheus.CounterVec   // topic
	httpEvents   *prometheus.CounterVec   // kind, result (accepted, rejected)
	httpRequests *prometheus.CounterVec   // kind, code
	httpSeconds  *prometheus.HistogramVec // kind
}

// NewMetrics creates ingest's metrics and registers them with reg.
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{
		consumed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "breachwatch_ingest_records_consumed_total", Help: "Kafka records consumed, valid or not.",
		}, []string{"topic"}),
		stored: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "breachwatch_ingest_events_stored_total", Help: "Events acknowledged by the store (a redelivered event counts again).",
		}, []string{"kind"}),
		deadLettered: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "breachwatch_ingest_dead_lettered_total", Help: "Invalid records written to the dead-letter topic, by source topic and reason.",
		}, []string{"topic", "reason"}),
		lag: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "breachwatch_ingest_consumer_lag", Help: "Records in the topic not yet committed by the consumer group (end offsets minus committed offsets, all partitions).",
		}, []string{"topic"}),
		paused: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "breachwatch_ingest_paused_partitions", Help: "Partitions paused because their events are more than kafka.max_drift ahead of the slowest partition with records waiting.",
		}),
		batchSize: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "breachwatch_ingest_batch_size", Help: "Events per store write.",
			Buckets: prometheus.ExponentialBuckets(1, 4, 10),
		}),
		writeSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "breachwatch_store_write_seconds", Help: "Latency of store writes (each attempt).",
			Buckets: prometheus.ExponentialBuckets(0.001, 2.5, 12),
		}),
		writeErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "breachwatch_store_write_errors_total", Help: "Failed store write attempts.",
		}),
		storeUp: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "breachwatch_store_up", Help: "1 when the last store write succeeded, 0 while writes fail.",
		}),
		fetchErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "breachwatch_ingest_fetch_errors_total", Help: "Errors fetching from Kafka.",
		}, []string{"topic"}),
		httpEvents: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "breachwatch_ingest_http_events_total", Help: "Events received over HTTP, by kind and result.",
		}, []string{"kind", "result"}),
		httpRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "breachwatch_ingest_http_requests_total", Help: "HTTP ingest requests by kind and status code.",
		}, []string{"kind", "code"}),
		httpSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "breachwatch_ingest_http_request_seconds", Help: "HTTP ingest request latency.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2.5, 12),
		}, []string{"kind"}),
	}
	m.storeUp.Set(1)
	for _, k := range []string{kindAccess, kindConfig} {
		m.stored.WithLabelValues(k)
	}
	var errs []error
	for _, c := range []prometheus.Collector{m.consumed, m.stored, m.deadLettered, m.lag, m.paused, m.batchSize,
		m.writeSeconds, m.writeErrors, m.storeUp, m.fetchErrors, m.httpEvents, m.httpRequests, m.httpSeconds} {
		errs = append(errs, reg.Register(c))
	}
	return m, errors.Join(errs...)
}
