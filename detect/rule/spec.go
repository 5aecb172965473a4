// Package rule turns rule files into rules: a strictly decoded Spec is
// compiled once into an immutable Rule, and a folder of rule files into an
// immutable Set. Any error rejects the whole set, naming file, line and
// field. The rule language is documented in docs/rules.md.
package rule

// Format is the version of the rule-file format this code reads.
const Format = 1

// File is one rule file: a format version and either one rule at the top
// level or a list of rules under "rules".
type File struct {
	Format int    `yaml:"format"`
	Rules  []Spec `yaml:"rules"`
	Spec   `yaml:",inline"`
}

// Spec is a rule as written.
type Spec struct {
	ID          string   `yaml:"id"`
	Title       string   `yaml:"title"`
	Description string   `yaml:"description"`
	Severity    string   `yaml:"severity"` // critical, high, medium, low
	Source      string   `yaml:"source"`   // access or config
	Kind        string   `yaml:"kind"`     // match, threshold, sequence or exposure
	Tags        []string `yaml:"tags"`     // e.g. MITRE ATT&CK technique ids
	Enabled     *bool    `yaml:"enabled"`  // default true
	// Condition selects the events the rule looks at: an expr-lang
	// expression over the event, with a boolean result.
	Condition  string          `yaml:"condition"`
	Exceptions []ExceptionSpec `yaml:"exceptions"`
	// GroupBy are the fields whose values key the rule's state and
	// findings (e.g. actor.id). Exposure rules default to resource.id and
	// setting.
	GroupBy []string `yaml:"group_by"`
	// IncidentBy are the group_by fields whose values make one incident:
	// findings of groups that share them are one breach (one attacker
	// account across its victims). Default: for access rules group_by less
	// "tenant" (the victim never splits an incident); for exposure rules
	// resource.id (one resource, whatever setting or part); group_by
	// otherwise.
	IncidentBy []string `yaml:"incident_by"`
	// Affected says whom a finding concerns: "tenants" (the tenants of the
	// matched events; for a cross-tenant read, the victims) or "store"
	// (everyone whose data sits in the store). Default: tenants for access
	// rules, store for config rules.
	Affected  string         `yaml:"affected"`
	Threshold *ThresholdSpec `yaml:"threshold"`
	Sequence  *SequenceSpec  `yaml:"sequence"`
	Exposure  *ExposureSpec  `yaml:"exposure"`
}

// ExceptionSpec is a Falco-style exception: events whose fields equal one
// of the value tuples (or that satisfy the condition) never match.
type ExceptionSpec struct {
	Name      string     `yaml:"name"`
	Fields    []string   `yaml:"fields"`
	Values    [][]string `yaml:"values"`
	Condition string     `yaml:"condition"`
}

// ThresholdSpec: an aggregate of the matching events over a sliding
// event-time window per group reaches a threshold.
type ThresholdSpec struct {
	// Aggregate is "count", "sum(records)" or "distinct(FIELD)".
	Aggregate string `yaml:"aggregate"`
	Window    string `yaml:"window"` // a duration: 10m, 1h
	AtLeast   int64  `yaml:"at_least"`
}

// SequenceSpec: ordered steps, each met by matching events, all within the
// window, per group.
type SequenceSpec struct {
	Window string     `yaml:"window"`
	Steps  []StepSpec `yaml:"steps"`
}

// StepSpec is one step of a sequence.
type StepSpec struct {
	Name      string `yaml:"name"`
	Condition string `yaml:"condition"`
	AtLeast   int64  `yaml:"at_least"` // events needed (default 1)
}

// ExposureSpec: a change of a setting to an unsafe value opens an exposure
// window; a later change back to a safe value closes it.
type ExposureSpec struct {
	// Safe is an expression over `value` (and `setting`, `resource`): true
	// for the values that expose nothing — the baseline.
	Safe string `yaml:"safe"`
	// Per is an optional expression over `value` (and `setting`,
	// `resource`) naming the part of the setting a change is about, when a
	// setting holds several independent entries: a firewall holds one rule
	// per protocol, port range and address range, and opening 443 must not
	// close the window that opening 5432 opened. It is evaluated on the
	// value after the change, or before it when the value after is null;
	// its string result extends the window's key. Empty: the whole setting.
	Per string `yaml:"per"`
}

// InventoryFile is the data inventory as written.
type InventoryFile struct {
	Format int `yaml:"format"`
	// UnknownStores says what a store the inventory does not list holds:
	// "personal" (the default, and the safe choice) or "none".
	UnknownStores string      `yaml:"unknown_stores"`
	Stores        []StoreSpec `yaml:"stores"`
}

// StoreSpec is one store of the inventory.
type StoreSpec struct {
	ID          string   `yaml:"id"`
	Description string   `yaml:"description"`
	Categories  []string `yaml:"categories"` // personal-data categories; empty: none
	Holders     string   `yaml:"holders"`    // all, list or seen (default seen)
	Tenants     []string `yaml:"tenants"`    // for holders: list
	Public      bool     `yaml:"public"`
	Aliases     []string `yaml:"aliases"`
}
