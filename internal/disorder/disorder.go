// Package disorder lays out a generated day of demo traffic the ways input
// really arrives — keyed over partitions, one partition after another, as a
// backlog after an outage, shuffled — for the tests that check that
// detection and tracking do not depend on arrival order. Test support only.
package disorder

import (
	"fmt"
	"hash/fnv"
	"math/rand/v2"
	"slices"
	"sort"
	"time"

	"github.com/breachwatch/breachwatch/demo"
	"github.com/breachwatch/breachwatch/event"
)

// Partitions is how many partitions each topic has.
const Partitions = 4

// Item is one event of the day and the partition it was produced to.
type Item struct {
	Access *event.AccessEvent
	Config *event.ConfigChange
	Source string // as event.Clock names it: "kafka:access/2"
}

// Time is the event's time.
func (it Item) Time() time.Time {
	if it.Access != nil {
		return it.Access.Time
	}
	return it.Config.Time
}

// Day generates n events of demo traffic with its breach scenarios, evenly
// spread over span from start, and lays them out as Kafka would hold them:
// access events keyed by tenant over Partitions partitions, changes keyed by
// resource, each partition in time order. Items come in time order.
func Day(seed uint64, n int, start time.Time, span time.Duration) ([]Item, []demo.Injection) {
	g := demo.New(demo.Options{Seed: seed, Breach: true})
	step := span / time.Duration(n)
	var out []Item
	var b event.Batch
	for i := range n {
		b.Reset()
		g.Next(start.Add(time.Duration(i)*step), &b)
		for j := range b.Access {
			a := b.Access[j]
			out = append(out, Item{Access: &a, Source: Source("access", partition(a.Tenant))})
		}
		for j := range b.Config {
			c := b.Config[j]
			out = append(out, Item{Config: &c, Source: Source("config", partition(c.Resource.ID))})
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Time().Before(out[j].Time()) })
	return out, g.Injections()
}

// Source names partition p of a topic.
func Source(topic string, p int) string { return fmt.Sprintf("kafka:%s/%d", topic, p) }

// Sources are every partition of both topics.
func Sources() []string {
	var out []string
	for _, t := range []string{"access", "config"} {
		for p := range Partitions {
			out = append(out, Source(t, p))
		}
	}
	return out
}

func partition(key string) int {
	h := fnv.New32a()
	h.Write([]byte(key))
	return int(h.Sum32() % Partitions)
}

// PartitionAfterPartition is the day as a consumer reads a keyed backlog
// when it drains one partition after another.
func PartitionAfterPartition(items []Item) []Item {
	var out []Item
	for _, src := range Sources() {
		for _, it := range items {
			if it.Source == src {
				out = append(out, it)
			}
		}
	}
	return out
}

// Backlog is what a consumer reads after an outage: the redelivered
// uncommitted items, then the partitions in turns of chunk items.
func Backlog(redelivered, rest []Item, chunk int) []Item {
	out := slices.Clone(redelivered)
	queues := map[string][]Item{}
	for _, it := range rest {
		queues[it.Source] = append(queues[it.Source], it)
	}
	for len(queues) > 0 {
		for _, src := range Sources() {
			q := queues[src]
			n := min(len(q), chunk)
			out = append(out, q[:n]...)
			if q = q[n:]; len(q) == 0 {
				delete(queues, src)
			} else {
				queues[src] = q
			}
		}
	}
	return out
}

// Shuffled shuffles the items within each period (an hour, say).
func Shuffled(items []Item, seed uint64, period time.Duration) []Item {
	rng := rand.New(rand.NewPCG(seed, seed+1))
	out := slices.Clone(items)
	for lo := 0; lo < len(out); {
		p := out[lo].Time().Truncate(period)
		hi := lo
		for hi < len(out) && out[hi].Time().Truncate(period).Equal(p) {
			hi++
		}
		rng.Shuffle(hi-lo, func(i, j int) { out[lo+i], out[lo+j] = out[lo+j], out[lo+i] })
		lo = hi
	}
	return out
}

// Batches cuts items into batches of n, each with its partitions' clocks.
func Batches(items []Item, n int) []event.Batch {
	var out []event.Batch
	for i := 0; i < len(items); i += n {
		var b event.Batch
		for _, it := range items[i:min(i+n, len(items))] {
			if it.Access != nil {
				b.Access = append(b.Access, *it.Access)
			} else {
				b.Config = append(b.Config, *it.Config)
			}
			b.Observe(it.Source, it.Time())
		}
		out = append(out, b)
	}
	return out
}
