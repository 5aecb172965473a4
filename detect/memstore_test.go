package detect

import (
	"context"
	"net/netip"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/breachwatch/breachwatch/event"
	"github.com/breachwatch/breachwatch/incident"
)

// memStore is a hand-written store for the engine's tests: events kept in
// (time, id) order, de-duplicated by id as the real stores do, and findings
// kept newest by version. It is a Store and a Sink. The stores themselves
// are tested against the same contract in store/storetest.
type memStore struct {
	mu       sync.Mutex
	access   []event.AccessEvent
	config   []event.ConfigChange
	ids      map[string]bool
	findings map[string]incident.Finding
	reports  []incident.Finding // every report, in order
	scans    int
}

func newMemStore() *memStore {
	return &memStore{ids: map[string]bool{}, findings: map[string]incident.Finding{}}
}

// Write stores a batch (as ingest does before detection sees it).
func (s *memStore) Write(b *event.Batch) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, a := range b.Access {
		if !s.ids["a"+a.ID] {
			s.ids["a"+a.ID] = true
			s.access = append(s.access, a)
		}
	}
	for _, c := range b.Config {
		if !s.ids["c"+c.ID] {
			s.ids["c"+c.ID] = true
			s.config = append(s.config, c)
		}
	}
	sort.SliceStable(s.access, func(i, j int) bool {
		return before(s.access[i].Time.UnixNano(), s.access[i].ID, s.access[j].Time.UnixNano(), s.access[j].ID)
	})
	sort.SliceStable(s.config, func(i, j int) bool {
		return before(s.config[i].Time.UnixNano(), s.config[i].ID, s.config[j].Time.UnixNano(), s.config[j].ID)
	})
}

// DropBefore forgets the events before t (retention).
func (s *memStore) DropBefore(t time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.access = slices.DeleteFunc(s.access, func(a event.AccessEvent) bool { return a.Time.Before(t) })
	s.config = slices.DeleteFunc(s.config, func(c event.ConfigChange) bool { return c.Time.Before(t) })
}

func (s *memStore) ScanAccess(ctx context.Context, from, to time.Time, fn func(*event.AccessEvent) error) error {
	return s.ScanAccessWhere(ctx, from, to, nil, fn)
}

func (s *memStore) ScanAccessWhere(_ context.Context, from, to time.Time, where []event.FieldValue, fn func(*event.AccessEvent) error) error {
	var ip netip.Addr
	for _, w := range where {
		if w.Field == "source_ip" {
			ip, _ = netip.ParseAddr(w.Value)
		}
	}
	s.mu.Lock()
	s.scans++
	i := sort.Search(len(s.access), func(i int) bool { return !s.access[i].Time.Before(from) })
	var out []event.AccessEvent
	for ; i < len(s.access) && s.access[i].Time.Before(to); i++ {
		a := s.access[i]
		ok := true
		for _, w := range where {
			switch w.Field {
			case "actor.id":
				ok = ok && a.Actor.ID == w.Value
			case "actor.tenant":
				ok = ok && a.Actor.Tenant == w.Value
			case "tenant":
				ok = ok && a.Tenant == w.Value
			case "resource.store":
				ok = ok && a.Resource.Store == w.Value
			case "source_ip":
				ok = ok && a.SourceIP == ip
			}
		}
		if ok {
			out = append(out, a)
		}
	}
	s.mu.Unlock()
	for i := range out {
		if err := fn(&out[i]); err != nil {
			return err
		}
	}
	return nil
}

func (s *memStore) ScanConfig(_ context.Context, from, to time.Time, fn func(*event.ConfigChange) error) error {
	s.mu.Lock()
	var out []event.ConfigChange
	for _, c := range s.config {
		if !c.Time.Before(from) && c.Time.Before(to) {
			out = append(out, c)
		}
	}
	s.mu.Unlock()
	for i := range out {
		if err := fn(&out[i]); err != nil {
			return err
		}
	}
	return nil
}

func (s *memStore) FindingsOf(_ context.Context, ruleID string, from, to time.Time) ([]incident.Finding, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []incident.Finding
	for _, f := range s.findings {
		if f.RuleID == ruleID && !f.WindowStart.Before(from) && f.WindowStart.Before(to) {
			out = append(out, f)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Fingerprint < out[j].Fingerprint })
	return out, nil
}

// Findings is the sink: the newest report of each fingerprint (by version)
// is kept, the first detection stays.
func (s *memStore) Findings(_ context.Context, fs []incident.Finding) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, f := range fs {
		s.reports = append(s.reports, f)
		cur, ok := s.findings[f.Fingerprint]
		if ok && cur.Version > f.Version {
			continue
		}
		if ok && !cur.DetectedAt.IsZero() && cur.DetectedAt.Before(f.DetectedAt) {
			f.DetectedAt = cur.DetectedAt
		}
		s.findings[f.Fingerprint] = f
	}
	return nil
}

// live is every finding as last reported, retractions left out, in a
// stable order.
func (s *memStore) live() []incident.Finding {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []incident.Finding
	for _, f := range s.findings {
		if !f.Retracted() {
			out = append(out, f)
		}
	}
	SortFindings(out)
	return out
}
