package demo

import (
	"encoding/json"
	"math/rand/v2"
	"net/netip"
	"slices"
	"sort"
	"strconv"
	"time"

	"github.com/breachwatch/breachwatch/event"
)

// The breach scenarios injected when Options.Breach is set. The names are
// the ids of the rules meant to find them.
const (
	ScenarioCrossTenantRead     = "cross-tenant-read"
	ScenarioBulkExport          = "bulk-export"
	ScenarioStaffOutsideGroup   = "staff-outside-privileged-group"
	ScenarioStaffManyTenants    = "staff-many-tenants"
	ScenarioAnonymousAccess     = "anonymous-access"
	ScenarioCredentialStuffing  = "credential-stuffing"
	ScenarioStoreMadePublic     = "store-made-public"
	ScenarioEncryptionDisabled  = "encryption-disabled"
	ScenarioTLSWeakened         = "tls-weakened"
	ScenarioFirewallOpenPort    = "firewall-open-data-port"
	ScenarioSnapshotShared      = "snapshot-shared"
	ScenarioAuditLoggingOff     = "audit-logging-off"
	ScenarioKeyDisabled         = "key-disabled"
	scenarioFirst               = 5 * time.Second  // first run of the first scenario, after the first Next
	scenarioStagger             = 4 * time.Second  // between the first runs of two scenarios
	scenarioEvery               = 15 * time.Minute // between two runs of one scenario
	configRevert                = 10 * time.Minute // a weakened setting is restored this much later
	injectLagLimit              = time.Minute      // no new runs while the queue is this far behind
	credentialStuffingAccounts  = 40
	credentialStuffingAttempts  = 60
	credentialStuffingExportRec = 800
)

// Scenario indexes, in the order of Scenarios().
const (
	scCrossTenantRead = iota
	scBulkExport
	scStaffOutsideGroup
	scStaffManyTenants
	scAnonymousAccess
	scCredentialStuffing
	scStoreMadePublic
	scEncryptionDisabled
	scTLSWeakened
	scFirewallOpenPort
	scSnapshotShared
	scAuditLoggingOff
	scKeyDisabled
	numScenarios
)

// Scenarios returns the names of the breach scenarios, in the order their
// first runs start.
func Scenarios() []string {
	return []string{
		ScenarioCrossTenantRead, ScenarioBulkExport, ScenarioStaffOutsideGroup,
		ScenarioStaffManyTenants, ScenarioAnonymousAccess, ScenarioCredentialStuffing,
		ScenarioStoreMadePublic, ScenarioEncryptionDisabled, ScenarioTLSWeakened,
		ScenarioFirewallOpenPort, ScenarioSnapshotShared, ScenarioAuditLoggingOff,
		ScenarioKeyDisabled,
	}
}

// minTenants is the number of tenants a scenario needs; with fewer, the
// generator never runs it.
func minTenants(s int) int {
	switch s {
	case scCrossTenantRead: // the reader's tenant and a victim
		return 2
	case scStaffOutsideGroup:
		return 6
	case scStaffManyTenants:
		return 25
	}
	return 1
}

// Injection is one breach scenario the generator put into the traffic.
type Injection struct {
	Scenario string    // one of the Scenario* names
	Start    time.Time // time of its first event
	Tenants  []string  // tenants whose data it touched/exposed (may be empty for config scenarios)
	Store    string    // the data store involved, when there is one
	EventIDs []string  // ids of the events it injected, in time order
}

// breach is the state of breach injection (Options.Breach). It draws from
// its own random source and numbers its events with its own counter and
// prefix, so the benign traffic around it is what it would be without it.
type breach struct {
	rng     *rand.Rand
	prefix  string // "demo-<seed hex>-b-"
	n       uint64 // events injected so far
	seq     uint64 // events queued so far (breaks ties in the queue)
	started bool
	next    [numScenarios]time.Time // when each scenario's next run starts
	runs    [numScenarios]int       // runs of each scenario so far
	victim  [numScenarios]int       // the main victim tenant of the last run; -1 when none
	last    time.Time               // the latest event time the generator emitted
	queue   []queued                // injected events not yet emitted, in time order
	incs    []incident              // runs planned so far, in planning order
}

// incident is one run of a scenario.
type incident struct {
	inj  Injection
	left int // events still queued
}

// queued is an injected event waiting for its time.
type queued struct {
	at     time.Time
	seq    uint64
	inc    int // index into breach.incs
	config bool
	access event.AccessEvent
	change event.ConfigChange
}

func newBreach(seed uint64, seedHex string) *breach {
	br := &breach{
		rng:    rand.New(rand.NewPCG(seed, 0xb4eac4b4eac4b4ea)),
		prefix: "demo-" + seedHex + "-b-",
	}
	for i := range br.victim {
		br.victim[i] = -1
	}
	return br
}

// Injections returns the breach scenarios the generator injected whose
// events have all been emitted, in start order; nil without Options.Breach.
// The result is the caller's.
func (g *Generator) Injections() []Injection {
	if g.br == nil {
		return nil
	}
	var out []Injection
	for i := range g.br.incs {
		inc := &g.br.incs[i]
		if inc.left > 0 {
			continue
		}
		in := inc.inj
		in.Tenants = slices.Clone(in.Tenants)
		in.EventIDs = slices.Clone(in.EventIDs)
		out = append(out, in)
	}
	slices.SortStableFunc(out, func(a, b Injection) int { return a.Start.Compare(b.Start) })
	return out
}

// inject starts the scenario runs due at t and emits the earliest injected
// event due at t, if any, reporting whether it did. Otherwise the caller
// emits a benign event at t.
func (g *Generator) inject(t time.Time, b *event.Batch) bool {
	br := g.br
	if !br.started {
		br.started = true
		for s := range br.next {
			br.next[s] = t.Add(scenarioFirst + time.Duration(s)*scenarioStagger)
		}
	}
	behind := len(br.queue) > 0 && t.Sub(br.queue[0].at) > injectLagLimit
	for s := range br.next {
		if br.next[s].After(t) {
			continue
		}
		start := br.next[s]
		if start.Before(br.last) { // keep the output in time order
			start = br.last
		}
		if !behind && len(g.tenants) >= minTenants(s) {
			g.plan(s, start)
		}
		for !br.next[s].After(t) { // runs missed by a slow clock are skipped
			br.next[s] = br.next[s].Add(scenarioEvery)
		}
	}

	if len(br.queue) == 0 || br.queue[0].at.After(t) {
		if t.After(br.last) {
			br.last = t
		}
		return false
	}
	q := &br.queue[0]
	br.n++
	id := br.prefix + strconv.FormatUint(br.n, 10)
	if q.config {
		q.change.ID = id
		b.Config = append(b.Config, q.change)
	} else {
		q.access.ID = id
		b.Access = append(b.Access, q.access)
	}
	inc := &br.incs[q.inc]
	inc.inj.EventIDs = append(inc.inj.EventIDs, id)
	inc.left--
	if q.at.After(br.last) {
		br.last = q.at
	}
	copy(br.queue, br.queue[1:])
	br.queue[len(br.queue)-1] = queued{}
	br.queue = br.queue[:len(br.queue)-1]
	return true
}

// run is a scenario run being planned.
type run struct {
	g     *Generator
	inc   int
	start time.Time
	k     int // the run's number within its scenario, from 0
}

// plan queues the events of a new run of scenario s starting at start.
func (g *Generator) plan(s int, start time.Time) {
	br := g.br
	br.incs = append(br.incs, incident{inj: Injection{Scenario: Scenarios()[s], Start: start}})
	r := &run{g: g, inc: len(br.incs) - 1, start: start, k: br.runs[s]}
	br.runs[s]++
	switch s {
	case scCrossTenantRead:
		r.crossTenantRead()
	case scBulkExport:
		r.bulkExport()
	case scStaffOutsideGroup:
		r.staffOutsideGroup()
	case scStaffManyTenants:
		r.staffManyTenants()
	case scAnonymousAccess:
		r.anonymousAccess()
	case scCredentialStuffing:
		r.credentialStuffing()
	case scStoreMadePublic:
		r.storeMadePublic()
	case scEncryptionDisabled:
		r.encryptionDisabled()
	case scTLSWeakened:
		r.tlsWeakened()
	case scFirewallOpenPort:
		r.firewallOpenPort()
	case scSnapshotShared:
		r.snapshotShared()
	case scAuditLoggingOff:
		r.auditLoggingOff()
	case scKeyDisabled:
		r.keyDisabled()
	}
}

func (r *run) inj() *Injection { return &r.g.br.incs[r.inc].inj }

// enqueue puts q, due at r.start+off, into the time-ordered queue.
func (r *run) enqueue(off time.Duration, q queued) {
	br := r.g.br
	q.at = r.start.Add(off)
	q.seq = br.seq
	q.inc = r.inc
	br.seq++
	br.incs[r.inc].left++
	i := sort.Search(len(br.queue), func(i int) bool { return br.queue[i].at.After(q.at) })
	br.queue = slices.Insert(br.queue, i, q)
}

// access queues an access event at r.start+off.
func (r *run) access(off time.Duration, e event.AccessEvent) {
	e.Time = r.start.Add(off)
	e.RequestID = r.requestID()
	r.enqueue(off, queued{access: e})
}

// change queues a configuration change at r.start+off.
func (r *run) change(off time.Duration, c event.ConfigChange) {
	c.Time = r.start.Add(off)
	r.enqueue(off, queued{config: true, change: c})
}

func (r *run) requestID() string {
	const hex = "0123456789abcdef"
	x := r.g.br.rng.Uint64()
	b := make([]byte, 0, 20)
	b = append(b, "req-"...)
	for i := 60; i >= 0; i -= 4 {
		b = append(b, hex[x>>uint(i)&0xf])
	}
	return string(b)
}

// secs returns a random duration in [lo, hi] seconds, to the millisecond.
func (r *run) secs(lo, hi int) time.Duration {
	return time.Duration(lo*1000+r.g.br.rng.IntN((hi-lo)*1000+1)) * time.Millisecond
}

func (r *run) intn(n int) int { return r.g.br.rng.IntN(n) }

func (r *run) browserUA() string {
	uas := browserUAs()
	return uas[r.intn(len(uas))]
}

// victim picks the main victim tenant of scenario s, other than the last
// run's when there are several (so repeats are new incidents).
func (r *run) victim(s int) int {
	n := len(r.g.tenants)
	v := r.intn(n)
	for n > 1 && v == r.g.br.victim[s] {
		v = r.intn(n)
	}
	r.g.br.victim[s] = v
	return v
}

// distinct picks n different tenants.
func (r *run) distinct(n int) []int {
	return r.g.br.rng.Perm(len(r.g.tenants))[:n]
}

func (r *run) tenant(i int) *tenant { return &r.g.tenants[i] }

// ip returns an address in 198.18.0.0/15 (RFC 2544): outside every range
// the benign traffic uses.
func (r *run) ip(net byte) netip.Addr {
	return netip.AddrFrom4([4]byte{198, 18, net, byte(10 + r.k%240)})
}

func (r *run) addTenant(i int) {
	in := r.inj()
	in.Tenants = append(in.Tenants, r.g.tenants[i].id)
}

// crossTenantRead: a customer user of tenant A reads, lists and exports
// bookings and contacts of tenant B (an authorization bug exploited by
// changing ids in the URL).
func (r *run) crossTenantRead() {
	b := r.victim(scCrossTenantRead)
	a := r.intn(len(r.g.tenants))
	for a == b {
		a = r.intn(len(r.g.tenants))
	}
	ta, tb := r.tenant(a), r.tenant(b)
	r.inj().Store = StoreMain
	r.addTenant(b)
	actor := event.Actor{ID: "u-" + ta.num + "-" + strconv.Itoa(90+r.k%10), Type: event.ActorCustomerUser, Tenant: ta.id}
	ip, ua := r.ip(1), r.browserUA()
	base := func(action, typ, id string, records int64) event.AccessEvent {
		cats := []string{"booking", "contact"}
		if typ == "contact" {
			cats = []string{"contact"}
		}
		return event.AccessEvent{Tenant: tb.id, Actor: actor, Action: action,
			Resource: event.Resource{Type: typ, ID: id, Store: StoreMain}, Records: records, Categories: cats,
			Outcome: event.OutcomeSuccess, SourceIP: ip, Country: ta.country, UserAgent: ua}
	}
	r.access(0, base(event.ActionList, "booking", "", int64(10+r.intn(31))))
	r.access(r.secs(3, 5), base(event.ActionRead, "booking", r.g.id("bk-", tb.num, 100000+r.intn(900000)), 1))
	r.access(r.secs(8, 10), base(event.ActionRead, "contact", r.g.id("ct-", tb.num, 10000+r.intn(90000)), 1))
	r.access(r.secs(13, 15), base(event.ActionList, "contact", "", int64(10+r.intn(31))))
	r.access(r.secs(19, 20), base(event.ActionExport, "booking", "", int64(150+r.intn(451))))
}

// bulkExport: a compromised customer user's session, used from a Tor exit,
// downloads six full exports of the tenant's data within four minutes.
func (r *run) bulkExport() {
	ti := r.victim(scBulkExport)
	tn := r.tenant(ti)
	r.inj().Store = StoreExports
	r.addTenant(ti)
	actor := event.Actor{ID: "u-" + tn.num + "-" + strconv.Itoa(80+r.k%10), Type: event.ActorCustomerUser, Tenant: tn.id}
	ip := netip.AddrFrom4([4]byte{185, 220, 101, byte(2 + r.k%250)})
	ua := r.browserUA()
	var off time.Duration
	for i := range 6 {
		if i > 0 {
			off += r.secs(30, 45)
		}
		file := "exports/" + tn.id + "/full-" + strconv.Itoa(r.k+1) + "-part-" + strconv.Itoa(i+1) + ".csv"
		r.access(off, event.AccessEvent{Tenant: tn.id, Actor: actor, Action: event.ActionDownload,
			Resource: event.Resource{Type: "file", ID: file, Store: StoreExports},
			Records:  int64(4000 + r.intn(2001)), Categories: []string{"booking", "contact"},
			Outcome: event.OutcomeSuccess, SourceIP: ip, Country: "DE", UserAgent: ua})
	}
}

// staffOutsideGroup: a marketing employee reads contacts of six tenants.
func (r *run) staffOutsideGroup() {
	r.inj().Store = StoreMain
	actor := event.Actor{ID: "emp-marketing-" + pad(r.k+1, 2), Type: event.ActorEmployee, Groups: []string{"marketing"}}
	ip, ua := r.ip(3), r.browserUA()
	var off time.Duration
	for i, ti := range r.distinct(6) {
		if i > 0 {
			off += r.secs(60, 100)
		}
		tn := r.tenant(ti)
		r.addTenant(ti)
		r.access(off, event.AccessEvent{Tenant: tn.id, Actor: actor, Action: event.ActionRead,
			Resource: event.Resource{Type: "contact", ID: r.g.id("ct-", tn.num, 10000+r.intn(90000)), Store: StoreMain},
			Records:  1, Categories: []string{"contact"},
			Outcome: event.OutcomeSuccess, SourceIP: ip, Country: "NL", UserAgent: ua})
	}
}

// staffManyTenants: a support employee reads a booking of each of 25
// tenants in under 20 minutes, without tickets.
func (r *run) staffManyTenants() {
	r.inj().Store = StoreMain
	actor := event.Actor{ID: "emp-support-" + pad(11+r.k, 2), Type: event.ActorEmployee, Groups: []string{"support"}}
	ip, ua := r.ip(4), r.browserUA()
	var off time.Duration
	for i, ti := range r.distinct(25) {
		if i > 0 {
			off += r.secs(35, 45)
		}
		tn := r.tenant(ti)
		r.addTenant(ti)
		r.access(off, event.AccessEvent{Tenant: tn.id, Actor: actor, Action: event.ActionRead,
			Resource: event.Resource{Type: "booking", ID: r.g.id("bk-", tn.num, 100000+r.intn(900000)), Store: StoreMain},
			Records:  1, Categories: []string{"booking", "contact"},
			Outcome: event.OutcomeSuccess, SourceIP: ip, Country: "NL", UserAgent: ua})
	}
}

// anonymousAccess: a script without credentials downloads three export
// files of one tenant from the export bucket.
func (r *run) anonymousAccess() {
	ti := r.victim(scAnonymousAccess)
	tn := r.tenant(ti)
	r.inj().Store = StoreExports
	r.addTenant(ti)
	ip := netip.AddrFrom4([4]byte{185, 220, 102, byte(2 + r.k%250)})
	offs := [3]time.Duration{0, r.secs(2, 4), r.secs(5, 8)}
	for i, off := range offs {
		file := "exports/" + tn.id + "/bookings-" + strconv.Itoa(900+3*r.k+i) + ".csv"
		r.access(off, event.AccessEvent{Tenant: tn.id, Actor: event.Actor{ID: "anonymous", Type: event.ActorAnonymous},
			Action:   event.ActionDownload,
			Resource: event.Resource{Type: "file", ID: file, Store: StoreExports},
			Records:  int64(200 + r.intn(1301)), Categories: []string{"booking", "contact"},
			Outcome: event.OutcomeSuccess, SourceIP: ip, Country: "DE", UserAgent: "python-requests/2.31.0"})
	}
}

// credentialStuffing: one address tries leaked passwords against 40
// accounts, gets into one, and exports its tenant's bookings.
func (r *run) credentialStuffing() {
	ti := r.victim(scCredentialStuffing)
	tn := r.tenant(ti)
	r.inj().Store = StoreMain // what leaked: the export; the logins hit StoreAuth
	r.addTenant(ti)
	ip := netip.AddrFrom4([4]byte{198, 18, 7, byte(77 + r.k%170)})
	const ua = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36"
	accounts := make([]event.Actor, credentialStuffingAccounts)
	hit := r.intn(len(accounts)) // the account whose leaked password works
	for j := range accounts {
		t := tn
		if j != hit {
			t = r.tenant(r.intn(len(r.g.tenants)))
		}
		accounts[j] = event.Actor{ID: "u-" + t.num + "-" + strconv.Itoa(50+j), Type: event.ActorCustomerUser, Tenant: t.id}
	}
	tries := make([]int, 0, credentialStuffingAttempts)
	for j := range accounts {
		tries = append(tries, j)
	}
	for len(tries) < credentialStuffingAttempts {
		tries = append(tries, r.intn(len(accounts)))
	}
	r.g.br.rng.Shuffle(len(tries), func(i, j int) { tries[i], tries[j] = tries[j], tries[i] })
	login := func(a event.Actor, action, outcome string, records int64) event.AccessEvent {
		return event.AccessEvent{Tenant: a.Tenant, Actor: a, Action: action,
			Resource: event.Resource{Type: "account", ID: a.ID, Store: StoreAuth},
			Records:  records, Outcome: outcome, SourceIP: ip, UserAgent: ua}
	}
	var off time.Duration
	for i, j := range tries {
		if i > 0 {
			off += r.secs(2, 3) - 50*time.Millisecond // at most 2.95 s: 60 tries within 3 minutes
		}
		r.access(off, login(accounts[j], event.ActionLoginFailed, event.OutcomeDenied, 0))
	}
	off += r.secs(3, 8)
	r.access(off, login(accounts[hit], event.ActionLogin, event.OutcomeSuccess, 1))
	off += r.secs(60, 240)
	r.access(off, event.AccessEvent{Tenant: tn.id, Actor: accounts[hit], Action: event.ActionExport,
		Resource: event.Resource{Type: "booking", Store: StoreMain},
		Records:  credentialStuffingExportRec, Categories: []string{"booking", "contact"},
		Outcome: event.OutcomeSuccess, SourceIP: ip, UserAgent: ua})
}

// weaken queues a change of setting from before to after at the run's
// start and, configRevert later, the change back.
func (r *run) weaken(res event.ConfigResource, setting string, before, after json.RawMessage, actor event.Actor, source string) {
	r.inj().Store = res.Store
	res.Provider, res.Region = "aws", "eu-west-1"
	c := event.ConfigChange{Resource: res, Setting: setting, Before: before, After: after, Source: source}
	a := actor
	c.Actor = &a
	r.change(0, c)
	back := c
	b := actor
	back.Actor = &b
	back.Before, back.After = after, before
	if before == nil {
		back.After = json.RawMessage("null") // the setting is removed again
	}
	r.change(configRevert, back)
}

func iamUser(name string) event.Actor {
	return event.Actor{ID: "arn:aws:iam::123456789012:user/" + name, Type: event.ActorEmployee}
}

func (r *run) storeMadePublic() {
	r.weaken(event.ConfigResource{ID: "arn:aws:s3:::exports-eu", Type: "bucket", Store: StoreExports},
		"public_access", jsonBool(false), jsonBool(true), iamUser("ci-deployer"), "cloudtrail")
}

func (r *run) encryptionDisabled() {
	r.weaken(event.ConfigResource{ID: StoreMain, Type: "database", Store: StoreMain},
		"encryption_at_rest", jsonBool(true), jsonBool(false), iamUser("platform-admin"), "terraform")
}

func (r *run) tlsWeakened() {
	r.weaken(event.ConfigResource{ID: "api-eu", Type: "endpoint", Store: "api-eu"},
		"tls_min_version", jsonString("1.2"), jsonString("1.0"), iamUser("ops-oncall"), "cloudtrail")
}

func (r *run) firewallOpenPort() {
	// The first run uses sg-0a1b2c3d4e5f; repeats, other security groups.
	id := []byte("sg-0a1b2c3d4e5f")
	v := 0x5f + r.k
	const hex = "0123456789abcdef"
	id[len(id)-2], id[len(id)-1] = hex[v>>4&0xf], hex[v&0xf]
	r.weaken(event.ConfigResource{ID: string(id), Type: "firewall", Store: StoreMain},
		"public_ingress", nil, json.RawMessage(`{"cidr":"0.0.0.0/0","protocol":"tcp","from_port":5432,"to_port":5432}`),
		iamUser("dev-sandbox"), "cloudtrail")
}

func (r *run) snapshotShared() {
	id := "postgres-eu-1-snap-" + r.start.Format("2006-01-02-1504")
	r.weaken(event.ConfigResource{ID: id, Type: "snapshot", Store: StoreMain},
		"shared_with", json.RawMessage(`[]`), json.RawMessage(`["all"]`), iamUser("backup-admin"), "cloudtrail")
}

func (r *run) auditLoggingOff() {
	r.weaken(event.ConfigResource{ID: "org-trail", Type: "log_sink", Store: "org-trail"},
		"audit_logging", jsonBool(true), jsonBool(false), iamUser("ci-deployer"), "cloudtrail")
}

func (r *run) keyDisabled() {
	r.weaken(event.ConfigResource{ID: "arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab", Type: "key", Store: StoreMain},
		"key_state", jsonString("Enabled"), jsonString("Disabled"), iamUser("kms-admin"), "cloudtrail")
}
