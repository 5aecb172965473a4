package app

import (
	"context"
	"errors"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"go.uber.org/zap"

	"github.com/breachwatch/breachwatch/incident"
)

// failOnce is a hand-written tracker that refuses its first call (the store
// is down) and records what it takes after that. While it refuses, a newer
// report of the same finding arrives.
type failOnce struct {
	mu      sync.Mutex
	calls   int
	got     []incident.Finding
	refused chan struct{}
	resume  chan struct{}
}

func (f *failOnce) Stored(time.Time, time.Time)   {}
func (f *failOnce) Rescope(context.Context) error { return nil }

func (f *failOnce) Findings(ctx context.Context, fs []incident.Finding) ([]string, error) {
	f.mu.Lock()
	f.calls++
	first := f.calls == 1
	if !first {
		f.got = append(f.got, fs...)
	}
	f.mu.Unlock()
	if first {
		close(f.refused)
		<-f.resume // the newer report is queued meanwhile
		return nil, errors.New("store down")
	}
	return nil, nil
}

// TestFeedKeepsTheNewerReport: a batch the tracker refused goes back in
// the queue without replacing a newer report of the same finding that came
// meanwhile (the retry's backoff runs on synctest's clock).
func TestFeedKeepsTheNewerReport(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		tr := &failOnce{refused: make(chan struct{}), resume: make(chan struct{})}
		feed := newTrackerFeed(tr, zap.NewNop())
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { defer close(done); feed.Run(ctx) }()
		feed.Add([]incident.Finding{{Fingerprint: "fp-1", Count: 1, Version: 1}})
		<-tr.refused
		feed.Add([]incident.Finding{{Fingerprint: "fp-1", Count: 5, Version: 2}})
		close(tr.resume)
		synctest.Wait()         // the refused batch is back in the queue; the feed waits out its backoff
		time.Sleep(time.Minute) // past any backoff
		synctest.Wait()
		tr.mu.Lock()
		got := tr.got
		tr.mu.Unlock()
		if len(got) != 1 || got[0].Version != 2 || got[0].Count != 5 {
			t.Fatalf("the tracker got %+v; want only the newer report", got)
		}
		cancel()
		<-done
	})
}
