//go:build knownbreaks

package detect

// Known breaks of the order-independence promise found by review and not
// fixed yet (issue #10's notes): each fails today. They are kept out of
// the default build so that CI stays meaningful, and run with
//
//	go test -tags knownbreaks -run TestProp2 ./detect/
//
// Move a test back to prop2_min_test.go when its break is fixed.

import (
	"context"
	"testing"
	"time"

	"github.com/breachwatch/breachwatch/event"
)

// Minimal case 8: an exposure window open for longer than the exposure
// horizon (30 days), re-asserted inside it by a change whose before value
// is not given (CloudTrail often gives none), then closed. A restart's
// warm-up reads changes from 30 days back: the re-assertion looks like an
// opening, and the restart reports a new exposure finding that live
// detection never had.
func TestProp2RestartPhantomExposure(t *testing.T) {
	bucket := "arn:aws:s3:::exports-eu"
	mk := func(id string, d time.Duration, before, after any) event.ConfigChange {
		c := change(id, at(d), bucket, "public_access", before, after)
		c.Resource.Type, c.Resource.Store = "bucket", "s3://exports-eu"
		return c
	}
	day := 24 * time.Hour
	open := mk("open", 0, false, true)
	again := mk("again", 20*day, nil, true) // before not given
	fix := mk("fix", 35*day, true, false)
	h := &harness{t: t, st: newMemStore(), clock: at(36 * day)}
	h.feed(h.engine(Options{}), []event.Batch{{Config: []event.ConfigChange{open}}, {Config: []event.ConfigChange{again}}, {Config: []event.ConfigChange{fix}}})
	before := describe(h.st.live())
	restarted := h.engine(Options{})
	if _, err := restarted.Warm(context.Background(), fix.Time, 30*day); err != nil {
		t.Fatal(err)
	}
	logReports(t, h, 3)
	compare(t, "after a restart", before, describe(h.st.live()))
}

// Minimal case 9: after a restart whose warm-up read no access event the
// watermark is unknown, so the correction horizon is not applied to the
// first batch: a redelivered change older than the exposure horizon is
// evaluated against a history that lacks what followed it, and merges a
// closed window with a later one (the later finding is retracted).
func TestProp2RestartRedeliveredOldChange(t *testing.T) {
	bucket := "arn:aws:s3:::exports-eu"
	mk := func(id string, d time.Duration, before, after any) event.ConfigChange {
		c := change(id, at(d), bucket, "public_access", before, after)
		c.Resource.Type, c.Resource.Store = "bucket", "s3://exports-eu"
		return c
	}
	day := 24 * time.Hour
	cs := []event.ConfigChange{mk("c00", 0, false, true), mk("c01", 5*time.Hour, true, false),
		mk("c02", 15*day, false, true), mk("c03", 31*day, true, false)}
	h := &harness{t: t, st: newMemStore(), clock: at(32 * day)}
	live := h.engine(Options{})
	for _, c := range cs {
		h.feed(live, []event.Batch{{Config: []event.ConfigChange{c}}})
	}
	before := describe(h.st.live())
	// Without a restart, the redelivery is beyond the horizon: nothing changes.
	h.feed(live, []event.Batch{{Config: []event.ConfigChange{cs[0]}}})
	compare(t, "redelivery without restart", before, describe(h.st.live()))
	restarted := h.engine(Options{})
	if _, err := restarted.Warm(context.Background(), cs[3].Time, 30*day); err != nil {
		t.Fatal(err)
	}
	n := len(h.st.reports)
	h.feed(restarted, []event.Batch{{Config: []event.ConfigChange{cs[0]}}})
	logReports(t, h, n)
	compare(t, "redelivery after restart", before, describe(h.st.live()))
}

// Minimal case 8b: the same phantom exposure from a backfill whose
// exposure horizon starts inside the window.
func TestProp2BackfillPhantomExposure(t *testing.T) {
	bucket := "arn:aws:s3:::exports-eu"
	mk := func(id string, d time.Duration, before, after any) event.ConfigChange {
		c := change(id, at(d), bucket, "public_access", before, after)
		c.Resource.Type, c.Resource.Store = "bucket", "s3://exports-eu"
		return c
	}
	day := 24 * time.Hour
	open := mk("open", 0, false, true)
	again := mk("again", 20*day, nil, true)
	fix := mk("fix", 35*day, true, false)
	h := &harness{t: t, st: newMemStore(), clock: at(36 * day)}
	h.feed(h.engine(Options{}), []event.Batch{{Config: []event.ConfigChange{open}}, {Config: []event.ConfigChange{again}}, {Config: []event.ConfigChange{fix}}})
	before := describe(h.st.live())
	if _, err := h.engine(Options{}).Backfill(context.Background(), at(34*day), at(36*day), fix.Time, 30*day, nil); err != nil {
		t.Fatal(err)
	}
	logReports(t, h, 3)
	compare(t, "after a backfill", before, describe(h.st.live()))
}
