package app

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.uber.org/zap"

	"github.com/breachwatch/breachwatch/incident"
	"github.com/breachwatch/breachwatch/ingest"
	"github.com/breachwatch/breachwatch/store/sqlite"
	"github.com/breachwatch/breachwatch/store/storetest"
	"github.com/breachwatch/breachwatch/tracker"
)

// auditDir writes a data directory whose embedded store holds the chain.
func auditDir(t *testing.T, chain []incident.AuditEntry) string {
	t.Helper()
	dir := t.TempDir()
	st, err := sqlite.Open(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if err := st.AppendAudit(context.Background(), chain); err != nil {
		t.Fatal(err)
	}
	return dir
}

// TestAuditVerifyAgainstAnchors: the audit heads published after appends
// (the topic's records; the log's "audit head" lines) show what the chain
// alone cannot: its last entries cut, or the whole chain rewritten and
// hashed again. Both the file form and the Kafka topic are read.
func TestAuditVerifyAgainstAnchors(t *testing.T) {
	ctx := context.Background()
	chain := storetest.AuditChain(10)
	// Anchors as the running service publishes them (to kfake), and as its
	// JSON log holds them.
	brokers := newBroker(t, "breachwatch.audit-anchors")
	pub, err := newAnchorPublisher(ingest.KafkaOptions{Brokers: brokers}, "breachwatch.audit-anchors", zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	var lines bytes.Buffer
	for _, i := range []int{3, 6, 9} {
		pub.publish(tracker.Anchor{Seq: chain[i].Seq, Hash: chain[i].Hash, At: chain[i].At})
		fmt.Fprintf(&lines, `{"level":"info","logger":"audit","msg":"audit head","seq":%d,"hash":"%s"}`+"\n", chain[i].Seq, chain[i].Hash)
		lines.WriteString(`{"level":"info","msg":"something else"}` + "\n")
	}
	pub.close()
	file := filepath.Join(t.TempDir(), "anchors.jsonl")
	if err := os.WriteFile(file, lines.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	fromTopic, err := topicAnchors(ctx, ingest.KafkaOptions{Brokers: brokers}, "breachwatch.audit-anchors")
	if err != nil || len(fromTopic) != 3 || fromTopic[2].Seq != 10 {
		t.Fatalf("anchors read back from the topic: %+v, %v", fromTopic, err)
	}

	run := func(dir, anchors string) (int, string) {
		var out, errb bytes.Buffer
		args := []string{"verify", "--data-dir", dir, "--anchors", anchors, "--kafka-brokers", strings.Join(brokers, ",")}
		code := auditCommand(ctx, args, &out, &errb)
		return code, out.String() + errb.String()
	}
	rewritten := storetest.AuditChain(10)
	rewritten[4].Reason = "the note said something else"
	for i := 4; i < len(rewritten); i++ {
		rewritten[i].Seal(&rewritten[i-1])
	}
	cases := []struct {
		name  string
		chain []incident.AuditEntry
		code  int
		says  string
	}{
		{"intact", chain, 0, "3 anchors"},
		{"last entries cut", chain[:8], 1, "entries were cut"},
		{"rewritten and hashed again", rewritten, 1, "rewritten"},
	}
	for _, c := range cases {
		dir := auditDir(t, c.chain)
		// The chain alone verifies in every case.
		if code, out := run(dir, ""); !(code == 0 || c.code == 0) {
			t.Fatalf("%s: without anchors: %d %s", c.name, code, out)
		}
		for _, src := range []string{file, "kafka"} {
			code, out := run(dir, src)
			if code != c.code || !strings.Contains(out, c.says) {
				t.Errorf("%s, anchors from %s: exit %d, want %d saying %q:\n%s", c.name, src, code, c.code, c.says, out)
			}
		}
	}
	// A file that holds no anchors, or garbage, is an error, not a pass.
	empty := filepath.Join(t.TempDir(), "empty")
	_ = os.WriteFile(empty, []byte(`{"msg":"x"}`+"\n"), 0o600)
	if code, out := run(auditDir(t, chain), empty); code != 1 || !strings.Contains(out, "no anchors") {
		t.Errorf("no anchors: %d %s", code, out)
	}
}
