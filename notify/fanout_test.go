package notify_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/breachwatch/breachwatch/incident"
	"github.com/breachwatch/breachwatch/internal/sendgridtest"
	"github.com/breachwatch/breachwatch/notify"
	"github.com/breachwatch/breachwatch/notify/email"
	"github.com/breachwatch/breachwatch/store/sqlite"
)

// The fan-out child: a notifier process working one incident's outbox in
// a data dir until nothing is left, against the SendGrid server of the
// parent test (which survives the child's SIGKILL and counts).
const (
	envChild     = "BWTEST_FANOUT_CHILD"
	envChildDir  = "BWTEST_FANOUT_DIR"
	envChildURL  = "BWTEST_FANOUT_URL"
	envChildSize = "BWTEST_FANOUT_N"
)

func TestMain(m *testing.M) {
	if os.Getenv(envChild) == "1" {
		os.Exit(fanOutChild())
	}
	os.Exit(m.Run())
}

// settled reports whether no e-mail delivery is pending or claimed.
func settled(ctx context.Context, st *sqlite.Store, id string) (bool, error) {
	n := 0
	err := st.Deliveries(ctx, incident.DeliveryQuery{Incident: id, Channel: incident.ChannelEmail,
		States: []string{incident.DeliveryPending, incident.DeliverySending}}, func(*incident.Delivery) error { n++; return nil })
	return n == 0, err
}

func fanOutChild() int {
	ctx := context.Background()
	n, _ := strconv.Atoi(os.Getenv(envChildSize))
	st, err := sqlite.Open(ctx, os.Getenv(envChildDir))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer st.Close()
	cs, _ := notify.LoadCatalogs()
	sg, err := email.NewSendGrid(email.SendGridOptions{APIKey: "SG.test", BaseURL: os.Getenv(envChildURL), From: "security@bookly.example"})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	w := &work{incs: []incident.Incident{sendingIncident(n)}}
	nt, err := notify.New(notify.Options{Outbox: st, Work: w, Mailer: sg, Catalog: cs, Recipients: recipients,
		ReconcileAfter: 2 * time.Second})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	for {
		if err := nt.Once(ctx); err != nil {
			fmt.Fprintln(os.Stderr, "round:", err)
		}
		done, err := settled(ctx, st, w.incs[0].ID)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		if done {
			return 0
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func startChild(t testing.TB, dir, url string, n int) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), envChild+"=1", envChildDir+"="+dir, envChildURL+"="+url, envChildSize+"="+strconv.Itoa(n))
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	return cmd
}

// fanOutKilled runs the fan-out of n customers in a child process,
// SIGKILLs it once a third of the messages were accepted, restarts it,
// and checks that every recipient got exactly one message. It returns the
// time from the first start to the end, and how many messages had been
// accepted when the child was killed.
func fanOutKilled(t testing.TB, n int) (time.Duration, int) {
	srv := sendgridtest.New("SG.test")
	defer srv.Close()
	dir := t.TempDir()
	want := wantRecipients(n)
	start := time.Now()
	child := startChild(t, dir, srv.URL, n)
	deadline := time.Now().Add(5 * time.Minute)
	for len(srv.Messages()) < want/3 {
		if time.Now().After(deadline) {
			_ = child.Process.Kill()
			t.Fatalf("the child sent %d of %d messages in 5 minutes", len(srv.Messages()), want)
		}
		time.Sleep(2 * time.Millisecond)
	}
	if err := child.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = child.Wait()
	atKill := len(srv.Messages())
	if atKill >= want {
		t.Fatalf("the child finished (%d messages) before it was killed: make n larger", atKill)
	}
	child = startChild(t, dir, srv.URL, n)
	if err := child.Wait(); err != nil {
		t.Fatalf("the restarted child: %v", err)
	}
	took := time.Since(start)
	count := srv.Count()
	if len(count) != want {
		t.Fatalf("%d recipients got mail; want %d", len(count), want)
	}
	for addr, c := range count {
		if c != 1 {
			t.Fatalf("%s got %d messages", addr, c)
		}
	}
	return took, atKill
}

// TestFanOutSurvivesSIGKILL: a notifier killed with SIGKILL in the middle
// of a fan-out and restarted sends every recipient exactly one message.
func TestFanOutSurvivesSIGKILL(t *testing.T) {
	took, atKill := fanOutKilled(t, 20_000)
	t.Logf("20 000 customers: killed after %d messages, all %d exactly once in %v", atKill, wantRecipients(20_000), took.Round(time.Millisecond))
}

// BenchmarkNoticeFanOut: 100 000 affected customers' notices rendered,
// written to the outbox and accepted by a local SendGrid API (the real
// client, batches of up to 1000), in one notifier process; then the
// progress query over them.
func BenchmarkNoticeFanOut(b *testing.B) {
	const n = 100_000
	ctx := context.Background()
	for b.Loop() {
		b.StopTimer()
		st := openStore(b)
		srv := sendgridtest.New("SG.test")
		w := &work{incs: []incident.Incident{sendingIncident(n)}}
		nt := newNotifier(b, st, w, newSendGrid(b, srv, nil), time.Hour)
		b.StartTimer()
		start := time.Now()
		if err := nt.Once(ctx); err != nil {
			b.Fatal(err)
		}
		took := time.Since(start)
		b.StopTimer()
		if got := len(srv.Messages()); got != wantRecipients(n) {
			b.Fatalf("%d messages; want %d", got, wantRecipients(n))
		}
		ps := time.Now()
		p, err := notify.ProgressOf(ctx, st, st, &w.incs[0], 0, false)
		if err != nil || p.Reached != n {
			b.Fatalf("progress: %+v %v", p, err)
		}
		b.ReportMetric(float64(took.Milliseconds()), "ms/fan-out")
		b.ReportMetric(float64(wantRecipients(n))/took.Seconds(), "emails/s")
		b.ReportMetric(float64(srv.Requests()), "requests")
		b.ReportMetric(float64(time.Since(ps).Milliseconds()), "ms/progress-query")
		srv.Close()
		b.StartTimer()
	}
}

// BenchmarkNoticeFanOutKilled: the same fan-out in a child process,
// SIGKILLed a third of the way and restarted; every recipient exactly
// once (verified), end to end time reported.
func BenchmarkNoticeFanOutKilled(b *testing.B) {
	for b.Loop() {
		took, atKill := fanOutKilled(b, 100_000)
		b.ReportMetric(float64(took.Milliseconds()), "ms/fan-out")
		b.ReportMetric(float64(atKill), "sent-before-kill")
	}
}
