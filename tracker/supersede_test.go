package tracker

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/breachwatch/breachwatch/incident"
)

// TestSupersededFindingMovesToItsSuccessor: a finding whose episode moved
// (a late event made it start earlier) is reported under a new fingerprint
// naming the old one; the old one is retracted. Whatever order the two
// reports come in, and even when the incident was closed (so that the group
// has no active incident), the successor lands in the old one's incident,
// which ends up holding the successor's evidence only; the state survives a
// restart; a report older than the one held changes nothing.
func TestSupersededFindingMovesToItsSuccessor(t *testing.T) {
	for _, tc := range []struct {
		name         string
		retractFirst bool
		closed       bool
	}{{"successor first", false, false}, {"retraction first", true, false}, {"incident closed", false, true}} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			c := &clock{time.Date(2026, 11, 20, 9, 0, 0, 0, time.UTC)}
			dir := t.TempDir()
			st := openStore(t, dir)
			tr := newTracker(t, st, c)
			old := finding("cross-tenant-read", "actor.id=u-1", c.t.Add(-10*time.Minute), 2, "cust-nl")
			old.Version = 1
			ids, err := tr.Findings(ctx, []incident.Finding{old})
			if err != nil {
				t.Fatal(err)
			}
			id := ids[0]
			if tc.closed {
				for _, cmd := range []Command{{Name: CmdConfirm}, {Name: CmdStatus, To: string(incident.StatusClosed)}} {
					cmd.Incident = id
					if _, err := tr.Do(ctx, engineer, cmd); err != nil {
						t.Fatal(err)
					}
				}
			}
			succ := finding("cross-tenant-read", "actor.id=u-1", c.t.Add(-20*time.Minute), 3, "cust-nl", "cust-br")
			succ.Supersedes, succ.Version = []string{old.Fingerprint}, 3
			retraction := old
			retraction.SupersededBy, retraction.Version = succ.Fingerprint, 2
			reports := []incident.Finding{succ, retraction}
			if tc.retractFirst {
				reports = []incident.Finding{retraction, succ}
			}
			if _, err := tr.Findings(ctx, reports); err != nil {
				t.Fatal(err)
			}
			check := func(tr *Tracker, when string) {
				t.Helper()
				if n := len(tr.List("")); n != 1 {
					t.Fatalf("%s: %d incidents, want the one", when, n)
				}
				inc, _ := tr.Get(id)
				if len(inc.Evidence) != 1 || inc.Evidence[0].Fingerprint != succ.Fingerprint || inc.Events != 3 ||
					!inc.FirstSeen.Equal(succ.FirstSeen) {
					t.Fatalf("%s: evidence %+v (events %d), want the successor's alone", when, inc.Evidence, inc.Events)
				}
				tenants := []string{}
				for _, x := range inc.Scope.Tenants {
					tenants = append(tenants, x.Tenant)
				}
				if slices.Sort(tenants); !slices.Equal(tenants, []string{"cust-br", "cust-nl"}) {
					t.Errorf("%s: scope %v", when, tenants)
				}
			}
			check(tr, "after the move")
			// An older report of the successor (a replay) changes nothing.
			stale := succ
			stale.Version, stale.Count = 2, 1
			seq, _ := tr.Get(id)
			if _, err := tr.Findings(ctx, []incident.Finding{stale}); err != nil {
				t.Fatal(err)
			}
			if now, _ := tr.Get(id); now.Seq != seq.Seq {
				t.Errorf("an older report was recorded (seq %d -> %d)", seq.Seq, now.Seq)
			}
			// A restart folds the same state from the audit log.
			check(newTracker(t, st, c), "after a restart")
		})
	}
}

// exposures is a hand-written ExposureCloser: it records what it is asked.
type exposures struct {
	closed []string
	err    error
}

func (x *exposures) CloseExposure(_ context.Context, fp string, by incident.ManualClose) error {
	if x.err != nil {
		return x.err
	}
	x.closed = append(x.closed, fp+" "+by.By+" "+by.Reason)
	return nil
}

// TestCloseExposureCommand: closing an exposure window by hand needs an
// exposure incident with an open window, a reason and a time not in the
// future; it asks detection to close it and records who and why.
func TestCloseExposureCommand(t *testing.T) {
	ctx := context.Background()
	c := &clock{time.Date(2026, 11, 20, 9, 0, 0, 0, time.UTC)}
	st := openStore(t, t.TempDir())
	x := &exposures{}
	tr, err := New(ctx, st, Options{Apply: []string{"gdpr"}, Now: c.now, Exposures: x})
	if err != nil {
		t.Fatal(err)
	}
	f := finding("audit-logging-off", "resource.id=trail", c.t.Add(-time.Hour), 1)
	f.Kind, f.Affected.Scope = incident.KindExposure, incident.ScopeStore
	ids, err := tr.Findings(ctx, []incident.Finding{f})
	if err != nil {
		t.Fatal(err)
	}
	id := ids[0]
	m := finding("cross-tenant-read", "actor.id=u-9", c.t.Add(-time.Hour), 1, "cust-nl")
	mids, _ := tr.Findings(ctx, []incident.Finding{m})
	for _, tt := range []struct {
		name string
		by   Actor
		cmd  Command
		want string
	}{
		{"no reason", engineer, Command{Incident: id}, "needs a reason"},
		{"future", engineer, Command{Incident: id, Reason: "torn down", At: c.t.Add(time.Hour)}, "future"},
		{"before its last change", engineer, Command{Incident: id, Reason: "torn down", At: c.t.Add(-2 * time.Hour)}, "still changing"},
		{"not an exposure", engineer, Command{Incident: mids[0], Reason: "x"}, "only an exposure"},
		{"no such window", engineer, Command{Incident: id, Reason: "x", To: "nope"}, "no open window"},
	} {
		tt.cmd.Name = CmdCloseExposure
		if _, err := tr.Do(ctx, tt.by, tt.cmd); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: %v, want an error saying %q", tt.name, err, tt.want)
		}
	}
	if len(x.closed) != 0 {
		t.Fatalf("detection was asked to close a window by a refused command: %v", x.closed)
	}
	if _, err := tr.Do(ctx, Actor{Name: "token:app", Role: "app"}, Command{Incident: id, Name: CmdCloseExposure, Reason: "x"}); !errors.Is(err, ErrForbidden) {
		t.Errorf("an app token closed a window: %v", err)
	}
	inc, err := tr.Do(ctx, engineer, Command{Incident: id, Name: CmdCloseExposure, Reason: "the account was torn down"})
	if err != nil {
		t.Fatal(err)
	}
	if len(x.closed) != 1 || x.closed[0] != f.Fingerprint+" token:erin the account was torn down" {
		t.Fatalf("detection was asked %v", x.closed)
	}
	audit, _ := tr.Audit(ctx, inc.ID)
	last := audit[len(audit)-1]
	if last.Action != incident.ActExposureClosed || last.Actor != "token:erin" || last.Reason != "the account was torn down" {
		t.Errorf("audit entry %+v", last)
	}
}
