#!/usr/bin/env bash
# make test: installs what the tests need, starts a throwaway ClickHouse,
# runs vet, the format, go.mod and staticcheck checks and every test with the race detector, fuzzes
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
echo "== go mod tidy (go.mod and go.sum say exactly what the code imports)"
go mod tidy -diff
echo "== staticcheck"
go run honnef.co/go/tools/cmd/staticcheck@v0.8.2 ./...
echo "== the rules and their fixtures"
go run ./cmd/breachwatch rules check rules
go run ./cmd/breachwatch rules test rules
echo "== tests (race detector); browser screenshots go to ./test-artifacts"
export BWTEST_ARTIFACTS="$PWD/test-artifacts"
rm -rf "$BWTEST_ARTIFACTS"
go test -race -count=1 -timeout 60m ./...
echo "== fuzzing the decoders, the CloudTrail mapper and the rule loader (${FUZZTIME:=15s} each)"
# A short minimization budget keeps the time for fuzzing (the default, 60s, ate it all).
fuzz() { go test -run '^$' -fuzz "^$2\$" -fuzztime "$FUZZTIME" -fuzzminimizetime 1s "$1"; }
fuzz ./event FuzzDecodeAccess
fuzz ./event FuzzDecodeConfig
fuzz ./event FuzzConfigRecord
fuzz ./detect/rule FuzzLoad
fuzz ./detect/rule FuzzInventory
echo "== all tests passed"
