package rule

import (
	"fmt"
	"testing"
)

// TestIndexFindsEveryKey: the rules of every word are found, whether the
// index compares in turn (few words) or hashes (many), and nothing else.
func TestIndexFindsEveryKey(t *testing.T) {
	for _, n := range []int{1, 3, indexScan, indexScan + 1, 40} {
		var x index
		rules := map[string][]*Rule{}
		for i := range n {
			k := fmt.Sprintf("action-%d", i)
			for j := range i%3 + 1 {
				r := &Rule{id: fmt.Sprintf("%s/%d", k, j)}
				x.add(k, r)
				rules[k] = append(rules[k], r)
			}
		}
		for k, want := range rules {
			got := x.get(k)
			if len(got) != len(want) {
				t.Fatalf("n=%d: %s has %d rules, want %d", n, k, len(got), len(want))
			}
			for i := range want {
				if got[i] != want[i] {
					t.Fatalf("n=%d: %s rule %d is %s, want %s", n, k, i, got[i].id, want[i].id)
				}
			}
		}
		for _, k := range []string{"", "action-", "action-1x", "ACTION-1", fmt.Sprintf("action-%d", n)} {
			if got := x.get(k); got != nil {
				t.Fatalf("n=%d: %q finds %d rules", n, k, len(got))
			}
		}
	}
}
