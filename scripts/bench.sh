#!/usr/bin/env bash
# make bench: runs the speed and memory benchmarks against real parts
# (a throwaway ClickHouse, kfake, the breachwatch binary) and prints the
# figures. BWBENCH_EVENTS sets the size of the end-to-end runs (default 2M).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh

ensure_packages
start_clickhouse
out=$(mktemp)
trap 'stop_clickhouse; rm -f "$out"' EXIT

run() { echo "== $*"; "$@" 2>&1 | tee -a "$out" | grep -E '^(Benchmark|ok|FAIL|---|\s+bench_test)' || true; }
run go test -run '^$' -bench 'DecodeAccess|EncodeAccess' -benchmem -cpu 1 -count 1 ./event
run go test -run '^$' -bench 'Next' -benchmem -count 1 ./demo
run go test -run '^$' -bench 'Write' -benchtime 1x -count 1 ./store/clickhouse ./store/sqlite
run go test -run '^$' -bench 'DecodeEvaluate' -benchmem -cpu 1 -benchtime 3x -count 1 ./detect
run go test -run '^$' -bench 'WindowGroupsMemory' -benchtime 1x -count 1 ./detect
run go test -run '^$' -bench 'LateCorrection' -benchtime 200x -count 1 -timeout 30m ./detect
run go test -run '^$' -bench 'EndToEnd|ClickHouseKafkaEngine|DetectionLatency' -benchtime 1x -count 1 -timeout 60m ./app
run go test -run '^$' -bench 'Scope' -benchtime 5x -count 1 -timeout 60m ./tracker
run go test -run '^$' -bench 'NoticeFanOut' -benchtime 1x -count 1 -timeout 30m ./notify

figure() { # benchmark-name unit
	awk -v name="$1" -v unit="$2" '
		function group(n,   s, out) { if (n < 100 && n != int(n)) return sprintf("%.2f", n); s = sprintf("%d", n); while (length(s) > 3) { out = "," substr(s, length(s) - 2) out; s = substr(s, 1, length(s) - 3) }; return s out }
		$1 ~ name { for (i = 2; i <= NF; i++) if ($i == unit) { print group($(i-1)); exit } }' "$out"
}
cores=$(nproc)
echo
echo "breachwatch benchmark figures ($cores cores, $(go env GOARCH), $(date -u +%Y-%m-%d))"
printf '  %-58s %14s %s\n' \
	"decode + validate, access events, 1 core" "$(figure '^BenchmarkDecodeAccess-?[0-9]*$' events/s)" "events/s   (goal >= 500,000)" \
	"encoding/json into a plain struct, 1 core, no validation" "$(figure '^BenchmarkDecodeAccessStdlib' events/s)" "events/s   (for comparison)" \
	"store alone: ClickHouse, 20k-event inserts, lz4" "$(figure 'BenchmarkWrite/batch=20000/compression=lz4' events/s)" "events/s" \
	"store alone: embedded SQLite, 15k-event transactions" "$(figure 'BenchmarkWrite/batch=15000' events/s)" "events/s" \
	"end to end: kfake -> breachwatch -> ClickHouse" "$(figure '^BenchmarkEndToEnd' events/s)" "events/s   (goal >= 200,000)" \
	"  breachwatch peak resident memory in that run" "$(figure '^BenchmarkEndToEnd' peak-RSS-MiB)" "MiB        (goal <= 256)" \
	"ClickHouse's own Kafka engine, same topic and machine" "$(figure '^BenchmarkClickHouseKafkaEngine' events/s)" "events/s" \
	"decode + evaluate the default rules, 1 core" "$(figure '^BenchmarkDecodeEvaluate/order=time' events/s)" "events/s   (goal >= 500,000)" \
	"  decode alone in the same run" "$(figure '^BenchmarkDecodeEvaluate/order=time' decode-events/s)" "events/s" \
	"  the same, as 4 partitions' fetches deliver them" "$(figure '^BenchmarkDecodeEvaluate/order=partitions' events/s)" "events/s" \
	"  decode alone in the same run" "$(figure '^BenchmarkDecodeEvaluate/order=partitions' decode-events/s)" "events/s" \
	"a late event corrected from the store, embedded SQLite" "$(figure 'BenchmarkLateCorrection/store=sqlite' ms/late-event)" "ms" \
	"  the same, ClickHouse" "$(figure 'BenchmarkLateCorrection/store=clickhouse' ms/late-event)" "ms" \
	"1,000,000 live window groups" "$(figure '^BenchmarkWindowGroupsMemory' MiB/1M-groups)" "MiB        (goal <= 300)" \
	"produce -> finding at 20,000 events/s, p50" "$(figure '^BenchmarkDetectionLatency' p50-ms)" "ms" \
	"produce -> finding at 20,000 events/s, p99" "$(figure '^BenchmarkDetectionLatency' p99-ms)" "ms         (goal <= 1,000)" \
	"scoping, ClickHouse, 100M events: exposure of a store, 1 day" "$(figure 'BenchmarkScopeClickHouse/.*exposure-1d' ms/scope)" "ms         (goal <= 1,000)" \
	"  the same, a 7-day exposure window" "$(figure 'BenchmarkScopeClickHouse/.*exposure-7d' ms/scope)" "ms" \
	"  an access incident, by its evidence" "$(figure 'BenchmarkScopeClickHouse/.*access-evidence' ms/scope)" "ms" \
	"scoping, embedded store, 10M events: exposure, 1 day" "$(figure 'BenchmarkScopeSQLite/.*exposure-1d' ms/scope)" "ms         (goal <= 3,000)" \
	"  the same, a 7-day exposure window" "$(figure 'BenchmarkScopeSQLite/.*exposure-7d' ms/scope)" "ms" \
	"  an access incident, by its evidence" "$(figure 'BenchmarkScopeSQLite/.*access-evidence' ms/scope)" "ms" \
	"notices to 100,000 customers via a local SendGrid API" "$(figure '^BenchmarkNoticeFanOut-?[0-9]*$' ms/fan-out)" "ms         (goal <= 30,000)" \
	"  the same, SIGKILLed a third of the way and restarted" "$(figure '^BenchmarkNoticeFanOutKilled' ms/fan-out)" "ms         (every recipient exactly once: verified)" \
	"  progress counts over the 100,000 customers" "$(figure '^BenchmarkNoticeFanOut-?[0-9]*$' ms/progress-query)" "ms"
