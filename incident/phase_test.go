package incident

import (
	"testing"
	"time"
)

// TestDriftOfTheWindow: what a window change means to customers told.
func TestDriftOfTheWindow(t *testing.T) {
	t0 := time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC)
	told := []AffectedTenant{{Tenant: "a", Records: 10, How: HowExposed}}
	for _, tt := range []struct {
		name             string
		toldFrom, toldTo time.Time
		nowFrom, nowTo   time.Time
		wantChange       bool
	}{
		{"still open as told", t0, time.Time{}, t0, time.Time{}, false},
		{"closed since, as the notice said it would be", t0, time.Time{}, t0, t0.Add(time.Hour), false},
		{"reopened after the notice said it had ended", t0, t0.Add(time.Hour), t0, time.Time{}, true},
		{"ended later than stated", t0, t0.Add(time.Hour), t0, t0.Add(2 * time.Hour), true},
		{"began earlier than stated", t0, time.Time{}, t0.Add(-time.Hour), t0.Add(time.Hour), true},
		{"the same minute", t0, t0.Add(time.Hour), t0.Add(30 * time.Second), t0.Add(time.Hour + 10*time.Second), false},
	} {
		inc := &Incident{Kind: KindExposure, ExposureFrom: tt.nowFrom, ExposureTo: tt.nowTo, Scope: Scope{Tenants: told},
			Phases: []Phase{{Version: 1, ReachedAt: t0, WindowFrom: tt.toldFrom, WindowTo: tt.toldTo, Audience: told}}, NoticeSending: 1}
		if got := inc.Drift() != nil; got != tt.wantChange {
			t.Errorf("%s: update required %v, want %v (%+v)", tt.name, got, tt.wantChange, inc.Drift())
		}
	}
}
