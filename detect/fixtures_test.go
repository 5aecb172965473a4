package detect

import (
	"strings"
	"testing"

	"github.com/breachwatch/breachwatch/detect/rule"
)

// TestRuleFixtures runs rules/testdata: every default rule against its
// positive and negative cases.
func TestRuleFixtures(t *testing.T) {
	inv, err := rule.LoadInventory("../rules/testdata/inventory.yaml")
	if err != nil {
		t.Fatal(err)
	}
	set, err := rule.Load("../rules", inv)
	if err != nil {
		t.Fatal(err)
	}
	results, err := RunFixtures("../rules/testdata", set)
	if err != nil {
		t.Error(err)
	}
	for _, r := range results {
		t.Run(r.Rule+"/"+r.Case, func(t *testing.T) {
			if len(r.Problems) > 0 {
				t.Error(strings.Join(r.Problems, "\n"))
			}
		})
	}
}
