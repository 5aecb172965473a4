package app

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
	"golang.org/x/crypto/bcrypt"
)

// Version is breachwatch's version, set at build time.
var Version = "dev"

const usage = `breachwatch detects exposure of customers' personal data and tracks the
72-hour notification clock.

Usage:
  breachwatch serve   [flags]          run the service (HTTP API, Kafka ingest, rules, store)
  breachwatch demo    [flags]          produce demo traffic into Kafka (--breach adds exposures)
  breachwatch rules check [DIR]        check a rule folder (default ./rules)
  breachwatch rules test  [DIR]        run the rules' fixtures (DIR/testdata)
  breachwatch replay --from T [--to T] run the rules over stored events and print the findings (a dry run)
  breachwatch backfill --from T [--to T]  evaluate stored events through a running breachwatch: incidents as live
  breachwatch incidents list|show|confirm|dismiss|…  triage incidents through a running breachwatch
  breachwatch audit verify             check the incidents' audit log is intact
  breachwatch hash-password            read a password on stdin, print its bcrypt hash (console.users)
  breachwatch config  [flags]          check a configuration and print it as it takes effect
  breachwatch version                  print the version

Run "breachwatch <command> -h" for a command's flags. Every setting can also be
given in a YAML file (--config), as a BREACHWATCH_* environment variable, or
with --set key=value; see docs/configuration.md.
`

// Main runs the command line and returns the process exit code: 0 on
// success, 1 when the command failed, 2 for a usage or configuration error.
// reload delivers SIGHUP (reload the rules); it may be nil.
func Main(ctx context.Context, args []string, stdout, stderr io.Writer, reload <-chan os.Signal) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	cmd, args := args[0], args[1:]
	switch cmd {
	case "version", "--version", "-version":
		fmt.Fprintln(stdout, "breachwatch", Version)
		return 0
	case "help", "-h", "--help", "-help":
		fmt.Fprint(stdout, usage)
		return 0
	case "rules":
		return rulesCommand(args, stdout, stderr)
	case "incidents":
		return incidentsCommand(ctx, args, stdout, stderr, os.Getenv)
	case "audit":
		return auditCommand(ctx, args, stdout, stderr)
	case "backfill":
		return backfillCommand(ctx, args, stdout, stderr, os.Getenv, time.Now)
	case "hash-password":
		return hashPassword(os.Stdin, stdout, stderr)
	case "serve", "demo", "config", "replay":
	default:
		fmt.Fprintf(stderr, "breachwatch: unknown command %q%s\n\n%s", cmd, didYouMean(cmd, commands), usage)
		return 2
	}
	o, extra, err := parseFlags(cmd, args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintln(stderr, "breachwatch:", err)
		return 2
	}
	switch cmd {
	case "config":
		out, _ := yaml.Marshal(o)
		fmt.Fprintf(stdout, "# configuration is valid; as it takes effect (secrets are never shown):\n%s", out)
		return 0
	case "demo":
		err = RunDemo(ctx, o, stdout)
	case "replay":
		var r ReplayOptions
		if r, err = extra.replay(time.Now()); err != nil {
			fmt.Fprintln(stderr, "breachwatch replay:", err)
			return 2
		}
		err = Replay(ctx, o, r, stdout, stderr)
	default:
		err = Run(ctx, o, Runtime{Stdout: stdout, Reload: reload})
	}
	if err != nil && ctx.Err() == nil {
		fmt.Fprintln(stderr, "breachwatch:", err)
		return 1
	}
	return 0
}

// commands are breachwatch's commands, for "did you mean".
var commands = []string{"serve", "demo", "rules", "replay", "backfill", "incidents", "audit", "hash-password", "config", "version", "help"}

// didYouMean suggests the option nearest to what was typed (" — did you
// mean …?"), or "" when none is near: at most a third of its letters
// differ, or what was typed (3 letters or more) begins it.
func didYouMean(typed string, options []string) string {
	if best := nearest(typed, options); best != "" {
		return " — did you mean " + best + "?"
	}
	return ""
}

func nearest(typed string, options []string) string {
	best, bestD := "", len(typed)/3+1
	for _, o := range options {
		if d := editDistance(typed, o); d < bestD {
			best, bestD = o, d
		}
	}
	if best == "" && len(typed) >= 3 {
		for _, o := range options {
			if strings.HasPrefix(o, typed) {
				return o
			}
		}
	}
	if best == typed {
		return ""
	}
	return best
}

// subcommand picks a command's subcommand from args[0]: help (-h,
// --help, help) prints the usage to stdout and ends with 0; none, or one
// not in subs (with a "did you mean"), ends with 2.
func subcommand(cmd, use string, subs []string, args []string, stdout, stderr io.Writer) (sub string, code int, ok bool) {
	switch {
	case len(args) == 0:
		fmt.Fprintln(stderr, use)
		return "", 2, false
	case args[0] == "help" || args[0] == "-h" || args[0] == "-help" || args[0] == "--help":
		fmt.Fprintln(stdout, use)
		return "", 0, false
	case !slices.Contains(subs, args[0]):
		fmt.Fprintf(stderr, "breachwatch %s: unknown subcommand %q%s\n%s\n", cmd, args[0], didYouMean(args[0], subs), use)
		return "", 2, false
	}
	return args[0], 0, true
}

// editDistance is the optimal string alignment distance between a and b:
// insertions, deletions, substitutions and swaps of neighbours count one.
func editDistance(a, b string) int {
	d := make([][]int, len(a)+1)
	for i := range d {
		d[i] = make([]int, len(b)+1)
		d[i][0] = i
	}
	for j := range d[0] {
		d[0][j] = j
	}
	for i := 1; i <= len(a); i++ {
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			d[i][j] = min(d[i-1][j]+1, d[i][j-1]+1, d[i-1][j-1]+cost)
			if i > 1 && j > 1 && a[i-1] == b[j-2] && a[i-2] == b[j-1] {
				d[i][j] = min(d[i][j], d[i-2][j-2]+1)
			}
		}
	}
	return d[len(a)][len(b)]
}

// multi is a repeatable string flag.
type multi []string

func (m *multi) String() string     { return strings.Join(*m, ",") }
func (m *multi) Set(s string) error { *m = append(*m, s); return nil }

// extraFlags are the flags that are not configuration keys.
type extraFlags struct {
	from, to string
	json     bool
	anchors  string
}

func (x extraFlags) replay(now time.Time) (ReplayOptions, error) {
	if x.from == "" {
		return ReplayOptions{}, errors.New("--from is required")
	}
	from, err := parseWhen(x.from, now)
	if err != nil {
		return ReplayOptions{}, fmt.Errorf("--from %w", err)
	}
	to := now.UTC()
	if x.to != "" {
		if to, err = parseWhen(x.to, now); err != nil {
			return ReplayOptions{}, fmt.Errorf("--to %w", err)
		}
	}
	if !from.Before(to) {
		return ReplayOptions{}, errors.New("--from must be before --to")
	}
	return ReplayOptions{From: from, To: to, JSON: x.json}, nil
}

// parseFlags turns a command's flags into Options: each flag is a shortcut
// for one configuration key, applied after the file and the environment.
func parseFlags(cmd string, args []string, stderr io.Writer) (Options, extraFlags, error) {
	var x extraFlags
	fs := flag.NewFlagSet("breachwatch "+cmd, flag.ContinueOnError)
	fs.SetOutput(stderr)
	config := fs.String("config", "", "YAML configuration `file`")
	var sets multi
	fs.Var(&sets, "set", "set any configuration key, e.g. --set kafka.group=bw (repeatable)")
	// flag name → configuration key
	shortcuts := map[string]string{}
	str := func(name, key, help string) {
		fs.String(name, "", help)
		shortcuts[name] = key
	}
	boolean := func(name, key, help string) {
		fs.Bool(name, false, help)
		shortcuts[name] = key
	}
	str("log-format", "log.format", "log format: auto, json or console")
	str("log-level", "log.level", "log level: debug, info, warn or error")
	str("kafka-brokers", "kafka.brokers", "Kafka `brokers`, comma-separated (none: the embedded broker)")
	switch cmd {
	case "serve", "config":
		str("http-addr", "http.addr", "HTTP listen `address`")
		str("data-dir", "data_dir", "data `directory`")
		str("clickhouse-addr", "clickhouse.addr", "ClickHouse native `addresses`, comma-separated (none: the embedded store)")
		boolean("demo", "demo.enabled", "also produce demo traffic")
		boolean("breach", "demo.breach", "with --demo: inject realistic exposures among the demo traffic")
		str("rules", "detect.rules_dir", "rules `folder` (empty: no detection)")
		str("inventory", "detect.inventory", "data inventory `file`")
		str("demo-rate", "demo.rate", "demo events per second")
		boolean("dev-token", "auth.dev_token", "create a development admin token under the data directory")
	case "audit":
		str("clickhouse-addr", "clickhouse.addr", "ClickHouse native `addresses` (none: the embedded store)")
		str("data-dir", "data_dir", "data `directory` (the embedded store)")
		fs.StringVar(&x.anchors, "anchors", "", "check the log against the heads kept elsewhere: a `file` of JSON lines (the topic's records, or the log's \"audit head\" lines), or \"kafka\" to read kafka.topics.anchors")
	case "replay":
		str("rules", "detect.rules_dir", "rules `folder`")
		str("inventory", "detect.inventory", "data inventory `file`")
		str("clickhouse-addr", "clickhouse.addr", "ClickHouse native `addresses` (none: the embedded store)")
		str("data-dir", "data_dir", "data `directory` (the embedded store)")
		fs.StringVar(&x.from, "from", "", "replay from this `time` (RFC 3339, a date, or a duration before now such as 24h)")
		fs.StringVar(&x.to, "to", "", "replay until this `time` (default now)")
		fs.BoolVar(&x.json, "json", false, "print the findings as JSON lines")
	case "demo":
		boolean("breach", "demo.breach", "inject realistic exposures among the traffic")
		str("rate", "demo.rate", "events per second")
		str("count", "demo.count", "stop after this many events (0: never)")
		str("tenants", "demo.tenants", "number of tenants")
		str("seed", "demo.seed", "random seed (0: a new one)")
	}
	if err := fs.Parse(args); err != nil {
		return Options{}, x, err
	}
	if fs.NArg() > 0 {
		return Options{}, x, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	overrides := []string(sets)
	fs.Visit(func(f *flag.Flag) {
		if key, ok := shortcuts[f.Name]; ok {
			overrides = append(overrides, key+"="+f.Value.String())
		}
	})
	if cmd == "demo" {
		overrides = append([]string{"demo.enabled=true"}, overrides...)
	}
	o, err := Load(*config, os.Environ(), overrides)
	return o, x, err
}

// hashPassword reads one password line and prints its bcrypt hash, for
// console.users[].password_hash.
func hashPassword(in io.Reader, stdout, stderr io.Writer) int {
	line, err := bufio.NewReader(io.LimitReader(in, 1024)).ReadString('\n')
	if err != nil && err != io.EOF {
		fmt.Fprintln(stderr, "breachwatch hash-password:", err)
		return 1
	}
	pw := strings.TrimRight(line, "\r\n")
	if len(pw) < 12 {
		fmt.Fprintln(stderr, "breachwatch hash-password: use a password of at least 12 characters")
		return 2
	}
	h, err := bcrypt.GenerateFromPassword([]byte(pw), 12)
	if err != nil {
		fmt.Fprintln(stderr, "breachwatch hash-password:", err)
		return 1
	}
	fmt.Fprintln(stdout, string(h))
	return 0
}
