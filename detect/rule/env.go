package rule

import (
	"encoding/json"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/expr-lang/expr"

	"github.com/breachwatch/breachwatch/event"
	"github.com/breachwatch/breachwatch/incident"
)

// StoreInfo is what a condition sees of the data store an event concerns,
// from the data inventory (as `store`).
type StoreInfo struct {
	ID         string   `expr:"id"`
	Known      bool     `expr:"known"`      // listed in the inventory
	Personal   bool     `expr:"personal"`   // holds personal data
	Public     bool     `expr:"public"`     // meant to be public
	Categories []string `expr:"categories"` // personal-data categories it holds
}

// NewStoreInfo describes store id from the inventory.
func NewStoreInfo(inv *incident.Inventory, id string) StoreInfo {
	s, known := inv.Lookup(id)
	return storeInfo(s, known)
}

// NewResourceStoreInfo describes the store of a configuration change's
// resource: found in the inventory by resource.store, else by
// resource.id (see incident.Inventory.LookupResource).
func NewResourceStoreInfo(inv *incident.Inventory, r event.ConfigResource) StoreInfo {
	s, known := inv.LookupResource(r.Store, r.ID)
	return storeInfo(s, known)
}

func storeInfo(s incident.Store, known bool) StoreInfo {
	return StoreInfo{ID: s.ID, Known: known, Personal: s.Personal(), Public: s.Public, Categories: s.Categories}
}

// AccessEnv is what an access-event condition sees: the event's fields by
// their wire names (id, time, tenant, actor.id, actor.type, actor.tenant,
// actor.groups, action, resource.type, resource.id, resource.store,
// records, categories, outcome, source_ip, country, user_agent,
// request_id) and store.
type AccessEnv struct {
	*event.AccessEvent
	Store StoreInfo `expr:"store"`
}

// ConfigEnv is what a configuration-change condition sees: id, time,
// resource.{id,type,store,provider,region}, setting, before and after (the
// values, decoded from JSON: bool, string, float64, list, map or nil),
// actor.{id,type,tenant,groups} (empty when unknown), source, and store.
type ConfigEnv struct {
	ID       string               `expr:"id"`
	Time     time.Time            `expr:"time"`
	Resource event.ConfigResource `expr:"resource"`
	Setting  string               `expr:"setting"`
	Before   any                  `expr:"before"`
	After    any                  `expr:"after"`
	Actor    event.Actor          `expr:"actor"`
	Source   string               `expr:"source"`
	Store    StoreInfo            `expr:"store"`
}

// SafeEnv is what an exposure rule's safe expression sees: the value of
// the setting (before or after the change), the setting and the resource.
type SafeEnv struct {
	Value    any                  `expr:"value"`
	Setting  string               `expr:"setting"`
	Resource event.ConfigResource `expr:"resource"`
}

// NewConfigEnv builds the environment of a change. Values that are not
// valid JSON (which the decoder never lets through) read as nil.
func NewConfigEnv(c *event.ConfigChange, inv *incident.Inventory) *ConfigEnv {
	env := &ConfigEnv{ID: c.ID, Time: c.Time, Resource: c.Resource, Setting: c.Setting, Source: c.Source,
		Before: jsonValue(c.Before), After: jsonValue(c.After), Store: NewResourceStoreInfo(inv, c.Resource)}
	if c.Actor != nil {
		env.Actor = *c.Actor
	}
	return env
}

func jsonValue(raw json.RawMessage) any {
	if len(raw) == 0 {
		return nil
	}
	var v any
	if json.Unmarshal(raw, &v) != nil {
		return nil
	}
	return v
}

// functions are the helpers conditions may call, with their signatures (so
// that a call with wrong arguments fails at load).
func functions() []expr.Option {
	return []expr.Option{
		expr.Function("in_cidr", func(p ...any) (any, error) {
			pfx, err := netip.ParsePrefix(p[1].(string))
			if err != nil {
				return nil, err
			}
			a := addrOf(p[0])
			return a.IsValid() && pfx.Contains(a.Unmap()), nil
		}, new(func(netip.Addr, string) bool), new(func(string, string) bool)),
		expr.Function("is_private", func(p ...any) (any, error) {
			a := addrOf(p[0])
			return a.IsValid() && (a.IsPrivate() || a.IsLoopback() || a.IsLinkLocalUnicast()), nil
		}, new(func(netip.Addr) bool), new(func(string) bool)),
		expr.Function("tls_version", func(p ...any) (any, error) { return TLSVersion(p[0]), nil }, new(func(any) float64)),
		expr.Function("public_cidr", func(p ...any) (any, error) {
			s, _ := p[0].(string)
			return s == "0.0.0.0/0" || s == "::/0", nil
		}, new(func(any) bool)),
		expr.Function("json", func(p ...any) (any, error) {
			b, err := json.Marshal(p[0]) // maps marshal with sorted keys: one text per value
			return string(b), err
		}, new(func(any) string)),
		expr.Function("opens_port", func(p ...any) (any, error) {
			ports, _ := p[1].([]any)
			return opensPort(p[0], ports), nil
		}, new(func(any, []any) bool)),
	}
}

func addrOf(v any) netip.Addr {
	switch a := v.(type) {
	case netip.Addr:
		return a
	case string:
		addr, _ := netip.ParseAddr(a)
		return addr
	}
	return netip.Addr{}
}

// TLSVersion reads a TLS version as a number: "1.2", "TLSv1.2", "TLS1_2",
// "tls1.3", 1.2 → 1.2, 1.3. "off", "none", false and nil read as 0 (no
// TLS); anything it cannot read is 0 too, which is the safe reading for a
// minimum version.
func TLSVersion(v any) float64 {
	switch x := v.(type) {
	case float64:
		return x
	case int:
		return float64(x)
	case string:
		s := strings.ToLower(strings.TrimSpace(x))
		s = strings.TrimPrefix(strings.TrimPrefix(strings.TrimPrefix(s, "tlsv"), "tls"), "v")
		s = strings.ReplaceAll(strings.TrimPrefix(s, "_"), "_", ".")
		f, err := strconv.ParseFloat(s, 64)
		if err != nil {
			return 0
		}
		return f
	}
	return 0
}

// opensPort reports whether an ingress value ({"cidr", "protocol",
// "from_port", "to_port"}) lets any of ports in.
func opensPort(v any, ports []any) bool {
	m, ok := v.(map[string]any)
	if !ok {
		return false
	}
	from, _ := m["from_port"].(float64)
	to, ok := m["to_port"].(float64)
	if !ok {
		to = 65535
	}
	for _, p := range ports {
		var n float64
		switch x := p.(type) {
		case int:
			n = float64(x)
		case float64:
			n = x
		default:
			continue
		}
		if from <= n && n <= to {
			return true
		}
	}
	return false
}

// An accessor reads one field of an event as text, for group_by,
// exceptions and distinct counts.
type accessor[E any] func(*E) string

// appendField appends a field of an access event to dst without
// allocating where the field is already text.
type appendField func(dst []byte, e *event.AccessEvent) []byte

func appenderOf(name string, get accessor[event.AccessEvent]) appendField {
	if name == "source_ip" {
		return func(dst []byte, e *event.AccessEvent) []byte {
			if e.SourceIP.IsValid() {
				return e.SourceIP.AppendTo(dst)
			}
			return dst
		}
	}
	return func(dst []byte, e *event.AccessEvent) []byte { return append(dst, get(e)...) }
}

// accessFields are the fields of an access event rules may group by or
// list in exceptions.
func accessFields() map[string]accessor[event.AccessEvent] {
	return map[string]accessor[event.AccessEvent]{
		"id":             func(e *event.AccessEvent) string { return e.ID },
		"tenant":         func(e *event.AccessEvent) string { return e.Tenant },
		"actor.id":       func(e *event.AccessEvent) string { return e.Actor.ID },
		"actor.type":     func(e *event.AccessEvent) string { return e.Actor.Type },
		"actor.tenant":   func(e *event.AccessEvent) string { return e.Actor.Tenant },
		"action":         func(e *event.AccessEvent) string { return e.Action },
		"resource.type":  func(e *event.AccessEvent) string { return e.Resource.Type },
		"resource.id":    func(e *event.AccessEvent) string { return e.Resource.ID },
		"resource.store": func(e *event.AccessEvent) string { return e.Resource.Store },
		"outcome":        func(e *event.AccessEvent) string { return e.Outcome },
		"source_ip": func(e *event.AccessEvent) string {
			if e.SourceIP.IsValid() {
				return e.SourceIP.String()
			}
			return ""
		},
		"country":    func(e *event.AccessEvent) string { return e.Country },
		"user_agent": func(e *event.AccessEvent) string { return e.UserAgent },
		"request_id": func(e *event.AccessEvent) string { return e.RequestID },
	}
}

// configFields are the fields of a configuration change rules may group by
// or list in exceptions.
func configFields() map[string]accessor[event.ConfigChange] {
	actor := func(c *event.ConfigChange) event.Actor {
		if c.Actor == nil {
			return event.Actor{}
		}
		return *c.Actor
	}
	return map[string]accessor[event.ConfigChange]{
		"id":                func(c *event.ConfigChange) string { return c.ID },
		"resource.id":       func(c *event.ConfigChange) string { return c.Resource.ID },
		"resource.type":     func(c *event.ConfigChange) string { return c.Resource.Type },
		"resource.store":    func(c *event.ConfigChange) string { return c.Resource.Store },
		"resource.provider": func(c *event.ConfigChange) string { return c.Resource.Provider },
		"resource.region":   func(c *event.ConfigChange) string { return c.Resource.Region },
		"setting":           func(c *event.ConfigChange) string { return c.Setting },
		"actor.id":          func(c *event.ConfigChange) string { return actor(c).ID },
		"actor.type":        func(c *event.ConfigChange) string { return actor(c).Type },
		"source":            func(c *event.ConfigChange) string { return c.Source },
	}
}

func fieldNames[E any](m map[string]accessor[E]) string {
	names := make([]string, 0, len(m))
	for n := range m {
		names = append(names, n)
	}
	slices.Sort(names)
	return strings.Join(names, ", ")
}
