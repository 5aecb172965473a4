// Package slack alerts the security engineers in Slack: one Block Kit
// message per incident, updated in place as it changes, reminders in its
// thread, and buttons to triage (Acknowledge, Confirm, Dismiss with a
// reason, Open in console) served by a signed interactivity endpoint.
//
// Messages carry no customer personal data: the incident's title,
// severity, status, deadlines and the counts of affected tenants and
// records. Every string from outside is escaped for Slack's mrkdwn or sent
// as plain text.
package slack

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/slack-go/slack"
	"go.uber.org/zap"

	"github.com/breachwatch/breachwatch/incident"
)

// User is a Slack user allowed to triage, and the breachwatch role they act in.
type User struct {
	Name string // shown in the audit log as slack:<name>
	Role string // engineer, dpo or admin
}

// Options configure the Slack notifier.
type Options struct {
	Token         string // bot token (xoxb-…)
	Channel       string // channel id for alerts
	SigningSecret string // verifies interactivity requests
	// APIURL is Slack's Web API base (default https://slack.com/api/);
	// tests point it at a local server.
	APIURL     string
	ConsoleURL string          // linked from the "Open in console" button
	Users      map[string]User // Slack user id → who they are here
	HTTPClient *http.Client    // default: 15s timeout
	Now        func() time.Time
	Log        *zap.Logger
}

// Notifier posts and updates alerts and reminders. It is safe for
// concurrent use.
type Notifier struct {
	api  *slack.Client
	opts Options
	log  *zap.Logger
}

// New builds a notifier with slack-go's client.
func New(o Options) (*Notifier, error) {
	if o.Token == "" || o.Channel == "" {
		return nil, fmt.Errorf("slack: a bot token and a channel are required")
	}
	if o.HTTPClient == nil {
		o.HTTPClient = &http.Client{Timeout: 15 * time.Second}
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Log == nil {
		o.Log = zap.NewNop()
	}
	opts := []slack.Option{slack.OptionHTTPClient(o.HTTPClient)}
	if o.APIURL != "" {
		opts = append(opts, slack.OptionAPIURL(strings.TrimSuffix(o.APIURL, "/")+"/"))
	}
	return &Notifier{api: slack.New(o.Token, opts...), opts: o, log: o.Log}, nil
}

// Alert implements the tracker's Alerter: it posts the incident's message.
func (n *Notifier) Alert(ctx context.Context, v incident.View) (incident.AlertRef, error) {
	ch, ts, err := n.api.PostMessageContext(ctx, n.opts.Channel, n.message(v)...)
	if err != nil {
		return incident.AlertRef{}, fmt.Errorf("slack: chat.postMessage: %w", err)
	}
	return incident.AlertRef{Channel: ch, TS: ts}, nil
}

// Update implements the tracker's Alerter: chat.update in place.
func (n *Notifier) Update(ctx context.Context, ref incident.AlertRef, v incident.View) error {
	if _, _, _, err := n.api.UpdateMessageContext(ctx, ref.Channel, ref.TS, n.message(v)...); err != nil {
		return fmt.Errorf("slack: chat.update: %w", err)
	}
	return nil
}

// Remind implements the tracker's Alerter: a reply in the alert's thread.
func (n *Notifier) Remind(ctx context.Context, ref incident.AlertRef, v incident.View, d incident.Deadline, left time.Duration) error {
	kind := "deadline"
	if !d.Legal {
		kind = "internal target"
	}
	var text string
	if left < 0 {
		text = fmt.Sprintf(":rotating_light: *OVERDUE by %s*: %s (%s %s, %s)", human(-left), esc(d.What), esc(d.Regime), kind, due(d))
	} else {
		text = fmt.Sprintf(":alarm_clock: *%s left* to %s (%s %s, %s)", human(left), esc(d.What), esc(d.Regime), kind, due(d))
	}
	if !v.Acknowledged {
		text += "\nNobody has acknowledged this incident yet."
	}
	if d.Recipient == "customers" && v.Notice != nil && v.Notice.AwaitingApproval {
		// Escalation: the customer notice still lacks a DPO's sign-off.
		text += "\n:warning: The customer notice is not approved yet. " + n.dpoMentions() + " please review and approve it."
	}
	_, _, err := n.api.PostMessageContext(ctx, ref.Channel, slack.MsgOptionTS(ref.TS), slack.MsgOptionText(text, false),
		slack.MsgOptionDisableLinkUnfurl())
	if err != nil {
		return fmt.Errorf("slack: reminder: %w", err)
	}
	return nil
}

// UpdateRequired posts, under the alert, that the facts changed after the
// customers were told, naming the DPOs: a supplementary notice is due.
func (n *Notifier) UpdateRequired(ctx context.Context, ref incident.AlertRef, v incident.View) error {
	u := v.UpdateRequired
	if u == nil {
		return nil
	}
	text := fmt.Sprintf(":warning: *Update required*: %s. The customers were told less than is now known: %s please draft a supplementary notice.",
		esc(u.Summary()), n.dpoMentions())
	if d := v.NextDeadline; d != nil && d.Recipient == "customers" {
		text += fmt.Sprintf(" It is due %s.", due(*d))
	}
	_, _, err := n.api.PostMessageContext(ctx, ref.Channel, slack.MsgOptionTS(ref.TS), slack.MsgOptionText(text, false),
		slack.MsgOptionDisableLinkUnfurl())
	if err != nil {
		return fmt.Errorf("slack: update required: %w", err)
	}
	return nil
}

// awaiting is the notice version a DPO could approve now: the newest,
// unapproved, complete and written against the current affected
// customers; nil when there is none.
func awaiting(v incident.View) *incident.NoticeVersionView {
	if v.Notice == nil || len(v.Notice.Versions) == 0 || !v.Status.Active() {
		return nil
	}
	last := v.Notice.Versions[len(v.Notice.Versions)-1]
	if last.ApprovedBy != "" || len(last.Missing) > 0 || !last.ScopeCurrent {
		return nil
	}
	return &last
}

func noticeState(v incident.View) string {
	nv := v.Notice
	switch {
	case v.UpdateRequired != nil:
		return ":warning: update required: " + esc(v.UpdateRequired.Summary())
	case nv.SentAt != nil:
		return fmt.Sprintf("version %d sent to every customer", nv.Sending)
	case nv.Sending > 0:
		return fmt.Sprintf("version %d being sent", nv.Sending)
	case len(nv.Versions) == 0:
		return "not drafted yet"
	case nv.AwaitingApproval:
		last := nv.Versions[len(nv.Versions)-1]
		if len(last.Missing) > 0 {
			return fmt.Sprintf("draft v%d lacks %d required element(s)", last.Version, len(last.Missing))
		}
		return fmt.Sprintf("v%d awaiting DPO approval", last.Version)
	}
	return "approved, not sent yet"
}

// dpoMentions mentions the Slack users mapped to the DPO role.
func (n *Notifier) dpoMentions() string {
	var ids []string
	for id, u := range n.opts.Users {
		if u.Role == "dpo" {
			ids = append(ids, "<@"+id+">")
		}
	}
	if len(ids) == 0 {
		return "DPO,"
	}
	slices.Sort(ids)
	return strings.Join(ids, " ") + ","
}

// Action ids of the buttons and the dismissal dialog.
const (
	ActionAcknowledge = "bw_acknowledge"
	ActionConfirm     = "bw_confirm"
	ActionDismiss     = "bw_dismiss"
	ActionOpen        = "bw_open"
	ActionApprove     = "bw_approve"
	callbackDismiss   = "bw_dismiss_reason"
	blockReason       = "reason"
)

// message renders an incident as Block Kit.
func (n *Notifier) message(v incident.View) []slack.MsgOption {
	now := n.opts.Now()
	header := slack.NewHeaderBlock(slack.NewTextBlockObject(slack.PlainTextType,
		truncate(strings.ToUpper(v.Severity)+": "+v.Title, 150), true, false))
	fields := []*slack.TextBlockObject{
		md("*Status*\n" + esc(string(v.Status)) + ackNote(v)),
		md("*Severity*\n" + esc(v.Severity)),
		md(fmt.Sprintf("*Affected customers*\n%s, %s%s", incident.Count(int(v.Affected.Tenants), "tenant", "tenants"),
			incident.Count(int(v.Affected.Records), "record", "records"), partial(v))),
		md("*Detected*\n" + slackDate(v.DetectedAt)),
	}
	var lines []string
	for _, d := range v.Deadlines {
		line := "• " + esc(d.What) + " — " + esc(d.Regime)
		if !d.Legal {
			line += " _(internal target)_"
		}
		switch {
		case d.WaivedAt != nil:
			line += ": not required (a DPO's decision, with reasons)"
		case d.MetAt != nil && d.Late:
			line += ": met " + slackDate(*d.MetAt) + " *late*"
		case d.MetAt != nil:
			line += ": met " + slackDate(*d.MetAt)
		case d.DueAt == nil:
			line += ": starts at " + esc(d.Anchor)
		case d.DueAt.Before(now):
			line += ": due " + slackDate(*d.DueAt) + " — *OVERDUE by " + human(now.Sub(*d.DueAt)) + "*"
		default:
			line += ": due " + slackDate(*d.DueAt) + " — *" + human(d.DueAt.Sub(now)) + " left*"
		}
		lines = append(lines, line)
	}
	if len(lines) == 0 {
		lines = []string{"no notification duty applies"}
	}
	if v.Notice != nil {
		fields = append(fields, md("*Customer notice*\n"+noticeState(v)))
	}
	blocks := []slack.Block{
		header,
		slack.NewSectionBlock(nil, fields, nil),
		slack.NewSectionBlock(md("*Deadlines*\n"+truncate(strings.Join(lines, "\n"), 2900)), nil, nil),
		slack.NewContextBlock("", md(fmt.Sprintf("Incident `%s` · rule `%s` · %d events", esc(v.ID), esc(v.RuleID), v.Events))),
	}
	var buttons []slack.BlockElement
	if v.Status.Active() && !v.Acknowledged {
		buttons = append(buttons, slack.NewButtonBlockElement(ActionAcknowledge, v.ID, plain("Acknowledge")))
	}
	if v.Status == incident.StatusOpen {
		buttons = append(buttons,
			slack.NewButtonBlockElement(ActionConfirm, v.ID, plain("Confirm")).WithStyle(slack.StylePrimary),
			slack.NewButtonBlockElement(ActionDismiss, v.ID, plain("Dismiss…")).WithStyle(slack.StyleDanger))
	}
	if ap := awaiting(v); ap != nil {
		buttons = append(buttons, slack.NewButtonBlockElement(ActionApprove, approvalValue(v.ID, ap.Version, ap.Hash),
			plain(fmt.Sprintf("Approve notice v%d (DPO)", ap.Version))).WithStyle(slack.StylePrimary))
	}
	if n.opts.ConsoleURL != "" {
		b := slack.NewButtonBlockElement(ActionOpen, v.ID, plain("Open in console"))
		b.URL = n.opts.ConsoleURL + "/incidents/" + v.ID
		buttons = append(buttons, b)
	}
	if len(buttons) > 0 {
		blocks = append(blocks, slack.NewActionBlock("bw_actions", buttons...))
	}
	fallback := fmt.Sprintf("[%s] %s — %s", strings.ToUpper(v.Severity), esc(v.Title), v.Status)
	return []slack.MsgOption{slack.MsgOptionBlocks(blocks...), slack.MsgOptionText(fallback, false), slack.MsgOptionDisableLinkUnfurl()}
}

func ackNote(v incident.View) string {
	if v.Acknowledged {
		return " (acknowledged)"
	}
	return ""
}

func partial(v incident.View) string {
	if v.Affected.Partial {
		return " (so far)"
	}
	return ""
}

func md(s string) *slack.TextBlockObject {
	return slack.NewTextBlockObject(slack.MarkdownType, s, false, false)
}

func plain(s string) *slack.TextBlockObject {
	return slack.NewTextBlockObject(slack.PlainTextType, s, false, false)
}

// esc escapes text for Slack's mrkdwn: &, < and > are its control
// characters (<!channel>, <@U…>, <url|label>); with them escaped, nothing
// from outside can mention, link or break out of formatting.
func esc(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace(s)
}

// slackDate renders t in each reader's own time zone, with a UTC fallback.
func slackDate(t time.Time) string {
	return fmt.Sprintf("<!date^%d^{date_short_pretty} {time}|%s>", t.Unix(), t.UTC().Format("2006-01-02 15:04 UTC"))
}

func due(d incident.Deadline) string {
	if d.DueAt == nil {
		return "not started"
	}
	return "due " + slackDate(*d.DueAt)
}

// human is a duration for people: "2d 3h", "5h 20m", "12m".
func human(d time.Duration) string {
	d = d.Round(time.Minute)
	h, m := int(d.Hours()), int(d.Minutes())%60
	switch {
	case h >= 48:
		return fmt.Sprintf("%dd %dh", h/24, h%24)
	case h > 0:
		return fmt.Sprintf("%dh %dm", h, m)
	}
	return fmt.Sprintf("%dm", m)
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !isRuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}

func isRuneStart(b byte) bool { return b&0xC0 != 0x80 }
