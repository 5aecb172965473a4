package detect

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/breachwatch/breachwatch/event"
)

const exportRule = `format: 1
id: bulk
title: bulk
severity: high
source: access
kind: threshold
condition: action == "download"
group_by: [actor.id]
threshold:
  aggregate: sum(records)
  window: 10m
  at_least: %d
`

func downloads(from, n int, at time.Time) *event.Batch {
	b := &event.Batch{}
	for i := from; i < from+n; i++ {
		b.Access = append(b.Access, event.AccessEvent{ID: fmt.Sprintf("d%d", i), Time: at.Add(time.Duration(i) * time.Minute),
			Tenant: "cust-1", Actor: event.Actor{ID: "u-1", Type: event.ActorCustomerUser, Tenant: "cust-1"},
			Action: event.ActionDownload, Resource: event.Resource{Type: "file", Store: "s3://x"}, Records: 3000, Outcome: event.OutcomeSuccess})
	}
	return b
}

// TestReloadKeepsStateOfUnchangedRules: a reload that leaves a rule as it
// was keeps its windows; a rule that changed starts afresh.
func TestReloadKeepsStateOfUnchangedRules(t *testing.T) {
	at := time.Date(2026, 11, 20, 9, 0, 0, 0, time.UTC)
	dir := t.TempDir()
	write := func(threshold int) {
		if err := os.WriteFile(filepath.Join(dir, "bulk.yaml"), []byte(fmt.Sprintf(exportRule, threshold)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(10_000)
	set, err := LoadSet(dir, "")
	if err != nil {
		t.Fatal(err)
	}
	sink := &collect{}
	eng, err := New(set, sink, Options{}, prometheus.NewRegistry(), zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := eng.Process(ctx, downloads(0, 3, at)); err != nil { // 9000 records: under
		t.Fatal(err)
	}
	// The same rule, loaded again (a new *rule.Set): the window carries over.
	again, _ := LoadSet(dir, "")
	eng.Swap(again)
	if err := eng.Process(ctx, downloads(3, 1, at)); err != nil { // 12000
		t.Fatal(err)
	}
	if fs := Latest(sink.fs); len(fs) != 1 || fs[0].Value != 12000 || fs[0].Count != 4 {
		t.Fatalf("after a reload of the same rule: %+v; want one finding of 12000 records from 4 events", fs)
	}
	// A changed rule starts afresh: 9000 under the new threshold of
	// 10,000... would fire with the old window, not without it.
	write(20_000)
	changed, _ := LoadSet(dir, "")
	eng.Swap(changed)
	sink.fs = nil
	if err := eng.Process(ctx, downloads(4, 3, at)); err != nil { // 9000 in a fresh window
		t.Fatal(err)
	}
	if len(sink.fs) != 0 {
		t.Fatalf("a changed rule kept its old window: %+v", sink.fs)
	}
}

// TestReloader: a broken file is rejected and the running set stays; a
// fixed one is swapped in.
func TestReloader(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "bulk.yaml")
	if err := os.WriteFile(path, []byte(fmt.Sprintf(exportRule, 10_000)), 0o644); err != nil {
		t.Fatal(err)
	}
	set, err := LoadSet(dir, "")
	if err != nil {
		t.Fatal(err)
	}
	eng, err := New(set, &collect{}, Options{}, prometheus.NewRegistry(), zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	r, err := NewReloader(eng, dir, "", 0, reg, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(strings.Replace(fmt.Sprintf(exportRule, 10_000), "severity: high", "severity: urgent", 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	if r.Reload("test") || eng.Set() != set {
		t.Fatal("a broken rule set was swapped in")
	}
	if v := gauge(t, reg, "breachwatch_detect_rules_valid"); v != 0 {
		t.Errorf("rules_valid = %v after a rejected reload", v)
	}
	if err := os.WriteFile(path, []byte(fmt.Sprintf(exportRule, 5000)), 0o644); err != nil {
		t.Fatal(err)
	}
	if !r.Reload("test") || eng.Set() == set || gauge(t, reg, "breachwatch_detect_rules_valid") != 1 {
		t.Fatal("a fixed rule set was not swapped in")
	}
}

func gauge(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			return mf.GetMetric()[0].GetGauge().GetValue()
		}
	}
	t.Fatalf("no metric %s", name)
	return 0
}
