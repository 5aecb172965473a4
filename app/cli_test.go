package app

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/breachwatch/breachwatch/demo"
	"github.com/breachwatch/breachwatch/event"
	"github.com/breachwatch/breachwatch/incident"
	"github.com/breachwatch/breachwatch/store/sqlite"
)

func runMain(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	code = Main(context.Background(), args, &out, &errb, nil)
	return code, out.String(), errb.String()
}

func copyDir(t *testing.T, from, to string) {
	t.Helper()
	err := filepath.Walk(from, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(from, p)
		if fi.IsDir() {
			return os.MkdirAll(filepath.Join(to, rel), 0o755)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(to, rel), b, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestRulesCommands(t *testing.T) {
	if code, out, _ := runMain(t, "rules", "check", "../rules"); code != 0 || !strings.Contains(out, "14 rules") {
		t.Errorf("check of the default rules: %d %q", code, out)
	}
	if code, out, _ := runMain(t, "rules", "test", "../rules"); code != 0 || !strings.Contains(out, "fixtures of 14 rules passed") {
		t.Errorf("test of the default rules: %d %q", code, out)
	}

	// A broken rule: check names the file, line and field; exit 1.
	dir := t.TempDir()
	copyDir(t, "../rules", dir)
	path := filepath.Join(dir, "bulk-export.yaml")
	b, _ := os.ReadFile(path)
	if err := os.WriteFile(path, bytes.Replace(b, []byte("sum(records)"), []byte("sum(recordz)"), 1), 0o644); err != nil {
		t.Fatal(err)
	}
	code, _, errOut := runMain(t, "rules", "check", dir)
	if code != 1 || !strings.Contains(errOut, path+":") || !strings.Contains(errOut, "threshold.aggregate") {
		t.Errorf("check of a broken rule: %d %q", code, errOut)
	}

	// A fixture that no longer holds: test fails and says which.
	copyDir(t, "../rules", dir) // repair
	fx := filepath.Join(dir, "testdata", "bulk-export", "positive-downloads.yaml")
	b, _ = os.ReadFile(fx)
	if err := os.WriteFile(fx, bytes.Replace(b, []byte("value: 12000"), []byte("value: 13000"), 1), 0o644); err != nil {
		t.Fatal(err)
	}
	code, out, _ := runMain(t, "rules", "test", dir)
	if code != 1 || !strings.Contains(out, "FAIL bulk-export/positive-downloads") || !strings.Contains(out, "value is 12000, want 13000") {
		t.Errorf("test with a wrong fixture: %d %q", code, out)
	}
	if code, _, _ := runMain(t, "rules", "frobnicate"); code != 2 {
		t.Errorf("unknown subcommand: %d", code)
	}
}

func TestReplay(t *testing.T) {
	dataDir := t.TempDir()
	st, err := sqlite.Open(context.Background(), dataDir)
	if err != nil {
		t.Fatal(err)
	}
	// Two hours of demo traffic with breaches, stored.
	g := demo.New(demo.Options{Seed: 8, Breach: true})
	from := time.Date(2026, 11, 20, 8, 0, 0, 0, time.UTC)
	var b event.Batch
	for i := range 360_000 {
		g.Next(from.Add(time.Duration(i)*20*time.Millisecond), &b)
		if b.Len() >= 10_000 {
			if err := st.Write(context.Background(), &b); err != nil {
				t.Fatal(err)
			}
			b.Reset()
		}
	}
	if err := st.Write(context.Background(), &b); err != nil {
		t.Fatal(err)
	}
	st.Close()

	code, out, errOut := runMain(t, "replay", "--data-dir", dataDir, "--rules", "../rules", "--inventory", "../deploy/inventory.example.yaml",
		"--from", "2026-11-20", "--to", "2026-11-21T00:00:00Z", "--json", "--log-level", "warn")
	if code != 0 {
		t.Fatalf("replay: %d %s", code, errOut)
	}
	if !strings.Contains(errOut, "100.0%") {
		t.Errorf("no progress shown: %q", errOut)
	}
	rules := map[string]int{}
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		var f incident.Finding
		if err := json.Unmarshal([]byte(line), &f); err != nil {
			t.Fatalf("not a finding: %q", line)
		}
		rules[f.RuleID]++
	}
	for _, s := range demo.Scenarios() {
		if rules[s] == 0 {
			t.Errorf("replay found no %s (found %v)", s, rules)
		}
	}
	// Replaying again gives the same findings: they are deterministic.
	_, again, _ := runMain(t, "replay", "--data-dir", dataDir, "--rules", "../rules", "--inventory", "../deploy/inventory.example.yaml",
		"--from", "2026-11-20", "--to", "2026-11-21T00:00:00Z", "--json", "--log-level", "warn")
	if fingerprints(out) != fingerprints(again) {
		t.Error("a second replay gave other findings")
	}
	if code, _, errOut := runMain(t, "replay", "--data-dir", dataDir, "--rules", "../rules"); code != 2 || !strings.Contains(errOut, "--from is required") {
		t.Errorf("replay without --from: %d %q", code, errOut)
	}
}

func fingerprints(ndjson string) string {
	var fps []string
	for _, line := range strings.Split(strings.TrimSpace(ndjson), "\n") {
		var f incident.Finding
		_ = json.Unmarshal([]byte(line), &f)
		fps = append(fps, f.Fingerprint)
	}
	return strings.Join(fps, ",")
}

// TestBannerKeepsDemoPasswordsOutOfLogs: the start banner shows the demo
// logins' passwords on a terminal only; written to a pipe or a file (what a
// log collector keeps) it names the file that holds them instead.
func TestBannerKeepsDemoPasswordsOutOfLogs(t *testing.T) {
	var b strings.Builder
	o := Options{DataDir: "/var/lib/breachwatch"}
	printBanner(&b, o, Info{Console: true, HTTPAddr: "127.0.0.1:8080", DemoLogins: []string{"erin  engineer  s3cr3t-Pa55"}})
	if strings.Contains(b.String(), "s3cr3t-Pa55") {
		t.Errorf("the banner printed a password where it is not a terminal:\n%s", b.String())
	}
	if !strings.Contains(b.String(), "/var/lib/breachwatch/dev-logins") {
		t.Errorf("the banner does not say where the logins are:\n%s", b.String())
	}
}

// TestCLIHelpAndSuggestions: help exits 0 and lists only the asked
// subcommand's flags; unknown subcommands and flags are answered with the
// nearest name, a flag of another subcommand names that subcommand.
func TestCLIHelpAndSuggestions(t *testing.T) {
	for _, tt := range []struct {
		args           []string
		code           int
		stdout, stderr []string // each must appear
		absent         []string // in either
	}{
		{[]string{"incidents", "--help"}, 0, []string{"approve ID --version N --hash H", "register [--csv]"}, nil, nil},
		{[]string{"incidents"}, 2, nil, []string{"usage: breachwatch incidents SUBCOMMAND"}, nil},
		{[]string{"incidents", "approve", "-h"}, 0, []string{"-hash", "-version", "-reason", "-url"}, nil, []string{"-wait", "-csv", "-notice", "-status"}},
		{[]string{"incidents", "send", "--help"}, 0, []string{"-wait"}, nil, []string{"-hash"}},
		{[]string{"incidents", "aprove", "x"}, 2, nil, []string{`unknown subcommand "aprove" — did you mean approve?`}, nil},
		{[]string{"incidents", "send", "x", "--wiat"}, 2, nil, []string{"unknown flag --wiat — did you mean --wait?", "usage: breachwatch incidents send ID [--wait]"}, nil},
		{[]string{"incidents", "send", "x", "--hash", "h"}, 2, nil, []string{"unknown flag --hash (a flag of approve, not of send)"}, nil},
		{[]string{"incidnets", "list"}, 2, nil, []string{`unknown command "incidnets" — did you mean incidents?`}, nil},
		{[]string{"rules", "--help"}, 0, []string{"usage: breachwatch rules check|test"}, nil, nil},
		{[]string{"rules", "chek"}, 2, nil, []string{"did you mean check?"}, nil},
		{[]string{"audit", "-h"}, 0, []string{"usage: breachwatch audit verify"}, nil, nil},
		{[]string{"audit", "verfy"}, 2, nil, []string{"did you mean verify?"}, nil},
	} {
		var stdout, stderr bytes.Buffer
		code := Main(context.Background(), tt.args, &stdout, &stderr, nil)
		if code != tt.code {
			t.Errorf("%v: exit %d, want %d\nstdout: %s\nstderr: %s", tt.args, code, tt.code, stdout.String(), stderr.String())
		}
		for _, s := range tt.stdout {
			if !strings.Contains(stdout.String(), s) {
				t.Errorf("%v: stdout lacks %q:\n%s", tt.args, s, stdout.String())
			}
		}
		for _, s := range tt.stderr {
			if !strings.Contains(stderr.String(), s) {
				t.Errorf("%v: stderr lacks %q:\n%s", tt.args, s, stderr.String())
			}
		}
		for _, s := range tt.absent {
			if strings.Contains(stdout.String()+stderr.String(), s+" ") || strings.Contains(stdout.String()+stderr.String(), s+"\n") {
				t.Errorf("%v: shows %q, a flag of another subcommand:\n%s", tt.args, s, stdout.String())
			}
		}
	}
}
