package app

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/url"
	"strings"
	"time"

	"github.com/breachwatch/breachwatch/detect"
)

// backfillCommand runs `breachwatch backfill --from T --to T` against a
// running breachwatch: the backfill runs in the service (one tracker, one
// writer of the audit log); the command starts it and draws its progress.
func backfillCommand(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string, now func() time.Time) int {
	fs := flag.NewFlagSet("breachwatch backfill", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintln(stderr, `usage: breachwatch backfill --from T --to T [--url URL] [--token-file FILE]

Evaluates the stored events from --from on, as live detection would have, and hands the
findings that start before --to and are new or changed to the incident tracker. Running it
twice changes nothing. T: an RFC 3339 time, a date (2026-11-20) or a duration before now (24h).
"breachwatch replay" is its dry run.`)
		fs.PrintDefaults()
	}
	from := fs.String("from", "", "the start of the time to evaluate (required)")
	to := fs.String("to", "", "the end (default now)")
	client := apiFlags(fs, getenv)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	r, err := extraFlags{from: *from, to: *to}.replay(now())
	if err != nil || fs.NArg() > 0 {
		if err == nil {
			err = fmt.Errorf("unexpected argument %q", fs.Arg(0))
		}
		fmt.Fprintln(stderr, "breachwatch backfill:", err)
		return 2
	}
	c, err := client()
	if err != nil {
		fmt.Fprintln(stderr, "breachwatch backfill:", err)
		return 2
	}
	var job detect.BackfillJob
	if _, err := c.do(ctx, "POST", "/api/v1/backfill", map[string]time.Time{"from": r.From, "to": r.To}, &job); err != nil {
		fmt.Fprintln(stderr, "breachwatch backfill:", err)
		return 1
	}
	fmt.Fprintf(stdout, "backfill %s: %s .. %s\n", job.ID, r.From.Format(time.RFC3339), r.To.Format(time.RFC3339))
	for {
		select {
		case <-ctx.Done():
			fmt.Fprintf(stdout, "\nstopped waiting; the backfill goes on in the service (GET /api/v1/backfill/%s)\n", job.ID)
			return 1
		case <-time.After(time.Second):
		}
		if _, err := c.do(ctx, "GET", "/api/v1/backfill/"+url.PathEscape(job.ID), nil, &job); err != nil {
			fmt.Fprintln(stderr, "\nbreachwatch backfill:", err)
			return 1
		}
		fmt.Fprintf(stdout, "\r%s", backfillLine(job))
		switch job.State {
		case "done":
			fmt.Fprintf(stdout, "\ndone: %d events read, %d findings new or changed handed to the tracker", job.Events, job.Findings)
			if job.Live > 0 {
				fmt.Fprintf(stdout, "; %d findings live detection took later events of were left to it", job.Live)
			}
			if job.Retained > 0 {
				fmt.Fprintf(stdout, "; %d stored findings the rules no longer yield were left as they were", job.Retained)
			}
			fmt.Fprintln(stdout)
			return 0
		case "failed":
			fmt.Fprintln(stdout)
			fmt.Fprintln(stderr, "breachwatch backfill:", termSafe(job.Error))
			return 1
		}
	}
}

// backfillLine draws a backfill's progress as a bar over the time it
// evaluates.
func backfillLine(j detect.BackfillJob) string {
	const width = 30
	done := 0
	if span := j.To.Sub(j.From); span > 0 && !j.Reached.IsZero() {
		done = int(min(max(float64(j.Reached.Sub(j.From))/float64(span), 0), 1) * width)
	}
	if j.State == "done" {
		done = width
	}
	reached := "-"
	if !j.Reached.IsZero() {
		reached = j.Reached.Format(time.RFC3339)
	}
	return fmt.Sprintf("[%s%s] %s  %d events, %d findings", strings.Repeat("#", done), strings.Repeat(".", width-done), reached, j.Events, j.Findings)
}
