package ingest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
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

// TestHTTPIngestRefusesFutureDates: an event dated beyond the server's
// clock and the skew allowed is a 400 naming the time field, and nothing of
// the request is stored.
func TestHTTPIngestRefusesFutureDates(t *testing.T) {
	st := &flaky{}
	w, m := newTestWriter(t, st)
	now := time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC)
	h := NewHTTP(w, nil, HTTPOptions{Now: func() time.Time { return now }, MaxClockSkew: 15 * time.Minute}, m, zap.NewNop())
	line := func(id string, at time.Time) string {
		return `{"id":"` + id + `","time":"` + at.Format(time.RFC3339) + `","tenant":"cust-1","actor":{"id":"u","type":"anonymous"},"action":"read","resource":{"type":"file","store":"s3://x"},"outcome":"success"}`
	}
	for _, tt := range []struct {
		at   time.Time
		code int
	}{{now.Add(14 * time.Minute), http.StatusAccepted}, {now.Add(16 * time.Minute), http.StatusBadRequest}, {time.Date(2105, 12, 31, 0, 0, 0, 0, time.UTC), http.StatusBadRequest}} {
		body := line("ok", now.Add(-time.Hour)) + "\n" + line("x", tt.at) + "\n"
		rec := httptest.NewRecorder()
		h.Access().ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/api/v1/events/access", strings.NewReader(body)))
		if rec.Code != tt.code {
			t.Errorf("an event at %s: %d %s, want %d", tt.at, rec.Code, rec.Body, tt.code)
			continue
		}
		if tt.code == http.StatusBadRequest {
			var bad BadLine
			if err := json.Unmarshal(rec.Body.Bytes(), &bad); err != nil || bad.Line != 2 || bad.Field != "time" || bad.Kind != "value" {
				t.Errorf("an event at %s: %s; want line 2, field time, kind value", tt.at, rec.Body)
			}
		}
	}
	if n := st.stored.Load(); n != 2 { // the two accepted events of the first request
		t.Errorf("%d events stored, want 2", n)
	}
}
