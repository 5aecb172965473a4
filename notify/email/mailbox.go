package email

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net/http"
	"net/mail"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/breachwatch/breachwatch/notify"
)

// Mailbox is the dev mailbox, the embedded default: instead of sending, it
// writes each recipient's e-mail as an .eml file named by its delivery id,
// so a message written twice is one file, and `make run` shows what would
// have gone out.
type Mailbox struct {
	dir, from, fromName string
	now                 func() time.Time
}

// NewMailbox returns a mailbox writing into dir (created if missing).
func NewMailbox(dir, from, fromName string) (*Mailbox, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("dev mailbox: %w", err)
	}
	if from == "" {
		from = "security@breachwatch.invalid"
	}
	if fromName == "" {
		fromName = "Security"
	}
	return &Mailbox{dir: dir, from: from, fromName: fromName, now: time.Now}, nil
}

// Dir is where the messages are.
func (mb *Mailbox) Dir() string { return mb.dir }

var deliveryID = regexp.MustCompile(`^[0-9a-f]{32}$`)

// Send writes one .eml per recipient, substitutions applied.
func (mb *Mailbox) Send(ctx context.Context, m notify.Message) error {
	for _, r := range m.Recipients {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if !deliveryID.MatchString(r.Delivery) {
			return &notify.PermanentError{Msg: "bad delivery id"}
		}
		subst := func(s string) string {
			for k, v := range r.Substitutions {
				s = strings.ReplaceAll(s, k, v)
			}
			return s
		}
		raw, err := mb.compose(m, r, subst(m.Text), subst(m.HTML))
		if err != nil {
			return &notify.PermanentError{Msg: "cannot compose the message: " + err.Error()}
		}
		if err := writeAtomic(filepath.Join(mb.dir, r.Delivery+".eml"), raw); err != nil {
			return fmt.Errorf("dev mailbox: %w", err)
		}
	}
	return nil
}

// Accepted reports whether every delivery's file is there (rewriting one
// is harmless, so a partial batch counts as not accepted).
func (mb *Mailbox) Accepted(_ context.Context, _ string, deliveries []string) (bool, error) {
	for _, d := range deliveries {
		if _, err := os.Stat(filepath.Join(mb.dir, d+".eml")); err != nil {
			return false, nil
		}
	}
	return true, nil
}

func (mb *Mailbox) compose(m notify.Message, r notify.Recipient, text, html string) ([]byte, error) {
	to, err := mail.ParseAddress(r.Address)
	if err != nil {
		return nil, fmt.Errorf("recipient: %w", err)
	}
	var b bytes.Buffer
	boundary := randomHex(12)
	hdr := func(k, v string) { fmt.Fprintf(&b, "%s: %s\r\n", k, v) }
	hdr("From", (&mail.Address{Name: mb.fromName, Address: mb.from}).String())
	hdr("To", to.String())
	hdr("Subject", mime.QEncoding.Encode("utf-8", m.Subject))
	hdr("Date", mb.now().UTC().Format(time.RFC1123Z))
	hdr("Message-ID", "<"+r.Delivery+"@breachwatch.invalid>")
	hdr("MIME-Version", "1.0")
	hdr("X-Breachwatch-Incident", m.Incident)
	hdr("X-Breachwatch-Version", fmt.Sprint(m.Version))
	hdr("X-Breachwatch-Delivery", r.Delivery)
	hdr("Content-Type", `multipart/alternative; boundary="`+boundary+`"`)
	b.WriteString("\r\n")
	for _, part := range []struct{ typ, body string }{{"text/plain", text}, {"text/html", html}} {
		fmt.Fprintf(&b, "--%s\r\nContent-Type: %s; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n", boundary, part.typ)
		qp := quotedprintable.NewWriter(&b)
		if _, err := io.WriteString(qp, part.body); err != nil {
			return nil, err
		}
		if err := qp.Close(); err != nil {
			return nil, err
		}
		b.WriteString("\r\n")
	}
	fmt.Fprintf(&b, "--%s--\r\n", boundary)
	return b.Bytes(), nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// writeAtomic writes a file whole or not at all.
func writeAtomic(path string, data []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".tmp-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// Entry is one message in the dev mailbox.
type Entry struct {
	ID       string    `json:"id"`
	To       string    `json:"to"`
	Subject  string    `json:"subject"`
	Date     time.Time `json:"date"`
	Incident string    `json:"incident"`
	Size     int64     `json:"size"`
}

// List returns the messages, newest first.
func (mb *Mailbox) List() ([]Entry, error) {
	files, err := filepath.Glob(filepath.Join(mb.dir, "*.eml"))
	if err != nil {
		return nil, err
	}
	out := []Entry{}
	dec := new(mime.WordDecoder)
	for _, f := range files {
		fh, err := os.Open(f)
		if err != nil {
			continue // removed meanwhile
		}
		msg, err := mail.ReadMessage(bufio.NewReader(fh))
		if err != nil {
			fh.Close()
			continue
		}
		st, _ := fh.Stat()
		fh.Close()
		subj, err := dec.DecodeHeader(msg.Header.Get("Subject"))
		if err != nil {
			subj = msg.Header.Get("Subject")
		}
		date, _ := msg.Header.Date()
		e := Entry{ID: strings.TrimSuffix(filepath.Base(f), ".eml"), To: msg.Header.Get("To"), Subject: subj, Date: date,
			Incident: msg.Header.Get("X-Breachwatch-Incident")}
		if st != nil {
			e.Size = st.Size()
		}
		out = append(out, e)
	}
	slices.SortFunc(out, func(a, b Entry) int {
		if c := b.Date.Compare(a.Date); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	return out, nil
}

// ErrNoMessage: no message with that id.
var ErrNoMessage = errors.New("no such message")

// Read returns one message's raw contents.
func (mb *Mailbox) Read(id string) ([]byte, error) {
	if !deliveryID.MatchString(id) {
		return nil, ErrNoMessage
	}
	b, err := os.ReadFile(filepath.Join(mb.dir, id+".eml"))
	if errors.Is(err, os.ErrNotExist) {
		return nil, ErrNoMessage
	}
	return b, err
}

// ListHandler serves GET /api/v1/mailbox: the dev mailbox's messages.
func (mb *Mailbox) ListHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		list, err := mb.List()
		w.Header().Set("Content-Type", "application/json")
		if err != nil {
			w.WriteHeader(http.StatusServiceUnavailable)
			_ = json.NewEncoder(w).Encode(map[string]string{"error": "the dev mailbox cannot be read"})
			return
		}
		_ = json.NewEncoder(w).Encode(map[string]any{"messages": list, "dir": mb.dir})
	})
}

// MessageHandler serves GET /api/v1/mailbox/{id}: one message, raw
// (message/rfc822, as a download: never rendered by the browser here).
func (mb *Mailbox) MessageHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		raw, err := mb.Read(r.PathValue("id"))
		if err != nil {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusNotFound)
			_ = json.NewEncoder(w).Encode(map[string]string{"error": "no such message"})
			return
		}
		w.Header().Set("Content-Type", "message/rfc822")
		w.Header().Set("Content-Disposition", `attachment; filename="`+r.PathValue("id")+`.eml"`)
		_, _ = w.Write(raw)
	})
}

// Parts reads one message's subject, recipient and its HTML and plain-text
// bodies (for showing it).
func (mb *Mailbox) Parts(id string) (subject, to, html, text string, err error) {
	raw, err := mb.Read(id)
	if err != nil {
		return "", "", "", "", err
	}
	msg, err := mail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		return "", "", "", "", err
	}
	dec := new(mime.WordDecoder)
	if subject, err = dec.DecodeHeader(msg.Header.Get("Subject")); err != nil {
		subject = msg.Header.Get("Subject")
	}
	to = msg.Header.Get("To")
	_, params, err := mime.ParseMediaType(msg.Header.Get("Content-Type"))
	if err != nil {
		return "", "", "", "", err
	}
	mr := multipart.NewReader(msg.Body, params["boundary"])
	for {
		p, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			return "", "", "", "", err
		}
		body, err := io.ReadAll(p) // multipart decodes quoted-printable
		if err != nil {
			return "", "", "", "", err
		}
		switch ct, _, _ := mime.ParseMediaType(p.Header.Get("Content-Type")); ct {
		case "text/html":
			html = string(body)
		case "text/plain":
			text = string(body)
		}
	}
	return subject, to, html, text, nil
}
