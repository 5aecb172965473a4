package app

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/zap"

	"github.com/breachwatch/breachwatch/demo"
	"github.com/breachwatch/breachwatch/event"
	"github.com/breachwatch/breachwatch/ingest"
)

// demoTopics are where demo traffic goes.
type demoTopics struct{ access, config string }

// runDemo produces demo traffic at o.Rate events per second until ctx ends
// (or o.Count events are out, when o.Count > 0), then flushes what is
// buffered. Records are keyed by tenant (access) or resource (config).
func runDemo(ctx context.Context, k ingest.KafkaOptions, o DemoOptions, topics demoTopics, log *zap.Logger) error {
	cl, err := ingest.NewProducer(k, log, kgo.ProducerLinger(20*time.Millisecond))
	if err != nil {
		return err
	}
	defer cl.Close()
	seed := o.Seed
	if seed == 0 {
		var b [8]byte
		_, _ = rand.Read(b[:])
		seed = binary.LittleEndian.Uint64(b[:])
	}
	gen := demo.New(demo.Options{Tenants: o.Tenants, Seed: seed, Breach: o.Breach})
	var failed atomic.Int64
	onDone := func(_ *kgo.Record, err error) {
		if err != nil && !errors.Is(err, context.Canceled) && failed.Add(1) == 1 {
			log.Warn("demo traffic: produce failed (further failures are counted, not logged)", zap.Error(err))
		}
	}
	const tick = 50 * time.Millisecond
	t := time.NewTicker(tick)
	defer t.Stop()
	start := time.Now()
	var sent int64
	var b event.Batch
	var buf []byte
	for {
		select {
		case <-ctx.Done():
			return flush(cl, log, sent, failed.Load())
		case now := <-t.C:
			due := int64(now.Sub(start).Seconds() * o.Rate)
			if o.Count > 0 {
				due = min(due, o.Count)
			}
			for ; sent < due; sent++ {
				b.Reset()
				gen.Next(now, &b)
				for i := range b.Access {
					buf = b.Access[i].AppendJSON(buf[:0])
					cl.Produce(ctx, &kgo.Record{Topic: topics.access, Key: []byte(b.Access[i].Tenant), Value: append([]byte(nil), buf...)}, onDone)
				}
				for i := range b.Config {
					buf = b.Config[i].AppendJSON(buf[:0])
					cl.Produce(ctx, &kgo.Record{Topic: topics.config, Key: []byte(b.Config[i].Resource.ID), Value: append([]byte(nil), buf...)}, onDone)
				}
			}
			if o.Count > 0 && sent >= o.Count {
				return flush(cl, log, sent, failed.Load())
			}
		}
	}
}

func flush(cl *kgo.Client, log *zap.Logger, sent, failed int64) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := cl.Flush(ctx)
	log.Info("demo traffic stopped", zap.Int64("events", sent), zap.Int64("failed", failed))
	return err
}

func (o Options) demoTopics() demoTopics {
	return demoTopics{access: o.Kafka.Topics.Access, config: o.Kafka.Topics.Config}
}

// RunDemo is the demo command: it produces demo traffic into the configured
// brokers (or, with none configured, into the embedded broker's address,
// where a running `breachwatch serve` listens) until ctx ends or
// o.Demo.Count events are out.
func RunDemo(ctx context.Context, o Options, stdout io.Writer) error {
	log, err := NewLogger(o.Log)
	if err != nil {
		return err
	}
	defer func() { _ = log.Sync() }()
	k, err := o.kafkaClient()
	if err != nil {
		return err
	}
	if len(k.Brokers) == 0 {
		k.Brokers = []string{o.Kafka.Embedded.Addr}
	}
	fmt.Fprintf(stdout, "producing demo traffic at %.0f events/s into %v (topics %s, %s); Ctrl-C stops\n",
		o.Demo.Rate, k.Brokers, o.Kafka.Topics.Access, o.Kafka.Topics.Config)
	return runDemo(ctx, k, o.Demo, o.demoTopics(), log.Named("demo"))
}
