package ingest

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/breachwatch/breachwatch/event"
)

// ctRecord is a CloudTrail record of the call name with the given
// requestParameters (a mapped call yields changes; DescribeInstances none).
func ctRecord(id, at, name, params string) string {
	src := "s3.amazonaws.com"
	if name == "DescribeInstances" {
		src = "ec2.amazonaws.com"
	}
	return `{"eventVersion":"1.09","userIdentity":{"type":"IAMUser","principalId":"AIDAJ45Q7YFFAREXAMPLE","arn":"arn:aws:iam::123456789012:user/Alice",` +
		`"accountId":"123456789012","accessKeyId":"AKIAIOSFODNN7EXAMPLE","userName":"Alice"},"eventTime":"` + at + `","eventSource":"` + src + `",` +
		`"eventName":"` + name + `","awsRegion":"eu-west-1","sourceIPAddress":"198.51.100.23","userAgent":"aws-cli/2.15.0 Python/3.11.6 Linux/6.1 exe/x86_64",` +
		`"requestParameters":` + params + `,"responseElements":null,"requestID":"` + id + `-req","eventID":"` + id + `","readOnly":false,` +
		`"eventType":"AwsApiCall","managementEvent":true,"recipientAccountId":"123456789012","eventCategory":"Management"}`
}

// deleteBucketPolicy yields two changes: public_access false, shared_with [].
func deleteBucketPolicy(id, bucket string) string {
	return ctRecord(id, "2026-11-20T08:00:00Z", "DeleteBucketPolicy", `{"bucketName":"`+bucket+`","Host":"`+bucket+`.s3.eu-west-1.amazonaws.com","policy":""}`)
}

// bigLogFile is a CloudTrail log file of about size bytes: reads, with a
// DeleteBucketPolicy every 1000th record. It returns the file and the
// number of changes it maps to.
func bigLogFile(size int) ([]byte, int) {
	var b bytes.Buffer
	b.WriteString(`{"Records":[`)
	changes := 0
	for i := 0; b.Len() < size-2048; i++ {
		if i > 0 {
			b.WriteByte(',')
		}
		id := fmt.Sprintf("f0000000-0000-4000-8000-%012d", i)
		if i%1000 == 0 {
			b.WriteString(deleteBucketPolicy(id, "bucket-"+strconv.Itoa(i)))
			changes += 2
			continue
		}
		b.WriteString(ctRecord(id, "2026-11-20T08:00:01Z", "DescribeInstances",
			`{"instancesSet":{"items":[{"instanceId":"i-0`+fmt.Sprintf("%016x", i)+`"}]},"filterSet":{}}`))
	}
	b.WriteString(`]}`)
	return b.Bytes(), changes
}

// configRecorder is a detection stage that keeps the config changes and
// clocks it was handed.
type configRecorder struct {
	mu     sync.Mutex
	ids    []string
	clocks map[string]time.Time
}

func (h *configRecorder) Handle(_ context.Context, b *event.Batch) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for i := range b.Config {
		h.ids = append(h.ids, b.Config[i].ID)
	}
	for _, c := range b.Clocks {
		if c.Newest.After(h.clocks[c.Source]) {
			h.clocks[c.Source] = c.Newest
		}
	}
}

func (h *configRecorder) n() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.ids)
}

func readDLQ(t *testing.T, brokers []string, topic string, n int) []*kgo.Record {
	t.Helper()
	dl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer dl.Close()
	var dead []*kgo.Record
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for len(dead) < n && ctx.Err() == nil {
		dead = append(dead, dl.PollFetches(ctx).Records()...)
	}
	return dead
}

// TestConsumerLogFileBadRecordsDeadLetteredAlone: a log file (and an
// array) with bad records is not refused whole: its good records are
// stored and handed on, and each bad one is dead-lettered alone, its
// value the record itself, with the reason and its index in the file.
func TestConsumerLogFileBadRecordsDeadLetteredAlone(t *testing.T) {
	c := newCluster(t)
	brokers := c.ListenAddrs()
	st := newSQLite(t)
	h := &configRecorder{clocks: map[string]time.Time{}}
	startConsumerTo(t, brokers, st, h, ConsumerOptions{Group: "ct1"})

	badTime := strings.Replace(deleteBucketPolicy("bad-time", "b"), "2026-11-20T08:00:00Z", "2026-13-01T00:00:00Z", 1)
	badBucket := ctRecord("bad-bucket", "2026-11-20T08:00:00Z", "PutBucketAcl", `{"x-amz-acl":"private"}`)
	file := `{"Records":[` + deleteBucketPolicy("g-0", "b0") + `,` + badTime + `,` + deleteBucketPolicy("g-2", "b2") + `,"junk",` +
		deleteBucketPolicy("g-4", "b4") + `]}`
	array := "[\n" + badBucket + ",\n" + strings.Replace(deleteBucketPolicy("g-a1", "ba"), "08:00:00Z", "09:30:00Z", 1) + "\n]"
	cl := producer(t, brokers)
	produce(t, cl,
		&kgo.Record{Topic: configTopic, Key: []byte("k"), Value: []byte(file), Headers: []kgo.RecordHeader{{Key: "origin", Value: []byte("s3")}}},
		&kgo.Record{Topic: configTopic, Key: []byte("k"), Value: []byte(array)},
		&kgo.Record{Topic: configTopic, Key: []byte("k"), Value: []byte(`{"Records":[` + deleteBucketPolicy("w", "w") + `,{]}`)}, // not JSON: whole
	)
	waitFor(t, "the good records' 8 changes stored", 20*time.Second, countIs(t, st, 0, 8))
	adm := kadm.NewClient(cl)
	waitFor(t, "all offsets committed", 20*time.Second, func() bool { return committedAll(t, adm, "ct1", configTopic) })
	waitFor(t, "8 changes handed on", 10*time.Second, func() bool { return h.n() == 8 })
	h.mu.Lock()
	slices.Sort(h.ids)
	if want := []string{"g-0", "g-0#2", "g-2", "g-2#2", "g-4", "g-4#2", "g-a1", "g-a1#2"}; !slices.Equal(h.ids, want) {
		t.Errorf("handed on %q, want %q", h.ids, want)
	}
	var newest time.Time
	for _, c := range h.clocks {
		if c.After(newest) {
			newest = c
		}
	}
	if want := time.Date(2026, 11, 20, 9, 30, 0, 0, time.UTC); !newest.Equal(want) {
		t.Errorf("clocks %v: want the newest accepted change (%v) observed", h.clocks, want)
	}
	h.mu.Unlock()

	dead := readDLQ(t, brokers, configTopic+".dlq", 4)
	if len(dead) != 4 {
		t.Fatalf("dead-letter topic holds %d records, want 4", len(dead))
	}
	byValue := map[string]map[string]string{}
	for _, d := range dead {
		byValue[string(d.Value)] = headers(d)
	}
	for _, want := range []struct {
		value, kind, field, index, origin string
	}{
		{badTime, "value", "Records[1].eventTime", "1", "s3"},
		{`"junk"`, "type", "Records[3]", "3", "s3"},
		{badBucket, "missing", "[0].requestParameters.bucketName", "0", ""},
		{`{"Records":[` + deleteBucketPolicy("w", "w") + `,{]}`, "syntax", "", "", ""},
	} {
		h, ok := byValue[want.value]
		if !ok {
			t.Errorf("no dead letter with value %.50q…", want.value)
			continue
		}
		if h[HeaderErrorKind] != want.kind || h[HeaderErrorField] != want.field || h[HeaderSourceIndex] != want.index ||
			h["origin"] != want.origin || h[HeaderSourceTopic] != configTopic || h[HeaderSourceOffset] == "" || h[HeaderError] == "" {
			t.Errorf("dead letter %.50q…: headers %v; want kind %s, field %q, index %q, origin %q", want.value, h, want.kind, want.field, want.index, want.origin)
		}
	}
}

// TestConsumerTakesLargeLogFile: a CloudTrail log file just under the file
// limit (16 MiB), much larger than the fetch limits, goes through the
// embedded broker and the consumer. Kafka's default message.max.bytes
// (1 MiB, kfake's too) would refuse it.
func TestConsumerTakesLargeLogFile(t *testing.T) {
	file, changes := bigLogFile(event.DefaultMaxFileBytes - 64<<10)
	if len(file) <= 8<<20 || len(file) > event.DefaultMaxFileBytes {
		t.Fatalf("file of %d bytes", len(file))
	}
	big := func(brokers ...string) *kgo.Client {
		cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ProducerBatchMaxBytes(32<<20), kgo.ProducerBatchCompression(kgo.NoCompression()))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(cl.Close)
		return cl
	}

	// A broker with Kafka's defaults refuses the file.
	plain := newCluster(t)
	err := big(plain.ListenAddrs()...).ProduceSync(context.Background(), &kgo.Record{Topic: configTopic, Value: file}).FirstErr()
	if !errors.Is(err, kerr.MessageTooLarge) {
		t.Fatalf("kfake with defaults: produce err = %v, want MESSAGE_TOO_LARGE", err)
	}

	log := zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel))
	e, err := StartEmbedded(EmbeddedOptions{Addr: "127.0.0.1:0", Partitions: 1, Topics: []string{accessTopic, configTopic, configTopic + ".dlq"}}, log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.Close)
	st := newSQLite(t)
	// Fetch limits far below the record: 1 MiB in all, 1 MiB per partition.
	startConsumer(t, []string{e.Addr()}, st, ConsumerOptions{Group: "ct2", FetchMaxBytes: 1 << 20})
	cl := big(e.Addr())
	produce(t, cl, &kgo.Record{Topic: configTopic, Value: file},
		&kgo.Record{Topic: configTopic, Value: []byte(deleteBucketPolicy("after", "after"))})
	waitFor(t, fmt.Sprintf("the %d changes of the %d-byte file and the next record stored", changes, len(file)), 60*time.Second,
		countIs(t, st, 0, int64(changes+2)))
	waitFor(t, "all offsets committed", 20*time.Second, func() bool { return committedAll(t, kadm.NewClient(cl), "ct2", configTopic) })
}

func postConfig(t *testing.T, h *HTTP, body []byte, gz bool) *httptest.ResponseRecorder {
	t.Helper()
	req := httptest.NewRequest(http.MethodPost, "/api/v1/events/config", bytes.NewReader(body))
	if gz {
		var buf bytes.Buffer
		zw := gzip.NewWriter(&buf)
		zw.Write(body)
		zw.Close()
		req = httptest.NewRequest(http.MethodPost, "/api/v1/events/config", &buf)
		req.Header.Set("Content-Encoding", "gzip")
	}
	rec := httptest.NewRecorder()
	h.Config().ServeHTTP(rec, req)
	return rec
}

// TestHTTPIngestLogFiles: over HTTP a line may hold a whole log file up to
// the file limit (gzip accepted, within the default body limit), a
// pretty-printed array is one document, and a request stays all or
// nothing: a bad record in a file is a 400 naming the line and the field.
func TestHTTPIngestLogFiles(t *testing.T) {
	st := &flaky{}
	w, m := newTestWriter(t, st)
	next := &handoffCount{}
	h := NewHTTP(w, next, HTTPOptions{}, m, zap.NewNop())

	t.Run("16 MiB file gzipped", func(t *testing.T) {
		file, changes := bigLogFile(event.DefaultMaxFileBytes - 1024)
		body := append(append([]byte(deleteBucketPolicy("line-1", "l1")+"\n"), file...), '\n')
		rec := postConfig(t, h, body, true)
		if rec.Code != http.StatusAccepted || !strings.Contains(rec.Body.String(), `"accepted":`+strconv.Itoa(changes+2)) {
			t.Fatalf("got %d %s, want 202 with %d accepted", rec.Code, rec.Body, changes+2)
		}
	})

	t.Run("pretty-printed array", func(t *testing.T) {
		data, err := os.ReadFile("../event/testdata/cloudtrail/detonation_dns_delete_logs_array.json")
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Count(data, []byte{'\n'}) < 10 {
			t.Fatal("the sample is not pretty-printed")
		}
		rec := postConfig(t, h, data, false)
		if rec.Code != http.StatusAccepted || !strings.Contains(rec.Body.String(), `"accepted":3`) {
			t.Fatalf("got %d %s, want 202 with 3 accepted", rec.Code, rec.Body)
		}
	})

	t.Run("bad record in a file", func(t *testing.T) {
		stored, handed := st.stored.Load(), next.n.Load()
		badTime := strings.Replace(deleteBucketPolicy("bad", "b"), "2026-11-20T08:00:00Z", "2026-11-20 08:00", 1)
		file := `{"Records":[` + deleteBucketPolicy("a", "a") + `,` + deleteBucketPolicy("b", "b") + `,` + deleteBucketPolicy("c", "c") + `,` + badTime + `]}`
		rec := postConfig(t, h, []byte(deleteBucketPolicy("first", "f")+"\n"+file+"\n"), false)
		var bl BadLine
		if err := json.Unmarshal(rec.Body.Bytes(), &bl); err != nil || rec.Code != http.StatusBadRequest {
			t.Fatalf("got %d %s, want 400", rec.Code, rec.Body)
		}
		if bl.Line != 2 || bl.Field != "Records[3].eventTime" || bl.Kind != "value" || !strings.Contains(bl.Error, "nothing in this request was accepted") {
			t.Errorf("400 body %+v; want line 2, field Records[3].eventTime", bl)
		}
		if st.stored.Load() != stored || next.n.Load() != handed {
			t.Error("part of a refused request was stored or handed on")
		}
	})

	t.Run("limits", func(t *testing.T) {
		small := NewHTTP(w, nil, HTTPOptions{MaxEventBytes: 4096, MaxFileBytes: 64 << 10}, m, zap.NewNop())
		file, _ := bigLogFile(60 << 10)
		if rec := postConfig(t, small, file, false); rec.Code != http.StatusAccepted {
			t.Errorf("a 60 KiB file under a 4 KiB event limit: got %d %s, want 202", rec.Code, rec.Body)
		}
		file, _ = bigLogFile(80 << 10)
		if rec := postConfig(t, small, file, false); rec.Code != http.StatusBadRequest || !strings.Contains(rec.Body.String(), "too_large") {
			t.Errorf("an 80 KiB file over a 64 KiB file limit: got %d %s, want 400 too_large", rec.Code, rec.Body)
		}
		change := `{"id":"c","time":"2026-11-20T08:00:00Z","resource":{"id":"r","type":"bucket"},"setting":"s","after":"` + strings.Repeat("x", 5000) + `"}`
		if rec := postConfig(t, small, []byte(change), false); rec.Code != http.StatusBadRequest || !strings.Contains(rec.Body.String(), "too_large") {
			t.Errorf("a 5 KB change over the 4 KiB event limit: got %d %s, want 400 too_large", rec.Code, rec.Body)
		}
		// Lines of NDJSON are still lines.
		two := deleteBucketPolicy("x1", "x") + "\n" + deleteBucketPolicy("x2", "x") + "\n"
		if rec := postConfig(t, small, []byte(two), false); rec.Code != http.StatusAccepted || !strings.Contains(rec.Body.String(), `"accepted":4`) {
			t.Errorf("two lines: got %d %s, want 202 with 4 accepted", rec.Code, rec.Body)
		}
	})
}

func TestMaxReadBytes(t *testing.T) {
	for _, tt := range []struct {
		fetch int32
		file  int
		want  int32
	}{
		{2 << 20, 0, 100 << 20},
		{2 << 20, 64 << 20, 2<<20 + 128<<20},
		{1 << 30, 256 << 20, 1 << 30},
	} {
		if got := maxReadBytes(tt.fetch, tt.file); got != tt.want || got < tt.fetch {
			t.Errorf("maxReadBytes(%d, %d) = %d, want %d", tt.fetch, tt.file, got, tt.want)
		}
	}
}
