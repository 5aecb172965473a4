package app

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Version is breachwatch's version, set at build time.
var Version = "dev"

const usage = `breachwatch detects exposure of customers' personal data and tracks the
72-hour notification clock.

Usage:
  breachwatch serve   [flags]   run the service (HTTP API, Kafka ingest, store)
  breachwatch demo    [flags]   produce demo traffic into Kafka
  breachwatch config  [flags]   check a configuration and print it as it takes effect
  breachwatch version           print the version

Run "breachwatch <command> -h" for a command's flags. Every setting can also be
given in a YAML file (--config), as a BREACHWATCH_* environment variable, or
with --set key=value; see docs/configuration.md.
`

// Main runs the command line and returns the process exit code: 0 on
// success, 1 when the command failed, 2 for a usage or configuration error.
func Main(ctx context.Context, args []string, stdout, stderr io.Writer) int {
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
	case "serve", "demo", "config":
	default:
		fmt.Fprintf(stderr, "breachwatch: unknown command %q\n\n%s", cmd, usage)
		return 2
	}
	o, err := parseFlags(cmd, args, stderr)
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
	default:
		err = Run(ctx, o, Runtime{Stdout: stdout})
	}
	if err != nil && ctx.Err() == nil {
		fmt.Fprintln(stderr, "breachwatch:", err)
		return 1
	}
	return 0
}

// multi is a repeatable string flag.
type multi []string

func (m *multi) String() string     { return strings.Join(*m, ",") }
func (m *multi) Set(s string) error { *m = append(*m, s); return nil }

// parseFlags turns a command's flags into Options: each flag is a shortcut
// for one configuration key, applied after the file and the environment.
func parseFlags(cmd string, args []string, stderr io.Writer) (Options, error) {
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
		str("demo-rate", "demo.rate", "demo events per second")
		boolean("dev-token", "auth.dev_token", "create a development admin token under the data directory")
	case "demo":
		str("rate", "demo.rate", "events per second")
		str("count", "demo.count", "stop after this many events (0: never)")
		str("tenants", "demo.tenants", "number of tenants")
		str("seed", "demo.seed", "random seed (0: a new one)")
	}
	if err := fs.Parse(args); err != nil {
		return Options{}, err
	}
	if fs.NArg() > 0 {
		return Options{}, fmt.Errorf("unexpected argument %q", fs.Arg(0))
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
	return Load(*config, os.Environ(), overrides)
}
