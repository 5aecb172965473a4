package app

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/breachwatch/breachwatch/detect"
	"github.com/breachwatch/breachwatch/event"
	"github.com/breachwatch/breachwatch/incident"
)

// rulesCommand runs `breachwatch rules check|test [DIR]`.
func rulesCommand(args []string, stdout, stderr io.Writer) int {
	const use = "usage: breachwatch rules check|test [--inventory FILE] [DIR]\n" +
		"  check: load and check a rule folder (default ./rules)\n  test:  run the rules' fixtures (DIR/testdata)"
	sub, code, ok := subcommand("rules", use, []string{"check", "test"}, args, stdout, stderr)
	if !ok {
		return code
	}
	fs := flag.NewFlagSet("breachwatch rules "+sub, flag.ContinueOnError)
	fs.SetOutput(stderr)
	inventory := fs.String("inventory", "", "data inventory `file` (test: default DIR/testdata/inventory.yaml)")
	fs.Usage = func() {} // help is printed below, to stdout
	if err := fs.Parse(args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprintf(stdout, "usage: breachwatch rules %s [--inventory FILE] [DIR]\n\nflags:\n", sub)
			fs.SetOutput(stdout)
			fs.PrintDefaults()
			return 0
		}
		return 2
	}
	dir := "./rules"
	if fs.NArg() > 1 {
		fmt.Fprintln(stderr, "breachwatch rules: give at most one folder")
		return 2
	}
	if fs.NArg() == 1 {
		dir = fs.Arg(0)
	}
	fixtures := filepath.Join(dir, "testdata")
	if *inventory == "" && sub == "test" {
		if _, err := os.Stat(filepath.Join(fixtures, "inventory.yaml")); err == nil {
			*inventory = filepath.Join(fixtures, "inventory.yaml")
		}
	}
	set, err := detect.LoadSet(dir, *inventory)
	if err != nil {
		fmt.Fprintf(stderr, "%s: the rule set is rejected:\n%s\n", dir, indent(err.Error()))
		return 1
	}
	if sub == "check" {
		fmt.Fprintf(stdout, "%s: %d rules, version %s: ok\n", dir, set.Len(), set.Version())
		return 0
	}
	results, err := detect.RunFixtures(fixtures, set)
	failed := 0
	for _, r := range results {
		status := "ok  "
		if len(r.Problems) > 0 {
			status = "FAIL"
			failed++
		}
		fmt.Fprintf(stdout, "%s %s/%s\n", status, r.Rule, r.Case)
		for _, p := range r.Problems {
			fmt.Fprintf(stdout, "       %s\n", p)
		}
	}
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	if failed > 0 {
		fmt.Fprintf(stdout, "%d of %d fixtures failed\n", failed, len(results))
		return 1
	}
	fmt.Fprintf(stdout, "all %d fixtures of %d rules passed\n", len(results), set.Len())
	return 0
}

func indent(s string) string { return "  " + strings.ReplaceAll(s, "\n", "\n  ") }

// ReplayOptions say what to replay.
type ReplayOptions struct {
	From, To time.Time
	JSON     bool // findings as JSON lines (else a table)
}

// Replay runs the rules over the stored events between From and To and
// prints the findings (each as last reported), with progress on stderr: the
// dry run of `breachwatch backfill`. Changes and access events are read
// with a clock each, so that neither makes the other late.
func Replay(ctx context.Context, o Options, r ReplayOptions, stdout, stderr io.Writer) error {
	log, err := NewLogger(o.Log)
	if err != nil {
		return err
	}
	st, desc, err := openStore(ctx, o, log)
	if err != nil {
		return err
	}
	defer st.Close()
	set, err := detect.LoadSet(o.Detect.RulesDir, o.Detect.Inventory)
	if err != nil {
		return fmt.Errorf("rules: %w", err)
	}
	var all []incident.Finding
	sink := collectSink{&all}
	eng, err := detect.New(set, sink, o.engineOptions(st, time.Now), prometheus.NewRegistry(), log.Named("detect"))
	if err != nil {
		return err
	}
	inv := "inventory " + o.Detect.Inventory
	if o.Detect.Inventory == "" {
		inv = "no inventory: every store counts as holding personal data (--inventory FILE, as the server has it)"
	}
	fmt.Fprintf(stderr, "replaying %s .. %s from %s through %d rules (version %s), %s\n",
		r.From.Format(time.RFC3339), r.To.Format(time.RFC3339), desc, set.Len(), set.Version(), termSafe(inv))
	p := &progress{w: stderr, from: r.From, to: r.To, start: time.Now()}
	latest, err := latestStored(ctx, o, st, time.Now)
	if err != nil {
		return err
	}
	_, err = eng.Replay(ctx, r.From, r.To, latest, time.Duration(o.Detect.ExposureHorizon), func(x detect.Progress) {
		p.n = int64(x.Events)
		p.show(x.Reached)
	})
	p.done()
	if err != nil {
		return err
	}
	var findings []incident.Finding
	for _, f := range detect.Latest(all) {
		if !f.Retracted() {
			findings = append(findings, f)
		}
	}
	detect.SortFindings(findings)
	if r.JSON {
		enc := json.NewEncoder(stdout)
		for i := range findings {
			if err := enc.Encode(&findings[i]); err != nil {
				return err
			}
		}
		return nil
	}
	fmt.Fprintf(stdout, "%d findings\n", len(findings))
	for _, f := range findings {
		state := ""
		if f.Open() {
			state = " (still open)"
		}
		fmt.Fprintf(stdout, "%-8s %-30s %s  %s  %d events, %d records, %d tenants%s\n", f.Severity, f.RuleID,
			f.WindowStart.Format(time.RFC3339), f.GroupKey, f.Count, f.Records, len(f.Affected.Tenants), state)
	}
	return nil
}

type collectSink struct{ fs *[]incident.Finding }

func (c collectSink) Findings(_ context.Context, fs []incident.Finding) error {
	*c.fs = append(*c.fs, fs...)
	return nil
}

// progress prints how far a replay has come, at most once a second.
type progress struct {
	w        io.Writer
	from, to time.Time
	start    time.Time
	last     time.Time
	n        int64
}

func (p *progress) show(at time.Time) {
	if time.Since(p.last) < time.Second || at.IsZero() {
		return
	}
	p.last = time.Now()
	pct := 100.0
	if span := p.to.Sub(p.from); span > 0 {
		pct = min(100, 100*float64(at.Sub(p.from))/float64(span))
	}
	fmt.Fprintf(p.w, "\r  %5.1f%%  %s  %d events, %.0f events/s   ", pct, at.Format(time.RFC3339), p.n,
		float64(p.n)/time.Since(p.start).Seconds())
}

func (p *progress) done() {
	fmt.Fprintf(p.w, "\r  100.0%%  %d events in %v%s\n", p.n, time.Since(p.start).Round(time.Millisecond), strings.Repeat(" ", 30))
}

// parseWhen reads a --from/--to value: RFC 3339, a date (UTC midnight) or a
// duration before now ("24h").
func parseWhen(s string, now time.Time) (time.Time, error) {
	if t, ok := event.ParseTime(s); ok {
		return t, nil
	}
	if t, err := time.Parse("2006-01-02", s); err == nil {
		return t, nil
	}
	if d, err := time.ParseDuration(s); err == nil && d >= 0 {
		return now.Add(-d).UTC(), nil
	}
	return time.Time{}, fmt.Errorf("%q: want an RFC 3339 time, a date (2026-11-20) or a duration before now (24h)", s)
}
