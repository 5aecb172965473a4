//go:build race

package testenv

// Race reports whether the tests run under the race detector, which makes
// the engine's single-threaded evaluation several times slower: property
// tests that feed a generated day use a smaller day there (the full size
// runs without -race, e.g. `go test ./detect/`).
const Race = true
