package ingest

import (
	"sync"
	"time"
)

// aligner paces a consumer that is catching up a backlog by event time, as
// stream processors align their sources (Flink's watermark alignment, Kafka
// Streams' choice of the partition with the oldest record): a partition
// that has more records waiting in its log (it is "behind") and whose
// clock is more than maxDrift ahead of the slowest such partition's is
// paused until that one catches up.
//
// A partition's clock is the newest of the oldest event times of its polls:
// a poll's oldest event, not its newest, so that one event dated ahead (up
// to the skew the decoder allows) does not push its partition to the back
// of a catch-up; the newest of them, so that a late event does not set it
// back.
//
// Without it the partitions of a backlog drift apart by whatever the broker
// happens to return first — half an hour of event time in the benchmark —
// and detection, whose watermark is the slowest partition's, keeps all of
// that in memory and meets later events of a sequence before their first
// steps. With it they stay within maxDrift (and a poll) of each other.
//
// A partition assigned with a backlog (its offsets say so) that has not
// delivered yet has no known time: until it delivers, for at most hold,
// every partition behind that has delivered is paused, so that the broker
// serves the new one (brokers fill a fetch partition by partition; unpaced,
// the first partitions are read to their end before the last one starts).
//
// "Behind" lasts for hold after a partition last delivered, unless it is
// paused: a log can end in records the consumer never gets (the commit or
// abort marker of a transaction, aborted records, a transaction still
// open), and a partition that stays silent while it may fetch holds no one.
//
// Live traffic is never held back: a partition that reached the end of its
// log, or whose clock is within maxDrift of the wall clock, is never
// paused. The slowest partition behind is never paused either, so some
// partition always makes progress. Pausing loses nothing: records of a
// paused partition already fetched are dropped by the client without
// moving its position and fetched again once it is resumed.
type aligner struct {
	maxDrift time.Duration // 0: off
	hold     time.Duration // holdUnknown (shorter in tests)
	mu       sync.Mutex    // the poller and the rebalance callbacks
	parts    map[tp]*partClock
}

// holdUnknown bounds how long a partition assigned with a backlog holds the
// others before it delivers, and how long a partition is taken to be
// behind after it last delivered.
const holdUnknown = 10 * time.Second

type partClock struct {
	clock     time.Time // the newest of its polls' oldest event times (zero: none yet)
	behind    bool      // the last fetch left records in the log (or, before any, the offsets said so)
	fetchedAt time.Time // wall clock of that fetch (or of the assignment)
	paused    bool
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

// observe notes the oldest event time of a poll of a partition.
func (a *aligner) observe(k tp, oldest time.Time) {
	a.mu.Lock()
	if p := a.part(k); oldest.After(p.clock) {
		p.clock = oldest
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
		p.behind, p.fetchedAt = true, now
	}
	a.mu.Unlock()
}

// fetched notes, for a partition a poll returned, whether records are left
// in its log after those returned.
func (a *aligner) fetched(k tp, behind bool, now time.Time) {
	a.mu.Lock()
	p := a.part(k)
	p.behind, p.fetchedAt = behind, now
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

// plan returns the partitions to pause and to resume now, and when to
// plan again at the latest even if nothing is delivered (zero: at the next
// delivery): when a partition's "behind" lapses.
func (a *aligner) plan(now time.Time) (pause, resume map[string][]int32, until time.Time) {
	if a.maxDrift <= 0 {
		return nil, nil, time.Time{}
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	var slowest time.Time
	unknown := false // a partition behind has not delivered yet
	for _, p := range a.parts {
		if !a.behind(p, now) {
			continue
		}
		if p.clock.IsZero() {
			unknown = true
		} else if slowest.IsZero() || p.clock.Before(slowest) {
			slowest = p.clock
		}
		if lapse := p.fetchedAt.Add(a.hold); !p.paused && (until.IsZero() || lapse.Before(until)) {
			until = lapse
		}
	}
	limit := slowest.Add(a.maxDrift)
	for k, p := range a.parts {
		want := a.behind(p, now) && !p.clock.IsZero() && now.Sub(p.clock) > a.maxDrift &&
			(p.clock.After(limit) || unknown)
		switch {
		case want && !p.paused:
			pause = addPart(pause, k)
		case !want && p.paused:
			resume = addPart(resume, k)
			p.fetchedAt = now // it was not fetching: its "behind" counts from now
		}
		p.paused = want
	}
	return pause, resume, until
}

// behind reports whether a partition counts as having records waiting
// now: its last fetch said so, and it is paused or fetched within hold.
func (a *aligner) behind(p *partClock, now time.Time) bool {
	return p.behind && (p.paused || now.Sub(p.fetchedAt) < a.hold)
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
