package app

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
	"unicode"

	"go.uber.org/zap"

	"github.com/breachwatch/breachwatch/incident"
	"github.com/breachwatch/breachwatch/notify"
	"github.com/breachwatch/breachwatch/tracker"
)

// incidentsCommand runs `breachwatch incidents list|show|<command> …`
// against a running breachwatch's API (the tracker has one writer: the
// service; the CLI never writes the audit log itself).
func incidentsCommand(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, incidentsUsage())
		return 2
	}
	sub := args[0]
	switch sub {
	case "help", "-h", "-help", "--help":
		fmt.Fprint(stdout, incidentsUsage())
		return 0
	}
	spec, ok := incidentSubs[sub]
	if !ok {
		fmt.Fprintf(stderr, "breachwatch incidents: unknown subcommand %q%s\n(\"breachwatch incidents --help\" lists them)\n", sub, didYouMean(sub, incidentSubNames()))
		return 2
	}
	// Every flag is defined on all; the subcommand's flag set carries only
	// its own (and --url, --token-file), so that its help lists them alone
	// and a flag of another subcommand is refused by name.
	all := flag.NewFlagSet("", flag.ContinueOnError)
	client := apiFlags(all, getenv)
	status := all.String("status", "", "only incidents in this `status` (open, confirmed, dismissed, notifying, notified, closed)")
	asJSON := all.Bool("json", false, "print the API's JSON")
	reason := all.String("reason", "", "the reason, or the note's `text`")
	to := all.String("to", "", "assign: to whom; file, waive: the obligation id, e.g. gdpr/art33; status: the status; close-exposure: the finding's fingerprint")
	at := all.String("at", "", "the `time` (RFC 3339)")
	ref := all.String("reference", "", "the recipient's `reference`, e.g. a case number")
	noticeFile := all.String("notice", "", "the notice as a JSON `file` (text per locale, contact, authority, product)")
	correction := all.Bool("correction", false, "after a version went out: send it to the customers told already too, not only to those not told yet")
	version := all.Int("version", 0, "the notice `version` to approve")
	hash := all.String("hash", "", "the version's content `hash`, as `incidents notice` shows it")
	wait := all.Bool("wait", false, "show progress until every customer is reached")
	asHTML := all.Bool("html", false, "the printable HTML page")
	asCSV := all.Bool("csv", false, "CSV")
	fs := flag.NewFlagSet("breachwatch incidents "+sub, flag.ContinueOnError)
	fs.SetOutput(io.Discard) // errors are said below, help goes to stdout
	for _, name := range append([]string{"url", "token-file"}, spec.flags...) {
		f := all.Lookup(name)
		fs.Var(f.Value, f.Name, f.Usage)
	}
	// Flags may come after the incident id.
	var pos []string
	rest := args[1:]
	for {
		if err := fs.Parse(rest); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				fmt.Fprintf(stdout, "usage: breachwatch incidents %s\n  %s\n\nflags:\n", spec.synopsis, spec.what)
				fs.SetOutput(stdout)
				fs.PrintDefaults()
				return 0
			}
			msg := err.Error()
			if name, found := strings.CutPrefix(msg, "flag provided but not defined: -"); found {
				name = strings.TrimLeft(name, "-")
				var mine []string
				fs.VisitAll(func(f *flag.Flag) { mine = append(mine, f.Name) })
				msg = "unknown flag --" + name
				if best := nearest(name, mine); best != "" {
					msg += " — did you mean --" + best + "?"
				} else if owners := flagOwners(name); len(owners) > 0 {
					msg += " (a flag of " + strings.Join(owners, ", ") + ", not of " + sub + ")"
				}
			}
			fmt.Fprintf(stderr, "breachwatch incidents %s: %s\nusage: breachwatch incidents %s\n(\"breachwatch incidents %s -h\" lists its flags)\n",
				sub, msg, spec.synopsis, sub)
			return 2
		}
		if fs.NArg() == 0 {
			break
		}
		pos, rest = append(pos, fs.Arg(0)), fs.Args()[1:]
	}
	use := "usage: breachwatch incidents " + spec.synopsis
	c, err := client()
	if err != nil {
		fmt.Fprintln(stderr, "breachwatch incidents:", err)
		return 2
	}

	switch sub {
	case "list":
		if len(pos) != 0 {
			fmt.Fprintln(stderr, use)
			return 2
		}
		q := ""
		if *status != "" {
			q = "?status=" + url.QueryEscape(*status)
		}
		var out struct {
			Incidents []tracker.View `json:"incidents"`
		}
		raw, err := c.do(ctx, "GET", "/api/v1/incidents"+q, nil, &out)
		if err != nil {
			fmt.Fprintln(stderr, "breachwatch incidents:", err)
			return 1
		}
		if *asJSON {
			stdout.Write(raw)
			return 0
		}
		printIncidents(stdout, out.Incidents, time.Now())
		return 0
	case "show":
		if len(pos) != 1 {
			fmt.Fprintln(stderr, use)
			return 2
		}
		var v tracker.View
		raw, err := c.do(ctx, "GET", "/api/v1/incidents/"+url.PathEscape(pos[0]), nil, &v)
		if err != nil {
			fmt.Fprintln(stderr, "breachwatch incidents:", err)
			return 1
		}
		if *asJSON {
			stdout.Write(raw)
			return 0
		}
		printIncident(stdout, v, time.Now())
		return 0
	case tracker.CmdAcknowledge, tracker.CmdConfirm, tracker.CmdDismiss, tracker.CmdReopen, tracker.CmdAssign, tracker.CmdNote,
		tracker.CmdAwareness, tracker.CmdDetermine, tracker.CmdFile, tracker.CmdStatus, tracker.CmdWaive, tracker.CmdUpdate, tracker.CmdCloseExposure:
		if len(pos) != 1 {
			fmt.Fprintln(stderr, use)
			return 2
		}
		body := map[string]any{"reason": *reason, "to": *to, "reference": *ref}
		if *at != "" {
			t, err := time.Parse(time.RFC3339, *at)
			if err != nil {
				fmt.Fprintln(stderr, "breachwatch incidents: --at: want an RFC 3339 time such as 2026-11-20T14:00:00Z")
				return 2
			}
			body["at"] = t
		}
		var v tracker.View
		if _, err := c.do(ctx, "POST", "/api/v1/incidents/"+url.PathEscape(pos[0])+"/"+sub, body, &v); err != nil {
			fmt.Fprintln(stderr, "breachwatch incidents:", err)
			return 1
		}
		fmt.Fprintf(stdout, "%s: %s, now %s\n", termSafe(v.ID), sub, v.Status)
		return 0
	case tracker.CmdDraft, tracker.CmdApprove, tracker.CmdSend:
		if len(pos) != 1 {
			fmt.Fprintln(stderr, use)
			return 2
		}
		body := map[string]any{"reason": *reason}
		switch sub {
		case tracker.CmdDraft:
			raw, err := os.ReadFile(*noticeFile)
			if err != nil {
				fmt.Fprintln(stderr, "breachwatch incidents: --notice:", err)
				return 2
			}
			var n incident.Notice
			dec := json.NewDecoder(bytes.NewReader(raw))
			dec.DisallowUnknownFields()
			if err := dec.Decode(&n); err != nil {
				fmt.Fprintf(stderr, "breachwatch incidents: %s: %v\n", *noticeFile, err)
				return 2
			}
			body["notice"] = n
			if *correction {
				body["correction"] = true
			}
		case tracker.CmdApprove:
			body["version"], body["hash"] = *version, *hash
		}
		var v tracker.View
		if _, err := c.do(ctx, "POST", "/api/v1/incidents/"+url.PathEscape(pos[0])+"/"+sub, body, &v); err != nil {
			fmt.Fprintln(stderr, "breachwatch incidents:", err)
			return 1
		}
		fmt.Fprintf(stdout, "%s: %s, now %s\n", termSafe(v.ID), sub, v.Status)
		if v.Notice != nil && len(v.Notice.Versions) > 0 {
			last := v.Notice.Versions[len(v.Notice.Versions)-1]
			if sub == tracker.CmdDraft {
				fmt.Fprintf(stdout, "version %d, hash %s\n", last.Version, last.Hash)
				for _, m := range last.Missing {
					fmt.Fprintf(stdout, "  missing: %s\n", termSafe(m))
				}
			}
		}
		if sub == tracker.CmdSend && *wait {
			return waitNotice(ctx, c, pos[0], stdout, stderr)
		}
		return 0
	case "report", "register":
		p := "/api/v1/register"
		switch {
		case sub == "report" && len(pos) == 1:
			p = "/api/v1/incidents/" + url.PathEscape(pos[0]) + "/report"
			if *asHTML {
				p += ".html"
			}
		case sub == "register" && len(pos) == 0:
			if *asCSV {
				p += "?format=csv"
			}
		default:
			fmt.Fprintln(stderr, use)
			return 2
		}
		raw, err := c.do(ctx, "GET", p, nil, nil)
		if err != nil {
			fmt.Fprintln(stderr, "breachwatch incidents:", err)
			return 1
		}
		stdout.Write(raw)
		return 0
	case "notice":
		if len(pos) != 1 {
			fmt.Fprintln(stderr, use)
			return 2
		}
		var out noticeOut
		raw, err := c.do(ctx, "GET", "/api/v1/incidents/"+url.PathEscape(pos[0])+"/notice", nil, &out)
		if err != nil {
			fmt.Fprintln(stderr, "breachwatch incidents:", err)
			return 1
		}
		if *asJSON {
			stdout.Write(raw)
			return 0
		}
		var view tracker.View
		if _, err := c.do(ctx, "GET", "/api/v1/incidents/"+url.PathEscape(pos[0]), nil, &view); err != nil {
			fmt.Fprintln(stderr, "breachwatch incidents:", err)
			return 1
		}
		if u := view.UpdateRequired; u != nil {
			fmt.Fprintf(stdout, "UPDATE REQUIRED since %s: %s\n  not told yet: %d; told, facts changed since: %d; draft a supplementary version\n",
				u.Since.Format(time.RFC3339), termSafe(u.Summary()), len(u.Untold), len(u.Changed))
		}
		for _, v := range out.Versions {
			state := "draft"
			if v.ApprovedBy != "" {
				state = "approved by " + termSafe(v.ApprovedBy)
				if v.SelfApproved {
					state += " (its author: self-approved)"
				}
			}
			kind := ""
			switch {
			case v.Correction:
				kind = " (correction)"
			case v.Supplementary:
				kind = " (supplementary)"
			}
			fmt.Fprintf(stdout, "version %d%s by %s, %s\n  hash %s\n", v.Version, kind, termSafe(v.Author), state, v.Hash)
			for _, m := range v.Missing {
				fmt.Fprintf(stdout, "  missing: %s\n", termSafe(m))
			}
		}
		if view.Notice != nil {
			for _, p := range view.Notice.Phases {
				reached := "not all reached yet"
				if p.ReachedAt != nil {
					reached = "all reached " + p.ReachedAt.Format(time.RFC3339)
				}
				fmt.Fprintf(stdout, "sent: version %d on %s to %s, %s\n", p.Version, p.StartedAt.Format(time.RFC3339),
					incident.Count(p.Customers, "customer", "customers"), reached)
			}
		}
		if out.Progress != nil {
			fmt.Fprintf(stdout, "version %d: %s\n", out.Progress.Version, progressLine(out.Progress))
		}
		return 0
	}
	fmt.Fprintf(stderr, "breachwatch incidents: unknown command %q\n%s\n", sub, use)
	return 2
}

type noticeOut struct {
	Versions []struct {
		Version       int      `json:"version"`
		Author        string   `json:"author"`
		Hash          string   `json:"hash"`
		ApprovedBy    string   `json:"approved_by"`
		SelfApproved  bool     `json:"self_approved"`
		Supplementary bool     `json:"supplementary"`
		Correction    bool     `json:"correction"`
		Missing       []string `json:"missing"`
	} `json:"versions"`
	Progress *notify.Progress `json:"progress"`
}

// progressLine draws the delivery progress as a bar.
func progressLine(p *notify.Progress) string {
	const width = 30
	done := 0
	if p.Customers > 0 {
		done = p.Reached * width / p.Customers
	}
	line := fmt.Sprintf("[%s%s] %d/%d customers reached; e-mails: %d sent, %d pending, %d failed, %d delivered, %d bounced; %d read in the app",
		strings.Repeat("#", done), strings.Repeat(".", width-done), p.Reached, p.Customers, p.Counts[incident.DeliverySent],
		p.Counts[incident.DeliveryPending]+p.Counts[incident.DeliverySending], p.Counts[incident.DeliveryFailed],
		p.Counts[incident.EventDelivered], p.Counts[incident.EventBounce]+p.Counts[incident.EventDropped], p.Counts[incident.EventRead])
	noEmail := 0
	for _, f := range p.FollowUp {
		if f.NoEmail {
			noEmail++
		}
	}
	if noEmail > 0 {
		line += fmt.Sprintf("; %s reached in the app only (no e-mail address in the customer directory)", incident.Count(noEmail, "customer", "customers"))
	}
	return line
}

// waitNotice redraws the progress every second until every e-mail left
// the outbox (sent or failed).
func waitNotice(ctx context.Context, c *apiClient, id string, stdout, stderr io.Writer) int {
	for {
		var out noticeOut
		if _, err := c.do(ctx, "GET", "/api/v1/incidents/"+url.PathEscape(id)+"/notice", nil, &out); err != nil {
			fmt.Fprintln(stderr, "\nbreachwatch incidents:", err)
			return 1
		}
		if p := out.Progress; p != nil && p.Customers > 0 {
			fmt.Fprintf(stdout, "\r%s", progressLine(p))
			if p.Customers > 0 && p.Counts[incident.DeliveryPending]+p.Counts[incident.DeliverySending] == 0 && p.Reached == p.Customers {
				fmt.Fprintln(stdout)
				return 0
			}
		}
		select {
		case <-ctx.Done():
			fmt.Fprintln(stdout)
			return 1
		case <-time.After(time.Second):
		}
	}
}

func firstNonEmpty(ss ...string) string {
	for _, s := range ss {
		if s != "" {
			return s
		}
	}
	return ""
}

// apiFlags adds the flags that reach a running breachwatch (--url,
// --token-file) to fs; the function it returns builds the client once fs
// is parsed.
func apiFlags(fs *flag.FlagSet, getenv func(string) string) func() (*apiClient, error) {
	base := fs.String("url", firstNonEmpty(getenv("BREACHWATCH_URL"), "http://127.0.0.1:8080"), "breachwatch's `URL`")
	tokenFile := fs.String("token-file", "", "`file` holding an API token (default $BREACHWATCH_TOKEN, else ./data/dev-token)")
	return func() (*apiClient, error) {
		token := strings.TrimSpace(getenv("BREACHWATCH_TOKEN"))
		if *tokenFile != "" || token == "" {
			path := firstNonEmpty(*tokenFile, filepath.Join("data", "dev-token"))
			b, err := os.ReadFile(path)
			if err != nil {
				return nil, fmt.Errorf("no token: set BREACHWATCH_TOKEN or --token-file (%w)", err)
			}
			token = strings.TrimSpace(string(b))
		}
		return &apiClient{base: strings.TrimSuffix(*base, "/"), token: token, http: &http.Client{Timeout: 30 * time.Second}}, nil
	}
}

type apiClient struct {
	base, token string
	http        *http.Client
}

// do calls the API and decodes a 2xx answer into out; other answers become
// an error carrying the API's message.
func (c *apiClient) do(ctx context.Context, method, path string, body, out any) ([]byte, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("breachwatch at %s: %w", c.base, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode/100 != 2 {
		var e struct{ Error string }
		_ = json.Unmarshal(raw, &e)
		return nil, fmt.Errorf("%s (HTTP %d)", termSafe(firstNonEmpty(e.Error, resp.Status)), resp.StatusCode)
	}
	if out == nil {
		return raw, nil
	}
	return raw, json.Unmarshal(raw, out)
}

// termSafe makes a string safe for a terminal: control characters (escape
// sequences could rewrite the screen) are shown escaped.
func termSafe(s string) string {
	var b strings.Builder
	for _, r := range s {
		if unicode.IsControl(r) || r == unicode.ReplacementChar || (r >= 0x202a && r <= 0x202e) || (r >= 0x2066 && r <= 0x2069) {
			fmt.Fprintf(&b, "\\u%04x", r)
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

// countdown says how long until t, or how long ago it passed.
func countdown(t, now time.Time) string {
	d := t.Sub(now).Round(time.Minute)
	if d < 0 {
		return "OVERDUE by " + fmtDuration(-d)
	}
	return fmtDuration(d) + " left"
}

func fmtDuration(d time.Duration) string {
	h := int(d.Hours())
	m := int(d.Minutes()) % 60
	if h >= 48 {
		return fmt.Sprintf("%dd %dh", h/24, h%24)
	}
	return fmt.Sprintf("%dh %02dm", h, m)
}

func printIncidents(w io.Writer, vs []tracker.View, now time.Time) {
	if len(vs) == 0 {
		fmt.Fprintln(w, "no incidents")
		return
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tSEVERITY\tSTATUS\tNEXT LEGAL DEADLINE\tTENANTS\tRECORDS\tTITLE")
	for _, v := range vs {
		next := "-"
		if d := v.NextDeadline; d != nil && d.DueAt != nil {
			next = fmt.Sprintf("%s %s (%s)", d.Regime, countdown(*d.DueAt, now), d.What)
		}
		if d := v.NextTarget; d != nil && d.DueAt != nil {
			next += fmt.Sprintf("; target %s (%s)", countdown(*d.DueAt, now), d.What)
		}
		status := string(v.Status)
		if v.UpdateRequired != nil {
			status += ", update required"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%d\t%s\n", termSafe(v.ID), v.Severity, status, termSafe(next),
			v.Affected.Tenants, v.Affected.Records, termSafe(v.Title))
	}
	tw.Flush()
}

func printIncident(w io.Writer, v tracker.View, now time.Time) {
	p := func(format string, args ...any) { fmt.Fprintf(w, format, args...) }
	p("%s  %s  [%s, %s]\n", termSafe(v.ID), termSafe(v.Title), v.Severity, v.Status)
	if u := v.UpdateRequired; u != nil {
		p("  UPDATE REQUIRED since %s: %s\n", u.Since.Format(time.RFC3339), termSafe(u.Summary()))
	}
	p("  rule          %s  (%s)\n", termSafe(v.RuleID), termSafe(v.GroupKey))
	p("  detected at   %s\n", v.DetectedAt.Format(time.RFC3339))
	p("  aware at      %s", v.AwareAt.Format(time.RFC3339))
	if v.AwareReason != "" {
		p("  (%s)", termSafe(v.AwareReason))
	}
	p("\n")
	to := "still open"
	if v.Exposure.To != nil {
		to = v.Exposure.To.Format(time.RFC3339)
	}
	p("  window        %s → %s\n", v.Exposure.From.Format(time.RFC3339), to)
	if v.Assignee != "" {
		p("  assignee      %s\n", termSafe(v.Assignee))
	}
	p("  evidence      %d events in %d findings\n", v.Events, len(v.Findings))
	p("\ndeadlines (times in UTC; %s):\n", v.TimeZone)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	for _, d := range v.Deadlines {
		due, state := "waiting for its anchor ("+d.Anchor+")", ""
		if d.DueAt != nil {
			due = d.DueAt.Format(time.RFC3339) + "  " + d.DueLocal
			state = countdown(*d.DueAt, now)
		}
		if d.MetAt != nil {
			state = "met " + d.MetAt.Format(time.RFC3339)
			if d.Late {
				state += " (late)"
			}
		}
		kind := "legal"
		if !d.Legal {
			kind = "target"
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\n", d.ID, termSafe(d.What), kind, due, state)
	}
	tw.Flush()
	p("\naffected customers: %d, %s", v.Affected.Tenants, incident.Count(int(v.Affected.Records), "record", "records"))
	if v.Affected.Partial {
		p(" (partial)")
	}
	p("\n")
	tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	for _, a := range v.Affected.List {
		fmt.Fprintf(tw, "  %s\t%s\t%d records\t%s\n", termSafe(a.Tenant), a.How, a.Records, termSafe(strings.Join(a.Categories, ",")))
	}
	tw.Flush()
	for _, n := range v.Notes {
		p("\nnote by %s at %s: %s\n", termSafe(n.Author), n.At.Format(time.RFC3339), termSafe(n.Text))
	}
}

// auditCommand runs `breachwatch audit verify`: it reads the whole audit
// chain from the configured store and checks every link.
func auditCommand(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	const use = "usage: breachwatch audit verify [--config FILE] [--data-dir DIR] [--clickhouse-addr ADDR] [--anchors FILE|kafka]\n" +
		"  check the incidents' audit log is intact (and, with --anchors, that it agrees with the heads published elsewhere)"
	if _, code, ok := subcommand("audit", use, []string{"verify"}, args, stdout, stderr); !ok {
		return code
	}
	o, x, err := parseFlags("audit", args[1:], stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintln(stderr, "breachwatch:", err)
		return 2
	}
	st, desc, err := openStore(ctx, o, zap.NewNop())
	if err != nil {
		fmt.Fprintln(stderr, "breachwatch audit verify:", err)
		return 1
	}
	defer st.Close()
	if x.anchors == "" {
		n, head, err := tracker.Verify(ctx, st)
		if err != nil {
			fmt.Fprintf(stderr, "breachwatch audit verify: %s: after %d good entries: %v\n", desc, n, err)
			return 1
		}
		fmt.Fprintf(stdout, "audit log intact: %d entries in %s\nhead hash %s (keep it elsewhere: it pins the log as of now)\n", n, desc, head)
		return 0
	}
	var anchors []tracker.Anchor
	if x.anchors == "kafka" {
		kopts, kerr := o.kafkaClient()
		if kerr == nil {
			rctx, cancel := context.WithTimeout(ctx, time.Minute)
			anchors, kerr = topicAnchors(rctx, kopts, o.Kafka.Topics.Anchors)
			cancel()
		}
		err = kerr
	} else {
		var f *os.File
		if f, err = os.Open(x.anchors); err == nil {
			anchors, err = readAnchors(f)
			f.Close()
		}
	}
	if err != nil {
		fmt.Fprintf(stderr, "breachwatch audit verify: the anchors (%s): %v\n", x.anchors, err)
		return 1
	}
	if len(anchors) == 0 {
		fmt.Fprintf(stderr, "breachwatch audit verify: %s holds no anchors\n", x.anchors)
		return 1
	}
	n, head, checked, err := tracker.VerifyAnchors(ctx, st, anchors)
	if err != nil {
		fmt.Fprintf(stderr, "breachwatch audit verify: %s: after %d good entries: %v\n", desc, n, err)
		return 1
	}
	fmt.Fprintf(stdout, "audit log intact: %d entries in %s, %d anchors from %s agree (the newest anchored entry is in the log with its hash)\nhead hash %s\n",
		n, desc, checked, x.anchors, head)
	return 0
}

// incidentSub is one subcommand of `breachwatch incidents`: its synopsis,
// what it does, and its own flags (besides --url and --token-file).
type incidentSub struct {
	synopsis, what string
	flags          []string
}

var incidentSubs = map[string]incidentSub{
	"list":           {"list [--status S] [--json]", "incidents, newest first: status, next legal deadline (internal targets apart), customers, records", []string{"status", "json"}},
	"show":           {"show ID [--json]", "one incident: its facts, deadlines and the update required, if any", []string{"json"}},
	"acknowledge":    {"acknowledge ID", "say someone is on it (reminders go on)", nil},
	"confirm":        {"confirm ID", "a breach or exposure of personal data", nil},
	"dismiss":        {"dismiss ID --reason TEXT", "not a breach, and why", []string{"reason"}},
	"reopen":         {"reopen ID --reason TEXT", "reopen a dismissed or closed incident", []string{"reason"}},
	"note":           {"note ID --reason TEXT", "add a note", []string{"reason"}},
	"assign":         {"assign ID --to NAME", "assign the incident", []string{"to"}},
	"status":         {"status ID --to notifying|notified|closed", "move the incident by hand", []string{"to"}},
	"awareness":      {"awareness ID --at TIME --reason TEXT", "(DPO) when the organisation became aware, if not at detection", []string{"at", "reason"}},
	"determine":      {"determine ID --at TIME --reason TEXT", "(DPO) when the breach was determined reportable (SEC, NYDFS clocks)", []string{"at", "reason"}},
	"file":           {"file ID --to OBLIGATION [--at TIME] [--reference REF] [--reason TEXT]", "(DPO) record a filing; a late one needs the reasons", []string{"to", "at", "reference", "reason"}},
	"waive":          {"waive ID --to OBLIGATION --reason TEXT", "(DPO) a notification is not required, and why", []string{"to", "reason"}},
	"update":         {"update ID --reason TEXT", "(DPO) a phased update to the authority (GDPR Art. 33(4))", []string{"reason"}},
	"close-exposure": {"close-exposure ID --reason TEXT [--to FINGERPRINT] [--at TIME]", "close an exposure window no change will close", []string{"reason", "to", "at"}},
	"draft":          {"draft ID --notice FILE.json [--correction]", "a new version of the customer notice (supplementary once one went out)", []string{"notice", "correction"}},
	"notice":         {"notice ID [--json]", "the notice's versions, what each lacks, delivery progress", []string{"json"}},
	"approve":        {"approve ID --version N --hash H [--reason TEXT]", "(DPO; not the version's author) approve the version whose hash you reviewed", []string{"version", "hash", "reason"}},
	"send":           {"send ID [--wait]", "send the approved notice (--wait: a progress bar)", []string{"wait"}},
	"report":         {"report ID [--html]", "the supervisory-authority report (JSON, or a printable page)", []string{"html"}},
	"register":       {"register [--csv]", "the breach register (JSON or CSV)", []string{"csv"}},
}

func incidentSubNames() []string { return slices.Sorted(maps.Keys(incidentSubs)) }

// incidentsUsage lists the subcommands in a stable order.
func incidentsUsage() string {
	var b strings.Builder
	b.WriteString("usage: breachwatch incidents SUBCOMMAND [ID] [flags]\n\n")
	order := []string{"list", "show", "acknowledge", "confirm", "dismiss", "reopen", "note", "assign", "status", "awareness", "determine",
		"file", "waive", "update", "close-exposure", "draft", "notice", "approve", "send", "report", "register"}
	for _, name := range order {
		fmt.Fprintf(&b, "  %s\n      %s\n", incidentSubs[name].synopsis, incidentSubs[name].what)
	}
	b.WriteString("\nflags of every subcommand: --url URL (default http://127.0.0.1:8080 or $BREACHWATCH_URL),\n" +
		"  --token-file FILE (default $BREACHWATCH_TOKEN, else ./data/dev-token)\n" +
		"\"breachwatch incidents SUBCOMMAND -h\" lists a subcommand's own flags.\n")
	return b.String()
}

// flagOwners names the subcommands that have a flag.
func flagOwners(name string) []string {
	var out []string
	for _, sub := range incidentSubNames() {
		if slices.Contains(incidentSubs[sub].flags, name) {
			out = append(out, sub)
		}
	}
	return out
}
