package detect

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/zap"

	"github.com/breachwatch/breachwatch/event"
	"github.com/breachwatch/breachwatch/incident"
)

var t0 = time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC)

func at(d time.Duration) time.Time { return t0.Add(d) }

// TestWatermarkPerPartition: the watermark is the oldest newest-event time
// over the active partitions; a partition assigned but silent holds it
// back until it goes idle; an idle one no longer does; it never goes back.
func TestWatermarkPerPartition(t *testing.T) {
	wall := t0
	c := newClocks(time.Minute)
	c.assign([]string{"p0", "p1"}, wall)
	c.observe([]event.Clock{{Source: "p0", Newest: at(10 * time.Minute)}}, wall)
	if wm := c.watermark(wall); wm != c.wm || wm > 0 {
		t.Fatalf("an assigned partition that has not delivered must hold the watermark back; got %v", utc(wm))
	}
	c.observe([]event.Clock{{Source: "p1", Newest: at(2 * time.Minute)}}, wall)
	if wm := c.watermark(wall); !utc(wm).Equal(at(2 * time.Minute)) {
		t.Fatalf("watermark %v, want the slower partition's %v", utc(wm), at(2*time.Minute))
	}
	// p1 stops delivering: after the idle timeout it no longer counts.
	wall = wall.Add(90 * time.Second)
	c.observe([]event.Clock{{Source: "p0", Newest: at(20 * time.Minute)}}, wall)
	if wm := c.watermark(wall); !utc(wm).Equal(at(20 * time.Minute)) {
		t.Fatalf("watermark %v with p1 idle, want %v", utc(wm), at(20*time.Minute))
	}
	// p1 wakes up far behind: the watermark does not go back.
	c.observe([]event.Clock{{Source: "p1", Newest: at(3 * time.Minute)}}, wall)
	if wm := c.watermark(wall); !utc(wm).Equal(at(20 * time.Minute)) {
		t.Fatalf("the watermark went back to %v", utc(wm))
	}
	c.revoke([]string{"p1"})
	if got := c.snapshot(wall); len(got) != 1 || got[0].Source != "p0" {
		t.Fatalf("after revoking p1: %+v", got)
	}
}

// TestPartitionWithBacklogIsNeverIdle: a partition whose last delivery
// left records behind (the consumer busy with the others' backlog) keeps
// holding the watermark back past the idle timeout, so its events do not
// become late; once it has caught up, silence makes it idle as usual. One
// that stays silent although its last delivery left records behind (a
// log ending in a transaction's commit marker, which no consumer gets)
// holds it for ten idle timeouts at most.
func TestPartitionWithBacklogIsNeverIdle(t *testing.T) {
	wall := t0
	c := newClocks(time.Minute)
	c.observe([]event.Clock{{Source: "p0", Newest: at(10 * time.Minute)}, {Source: "p1", Newest: at(2 * time.Minute), Behind: true}}, wall)
	wall = wall.Add(10 * time.Minute)
	c.observe([]event.Clock{{Source: "p0", Newest: at(40 * time.Minute)}}, wall)
	if wm := c.watermark(wall); !utc(wm).Equal(at(2 * time.Minute)) {
		t.Fatalf("watermark %v: the partition with a backlog stopped counting", utc(wm))
	}
	stuck := newClocks(time.Minute)
	stuck.observe([]event.Clock{{Source: "p0", Newest: at(10 * time.Minute)}, {Source: "p1", Newest: at(2 * time.Minute), Behind: true}}, t0)
	stuck.observe([]event.Clock{{Source: "p0", Newest: at(50 * time.Minute)}}, t0.Add(10*time.Minute+time.Second))
	if wm := stuck.watermark(t0.Add(10*time.Minute + time.Second)); !utc(wm).Equal(at(50 * time.Minute)) {
		t.Fatalf("watermark %v: a partition silent for ten idle timeouts still holds it", utc(wm))
	}
	c.observe([]event.Clock{{Source: "p1", Newest: at(5 * time.Minute)}}, wall) // caught up
	wall = wall.Add(2 * time.Minute)
	c.observe([]event.Clock{{Source: "p0", Newest: at(41 * time.Minute)}}, wall)
	if wm := c.watermark(wall); !utc(wm).Equal(at(41 * time.Minute)) {
		t.Fatalf("watermark %v: a caught-up silent partition must go idle", utc(wm))
	}
}

// TestEmptyPartitionHoldsNothingBack: an assigned partition whose log was
// empty when assigned (a config topic nobody writes to yet) does not hold
// the watermark back, as a silent one does until its idle timeout; once it
// delivers an event it counts like any other.
func TestEmptyPartitionHoldsNothingBack(t *testing.T) {
	wall := t0
	c := newClocks(time.Minute)
	c.assign([]string{"access-0", "config-0", "config-1"}, wall)
	c.observe([]event.Clock{{Source: "access-0", Newest: at(10 * time.Minute)}}, wall)
	if wm := c.watermark(wall); wm > 0 {
		t.Fatalf("silent assigned partitions must hold the watermark back; got %v", utc(wm))
	}
	c.empty([]string{"config-0", "config-1", "unassigned"})
	if wm := c.watermark(wall); !utc(wm).Equal(at(10 * time.Minute)) {
		t.Fatalf("watermark %v with the config partitions empty, want access-0's %v", utc(wm), at(10*time.Minute))
	}
	c.observe([]event.Clock{{Source: "config-0", Newest: at(12 * time.Minute)}, {Source: "access-0", Newest: at(15 * time.Minute)}}, wall)
	if wm := c.watermark(wall); !utc(wm).Equal(at(12 * time.Minute)) {
		t.Fatalf("watermark %v once config-0 delivered, want its %v", utc(wm), at(12*time.Minute))
	}
	// A partition that has delivered is not made empty again.
	c.empty([]string{"config-0"})
	c.observe([]event.Clock{{Source: "access-0", Newest: at(20 * time.Minute)}}, wall)
	if wm := c.watermark(wall); !utc(wm).Equal(at(12 * time.Minute)) {
		t.Fatalf("watermark %v, want config-0's %v until it goes idle", utc(wm), at(12*time.Minute))
	}
	if _, ok := c.parts["unassigned"]; ok {
		t.Fatal("an unassigned partition said empty got a clock")
	}
}

func readEvent(id string, when time.Time, actor, tenant string) event.AccessEvent {
	return event.AccessEvent{ID: id, Time: when, Tenant: tenant, Actor: event.Actor{ID: actor, Type: event.ActorCustomerUser, Tenant: "cust-home"},
		Action: event.ActionRead, Resource: event.Resource{Type: "booking", Store: "postgres-eu-1"}, Records: 1, Outcome: event.OutcomeSuccess}
}

// TestLateEventCorrectedFromTheStore: an event that comes long after its
// partition moved on (behind every state kept in memory) is not dropped:
// its group is re-evaluated from the store, and the finding it belongs to
// gets its start and evidence, under the fingerprint it has in time order.
func TestLateEventCorrectedFromTheStore(t *testing.T) {
	h := &harness{t: t, st: newMemStore(), clock: at(48 * time.Hour)}
	eng := h.engine(Options{Lateness: time.Minute})
	reg := prometheus.NewRegistry()
	_ = reg
	// Cross-tenant reads by u-1 of cust-7 at 12:00 and 12:10 (one finding),
	// then traffic moves the watermark 3 hours on.
	early := readEvent("x1", at(0), "u-1", "cust-7")
	later := readEvent("x2", at(10*time.Minute), "u-1", "cust-7")
	var bs []event.Batch
	for i, ev := range []event.AccessEvent{later, readEvent("n1", at(3*time.Hour), "u-2", "cust-home")} {
		var b event.Batch
		b.Access = append(b.Access, ev)
		b.Observe("kafka:access/0", ev.Time)
		bs = append(bs, b)
		_ = i
	}
	h.feed(eng, bs)
	first := h.st.live()
	if len(first) != 1 || !first[0].WindowStart.Equal(at(10*time.Minute)) {
		t.Fatalf("before the late event: %v", describe(first))
	}
	// The early read comes now, 3 hours behind the watermark.
	var late event.Batch
	late.Access = append(late.Access, early)
	late.Observe("kafka:access/1", early.Time)
	h.feed(eng, []event.Batch{late})
	got := h.st.live()
	if len(got) != 1 || !got[0].WindowStart.Equal(at(0)) || got[0].Count != 2 {
		t.Fatalf("after the late event: %v", describe(got))
	}
	if got[0].Fingerprint != incident.Fingerprint("cross-tenant-read", "actor.id=u-1,tenant=cust-7", at(0)) {
		t.Errorf("the corrected finding has fingerprint %s, not the one of its episode in time order", got[0].Fingerprint)
	}
	if !slices.Contains(got[0].Supersedes, first[0].Fingerprint) {
		t.Errorf("the corrected finding does not name the one it supersedes: %v", got[0].Supersedes)
	}
	old := h.st.findings[first[0].Fingerprint]
	if old.SupersededBy != got[0].Fingerprint {
		t.Errorf("the superseded finding was not retracted in favour of its successor: %+v", old.SupersededBy)
	}
	if v := testutil.ToFloat64(eng.m.late); v != 1 {
		t.Errorf("late (corrected) events = %v, want 1", v)
	}
	if v := testutil.ToFloat64(eng.m.corrected); v != 1 {
		t.Errorf("corrections = %v, want 1", v)
	}
	// The same late event delivered again changes nothing.
	n := len(h.st.reports)
	h.feed(eng, []event.Batch{late})
	if len(h.st.reports) != n {
		t.Errorf("a late event delivered twice was reported again: %v", describe(h.st.reports[n:]))
	}
}

// TestBeyondTheHorizon: an event older than the correction horizon behind
// the watermark is counted (and the oldest logged), not evaluated.
func TestBeyondTheHorizon(t *testing.T) {
	h := &harness{t: t, st: newMemStore(), clock: at(30 * 24 * time.Hour)}
	eng := h.engine(Options{Horizon: 24 * time.Hour})
	b := event.Batch{Access: []event.AccessEvent{readEvent("now", at(10*24*time.Hour), "u-2", "cust-home")}}
	h.feed(eng, []event.Batch{b})
	old := event.Batch{Access: []event.AccessEvent{readEvent("old", at(0), "u-1", "cust-7")}}
	h.feed(eng, []event.Batch{old})
	if v := testutil.ToFloat64(eng.m.beyond); v != 1 {
		t.Errorf("beyond-horizon events = %v, want 1", v)
	}
	if fs := h.st.live(); len(fs) != 0 {
		t.Errorf("an event beyond the horizon was evaluated: %v", describe(fs))
	}
}

// TestEvictionKeepsTheGroup: with the group limit reached, the group taking
// the place of an evicted one (the last of its rule) is not lost, and an
// evicted group whose key comes back is re-evaluated from the store.
func TestEvictionKeepsTheGroup(t *testing.T) {
	h := &harness{t: t, st: newMemStore(), clock: at(24 * time.Hour)}
	eng := h.engine(Options{MaxGroups: 1})
	dl := func(id string, d time.Duration, actor string, records int64) event.AccessEvent {
		return event.AccessEvent{ID: id, Time: at(d), Tenant: "cust-1", Actor: event.Actor{ID: actor, Type: event.ActorCustomerUser, Tenant: "cust-1"},
			Action: event.ActionDownload, Resource: event.Resource{Type: "file", Store: "s3://exports-eu"}, Records: records, Outcome: event.OutcomeSuccess}
	}
	// u-a downloads 6000 records; u-b then takes the only group slot (u-a
	// evicted: its rule's map empties); u-b's two downloads of 6000 must
	// still add up in the group that was made after the eviction.
	for _, ev := range []event.AccessEvent{dl("a1", 0, "u-a", 6000), dl("b1", time.Minute, "u-b", 6000), dl("b2", 2*time.Minute, "u-b", 6000)} {
		h.feed(eng, []event.Batch{{Access: []event.AccessEvent{ev}}})
	}
	got := h.st.live()
	if len(got) != 1 || got[0].GroupKey != "actor.id=u-b" || got[0].Value != 12000 {
		t.Fatalf("after an eviction: %v", describe(got))
	}
	// u-a comes back within its window: evicted, it is read from the store
	// (6000 + 6000 crosses the threshold, as in time order).
	h.feed(eng, []event.Batch{{Access: []event.AccessEvent{dl("a2", 3*time.Minute, "u-a", 6000)}}})
	got = h.st.live()
	if len(got) != 2 || got[0].GroupKey != "actor.id=u-a" || got[0].Value != 12000 || got[0].Count != 2 {
		t.Fatalf("an evicted group that came back: %v", describe(got))
	}
	if v := testutil.ToFloat64(eng.m.evicted); v < 1 {
		t.Errorf("evictions not counted: %v", v)
	}
}

// orderedSink records the versions of every report in the order it got
// them, slowly, so that concurrent batches would overtake each other.
type orderedSink struct {
	mu   sync.Mutex
	seen []uint64
}

func (s *orderedSink) Findings(_ context.Context, fs []incident.Finding) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, f := range fs {
		s.seen = append(s.seen, f.Version)
	}
	return nil
}

// TestReportsReachTheSinkInOrder: batches evaluated concurrently (the
// Kafka consumer and HTTP requests) hand their reports to the sink in the
// order they were made, so that a later report of a finding is never
// overtaken by an earlier one.
func TestReportsReachTheSinkInOrder(t *testing.T) {
	sink := &orderedSink{}
	eng, err := New(defaultSet(t), sink, Options{}, prometheus.NewRegistry(), zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 50 {
				ev := readEvent(fmt.Sprintf("w%d-%d", w, i), at(time.Duration(i)*time.Second), "u-1", "cust-7")
				_ = eng.Process(context.Background(), &event.Batch{Access: []event.AccessEvent{ev}})
			}
		}()
	}
	wg.Wait()
	if len(sink.seen) < 50 {
		t.Fatalf("only %d reports", len(sink.seen))
	}
	if !slices.IsSorted(sink.seen) {
		t.Fatalf("reports reached the sink out of their order: %v", sink.seen)
	}
}

func change(id string, when time.Time, res, setting string, before, after any) event.ConfigChange {
	c := event.ConfigChange{ID: id, Time: when, Resource: event.ConfigResource{ID: res, Type: "firewall", Store: res},
		Setting: setting, After: json.RawMessage(mustJSON(after))}
	if before != nil {
		c.Before = json.RawMessage(mustJSON(before))
	}
	return c
}

func mustJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return string(b)
}

func ingress(port int) map[string]any {
	return map[string]any{"cidr": "0.0.0.0/0", "protocol": "tcp", "from_port": port, "to_port": port}
}

// TestFirewallWindowsPerRule: a security group's windows are kept per rule
// (address range, protocol, ports): opening 443 and revoking it leave the
// 5432 window open until 5432 itself is revoked.
func TestFirewallWindowsPerRule(t *testing.T) {
	sg := "arn:aws:ec2:eu-central-1:123456789012:security-group/sg-1"
	changes := []event.ConfigChange{
		change("open-5432", at(0), sg, "public_ingress", nil, ingress(5432)),
		change("open-443", at(time.Minute), sg, "public_ingress", nil, ingress(443)),
		change("revoke-443", at(2*time.Minute), sg, "public_ingress", ingress(443), nil),
		change("revoke-5432", at(30*time.Minute), sg, "public_ingress", ingress(5432), nil),
	}
	for _, order := range [][]int{{0, 1, 2, 3}, {3, 2, 1, 0}, {2, 0, 3, 1}} {
		h := &harness{t: t, st: newMemStore(), clock: at(time.Hour)}
		eng := h.engine(Options{})
		for i, k := range order {
			if i == 3 {
				// Before the last change: the 5432 window is open unless
				// its revoke came already.
				open := eng.OpenExposures()
				if !slices.Contains(order[:3], 3) && (len(open) != 1 || open[0].Part == "") {
					t.Errorf("order %v: open windows %v, want the 5432 one", order, describe(open))
				}
			}
			h.feed(eng, []event.Batch{{Config: []event.ConfigChange{changes[k]}}})
		}
		got := h.st.live()
		var fw []incident.Finding
		for _, f := range got {
			if f.RuleID == "firewall-open-data-port" {
				fw = append(fw, f)
			}
		}
		if len(fw) != 1 || !fw[0].WindowStart.Equal(at(0)) || !fw[0].WindowEnd.Equal(at(30*time.Minute)) || !strings.Contains(fw[0].Part, "5432") {
			t.Errorf("order %v: firewall findings %v, want one window 12:00-12:30 on 5432", order, describe(fw))
		}
	}
}

// TestCloudTrailSamplesInAnyOrder: the CloudTrail samples, and an EBS
// snapshot shared and unshared 29 seconds apart whose files arrive close
// first, give the same windows in any order.
func TestCloudTrailSamplesInAnyOrder(t *testing.T) {
	files, err := filepath.Glob("../event/testdata/cloudtrail/*.json")
	if err != nil || len(files) == 0 {
		t.Fatalf("no samples: %v", err)
	}
	var dec event.Decoder
	var changes []event.ConfigChange
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var compact bytes.Buffer
		if err := json.Compact(&compact, data); err != nil {
			continue // not one JSON document
		}
		if changes, _, err = dec.ConfigRecords(compact.Bytes(), changes); err != nil {
			continue // the samples of refused records
		}
	}
	share := change("snap-share", time.Date(2026, 11, 20, 12, 11, 28, 0, time.UTC), "arn:aws:ec2:eu-central-1:1:snapshot/snap-1", "shared_with", nil, []string{"all"})
	unshare := change("snap-unshare", time.Date(2026, 11, 20, 12, 11, 57, 0, time.UTC), "arn:aws:ec2:eu-central-1:1:snapshot/snap-1", "shared_with", []string{"all"}, []string{})
	share.Resource.Type, unshare.Resource.Type = "snapshot", "snapshot"
	changes = append(changes, share, unshare)
	windows := func(cs []event.ConfigChange) []string {
		h := &harness{t: t, st: newMemStore(), clock: time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)}
		eng := h.engine(Options{})
		for _, c := range cs {
			h.feed(eng, []event.Batch{{Config: []event.ConfigChange{c}}})
		}
		return describe(h.st.live())
	}
	// Close before open.
	want := windows(changes)
	if !slices.ContainsFunc(want, func(s string) bool {
		return strings.Contains(s, "snapshot-shared") && strings.Contains(s, "start=2026-11-20T12:11:28Z end=2026-11-20T12:11:57Z")
	}) {
		t.Fatalf("the snapshot share is not a window 12:11:28-12:11:57: %v", want)
	}
	rng := rand.New(rand.NewPCG(3, 4))
	for i := range 5 {
		cs := slices.Clone(changes)
		rng.Shuffle(len(cs), func(i, j int) { cs[i], cs[j] = cs[j], cs[i] })
		if i == 0 { // the unshare first
			a := slices.IndexFunc(cs, func(c event.ConfigChange) bool { return c.ID == share.ID })
			b := slices.IndexFunc(cs, func(c event.ConfigChange) bool { return c.ID == unshare.ID })
			if a < b {
				cs[a], cs[b] = cs[b], cs[a]
			}
		}
		compare(t, fmt.Sprintf("shuffle %d", i), want, windows(cs))
	}
	t.Logf("%d changes from %d samples, %d findings", len(changes), len(files), len(want))
}

// TestOpenExposureSurvivesRetentionAndRestart: an exposure opened long ago
// stays open after retention dropped the change that opened it and the
// engine restarted; the remedy that comes later closes it.
func TestOpenExposureSurvivesRetentionAndRestart(t *testing.T) {
	st := newMemStore()
	h := &harness{t: t, st: st, clock: at(time.Hour)}
	eng := h.engine(Options{})
	bucket := "arn:aws:s3:::exports-eu"
	open := change("pub", at(0), bucket, "public_access", false, true)
	open.Resource.Type, open.Resource.Store = "bucket", "s3://exports-eu"
	h.feed(eng, []event.Batch{{Config: []event.ConfigChange{open}}})
	if len(st.live()) != 1 || !st.live()[0].Open() {
		t.Fatalf("not open: %v", describe(st.live()))
	}
	fp := st.live()[0].Fingerprint
	// 90 days on: retention dropped the opening change; a restart.
	h.clock = at(90 * 24 * time.Hour)
	st.DropBefore(at(80 * 24 * time.Hour))
	filler := readEvent("f1", at(89*24*time.Hour), "u-2", "cust-home")
	st.Write(&event.Batch{Access: []event.AccessEvent{filler}})
	restarted := h.engine(Options{})
	if _, err := restarted.Warm(context.Background(), filler.Time, 30*24*time.Hour); err != nil {
		t.Fatal(err)
	}
	if o := restarted.OpenExposures(); len(o) != 1 || o[0].Fingerprint != fp {
		t.Fatalf("after retention and a restart the window is not open: %v", describe(o))
	}
	// The remedy closes it.
	fix := change("private", at(90*24*time.Hour), bucket, "public_access", true, false)
	fix.Resource.Type, fix.Resource.Store = "bucket", "s3://exports-eu"
	h.feed(restarted, []event.Batch{{Config: []event.ConfigChange{fix}}})
	got := st.findings[fp]
	if got.Open() || !got.WindowEnd.Equal(fix.Time) || !got.WindowStart.Equal(at(0)) {
		t.Fatalf("the remedy did not close the window it was for: %v", describe([]incident.Finding{got}))
	}
}

// TestCloseExposureByHand: a window no change will close (a trail deleted
// in a teardown) is closed by a person with a reason; the closing survives
// a restart, and a later weakening opens a new window.
func TestCloseExposureByHand(t *testing.T) {
	st := newMemStore()
	h := &harness{t: t, st: st, clock: at(2 * time.Hour)}
	eng := h.engine(Options{})
	del := change("del", at(0), "arn:aws:cloudtrail:eu-central-1:1:trail/org", "audit_logging", true, false)
	del.Resource.Type = "log_sink"
	h.feed(eng, []event.Batch{{Config: []event.ConfigChange{del}}})
	fp := st.live()[0].Fingerprint
	if err := eng.CloseExposure(context.Background(), fp, incident.ManualClose{By: "token:erin", At: at(time.Hour)}); err == nil {
		t.Fatal("closed without a reason")
	}
	if err := eng.CloseExposure(context.Background(), "nope", incident.ManualClose{By: "token:erin", Reason: "x", At: at(time.Hour)}); err == nil {
		t.Fatal("closed a window that does not exist")
	}
	mc := incident.ManualClose{By: "token:erin", Reason: "the account was torn down", At: at(time.Hour)}
	if err := eng.CloseExposure(context.Background(), fp, mc); err != nil {
		t.Fatal(err)
	}
	got := st.findings[fp]
	if got.Open() || got.Closed == nil || got.Closed.Reason != mc.Reason || !got.WindowEnd.Equal(at(time.Hour)) {
		t.Fatalf("not closed by hand: %+v", got)
	}
	restarted := h.engine(Options{})
	if _, err := restarted.Warm(context.Background(), at(time.Hour), 30*24*time.Hour); err != nil {
		t.Fatal(err)
	}
	if o := restarted.OpenExposures(); len(o) != 0 {
		t.Fatalf("a window closed by hand is open again after a restart: %v", describe(o))
	}
	if len(st.live()) != 1 || st.live()[0].Open() {
		t.Fatalf("after the restart: %v", describe(st.live()))
	}
}
