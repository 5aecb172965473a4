package ingest

import (
	"sync"
	"time"
)

// aligner paces a consumer that is catching up a backlog by event time, as
// stream processors align their sources (Flink's watermark alignment, Kafka
// Streams' choice of the partition with the oldest record): a partition
// that has more records waiting in its log (it is "behind") and whose
// newest event is more than maxDrift ahead of the slowest such partition
// is paused until that one catches up.
//
// Without it the partitions of a backlog drift apart by whatever the broker
// happens to return first — half an hour of event time in the benchmark —
// and detection, whose watermark is the slowest partition's, keeps all of
// that in memory and meets later events of a sequence before their first
// steps. With it they stay within maxDrift of each other.
//
// A partition assigned with a backlog (its offsets say so) that has not
// delivered yet has no known time: until it delivers, or for at most
// holdUnknown, every partition behind that has delivered is paused, so
// that the broker serves the new one (brokers fill a fetch partition by
// partition; unpaced, the first partitions are read to their end before
// the last one starts). A partition whose backlog never comes (its
// records all aborted, or deleted by retention) holds nothing after that.
//
// A partition that has reached the end of its log is never paused: live
// traffic is never held back, and a partition with nothing to deliver
// cannot hold the others. The slowest partition behind is never paused
// either, so some partition always makes progress. Pausing loses nothing:
// records of a paused partition already fetched are dropped by the client
// without moving its position and fetched again once it is resumed.
type aligner struct {
	maxDrift time.Duration // 0: off
	hold     time.Duration // holdUnknown (shorter in tests)
	mu       sync.Mutex    // the poller and the rebalance callbacks
	parts    map[tp]*partClock
}

// holdUnknown bounds how long a partition assigned with a backlog holds the
// others before it delivers.
const holdUnknown = 10 * time.Second

type partClock struct {
	newest time.Time // the newest event time delivered (zero: none yet)
	behind bool      // the last fetch left records in the log (or, before any, the offsets said so)
	paused bool
	holdTo time.Time // assigned with a backlog: until when it holds the others while it has not delivered
}

func newAligner(maxDrift time.Duration) *aligner {
	return &aligner{maxDrift: maxDrift, hold: holdUnknown, parts: map[tp]*partClock{}}
}

func (a *aligner) part(k tp) *partClock {
	p := a.parts[k]
	if p == nil {
		p = &partClock{}
		a.parts[k] = p
	}
	return p
}

// observe notes an event time delivered from a partition.
func (a *aligner) observe(k tp, t time.Time) {
	a.mu.Lock()
	if p := a.part(k); t.After(p.newest) {
		p.newest = t
	}
	a.mu.Unlock()
}

// expect notes partitions just assigned that have records waiting.
func (a *aligner) expect(ks []tp, now time.Time) {
	if a.maxDrift <= 0 {
		return
	}
	a.mu.Lock()
	for _, k := range ks {
		p := a.part(k)
		p.behind = true
		if p.newest.IsZero() {
			p.holdTo = now.Add(a.hold)
		}
	}
	a.mu.Unlock()
}

// fetched notes, for a partition a poll returned, whether records are left
// in its log after those returned.
func (a *aligner) fetched(k tp, behind bool) {
	a.mu.Lock()
	a.part(k).behind = behind
	a.mu.Unlock()
}

// forget drops partitions this consumer no longer owns. They are resumed
// (returned), so that a later assignment finds them fetching.
func (a *aligner) forget(m map[string][]int32) map[string][]int32 {
	a.mu.Lock()
	defer a.mu.Unlock()
	var resume map[string][]int32
	for topic, ps := range m {
		for _, n := range ps {
			k := tp{topic, n}
			if p := a.parts[k]; p != nil && p.paused {
				resume = addPart(resume, k)
			}
			delete(a.parts, k)
		}
	}
	return resume
}

// plan returns the partitions to pause and to resume now, and until when
// that plan holds at the latest (zero: until the next delivery). The
// slowest partition behind is the one with the oldest newest event among
// those behind; a partition behind with nothing delivered yet does not
// count (its time is unknown) and is not paused, but while it holds the
// others (see holdUnknown) every partition behind that has delivered is.
func (a *aligner) plan(now time.Time) (pause, resume map[string][]int32, until time.Time) {
	if a.maxDrift <= 0 {
		return nil, nil, time.Time{}
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	var slowest time.Time
	for _, p := range a.parts {
		if p.behind && !p.newest.IsZero() && (slowest.IsZero() || p.newest.Before(slowest)) {
			slowest = p.newest
		}
		if p.newest.IsZero() && p.behind && now.Before(p.holdTo) && (until.IsZero() || p.holdTo.Before(until)) {
			until = p.holdTo
		}
	}
	limit := slowest.Add(a.maxDrift)
	for k, p := range a.parts {
		want := p.behind && !p.newest.IsZero() && (p.newest.After(limit) || !until.IsZero())
		switch {
		case want && !p.paused:
			pause = addPart(pause, k)
		case !want && p.paused:
			resume = addPart(resume, k)
		}
		p.paused = want
	}
	return pause, resume, until
}

// pausedCount is how many partitions are paused now.
func (a *aligner) pausedCount() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	n := 0
	for _, p := range a.parts {
		if p.paused {
			n++
		}
	}
	return n
}

func addPart(m map[string][]int32, k tp) map[string][]int32 {
	if m == nil {
		m = map[string][]int32{}
	}
	m[k.topic] = append(m[k.topic], k.partition)
	return m
}
