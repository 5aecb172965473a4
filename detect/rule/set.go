package rule

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/breachwatch/breachwatch/incident"
	"github.com/breachwatch/breachwatch/internal/yamlstrict"
)

// Set is a compiled rule set with the data inventory it was checked
// against. It is immutable and safe for concurrent use.
type Set struct {
	rules     []*Rule
	inventory *incident.Inventory
	version   string
	byAction  index   // access rules that need a given action
	anyAccess []*Rule // access rules that may match any action
	bySetting index
	anyConfig []*Rule
	maxWindow time.Duration
}

// Rules are the enabled rules, in file order.
func (s *Set) Rules() []*Rule { return slices.Clone(s.rules) }

// Len is the number of enabled rules.
func (s *Set) Len() int { return len(s.rules) }

// Version is a hash of every rule file and the inventory.
func (s *Set) Version() string { return s.version }

// Inventory is the data inventory.
func (s *Set) Inventory() *incident.Inventory { return s.inventory }

// MaxWindow is the longest window of any rule: how much of the stream a
// restart replays to warm the windows.
func (s *Set) MaxWindow() time.Duration { return s.maxWindow }

// ForAccess lists the rules an access event with this action can match,
// without allocating: the rules that need that action, then those that
// take any. Callers must not modify the slices.
func (s *Set) ForAccess(action string) (specific, any []*Rule) {
	return s.byAction.get(action), s.anyAccess
}

// ForConfig is ForAccess for configuration changes and their setting.
func (s *Set) ForConfig(setting string) (specific, any []*Rule) {
	return s.bySetting.get(setting), s.anyConfig
}

// Rule finds a rule by id.
func (s *Set) Rule(id string) *Rule {
	for _, r := range s.rules {
		if r.id == id {
			return r
		}
	}
	return nil
}

// LoadError is a problem in a rule or inventory file.
type LoadError struct {
	File  string
	Line  int
	Field string // dotted path in the file, e.g. rules[2].threshold.window
	Msg   string
}

func (e *LoadError) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		b.WriteString(":" + strconv.Itoa(e.Line))
	}
	b.WriteString(": ")
	if e.Field != "" {
		b.WriteString(e.Field + ": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// Load compiles the rule files (*.yaml, *.yml) directly in dir against the
// inventory. Any error rejects the whole set: the errors returned (joined)
// each name the file, line and field.
func Load(dir string, inv *incident.Inventory) (*Set, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("rules: %w", err)
	}
	var files []string
	for _, e := range entries {
		if n := e.Name(); !e.IsDir() && (strings.HasSuffix(n, ".yaml") || strings.HasSuffix(n, ".yml")) {
			files = append(files, filepath.Join(dir, n))
		}
	}
	sort.Strings(files)
	return LoadFiles(files, inv)
}

// LoadFiles is Load for a list of files.
func LoadFiles(files []string, inv *incident.Inventory) (*Set, error) {
	h := sha256.New()
	set := &Set{inventory: inv}
	var errs []error
	where := map[string]string{} // rule id → file:line
	for _, path := range files {
		data, err := os.ReadFile(path)
		if err != nil {
			errs = append(errs, fmt.Errorf("rules: %w", err))
			continue
		}
		h.Write([]byte(path))
		h.Write(data)
		rules, ferrs := parseFile(path, data)
		errs = append(errs, ferrs...)
		for _, r := range rules {
			if prev, dup := where[r.id]; dup {
				errs = append(errs, &LoadError{File: r.file, Line: r.line, Field: "id", Msg: fmt.Sprintf("rule %q is already defined at %s", r.id, prev)})
				continue
			}
			where[r.id] = r.Where()
			set.add(r)
		}
	}
	if len(files) == 0 {
		errs = append(errs, errors.New("rules: no rule files (*.yaml)"))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	if inv != nil {
		h.Write([]byte(fmt.Sprintf("%v", inv.Stores())))
	}
	set.version = hex.EncodeToString(h.Sum(nil)[:8])
	return set, nil
}

func (s *Set) add(r *Rule) {
	s.rules = append(s.rules, r)
	s.maxWindow = max(s.maxWindow, r.window)
	if r.source == SourceAccess {
		if r.actions == nil {
			s.anyAccess = append(s.anyAccess, r)
		}
		for _, a := range r.actions {
			s.byAction.add(a, r)
		}
		return
	}
	if r.settings == nil {
		s.anyConfig = append(s.anyConfig, r)
	}
	for _, st := range r.settings {
		s.bySetting.add(st, r)
	}
}

// index lists rules by a word (an action, a setting). It is looked up
// once per event: a rule set names a handful of actions, so they are
// compared in turn (short strings of different lengths mostly differ at
// the length) rather than hashed, unless there are many.
type index struct {
	keys  []string
	rules [][]*Rule
	many  map[string][]*Rule // when there are more than indexScan keys
}

const indexScan = 16

func (x *index) add(k string, r *Rule) {
	if i := slices.Index(x.keys, k); i >= 0 {
		x.rules[i] = append(x.rules[i], r)
	} else {
		x.keys, x.rules = append(x.keys, k), append(x.rules, []*Rule{r})
	}
	if len(x.keys) > indexScan {
		x.many = make(map[string][]*Rule, len(x.keys))
		for i, k := range x.keys {
			x.many[k] = x.rules[i]
		}
	}
}

func (x *index) get(k string) []*Rule {
	if x.many != nil {
		return x.many[k]
	}
	for i := range x.keys {
		if x.keys[i] == k {
			return x.rules[i]
		}
	}
	return nil
}

// parseFile decodes and compiles one rule file.
func parseFile(path string, data []byte) ([]*Rule, []error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, []error{yamlError(path, err)}
	}
	if len(doc.Content) == 0 {
		return nil, []error{&LoadError{File: path, Msg: "empty file"}}
	}
	root := doc.Content[0]
	lines := yamlstrict.Lines(root)
	var f File
	if err := yamlstrict.Decode(root, &f, nil); err != nil {
		return nil, []error{loadError(path, err)}
	}
	if f.Format != Format {
		return nil, []error{&LoadError{File: path, Line: lines["format"], Field: "format",
			Msg: fmt.Sprintf("want %d (the rule-file format this breachwatch reads); got %d", Format, f.Format)}}
	}
	specs, prefix := f.Rules, "rules"
	single := f.Spec.ID != "" || f.Spec.Title != "" || f.Spec.Condition != "" || f.Spec.Kind != ""
	switch {
	case single && len(f.Rules) > 0:
		return nil, []error{&LoadError{File: path, Line: lines["rules"], Field: "rules",
			Msg: "a file holds one rule at the top level or a list under rules, not both"}}
	case single:
		specs, prefix = []Spec{f.Spec}, ""
	case len(f.Rules) == 0:
		return nil, []error{&LoadError{File: path, Msg: "no rule: give one at the top level or a list under rules"}}
	}
	var rules []*Rule
	var errs []error
	for i := range specs {
		base := prefix
		if prefix != "" {
			base = fmt.Sprintf("%s[%d]", prefix, i)
		}
		if s := &specs[i]; s.Enabled != nil && !*s.Enabled {
			continue
		}
		r, err := compile(&specs[i])
		if err != nil {
			var fe *fieldError
			if errors.As(err, &fe) {
				field := strings.TrimPrefix(base+"."+fe.path, ".")
				errs = append(errs, &LoadError{File: path, Line: lineOf(lines, field), Field: field, Msg: fe.msg})
			} else {
				errs = append(errs, &LoadError{File: path, Line: lines[base], Msg: err.Error()})
			}
			continue
		}
		r.file, r.line = path, lines[strings.TrimPrefix(base+".id", ".")]
		rules = append(rules, r)
	}
	return rules, errs
}

// lineOf is the line of a field, or of the nearest enclosing one that is
// written (a missing field is reported where its parent is).
func lineOf(lines map[string]int, field string) int {
	for {
		if l, ok := lines[field]; ok {
			return l
		}
		i := strings.LastIndexAny(field, ".[")
		if i < 0 {
			return lines[""]
		}
		field = field[:i]
	}
}

func loadError(path string, err error) error {
	var ye *yamlstrict.Error
	if errors.As(err, &ye) {
		return &LoadError{File: path, Line: ye.Line, Field: ye.Path, Msg: ye.Msg}
	}
	return yamlError(path, err)
}

func yamlError(path string, err error) error {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	line := 0
	if rest, ok := strings.CutPrefix(msg, "line "); ok {
		if n, after, ok := strings.Cut(rest, ": "); ok {
			if l, err := strconv.Atoi(n); err == nil {
				line, msg = l, after
			}
		}
	}
	return &LoadError{File: path, Line: line, Msg: msg}
}

// LoadInventory reads the data inventory. An empty path gives the
// inventory of a deployment that has not described its stores: every
// store is taken to hold personal data of the tenants seen on it.
func LoadInventory(path string) (*incident.Inventory, error) {
	if path == "" {
		return incident.NewInventory(nil, true), nil
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("inventory: %w", err)
	}
	return parseInventory(path, data)
}

// parseInventory decodes and checks an inventory file's contents.
func parseInventory(path string, data []byte) (*incident.Inventory, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, yamlError(path, err)
	}
	if len(doc.Content) == 0 {
		return nil, &LoadError{File: path, Msg: "empty file"}
	}
	root := doc.Content[0]
	lines := yamlstrict.Lines(root)
	var f InventoryFile
	if err := yamlstrict.Decode(root, &f, nil); err != nil {
		return nil, loadError(path, err)
	}
	fail := func(field, format string, args ...any) error {
		return &LoadError{File: path, Line: lineOf(lines, field), Field: field, Msg: fmt.Sprintf(format, args...)}
	}
	if f.Format != Format {
		return nil, fail("format", "want %d; got %d", Format, f.Format)
	}
	unknownPersonal := true
	switch f.UnknownStores {
	case "", "personal":
	case "none":
		unknownPersonal = false
	default:
		return nil, fail("unknown_stores", "want personal or none; got %q", f.UnknownStores)
	}
	seen := map[string]string{}
	stores := make([]incident.Store, 0, len(f.Stores))
	for i, s := range f.Stores {
		at := fmt.Sprintf("stores[%d]", i)
		if s.ID == "" {
			return nil, fail(at+".id", "required")
		}
		for _, id := range append([]string{s.ID}, s.Aliases...) {
			if prev, dup := seen[id]; dup {
				return nil, fail(at, "%q is already used by %s", id, prev)
			}
			seen[id] = at
		}
		holders := s.Holders
		switch holders {
		case "":
			holders = incident.HoldersSeen
		case incident.HoldersAll, incident.HoldersSeen:
		case incident.HoldersList:
			if len(s.Tenants) == 0 {
				return nil, fail(at+".tenants", "holders: list needs the tenants")
			}
		default:
			return nil, fail(at+".holders", "want all, list or seen; got %q", s.Holders)
		}
		if len(s.Tenants) > 0 && holders != incident.HoldersList {
			return nil, fail(at+".tenants", "tenants go with holders: list")
		}
		for j, c := range s.Categories {
			if strings.TrimSpace(c) == "" {
				return nil, fail(fmt.Sprintf("%s.categories[%d]", at, j), "must not be empty")
			}
		}
		stores = append(stores, incident.Store{ID: s.ID, Description: s.Description, Categories: s.Categories,
			Holders: holders, Tenants: s.Tenants, Public: s.Public, Aliases: s.Aliases})
	}
	return incident.NewInventory(stores, unknownPersonal), nil
}

// Files lists the rule files in dir, for watching it.
func Files(dir string) ([]fs.FileInfo, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var out []fs.FileInfo
	for _, e := range entries {
		if n := e.Name(); !e.IsDir() && (strings.HasSuffix(n, ".yaml") || strings.HasSuffix(n, ".yml")) {
			if fi, err := e.Info(); err == nil {
				out = append(out, fi)
			}
		}
	}
	return out, nil
}
