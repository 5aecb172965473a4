// Package tracker turns findings into incidents that people act on: it
// groups findings, scopes the affected customers, computes the legal
// clocks from a versioned regime table, reminds before each deadline and
// records every change as an append-only, hash-chained audit entry. An
// incident's state is its audit entries folded; it is rebuilt at start.
package tracker
