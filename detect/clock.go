package detect

import (
	"math"
	"sort"
	"time"

	"github.com/breachwatch/breachwatch/event"
)

// clocks keep the event-time watermark the way stream processors do: one
// clock per input partition (its newest event time), and the engine's
// watermark the minimum over the partitions that are active. A partition
// that has delivered nothing for the idle timeout (wall clock) no longer
// holds the watermark back, unless its last delivery said it had more
// (a backlog the consumer has not come back to yet); one assigned but
// silent holds it back until then, unless its log was empty when it was
// assigned. The watermark never goes back.
//
// The watermark decides only where each group's evaluation state may be
// folded into its checkpoint (and so how much state is kept) and which
// events need their group re-evaluated from the store: an event behind it
// is corrected, never dropped, so results do not depend on it.
type clocks struct {
	idle  time.Duration
	parts map[string]*pclock
	wm    int64 // the watermark, unix ns; math.MinInt64 until known
}

type pclock struct {
	newest   int64     // newest event time seen, unix ns (0: none yet)
	seen     time.Time // wall clock of the last event or assignment
	assigned bool      // the consumer owns it (it counts before delivering)
	behind   bool      // its last delivery left events to deliver: never idle
	empty    bool      // its log held no records when assigned: it holds nothing back until it delivers
}

func newClocks(idle time.Duration) *clocks {
	return &clocks{idle: idle, parts: map[string]*pclock{}, wm: math.MinInt64}
}

// observe moves the clocks of a batch's partitions.
func (c *clocks) observe(cs []event.Clock, now time.Time) {
	for _, x := range cs {
		p := c.parts[x.Source]
		if p == nil {
			p = &pclock{}
			c.parts[x.Source] = p
		}
		if n := x.Newest.UnixNano(); n > p.newest {
			p.newest = n
		}
		p.seen, p.behind = now, x.Behind
	}
}

func (c *clocks) assign(sources []string, now time.Time) {
	for _, s := range sources {
		p := c.parts[s]
		if p == nil {
			p = &pclock{}
			c.parts[s] = p
		}
		p.assigned, p.seen = true, now
	}
}

// empty marks assigned partitions whose log holds no records: until they
// deliver, they do not hold the watermark back.
func (c *clocks) empty(sources []string) {
	for _, s := range sources {
		if p := c.parts[s]; p != nil && p.newest == 0 {
			p.empty = true
		}
	}
}

func (c *clocks) revoke(sources []string) {
	for _, s := range sources {
		delete(c.parts, s)
	}
}

// watermark computes the watermark at wall time now.
func (c *clocks) watermark(now time.Time) int64 {
	low, any := int64(math.MaxInt64), false
	for _, p := range c.parts {
		if p.idle(now, c.idle) {
			continue // excluded
		}
		if p.newest == 0 {
			if p.assigned && !p.empty {
				return c.wm // a partition yet to deliver holds the watermark where it is
			}
			continue
		}
		any = true
		low = min(low, p.newest)
	}
	if any && low > c.wm {
		c.wm = low
	}
	return c.wm
}

// behindLapse: a partition whose last delivery left records behind holds
// the watermark for this many idle timeouts at most. It is usually the
// consumer busy with other partitions' backlog; but a log can end in
// records a consumer never gets (a transaction's commit marker, aborted
// records), and then it is simply silent.
const behindLapse = 10

func (p *pclock) idle(now time.Time, timeout time.Duration) bool {
	silent := now.Sub(p.seen)
	if p.behind {
		return silent > behindLapse*timeout
	}
	return silent > timeout
}

// sourceClock is one partition's clock, for metrics and tests.
type sourceClock struct {
	Source string
	Newest time.Time
	Idle   bool
}

func (c *clocks) snapshot(now time.Time) []sourceClock {
	out := make([]sourceClock, 0, len(c.parts))
	for s, p := range c.parts {
		sc := sourceClock{Source: s, Idle: p.idle(now, c.idle)}
		if p.newest != 0 {
			sc.Newest = time.Unix(0, p.newest).UTC()
		}
		out = append(out, sc)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Source < out[j].Source })
	return out
}
