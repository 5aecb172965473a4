package clickhouse_test

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/breachwatch/breachwatch/internal/testenv"
	"github.com/breachwatch/breachwatch/store/clickhouse"
	"github.com/breachwatch/breachwatch/store/storetest"
)

// BenchmarkWrite measures store writes alone: batches of realistic access
// events into ClickHouse (same host), for a few batch sizes and
// compressions.
func BenchmarkWrite(b *testing.B) {
	addr := testenv.ClickHouse(b)
	for _, size := range []int{5_000, 20_000, 50_000} {
		for _, comp := range []string{"lz4", "none"} {
			b.Run(fmt.Sprintf("batch=%d/compression=%s", size, comp), func(b *testing.B) {
				total := 400_000
				if n, err := strconv.Atoi(os.Getenv("BWBENCH_EVENTS")); err == nil && n > 0 {
					total = n
				}
				batches := storetest.DemoBatches(total, size)
				var rate float64
				for b.Loop() {
					s, err := clickhouse.Open(context.Background(), clickhouse.Options{Addr: []string{addr}, Database: testenv.Database(b, addr), Compression: comp})
					if err != nil {
						b.Fatal(err)
					}
					start := time.Now()
					for _, bt := range batches {
						if err := s.Write(context.Background(), bt); err != nil {
							b.Fatal(err)
						}
					}
					rate = float64(total) / time.Since(start).Seconds()
					s.Close()
				}
				b.ReportMetric(rate, "events/s")
			})
		}
	}
}
