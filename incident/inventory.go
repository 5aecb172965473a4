package incident

import (
	"slices"
	"strings"
)

// Who holds data in a store (Store.Holders).
const (
	HoldersAll  = "all"  // every tenant's data
	HoldersList = "list" // the tenants in Store.Tenants
	HoldersSeen = "seen" // the tenants seen in access events on the store
)

// Store is one data store of the data inventory: what personal data it
// holds and whose.
type Store struct {
	ID          string
	Description string
	// Categories of personal data it holds; empty: none. A store that holds
	// no personal data never yields a finding.
	Categories []string
	Holders    string   // HoldersAll, HoldersList or HoldersSeen
	Tenants    []string // for HoldersList
	// Public: the store is meant to be reachable by anyone (e.g. public
	// assets); anonymous reads of it are not an exposure.
	Public  bool
	Aliases []string // other ids events may use for it (ARNs, hostnames)
}

// Personal reports whether the store holds personal data.
func (s *Store) Personal() bool { return len(s.Categories) > 0 }

// Inventory is the data inventory: the stores breachwatch knows. It is
// immutable once built and safe for concurrent use.
type Inventory struct {
	byID map[string]*Store
	// byResource finds a store by the resource part of an ARN among its
	// id and aliases ("sg-0abc" for arn:aws:ec2:…:security-group/sg-0abc;
	// "exports-eu" and "s3://exports-eu" for arn:aws:s3:::exports-eu), as
	// cloud audit trails name resources by their bare ids. A part that
	// two stores share maps to nil: it names neither.
	byResource map[string]*Store
	// unknown is what a store missing from the inventory is taken to be.
	unknown Store
}

// unknownStoreCategories are the categories assumed for a store the
// inventory does not list, when unknown stores count as personal: the safe
// assumption is that it may hold anything.
var unknownStoreCategories = []string{"unknown"}

// NewInventory builds an inventory. With unknownPersonal, a store it does
// not list is taken to hold personal data of every tenant (the safe
// choice); otherwise such a store never yields a finding.
func NewInventory(stores []Store, unknownPersonal bool) *Inventory {
	inv := &Inventory{byID: map[string]*Store{}, byResource: map[string]*Store{}, unknown: Store{Holders: HoldersSeen}}
	if unknownPersonal {
		inv.unknown.Categories = slices.Clone(unknownStoreCategories)
	}
	for i := range stores {
		s := new(Store)
		*s = stores[i]
		for _, id := range append([]string{s.ID}, s.Aliases...) {
			inv.byID[id] = s
			for _, k := range arnResourceKeys(id) {
				if prev, ok := inv.byResource[k]; ok && prev != s {
					inv.byResource[k] = nil
				} else {
					inv.byResource[k] = s
				}
			}
		}
	}
	return inv
}

// arnResourceKeys are the bare ids an ARN's resource goes by: for an S3
// bucket (arn:aws:s3:::name) its name and s3://name; otherwise the
// resource without its type ("security-group/sg-0abc" → "sg-0abc",
// "db:bookings-eu-1" → "bookings-eu-1"). Nothing for what is not an ARN.
func arnResourceKeys(id string) []string {
	parts := strings.SplitN(id, ":", 6)
	if len(parts) != 6 || parts[0] != "arn" || parts[5] == "" {
		return nil
	}
	res := parts[5]
	if parts[2] == "s3" && parts[3] == "" && parts[4] == "" {
		bucket, _, _ := strings.Cut(res, "/")
		return []string{bucket, "s3://" + bucket}
	}
	if i := strings.IndexAny(res, "/:"); i >= 0 {
		res = res[i+1:]
	}
	if res == "" {
		return nil
	}
	return []string{res}
}

// Lookup finds a store by id or alias, or by a bare id that is the
// resource of one ARN among them (e.g. "exports-eu" or "s3://exports-eu"
// for the alias arn:aws:s3:::exports-eu). For a store the inventory does
// not list it returns a description of an unknown store (known=false),
// with that id.
func (inv *Inventory) Lookup(id string) (s Store, known bool) {
	if inv != nil {
		if p, ok := inv.byID[id]; ok {
			return *p, true
		}
		if p := inv.byResource[id]; p != nil {
			return *p, true
		}
		s = inv.unknown
	} else {
		s = Store{Holders: HoldersSeen, Categories: slices.Clone(unknownStoreCategories)}
	}
	s.ID = id
	return s, false
}

// LookupResource finds the store of a configuration change's resource:
// by its store (resource.store), else by its id (resource.id), each as
// Lookup does. CloudTrail names a resource by its ARN and its store by the
// bare id, so an inventory alias given as either finds it. Unknown: the
// description of an unknown store, with the id store.
func (inv *Inventory) LookupResource(store, id string) (s Store, known bool) {
	if s, known = inv.Lookup(store); known || id == "" || id == store {
		return s, known
	}
	if s, known := inv.Lookup(id); known {
		return s, true
	}
	return s, false
}

// Stores lists the stores, each once, by id.
func (inv *Inventory) Stores() []Store {
	if inv == nil {
		return nil
	}
	seen := map[*Store]bool{}
	var out []Store
	for _, s := range inv.byID {
		if !seen[s] {
			seen[s] = true
			out = append(out, *s)
		}
	}
	slices.SortFunc(out, func(a, b Store) int { return strings.Compare(a.ID, b.ID) })
	return out
}
