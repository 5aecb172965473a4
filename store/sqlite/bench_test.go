package sqlite_test

import (
	"context"
	"testing"
	"time"

	"github.com/breachwatch/breachwatch/store/sqlite"
	"github.com/breachwatch/breachwatch/store/storetest"
)

// BenchmarkWrite measures the embedded store alone: transactions of 15k
// realistic access events, synchronous=FULL, on the machine's disk.
func BenchmarkWrite(b *testing.B) {
	b.Run("batch=15000", func(b *testing.B) {
		const total = 300_000
		batches := storetest.DemoBatches(total, 15_000)
		var rate float64
		for b.Loop() {
			s, err := sqlite.Open(context.Background(), b.TempDir())
			if err != nil {
				b.Fatal(err)
			}
			start := time.Now()
			for _, bt := range batches {
				if err := s.Write(context.Background(), bt); err != nil {
					b.Fatal(err)
				}
			}
			rate = total / time.Since(start).Seconds()
			s.Close()
		}
		b.ReportMetric(rate, "events/s")
	})
}
