package event

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"testing"
	"time"
)

// benchLines returns n realistic, distinct access-event lines.
func benchLines(n int) [][]byte {
	lines := make([][]byte, n)
	base := time.Date(2026, 11, 20, 9, 0, 0, 0, time.UTC)
	for i := range lines {
		ev := AccessEvent{
			ID: fmt.Sprintf("a-%09d", i), Time: base.Add(time.Duration(i) * time.Millisecond),
			Tenant: fmt.Sprintf("cust-%04d", i%500),
			Actor:  Actor{ID: fmt.Sprintf("u-%05d", i%20000), Type: ActorCustomerUser, Tenant: fmt.Sprintf("cust-%04d", i%500)},
			Action: actions[i%4], Resource: Resource{Type: "booking", ID: fmt.Sprintf("bk-%08d", i), Store: "postgres-eu-1"},
			Records: int64(1 + i%7), Categories: []string{"contact", "booking"}, Outcome: OutcomeSuccess,
			SourceIP: netip.AddrFrom4([4]byte{198, 51, 100, byte(i)}), Country: "NL",
			UserAgent: "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Safari/605.1.15",
			RequestID: fmt.Sprintf("req-%012x", i),
		}
		lines[i] = ev.AppendJSON(nil)
	}
	return lines
}

// BenchmarkDecodeAccess measures decode + validate of one access event on
// one core; the goal is ≥ 500k events/s.
func BenchmarkDecodeAccess(b *testing.B) {
	lines := benchLines(4096)
	var total int
	for _, l := range lines {
		total += len(l)
	}
	b.SetBytes(int64(total / len(lines)))
	b.ReportAllocs()
	var ev AccessEvent
	var d Decoder
	i := 0
	for b.Loop() {
		if err := d.Access(lines[i%len(lines)], &ev); err != nil {
			b.Fatal(err)
		}
		i++
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
}

// BenchmarkDecodeAccessStdlib is the same work done with encoding/json into
// a mirror struct, for comparison (it validates nothing).
func BenchmarkDecodeAccessStdlib(b *testing.B) {
	type actor struct {
		ID, Type, Tenant string
		Groups           []string
	}
	type wire struct {
		ID, Time, Tenant string
		Actor            actor
		Action           string
		Resource         struct{ Type, ID, Store string }
		Records          int64
		Categories       []string
		Outcome          string
		SourceIP         string `json:"source_ip"`
		Country          string
		UserAgent        string `json:"user_agent"`
		RequestID        string `json:"request_id"`
	}
	lines := benchLines(4096)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		var w wire
		if err := json.Unmarshal(lines[i%len(lines)], &w); err != nil {
			b.Fatal(err)
		}
		i++
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
}

func BenchmarkEncodeAccess(b *testing.B) {
	lines := benchLines(1)
	var ev AccessEvent
	if err := (Decoder{}).Access(lines[0], &ev); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	buf := make([]byte, 0, 1024)
	for b.Loop() {
		buf = ev.AppendJSON(buf[:0])
	}
}
