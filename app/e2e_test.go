package app

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/breachwatch/breachwatch/demo"
	"github.com/breachwatch/breachwatch/event"
	"github.com/breachwatch/breachwatch/internal/testenv"
	"github.com/breachwatch/breachwatch/store/sqlite"
)

var day = time.Date(2026, 11, 20, 0, 0, 0, 0, time.UTC)

// demoLines returns n access events (and the config changes the generator
// mixes in) as NDJSON lines, all on one day, spaced 1ms apart.
func demoLines(seed uint64, n int) (access, config [][]byte) {
	g := demo.New(demo.Options{Seed: seed})
	var b event.Batch
	for i := 0; len(access) < n; i++ {
		b.Reset()
		g.Next(day.Add(time.Duration(i)*time.Millisecond), &b)
		for j := range b.Access {
			access = append(access, b.Access[j].AppendJSON(nil))
		}
		for j := range b.Config {
			config = append(config, b.Config[j].AppendJSON(nil))
		}
	}
	return access, config
}

func post(t *testing.T, addr, path, token string, body []byte, headers ...string) (int, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest("POST", "http://"+addr+path, bytes.NewReader(body))
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var m map[string]any
	raw, _ := io.ReadAll(resp.Body)
	_ = json.Unmarshal(raw, &m)
	return resp.StatusCode, m
}

// TestHTTPIngest drives the ingest endpoints of a whole breachwatch (the
// embedded store) over HTTP.
func TestHTTPIngest(t *testing.T) {
	o := testOptions(t)
	o.Ingest.MaxEventBytes = 4 << 10
	o.Ingest.HTTPMaxBodyBytes = 256 << 10
	info := start(t, o)
	const access, config = "/api/v1/events/access", "/api/v1/events/config"
	lines, changes := demoLines(1, 600)
	ndjson := func(ls [][]byte, sep string) []byte { return append(bytes.Join(ls, []byte(sep)), sep...) }
	count := func() (int64, int64) {
		s, err := sqlite.Open(context.Background(), o.DataDir)
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		a, c, err := s.Count(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		return a, c
	}

	// Authentication and roles come first.
	if code, _ := post(t, info.HTTPAddr, access, "", ndjson(lines[:1], "\n")); code != 401 {
		t.Errorf("no token: %d, want 401", code)
	}
	if code, _ := post(t, info.HTTPAddr, access, "not-a-token", ndjson(lines[:1], "\n")); code != 401 {
		t.Errorf("bad token: %d, want 401", code)
	}
	if code, _ := post(t, info.HTTPAddr, access, engineerToken, ndjson(lines[:1], "\n")); code != 403 {
		t.Errorf("engineer token: %d, want 403", code)
	}

	// A bad line anywhere: 400 naming it, and nothing of the request stored.
	bad := append(append([][]byte{}, lines[:2]...), []byte(`{"id":"b","time":"2026-11-20T00:00:00Z","tenant":"t","actor":{"id":"a","type":"robot"},"action":"read","resource":{"type":"r","store":"s"},"outcome":"success"}`))
	bad = append(bad, lines[2:5]...)
	code, body := post(t, info.HTTPAddr, access, ingestToken, ndjson(bad, "\n"))
	if code != 400 || body["line"] != 3.0 || body["field"] != "actor.type" || !strings.Contains(body["error"].(string), "line 3") {
		t.Errorf("bad line: %d %v", code, body)
	}
	if a, _ := count(); a != 0 {
		t.Errorf("%d events stored from a rejected request", a)
	}
	tooLong := append([][]byte{}, lines[0], []byte(`{"id":"long","pad":"`+strings.Repeat("x", 5000)+`"}`))
	if code, body := post(t, info.HTTPAddr, access, ingestToken, ndjson(tooLong, "\n")); code != 400 || body["kind"] != "too_large" || body["line"] != 2.0 {
		t.Errorf("long line: %d %v", code, body)
	}
	if code, _ := post(t, info.HTTPAddr, access, ingestToken, []byte("\n\n")); code != 400 {
		t.Errorf("empty body: %d", code)
	}

	// Too large: 413, with or without a Content-Length.
	huge := ndjson(append(append([][]byte{}, lines...), lines...), "\n")
	if len(huge) <= 256<<10 {
		t.Fatalf("test body of %d bytes is not over the limit", len(huge))
	}
	if code, body := post(t, info.HTTPAddr, access, ingestToken, huge); code != 413 || !strings.Contains(body["error"].(string), "262144") {
		t.Errorf("too large: %d %v", code, body)
	}
	req, _ := http.NewRequest("POST", "http://"+info.HTTPAddr+access, io.MultiReader(bytes.NewReader(huge)))
	req.ContentLength = -1 // chunked
	req.Header.Set("Authorization", "Bearer "+ingestToken)
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != 413 {
		t.Errorf("too large, chunked: %v %v", resp, err)
	} else {
		resp.Body.Close()
	}

	// Good requests: CRLF and blank lines are fine; 202 means stored.
	code, body = post(t, info.HTTPAddr, access, ingestToken, ndjson(lines[:300], "\r\n\n"))
	if code != 202 || body["accepted"] != 300.0 {
		t.Fatalf("good request: %d %v", code, body)
	}
	if a, _ := count(); a != 300 {
		t.Errorf("after 202 for 300 events, %d stored", a)
	}
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(ndjson(lines[200:], "\n"))
	zw.Close()
	code, body = post(t, info.HTTPAddr, access, ingestToken, gz.Bytes(), "Content-Encoding", "gzip")
	if code != 202 || body["accepted"] != float64(len(lines)-200) {
		t.Fatalf("gzip request: %d %v", code, body)
	}
	if a, _ := count(); a != int64(len(lines)) {
		t.Errorf("overlapping requests: %d stored, want %d (idempotent on id)", a, len(lines))
	}
	if code, _ := post(t, info.HTTPAddr, access, ingestToken, []byte("x"), "Content-Encoding", "br"); code != 415 {
		t.Errorf("unknown encoding: %d, want 415", code)
	}
	if len(changes) > 0 {
		if code, body := post(t, info.HTTPAddr, config, ingestToken, ndjson(changes, "\n")); code != 202 {
			t.Errorf("config changes: %d %v", code, body)
		}
	}
	if code, body := post(t, info.HTTPAddr, config, ingestToken, ndjson(lines[:1], "\n")); code != 400 || body["field"] != "resource.id" {
		t.Errorf("an access event on the config endpoint: %d %v", code, body)
	}
	if _, c := count(); c != int64(len(changes)) {
		t.Errorf("%d config changes stored, want %d", c, len(changes))
	}
}

// TestKcatIntoClickHouse: kcat, an independent Kafka client, produces
// events and bad records into the embedded broker; exactly the valid events
// land in ClickHouse and the bad records in the dead-letter topic, with
// their reasons.
func TestKcatIntoClickHouse(t *testing.T) {
	kcat := testenv.Kcat(t)
	chAddr := testenv.ClickHouse(t)
	o := testOptions(t)
	o.ClickHouse.Addr = []string{chAddr}
	o.ClickHouse.Database = testenv.Database(t, chAddr)
	o.Ingest.MaxEventBytes = 64 << 10
	info := start(t, o)
	broker := info.KafkaBrokers[0]

	const n = 20_000
	lines, changes := demoLines(2, n)
	template := string(lines[0])
	invalid := []struct{ line, kind, field string }{
		{`{"id":"broken-json",`, "syntax", ""},
		{strings.Replace(template, `"tenant":`, `"tenant_":`, 1), "missing", "tenant"},
		{strings.Replace(template, `"records":1,`, `"records":"many",`, 1), "type", "records"},
		{`{"id":"huge","user_agent":"` + strings.Repeat("A", 100_000) + `"}`, "too_large", ""},
	}
	if !strings.Contains(template, `"records":1,`) {
		t.Fatalf("fixture changed: %s", template)
	}
	var file bytes.Buffer
	for i, l := range lines {
		file.Write(l)
		file.WriteByte('\n')
		if i%5000 == 17 {
			file.WriteString(invalid[i/5000].line + "\n")
		}
	}
	path := filepath.Join(t.TempDir(), "events.ndjson")
	if err := os.WriteFile(path, file.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(kcat, "-P", "-b", broker, "-t", o.Kafka.Topics.Access, "-l", path).CombinedOutput()
	if err != nil {
		t.Fatalf("kcat produce: %v\n%s", err, out)
	}
	if len(changes) > 0 {
		cmd := exec.Command(kcat, "-P", "-b", broker, "-t", o.Kafka.Topics.Config)
		cmd.Stdin = bytes.NewReader(append(bytes.Join(changes, []byte("\n")), '\n'))
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("kcat produce: %v\n%s", err, out)
		}
	}

	conn := chConn(t, chAddr)
	waitFor(t, fmt.Sprintf("%d events in ClickHouse", n), 2*time.Minute, func() bool {
		return chDistinct(t, conn, o.ClickHouse.Database, "access_events") >= n
	})
	distinct, final, _ := chCounts(t, conn, o.ClickHouse.Database, "access_events")
	if distinct != n || final != n {
		t.Errorf("ClickHouse holds %d distinct access events (%d after de-duplication), want exactly %d", distinct, final, n)
	}
	waitFor(t, "config changes in ClickHouse", time.Minute, func() bool {
		return chDistinct(t, conn, o.ClickHouse.Database, "config_changes") == uint64(len(changes))
	})

	// The dead-letter topic, read with kcat: each bad record, verbatim,
	// with its reason in the headers.
	out, err = exec.Command(kcat, "-C", "-b", broker, "-t", o.Kafka.Topics.Access+o.Kafka.DLQSuffix,
		"-e", "-q", "-f", "%h\t%S\t%s\n").CombinedOutput()
	if err != nil {
		t.Fatalf("kcat consume: %v\n%s", err, out)
	}
	dead := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(dead) != len(invalid) {
		t.Fatalf("dead-letter topic has %d records, want %d:\n%s", len(dead), len(invalid), tail(string(out), 2000))
	}
	for _, want := range invalid {
		found := false
		for _, d := range dead {
			headers, rest, _ := strings.Cut(d, "\t")
			size, value, _ := strings.Cut(rest, "\t")
			if value != want.line || size != fmt.Sprint(len(want.line)) {
				continue
			}
			found = true
			if !strings.Contains(headers, "breachwatch.error.kind="+want.kind) ||
				(want.field != "" && !strings.Contains(headers, "breachwatch.error.field="+want.field)) ||
				!strings.Contains(headers, "breachwatch.source.topic="+o.Kafka.Topics.Access) {
				t.Errorf("dead letter %.40q: headers %s", want.line, headers)
			}
		}
		if !found {
			t.Errorf("bad record %.40q (%d bytes) is not in the dead-letter topic", want.line, len(want.line))
		}
	}
	for _, kind := range []string{"syntax", "missing", "type", "too_large"} {
		sample := fmt.Sprintf(`breachwatch_ingest_dead_lettered_total{reason="%s",topic="%s"}`, kind, o.Kafka.Topics.Access)
		if v := metric(t, info.HTTPAddr, sample); v != 1 {
			t.Errorf("%s = %v, want 1", sample, v)
		}
	}
}

// produceStream produces n demo access events to topic at about rate
// events per second, and reports how many the broker acknowledged.
func produceStream(t testing.TB, brokers []string, topic string, lines [][]byte, rate int) (acked *atomic.Int64, done chan struct{}) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ProducerLinger(5*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	acked, done = new(atomic.Int64), make(chan struct{})
	go func() {
		defer close(done)
		defer cl.Close()
		const chunk = 2000
		start := time.Now()
		for i := 0; i < len(lines); i += chunk {
			recs := make([]*kgo.Record, 0, chunk)
			for _, l := range lines[i:min(i+chunk, len(lines))] {
				recs = append(recs, &kgo.Record{Topic: topic, Value: l})
			}
			for _, r := range cl.ProduceSync(context.Background(), recs...) {
				if r.Err == nil {
					acked.Add(1)
				}
			}
			if rate > 0 {
				if ahead := time.Duration(float64(i+chunk)/float64(rate)*float64(time.Second)) - time.Since(start); ahead > 0 {
					time.Sleep(ahead)
				}
			}
		}
	}()
	return acked, done
}

func newBroker(t testing.TB, topics ...string) []string {
	t.Helper()
	var all []string
	for _, tp := range topics {
		all = append(all, tp, tp+".dlq")
	}
	c, err := kfake.NewCluster(kfake.SeedTopics(4, all...))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c.ListenAddrs()
}

// TestCrashMidStream: breachwatch is killed with SIGKILL in the middle of a
// large stream and started again; every event the broker acknowledged ends
// up in ClickHouse exactly once.
func TestCrashMidStream(t *testing.T) {
	chAddr := testenv.ClickHouse(t)
	db := testenv.Database(t, chAddr)
	brokers := newBroker(t, "breachwatch.access", "breachwatch.config")
	env := []string{"BREACHWATCH_KAFKA_BROKERS=" + strings.Join(brokers, ","), "BREACHWATCH_CLICKHOUSE_ADDR=" + chAddr,
		"BREACHWATCH_CLICKHOUSE_DATABASE=" + db, "BREACHWATCH_DATA_DIR=" + t.TempDir(),
		"BREACHWATCH_KAFKA_BATCH_MAX_RECORDS=5000"}
	conn := chConn(t, chAddr)
	stored := func() uint64 { return chDistinct(t, conn, db, "access_events") }

	const n = 300_000
	lines, _ := demoLines(3, n)
	p := startProc(t, env...)
	acked, produced := produceStream(t, brokers, "breachwatch.access", lines, 60_000)
	waitFor(t, "a fifth of the stream stored", time.Minute, func() bool { return stored() >= n/5 })
	p.kill()
	atKill := stored()
	if atKill >= n {
		t.Fatalf("the whole stream was stored before the kill (%d); the test proves nothing", atKill)
	}
	t.Logf("killed with SIGKILL after %d of %d events were stored", atKill, n)

	startProc(t, env...)
	<-produced
	if acked.Load() != n {
		t.Fatalf("the broker acknowledged %d of %d events", acked.Load(), n)
	}
	waitFor(t, "every acknowledged event stored", 3*time.Minute, func() bool { return stored() >= n })
	distinct, final, raw := chCounts(t, conn, db, "access_events")
	if distinct != n || final != n {
		t.Fatalf("after the crash: %d distinct events, %d rows after de-duplication; want %d", distinct, final, n)
	}
	t.Logf("%d rows were written before merging: %d events redelivered after the crash and de-duplicated", raw, raw-n)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := conn.Exec(ctx, "OPTIMIZE TABLE `"+db+"`.access_events FINAL"); err != nil {
		t.Fatal(err)
	}
	if _, _, raw := chCounts(t, conn, db, "access_events"); raw != n {
		t.Errorf("after merging, %d rows; want %d (no event twice)", raw, n)
	}
}

// TestStoreOutage: ClickHouse is killed mid-stream while a large backlog
// builds up, then restarted; breachwatch's memory stays bounded meanwhile,
// nothing is lost, and consumption resumes on its own.
func TestStoreOutage(t *testing.T) {
	chs := testenv.StartClickHouse(t)
	db := testenv.Database(t, chs.Addr())
	brokers := newBroker(t, "breachwatch.access", "breachwatch.config")
	p := startProc(t, "BREACHWATCH_KAFKA_BROKERS="+strings.Join(brokers, ","), "BREACHWATCH_CLICKHOUSE_ADDR="+chs.Addr(),
		"BREACHWATCH_CLICKHOUSE_DATABASE="+db, "BREACHWATCH_DATA_DIR="+t.TempDir(), "BREACHWATCH_KAFKA_LAG_INTERVAL=500ms", os.Getenv("BWEXP"))
	conn := chConn(t, chs.Addr())
	stored := func() uint64 { return chDistinct(t, conn, db, "access_events") }

	const before, during = 50_000, 1_200_000
	lines, _ := demoLines(4, before+during)
	var backlogBytes int64
	for _, l := range lines[before:] {
		backlogBytes += int64(len(l))
	}
	_, done := produceStream(t, brokers, "breachwatch.access", lines[:before], 0)
	<-done
	waitFor(t, "the first events stored", time.Minute, func() bool { return stored() == before })

	atOutage, _ := p.rss()
	if err := chs.Kill(); err != nil {
		t.Fatal(err)
	}
	acked, done := produceStream(t, brokers, "breachwatch.access", lines[before:], 0)
	var maxRSS int64
	var sawNotReady bool
	var mu sync.Mutex
	sample := func() {
		rss, _ := p.rss()
		mu.Lock()
		maxRSS = max(maxRSS, rss)
		mu.Unlock()
	}
	outageEnd := time.Now().Add(5 * time.Second)
	for {
		sample()
		if resp, err := http.Get("http://" + p.httpAddr + "/readyz"); err == nil {
			sawNotReady = sawNotReady || resp.StatusCode == 503
			resp.Body.Close()
		}
		select {
		case <-done:
		default:
			time.Sleep(50 * time.Millisecond)
			continue
		}
		if time.Now().After(outageEnd) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if acked.Load() != during {
		t.Fatalf("the broker acknowledged %d of %d events", acked.Load(), during)
	}
	if !sawNotReady {
		t.Error("/readyz never reported the store outage")
	}
	lag := metric(t, p.httpAddr, `breachwatch_ingest_consumer_lag{topic="breachwatch.access"}`)
	if lag < during/2 {
		t.Errorf("consumer lag %.0f during the outage; the backlog of %d should show", lag, during)
	}
	maxOutage := maxRSS
	t.Logf("during the outage: backlog of %d events (%d MiB), consumer lag %.0f, peak RSS %d MiB",
		during, backlogBytes>>20, lag, maxOutage>>20)

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := chs.Start(ctx); err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	go func() {
		for {
			select {
			case <-stop:
				return
			case <-time.After(50 * time.Millisecond):
				sample()
			}
		}
	}()
	waitFor(t, "the whole backlog stored after the restart", 5*time.Minute, func() bool { return stored() == before+during })
	close(stop)
	_, peak := p.rss()
	// The bound that matters here: while the store is down, memory does not
	// follow the backlog. (The peak of a whole run at full speed is a figure
	// of BenchmarkEndToEnd.)
	const limit = 256 << 20
	if maxOutage > limit {
		t.Errorf("resident memory reached %d MiB during the outage, above %d MiB, with a backlog of %d MiB",
			maxOutage>>20, limit>>20, backlogBytes>>20)
	}
	if growth := maxOutage - atOutage; growth > backlogBytes/8 {
		t.Errorf("resident memory grew by %d MiB during the outage, following the %d MiB backlog", growth>>20, backlogBytes>>20)
	}
	t.Logf("RSS when ClickHouse went down %d MiB, at most %d MiB during the outage, peak over the whole run (VmHWM, catching up included) %d MiB",
		atOutage>>20, maxOutage>>20, peak>>20)
	if distinct, final, _ := chCounts(t, conn, db, "access_events"); distinct != before+during || final != before+during {
		t.Errorf("after the outage: %d distinct, %d de-duplicated; want %d", distinct, final, before+during)
	}
}

// TestDemoCommand: `breachwatch demo --count N` produces N valid events
// into a running breachwatch's embedded broker, and all of them are stored.
func TestDemoCommand(t *testing.T) {
	o := testOptions(t)
	info := start(t, o)
	d := o
	d.Kafka.Embedded.Addr = info.KafkaBrokers[0] // where `breachwatch demo` sends by default
	d.Demo.Enabled, d.Demo.Count, d.Demo.Rate, d.Demo.Seed = true, 3000, 20_000, 9
	var out bytes.Buffer
	if err := RunDemo(context.Background(), d, &out); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), info.KafkaBrokers[0]) {
		t.Errorf("demo output does not say where it sends: %q", out.String())
	}
	waitFor(t, "the 3000 demo events stored", time.Minute, func() bool {
		s, err := sqlite.Open(context.Background(), o.DataDir)
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		a, c, _ := s.Count(context.Background())
		return a+c == 3000
	})
	if v := metric(t, info.HTTPAddr, `breachwatch_ingest_dead_lettered_total{reason="syntax",topic="breachwatch.access"}`); v != 0 {
		t.Errorf("demo traffic was dead-lettered: %v", v)
	}
}
