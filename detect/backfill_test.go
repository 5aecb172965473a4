package detect

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/breachwatch/breachwatch/event"
)

// backfillWith runs a backfill of [from, to) on a fresh engine over the
// harness's store, as the backfill job does.
func backfillWith(t *testing.T, h *harness, from, to, latest time.Time) Progress {
	t.Helper()
	eng := h.engine(Options{})
	p, err := eng.Backfill(context.Background(), from, to, latest, 7*24*time.Hour, nil)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// TestBackfillFindsWhatLiveMissedOnce: events beyond the correction
// horizon are stored but not evaluated; a backfill of their day finds the
// breach they hold, and a second backfill of the same day changes nothing.
func TestBackfillFindsWhatLiveMissedOnce(t *testing.T) {
	h := &harness{t: t, st: newMemStore(), clock: at(30 * 24 * time.Hour)}
	live := h.engine(Options{})
	// The watermark is 20 days on; the export 10 days before it.
	h.feed(live, []event.Batch{{Access: []event.AccessEvent{readEvent("now", at(20*24*time.Hour), "u-9", "cust-home")}}})
	old := at(10 * 24 * time.Hour)
	h.feed(live, []event.Batch{{Access: []event.AccessEvent{dlEv("x1", old, "u-1", 6000), dlEv("x2", old.Add(time.Minute), "u-1", 6000)}}})
	if got := describe(h.st.live()); len(got) != 0 {
		t.Fatalf("live detection evaluated events beyond its horizon: %v", got)
	}
	p := backfillWith(t, h, old.Add(-time.Hour), old.Add(time.Hour), at(20*24*time.Hour))
	got := h.st.live()
	if p.Findings != 1 || len(got) != 1 || got[0].RuleID != "bulk-export" || got[0].Records != 12000 {
		t.Fatalf("backfill reported %d, stored %v", p.Findings, describe(got))
	}
	reports := len(h.st.reports)
	if p := backfillWith(t, h, old.Add(-time.Hour), old.Add(time.Hour), at(20*24*time.Hour)); p.Findings != 0 || len(h.st.reports) != reports {
		t.Fatalf("a second backfill of the same time reported %d findings (%d reports)", p.Findings, len(h.st.reports)-reports)
	}
}

// TestBackfillReportsEachFindingOnceAsItEnds: a backfill over a finding
// that grows over many batches reports it once, whole, not as it grew.
func TestBackfillReportsEachFindingOnceAsItEnds(t *testing.T) {
	h := &harness{t: t, st: newMemStore(), clock: at(30 * 24 * time.Hour)}
	var evs []event.AccessEvent
	for i := range 20_000 { // more than a backfill batch
		evs = append(evs, dlEv(fmt.Sprintf("d%05d", i), at(time.Duration(i)*10*time.Millisecond), "u-1", 1000))
	}
	h.st.Write(&event.Batch{Access: evs}) // stored, never evaluated live
	p := backfillWith(t, h, at(-time.Hour), at(time.Hour), evs[len(evs)-1].Time)
	if p.Findings != 1 || len(h.st.reports) != 1 {
		t.Fatalf("backfill reported %d findings in %d reports, want 1 in 1", p.Findings, len(h.st.reports))
	}
	if f := h.st.reports[0]; f.Count != 20_000 || f.Records != 20_000*1000 {
		t.Fatalf("finding holds %d events, %d records", f.Count, f.Records)
	}
}

// TestBackfillDoesNotRollLiveBack: a backfill up to now while live
// detection goes on: a finding that live detection has taken later events
// of than the backfill read is left as live detection reported it.
func TestBackfillDoesNotRollLiveBack(t *testing.T) {
	h := &harness{t: t, st: newMemStore(), clock: at(2 * time.Hour)}
	live := h.engine(Options{})
	h.feed(live, one(dlEv("a", at(0), "u-1", 6000), dlEv("b", at(time.Minute), "u-1", 6000)))
	// The backfill read ends here (the newest stored event when it began);
	// live detection takes one more export of the same finding.
	latest := at(time.Minute)
	h.feed(live, one(dlEv("c", at(2*time.Minute), "u-1", 6000)))
	before := describe(h.st.live())
	eng := h.engine(Options{})
	p, err := eng.Backfill(context.Background(), at(-time.Hour), at(90*time.Second), latest, 7*24*time.Hour, nil)
	if err != nil {
		t.Fatal(err)
	}
	if after := describe(h.st.live()); !slices.Equal(before, after) || p.Live != 1 || p.Findings != 0 {
		t.Fatalf("backfill: %d reported, %d left to live detection\nbefore %v\nafter  %v", p.Findings, p.Live, before, after)
	}
}
