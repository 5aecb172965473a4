package app

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/breachwatch/breachwatch/demo"
	"github.com/breachwatch/breachwatch/event"
	"github.com/breachwatch/breachwatch/incident"
	"github.com/breachwatch/breachwatch/internal/testenv"
	"github.com/breachwatch/breachwatch/store/sqlite"
)

// storedFindings reads the findings the embedded store holds.
func storedFindings(t *testing.T, dataDir string) []incident.Finding {
	t.Helper()
	s, err := sqlite.Open(context.Background(), dataDir)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	fs, err := s.Findings(context.Background(), time.Time{}, 0)
	if err != nil {
		t.Fatal(err)
	}
	return fs
}

// TestDemoBreachesBecomeFindings: every kind of breach the demo injects,
// sent through Kafka into breachwatch, is found, stored and logged. The
// events cover 20 minutes of demo time, produced as fast as the broker
// takes them.
func TestDemoBreachesBecomeFindings(t *testing.T) {
	o := testOptions(t)
	o.Detect.Inventory = "../deploy/inventory.example.yaml"
	info := start(t, o)
	g := demo.New(demo.Options{Seed: 3, Breach: true})
	from := time.Now().UTC().Add(-30 * time.Minute)
	var b event.Batch
	var recs []*kgo.Record
	sent := map[string]bool{}
	// One event every 5ms; under -race (several times slower) every 10ms:
	// the same 20 minutes and breaches, half the benign traffic.
	step, n := 5*time.Millisecond, 240_000
	if testenv.Race {
		step, n = 10*time.Millisecond, 120_000
	}
	for i := 0; i < n; i++ {
		b.Reset()
		g.Next(from.Add(time.Duration(i)*step), &b)
		for j := range b.Access {
			sent[b.Access[j].ID] = true
			recs = append(recs, &kgo.Record{Topic: "breachwatch.access", Value: b.Access[j].AppendJSON(nil)})
		}
		for j := range b.Config {
			recs = append(recs, &kgo.Record{Topic: "breachwatch.config", Value: b.Config[j].AppendJSON(nil)})
		}
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(info.KafkaBrokers...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if err := cl.ProduceSync(context.Background(), recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	var got map[string]int
	waitFor(t, "a finding of every injected kind", 4*time.Minute, func() bool {
		got = map[string]int{}
		for _, f := range storedFindings(t, o.DataDir) {
			got[f.RuleID]++
		}
		for _, s := range demo.Scenarios() {
			if got[s] == 0 {
				return false
			}
		}
		return true
	})
	t.Logf("findings by rule: %v", got)

	// A harvest the demo injected whole becomes one finding that starts at
	// its first read and names exactly the accounts read, no benign ones.
	var harvests []demo.Injection
	for _, in := range g.Injections() {
		if in.Scenario == demo.ScenarioStaffManyTenants && allSent(sent, in.EventIDs) {
			harvests = append(harvests, in)
		}
	}
	if len(harvests) == 0 {
		t.Fatal("the demo injected no whole staff harvest in the test's 20 minutes")
	}
	for deadline := time.Now().Add(2 * time.Minute); ; time.Sleep(100 * time.Millisecond) {
		problem := harvestProblem(storedFindings(t, o.DataDir), harvests)
		if problem == "" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after 2m: %s", problem)
		}
	}
}

// harvestProblem says how the findings fail to match the injected
// harvests, or "" when every harvest has its finding.
func harvestProblem(fs []incident.Finding, harvests []demo.Injection) string {
	for _, in := range harvests {
		want := slices.Sorted(slices.Values(in.Tenants))
		var got []string
		for _, f := range fs {
			if f.RuleID == in.Scenario && f.WindowStart.Equal(in.Start) {
				got = f.Affected.Tenants
			}
		}
		if !slices.Equal(got, want) {
			return fmt.Sprintf("harvest from %v: finding names tenants %v, injected %v", in.Start, got, want)
		}
	}
	return ""
}

func allSent(sent map[string]bool, ids []string) bool {
	for _, id := range ids {
		if !sent[id] {
			return false
		}
	}
	return len(ids) > 0
}

// TestDemoShowsFindingsWithinAMinute: the demo traffic of make run (real
// time, 1000 events/s here) shows findings within its first minute.
func TestDemoShowsFindingsWithinAMinute(t *testing.T) {
	o := testOptions(t)
	o.Detect.Inventory = "../deploy/inventory.example.yaml"
	info := start(t, o)
	d := o
	d.Kafka.Embedded.Addr = info.KafkaBrokers[0]
	d.Demo.Enabled, d.Demo.Breach, d.Demo.Rate, d.Demo.Count = true, true, 1000, 20_000 // 20 seconds
	started := time.Now()
	if err := RunDemo(context.Background(), d, ioDiscard{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the first findings", time.Minute-time.Since(started), func() bool {
		got := map[string]bool{}
		for _, f := range storedFindings(t, o.DataDir) {
			got[f.RuleID] = true
		}
		return got["cross-tenant-read"] && got["staff-outside-privileged-group"]
	})
	t.Logf("first findings after %v", time.Since(started).Round(time.Second))
}

type ioDiscard struct{}

func (ioDiscard) Write(p []byte) (int, error) { return len(p), nil }

// TestRestartNeitherMissesNorDuplicates: a bulk export straddles a restart
// of breachwatch (9,000 records before, 3,000 after): the window is warmed
// from the store, so the finding fires after the restart; a finding made
// before the restart is not duplicated by the warm-up.
func TestRestartNeitherMissesNorDuplicates(t *testing.T) {
	o := testOptions(t)
	o.Kafka.Embedded.Addr = fmt.Sprintf("127.0.0.1:%d", mustFreePort(t))
	now := time.Now().UTC().Truncate(time.Second)
	download := func(id string, at time.Time, actor string) []byte {
		ev := event.AccessEvent{ID: id, Time: at, Tenant: "cust-0020", Actor: event.Actor{ID: actor, Type: event.ActorCustomerUser, Tenant: "cust-0020"},
			Action: event.ActionDownload, Resource: event.Resource{Type: "file", Store: "s3://exports-eu"}, Records: 3000, Outcome: event.OutcomeSuccess}
		return ev.AppendJSON(nil)
	}
	send := func(broker string, values ...[]byte) {
		cl, err := kgo.NewClient(kgo.SeedBrokers(broker))
		if err != nil {
			t.Fatal(err)
		}
		defer cl.Close()
		for _, v := range values {
			if err := cl.ProduceSync(context.Background(), &kgo.Record{Topic: "breachwatch.access", Value: v}).FirstErr(); err != nil {
				t.Fatal(err)
			}
		}
	}
	count := func() int64 {
		s, err := sqlite.Open(context.Background(), o.DataDir)
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		a, _, _ := s.Count(context.Background())
		return a
	}

	// First run: u-1 downloads 9,000 records (under the threshold); u-2
	// downloads 12,000 (a finding).
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	infoc := make(chan Info, 1)
	go func() { done <- Run(ctx, o, Runtime{Ready: func(i Info) { infoc <- i }}) }()
	info := <-infoc
	send(info.KafkaBrokers[0], download("a1", now.Add(-5*time.Minute), "u-1"), download("a2", now.Add(-4*time.Minute), "u-1"),
		download("a3", now.Add(-3*time.Minute), "u-1"),
		download("b1", now.Add(-5*time.Minute), "u-2"), download("b2", now.Add(-4*time.Minute), "u-2"),
		download("b3", now.Add(-3*time.Minute), "u-2"), download("b4", now.Add(-2*time.Minute), "u-2"))
	waitFor(t, "the first 7 downloads stored", 30*time.Second, func() bool { return count() == 7 })
	waitFor(t, "u-2's finding", 30*time.Second, func() bool { return len(storedFindings(t, o.DataDir)) == 1 })
	before := storedFindings(t, o.DataDir)
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}

	// Second run: one more download by u-1 crosses the threshold only
	// together with the 9,000 from before the restart.
	info = start(t, o)
	send(info.KafkaBrokers[0], download("a4", now.Add(-time.Minute), "u-1"))
	waitFor(t, "u-1's finding after the restart", 30*time.Second, func() bool { return len(storedFindings(t, o.DataDir)) == 2 })
	after := storedFindings(t, o.DataDir)
	byGroup := map[string]incident.Finding{}
	for _, f := range after {
		byGroup[f.GroupKey] = f
	}
	if f := byGroup["actor.id=u-1"]; f.Value != 12_000 || f.Count != 4 {
		t.Errorf("u-1's finding after the restart: value %d from %d events; want 12000 from 4", f.Value, f.Count)
	}
	if f := byGroup["actor.id=u-2"]; f.Fingerprint != before[0].Fingerprint || !f.DetectedAt.Equal(before[0].DetectedAt) {
		t.Errorf("u-2's finding changed across the restart: %+v\nbefore: %+v", f, before[0])
	}
}

func mustFreePort(t *testing.T) int {
	t.Helper()
	p, err := testenv.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	return p
}
