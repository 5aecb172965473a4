// Package clickhouse is breachwatch's store for production volumes: events in
// ClickHouse over the native protocol (clickhouse-go/v2).
//
// The SQL here runs on ClickHouse 18.16 (Debian's package, which the tests
// use) and on current releases: no DateTime64 (time is a DateTime plus a
// nanosecond column), no LowCardinality, no JSON functions.
//
// Each table is a ReplacingMergeTree partitioned by day and ordered by
// (resource_store, time, id): writing an event twice leaves one row after
// merges, and every read here de-duplicates (FINAL, uniqExact, or — for the
// event scans — skipping the copies its order puts side by side) so it never
// sees two. Each INSERT names its columns and carries one day, so it lands
// in one partition. Retention drops whole partitions.
package clickhouse

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	ch "github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/breachwatch/breachwatch/event"
	"github.com/breachwatch/breachwatch/incident"
)

// Options says how to reach ClickHouse.
type Options struct {
	Addr        []string // host:port of the native protocol (9000, or 9440 with TLS)
	Database    string   // created if missing; default "breachwatch"
	Username    string   // default "default"
	Password    string
	TLS         *tls.Config // nil for plain TCP
	DialTimeout time.Duration
	// MaxOpenConns bounds the connection pool (default 8).
	MaxOpenConns int
	// Compression of the native protocol: "lz4" (the default), "zstd" or
	// "none" (saves CPU on both ends when ClickHouse is on the same host).
	Compression string
}

// Store is the ClickHouse store. It is safe for concurrent use.
type Store struct {
	conn driver.Conn
	db   string
	pool sync.Pool // of *columns
}

var identifier = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// Open connects, creates the database if needed and brings the schema up to
// date. It fails if the server does not answer within the dial timeout.
func Open(ctx context.Context, o Options) (*Store, error) {
	if len(o.Addr) == 0 {
		return nil, errors.New("clickhouse store: no address")
	}
	if o.Database == "" {
		o.Database = "breachwatch"
	}
	if !identifier.MatchString(o.Database) {
		return nil, fmt.Errorf("clickhouse store: database name %q: use letters, digits and _", o.Database)
	}
	if o.Username == "" {
		o.Username = "default"
	}
	if o.DialTimeout == 0 {
		o.DialTimeout = 5 * time.Second
	}
	if o.MaxOpenConns == 0 {
		o.MaxOpenConns = 8
	}
	var compression *ch.Compression
	switch o.Compression {
	case "", "lz4":
		compression = &ch.Compression{Method: ch.CompressionLZ4}
	case "zstd":
		compression = &ch.Compression{Method: ch.CompressionZSTD}
	case "none":
	default:
		return nil, fmt.Errorf("clickhouse store: compression %q: want lz4, zstd or none", o.Compression)
	}
	conn, err := ch.Open(&ch.Options{
		Addr:             o.Addr,
		Auth:             ch.Auth{Username: o.Username, Password: o.Password},
		TLS:              o.TLS,
		DialTimeout:      o.DialTimeout,
		ReadTimeout:      2 * time.Minute,
		MaxOpenConns:     o.MaxOpenConns,
		MaxIdleConns:     o.MaxOpenConns,
		ConnMaxLifetime:  time.Hour,
		Compression:      compression,
		ConnOpenStrategy: ch.ConnOpenRoundRobin,
	})
	if err != nil {
		return nil, fmt.Errorf("clickhouse store: %w", err)
	}
	s := &Store{conn: conn, db: o.Database}
	s.pool.New = func() any { return new(columns) }
	if err := s.migrate(ctx); err != nil {
		conn.Close()
		return nil, err
	}
	return s, nil
}

// Close closes the connections.
func (s *Store) Close() error { return s.conn.Close() }

// Ping checks that the server answers.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.conn.Ping(ctx); err != nil {
		return fmt.Errorf("clickhouse store: ping: %w", err)
	}
	return nil
}

func (s *Store) table(name string) string { return "`" + s.db + "`.`" + name + "`" }

// migrations are applied in order, each once; every statement is idempotent
// so that a migration interrupted half-way can run again.
var migrations = [][]string{
	{ // v1: events
		`CREATE TABLE IF NOT EXISTS {db}.access_events (
			id String,
			time DateTime('UTC'),
			time_ns UInt32,
			tenant String,
			actor_id String,
			actor_type String,
			actor_tenant String,
			actor_groups Array(String),
			action String,
			resource_type String,
			resource_id String,
			resource_store String,
			records UInt64,
			categories Array(String),
			outcome String,
			source_ip String,
			country String,
			user_agent String,
			request_id String,
			extra String,
			ingested_at DateTime('UTC') DEFAULT now()
		) ENGINE = ReplacingMergeTree()
		PARTITION BY toYYYYMMDD(time)
		ORDER BY (resource_store, time, id)`,
		`CREATE TABLE IF NOT EXISTS {db}.config_changes (
			id String,
			time DateTime('UTC'),
			time_ns UInt32,
			resource_id String,
			resource_type String,
			resource_store String,
			resource_provider String,
			resource_region String,
			setting String,
			before String,
			after String,
			actor_id String,
			actor_type String,
			actor_tenant String,
			actor_groups Array(String),
			source String,
			extra String,
			ingested_at DateTime('UTC') DEFAULT now()
		) ENGINE = ReplacingMergeTree()
		PARTITION BY toYYYYMMDD(time)
		ORDER BY (resource_store, time, id)`,
	},
	{ // v2: findings; each report is a row, the newest (version) wins at merges
		`CREATE TABLE IF NOT EXISTS {db}.findings (
			fingerprint String,
			rule_id String,
			severity String,
			window_start DateTime('UTC'),
			detected_at DateTime('UTC'),
			detected_ns UInt32,
			version UInt64,
			body String
		) ENGINE = ReplacingMergeTree(version)
		ORDER BY fingerprint`,
	},
	// v3: the incidents' audit log, one hash-chained entry per change;
	// idempotent on seq.
	{
		`CREATE TABLE IF NOT EXISTS {db}.audit_log (
			seq UInt64,
			at DateTime('UTC'),
			at_ns UInt32,
			incident String,
			actor String,
			action String,
			reason String,
			data String,
			prev String,
			hash String
		) ENGINE = ReplacingMergeTree()
		ORDER BY seq`,
	},
	// v4: whose data each store holds: events per store, tenant and day,
	// summed by a materialized view as events arrive, so that scoping an
	// exposure need not scan history. Filled from the events already
	// stored before the view starts (migrations run before ingest does).
	{
		`CREATE TABLE IF NOT EXISTS {db}.store_tenants (
			store String,
			tenant String,
			day Date,
			events UInt64,
			records UInt64
		) ENGINE = SummingMergeTree()
		PARTITION BY toYYYYMMDD(day)
		ORDER BY (store, tenant, day)`,
		// Emptied first: a migration cut short (before its version was
		// recorded) runs again whole, and a second fill would double the
		// sums. The view comes after, so nothing else has written yet.
		`TRUNCATE TABLE IF EXISTS {db}.store_tenants`,
		`INSERT INTO {db}.store_tenants (store, tenant, day, events, records)
			SELECT resource_store, tenant, toDate(time), count(), sum(records) FROM {db}.access_events FINAL
			GROUP BY resource_store, tenant, toDate(time)`,
		`CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.store_tenants_mv TO {db}.store_tenants AS
			SELECT resource_store AS store, tenant, toDate(time) AS day, count() AS events, sum(records) AS records
			FROM {db}.access_events GROUP BY store, tenant, day`,
	},
	// v5: the notice outbox (one row per delivery, written before sending;
	// each state change is a row with a higher ver, the newest wins) and
	// the events that happened to deliveries afterwards (once per id).
	{
		`CREATE TABLE IF NOT EXISTS {db}.outbox (
			id String,
			incident String,
			version UInt32,
			tenant String,
			recipient String,
			channel String,
			facts String,
			state String,
			attempts UInt32,
			batch String,
			error String,
			created_ns Int64,
			updated_ns Int64,
			sent_ns Int64,
			ver UInt64
		) ENGINE = ReplacingMergeTree(ver)
		ORDER BY (incident, id)`,
		`CREATE TABLE IF NOT EXISTS {db}.delivery_events (
			id String,
			delivery String,
			incident String,
			tenant String,
			type String,
			at_ns Int64,
			detail String
		) ENGINE = ReplacingMergeTree()
		ORDER BY (incident, id)`,
	},
	// v6: the reads that may be unauthorized (anonymous, by staff, or by
	// another tenant's account), copied by a materialized view into a
	// narrow table of their own with the events' order and partitions, so
	// that scoping an exposure reads those few rows of the window instead
	// of every event of it (staff are checked against the privileged
	// groups, which are configuration, at query time). Filled from the
	// events already stored; a row copied twice is counted once (reads
	// de-duplicate by id).
	{
		`CREATE TABLE IF NOT EXISTS {db}.suspect_reads (
			id String,
			time DateTime('UTC'),
			time_ns UInt32,
			tenant String,
			actor_type String,
			actor_tenant String,
			actor_groups Array(String),
			resource_store String,
			records UInt64,
			categories Array(String)
		) ENGINE = ReplacingMergeTree()
		PARTITION BY toYYYYMMDD(time)
		ORDER BY (resource_store, time, id)`,
		`CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.suspect_reads_mv TO {db}.suspect_reads AS
			SELECT ` + suspectCols + ` FROM {db}.access_events WHERE ` + suspectWhere,
		`INSERT INTO {db}.suspect_reads (` + suspectCols + `) SELECT ` + suspectCols + ` FROM {db}.access_events WHERE ` + suspectWhere,
	},
	// v7: API tokens revoked by an admin (by name); the first revocation
	// of a name stands (read with min(at)).
	{
		`CREATE TABLE IF NOT EXISTS {db}.revoked_tokens (
			name String,
			at_ns Int64,
			by String,
			reason String
		) ENGINE = MergeTree()
		ORDER BY (name, at_ns)`,
	},
}

// The suspect reads (v6): successful reads by anonymous callers, staff,
// or another tenant's users and API keys.
const (
	suspectCols  = "id, time, time_ns, tenant, actor_type, actor_tenant, actor_groups, resource_store, records, categories"
	suspectWhere = "outcome = 'success' AND (actor_type IN ('anonymous', 'employee') OR (actor_type IN ('customer_user', 'api_key') AND actor_tenant != tenant))"
)

// SchemaVersion is the schema version this code writes.
func SchemaVersion() int { return len(migrations) }

func (s *Store) migrate(ctx context.Context) error {
	if err := s.conn.Exec(ctx, "CREATE DATABASE IF NOT EXISTS `"+s.db+"`"); err != nil {
		return fmt.Errorf("clickhouse store: create database %s: %w", s.db, err)
	}
	if err := s.conn.Exec(ctx, `CREATE TABLE IF NOT EXISTS `+s.table("schema_migrations")+
		` (version UInt32, applied_at DateTime('UTC') DEFAULT now()) ENGINE = MergeTree() ORDER BY version`); err != nil {
		return fmt.Errorf("clickhouse store: create schema_migrations: %w", err)
	}
	var current uint32
	if err := s.conn.QueryRow(ctx, "SELECT max(version) FROM "+s.table("schema_migrations")).Scan(&current); err != nil {
		return fmt.Errorf("clickhouse store: read schema version: %w", err)
	}
	if int(current) > len(migrations) {
		return fmt.Errorf("clickhouse store: schema version %d is newer than this breachwatch knows (%d); refusing to run an older binary on newer data", current, len(migrations))
	}
	for v := int(current); v < len(migrations); v++ {
		for _, stmt := range migrations[v] {
			if err := s.conn.Exec(ctx, replaceDB(stmt, s.table)); err != nil {
				return fmt.Errorf("clickhouse store: migrate to v%d: %w", v+1, err)
			}
		}
		// Over the native protocol, 18.16 takes an INSERT's rows only as data
		// blocks (not inline VALUES), so every insert goes through a batch.
		if err := s.send(ctx, "schema_migrations", "version", []any{[]uint32{uint32(v + 1)}}); err != nil {
			return fmt.Errorf("clickhouse store: record schema v%d: %w", v+1, err)
		}
	}
	return nil
}

var dbPlaceholder = regexp.MustCompile(`\{db\}\.([a-z_]+)`)

func replaceDB(stmt string, table func(string) string) string {
	return dbPlaceholder.ReplaceAllStringFunc(stmt, func(m string) string { return table(m[len("{db}."):]) })
}

// columns is one INSERT's worth of column buffers, reused across writes.
type columns struct {
	id, tenant, actorID, actorType, actorTenant, action, resType, resID, resStore []string
	outcome, ip, country, ua, reqID, extra                                        []string
	resProvider, resRegion, setting, before, after, source                        []string
	t                                                                             []time.Time
	ns                                                                            []uint32
	records                                                                       []uint64
	groups, categories                                                            [][]string
}

func (c *columns) reset() {
	for _, p := range []*[]string{&c.id, &c.tenant, &c.actorID, &c.actorType, &c.actorTenant, &c.action, &c.resType,
		&c.resID, &c.resStore, &c.outcome, &c.ip, &c.country, &c.ua, &c.reqID, &c.extra, &c.resProvider,
		&c.resRegion, &c.setting, &c.before, &c.after, &c.source} {
		clear(*p)
		*p = (*p)[:0]
	}
	c.t, c.ns, c.records = c.t[:0], c.ns[:0], c.records[:0]
	clear(c.groups)
	clear(c.categories)
	c.groups, c.categories = c.groups[:0], c.categories[:0]
}

const accessColumns = "id, time, time_ns, tenant, actor_id, actor_type, actor_tenant, actor_groups, action, " +
	"resource_type, resource_id, resource_store, records, categories, outcome, source_ip, country, user_agent, " +
	"request_id, extra"

const configColumns = "id, time, time_ns, resource_id, resource_type, resource_store, resource_provider, " +
	"resource_region, setting, before, after, actor_id, actor_type, actor_tenant, actor_groups, source, extra"

// Write stores the batch: one INSERT per table and UTC day. ClickHouse has
// no transactions across INSERTs, so a failed Write may have stored part of
// the batch; writing it again is harmless (the tables de-duplicate by id).
func (s *Store) Write(ctx context.Context, b *event.Batch) error {
	err := byDay(b.Access, func(e *event.AccessEvent) time.Time { return e.Time }, func(evs []event.AccessEvent) error {
		return s.insertAccess(ctx, evs)
	})
	if err != nil {
		return err
	}
	return byDay(b.Config, func(c *event.ConfigChange) time.Time { return c.Time }, func(cs []event.ConfigChange) error {
		return s.insertConfig(ctx, cs)
	})
}

// byDay calls insert with the items of each UTC day, in day order. The
// common case, one day, costs no copy.
func byDay[T any](items []T, at func(*T) time.Time, insert func([]T) error) error {
	if len(items) == 0 {
		return nil
	}
	first := dayOf(at(&items[0]))
	mixed := false
	for i := range items {
		if dayOf(at(&items[i])) != first {
			mixed = true
			break
		}
	}
	if !mixed {
		return insert(items)
	}
	groups := map[int64][]T{}
	for i := range items {
		d := dayOf(at(&items[i]))
		groups[d] = append(groups[d], items[i])
	}
	days := make([]int64, 0, len(groups))
	for d := range groups {
		days = append(days, d)
	}
	slices.Sort(days)
	for _, d := range days {
		if err := insert(groups[d]); err != nil {
			return err
		}
	}
	return nil
}

func dayOf(t time.Time) int64 { return t.Unix() / 86400 }

func (s *Store) insertAccess(ctx context.Context, evs []event.AccessEvent) error {
	c := s.pool.Get().(*columns)
	defer func() { c.reset(); s.pool.Put(c) }()
	for i := range evs {
		e := &evs[i]
		ip := ""
		if e.SourceIP.IsValid() {
			ip = e.SourceIP.String()
		}
		c.id = append(c.id, e.ID)
		c.t = append(c.t, e.Time)
		c.ns = append(c.ns, uint32(e.Time.Nanosecond()))
		c.tenant = append(c.tenant, e.Tenant)
		c.actorID = append(c.actorID, e.Actor.ID)
		c.actorType = append(c.actorType, e.Actor.Type)
		c.actorTenant = append(c.actorTenant, e.Actor.Tenant)
		c.groups = append(c.groups, nonNil(e.Actor.Groups))
		c.action = append(c.action, e.Action)
		c.resType = append(c.resType, e.Resource.Type)
		c.resID = append(c.resID, e.Resource.ID)
		c.resStore = append(c.resStore, e.Resource.Store)
		c.records = append(c.records, uint64(e.Records))
		c.categories = append(c.categories, nonNil(e.Categories))
		c.outcome = append(c.outcome, e.Outcome)
		c.ip = append(c.ip, ip)
		c.country = append(c.country, e.Country)
		c.ua = append(c.ua, e.UserAgent)
		c.reqID = append(c.reqID, e.RequestID)
		c.extra = append(c.extra, string(e.Extra))
	}
	return s.send(ctx, "access_events", accessColumns, []any{c.id, c.t, c.ns, c.tenant, c.actorID, c.actorType,
		c.actorTenant, c.groups, c.action, c.resType, c.resID, c.resStore, c.records, c.categories, c.outcome,
		c.ip, c.country, c.ua, c.reqID, c.extra})
}

func (s *Store) insertConfig(ctx context.Context, cs []event.ConfigChange) error {
	c := s.pool.Get().(*columns)
	defer func() { c.reset(); s.pool.Put(c) }()
	for i := range cs {
		x := &cs[i]
		var a event.Actor
		if x.Actor != nil {
			a = *x.Actor
		}
		c.id = append(c.id, x.ID)
		c.t = append(c.t, x.Time)
		c.ns = append(c.ns, uint32(x.Time.Nanosecond()))
		c.resID = append(c.resID, x.Resource.ID)
		c.resType = append(c.resType, x.Resource.Type)
		c.resStore = append(c.resStore, x.Resource.Store)
		c.resProvider = append(c.resProvider, x.Resource.Provider)
		c.resRegion = append(c.resRegion, x.Resource.Region)
		c.setting = append(c.setting, x.Setting)
		c.before = append(c.before, string(x.Before))
		c.after = append(c.after, string(x.After))
		c.actorID = append(c.actorID, a.ID)
		c.actorType = append(c.actorType, a.Type)
		c.actorTenant = append(c.actorTenant, a.Tenant)
		c.groups = append(c.groups, nonNil(a.Groups))
		c.source = append(c.source, x.Source)
		c.extra = append(c.extra, string(x.Extra))
	}
	return s.send(ctx, "config_changes", configColumns, []any{c.id, c.t, c.ns, c.resID, c.resType, c.resStore,
		c.resProvider, c.resRegion, c.setting, c.before, c.after, c.actorID, c.actorType, c.actorTenant, c.groups,
		c.source, c.extra})
}

func nonNil(ss []string) []string {
	if ss == nil {
		return []string{}
	}
	return ss
}

func (s *Store) send(ctx context.Context, table, cols string, data []any) error {
	batch, err := s.conn.PrepareBatch(ctx, "INSERT INTO "+s.table(table)+" ("+cols+")")
	if err != nil {
		return fmt.Errorf("clickhouse store: insert into %s: %w", table, err)
	}
	for i, col := range data {
		if err := batch.Column(i).Append(col); err != nil {
			_ = batch.Abort()
			return fmt.Errorf("clickhouse store: insert into %s: column %d: %w", table, i, err)
		}
	}
	if err := batch.Send(); err != nil {
		return fmt.Errorf("clickhouse store: insert into %s: %w", table, err)
	}
	return nil
}

// SaveFindings stores findings: per fingerprint the latest report, keeping
// the time it was first detected (reads take the earliest detected_at of
// all reports).
func (s *Store) SaveFindings(ctx context.Context, fs []incident.Finding) error {
	if len(fs) == 0 {
		return nil
	}
	n := len(fs)
	fp, rid, sev, body := make([]string, n), make([]string, n), make([]string, n), make([]string, n)
	ws, det := make([]time.Time, n), make([]time.Time, n)
	detNs := make([]uint32, n)
	ver := make([]uint64, n)
	now := uint64(time.Now().UnixNano())
	for i := range fs {
		f := fs[i]
		b, err := json.Marshal(&f)
		if err != nil {
			return fmt.Errorf("clickhouse store: finding %s: %w", f.Fingerprint, err)
		}
		fp[i], rid[i], sev[i], body[i] = f.Fingerprint, f.RuleID, f.Severity, string(b)
		ws[i], det[i], detNs[i] = f.WindowStart, f.DetectedAt, uint32(f.DetectedAt.Nanosecond())
		// The newest report by the finding's own version wins, whatever
		// order reports are written in; one without a version (older
		// code) counts as written now.
		ver[i] = f.Version
		if ver[i] == 0 {
			ver[i] = now + uint64(i)
		}
	}
	return s.send(ctx, "findings", "fingerprint, rule_id, severity, window_start, detected_at, detected_ns, version, body",
		[]any{fp, rid, sev, ws, det, detNs, ver, body})
}

// Findings lists the stored findings first detected at or after since,
// newest first, at most limit (0: no limit).
func (s *Store) Findings(ctx context.Context, since time.Time, limit int) ([]incident.Finding, error) {
	q := "SELECT argMax(body, version), min(toUInt64(detected_at) * 1000000000 + detected_ns) AS det FROM " +
		s.table("findings") + " GROUP BY fingerprint HAVING det >= ? ORDER BY det DESC, fingerprint"
	args := []any{uint64(max(since.UnixNano(), 0))}
	if limit > 0 {
		q += " LIMIT " + strconv.Itoa(limit)
	}
	rows, err := s.conn.Query(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("clickhouse store: findings: %w", err)
	}
	defer rows.Close()
	var out []incident.Finding
	for rows.Next() {
		var body string
		var det uint64
		if err := rows.Scan(&body, &det); err != nil {
			return nil, fmt.Errorf("clickhouse store: findings: %w", err)
		}
		var f incident.Finding
		if err := json.Unmarshal([]byte(body), &f); err != nil {
			return nil, fmt.Errorf("clickhouse store: finding: %w", err)
		}
		f.DetectedAt = time.Unix(0, int64(det)).UTC()
		out = append(out, f)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("clickhouse store: findings: %w", err)
	}
	return out, nil
}

// timeRange is the WHERE clause for from ≤ time < to at second precision,
// widened to whole seconds; callers filter the nanoseconds.
func timeRange(from, to time.Time) (string, []any) {
	return "time >= toDateTime(?) AND time <= toDateTime(?)", []any{secs(from), secs(to)}
}

func secs(t time.Time) int64 {
	switch {
	case t.Before(event.MinTime()):
		return 0
	case !t.Before(event.MaxTime()):
		return event.MaxTime().Unix()
	}
	return t.Unix()
}

// FindingsOf lists the latest report of each finding of a rule whose
// window starts in [from, to).
func (s *Store) FindingsOf(ctx context.Context, ruleID string, from, to time.Time) ([]incident.Finding, error) {
	q := "SELECT argMax(body, version), min(toUInt64(detected_at) * 1000000000 + detected_ns) AS det FROM " +
		s.table("findings") + " WHERE rule_id = ? AND window_start >= toDateTime(?) AND window_start <= toDateTime(?) GROUP BY fingerprint"
	rows, err := s.conn.Query(ctx, q, ruleID, secs(from), secs(to))
	if err != nil {
		return nil, fmt.Errorf("clickhouse store: findings of %s: %w", ruleID, err)
	}
	defer rows.Close()
	var out []incident.Finding
	for rows.Next() {
		var body string
		var det uint64
		if err := rows.Scan(&body, &det); err != nil {
			return nil, fmt.Errorf("clickhouse store: findings of %s: %w", ruleID, err)
		}
		var f incident.Finding
		if err := json.Unmarshal([]byte(body), &f); err != nil {
			return nil, fmt.Errorf("clickhouse store: finding: %w", err)
		}
		if f.WindowStart.Before(from) || !f.WindowStart.Before(to) {
			continue
		}
		f.DetectedAt = time.Unix(0, int64(det)).UTC()
		out = append(out, f)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("clickhouse store: findings of %s: %w", ruleID, err)
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].WindowStart.Equal(out[j].WindowStart) {
			return out[i].WindowStart.Before(out[j].WindowStart)
		}
		return out[i].Fingerprint < out[j].Fingerprint
	})
	return out, nil
}

// accessFieldColumns maps the access-event fields a group can be keyed by
// (as rules name them) to their columns.
var accessFieldColumns = map[string]string{
	"id": "id", "tenant": "tenant", "actor.id": "actor_id", "actor.type": "actor_type", "actor.tenant": "actor_tenant",
	"action": "action", "resource.type": "resource_type", "resource.id": "resource_id", "resource.store": "resource_store",
	"outcome": "outcome", "source_ip": "source_ip", "country": "country", "request_id": "request_id", "user_agent": "user_agent",
}

// ScanAccess calls fn for each stored access event with from ≤ time < to,
// in time order (then id order), until fn returns an error.
func (s *Store) ScanAccess(ctx context.Context, from, to time.Time, fn func(*event.AccessEvent) error) error {
	return s.ScanAccessWhere(ctx, from, to, nil, fn)
}

// ScanAccessWhere is ScanAccess for the events whose fields have the
// values given (fields it has no column for select nothing out).
func (s *Store) ScanAccessWhere(ctx context.Context, from, to time.Time, fv []event.FieldValue, fn func(*event.AccessEvent) error) error {
	where, args := timeRange(from, to)
	for _, w := range fv {
		if col, ok := accessFieldColumns[w.Field]; ok {
			where += " AND " + col + " = ?"
			args = append(args, w.Value)
		}
	}
	// Not FINAL: on 18.16 it merges every part of the day's partition for
	// each read (most of a correction's time). Copies of one event not
	// merged yet share its time and id, so the order below puts them next
	// to each other and the first is taken.
	rows, err := s.conn.Query(ctx, "SELECT "+accessColumns+" FROM "+s.table("access_events")+" WHERE "+where+
		" ORDER BY time, time_ns, id", args...)
	if err != nil {
		return fmt.Errorf("clickhouse store: scan access events: %w", err)
	}
	defer rows.Close()
	var lastID string
	var lastT time.Time
	for rows.Next() {
		var e event.AccessEvent
		var ns uint32
		var records uint64
		var ip, extra string
		if err := rows.Scan(&e.ID, &e.Time, &ns, &e.Tenant, &e.Actor.ID, &e.Actor.Type, &e.Actor.Tenant,
			&e.Actor.Groups, &e.Action, &e.Resource.Type, &e.Resource.ID, &e.Resource.Store, &records,
			&e.Categories, &e.Outcome, &ip, &e.Country, &e.UserAgent, &e.RequestID, &extra); err != nil {
			return fmt.Errorf("clickhouse store: scan access events: %w", err)
		}
		e.Time = time.Unix(e.Time.Unix(), int64(ns)).UTC()
		if e.ID == lastID && e.Time.Equal(lastT) {
			continue // a copy not merged yet
		}
		lastID, lastT = e.ID, e.Time
		if e.Time.Before(from) || !e.Time.Before(to) {
			continue
		}
		e.Records = int64(records)
		e.Actor.Groups, e.Categories = nilIfEmpty(e.Actor.Groups), nilIfEmpty(e.Categories)
		if ip != "" {
			if e.SourceIP, err = netip.ParseAddr(ip); err != nil {
				return fmt.Errorf("clickhouse store: event %q: source ip: %w", e.ID, err)
			}
		}
		e.Extra = rawOrNil(extra)
		if err := fn(&e); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("clickhouse store: scan access events: %w", err)
	}
	return nil
}

// ScanConfig calls fn for each stored configuration change with
// from ≤ time < to, in time order (then id order), until fn returns an error.
func (s *Store) ScanConfig(ctx context.Context, from, to time.Time, fn func(*event.ConfigChange) error) error {
	where, args := timeRange(from, to)
	rows, err := s.conn.Query(ctx, "SELECT "+configColumns+" FROM "+s.table("config_changes")+" FINAL WHERE "+where+
		" ORDER BY time, time_ns, id", args...)
	if err != nil {
		return fmt.Errorf("clickhouse store: scan config changes: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var c event.ConfigChange
		var a event.Actor
		var ns uint32
		var before, after, extra string
		if err := rows.Scan(&c.ID, &c.Time, &ns, &c.Resource.ID, &c.Resource.Type, &c.Resource.Store,
			&c.Resource.Provider, &c.Resource.Region, &c.Setting, &before, &after, &a.ID, &a.Type, &a.Tenant,
			&a.Groups, &c.Source, &extra); err != nil {
			return fmt.Errorf("clickhouse store: scan config changes: %w", err)
		}
		c.Time = time.Unix(c.Time.Unix(), int64(ns)).UTC()
		if c.Time.Before(from) || !c.Time.Before(to) {
			continue
		}
		c.Before, c.After, c.Extra = rawOrNil(before), json.RawMessage(after), rawOrNil(extra)
		if a.ID != "" {
			a.Groups = nilIfEmpty(a.Groups)
			c.Actor = &a
		}
		if err := fn(&c); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("clickhouse store: scan config changes: %w", err)
	}
	return nil
}

func nilIfEmpty(ss []string) []string {
	if len(ss) == 0 {
		return nil
	}
	return ss
}

func rawOrNil(s string) json.RawMessage {
	if s == "" {
		return nil
	}
	return json.RawMessage(s)
}

// Latest is the time of the newest stored event (the zero time if none),
// to the second.
func (s *Store) Latest(ctx context.Context) (time.Time, error) {
	var a, c, na, nc uint64
	q := "SELECT (SELECT toUInt64(max(time)) FROM " + s.table("access_events") + "), (SELECT toUInt64(max(time)) FROM " +
		s.table("config_changes") + "), (SELECT count() FROM " + s.table("access_events") + "), (SELECT count() FROM " + s.table("config_changes") + ")"
	if err := s.conn.QueryRow(ctx, q).Scan(&a, &c, &na, &nc); err != nil {
		return time.Time{}, fmt.Errorf("clickhouse store: latest: %w", err)
	}
	if na == 0 && nc == 0 {
		return time.Time{}, nil
	}
	return time.Unix(int64(max(a, c)), 0).UTC(), nil
}

// Count returns how many distinct events (by id) are stored.
func (s *Store) Count(ctx context.Context) (access, config int64, err error) {
	var a, c uint64
	q := "SELECT (SELECT uniqExact(id) FROM " + s.table("access_events") + "), (SELECT uniqExact(id) FROM " +
		s.table("config_changes") + ")"
	if err := s.conn.QueryRow(ctx, q).Scan(&a, &c); err != nil {
		return 0, 0, fmt.Errorf("clickhouse store: count: %w", err)
	}
	return int64(a), int64(c), nil
}

// DropBefore drops the day partitions before day (a UTC midnight).
func (s *Store) DropBefore(ctx context.Context, day time.Time) (int, error) {
	y, m, d := day.UTC().Date()
	cut := uint64(y*10000 + int(m)*100 + d)
	rows, err := s.conn.Query(ctx, "SELECT DISTINCT table, partition FROM system.parts WHERE database = ? "+
		"AND table IN ('access_events', 'config_changes', 'store_tenants', 'suspect_reads') AND active", s.db)
	if err != nil {
		return 0, fmt.Errorf("clickhouse store: list partitions: %w", err)
	}
	type part struct {
		table string
		day   uint64
	}
	var old []part
	days := map[uint64]bool{}
	for rows.Next() {
		var table, partition string
		if err := rows.Scan(&table, &partition); err != nil {
			rows.Close()
			return 0, fmt.Errorf("clickhouse store: list partitions: %w", err)
		}
		n, err := strconv.ParseUint(partition, 10, 32)
		if err != nil {
			continue // not one of our day partitions
		}
		if n < cut {
			old = append(old, part{table, n})
			days[n] = true
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, fmt.Errorf("clickhouse store: list partitions: %w", err)
	}
	for _, p := range old {
		if err := s.conn.Exec(ctx, "ALTER TABLE "+s.table(p.table)+" DROP PARTITION "+strconv.FormatUint(p.day, 10)); err != nil {
			return 0, fmt.Errorf("clickhouse store: drop partition %d of %s: %w", p.day, p.table, err)
		}
	}
	return len(days), nil
}

// AppendAudit appends audit entries. It is idempotent on the sequence
// number (the table is a ReplacingMergeTree on seq, read with FINAL).
func (s *Store) AppendAudit(ctx context.Context, es []incident.AuditEntry) error {
	if len(es) == 0 {
		return nil
	}
	n := len(es)
	seq, ns := make([]uint64, n), make([]uint32, n)
	at := make([]time.Time, n)
	inc, actor, action, reason, data, prev, hash := make([]string, n), make([]string, n), make([]string, n),
		make([]string, n), make([]string, n), make([]string, n), make([]string, n)
	for i := range es {
		e := &es[i]
		seq[i], at[i], ns[i] = uint64(e.Seq), e.At, uint32(e.At.Nanosecond())
		inc[i], actor[i], action[i], reason[i], data[i], prev[i], hash[i] = e.Incident, e.Actor, e.Action, e.Reason, string(e.Data), e.Prev, e.Hash
	}
	return s.send(ctx, "audit_log", "seq, at, at_ns, incident, actor, action, reason, data, prev, hash",
		[]any{seq, at, ns, inc, actor, action, reason, data, prev, hash})
}

// ScanAudit calls fn for each audit entry with a sequence number above
// after, in sequence order, until fn returns an error.
func (s *Store) ScanAudit(ctx context.Context, after int64, fn func(*incident.AuditEntry) error) error {
	rows, err := s.conn.Query(ctx, "SELECT seq, at, at_ns, incident, actor, action, reason, data, prev, hash FROM "+
		s.table("audit_log")+" FINAL WHERE seq > ? ORDER BY seq", uint64(max(after, 0)))
	if err != nil {
		return fmt.Errorf("clickhouse store: audit log: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var e incident.AuditEntry
		var seq uint64
		var at time.Time
		var ns uint32
		var data string
		if err := rows.Scan(&seq, &at, &ns, &e.Incident, &e.Actor, &e.Action, &e.Reason, &data, &e.Prev, &e.Hash); err != nil {
			return fmt.Errorf("clickhouse store: audit log: %w", err)
		}
		e.Seq, e.At = int64(seq), time.Unix(at.Unix(), int64(ns)).UTC()
		if data != "" {
			e.Data = json.RawMessage(data)
		}
		if err := fn(&e); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("clickhouse store: audit log: %w", err)
	}
	return nil
}

// AccessByTenant aggregates the successful access events q selects per
// tenant whose data they touched. Store-and-window queries read the
// primary key's (resource_store, time) range only.
func (s *Store) AccessByTenant(ctx context.Context, q incident.AccessQuery) ([]incident.TenantAccess, error) {
	if q.Holders {
		return s.holders(ctx, q)
	}
	var args, badArgs []any
	outsider := "1" // no privileged groups: every employee is an outsider
	if len(q.PrivilegedGroups) > 0 {
		outsider = "NOT arrayExists(g -> has(?, g), actor_groups)"
		badArgs = append(badArgs, q.PrivilegedGroups)
	}
	bad := "(actor_type = 'anonymous' OR (actor_type IN ('customer_user', 'api_key') AND actor_tenant != tenant)" +
		" OR (actor_type = 'employee' AND " + outsider + "))"
	where := "outcome = 'success'"
	switch {
	case q.IDs != nil:
		if len(q.IDs) == 0 {
			return nil, nil
		}
		where += " AND id IN " + placeholders(len(q.IDs))
		for _, id := range q.IDs {
			args = append(args, id)
		}
		if !q.From.IsZero() || !q.To.IsZero() {
			w, a := timeRange(q.From, endOr(q.To))
			where += " AND " + w
			args = append(args, a...)
		}
	default:
		if len(q.Stores) == 0 {
			return nil, nil
		}
		w, a := timeRange(q.From, endOr(q.To))
		// resource_store IN (…) rather than has(): the primary key (store,
		// time) then narrows what is read to the store's window.
		where += " AND resource_store IN " + placeholders(len(q.Stores)) + " AND " + w +
			" AND (toUInt64(time) * 1000000000 + time_ns) >= ? AND (toUInt64(time) * 1000000000 + time_ns) < ?"
		for _, st := range q.Stores {
			args = append(args, st)
		}
		args = append(append(args, a...), uint64(max(q.From.UnixNano(), 0)), uint64(endOr(q.To).UnixNano()))
	}
	var query string
	if q.BadOnly {
		// Only the unauthorized reads, de-duplicated by id (GROUP BY id
		// over those few rows costs less than FINAL over the window). The
		// suspect reads of a store's window come from their own table (v6).
		table := s.table("access_events")
		if q.IDs == nil {
			table, where = s.table("suspect_reads"), strings.TrimPrefix(where, "outcome = 'success' AND ")
		}
		query = "SELECT tenant, 1, c, count(), sum(toFloat64(r)), if(empty(c), st, '') AS u FROM (SELECT tenant, id, any(records) AS r, any(categories) AS c, " +
			"any(resource_store) AS st FROM " + table + " WHERE " + where + " AND " + bad + " GROUP BY tenant, id) GROUP BY tenant, c, u"
		args = append(args, badArgs...)
	} else {
		// An event without categories carries its store: the store's
		// inventory categories are this tenant's, not every tenant's.
		query = "SELECT tenant, bad, categories, count(), sum(toFloat64(records)), u FROM (SELECT tenant, records, categories, " +
			bad + " AS bad, if(empty(categories), resource_store, '') AS u FROM " + s.table("access_events") + " FINAL WHERE " + where +
			") GROUP BY tenant, bad, categories, u"
		args = append(badArgs, args...)
	}
	rows, err := s.conn.Query(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("clickhouse store: access by tenant: %w", err)
	}
	defer rows.Close()
	byTenant := map[string]*incident.TenantAccess{}
	var order []string
	for rows.Next() {
		var tenant string
		var isBad uint8
		var cats []string
		var n uint64
		var total float64 // summed in floating point: a UInt64 sum wraps
		var unlabelled string
		if err := rows.Scan(&tenant, &isBad, &cats, &n, &total, &unlabelled); err != nil {
			return nil, fmt.Errorf("clickhouse store: access by tenant: %w", err)
		}
		records := incident.SatFloat(total)
		ta := byTenant[tenant]
		if ta == nil {
			ta = &incident.TenantAccess{Tenant: tenant}
			byTenant[tenant] = ta
			order = append(order, tenant)
		}
		ta.Events += int64(n)
		ta.Records = incident.SatAdd(ta.Records, records)
		ta.Categories = addAll(ta.Categories, cats)
		if unlabelled != "" {
			ta.Unlabelled = addAll(ta.Unlabelled, []string{unlabelled})
		}
		if isBad != 0 {
			ta.BadEvents += int64(n)
			ta.BadRecords = incident.SatAdd(ta.BadRecords, records)
			ta.BadCategories = addAll(ta.BadCategories, cats)
			if unlabelled != "" {
				ta.BadUnlabelled = addAll(ta.BadUnlabelled, []string{unlabelled})
			}
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("clickhouse store: access by tenant: %w", err)
	}
	slices.Sort(order)
	out := make([]incident.TenantAccess, 0, len(order))
	for _, t := range order {
		out = append(out, *byTenant[t])
	}
	return out, nil
}

// endOr is t, or the end of accepted event times for the zero time.
func endOr(t time.Time) time.Time {
	if t.IsZero() || t.After(event.MaxTime()) {
		return event.MaxTime()
	}
	return t
}

// addAll adds the items of b not in a, keeping a sorted.
func addAll(a, b []string) []string {
	for _, s := range b {
		if !slices.Contains(a, s) {
			a = append(a, s)
		}
	}
	slices.Sort(a)
	return a
}

// holders answers a Holders query from the per-day summary.
func (s *Store) holders(ctx context.Context, q incident.AccessQuery) ([]incident.TenantAccess, error) {
	if len(q.Stores) == 0 {
		return nil, nil
	}
	// Whole days before To's from the summary, To's day from its events.
	to := endOr(q.To)
	y, m, d := to.UTC().Date()
	dayStart := time.Date(y, m, d, 0, 0, 0, 0, time.UTC)
	rows, err := s.conn.Query(ctx, "SELECT tenant, sum(ev), sum(rec) FROM ("+
		"SELECT tenant, sum(events) AS ev, sum(toFloat64(records)) AS rec FROM "+s.table("store_tenants")+
		" WHERE has(?, store) AND day < toDate(toDateTime(?)) GROUP BY tenant"+
		" UNION ALL "+
		"SELECT tenant, count() AS ev, sum(toFloat64(records)) AS rec FROM "+s.table("access_events")+" FINAL"+
		" WHERE has(?, resource_store) AND time >= toDateTime(?) AND (time < toDateTime(?) OR (time = toDateTime(?) AND time_ns <= ?))"+
		" GROUP BY tenant) GROUP BY tenant ORDER BY tenant",
		q.Stores, secs(to), q.Stores, secs(dayStart), secs(to), secs(to), uint32(to.Nanosecond()))
	if err != nil {
		return nil, fmt.Errorf("clickhouse store: store holders: %w", err)
	}
	defer rows.Close()
	var out []incident.TenantAccess
	for rows.Next() {
		var t incident.TenantAccess
		var n uint64
		var r float64
		if err := rows.Scan(&t.Tenant, &n, &r); err != nil {
			return nil, fmt.Errorf("clickhouse store: store holders: %w", err)
		}
		t.Events, t.Records = incident.SatUint64(n), incident.SatFloat(r)
		out = append(out, t)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("clickhouse store: store holders: %w", err)
	}
	return out, nil
}

// placeholders is "(?, ?, …)" with n placeholders, for an IN list whose
// values are bound (and quoted) by the driver.
func placeholders(n int) string {
	return "(" + strings.TrimSuffix(strings.Repeat("?, ", n), ", ") + ")"
}

const outboxCols = "id, incident, version, tenant, recipient, channel, facts, state, attempts, batch, error, created_ns, updated_ns, sent_ns"

// EnqueueDeliveries writes outbox rows that are not there yet; a row
// already written (whatever its state) is left as it is. The outbox has
// one writer (the notifier), so reading the incident's ids first is safe.
func (s *Store) EnqueueDeliveries(ctx context.Context, ds []incident.Delivery) error {
	have := map[string]bool{}
	incs := map[string]bool{}
	for i := range ds {
		incs[ds[i].Incident] = true
	}
	for inc := range incs {
		rows, err := s.conn.Query(ctx, "SELECT DISTINCT id FROM "+s.table("outbox")+" WHERE incident = ?", inc)
		if err != nil {
			return fmt.Errorf("clickhouse store: outbox: %w", err)
		}
		for rows.Next() {
			var id string
			if err := rows.Scan(&id); err != nil {
				rows.Close()
				return fmt.Errorf("clickhouse store: outbox: %w", err)
			}
			have[id] = true
		}
		err = rows.Err()
		rows.Close()
		if err != nil {
			return fmt.Errorf("clickhouse store: outbox: %w", err)
		}
	}
	var fresh []incident.Delivery
	for _, d := range ds {
		if !have[d.ID] {
			have[d.ID] = true
			fresh = append(fresh, d)
		}
	}
	return s.putDeliveries(ctx, fresh, false)
}

// UpdateDeliveries records new states of outbox rows (the newest wins).
func (s *Store) UpdateDeliveries(ctx context.Context, ds []incident.Delivery) error {
	return s.putDeliveries(ctx, ds, true)
}

func (s *Store) putDeliveries(ctx context.Context, ds []incident.Delivery, update bool) error {
	n := len(ds)
	if n == 0 {
		return nil
	}
	id, inc, tenant, rcpt, ch, facts, state, batch, errs := make([]string, n), make([]string, n), make([]string, n), make([]string, n),
		make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n)
	version, attempts := make([]uint32, n), make([]uint32, n)
	created, updated, sent := make([]int64, n), make([]int64, n), make([]int64, n)
	ver := make([]uint64, n)
	for i := range ds {
		d := &ds[i]
		f, err := json.Marshal(d.Facts)
		if err != nil {
			return fmt.Errorf("clickhouse store: outbox: %w", err)
		}
		id[i], inc[i], tenant[i], rcpt[i], ch[i], facts[i], state[i], batch[i], errs[i] = d.ID, d.Incident, d.Tenant, d.Recipient,
			d.Channel, string(f), d.State, d.Batch, d.Error
		version[i], attempts[i] = uint32(d.Version), uint32(d.Attempts)
		created[i], updated[i], sent[i] = d.CreatedAt.UnixNano(), d.UpdatedAt.UnixNano(), 0
		if !d.SentAt.IsZero() {
			sent[i] = d.SentAt.UnixNano()
		}
		if update {
			ver[i] = uint64(d.UpdatedAt.UnixNano())
		}
	}
	return s.send(ctx, "outbox", outboxCols+", ver", []any{id, inc, version, tenant, rcpt, ch, facts, state, attempts, batch, errs,
		created, updated, sent, ver})
}

// Deliveries calls fn for each outbox row q selects, by incident, tenant
// and id.
func (s *Store) Deliveries(ctx context.Context, q incident.DeliveryQuery, fn func(*incident.Delivery) error) error {
	where, args := []string{"1 = 1"}, []any{}
	if q.Incident != "" {
		where, args = append(where, "incident = ?"), append(args, q.Incident)
	}
	if q.Version != 0 {
		where, args = append(where, "version = ?"), append(args, uint32(q.Version))
	}
	if q.Tenant != "" {
		where, args = append(where, "tenant = ?"), append(args, q.Tenant)
	}
	if q.Channel != "" {
		where, args = append(where, "channel = ?"), append(args, q.Channel)
	}
	if len(q.States) > 0 {
		where = append(where, "state IN "+placeholders(len(q.States)))
		for _, st := range q.States {
			args = append(args, st)
		}
	}
	rows, err := s.conn.Query(ctx, "SELECT "+outboxCols+" FROM "+s.table("outbox")+" FINAL WHERE "+strings.Join(where, " AND ")+
		" ORDER BY incident, tenant, id", args...)
	if err != nil {
		return fmt.Errorf("clickhouse store: outbox: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var d incident.Delivery
		var facts string
		var version, attempts uint32
		var created, updated, sent int64
		if err := rows.Scan(&d.ID, &d.Incident, &version, &d.Tenant, &d.Recipient, &d.Channel, &facts, &d.State, &attempts,
			&d.Batch, &d.Error, &created, &updated, &sent); err != nil {
			return fmt.Errorf("clickhouse store: outbox: %w", err)
		}
		if err := json.Unmarshal([]byte(facts), &d.Facts); err != nil {
			return fmt.Errorf("clickhouse store: outbox row %s: facts: %w", d.ID, err)
		}
		d.Version, d.Attempts = int(version), int(attempts)
		d.CreatedAt, d.UpdatedAt = time.Unix(0, created).UTC(), time.Unix(0, updated).UTC()
		if sent != 0 {
			d.SentAt = time.Unix(0, sent).UTC()
		}
		if err := fn(&d); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("clickhouse store: outbox: %w", err)
	}
	return nil
}

// AddDeliveryEvents keeps the events not seen before (by id) and returns
// those. Two writers racing on one event may both report it as new; the
// table keeps it once.
func (s *Store) AddDeliveryEvents(ctx context.Context, es []incident.DeliveryEvent) ([]incident.DeliveryEvent, error) {
	if len(es) == 0 {
		return nil, nil
	}
	have := map[string]bool{}
	for start := 0; start < len(es); start += 1000 {
		part := es[start:min(start+1000, len(es))]
		args := make([]any, len(part))
		for i, e := range part {
			args[i] = e.ID
		}
		rows, err := s.conn.Query(ctx, "SELECT id FROM "+s.table("delivery_events")+" WHERE id IN "+placeholders(len(part)), args...)
		if err != nil {
			return nil, fmt.Errorf("clickhouse store: delivery events: %w", err)
		}
		for rows.Next() {
			var id string
			if err := rows.Scan(&id); err != nil {
				rows.Close()
				return nil, fmt.Errorf("clickhouse store: delivery events: %w", err)
			}
			have[id] = true
		}
		err = rows.Err()
		rows.Close()
		if err != nil {
			return nil, fmt.Errorf("clickhouse store: delivery events: %w", err)
		}
	}
	var added []incident.DeliveryEvent
	var id, del, inc, tenant, typ, detail []string
	var at []int64
	for _, e := range es {
		if have[e.ID] {
			continue
		}
		have[e.ID] = true
		added = append(added, e)
		id, del, inc, tenant, typ, detail = append(id, e.ID), append(del, e.Delivery), append(inc, e.Incident), append(tenant, e.Tenant),
			append(typ, e.Type), append(detail, e.Detail)
		at = append(at, e.At.UnixNano())
	}
	if len(added) == 0 {
		return nil, nil
	}
	if err := s.send(ctx, "delivery_events", "id, delivery, incident, tenant, type, at_ns, detail", []any{id, del, inc, tenant, typ, at, detail}); err != nil {
		return nil, err
	}
	return added, nil
}

// DeliveryEvents calls fn for each event of an incident's deliveries
// (those of one delivery when delivery is not empty), oldest first.
func (s *Store) DeliveryEvents(ctx context.Context, inc, delivery string, fn func(*incident.DeliveryEvent) error) error {
	q, args := "SELECT id, delivery, incident, tenant, type, at_ns, detail FROM "+s.table("delivery_events")+" FINAL WHERE incident = ?", []any{inc}
	if delivery != "" {
		q, args = q+" AND delivery = ?", append(args, delivery)
	}
	rows, err := s.conn.Query(ctx, q+" ORDER BY at_ns, id", args...)
	if err != nil {
		return fmt.Errorf("clickhouse store: delivery events: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var e incident.DeliveryEvent
		var at int64
		if err := rows.Scan(&e.ID, &e.Delivery, &e.Incident, &e.Tenant, &e.Type, &at, &e.Detail); err != nil {
			return fmt.Errorf("clickhouse store: delivery events: %w", err)
		}
		e.At = time.Unix(0, at).UTC()
		if err := fn(&e); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("clickhouse store: delivery events: %w", err)
	}
	return nil
}

// RevokeToken records that the API token of that name is revoked (the
// first revocation of a name is the one reported).
func (s *Store) RevokeToken(ctx context.Context, name, by, reason string, at time.Time) error {
	return s.send(ctx, "revoked_tokens", "name, at_ns, by, reason", []any{[]string{name}, []int64{at.UnixNano()}, []string{by}, []string{reason}})
}

// RevokedTokens calls fn for each revoked token.
func (s *Store) RevokedTokens(ctx context.Context, fn func(name, by, reason string, at time.Time) error) error {
	rows, err := s.conn.Query(ctx, "SELECT name, argMin(by, at_ns), argMin(reason, at_ns), min(at_ns) FROM "+s.table("revoked_tokens")+
		" GROUP BY name ORDER BY name")
	if err != nil {
		return fmt.Errorf("clickhouse store: revoked tokens: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var name, by, reason string
		var at int64
		if err := rows.Scan(&name, &by, &reason, &at); err != nil {
			return fmt.Errorf("clickhouse store: revoked tokens: %w", err)
		}
		if err := fn(name, by, reason, time.Unix(0, at).UTC()); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("clickhouse store: revoked tokens: %w", err)
	}
	return nil
}
