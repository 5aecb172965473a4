package ingest

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/zap"

	"github.com/breachwatch/breachwatch/event"
	"github.com/breachwatch/breachwatch/store/storetest"
)

// flaky fails its first n writes, then succeeds; it counts what it stored.
type flaky struct {
	failFirst int64
	calls     atomic.Int64
	stored    atomic.Int64
}

func (f *flaky) Write(_ context.Context, b *event.Batch) error {
	if f.calls.Add(1) <= f.failFirst {
		return errors.New("connection refused (injected)")
	}
	f.stored.Add(int64(b.Len()))
	return nil
}

type handoffCount struct{ n atomic.Int64 }

func (h *handoffCount) Handle(_ context.Context, b *event.Batch) { h.n.Add(int64(b.Len())) }

func newTestWriter(t *testing.T, st Store) (*Writer, *Metrics) {
	t.Helper()
	m, err := NewMetrics(prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	return NewWriter(st, Backoff{Min: 100 * time.Millisecond, Max: 2 * time.Second}, m, zap.NewNop()), m
}

func TestWriterRetriesWithBackoffUntilStored(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		st := &flaky{failFirst: 6}
		w, m := newTestWriter(t, st)
		b := &event.Batch{Access: storetest.Access("w", storetest.Day0, 10)}
		start := time.Now()
		if err := w.Write(context.Background(), b); err != nil {
			t.Fatal(err)
		}
		waited := time.Since(start)
		if st.calls.Load() != 7 || st.stored.Load() != 10 {
			t.Errorf("calls=%d stored=%d; want 7 attempts and the batch stored", st.calls.Load(), st.stored.Load())
		}
		// Six retries with capped exponential backoff and jitter in [d/2, d]:
		// at least (100+200+400+800+1600+2000)/2 ms on the fake clock.
		if waited < 2550*time.Millisecond || waited > 5100*time.Millisecond {
			t.Errorf("waited %v before success", waited)
		}
		if !w.Healthy() || testutil.ToFloat64(m.storeUp) != 1 || testutil.ToFloat64(m.writeErrors) != 6 {
			t.Errorf("healthy=%v store_up=%v write_errors=%v", w.Healthy(), testutil.ToFloat64(m.storeUp), testutil.ToFloat64(m.writeErrors))
		}
	})
}

func TestWriterGivesUpOnlyWhenContextEnds(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		st := &flaky{failFirst: 1 << 40}
		w, m := newTestWriter(t, st)
		ctx, cancel := context.WithTimeout(context.Background(), time.Hour)
		defer cancel()
		err := w.Write(ctx, &event.Batch{Access: storetest.Access("w", storetest.Day0, 3)})
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("got %v, want the context's error after an hour of retries", err)
		}
		if w.Healthy() || testutil.ToFloat64(m.storeUp) != 0 {
			t.Errorf("healthy=%v store_up=%v", w.Healthy(), testutil.ToFloat64(m.storeUp))
		}
		// An hour at a 2s cap: well over a thousand attempts, never a busy loop.
		if c := st.calls.Load(); c < 1000 || c > 4000 {
			t.Errorf("%d attempts in an hour", c)
		}
	})
}

func TestBackoffDelay(t *testing.T) {
	b := Backoff{Min: 100 * time.Millisecond, Max: time.Second}
	for attempt, hi := range map[int]time.Duration{1: 100 * time.Millisecond, 2: 200 * time.Millisecond, 4: 800 * time.Millisecond, 5: time.Second, 50: time.Second} {
		for range 100 {
			if d := b.Delay(attempt); d < hi/2 || d > hi {
				t.Fatalf("Delay(%d) = %v, want in [%v, %v]", attempt, d, hi/2, hi)
			}
		}
	}
}

func TestHTTPIngestStoreUnavailable(t *testing.T) {
	st := &flaky{failFirst: 1 << 40}
	w, m := newTestWriter(t, st)
	next := &handoffCount{}
	h := NewHTTP(w, next, HTTPOptions{WriteTimeout: 300 * time.Millisecond}, m, zap.NewNop())
	evs := storetest.Access("h", storetest.Day0, 2)
	body := append(evs[0].AppendJSON(nil), '\n')
	body = append(evs[1].AppendJSON(body), '\n')
	rec := httptest.NewRecorder()
	h.Access().ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/api/v1/events/access", bytes.NewReader(body)))
	if rec.Code != http.StatusServiceUnavailable || rec.Header().Get("Retry-After") == "" {
		t.Fatalf("got %d %s, want 503 with Retry-After", rec.Code, rec.Body)
	}
	if bytes.Contains(rec.Body.Bytes(), []byte("refused")) {
		t.Errorf("the answer leaks the internal error: %s", rec.Body)
	}
	if testutil.ToFloat64(m.httpRequests.WithLabelValues("access", "503")) != 1 {
		t.Error("503 not counted")
	}
	if next.n.Load() != 0 {
		t.Errorf("%d events handed to detection although the store did not take them", next.n.Load())
	}
}
