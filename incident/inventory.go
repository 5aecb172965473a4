package incident

import "slices"

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
	inv := &Inventory{byID: map[string]*Store{}, unknown: Store{Holders: HoldersSeen}}
	if unknownPersonal {
		inv.unknown.Categories = slices.Clone(unknownStoreCategories)
	}
	for i := range stores {
		s := stores[i]
		inv.byID[s.ID] = &s
		for _, a := range s.Aliases {
			inv.byID[a] = &s
		}
	}
	return inv
}

// Lookup finds a store by id or alias. For a store the inventory does not
// list it returns a description of an unknown store (known=false), with
// that id.
func (inv *Inventory) Lookup(id string) (s Store, known bool) {
	if inv != nil {
		if p, ok := inv.byID[id]; ok {
			return *p, true
		}
		s = inv.unknown
	} else {
		s = Store{Holders: HoldersSeen, Categories: slices.Clone(unknownStoreCategories)}
	}
	s.ID = id
	return s, false
}

// Stores lists the stores, each once, in no particular order.
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
	return out
}
