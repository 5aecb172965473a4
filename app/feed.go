package app

import (
	"context"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/breachwatch/breachwatch/incident"
	"github.com/breachwatch/breachwatch/ingest"
)

// findingsTracker is what the feed hands findings to (the tracker).
type findingsTracker interface {
	Findings(ctx context.Context, fs []incident.Finding) ([]string, error)
	Stored(from, to time.Time)
	Rescope(ctx context.Context) error
}

// trackerFeed hands stored findings to the tracker off the ingest path:
// scoping an incident queries the store, and a burst of findings (a
// backlog replayed after an outage) must not hold up ingestion. Findings
// queue here, the latest report per fingerprint, so memory is bounded by
// the distinct fingerprints pending. They are stored before they queue;
// those a crash loses from the queue are handed over again at start (see
// replayFindings), and the tracker ignores what it already has.
type trackerFeed struct {
	tr  findingsTracker
	log *zap.Logger

	mu      sync.Mutex
	pending map[string]incident.Finding
	order   []string
	stored  [2]time.Time // the event times stored since the tracker was last told (zero: none)
	wake    chan struct{}
}

// Stored records that events dated in [from, to] were stored; the tracker
// is told (and scopes again what they touch) in the feed's own time.
func (f *trackerFeed) Stored(from, to time.Time) {
	f.mu.Lock()
	if f.stored[0].IsZero() || from.Before(f.stored[0]) {
		f.stored[0] = from
	}
	if to.After(f.stored[1]) {
		f.stored[1] = to
	}
	f.mu.Unlock()
	select {
	case f.wake <- struct{}{}:
	default:
	}
}

// takeStored returns and clears the span stored since the last call.
func (f *trackerFeed) takeStored() (from, to time.Time, ok bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	from, to, ok = f.stored[0], f.stored[1], !f.stored[0].IsZero()
	f.stored = [2]time.Time{}
	return from, to, ok
}

func newTrackerFeed(tr findingsTracker, log *zap.Logger) *trackerFeed {
	return &trackerFeed{tr: tr, log: log, pending: map[string]incident.Finding{}, wake: make(chan struct{}, 1)}
}

// Add queues findings; it never blocks. A report older (by version) than
// the one waiting for its fingerprint is dropped: the newer one holds
// everything it said (this is how a batch put back after a failure never
// replaces a newer report that came meanwhile).
func (f *trackerFeed) Add(fs []incident.Finding) {
	f.mu.Lock()
	for _, x := range fs {
		cur, ok := f.pending[x.Fingerprint]
		if !ok {
			f.order = append(f.order, x.Fingerprint)
		} else if cur.Newer(&x) {
			continue
		}
		f.pending[x.Fingerprint] = x
	}
	f.mu.Unlock()
	select {
	case f.wake <- struct{}{}:
	default:
	}
}

// Pending is how many findings wait.
func (f *trackerFeed) Pending() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.order)
}

// take removes up to n findings, oldest first.
func (f *trackerFeed) take(n int) []incident.Finding {
	f.mu.Lock()
	defer f.mu.Unlock()
	n = min(n, len(f.order))
	out := make([]incident.Finding, 0, n)
	for _, fp := range f.order[:n] {
		out = append(out, f.pending[fp])
		delete(f.pending, fp)
	}
	f.order = f.order[n:]
	return out
}

// feedChunk bounds the findings handed over at once: the tracker holds its
// lock while it takes them, and the API waits on that lock.
const feedChunk = 64

// Run hands queued findings to the tracker until ctx ends, retrying with
// backoff while the tracker cannot record them (the store is down).
func (f *trackerFeed) Run(ctx context.Context) {
	attempt := 0
	for {
		fs := f.take(feedChunk)
		if len(fs) == 0 {
			if from, to, ok := f.takeStored(); ok {
				f.tr.Stored(from, to)
				if err := f.tr.Rescope(ctx); err != nil && ctx.Err() == nil {
					f.log.Warn("could not scope incidents again; retrying with the next findings or batch", zap.Error(err))
				}
				continue
			}
			select {
			case <-ctx.Done():
				return
			case <-f.wake:
				continue
			}
		}
		ids, err := f.tr.Findings(ctx, fs)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			f.Add(fs) // back in the queue (a newer report, if any, wins)
			attempt++
			delay := ingest.DefaultBackoff().Delay(attempt)
			f.log.Warn("the tracker could not take findings; retrying", zap.Int("findings", len(fs)), zap.Duration("retry_in", delay), zap.Error(err))
			select {
			case <-ctx.Done():
				return
			case <-time.After(delay):
			}
			continue
		}
		attempt = 0
		if len(ids) > 0 {
			f.log.Info("incidents opened or updated", zap.Strings("incidents", ids))
		}
	}
}

// replayHorizon is how far back stored findings are handed to the tracker
// again at start (those a crash left in the queue).
const replayHorizon = 30 * 24 * time.Hour

// replayFindings queues the findings first detected within replayHorizon.
func replayFindings(ctx context.Context, st interface {
	Findings(ctx context.Context, since time.Time, limit int) ([]incident.Finding, error)
}, f *trackerFeed, now time.Time) (int, error) {
	fs, err := st.Findings(ctx, now.Add(-replayHorizon), 0)
	if err != nil {
		return 0, err
	}
	// Oldest first, as they happened.
	for i, j := 0, len(fs)-1; i < j; i, j = i+1, j-1 {
		fs[i], fs[j] = fs[j], fs[i]
	}
	f.Add(fs)
	return len(fs), nil
}
