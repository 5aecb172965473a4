package tracker

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/breachwatch/breachwatch/incident"
)

// scope computes an incident's affected customers.
//
// Access incidents: the tenants whose data the evidence events touched
// (the event's tenant: for a cross-tenant read, the victim), all
// "accessed". Exposure incidents: per store of the incident, the tenants
// whose data it holds (from the inventory: all, a list, or those seen in
// access events on it), split into "accessed" — someone who should not
// have read their data there during the window — and "exposed".
func (t *Tracker) scope(ctx context.Context, inc *incident.Incident, now time.Time) (incident.Scope, error) {
	if t.opts.Access == nil {
		return hintScope(inc, t.opts.Customers), nil
	}
	if inc.Kind == incident.KindExposure {
		return t.exposureScope(ctx, inc, now)
	}
	if len(inc.EventIDs) == 0 {
		return hintScope(inc, t.opts.Customers), nil
	}
	rows, err := t.opts.Access.AccessByTenant(ctx, incident.AccessQuery{IDs: inc.EventIDs, From: inc.FirstSeen,
		To: inc.LastSeen.Add(time.Nanosecond), PrivilegedGroups: t.opts.PrivilegedGroups})
	if err != nil {
		return incident.Scope{}, fmt.Errorf("tracker: scoping %s: %w", inc.ID, err)
	}
	if len(rows) == 0 {
		// The evidence is not (or no longer) in the store.
		s := hintScope(inc, t.opts.Customers)
		s.Partial = true
		return s, nil
	}
	var inv *incident.Inventory
	if t.opts.Inventory != nil {
		inv = t.opts.Inventory()
	}
	var s incident.Scope
	for _, r := range rows {
		// Each tenant's categories are those its own events name, and, for
		// its events that name none, their store's (the inventory's; the
		// findings' when the store is not in it): never another tenant's.
		cats := slices.Clone(r.Categories)
		for _, st := range r.Unlabelled {
			if c := storeCategories(inv, st); c != nil {
				cats = union(cats, c)
			} else {
				cats = union(cats, inc.Hint.Categories)
			}
		}
		if len(cats) == 0 && len(r.Unlabelled) == 0 {
			cats = slices.Clone(inc.Hint.Categories) // a store that reports no stores
		}
		slices.Sort(cats)
		s.Tenants = append(s.Tenants, incident.AffectedTenant{Tenant: r.Tenant, Records: r.Records, Categories: nonNil(cats),
			How: incident.HowAccessed})
	}
	// The finding keeps at most MaxEvidence event ids: beyond them the
	// split per tenant is not known exactly.
	s.Partial = inc.Events > int64(len(inc.EventIDs))
	return s, nil
}

func (t *Tracker) exposureScope(ctx context.Context, inc *incident.Incident, now time.Time) (incident.Scope, error) {
	from, to := inc.ExposureFrom, inc.ExposureTo
	if to.IsZero() {
		to = now
	}
	var inv *incident.Inventory
	if t.opts.Inventory != nil {
		inv = t.opts.Inventory()
	}
	type entry struct {
		t        incident.AffectedTenant
		accessed bool
	}
	byTenant := map[string]*entry{}
	add := func(tenant string, how string, records int64, cats []string) {
		e := byTenant[tenant]
		if e == nil {
			e = &entry{t: incident.AffectedTenant{Tenant: tenant, How: incident.HowExposed, Categories: []string{}}}
			byTenant[tenant] = e
		}
		if how == incident.HowAccessed && !e.accessed {
			// Accessed wins over exposed; its records are what was read.
			e.accessed, e.t.How, e.t.Records, e.t.Categories = true, incident.HowAccessed, 0, []string{}
		}
		if (how == incident.HowAccessed) == e.accessed {
			e.t.Records = incident.SatAdd(e.t.Records, records)
			e.t.Categories = union(e.t.Categories, cats)
		}
	}
	partial := false
	for _, id := range inc.Hint.Stores {
		st, _ := inv.Lookup(id)
		if !st.Personal() {
			continue
		}
		// Who read data on the store during the window, and who should not have.
		during, err := t.opts.Access.AccessByTenant(ctx, incident.AccessQuery{Stores: storeIDs(st), From: from, To: to,
			PrivilegedGroups: t.opts.PrivilegedGroups, BadOnly: true})
		if err != nil {
			return incident.Scope{}, fmt.Errorf("tracker: scoping %s: %w", inc.ID, err)
		}
		for _, r := range during {
			if r.BadEvents > 0 {
				cats := r.BadCategories
				if len(cats) == 0 || len(r.BadUnlabelled) > 0 {
					cats = union(cats, st.Categories) // its reads that named none
				}
				add(r.Tenant, incident.HowAccessed, r.BadRecords, cats)
			}
		}
		// Whose data the store holds. Records of the exposed: what access
		// events have shown of their data there (an estimate).
		seen, err := t.opts.Access.AccessByTenant(ctx, incident.AccessQuery{Stores: storeIDs(st), To: to, Holders: true})
		if err != nil {
			return incident.Scope{}, fmt.Errorf("tracker: scoping %s: %w", inc.ID, err)
		}
		records := map[string]int64{}
		for _, r := range seen {
			records[r.Tenant] = r.Records
		}
		var holders []string
		switch st.Holders {
		case incident.HoldersList:
			holders = st.Tenants
		case incident.HoldersAll:
			for tn := range t.opts.Customers {
				holders = append(holders, tn)
			}
			for _, r := range seen {
				holders = append(holders, r.Tenant)
			}
			if len(t.opts.Customers) == 0 {
				partial = true // "all", without a customer directory: only the tenants seen are known
			}
		default:
			for _, r := range seen {
				holders = append(holders, r.Tenant)
			}
		}
		slices.Sort(holders)
		for _, tn := range slices.Compact(holders) {
			add(tn, incident.HowExposed, records[tn], st.Categories)
		}
	}
	var s incident.Scope
	for _, e := range byTenant {
		s.Tenants = append(s.Tenants, e.t)
	}
	slices.SortFunc(s.Tenants, func(a, b incident.AffectedTenant) int {
		if a.How != b.How {
			if a.How == incident.HowAccessed {
				return -1
			}
			return 1
		}
		if a.Tenant < b.Tenant {
			return -1
		}
		if a.Tenant > b.Tenant {
			return 1
		}
		return 0
	})
	s.Partial = partial
	return s, nil
}

// storeIDs is a store's id and aliases: events may name it either way.
func storeIDs(st incident.Store) []string {
	return append([]string{st.ID}, st.Aliases...)
}

func nonNil(ss []string) []string {
	if ss == nil {
		return []string{}
	}
	return ss
}

// storeCategories are the inventory's categories of a store, or nil when
// the inventory does not list it.
func storeCategories(inv *incident.Inventory, store string) []string {
	if inv == nil {
		return nil
	}
	if st, ok := inv.Lookup(store); ok && len(st.Categories) > 0 {
		return st.Categories
	}
	return nil
}
