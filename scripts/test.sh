#!/usr/bin/env bash
# make test: installs what the tests need, starts a throwaway ClickHouse,
# runs vet, the format check and every test with the race detector, fuzzes
# the decoders briefly, and stops ClickHouse. With CI=true no test skips.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh

ensure_packages
start_clickhouse

echo "== go vet"
go vet ./...
echo "== gofmt"
unformatted=$(gofmt -l .)
if [ -n "$unformatted" ]; then
	echo "not gofmt-formatted:" >&2
	echo "$unformatted" >&2
	exit 1
fi
echo "== tests (race detector)"
go test -race -count=1 -timeout 45m ./...
echo "== fuzzing the event decoders (${FUZZTIME:=20s} each)"
for f in FuzzDecodeAccess FuzzDecodeConfig; do
	# A short minimization budget keeps the time for fuzzing (the default, 60s, ate it all).
	go test -run '^$' -fuzz "^$f\$" -fuzztime "$FUZZTIME" -fuzzminimizetime 1s ./event
done
echo "== all tests passed"
