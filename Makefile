# The two commands a newcomer needs are `make run` and `make test`.
GO      ?= go
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -s -w -X github.com/breachwatch/breachwatch/app.Version=$(VERSION)

.PHONY: run test bench build fuzz rules clean

## run: start breachwatch on embedded defaults (Kafka-protocol broker and store in ./data) with demo traffic and breaches
run:
	$(GO) run ./cmd/breachwatch serve --demo --breach --inventory deploy/inventory.example.yaml --set tracker.customers=deploy/customers.example.yaml --set notify.self_approval=true --set 'organisation.name=Bookly B.V.' --set 'organisation.lead_authority.name=Autoriteit Persoonsgegevens' --set organisation.lead_authority.website=autoriteitpersoonsgegevens.nl --set tracker.time_zone=Europe/Amsterdam --set notify.from=security@bookly.example --dev-token --log-format console

## test: install what the tests need (clickhouse-server, kcat), start a throwaway ClickHouse, run every test with -race
test:
	./scripts/test.sh

## bench: run the speed and memory benchmarks against real parts and print the figures
bench:
	./scripts/bench.sh

## build: build bin/breachwatch
build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o bin/breachwatch ./cmd/breachwatch

## fuzz: fuzz the decoders, the CloudTrail mapper and the rule loader for longer (FUZZTIME, default 5m each)
fuzz:
	for f in FuzzDecodeAccess FuzzDecodeConfig FuzzConfigRecord; do $(GO) test -run '^$$' -fuzz "^$$f\$$" -fuzztime $${FUZZTIME:-5m} -fuzzminimizetime 5s ./event || exit 1; done
	for f in FuzzLoad FuzzInventory; do $(GO) test -run '^$$' -fuzz "^$$f\$$" -fuzztime $${FUZZTIME:-5m} -fuzzminimizetime 5s ./detect/rule || exit 1; done

## rules: check the rules and run their fixtures
rules:
	$(GO) run ./cmd/breachwatch rules check rules
	$(GO) run ./cmd/breachwatch rules test rules

## clean: remove build output and the local data directory
clean:
	rm -rf bin data
