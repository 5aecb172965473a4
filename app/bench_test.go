package app

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/breachwatch/breachwatch/internal/testenv"
)

// benchEvents is how many events the end-to-end benchmarks move
// (BWBENCH_EVENTS overrides it).
func benchEvents() int {
	if n, err := strconv.Atoi(os.Getenv("BWBENCH_EVENTS")); err == nil && n > 0 {
		return n
	}
	return 2_000_000
}

// BenchmarkEndToEnd measures breachwatch, as its own process, consuming a
// topic that already holds the events (from kfake, over TCP), decoding and
// validating them and writing them to ClickHouse. Reported: events/s from
// ready to the last event stored, and the process's peak resident memory.
func BenchmarkEndToEnd(b *testing.B) {
	n := benchEvents()
	chAddr := testenv.ClickHouse(b)
	brokers := newBroker(b, "breachwatch.access", "breachwatch.config")
	lines, _ := demoLines(5, n)
	_, done := produceStream(b, brokers, "breachwatch.access", lines, 0)
	<-done
	lines = nil
	conn := chConn(b, chAddr)
	var rate, rss float64
	i := 0
	for b.Loop() {
		i++
		db := testenv.Database(b, chAddr)
		start := time.Now()
		env := []string{"BREACHWATCH_KAFKA_BROKERS=" + strings.Join(brokers, ","), "BREACHWATCH_CLICKHOUSE_ADDR=" + chAddr,
			"BREACHWATCH_CLICKHOUSE_DATABASE=" + db, "BREACHWATCH_DATA_DIR=" + b.TempDir(),
			fmt.Sprintf("BREACHWATCH_KAFKA_GROUP=bench-%d", i)}
		// BWBENCH_ENV: more settings for the run, e.g. "BREACHWATCH_KAFKA_BATCH_MAX_RECORDS=10000".
		p := startProc(b, append(env, strings.Fields(os.Getenv("BWBENCH_ENV"))...)...)
		ready := time.Now()
		chCPU, bwCPU := clickhouseCPU(), metric(b, p.httpAddr, "process_cpu_seconds_total")
		waitFor(b, "every event stored", 10*time.Minute, func() bool { return chRows(b, conn, db, "access_events") >= uint64(n) })
		took := time.Since(ready)
		chCPU, bwCPU = clickhouseCPU()-chCPU, metric(b, p.httpAddr, "process_cpu_seconds_total")-bwCPU
		b.Logf("CPU while consuming: breachwatch %.1f s (%.1f µs per event), ClickHouse %.1f s (%.1f µs per event)",
			bwCPU, 1e6*bwCPU/float64(n), chCPU.Seconds(), 1e6*chCPU.Seconds()/float64(n))
		_, peak := p.rss()
		writes := metric(b, p.httpAddr, "breachwatch_ingest_batch_size_count")
		b.Logf("%.0f store writes, %.0f events per write on average, %.1f ms per write", writes,
			metric(b, p.httpAddr, "breachwatch_ingest_batch_size_sum")/writes,
			1000*metric(b, p.httpAddr, "breachwatch_store_write_seconds_sum")/metric(b, p.httpAddr, "breachwatch_store_write_seconds_count"))
		b.Logf("detection: watermark %s, %.0f live groups", time.Unix(int64(metric(b, p.httpAddr, "breachwatch_detect_watermark_seconds")), 0).UTC().Format(time.RFC3339),
			metric(b, p.httpAddr, "breachwatch_detect_groups"))
		b.Logf("detection: %.0f events came late for a group (%.0f groups read from the store in %.1f s), %.0f out of order in memory, %.0f groups evicted",
			metric(b, p.httpAddr, "breachwatch_detect_late_events_total"), metric(b, p.httpAddr, "breachwatch_detect_corrections_total"),
			metric(b, p.httpAddr, "breachwatch_detect_correction_seconds_sum"), metric(b, p.httpAddr, "breachwatch_detect_reordered_events_total"),
			metric(b, p.httpAddr, "breachwatch_detect_groups_evicted_total"))
		p.kill()
		if d, _, _ := chCounts(b, conn, db, "access_events"); d != uint64(n) {
			b.Fatalf("%d distinct events stored, want %d", d, n)
		}
		rate, rss = float64(n)/took.Seconds(), float64(peak>>20)
		b.Logf("breachwatch: %d events in %v after %v start-up: %.0f events/s, peak RSS %.0f MiB", n, took.Round(time.Millisecond),
			ready.Sub(start).Round(time.Millisecond), rate, rss)
	}
	b.ReportMetric(rate, "events/s")
	b.ReportMetric(rss, "peak-RSS-MiB")
}

// BenchmarkClickHouseKafkaEngine measures ClickHouse's own Kafka table
// engine consuming the same kind of topic on the same machine: a Kafka table
// in JSONEachRow format and a materialized view into a MergeTree table. It
// does less work than breachwatch: it reads the top-level fields only (the
// nested actor and resource objects are skipped) and validates nothing.
func BenchmarkClickHouseKafkaEngine(b *testing.B) {
	n := benchEvents()
	chAddr := testenv.ClickHouse(b)
	brokers := newBroker(b, "breachwatch.access")
	lines, _ := demoLines(5, n)
	_, done := produceStream(b, brokers, "breachwatch.access", lines, 0)
	<-done
	lines = nil
	conn := chConn(b, chAddr)
	var rate float64
	i := 0
	for b.Loop() {
		i++
		db := testenv.Database(b, chAddr)
		ctx := context.Background()
		for _, stmt := range []string{
			"CREATE DATABASE " + db,
			`CREATE TABLE ` + db + `.access_events (id String, time String, tenant String, action String, records UInt64,
				outcome String, source_ip String, country String, user_agent String, request_id String)
				ENGINE = MergeTree() ORDER BY id`,
			fmt.Sprintf(`CREATE TABLE %s.queue (id String, time String, tenant String, action String, records UInt64,
				outcome String, source_ip String, country String, user_agent String, request_id String)
				ENGINE = Kafka SETTINGS kafka_broker_list = '%s', kafka_topic_list = 'breachwatch.access',
				kafka_group_name = 'ch-bench-%d', kafka_format = 'JSONEachRow', kafka_num_consumers = 1`,
				db, strings.Join(brokers, ","), i),
		} {
			if err := conn.Exec(ctx, stmt); err != nil {
				b.Fatal(err)
			}
		}
		start, chCPU := time.Now(), clickhouseCPU()
		if err := conn.Exec(ctx, "CREATE MATERIALIZED VIEW "+db+".consume TO "+db+".access_events AS SELECT * FROM "+db+".queue"); err != nil {
			b.Fatal(err)
		}
		waitFor(b, "every event in ClickHouse", 10*time.Minute, func() bool {
			var c uint64
			_ = conn.QueryRow(ctx, "SELECT count() FROM "+db+".access_events").Scan(&c)
			return c >= uint64(n)
		})
		took, chCPU := time.Since(start), clickhouseCPU()-chCPU
		b.Logf("CPU while consuming: ClickHouse %.1f s (%.1f µs per event)", chCPU.Seconds(), 1e6*chCPU.Seconds()/float64(n))
		_ = conn.Exec(ctx, "DROP TABLE "+db+".consume")
		_ = conn.Exec(ctx, "DROP TABLE "+db+".queue")
		rate = float64(n) / took.Seconds()
		b.Logf("ClickHouse Kafka engine: %d events in %v: %.0f events/s", n, took.Round(time.Millisecond), rate)
	}
	b.ReportMetric(rate, "events/s")
}
