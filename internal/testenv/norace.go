//go:build !race

package testenv

// Race reports whether the tests run under the race detector (see race.go).
const Race = false
