package rule

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// FuzzLoad checks, for any rule file, that loading never panics, and that
// it either compiles a set or rejects it with *LoadError values naming the
// file.
func FuzzLoad(f *testing.F) {
	seeds, _ := filepath.Glob("../../rules/*.yaml")
	for _, s := range seeds {
		if b, err := os.ReadFile(s); err == nil {
			f.Add(b)
		}
	}
	f.Add([]byte(goodRule))
	f.Add([]byte("format: 1\nrules:\n  - id: a\n  - id: a\n"))
	f.Add([]byte("format: 1\nid: x\nkind: [\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		rules, errs := parseFile("r.yaml", data)
		for _, err := range errs {
			var le *LoadError
			if !errors.As(err, &le) || le.File != "r.yaml" {
				t.Fatalf("error %v does not name the file", err)
			}
		}
		for _, r := range rules {
			if r.ID() == "" || r.Title() == "" || r.Severity() == "" || r.Where() == "" {
				t.Fatalf("an incomplete rule was accepted: %+v", r)
			}
		}
	})
}

// FuzzInventory is FuzzLoad for the data inventory.
func FuzzInventory(f *testing.F) {
	if b, err := os.ReadFile("../../rules/testdata/inventory.yaml"); err == nil {
		f.Add(b)
	}
	f.Add([]byte("format: 1\nstores:\n  - id: a\n    holders: list\n    tenants: [x]\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		inv, err := parseInventory("i.yaml", data)
		if err != nil {
			var le *LoadError
			if !errors.As(err, &le) {
				t.Fatalf("error %v is not a *LoadError", err)
			}
			return
		}
		for _, s := range inv.Stores() {
			if s.ID == "" {
				t.Fatal("a store without an id was accepted")
			}
		}
	})
}
