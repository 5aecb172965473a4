package detect

// Backfill property tests from the second review: a backfill over random
// ranges agrees with live detection and changes nothing the second time.

import (
	"context"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/breachwatch/breachwatch/event"
	"github.com/breachwatch/breachwatch/incident"
)

type capSink struct{ fs []incident.Finding }

func (c *capSink) Findings(_ context.Context, fs []incident.Finding) error {
	c.fs = append(c.fs, fs...)
	return nil
}

func (h *harness) engineSink(s pscen, sink Sink) *Engine {
	o := s.opts
	o.Store, o.Now = h.st, func() time.Time { return h.clock }
	eng, err := New(propSet(h.t, s.rules...), sink, o, prometheus.NewRegistry(), zap.NewNop())
	if err != nil {
		h.t.Fatal(err)
	}
	return eng
}

func newestOf(evs []event.AccessEvent) time.Time {
	var n time.Time
	for _, e := range evs {
		if e.Time.After(n) {
			n = e.Time
		}
	}
	return n
}

func startOf(d string) time.Time {
	i := strings.Index(d, " start=")
	ts, _ := time.Parse(time.RFC3339Nano, strings.Fields(d[i+7:])[0])
	return ts
}

// The reference findings that start in [from, to).
func within(ref []string, from, to time.Time) []string {
	var out []string
	for _, d := range ref {
		if s := startOf(d); !s.Before(from) && s.Before(to) {
			out = append(out, d)
		}
	}
	return out
}

func TestProp2Backfill(t *testing.T) {
	n := 300
	if v := os.Getenv("PROP_N"); v != "" {
		n, _ = strconv.Atoi(v)
	}
	seed0 := uint64(1)
	if v := os.Getenv("PROP_SEED"); v != "" {
		x, _ := strconv.Atoi(v)
		seed0 = uint64(x)
	}
	fails := 0
	for k := range n {
		seed := seed0 + uint64(k)
		rng := rand.New(rand.NewPCG(seed, 7))
		s := genScen(rng, []string{"count", "sum", "dist", "match", "seq"})
		s.opts.MaxGroups = 0
		ref := s.reference(t)
		// 1. live, in the scenario's arrival order
		h := &harness{t: t, st: newMemStore(), clock: at(48 * time.Hour)}
		eng := h.engineSet(propSet(t, s.rules...), s.opts)
		h.feed(eng, s.batches())
		live := describe(h.st.live())
		if !slices.Equal(live, ref) {
			continue // covered by TestProp2Random
		}
		from := at(time.Duration(rng.IntN(180)) * time.Minute)
		to := from.Add(time.Duration(1+rng.IntN(240)) * time.Minute)
		latest := newestOf(s.evs)
		msg := func(what string) {
			fails++
			t.Errorf("seed %d: %s; backfill [+%v, +%v)\n%s", seed, what, from.Sub(t0), to.Sub(t0), s)
		}
		// 2. a backfill over what live detection found: nothing changes.
		nrep := len(h.st.reports)
		p, err := h.engineSink(s, h.st).Backfill(context.Background(), from, to, latest, 7*24*time.Hour, nil)
		if err != nil {
			t.Fatal(err)
		}
		changedRep := false
		for _, f := range h.st.reports[nrep:] {
			if d := describe([]incident.Finding{f}); !f.Retracted() && !slices.Contains(ref, d[0]) || f.Retracted() {
				changedRep = true
			}
		}
		_ = p
		if got := describe(h.st.live()); !slices.Equal(got, ref) || changedRep {
			msg("backfill after live changed something: " + strconv.Itoa(p.Findings) + " findings")
			for _, f := range h.st.reports[nrep:] {
				t.Logf("  report %s", describe([]incident.Finding{f}))
			}
			compare(t, "after backfill", ref, got)
		}
		// 2b. a backfill whose read ended before live detection's latest events.
		{
			lt := s.evs[rng.IntN(len(s.evs))].Time
			if lt.After(from) {
				nrep := len(h.st.reports)
				if _, err := h.engineSink(s, h.st).Backfill(context.Background(), from, to, lt, 7*24*time.Hour, nil); err != nil {
					t.Fatal(err)
				}
				if got := describe(h.st.live()); !slices.Equal(got, ref) {
					msg("backfill with an earlier read end rolled live back (latest +" + lt.Sub(t0).String() + ")")
					for _, f := range h.st.reports[nrep:] {
						t.Logf("  report %s", describe([]incident.Finding{f}))
					}
					compare(t, "after backfill 2b", ref, got)
				}
			}
		}
		// 3. replay on the live store prints every finding of the time.
		cs := &capSink{}
		if _, err := h.engineSink(s, cs).Replay(context.Background(), from, to, at(48*time.Hour), 7*24*time.Hour, nil); err != nil {
			t.Fatal(err)
		}
		rp := describe(cs.fs)
		spans := map[string]bool{} // fingerprints of reference findings that go on past to
		for _, d := range ref {
			i := strings.Index(d, " last=")
			l, _ := time.Parse(time.RFC3339Nano, strings.Fields(d[i+6:])[0])
			if !l.Before(to) {
				spans[fpOf(d)] = true
			}
		}
		rp = slices.DeleteFunc(rp, func(d string) bool { return spans[fpOf(d)] })
		for _, d := range within(ref, from, to) {
			if spans[fpOf(d)] {
				continue
			}
			if !slices.Contains(rp, d) {
				msg("replay lacks a finding")
				t.Logf("  lacks %s\n  replay printed %v", d, rp)
			}
		}
		for _, d := range rp {
			if !slices.Contains(ref, d) {
				msg("replay printed a finding live detection does not have")
				t.Logf("  printed %s", d)
			}
		}
		// 4. a backfill of a store never evaluated live.
		h2 := &harness{t: t, st: newMemStore(), clock: at(48 * time.Hour)}
		for _, b := range s.batches() {
			h2.st.Write(&b)
		}
		if _, err := h2.engineSink(s, h2.st).Backfill(context.Background(), from, to, latest, 7*24*time.Hour, nil); err != nil {
			t.Fatal(err)
		}
		bf := describe(h2.st.live())
		for _, d := range within(ref, from, to) {
			if !slices.Contains(bf, d) {
				msg("backfill of the unevaluated store lacks a finding")
				t.Logf("  lacks %s\n  backfill found %v", d, bf)
			}
		}
		for _, d := range bf {
			if !slices.Contains(ref, d) {
				msg("backfill of the unevaluated store found a finding that differs")
				t.Logf("  found %s", d)
			}
		}
		bf1 := describe(h2.st.live())
		if _, err := h2.engineSink(s, h2.st).Backfill(context.Background(), from, to, latest, 7*24*time.Hour, nil); err != nil || !slices.Equal(bf1, describe(h2.st.live())) {
			msg("second backfill changed the store")
			compare(t, "second backfill", bf1, describe(h2.st.live()))
		}
		if fails >= 4 {
			break
		}
	}
}

func fpOf(d string) string {
	i := strings.Index(d, " fp=")
	return strings.Fields(d[i+4:])[0]
}
