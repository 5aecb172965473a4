package rule

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/ast"
	"github.com/expr-lang/expr/vm"

	"github.com/breachwatch/breachwatch/event"
	"github.com/breachwatch/breachwatch/incident"
)

// Sources of events.
const (
	SourceAccess = "access"
	SourceConfig = "config"
)

// Aggregates of threshold rules.
const (
	AggCount    = "count"
	AggSum      = "sum(records)"
	AggDistinct = "distinct"
)

// Rule is a compiled rule. It is immutable and safe for concurrent use
// (evaluation state lives in an Evaluator).
type Rule struct {
	id, title, description, severity, source, kind, affected, version string
	tags                                                              []string
	file                                                              string
	line                                                              int

	cond       *vm.Program
	exceptions []exception
	groupBy    []string
	incidentBy []bool // per group_by field: part of the incident key
	accessKey  []appendField
	accessGet  []accessor[event.AccessEvent]
	configKey  []accessor[event.ConfigChange]
	pre        []prefilter // conjuncts of the condition checked natively first
	covered    bool        // pre is the whole condition

	agg        string                      // threshold aggregate
	distinct   accessor[event.AccessEvent] // for distinct(FIELD)
	window     time.Duration               // threshold and sequence
	atLeast    int64                       // threshold
	steps      []step                      // sequence
	safe       *vm.Program                 // exposure baseline
	per        *vm.Program                 // exposure: the part of the setting (nil: all of it)
	actions    []string                    // the actions the rule can match (nil: any)
	settings   []string                    // the settings the rule can match (nil: any)
	alwaysTrue bool                        // a sequence without a condition
}

type exception struct {
	name      string
	access    []accessor[event.AccessEvent]
	config    []accessor[event.ConfigChange]
	values    map[string]bool // tuples joined with \x00
	condition *vm.Program
}

type step struct {
	name    string
	cond    *vm.Program
	atLeast int64
	actions []string
	pre     []prefilter
	covered bool // pre is the whole condition
}

// ID and the rest describe the rule.
func (r *Rule) ID() string          { return r.id }
func (r *Rule) Title() string       { return r.title }
func (r *Rule) Description() string { return r.description }
func (r *Rule) Severity() string    { return r.severity }
func (r *Rule) Source() string      { return r.source }
func (r *Rule) Kind() string        { return r.kind }
func (r *Rule) Tags() []string      { return slices.Clone(r.tags) }
func (r *Rule) GroupBy() []string   { return slices.Clone(r.groupBy) }

// Affected is incident.ScopeTenants or incident.ScopeStore.
func (r *Rule) Affected() string { return r.affected }

// Version is a hash of the rule's definition: it changes when the rule does.
func (r *Rule) Version() string { return r.version }

// Where is the file and line that defines the rule.
func (r *Rule) Where() string { return r.file + ":" + strconv.Itoa(r.line) }

// Window is the rule's window (threshold, sequence); 0 for the others.
func (r *Rule) Window() time.Duration { return r.window }

// Threshold describes a threshold rule: the aggregate and the bound.
func (r *Rule) Threshold() (aggregate string, atLeast int64) { return r.agg, r.atLeast }

// Steps is the number of steps of a sequence rule.
func (r *Rule) Steps() int { return len(r.steps) }

// StepName names step i.
func (r *Rule) StepName(i int) string { return r.steps[i].name }

// StepAtLeast is how many events step i needs.
func (r *Rule) StepAtLeast(i int) int64 { return r.steps[i].atLeast }

// Evaluator evaluates rules. It holds reusable evaluation state, so it is
// not safe for concurrent use: use one per goroutine.
type Evaluator struct {
	vm vm.VM
}

func (ev *Evaluator) run(p *vm.Program, env any) (bool, error) {
	out, err := ev.vm.Run(p, env)
	if err != nil {
		return false, err
	}
	b, _ := out.(bool)
	return b, nil
}

// MatchAccess reports whether an access event meets the rule's condition
// and none of its exceptions. For a sequence rule it reports the condition
// only (see StepAccess).
func (r *Rule) MatchAccess(ev *Evaluator, env *AccessEnv) (bool, error) {
	if r.source != SourceAccess {
		return false, nil
	}
	for i := range r.pre {
		if !r.pre[i].access(env.AccessEvent) {
			return false, nil
		}
	}
	if !r.alwaysTrue && !r.covered {
		ok, err := ev.run(r.cond, env)
		if err != nil || !ok {
			return false, err
		}
	}
	for i := range r.exceptions {
		x := &r.exceptions[i]
		if x.values != nil && x.values[joinAccess(x.access, env.AccessEvent)] {
			return false, nil
		}
		if x.condition != nil {
			if ok, err := ev.run(x.condition, env); err != nil || ok {
				return false, err
			}
		}
	}
	return true, nil
}

// MatchConfig is MatchAccess for configuration changes.
func (r *Rule) MatchConfig(ev *Evaluator, env *ConfigEnv, c *event.ConfigChange) (bool, error) {
	if r.source != SourceConfig {
		return false, nil
	}
	for i := range r.pre {
		if !r.pre[i].config(c) {
			return false, nil
		}
	}
	if !r.alwaysTrue && !r.covered {
		ok, err := ev.run(r.cond, env)
		if err != nil || !ok {
			return false, err
		}
	}
	for i := range r.exceptions {
		x := &r.exceptions[i]
		if x.values != nil && x.values[joinConfig(x.config, c)] {
			return false, nil
		}
		if x.condition != nil {
			if ok, err := ev.run(x.condition, env); err != nil || ok {
				return false, err
			}
		}
	}
	return true, nil
}

// StepAccess reports whether an access event meets step i of a sequence.
func (r *Rule) StepAccess(ev *Evaluator, env *AccessEnv, i int) (bool, error) {
	for j := range r.steps[i].pre {
		if !r.steps[i].pre[j].access(env.AccessEvent) {
			return false, nil
		}
	}
	if r.steps[i].covered {
		return true, nil
	}
	return ev.run(r.steps[i].cond, env)
}

// Safe reports whether value is a safe value of the setting an exposure
// rule watches.
func (r *Rule) Safe(ev *Evaluator, value any, c *event.ConfigChange) (bool, error) {
	return ev.run(r.safe, &SafeEnv{Value: value, Setting: c.Setting, Resource: c.Resource})
}

// Per names the part of the setting a change of an exposure rule is
// about (see ExposureSpec.Per): "" when the rule has no per expression.
// value is the value after the change, or before it when after is null.
func (r *Rule) Per(ev *Evaluator, value any, c *event.ConfigChange) (string, error) {
	if r.per == nil {
		return "", nil
	}
	out, err := ev.vm.Run(r.per, &SafeEnv{Value: value, Setting: c.Setting, Resource: c.Resource})
	if err != nil {
		return "", err
	}
	s, _ := out.(string)
	return s, nil
}

// HasPer reports whether an exposure rule keys its windows by a part of
// the setting.
func (r *Rule) HasPer() bool { return r.per != nil }

// GroupKeyAccess is the group an access event falls in: the group_by
// fields and their values, e.g. "actor.id=u-1".
func (r *Rule) GroupKeyAccess(e *event.AccessEvent) string {
	return string(r.AppendGroupKey(nil, e))
}

// AppendGroupKey appends the group key of an access event to dst.
func (r *Rule) AppendGroupKey(dst []byte, e *event.AccessEvent) []byte {
	for i, f := range r.accessKey {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = append(dst, r.groupBy[i]...)
		dst = append(dst, '=')
		n := len(dst)
		if dst = f(dst, e); bytes.ContainsAny(dst[n:], keySpecial) {
			dst = appendKeyValue(dst[:n], string(dst[n:]))
		}
	}
	return dst
}

// compileIncidentBy checks incident_by (a subset of group_by) or takes
// the kind's default.
func (r *Rule) compileIncidentBy(s *Spec) error {
	by := s.IncidentBy
	if by == nil {
		switch {
		case s.Kind == incident.KindExposure && slices.Contains(r.groupBy, "resource.id"):
			by = []string{"resource.id"}
		case s.Source == SourceAccess:
			by = slices.DeleteFunc(slices.Clone(r.groupBy), func(f string) bool { return f == "tenant" })
		default:
			by = r.groupBy
		}
	}
	r.incidentBy = make([]bool, len(r.groupBy))
	for i, f := range by {
		j := slices.Index(r.groupBy, f)
		if j < 0 {
			return bad(fmt.Sprintf("incident_by[%d]", i), "%q is not one of group_by (%s)", f, strings.Join(r.groupBy, ", "))
		}
		r.incidentBy[j] = true
	}
	return nil
}

// IncidentKey is the part of a group key (as GroupKeyAccess or
// GroupKeyConfig make it) that makes one incident: the incident_by fields
// and their values, escaped alike.
func (r *Rule) IncidentKey(groupKey string) string {
	if !slices.Contains(r.incidentBy, false) {
		return groupKey
	}
	var out []string
	field, start, escaped := 0, 0, false
	for i := 0; i <= len(groupKey); i++ {
		switch {
		case i == len(groupKey) || (!escaped && groupKey[i] == ','):
			if field < len(r.incidentBy) && r.incidentBy[field] {
				out = append(out, groupKey[start:i])
			}
			field, start = field+1, i+1
		case escaped:
			escaped = false
		case groupKey[i] == '\\':
			escaped = true
		}
	}
	if len(out) == 0 {
		return "*" // every group of the rule is one incident
	}
	return strings.Join(out, ",")
}

// keySpecial are the characters a group key's values escape with a
// backslash, so that no value can pose as another field (an actor id
// "u-1,tenant=cust-7" is not the actor "u-1" of tenant "cust-7"). Values
// without them — nearly all — appear as they are.
const keySpecial = `,=\`

func appendKeyValue(dst []byte, v string) []byte {
	for i := 0; i < len(v); i++ {
		if strings.IndexByte(keySpecial, v[i]) >= 0 {
			dst = append(dst, '\\')
		}
		dst = append(dst, v[i])
	}
	return dst
}

// GroupValues are the values of an access event's group_by fields.
func (r *Rule) GroupValues(e *event.AccessEvent) []event.FieldValue {
	out := make([]event.FieldValue, len(r.accessGet))
	for i, get := range r.accessGet {
		out[i] = event.FieldValue{Field: r.groupBy[i], Value: get(e)}
	}
	return out
}

// GroupKeyConfig is GroupKeyAccess for configuration changes.
func (r *Rule) GroupKeyConfig(c *event.ConfigChange) string {
	var b strings.Builder
	for i, f := range r.configKey {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(r.groupBy[i])
		b.WriteByte('=')
		if v := f(c); strings.ContainsAny(v, keySpecial) {
			b.Write(appendKeyValue(nil, v))
		} else {
			b.WriteString(v)
		}
	}
	return b.String()
}

// DistinctValue is the value a distinct(FIELD) threshold counts.
func (r *Rule) DistinctValue(e *event.AccessEvent) string {
	if r.distinct == nil {
		return ""
	}
	return r.distinct(e)
}

func joinAccess(fs []accessor[event.AccessEvent], e *event.AccessEvent) string {
	if len(fs) == 1 {
		return fs[0](e)
	}
	parts := make([]string, len(fs))
	for i, f := range fs {
		parts[i] = f(e)
	}
	return strings.Join(parts, "\x00")
}

func joinConfig(fs []accessor[event.ConfigChange], c *event.ConfigChange) string {
	parts := make([]string, len(fs))
	for i, f := range fs {
		parts[i] = f(c)
	}
	return strings.Join(parts, "\x00")
}

// fieldError is a compile error about one field of a spec; the loader adds
// the file and line.
type fieldError struct {
	path string // relative to the rule, e.g. "threshold.window"
	msg  string
}

func (e *fieldError) Error() string { return e.path + ": " + e.msg }

func bad(path, format string, args ...any) *fieldError {
	return &fieldError{path: path, msg: fmt.Sprintf(format, args...)}
}

var idPattern = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{1,62}$`)

func oneOf(path, got string, set ...string) *fieldError {
	return bad(path, "want one of %s; got %q", strings.Join(set, ", "), got)
}

// compile turns a spec into a rule. Errors are *fieldError.
func compile(s *Spec) (*Rule, error) {
	r := &Rule{id: s.ID, title: s.Title, description: s.Description, severity: s.Severity, source: s.Source,
		kind: s.Kind, tags: slices.Clone(s.Tags)}
	switch {
	case s.ID == "":
		return nil, bad("id", "required")
	case !idPattern.MatchString(s.ID):
		return nil, bad("id", "use 2 to 63 lower-case letters, digits and dashes; got %q", s.ID)
	case s.Title == "":
		return nil, bad("title", "required")
	}
	switch s.Severity {
	case incident.SeverityCritical, incident.SeverityHigh, incident.SeverityMedium, incident.SeverityLow:
	case "":
		return nil, bad("severity", "required")
	default:
		return nil, oneOf("severity", s.Severity, "critical", "high", "medium", "low")
	}
	switch s.Source {
	case SourceAccess, SourceConfig:
	case "":
		return nil, bad("source", "required")
	default:
		return nil, oneOf("source", s.Source, SourceAccess, SourceConfig)
	}
	kinds := []string{incident.KindMatch, incident.KindThreshold, incident.KindSequence}
	if s.Source == SourceConfig {
		kinds = []string{incident.KindMatch, incident.KindExposure}
	}
	if s.Kind == "" {
		return nil, bad("kind", "required")
	}
	if !slices.Contains(kinds, s.Kind) {
		return nil, bad("kind", "for source %s want one of %s; got %q", s.Source, strings.Join(kinds, ", "), s.Kind)
	}
	for i, t := range s.Tags {
		if strings.TrimSpace(t) == "" {
			return nil, bad(fmt.Sprintf("tags[%d]", i), "must not be empty")
		}
	}
	r.affected = s.Affected
	if r.affected == "" {
		r.affected = incident.ScopeTenants
		if s.Source == SourceConfig {
			r.affected = incident.ScopeStore
		}
	}
	if r.affected != incident.ScopeTenants && r.affected != incident.ScopeStore {
		return nil, oneOf("affected", r.affected, incident.ScopeTenants, incident.ScopeStore)
	}
	if s.Source == SourceConfig && r.affected == incident.ScopeTenants {
		return nil, bad("affected", "a configuration change touches no tenant's data itself; use store")
	}

	// Only the block of the rule's own kind may be there.
	blocks := map[string]bool{incident.KindThreshold: s.Threshold != nil, incident.KindSequence: s.Sequence != nil,
		incident.KindExposure: s.Exposure != nil}
	for k, present := range blocks {
		if present && k != s.Kind {
			return nil, bad(k, "only a %s rule has a %s block", k, k)
		}
		if !present && k == s.Kind {
			return nil, bad(k, "a %s rule needs a %s block", k, k)
		}
	}

	env := any(AccessEnv{})
	if s.Source == SourceConfig {
		env = ConfigEnv{}
	}
	if s.Kind == incident.KindSequence && s.Condition == "" {
		r.alwaysTrue = true
	} else {
		p, err := compileExpr("condition", s.Condition, env)
		if err != nil {
			return nil, err
		}
		r.cond = p
		r.actions, r.settings = indexHints(p.Node(), s.Source)
	}

	for i, x := range s.Exceptions {
		e, err := compileException(fmt.Sprintf("exceptions[%d]", i), &x, s.Source, env)
		if err != nil {
			return nil, err
		}
		r.exceptions = append(r.exceptions, e)
	}

	r.groupBy = slices.Clone(s.GroupBy)
	if s.Kind == incident.KindExposure && len(r.groupBy) == 0 {
		r.groupBy = []string{"resource.id", "setting"}
	}
	for i, f := range r.groupBy {
		path := fmt.Sprintf("group_by[%d]", i)
		if s.Source == SourceAccess {
			a, ok := accessFields()[f]
			if !ok {
				return nil, bad(path, "unknown field %q; access events have %s", f, fieldNames(accessFields()))
			}
			r.accessKey = append(r.accessKey, appenderOf(f, a))
			r.accessGet = append(r.accessGet, a)
		} else {
			a, ok := configFields()[f]
			if !ok {
				return nil, bad(path, "unknown field %q; configuration changes have %s", f, fieldNames(configFields()))
			}
			r.configKey = append(r.configKey, a)
		}
	}
	if err := r.compileIncidentBy(s); err != nil {
		return nil, err
	}
	if r.cond != nil {
		r.pre, r.covered = prefilters(r.cond.Node(), s.Source)
	}

	var err error
	switch s.Kind {
	case incident.KindThreshold:
		err = r.compileThreshold(s.Threshold)
	case incident.KindSequence:
		err = r.compileSequence(s.Sequence)
	case incident.KindExposure:
		r.safe, err = compileExpr("exposure.safe", s.Exposure.Safe, SafeEnv{})
		if err == nil && strings.TrimSpace(s.Exposure.Per) != "" {
			opts := append([]expr.Option{expr.Env(SafeEnv{}), expr.AsKind(reflect.String)}, functions()...)
			if r.per, err = expr.Compile(s.Exposure.Per, opts...); err != nil {
				err = bad("exposure.per", "%s", strings.ReplaceAll(err.Error(), "\n", "\n    "))
			}
		}
	}
	if err != nil {
		return nil, err
	}
	def, _ := json.Marshal(s)
	sum := sha256.Sum256(def)
	r.version = hex.EncodeToString(sum[:8])
	return r, nil
}

func compileExpr(path, src string, env any) (*vm.Program, error) {
	if strings.TrimSpace(src) == "" {
		return nil, bad(path, "required")
	}
	opts := append([]expr.Option{expr.Env(env), expr.AsBool()}, functions()...)
	p, err := expr.Compile(src, opts...)
	if err != nil {
		return nil, bad(path, "%s", strings.ReplaceAll(err.Error(), "\n", "\n    "))
	}
	return p, nil
}

func compileException(path string, x *ExceptionSpec, source string, env any) (exception, error) {
	e := exception{name: x.Name}
	if x.Name == "" {
		return e, bad(path+".name", "required")
	}
	if x.Condition != "" {
		p, err := compileExpr(path+".condition", x.Condition, env)
		if err != nil {
			return e, err
		}
		e.condition = p
	}
	if len(x.Fields) == 0 && len(x.Values) > 0 {
		return e, bad(path+".fields", "values need the fields they are values of")
	}
	if len(x.Fields) > 0 {
		for i, f := range x.Fields {
			fp := fmt.Sprintf("%s.fields[%d]", path, i)
			if source == SourceAccess {
				a, ok := accessFields()[f]
				if !ok {
					return e, bad(fp, "unknown field %q; access events have %s", f, fieldNames(accessFields()))
				}
				e.access = append(e.access, a)
			} else {
				a, ok := configFields()[f]
				if !ok {
					return e, bad(fp, "unknown field %q; configuration changes have %s", f, fieldNames(configFields()))
				}
				e.config = append(e.config, a)
			}
		}
		if len(x.Values) == 0 {
			return e, bad(path+".values", "fields need values")
		}
		e.values = map[string]bool{}
		for i, v := range x.Values {
			if len(v) != len(x.Fields) {
				return e, bad(fmt.Sprintf("%s.values[%d]", path, i), "has %d values for %d fields", len(v), len(x.Fields))
			}
			e.values[strings.Join(v, "\x00")] = true
		}
	}
	if e.values == nil && e.condition == nil {
		return e, bad(path, "an exception needs fields and values, or a condition")
	}
	return e, nil
}

func window(path, s string) (time.Duration, error) {
	if s == "" {
		return 0, bad(path, "required")
	}
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		return 0, bad(path, "want a duration such as 10m or 1h; got %q", s)
	}
	if d > 31*24*time.Hour {
		return 0, bad(path, "at most 31 days (744h); got %s", s)
	}
	return d, nil
}

func (r *Rule) compileThreshold(t *ThresholdSpec) error {
	var err error
	if r.window, err = window("threshold.window", t.Window); err != nil {
		return err
	}
	if t.AtLeast < 1 {
		return bad("threshold.at_least", "want a whole number ≥ 1; got %d", t.AtLeast)
	}
	r.atLeast = t.AtLeast
	switch agg := strings.ReplaceAll(t.Aggregate, " ", ""); {
	case agg == AggCount || agg == AggSum:
		r.agg = agg
	case strings.HasPrefix(agg, "distinct(") && strings.HasSuffix(agg, ")"):
		f := agg[len("distinct(") : len(agg)-1]
		a, ok := accessFields()[f]
		if !ok {
			return bad("threshold.aggregate", "unknown field %q in distinct(); access events have %s", f, fieldNames(accessFields()))
		}
		r.agg, r.distinct = AggDistinct, a
	case agg == "":
		return bad("threshold.aggregate", "required")
	default:
		return bad("threshold.aggregate", "want count, sum(records) or distinct(FIELD); got %q", t.Aggregate)
	}
	return nil
}

func (r *Rule) compileSequence(q *SequenceSpec) error {
	var err error
	if r.window, err = window("sequence.window", q.Window); err != nil {
		return err
	}
	if len(q.Steps) < 2 {
		return bad("sequence.steps", "a sequence needs at least 2 steps; got %d", len(q.Steps))
	}
	if len(q.Steps) > 8 {
		return bad("sequence.steps", "at most 8 steps; got %d", len(q.Steps))
	}
	for i, st := range q.Steps {
		path := fmt.Sprintf("sequence.steps[%d]", i)
		if st.Name == "" {
			return bad(path+".name", "required")
		}
		p, err := compileExpr(path+".condition", st.Condition, AccessEnv{})
		if err != nil {
			return err
		}
		n := st.AtLeast
		if n == 0 {
			n = 1
		}
		if n < 1 {
			return bad(path+".at_least", "want a whole number ≥ 1; got %d", st.AtLeast)
		}
		acts, _ := indexHints(p.Node(), SourceAccess)
		pre, covered := prefilters(p.Node(), SourceAccess)
		r.steps = append(r.steps, step{name: st.Name, cond: p, atLeast: n, actions: acts, pre: pre, covered: covered})
	}
	// The rule can match only the actions its steps can.
	if r.actions == nil {
		var all []string
		for _, st := range r.steps {
			if st.actions == nil {
				all = nil
				break
			}
			all = append(all, st.actions...)
		}
		if all != nil {
			slices.Sort(all)
			r.actions = slices.Compact(all)
		}
	}
	return nil
}

// indexHints finds what a condition requires of the action (access) or the
// setting (config): the values allowed by an `action == "x"` or
// `action in [...]` that must hold for the whole condition to hold (a term
// of the top-level conjunction). nil means any value.
func indexHints(n ast.Node, source string) (actions, settings []string) {
	field := "action"
	if source == SourceConfig {
		field = "setting"
	}
	var vals []string
	var walk func(n ast.Node) bool
	walk = func(n ast.Node) bool {
		b, ok := n.(*ast.BinaryNode)
		if !ok {
			return false
		}
		switch b.Operator {
		case "&&", "and":
			l, r := walk(b.Left), walk(b.Right)
			return l || r
		case "==":
			if id, ok := b.Left.(*ast.IdentifierNode); ok && id.Value == field {
				if s, ok := b.Right.(*ast.StringNode); ok && vals == nil {
					vals = []string{s.Value}
					return true
				}
			}
			if id, ok := b.Right.(*ast.IdentifierNode); ok && id.Value == field {
				if s, ok := b.Left.(*ast.StringNode); ok && vals == nil {
					vals = []string{s.Value}
					return true
				}
			}
		case "in":
			if id, ok := b.Left.(*ast.IdentifierNode); ok && id.Value == field && vals == nil {
				vals = stringList(b.Right)
				return vals != nil
			}
		}
		return false
	}
	walk(n)
	if source == SourceConfig {
		return nil, vals
	}
	return vals, nil
}

// prefilter is one term of a condition's top-level conjunction of the form
// FIELD == "literal", FIELD != "literal", FIELD in [...], FIELD not in
// [...], FIELD == FIELD or FIELD != FIELD, on text fields, checked in Go
// before the condition runs. A term that is false makes the whole
// condition false, so checking it first changes no result; it only spares
// the expression machine the events that fail it (most events fail most
// rules on their first terms).
type prefilter struct {
	access func(*event.AccessEvent) bool
	config func(*event.ConfigChange) bool
}

// prefilters collects the terms prefilter can check natively; covered
// when they are the whole condition (the expression machine need not run:
// its answer is theirs).
func prefilters(n ast.Node, source string) (out []prefilter, covered bool) {
	covered = true
	var walk func(n ast.Node)
	walk = func(n ast.Node) {
		negate := false
		if u, ok := n.(*ast.UnaryNode); ok && (u.Operator == "not" || u.Operator == "!") {
			n, negate = u.Node, true // FIELD not in [...] is not (FIELD in [...])
		}
		b, ok := n.(*ast.BinaryNode)
		if !ok {
			covered = false
			return
		}
		if !negate && (b.Operator == "&&" || b.Operator == "and") {
			walk(b.Left)
			walk(b.Right)
			return
		}
		field := fieldPath(b.Left)
		if other := fieldPath(b.Right); other != "" && (b.Operator == "==" || b.Operator == "!=") {
			// FIELD == FIELD, FIELD != FIELD (e.g. actor.tenant != tenant).
			want := (b.Operator == "==") != negate
			if source == SourceAccess {
				get, ok1 := accessFields()[field]
				get2, ok2 := accessFields()[other]
				if !ok1 || !ok2 || field == "source_ip" || other == "source_ip" {
					covered = false
					return
				}
				out = append(out, prefilter{access: func(e *event.AccessEvent) bool { return (get(e) == get2(e)) == want }})
			} else {
				get, ok1 := configFields()[field]
				get2, ok2 := configFields()[other]
				if !ok1 || !ok2 {
					covered = false
					return
				}
				out = append(out, prefilter{config: func(c *event.ConfigChange) bool { return (get(c) == get2(c)) == want }})
			}
			return
		}
		var vals []string
		switch b.Operator {
		case "==", "!=":
			s, ok := b.Right.(*ast.StringNode)
			if !ok {
				covered = false
				return
			}
			vals = []string{s.Value}
		case "in", "not in":
			if vals = stringList(b.Right); vals == nil {
				covered = false
				return
			}
		default:
			covered = false
			return
		}
		in := literalSet(vals)
		want := (b.Operator == "==" || b.Operator == "in") != negate
		if source == SourceAccess {
			get, ok := accessFields()[field]
			if !ok || field == "source_ip" {
				covered = false
				return
			}
			out = append(out, prefilter{access: func(e *event.AccessEvent) bool { return in(get(e)) == want }})
		} else {
			get, ok := configFields()[field]
			if !ok {
				covered = false
				return
			}
			out = append(out, prefilter{config: func(c *event.ConfigChange) bool { return in(get(c)) == want }})
		}
	}
	walk(n)
	return out, covered
}

// literalSet tests membership in a list of literals: by comparing strings when
// the list is short (most are one to a handful of words; no hashing), by a
// map when it is long.
func literalSet(vals []string) func(string) bool {
	vals = slices.Clone(vals)
	switch {
	case len(vals) == 1:
		v := vals[0]
		return func(s string) bool { return s == v }
	case len(vals) <= 8:
		return func(s string) bool { return slices.Contains(vals, s) }
	}
	set := make(map[string]bool, len(vals))
	for _, v := range vals {
		set[v] = true
	}
	return func(s string) bool { return set[s] }
}

// fieldPath reads `a` or `a.b` as a field path ("" for anything else).
func fieldPath(n ast.Node) string {
	switch x := n.(type) {
	case *ast.IdentifierNode:
		return x.Value
	case *ast.MemberNode:
		parent, ok := x.Node.(*ast.IdentifierNode)
		prop, ok2 := x.Property.(*ast.StringNode)
		if ok && ok2 && !x.Optional {
			return parent.Value + "." + prop.Value
		}
	}
	return ""
}

// stringList reads a literal list of strings (an array node, or the
// constant the optimizer made of it); nil if it is anything else.
func stringList(n ast.Node) []string {
	var out []string
	switch x := n.(type) {
	case *ast.ArrayNode:
		for _, e := range x.Nodes {
			s, ok := e.(*ast.StringNode)
			if !ok {
				return nil
			}
			out = append(out, s.Value)
		}
	case *ast.ConstantNode:
		switch v := x.Value.(type) {
		case map[string]struct{}:
			for k := range v {
				out = append(out, k)
			}
		case []any:
			for _, e := range v {
				s, ok := e.(string)
				if !ok {
					return nil
				}
				out = append(out, s)
			}
		case []string:
			out = append(out, v...)
		default:
			return nil
		}
	default:
		return nil
	}
	slices.Sort(out)
	return out
}
