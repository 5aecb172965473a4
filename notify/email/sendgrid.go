// Package email sends customer notices by e-mail: through SendGrid
// (sendgrid-go), or into a local dev mailbox of .eml files when no
// SendGrid key is configured.
package email

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/sendgrid/rest"
	"github.com/sendgrid/sendgrid-go"
	"github.com/sendgrid/sendgrid-go/helpers/mail"
	"go.uber.org/zap"

	"github.com/breachwatch/breachwatch/notify"
)

// SendGridOptions configure the SendGrid mailer.
type SendGridOptions struct {
	APIKey string
	// BaseURL is the API's address (default https://api.sendgrid.com; the
	// EU region is https://api.eu.sendgrid.com).
	BaseURL  string
	From     string // the sender address (a verified sender)
	FromName string
	ReplyTo  string // e.g. the DPO's address; optional
	// MaxAttempts bounds the tries of one request (default 6); rate-limit
	// waits count too.
	MaxAttempts int
	// MaxWait bounds one wait for a rate limit's reset (default 2 minutes).
	MaxWait time.Duration
	// Timeout bounds one request (default 30 s).
	Timeout time.Duration
	Log     *zap.Logger
	// Sleep waits (tests record the waits instead); nil: a timer
	// honouring ctx.
	Sleep func(ctx context.Context, d time.Duration) error
	Now   func() time.Time
}

// SendGrid sends notices through SendGrid's v3 Mail Send API with the
// official client, doing its own status and retry handling: the client
// returns non-2xx answers as successes, and its rate-limit retry reads the
// reset header under a name Go's canonical headers never carry.
type SendGrid struct {
	o    SendGridOptions
	http *rest.Client
	log  *zap.Logger
}

// NewSendGrid returns a SendGrid mailer.
func NewSendGrid(o SendGridOptions) (*SendGrid, error) {
	if o.APIKey == "" {
		return nil, errors.New("sendgrid: no API key")
	}
	if o.From == "" {
		return nil, errors.New("sendgrid: no sender address (notify.email.from)")
	}
	if o.BaseURL == "" {
		o.BaseURL = "https://api.sendgrid.com"
	}
	if _, err := url.Parse(o.BaseURL); err != nil {
		return nil, fmt.Errorf("sendgrid: base URL: %w", err)
	}
	if o.MaxAttempts <= 0 {
		o.MaxAttempts = 6
	}
	if o.MaxWait <= 0 {
		o.MaxWait = 2 * time.Minute
	}
	if o.Timeout <= 0 {
		o.Timeout = 30 * time.Second
	}
	if o.Log == nil {
		o.Log = zap.NewNop()
	}
	if o.Sleep == nil {
		o.Sleep = sleepCtx
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	tr := &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		TLSHandshakeTimeout:   10 * time.Second,
		ResponseHeaderTimeout: o.Timeout,
		MaxIdleConnsPerHost:   16,
		IdleConnTimeout:       90 * time.Second,
	}
	return &SendGrid{o: o, http: &rest.Client{HTTPClient: &http.Client{Transport: tr, Timeout: o.Timeout}}, log: o.Log}, nil
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// sendError is a failed request that may be retried: its reason is safe to
// record (a status code, never the response body, which can echo
// addresses).
type sendError struct {
	reason string
	err    error
}

func (e *sendError) Error() string      { return e.reason }
func (e *sendError) Unwrap() error      { return e.err }
func (e *sendError) SafeReason() string { return e.reason }

// Build returns the SendGrid message for m (exported for tests and for
// showing what would go out).
func (s *SendGrid) Build(m notify.Message) *mail.SGMailV3 {
	sg := mail.NewV3Mail()
	sg.SetFrom(mail.NewEmail(s.o.FromName, s.o.From))
	if s.o.ReplyTo != "" {
		sg.SetReplyTo(mail.NewEmail("", s.o.ReplyTo))
	}
	sg.Subject = m.Subject
	sg.AddContent(mail.NewContent("text/plain", m.Text), mail.NewContent("text/html", m.HTML))
	for _, r := range m.Recipients {
		p := mail.NewPersonalization()
		p.AddTos(mail.NewEmail("", r.Address))
		for k, v := range r.Substitutions {
			p.SetSubstitution(k, v)
		}
		// Correlation without personal data: opaque ids only.
		p.SetCustomArg("bw_delivery", r.Delivery)
		sg.AddPersonalizations(p)
	}
	sg.SetCustomArg("bw_batch", m.Batch)
	sg.SetCustomArg("bw_incident", m.Incident)
	sg.SetCustomArg("bw_version", strconv.Itoa(m.Version))
	sg.AddCategories("breach-notice")
	// A mandatory service message: it goes out whatever the recipient's
	// unsubscribe preferences (bounces and spam reports still count).
	sg.SetMailSettings(mail.NewMailSettings().SetBypassUnsubscribeManagement(mail.NewSetting(true)))
	return sg
}

// Send sends m in one request (at most notify.MaxPersonalizations
// recipients), retrying rate limits after their reset and server errors
// with backoff.
func (s *SendGrid) Send(ctx context.Context, m notify.Message) error {
	if len(m.Recipients) == 0 {
		return nil
	}
	if len(m.Recipients) > notify.MaxPersonalizations {
		return &notify.PermanentError{Msg: fmt.Sprintf("too many recipients in one request (%d > %d)", len(m.Recipients), notify.MaxPersonalizations)}
	}
	body := mail.GetRequestBody(s.Build(m))
	var last error
	for attempt := 1; attempt <= s.o.MaxAttempts; attempt++ {
		req := sendgrid.GetRequest(s.o.APIKey, "/v3/mail/send", s.o.BaseURL)
		req.Method, req.Body = rest.Post, body
		resp, err := s.http.SendWithContext(ctx, req)
		if err != nil {
			if ctx.Err() != nil || !neverSent(err) {
				// The request may have arrived: do not resend blindly.
				return fmt.Errorf("sendgrid: %w: %w", notify.ErrUncertain, &sendError{reason: "no answer from SendGrid", err: err})
			}
			last = &sendError{reason: "SendGrid unreachable", err: err}
			if err := s.o.Sleep(ctx, backoff(attempt)); err != nil {
				return last
			}
			continue
		}
		code := resp.StatusCode
		switch {
		case code >= 200 && code < 300:
			return nil
		case code == http.StatusTooManyRequests:
			wait := s.resetWait(resp.Headers)
			s.log.Info("sendgrid: rate limited; waiting for the reset", zap.Duration("wait", wait), zap.Int("attempt", attempt))
			last = &sendError{reason: "rate limited by SendGrid (HTTP 429)"}
			if err := s.o.Sleep(ctx, wait); err != nil {
				return last
			}
		case code >= 500:
			last = &sendError{reason: fmt.Sprintf("SendGrid server error (HTTP %d)", code)}
			if err := s.o.Sleep(ctx, backoff(attempt)); err != nil {
				return last
			}
		case code == http.StatusUnauthorized || code == http.StatusForbidden:
			// A key or permission problem: the operator fixes it, and
			// the deliveries wait rather than fail.
			return &sendError{reason: fmt.Sprintf("SendGrid refused the API key or its permissions (HTTP %d)", code)}
		default:
			return &notify.PermanentError{Msg: fmt.Sprintf("rejected by SendGrid (HTTP %d)", code)}
		}
	}
	return last
}

// neverSent reports whether a transport error happened before the request
// could reach the server (a failed dial or DNS lookup).
func neverSent(err error) bool {
	var op *net.OpError
	if errors.As(err, &op) && op.Op == "dial" {
		return true
	}
	var dns *net.DNSError
	return errors.As(err, &dns)
}

// resetWait is how long to wait for a rate limit's reset: until the
// X-RateLimit-Reset time (Unix seconds), at least a second, at most
// MaxWait; a second when the header is missing or bad.
func (s *SendGrid) resetWait(h map[string][]string) time.Duration {
	v := http.Header(h).Get("X-RateLimit-Reset")
	sec, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		return time.Second
	}
	d := time.Unix(sec, 0).Sub(s.o.Now())
	return min(max(d, time.Second), s.o.MaxWait)
}

// backoff is the wait before try n+1 after a server error: 1 s, 2 s, 4 s, …
// up to 30 s, with ±20% jitter.
func backoff(n int) time.Duration {
	d := min(time.Second<<(n-1), 30*time.Second)
	return time.Duration(float64(d) * (0.8 + 0.4*rand.Float64()))
}

// Accepted looks an interrupted batch up in SendGrid's Email Activity API
// (an add-on): found means accepted. Without the add-on (403/404) it
// cannot tell.
func (s *SendGrid) Accepted(ctx context.Context, batch string, _ []string) (bool, error) {
	req := sendgrid.GetRequest(s.o.APIKey, "/v3/messages", s.o.BaseURL)
	req.Method = rest.Get
	req.QueryParams = map[string]string{"limit": "1", "query": fmt.Sprintf("unique_args['bw_batch']=%q", batch)}
	resp, err := s.http.SendWithContext(ctx, req)
	if err != nil {
		return false, fmt.Errorf("sendgrid: email activity: %w", err)
	}
	switch {
	case resp.StatusCode == http.StatusForbidden || resp.StatusCode == http.StatusNotFound:
		return false, notify.ErrCannotTell
	case resp.StatusCode != http.StatusOK:
		return false, fmt.Errorf("sendgrid: email activity: HTTP %d", resp.StatusCode)
	}
	var out struct {
		Messages []json.RawMessage `json:"messages"`
	}
	if err := json.Unmarshal([]byte(resp.Body), &out); err != nil {
		return false, fmt.Errorf("sendgrid: email activity: %w", err)
	}
	return len(out.Messages) > 0, nil
}
