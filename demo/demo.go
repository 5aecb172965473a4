// Package demo generates deterministic, realistic and benign traffic of a
// scheduling SaaS (a booking product used by salons, clinics, gyms and
// tutors): staff users reading and editing their own tenant's bookings,
// logins with the odd typo, support staff working tickets, background
// services, calendar-sync API keys, rare self-service exports, and rare
// harmless configuration changes made by a deploy bot.
//
// Nothing the generator produces should ever be reported as a personal-data
// exposure; it is the baseline against which detection is demonstrated and
// tested. Only with Options.Breach does it also inject breach scenarios
// (see Scenarios), each recorded by Generator.Injections.
package demo

import (
	"encoding/json"
	"math/rand/v2"
	"net/netip"
	"strconv"
	"time"

	"github.com/breachwatch/breachwatch/event"
)

// Data stores used by the generated events. Config changes use the same ids.
const (
	StoreMain    = "postgres-eu-1"    // bookings, contacts, calendars
	StoreBilling = "postgres-billing" // invoices, payment methods
	StoreAuth    = "auth"             // accounts (logins)
	StoreExports = "s3://exports-eu"  // export files
)

// countries holds the tenants' possible countries, two letters each.
const countries = "NLSEFRDEBEAESAGBUSES"

// Options configure a Generator.
type Options struct {
	Tenants int    // customer accounts (default 50)
	Seed    uint64 // same seed + same sequence of Next calls → same events
	// Breach also injects breach scenarios among the benign traffic (see
	// Scenarios and Generator.Injections). Off, the output is unchanged.
	Breach bool
}

// DefaultTenants is the number of tenants when Options.Tenants is not positive.
const DefaultTenants = 50

// Generator produces demo events. Not safe for concurrent use.
type Generator struct {
	rng     *rand.Rand
	aPrefix string // "demo-<seed hex>-a-"
	cPrefix string // "demo-<seed hex>-c-"
	nAccess uint64
	nConfig uint64
	nExport uint64
	calls   uint64

	tenants []tenant
	ids     []string
	cum     []int // cumulative activity weights of tenants
	keyed   []int // tenants with a calendar-sync API key
	users   []user
	emps    []employee
	svcs    [numServices]service
	cfg     []cfgResource
	pending []pending
	buf     []byte
	br      *breach // nil unless Options.Breach
}

type tenant struct {
	id         string
	num        string // "0007"
	country    string
	key        string     // calendar-sync API key id; empty when none
	keyIP      netip.Addr // where the sync integration calls from
	users      []int      // indexes into Generator.users
	managers   []int      // the users allowed to see billing and to export
	lastExport time.Time
	exporting  bool
}

type user struct {
	id       string
	tenant   int
	calendar string // the user's own calendar id
	manager  bool
	ip       netip.Addr
	ua       string
	mobileIP netip.Addr // zero when the user has no phone session
	mobileUA string
	inLogin  bool // between a login_failed and the login that follows it
	export   bool // waiting to download an export
}

type employee struct {
	id     string
	ip     netip.Addr
	ua     string
	busy   bool
	starts [maxTicketsPerHour]time.Time // the last ticket starts, a ring
	next   int
}

// maxTicketsPerHour bounds the support tickets (so tenants) one employee
// opens in any hour.
const maxTicketsPerHour = 3

// exportGap is the least time between two exports of one tenant.
const exportGap = 6 * time.Hour

type service struct {
	id  string
	ua  string
	ips [3]netip.Addr
}

const (
	svcReminder = iota
	svcBilling
	svcIndexer
	svcExport
	numServices
)

type pendingKind uint8

const (
	pLoginFailed pendingKind = iota // a second typo
	pLoginOK                        // the login after a typo
	pSupportRead                    // the next read of a support ticket
	pDownload                       // a user downloading a finished export
)

// pending is a follow-up event of a scenario in progress, due once the
// generator has been called at least at times.
type pending struct {
	at      uint64
	kind    pendingKind
	user    int
	emp     int
	tenant  int
	left    int // support reads still to do, this one included
	records int64
	booking string
	contact string
	file    string
}

// New returns a generator for o.
func New(o Options) *Generator {
	if o.Tenants <= 0 {
		o.Tenants = DefaultTenants
	}
	seedHex := strconv.FormatUint(o.Seed, 16)
	g := &Generator{
		rng:     rand.New(rand.NewPCG(o.Seed, 0x9e3779b97f4a7c15)),
		aPrefix: "demo-" + seedHex + "-a-",
		cPrefix: "demo-" + seedHex + "-c-",
		buf:     make([]byte, 0, 64),
	}
	uas := browserUAs()
	mobile := mobileUAs()
	r := g.rng

	g.tenants = make([]tenant, o.Tenants)
	g.ids = make([]string, o.Tenants)
	g.cum = make([]int, o.Tenants)
	total := 0
	for i := range g.tenants {
		tn := &g.tenants[i]
		tn.num = pad(i+1, 4)
		tn.id = "cust-" + tn.num
		g.ids[i] = tn.id
		k := r.IntN(len(countries) / 2)
		tn.country = countries[2*k : 2*k+2]
		// Activity is skewed: a few busy clinics, many quiet salons.
		w := 1 + r.IntN(4)
		if r.IntN(5) == 0 {
			w *= 4
		}
		total += w
		g.cum[i] = total

		v6 := r.IntN(100) < 15
		office := g.randIP(v6, uint16(0x100+i), 1)
		n := 2 + r.IntN(7) // 2..8 staff
		for j := range n {
			u := user{
				id:       "u-" + tn.num + "-" + pad(j+1, 2),
				tenant:   i,
				calendar: "cal-" + tn.num + "-" + pad(j+1, 2),
				manager:  j == 0 || (j == 1 && r.IntN(10) < 3),
				ua:       uas[r.IntN(len(uas))],
			}
			if r.IntN(10) < 6 {
				u.ip = office // the salon's wifi
			} else {
				u.ip = g.randIP(v6, uint16(0x100+i), uint16(j+2))
			}
			if r.IntN(4) == 0 {
				u.mobileIP = g.randIP(r.IntN(2) == 0, 0xffff, uint16(r.IntN(0x10000)))
				u.mobileUA = mobile[r.IntN(len(mobile))]
			}
			tn.users = append(tn.users, len(g.users))
			if u.manager {
				tn.managers = append(tn.managers, len(g.users))
			}
			g.users = append(g.users, u)
		}
		if r.IntN(10) < 4 {
			tn.key = "key-" + tn.id + "-cal"
			tn.keyIP = netip.AddrFrom4([4]byte{192, 0, 2, byte(128 + len(g.keyed)%120)})
			g.keyed = append(g.keyed, i)
		}
	}

	for i := range 4 {
		g.emps = append(g.emps, employee{
			id: "emp-support-" + pad(i+1, 2),
			ip: netip.AddrFrom4([4]byte{192, 0, 2, byte(10 + i)}),
			ua: uas[i%len(uas)],
		})
	}

	names := [numServices][2]string{
		svcReminder: {"reminder-service", "reminder-service/2.3"},
		svcBilling:  {"billing-service", "billing-service/1.9.2"},
		svcIndexer:  {"search-indexer", "search-indexer/4.0.1"},
		svcExport:   {"export-service", "export-service/1.2"},
	}
	for s := range g.svcs {
		g.svcs[s].id, g.svcs[s].ua = names[s][0], names[s][1]
		for p := range g.svcs[s].ips {
			g.svcs[s].ips[p] = netip.AddrFrom4([4]byte{10, byte(20 + s), byte(1 + p), byte(10 + r.IntN(240))})
		}
	}

	g.cfg = []cfgResource{
		{id: "arn:aws:elasticloadbalancing:eu-west-1:123456789012:loadbalancer/app/booking-api/5f1c2e9a7b3d4c60", typ: "endpoint", store: StoreMain},
		{id: "arn:aws:elasticloadbalancing:eu-west-1:123456789012:loadbalancer/app/billing-api/0a7d93c4e1b25f86", typ: "endpoint", store: StoreBilling},
		{id: "arn:aws:rds:eu-west-1:123456789012:db:postgres-eu-1", typ: "database", store: StoreMain},
		{id: "arn:aws:rds:eu-west-1:123456789012:db:postgres-billing", typ: "database", store: StoreBilling},
		{id: "arn:aws:rds:eu-west-1:123456789012:db:auth", typ: "database", store: StoreAuth},
		{id: "arn:aws:s3:::exports-eu", typ: "bucket", store: StoreExports},
	}
	for i := range g.cfg {
		c := &g.cfg[i]
		c.tls = "1.2"
		c.hsts = 15552000
		c.retention = 7
		c.audit = r.IntN(2) == 0
		c.versioning = r.IntN(2) == 0
		c.tagsRev = r.IntN(8)
	}
	if o.Breach {
		g.br = newBreach(o.Seed, seedHex)
	}
	return g
}

// Tenants returns the tenant ids the generator uses ("cust-0001", ...).
func (g *Generator) Tenants() []string {
	return append([]string(nil), g.ids...)
}

// Next appends one event happening at now to b: usually an access event;
// rarely (about 1 in 2000) a configuration change. now should be a valid
// event time (between 1970 and 2106) and, for realistic traffic, should not
// go backwards between calls. With Options.Breach, a call may instead emit
// a due event of a breach scenario, whose time is at or before now.
func (g *Generator) Next(now time.Time, b *event.Batch) {
	t := now.UTC()
	if g.br != nil && g.inject(t, b) {
		return
	}
	g.calls++
	if g.rng.IntN(2000) == 0 {
		g.configChange(t, b)
		return
	}
	if g.followUp(t, b) {
		return
	}
	// Weights per mille.
	x := g.rng.IntN(1000)
	switch {
	case x < 60:
		if g.login(t, b) {
			return
		}
	case x < 110:
		if len(g.keyed) > 0 {
			g.calendarSync(t, b)
			return
		}
	case x < 150:
		g.serviceRead(t, b, svcReminder)
		return
	case x < 165:
		g.serviceRead(t, b, svcBilling)
		return
	case x < 200:
		g.serviceRead(t, b, svcIndexer)
		return
	case x < 206:
		if g.supportTicket(t, b) {
			return
		}
	case x < 210:
		if g.export(t, b) {
			return
		}
	}
	if !g.userData(t, b) {
		g.serviceRead(t, b, svcReminder)
	}
}

// followUp emits the first due step of a scenario in progress, if any.
func (g *Generator) followUp(t time.Time, b *event.Batch) bool {
	i := 0
	for i < len(g.pending) && g.pending[i].at > g.calls {
		i++
	}
	if i == len(g.pending) {
		return false
	}
	p := g.pending[i]
	g.pending = append(g.pending[:i], g.pending[i+1:]...)
	switch p.kind {
	case pLoginFailed, pLoginOK:
		u := &g.users[p.user]
		g.loginEvent(t, b, u, p.kind == pLoginOK)
		if p.kind == pLoginFailed {
			g.later(pending{kind: pLoginOK, user: p.user}, 1, 6)
		} else {
			u.inLogin = false
		}
	case pSupportRead:
		g.supportRead(t, b, &p)
		p.left--
		if p.left > 0 {
			g.later(p, 2, 40)
		} else {
			g.emps[p.emp].busy = false
		}
	case pDownload:
		u := &g.users[p.user]
		e := g.access(t, b)
		g.asUser(e, u)
		e.Action = event.ActionDownload
		e.Resource = event.Resource{Type: "file", ID: p.file, Store: StoreExports}
		e.Records = p.records
		e.Categories = []string{"booking", "contact"}
		u.export = false
		g.tenants[p.tenant].exporting = false
	}
	return true
}

// later queues p to happen after between min and max further calls.
func (g *Generator) later(p pending, min, max int) {
	p.at = g.calls + uint64(min+g.rng.IntN(max-min+1))
	g.pending = append(g.pending, p)
}

// access appends a new access event with the fields every event shares.
func (g *Generator) access(t time.Time, b *event.Batch) *event.AccessEvent {
	b.Access = append(b.Access, event.AccessEvent{})
	e := &b.Access[len(b.Access)-1]
	g.nAccess++
	e.ID = g.aPrefix + strconv.FormatUint(g.nAccess, 10)
	e.Time = t
	e.Records = 1
	e.Outcome = event.OutcomeSuccess
	e.RequestID = g.requestID()
	return e
}

func (g *Generator) asUser(e *event.AccessEvent, u *user) {
	tn := &g.tenants[u.tenant]
	e.Tenant = tn.id
	e.Actor = event.Actor{ID: u.id, Type: event.ActorCustomerUser, Tenant: tn.id}
	e.Country = tn.country
	e.SourceIP, e.UserAgent = u.ip, u.ua
	if u.mobileIP.IsValid() && g.rng.IntN(100) < 15 {
		e.SourceIP, e.UserAgent = u.mobileIP, u.mobileUA
	}
}

func (g *Generator) asService(e *event.AccessEvent, s int, tenant int) {
	sv := &g.svcs[s]
	e.Tenant = g.tenants[tenant].id
	e.Actor = event.Actor{ID: sv.id, Type: event.ActorService}
	e.SourceIP = sv.ips[g.rng.IntN(len(sv.ips))]
	e.UserAgent = sv.ua
}

// pickTenant picks a tenant by activity weight.
func (g *Generator) pickTenant() int {
	x := g.rng.IntN(g.cum[len(g.cum)-1])
	lo, hi := 0, len(g.cum)-1
	for lo < hi {
		mid := (lo + hi) / 2
		if g.cum[mid] > x {
			hi = mid
		} else {
			lo = mid + 1
		}
	}
	return lo
}

// pickUser picks an active user who is not in the middle of logging in
// (nor, when idle is set, waiting for an export), returning its index; -1
// when it found none.
func (g *Generator) pickUser(idle bool) int {
	for range 8 {
		tn := &g.tenants[g.pickTenant()]
		i := tn.users[g.rng.IntN(len(tn.users))]
		if u := &g.users[i]; !u.inLogin && !(idle && u.export) {
			return i
		}
	}
	return -1
}

const (
	resBooking = iota
	resCalendar
	resContact
	resInvoice
)

// userData is a staff user working in their own tenant's data.
func (g *Generator) userData(t time.Time, b *event.Batch) bool {
	ui := g.pickUser(false)
	if ui < 0 {
		return false
	}
	u := &g.users[ui]
	r := g.rng.IntN(100)
	var res int
	switch {
	case r < 45:
		res = resBooking
	case r < 70:
		res = resCalendar
	case r < 90:
		res = resContact
	case u.manager:
		res = resInvoice
	default:
		res = resBooking
	}
	// A receptionist clicking on "Invoices", which their role lacks.
	denied := !u.manager && g.rng.IntN(250) == 0
	if denied {
		res = resInvoice
	}

	e := g.access(t, b)
	g.asUser(e, u)
	tn := &g.tenants[u.tenant]
	a := g.rng.IntN(100)
	switch res {
	case resBooking:
		e.Resource = event.Resource{Type: "booking", Store: StoreMain}
		e.Categories = []string{"booking", "contact"}
		e.Action = pickAction(a, 40, 62, 72, 88) // read, list, search, update, create
		if e.Action != event.ActionList && e.Action != event.ActionSearch {
			e.Resource.ID = g.bookingID(tn)
		}
	case resCalendar:
		e.Resource = event.Resource{Type: "calendar", Store: StoreMain}
		e.Categories = []string{"booking"}
		e.Action = pickAction(a, 45, 85, 85, 100) // read, list, update
		if e.Action != event.ActionList {
			e.Resource.ID = u.calendar
			if g.rng.IntN(3) == 0 { // a colleague's calendar
				e.Resource.ID = g.users[tn.users[g.rng.IntN(len(tn.users))]].calendar
			}
		}
	case resContact:
		e.Resource = event.Resource{Type: "contact", Store: StoreMain}
		e.Categories = []string{"contact"}
		e.Action = pickAction(a, 45, 60, 80, 92)
		if e.Action != event.ActionList && e.Action != event.ActionSearch {
			e.Resource.ID = g.contactID(tn)
		}
	case resInvoice:
		e.Resource = event.Resource{Type: "invoice", Store: StoreBilling}
		e.Categories = []string{"contact", "payment"}
		e.Action = pickAction(a, 50, 85, 85, 85) // read, list, create
		if e.Action != event.ActionList {
			e.Resource.ID = g.id("inv-", tn.num, 1000+g.rng.IntN(9000))
		}
	}
	if e.Action == event.ActionList || e.Action == event.ActionSearch {
		e.Records = g.smallCount()
	}
	switch {
	case denied:
		e.Outcome, e.Records = event.OutcomeDenied, 0
	case g.rng.IntN(700) == 0:
		e.Outcome, e.Records = event.OutcomeError, 0
	}
	return true
}

// pickAction maps a in [0,100) to read below r, list below l, search below
// s, update below up and create above.
func pickAction(a, r, l, s, up int) string {
	switch {
	case a < r:
		return event.ActionRead
	case a < l:
		return event.ActionList
	case a < s:
		return event.ActionSearch
	case a < up:
		return event.ActionUpdate
	}
	return event.ActionCreate
}

// smallCount is the size of a page of results: 1..50, mostly small.
func (g *Generator) smallCount() int64 {
	if g.rng.IntN(5) == 0 {
		return int64(1 + g.rng.IntN(50))
	}
	return int64(1 + g.rng.IntN(12))
}

// login is a user logging in; sometimes after one or two typos.
func (g *Generator) login(t time.Time, b *event.Batch) bool {
	ui := g.pickUser(true)
	if ui < 0 {
		return false
	}
	u := &g.users[ui]
	if g.rng.IntN(100) >= 7 {
		g.loginEvent(t, b, u, true)
		return true
	}
	u.inLogin = true
	g.loginEvent(t, b, u, false)
	next := pLoginOK
	if g.rng.IntN(5) == 0 {
		next = pLoginFailed
	}
	g.later(pending{kind: next, user: ui}, 1, 6)
	return true
}

func (g *Generator) loginEvent(t time.Time, b *event.Batch, u *user, ok bool) {
	e := g.access(t, b)
	g.asUser(e, u)
	e.Resource = event.Resource{Type: "account", ID: u.id, Store: StoreAuth}
	e.Action = event.ActionLogin
	if !ok {
		e.Action, e.Records = event.ActionLoginFailed, 0
	}
}

// calendarSync is a tenant's calendar integration polling for changes.
func (g *Generator) calendarSync(t time.Time, b *event.Batch) {
	tn := &g.tenants[g.keyed[g.rng.IntN(len(g.keyed))]]
	e := g.access(t, b)
	e.Tenant = tn.id
	e.Actor = event.Actor{ID: tn.key, Type: event.ActorAPIKey, Tenant: tn.id}
	e.Action = event.ActionList
	e.Resource = event.Resource{Type: "calendar", Store: StoreMain}
	e.Records = int64(1 + g.rng.IntN(50))
	if g.rng.IntN(3) > 0 {
		e.Records = int64(1 + g.rng.IntN(8))
	}
	e.Categories = []string{"booking"}
	e.SourceIP = tn.keyIP
	e.Country = tn.country
	e.UserAgent = "CalendarSync/3.4 (+https://calsync.example)"
	if g.rng.IntN(1000) == 0 {
		e.Outcome, e.Records = event.OutcomeError, 0
	}
}

// serviceRead is background work of an internal service for one tenant.
func (g *Generator) serviceRead(t time.Time, b *event.Batch, s int) {
	e := g.access(t, b)
	g.asService(e, s, g.pickTenant())
	switch s {
	case svcReminder: // tomorrow's appointments, to send reminders
		e.Action = event.ActionRead
		e.Resource = event.Resource{Type: "booking", Store: StoreMain}
		e.Records = int64(1 + g.rng.IntN(20))
		e.Categories = []string{"booking", "contact"}
	case svcBilling: // charging no-show fees and deposits
		e.Action = event.ActionRead
		e.Resource = event.Resource{Type: "payment_method", Store: StoreBilling}
		e.Records = int64(1 + g.rng.IntN(5))
		e.Categories = []string{"payment"}
	case svcIndexer: // incremental re-indexing of changed contacts
		e.Action = event.ActionList
		e.Resource = event.Resource{Type: "contact", Store: StoreMain}
		e.Records = g.smallCount()
		e.Categories = []string{"contact"}
	}
	if g.rng.IntN(1000) == 0 {
		e.Outcome, e.Records = event.OutcomeError, 0
	}
}

// supportTicket starts a support ticket: an employee looks at one booking
// and its contact of one tenant, a few reads in all.
func (g *Generator) supportTicket(t time.Time, b *event.Batch) bool {
	n := len(g.emps)
	start := g.rng.IntN(n)
	for k := range n {
		ei := (start + k) % n
		emp := &g.emps[ei]
		oldest := emp.starts[emp.next]
		if emp.busy || (!oldest.IsZero() && t.Sub(oldest) < time.Hour) {
			continue
		}
		emp.starts[emp.next] = t
		emp.next = (emp.next + 1) % len(emp.starts)
		emp.busy = true
		ti := g.pickTenant()
		tn := &g.tenants[ti]
		p := pending{kind: pSupportRead, emp: ei, tenant: ti, left: 2 + g.rng.IntN(3),
			booking: g.bookingID(tn), contact: g.contactID(tn)}
		g.supportRead(t, b, &p)
		p.left--
		g.later(p, 2, 40)
		return true
	}
	return false
}

func (g *Generator) supportRead(t time.Time, b *event.Batch, p *pending) {
	emp := &g.emps[p.emp]
	e := g.access(t, b)
	e.Tenant = g.tenants[p.tenant].id
	e.Actor = event.Actor{ID: emp.id, Type: event.ActorEmployee, Groups: []string{"support"}}
	e.Action = event.ActionRead
	if p.left%2 == 0 {
		e.Resource = event.Resource{Type: "booking", ID: p.booking, Store: StoreMain}
		e.Categories = []string{"booking", "contact"}
	} else {
		e.Resource = event.Resource{Type: "contact", ID: p.contact, Store: StoreMain}
		e.Categories = []string{"contact"}
	}
	e.SourceIP = emp.ip
	e.Country = "NL"
	e.UserAgent = emp.ua
}

// export is a manager exporting their tenant's bookings: the export service
// reads them, then the manager downloads the file.
func (g *Generator) export(t time.Time, b *event.Batch) bool {
	ti := g.pickTenant()
	tn := &g.tenants[ti]
	if tn.exporting || (!tn.lastExport.IsZero() && t.Sub(tn.lastExport) < exportGap) {
		return false
	}
	ui := tn.managers[g.rng.IntN(len(tn.managers))]
	u := &g.users[ui]
	if u.inLogin || u.export {
		return false
	}
	n := int64(50 + g.rng.IntN(400))
	if g.rng.IntN(8) == 0 {
		n = int64(50 + g.rng.IntN(1951))
	}
	tn.exporting, tn.lastExport, u.export = true, t, true
	g.nExport++

	e := g.access(t, b)
	g.asService(e, svcExport, ti)
	e.Action = event.ActionExport
	e.Resource = event.Resource{Type: "booking", Store: StoreMain}
	e.Records = n
	e.Categories = []string{"booking", "contact"}

	file := "exports/" + tn.id + "/bookings-" + strconv.FormatUint(g.nExport, 10) + ".csv"
	g.later(pending{kind: pDownload, user: ui, tenant: ti, records: n, file: file}, 3, 60)
	return true
}

func (g *Generator) bookingID(tn *tenant) string {
	return g.id("bk-", tn.num, 100000+g.rng.IntN(900000))
}

func (g *Generator) contactID(tn *tenant) string {
	return g.id("ct-", tn.num, 10000+g.rng.IntN(90000))
}

// id returns prefix + num + "-" + n.
func (g *Generator) id(prefix, num string, n int) string {
	b := append(g.buf[:0], prefix...)
	b = append(b, num...)
	b = append(b, '-')
	b = strconv.AppendInt(b, int64(n), 10)
	g.buf = b
	return string(b)
}

func (g *Generator) requestID() string {
	const hex = "0123456789abcdef"
	x := g.rng.Uint64()
	b := append(g.buf[:0], "req-"...)
	for i := 60; i >= 0; i -= 4 {
		b = append(b, hex[x>>uint(i)&0xf])
	}
	g.buf = b
	return string(b)
}

// randIP returns a documentation-range address: IPv4 from 198.51.100.0/24
// or 203.0.113.0/24, or IPv6 in 2001:db8:net:host::/64.
func (g *Generator) randIP(v6 bool, net, host uint16) netip.Addr {
	if v6 {
		x := g.rng.Uint64()
		return netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, byte(net >> 8), byte(net), byte(host >> 8), byte(host),
			byte(x >> 56), byte(x >> 48), byte(x >> 40), byte(x >> 32), byte(x >> 24), byte(x >> 16), byte(x >> 8), byte(x) | 1})
	}
	h := byte(1 + g.rng.IntN(254))
	if g.rng.IntN(2) == 0 {
		return netip.AddrFrom4([4]byte{198, 51, 100, h})
	}
	return netip.AddrFrom4([4]byte{203, 0, 113, h})
}

// pad formats n in decimal with at least width digits.
func pad(n, width int) string {
	s := strconv.Itoa(n)
	for len(s) < width {
		s = "0" + s
	}
	return s
}

func browserUAs() [7]string {
	return [...]string{
		"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
		"Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Safari/605.1.15",
		"Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:133.0) Gecko/20100101 Firefox/133.0",
		"Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
		"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36 Edg/131.0.0.0",
		"Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
		"Mozilla/5.0 (Macintosh; Intel Mac OS X 14.7; rv:133.0) Gecko/20100101 Firefox/133.0",
	}
}

func mobileUAs() [3]string {
	return [...]string{
		"Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1",
		"Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Mobile Safari/537.36",
		"Mozilla/5.0 (iPad; CPU OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1",
	}
}

// cfgResource is a piece of infrastructure the deploy bot manages, with the
// current values of the settings it changes. Changes only ever keep or
// strengthen a setting.
type cfgResource struct {
	id, typ, store string
	tls            string // minimum TLS version of an endpoint
	hsts           int    // HSTS max-age of an endpoint, seconds
	retention      int    // backup retention of a database, days
	audit          bool   // audit (access) logging
	versioning     bool   // bucket object versioning
	tagsRev        int
}

// configChange is a benign Terraform apply.
func (g *Generator) configChange(t time.Time, b *event.Batch) {
	r := &g.cfg[g.rng.IntN(len(g.cfg))]
	b.Config = append(b.Config, event.ConfigChange{})
	c := &b.Config[len(b.Config)-1]
	g.nConfig++
	c.ID = g.cPrefix + strconv.FormatUint(g.nConfig, 10)
	c.Time = t
	c.Resource = event.ConfigResource{ID: r.id, Type: r.typ, Store: r.store, Provider: "aws", Region: "eu-west-1"}
	c.Actor = &event.Actor{ID: "deploy-bot", Type: event.ActorService}
	c.Source = "terraform"

	x := g.rng.IntN(100)
	switch {
	case x < 30: // tags are the most common change everywhere
		c.Setting = "tags"
		c.Before = tagsJSON(r.tagsRev)
		r.tagsRev++
		c.After = tagsJSON(r.tagsRev)
	case r.typ == "endpoint" && x < 70:
		c.Setting = "tls_min_version"
		c.Before = jsonString(r.tls)
		r.tls = "1.3"
		c.After = jsonString(r.tls)
	case r.typ == "endpoint":
		c.Setting = "hsts_max_age"
		c.Before = jsonInt(r.hsts)
		r.hsts = 31536000
		c.After = jsonInt(r.hsts)
	case r.typ == "database" && x < 55:
		c.Setting = "backup_retention_days"
		c.Before = jsonInt(r.retention)
		switch r.retention {
		case 7:
			r.retention = 14
		case 14:
			r.retention = 30
		case 30:
			r.retention = 35
		}
		c.After = jsonInt(r.retention)
	case r.typ == "bucket" && x < 50:
		c.Setting = "versioning"
		c.Before = jsonBool(r.versioning)
		r.versioning = true
		c.After = jsonBool(true)
	case r.typ == "bucket" && x < 60:
		c.Setting = "public_access" // re-applied, unchanged: still private
		c.Before = jsonBool(false)
		c.After = jsonBool(false)
	case x < 80:
		c.Setting = "encryption_at_rest" // re-applied, unchanged
		c.Before = jsonBool(true)
		c.After = jsonBool(true)
	default:
		c.Setting = "audit_logging"
		c.Before = jsonBool(r.audit)
		r.audit = true
		c.After = jsonBool(true)
	}
}

func jsonBool(v bool) json.RawMessage {
	if v {
		return json.RawMessage("true")
	}
	return json.RawMessage("false")
}

func jsonInt(n int) json.RawMessage { return strconv.AppendInt(nil, int64(n), 10) }

func jsonString(s string) json.RawMessage { return strconv.AppendQuote(nil, s) }

func tagsJSON(rev int) json.RawMessage {
	teams := [...]string{"platform", "bookings", "payments", "sre"}
	b := append([]byte(nil), `{"cost-center":"cc-`...)
	b = strconv.AppendInt(b, int64(100+rev%7), 10)
	b = append(b, `","env":"prod","owner":"team-`...)
	b = append(b, teams[rev%len(teams)]...)
	b = append(b, `"}`...)
	return b
}
