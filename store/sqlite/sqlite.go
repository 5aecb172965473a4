// Package sqlite is breachwatch's embedded store: one SQLite file (pure Go,
// no cgo) in WAL mode under the data directory. It is the default when no
// ClickHouse server is configured, and fits a single node's development,
// demo and small-production volumes.
package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/breachwatch/breachwatch/event"
	"github.com/breachwatch/breachwatch/incident"

	_ "modernc.org/sqlite" // the database/sql driver "sqlite"
)

// FileName is the store's file inside the data directory.
const FileName = "breachwatch.db"

// Store is the embedded store. It is safe for concurrent use: writes are
// serialized on one connection, reads use a pool beside it (WAL lets them
// run while a write is in progress).
type Store struct {
	w *sql.DB // the one writer connection
	r *sql.DB // readers
}

// Open opens (creating if needed) the store in dir and brings its schema up
// to date.
func Open(ctx context.Context, dir string) (*Store, error) {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("sqlite store: create data dir: %w", err)
	}
	path := filepath.Join(dir, FileName)
	// synchronous(FULL): a write is on disk when the transaction commits, so
	// a batch acknowledged to Kafka or to an HTTP client survives a power cut.
	dsn := "file:" + path + "?_pragma=journal_mode(WAL)&_pragma=synchronous(FULL)&_pragma=busy_timeout(10000)&_txlock=immediate"
	w, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("sqlite store: open %s: %w", path, err)
	}
	w.SetMaxOpenConns(1)
	r, err := sql.Open("sqlite", dsn+"&_pragma=query_only(1)")
	if err != nil {
		w.Close()
		return nil, fmt.Errorf("sqlite store: open %s: %w", path, err)
	}
	r.SetMaxOpenConns(4)
	s := &Store{w: w, r: r}
	if err := s.migrate(ctx); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

// Close closes the store.
func (s *Store) Close() error {
	return errors.Join(s.r.Close(), s.w.Close())
}

// migrations are applied in order; PRAGMA user_version records how many ran.
var migrations = []string{
	`CREATE TABLE access_events (
		id TEXT NOT NULL PRIMARY KEY,
		time_ns INTEGER NOT NULL,
		day INTEGER NOT NULL,
		tenant TEXT NOT NULL,
		actor_id TEXT NOT NULL,
		actor_type TEXT NOT NULL,
		actor_tenant TEXT NOT NULL,
		actor_groups TEXT,
		action TEXT NOT NULL,
		resource_type TEXT NOT NULL,
		resource_id TEXT NOT NULL,
		resource_store TEXT NOT NULL,
		records INTEGER NOT NULL,
		categories TEXT,
		outcome TEXT NOT NULL,
		source_ip TEXT NOT NULL,
		country TEXT NOT NULL,
		user_agent TEXT NOT NULL,
		request_id TEXT NOT NULL,
		extra TEXT,
		ingested_ns INTEGER NOT NULL
	);
	CREATE INDEX access_events_time ON access_events (time_ns);
	CREATE INDEX access_events_store_time ON access_events (resource_store, time_ns);
	CREATE INDEX access_events_day ON access_events (day);
	CREATE TABLE config_changes (
		id TEXT NOT NULL PRIMARY KEY,
		time_ns INTEGER NOT NULL,
		day INTEGER NOT NULL,
		resource_id TEXT NOT NULL,
		resource_type TEXT NOT NULL,
		resource_store TEXT NOT NULL,
		resource_provider TEXT NOT NULL,
		resource_region TEXT NOT NULL,
		setting TEXT NOT NULL,
		before TEXT,
		after TEXT NOT NULL,
		actor_id TEXT NOT NULL,
		actor_type TEXT NOT NULL,
		actor_tenant TEXT NOT NULL,
		actor_groups TEXT,
		source TEXT NOT NULL,
		extra TEXT,
		ingested_ns INTEGER NOT NULL
	);
	CREATE INDEX config_changes_time ON config_changes (time_ns);
	CREATE INDEX config_changes_store_time ON config_changes (resource_store, time_ns);
	CREATE INDEX config_changes_day ON config_changes (day);`,
	// v2: findings, one row per fingerprint: the latest report, the first detection.
	`CREATE TABLE findings (
		fingerprint TEXT NOT NULL PRIMARY KEY,
		rule_id TEXT NOT NULL,
		severity TEXT NOT NULL,
		window_start_ns INTEGER NOT NULL,
		detected_ns INTEGER NOT NULL,
		updated_ns INTEGER NOT NULL,
		body TEXT NOT NULL
	);
	CREATE INDEX findings_detected ON findings (detected_ns);`,
	// v3: the incidents' audit log, one hash-chained entry per change.
	`CREATE TABLE audit_log (
		seq INTEGER NOT NULL PRIMARY KEY,
		at_ns INTEGER NOT NULL,
		incident TEXT NOT NULL,
		actor TEXT NOT NULL,
		action TEXT NOT NULL,
		reason TEXT NOT NULL,
		data TEXT NOT NULL,
		prev TEXT NOT NULL,
		hash TEXT NOT NULL
	);`,
	// v4: whose data each store holds: events per store, tenant and day,
	// kept on write, so that scoping an exposure need not scan history.
	`CREATE TABLE store_tenants (
		store TEXT NOT NULL,
		tenant TEXT NOT NULL,
		day INTEGER NOT NULL,
		events INTEGER NOT NULL,
		records INTEGER NOT NULL,
		PRIMARY KEY (store, tenant, day)
	) WITHOUT ROWID;
	INSERT INTO store_tenants (store, tenant, day, events, records)
		SELECT resource_store, tenant, day, count(*), CAST(total(records) AS INTEGER) FROM access_events GROUP BY resource_store, tenant, day;`,
	// v5: the notice outbox (one row per delivery, written before sending)
	// and the events that happened to deliveries afterwards.
	`CREATE TABLE outbox (
		id TEXT NOT NULL PRIMARY KEY,
		incident TEXT NOT NULL,
		version INTEGER NOT NULL,
		tenant TEXT NOT NULL,
		recipient TEXT NOT NULL,
		channel TEXT NOT NULL,
		facts TEXT NOT NULL,
		state TEXT NOT NULL,
		attempts INTEGER NOT NULL,
		batch TEXT NOT NULL,
		error TEXT NOT NULL,
		created_ns INTEGER NOT NULL,
		updated_ns INTEGER NOT NULL,
		sent_ns INTEGER NOT NULL
	);
	CREATE INDEX outbox_incident ON outbox (incident, version, state);
	CREATE INDEX outbox_tenant ON outbox (tenant, channel);
	CREATE TABLE delivery_events (
		id TEXT NOT NULL PRIMARY KEY,
		delivery TEXT NOT NULL,
		incident TEXT NOT NULL,
		tenant TEXT NOT NULL,
		type TEXT NOT NULL,
		at_ns INTEGER NOT NULL,
		detail TEXT NOT NULL
	);
	CREATE INDEX delivery_events_incident ON delivery_events (incident, delivery);`,
	// v7: API tokens revoked by an admin (by name; the configuration keeps
	// the tokens themselves).
	`CREATE TABLE revoked_tokens (
		name TEXT NOT NULL PRIMARY KEY,
		at_ns INTEGER NOT NULL,
		by TEXT NOT NULL,
		reason TEXT NOT NULL
	);`,
	// A rule's findings by window start (detection reads them back to
	// correct a group and to keep open exposures); updated_ns holds each
	// finding's own report version from now on.
	`CREATE INDEX findings_rule_window ON findings (rule_id, window_start_ns);`,
}

// SchemaVersion is the schema version this code writes.
func SchemaVersion() int { return len(migrations) }

func (s *Store) migrate(ctx context.Context) error {
	var v int
	if err := s.w.QueryRowContext(ctx, "PRAGMA user_version").Scan(&v); err != nil {
		return fmt.Errorf("sqlite store: read schema version: %w", err)
	}
	if v > len(migrations) {
		return fmt.Errorf("sqlite store: schema version %d is newer than this breachwatch knows (%d); refusing to run an older binary on newer data", v, len(migrations))
	}
	for ; v < len(migrations); v++ {
		tx, err := s.w.BeginTx(ctx, nil)
		if err != nil {
			return fmt.Errorf("sqlite store: migrate to v%d: %w", v+1, err)
		}
		if _, err := tx.ExecContext(ctx, migrations[v]); err != nil {
			tx.Rollback()
			return fmt.Errorf("sqlite store: migrate to v%d: %w", v+1, err)
		}
		if _, err := tx.ExecContext(ctx, fmt.Sprintf("PRAGMA user_version = %d", v+1)); err != nil {
			tx.Rollback()
			return fmt.Errorf("sqlite store: migrate to v%d: %w", v+1, err)
		}
		if err := tx.Commit(); err != nil {
			return fmt.Errorf("sqlite store: migrate to v%d: %w", v+1, err)
		}
	}
	return nil
}

// Ping checks that the store answers.
func (s *Store) Ping(ctx context.Context) error {
	return s.w.PingContext(ctx)
}

const insertAccess = `INSERT OR IGNORE INTO access_events (id, time_ns, day, tenant, actor_id, actor_type, actor_tenant,
	actor_groups, action, resource_type, resource_id, resource_store, records, categories, outcome, source_ip,
	country, user_agent, request_id, extra, ingested_ns) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)`

const insertConfig = `INSERT OR IGNORE INTO config_changes (id, time_ns, day, resource_id, resource_type, resource_store,
	resource_provider, resource_region, setting, before, after, actor_id, actor_type, actor_tenant, actor_groups,
	source, extra, ingested_ns) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)`

// Write stores the batch in one transaction: all of it or none. Events
// whose id is already stored are skipped, so writing a batch twice is
// harmless.
func (s *Store) Write(ctx context.Context, b *event.Batch) error {
	if b.Len() == 0 {
		return nil
	}
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("sqlite store: begin: %w", err)
	}
	defer tx.Rollback()
	now := time.Now().UnixNano()
	if len(b.Access) > 0 {
		type key struct {
			store, tenant string
			day           int
		}
		held := map[key][2]int64{} // events and records of the events newly stored
		st, err := tx.PrepareContext(ctx, insertAccess)
		if err != nil {
			return fmt.Errorf("sqlite store: prepare: %w", err)
		}
		for i := range b.Access {
			e := &b.Access[i]
			ip := ""
			if e.SourceIP.IsValid() {
				ip = e.SourceIP.String()
			}
			res, err := st.ExecContext(ctx, e.ID, e.Time.UnixNano(), day(e.Time), e.Tenant, e.Actor.ID, e.Actor.Type,
				e.Actor.Tenant, list(e.Actor.Groups), e.Action, e.Resource.Type, e.Resource.ID, e.Resource.Store,
				e.Records, list(e.Categories), e.Outcome, ip, e.Country, e.UserAgent, e.RequestID, raw(e.Extra), now)
			if err != nil {
				st.Close()
				return fmt.Errorf("sqlite store: insert access event: %w", err)
			}
			if n, _ := res.RowsAffected(); n == 1 {
				k := key{e.Resource.Store, e.Tenant, day(e.Time)}
				v := held[k]
				held[k] = [2]int64{v[0] + 1, incident.SatAdd(v[1], e.Records)}
			}
		}
		st.Close()
		for k, v := range held {
			if _, err := tx.ExecContext(ctx, `INSERT INTO store_tenants (store, tenant, day, events, records) VALUES (?, ?, ?, ?, ?)
				ON CONFLICT (store, tenant, day) DO UPDATE SET events = events + excluded.events,
				records = CASE WHEN records > 9223372036854775807 - excluded.records THEN 9223372036854775807 ELSE records + excluded.records END`,
				k.store, k.tenant, k.day, v[0], v[1]); err != nil {
				return fmt.Errorf("sqlite store: store tenants: %w", err)
			}
		}
	}
	if len(b.Config) > 0 {
		st, err := tx.PrepareContext(ctx, insertConfig)
		if err != nil {
			return fmt.Errorf("sqlite store: prepare: %w", err)
		}
		for i := range b.Config {
			c := &b.Config[i]
			var a event.Actor
			if c.Actor != nil {
				a = *c.Actor
			}
			if _, err := st.ExecContext(ctx, c.ID, c.Time.UnixNano(), day(c.Time), c.Resource.ID, c.Resource.Type,
				c.Resource.Store, c.Resource.Provider, c.Resource.Region, c.Setting, raw(c.Before), string(c.After),
				a.ID, a.Type, a.Tenant, list(a.Groups), c.Source, raw(c.Extra), now); err != nil {
				st.Close()
				return fmt.Errorf("sqlite store: insert config change: %w", err)
			}
		}
		st.Close()
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("sqlite store: commit: %w", err)
	}
	return nil
}

// SaveFindings stores findings: per fingerprint the latest report, keeping
// the time it was first detected.
func (s *Store) SaveFindings(ctx context.Context, fs []incident.Finding) error {
	if len(fs) == 0 {
		return nil
	}
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("sqlite store: begin: %w", err)
	}
	defer tx.Rollback()
	now := time.Now().UnixNano()
	for i := range fs {
		f := fs[i]
		body, err := json.Marshal(&f)
		if err != nil {
			return fmt.Errorf("sqlite store: finding %s: %w", f.Fingerprint, err)
		}
		// The newest report by the finding's own version wins, whatever
		// order reports are written in; one without a version (older
		// code) counts as written now.
		ver := int64(f.Version)
		if f.Version == 0 || f.Version > math.MaxInt64 {
			ver = now + int64(i)
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO findings (fingerprint, rule_id, severity, window_start_ns, detected_ns, updated_ns, body)
			VALUES (?, ?, ?, ?, ?, ?, ?)
			ON CONFLICT (fingerprint) DO UPDATE SET rule_id = excluded.rule_id, severity = excluded.severity,
				detected_ns = min(findings.detected_ns, excluded.detected_ns), updated_ns = excluded.updated_ns, body = excluded.body,
				window_start_ns = excluded.window_start_ns
			WHERE excluded.updated_ns >= findings.updated_ns`,
			f.Fingerprint, f.RuleID, f.Severity, f.WindowStart.UnixNano(), f.DetectedAt.UnixNano(), ver, string(body)); err != nil {
			return fmt.Errorf("sqlite store: save finding %s: %w", f.Fingerprint, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("sqlite store: commit: %w", err)
	}
	return nil
}

// Findings lists the stored findings first detected at or after since,
// newest first, at most limit (0: no limit).
func (s *Store) Findings(ctx context.Context, since time.Time, limit int) ([]incident.Finding, error) {
	q := `SELECT detected_ns, body FROM findings WHERE detected_ns >= ? ORDER BY detected_ns DESC, fingerprint`
	args := []any{since.UnixNano()}
	if limit > 0 {
		q += " LIMIT ?"
		args = append(args, limit)
	}
	rows, err := s.r.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("sqlite store: findings: %w", err)
	}
	defer rows.Close()
	var out []incident.Finding
	for rows.Next() {
		var detected int64
		var body string
		if err := rows.Scan(&detected, &body); err != nil {
			return nil, fmt.Errorf("sqlite store: findings: %w", err)
		}
		var f incident.Finding
		if err := json.Unmarshal([]byte(body), &f); err != nil {
			return nil, fmt.Errorf("sqlite store: finding: %w", err)
		}
		f.DetectedAt = time.Unix(0, detected).UTC()
		out = append(out, f)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite store: findings: %w", err)
	}
	return out, nil
}

// FindingsOf lists the latest report of each finding of a rule whose
// window starts in [from, to).
func (s *Store) FindingsOf(ctx context.Context, ruleID string, from, to time.Time) ([]incident.Finding, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT detected_ns, body FROM findings WHERE rule_id = ? AND window_start_ns >= ? AND window_start_ns < ?
		ORDER BY window_start_ns, fingerprint`, ruleID, from.UnixNano(), to.UnixNano())
	if err != nil {
		return nil, fmt.Errorf("sqlite store: findings of %s: %w", ruleID, err)
	}
	defer rows.Close()
	var out []incident.Finding
	for rows.Next() {
		var detected int64
		var body string
		if err := rows.Scan(&detected, &body); err != nil {
			return nil, fmt.Errorf("sqlite store: findings of %s: %w", ruleID, err)
		}
		var f incident.Finding
		if err := json.Unmarshal([]byte(body), &f); err != nil {
			return nil, fmt.Errorf("sqlite store: finding: %w", err)
		}
		f.DetectedAt = time.Unix(0, detected).UTC()
		out = append(out, f)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite store: findings of %s: %w", ruleID, err)
	}
	return out, nil
}

// accessColumns maps the access-event fields a group can be keyed by (as
// rules name them) to their columns.
var accessColumns = map[string]string{
	"id": "id", "tenant": "tenant", "actor.id": "actor_id", "actor.type": "actor_type", "actor.tenant": "actor_tenant",
	"action": "action", "resource.type": "resource_type", "resource.id": "resource_id", "resource.store": "resource_store",
	"outcome": "outcome", "source_ip": "source_ip", "country": "country", "request_id": "request_id", "user_agent": "user_agent",
}

// day is the UTC day of t as YYYYMMDD, the unit of retention.
func day(t time.Time) int {
	y, m, d := t.UTC().Date()
	return y*10000 + int(m)*100 + d
}

func list(ss []string) any {
	if ss == nil {
		return nil
	}
	b, _ := json.Marshal(ss)
	return string(b)
}

func raw(r json.RawMessage) any {
	if len(r) == 0 {
		return nil
	}
	return string(r)
}

func unlist(s sql.NullString) ([]string, error) {
	if !s.Valid {
		return nil, nil
	}
	var ss []string
	return ss, json.Unmarshal([]byte(s.String), &ss)
}

func unraw(s sql.NullString) json.RawMessage {
	if !s.Valid {
		return nil
	}
	return json.RawMessage(s.String)
}

// ScanAccess calls fn for each stored access event with from ≤ time < to,
// in time order (then id order), until fn returns an error.
func (s *Store) ScanAccess(ctx context.Context, from, to time.Time, fn func(*event.AccessEvent) error) error {
	return s.ScanAccessWhere(ctx, from, to, nil, fn)
}

// ScanAccessWhere is ScanAccess for the events whose fields have the
// values given (fields it has no column for select nothing out).
func (s *Store) ScanAccessWhere(ctx context.Context, from, to time.Time, where []event.FieldValue, fn func(*event.AccessEvent) error) error {
	q := `SELECT id, time_ns, tenant, actor_id, actor_type, actor_tenant, actor_groups,
		action, resource_type, resource_id, resource_store, records, categories, outcome, source_ip, country,
		user_agent, request_id, extra FROM access_events WHERE time_ns >= ? AND time_ns < ?`
	args := []any{from.UnixNano(), to.UnixNano()}
	for _, w := range where {
		if col, ok := accessColumns[w.Field]; ok {
			q += " AND " + col + " = ?"
			args = append(args, w.Value)
		}
	}
	rows, err := s.r.QueryContext(ctx, q+" ORDER BY time_ns, id", args...)
	if err != nil {
		return fmt.Errorf("sqlite store: scan access events: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var e event.AccessEvent
		var ns int64
		var groups, cats, extra sql.NullString
		var ip string
		if err := rows.Scan(&e.ID, &ns, &e.Tenant, &e.Actor.ID, &e.Actor.Type, &e.Actor.Tenant, &groups,
			&e.Action, &e.Resource.Type, &e.Resource.ID, &e.Resource.Store, &e.Records, &cats, &e.Outcome, &ip,
			&e.Country, &e.UserAgent, &e.RequestID, &extra); err != nil {
			return fmt.Errorf("sqlite store: scan access events: %w", err)
		}
		e.Time = time.Unix(0, ns).UTC()
		if e.Actor.Groups, err = unlist(groups); err != nil {
			return fmt.Errorf("sqlite store: event %q: actor groups: %w", e.ID, err)
		}
		if e.Categories, err = unlist(cats); err != nil {
			return fmt.Errorf("sqlite store: event %q: categories: %w", e.ID, err)
		}
		if ip != "" {
			if e.SourceIP, err = netip.ParseAddr(ip); err != nil {
				return fmt.Errorf("sqlite store: event %q: source ip: %w", e.ID, err)
			}
		}
		e.Extra = unraw(extra)
		if err := fn(&e); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("sqlite store: scan access events: %w", err)
	}
	return nil
}

// ScanConfig calls fn for each stored configuration change with
// from ≤ time < to, in time order (then id order), until fn returns an error.
func (s *Store) ScanConfig(ctx context.Context, from, to time.Time, fn func(*event.ConfigChange) error) error {
	rows, err := s.r.QueryContext(ctx, `SELECT id, time_ns, resource_id, resource_type, resource_store,
		resource_provider, resource_region, setting, before, after, actor_id, actor_type, actor_tenant,
		actor_groups, source, extra FROM config_changes WHERE time_ns >= ? AND time_ns < ? ORDER BY time_ns, id`,
		from.UnixNano(), to.UnixNano())
	if err != nil {
		return fmt.Errorf("sqlite store: scan config changes: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var c event.ConfigChange
		var ns int64
		var a event.Actor
		var before, groups, extra sql.NullString
		var after string
		if err := rows.Scan(&c.ID, &ns, &c.Resource.ID, &c.Resource.Type, &c.Resource.Store, &c.Resource.Provider,
			&c.Resource.Region, &c.Setting, &before, &after, &a.ID, &a.Type, &a.Tenant, &groups, &c.Source,
			&extra); err != nil {
			return fmt.Errorf("sqlite store: scan config changes: %w", err)
		}
		c.Time = time.Unix(0, ns).UTC()
		c.Before, c.After, c.Extra = unraw(before), json.RawMessage(after), unraw(extra)
		if a.ID != "" {
			if a.Groups, err = unlist(groups); err != nil {
				return fmt.Errorf("sqlite store: change %q: actor groups: %w", c.ID, err)
			}
			c.Actor = &a
		}
		if err := fn(&c); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("sqlite store: scan config changes: %w", err)
	}
	return nil
}

// Latest is the time of the newest stored event (the zero time if none).
func (s *Store) Latest(ctx context.Context) (time.Time, error) {
	var a, c sql.NullInt64
	if err := s.r.QueryRowContext(ctx, `SELECT (SELECT max(time_ns) FROM access_events), (SELECT max(time_ns) FROM config_changes)`).Scan(&a, &c); err != nil {
		return time.Time{}, fmt.Errorf("sqlite store: latest: %w", err)
	}
	if !a.Valid && !c.Valid {
		return time.Time{}, nil
	}
	return time.Unix(0, max(a.Int64, c.Int64)).UTC(), nil
}

// Count returns how many distinct events are stored.
func (s *Store) Count(ctx context.Context) (access, config int64, err error) {
	err = s.r.QueryRowContext(ctx, `SELECT (SELECT count(*) FROM access_events), (SELECT count(*) FROM config_changes)`).
		Scan(&access, &config)
	if err != nil {
		return 0, 0, fmt.Errorf("sqlite store: count: %w", err)
	}
	return access, config, nil
}

// DropBefore removes every event dated before day (a UTC midnight).
func (s *Store) DropBefore(ctx context.Context, before time.Time) (int, error) {
	cut := day(before)
	var n int
	err := s.r.QueryRowContext(ctx, `SELECT count(*) FROM (SELECT day FROM access_events WHERE day < ?1
		UNION SELECT day FROM config_changes WHERE day < ?1)`, cut).Scan(&n)
	if err != nil || n == 0 {
		if err != nil {
			err = fmt.Errorf("sqlite store: retention: %w", err)
		}
		return 0, err
	}
	for _, table := range []string{"access_events", "config_changes", "store_tenants"} {
		if _, err := s.w.ExecContext(ctx, "DELETE FROM "+table+" WHERE day < ?", cut); err != nil {
			return 0, fmt.Errorf("sqlite store: retention on %s: %w", table, err)
		}
	}
	return n, nil
}

// AppendAudit appends audit entries. It is idempotent on the sequence
// number: an entry already stored is left as it is.
func (s *Store) AppendAudit(ctx context.Context, es []incident.AuditEntry) error {
	if len(es) == 0 {
		return nil
	}
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("sqlite store: begin: %w", err)
	}
	defer tx.Rollback()
	for i := range es {
		e := &es[i]
		if _, err := tx.ExecContext(ctx, `INSERT INTO audit_log (seq, at_ns, incident, actor, action, reason, data, prev, hash)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (seq) DO NOTHING`,
			e.Seq, e.At.UnixNano(), e.Incident, e.Actor, e.Action, e.Reason, string(e.Data), e.Prev, e.Hash); err != nil {
			return fmt.Errorf("sqlite store: append audit entry %d: %w", e.Seq, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("sqlite store: commit: %w", err)
	}
	return nil
}

// ScanAudit calls fn for each audit entry with a sequence number above
// after, in sequence order, until fn returns an error.
func (s *Store) ScanAudit(ctx context.Context, after int64, fn func(*incident.AuditEntry) error) error {
	rows, err := s.r.QueryContext(ctx, `SELECT seq, at_ns, incident, actor, action, reason, data, prev, hash
		FROM audit_log WHERE seq > ? ORDER BY seq`, after)
	if err != nil {
		return fmt.Errorf("sqlite store: audit log: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var e incident.AuditEntry
		var at int64
		var data string
		if err := rows.Scan(&e.Seq, &at, &e.Incident, &e.Actor, &e.Action, &e.Reason, &data, &e.Prev, &e.Hash); err != nil {
			return fmt.Errorf("sqlite store: audit log: %w", err)
		}
		e.At = time.Unix(0, at).UTC()
		if data != "" {
			e.Data = json.RawMessage(data)
		}
		if err := fn(&e); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("sqlite store: audit log: %w", err)
	}
	return nil
}

// badActorSQL is true for an access event by someone who should not read
// the tenant's data (see incident.TenantAccess); ?1 is the JSON array of
// privileged groups.
const badActorSQL = `(actor_type = 'anonymous'
	OR (actor_type IN ('customer_user', 'api_key') AND actor_tenant <> tenant)
	OR (actor_type = 'employee' AND NOT EXISTS (
		SELECT 1 FROM json_each(COALESCE(actor_groups, '[]')) g WHERE g.value IN (SELECT value FROM json_each(?1)))))`

// AccessByTenant aggregates the successful access events q selects per
// tenant whose data they touched.
func (s *Store) AccessByTenant(ctx context.Context, q incident.AccessQuery) ([]incident.TenantAccess, error) {
	if q.Holders {
		return s.holders(ctx, q)
	}
	groups, _ := json.Marshal(nonNilList(q.PrivilegedGroups))
	where := "outcome = 'success'"
	args := []any{string(groups)}
	if q.IDs != nil {
		ids, _ := json.Marshal(q.IDs)
		where += " AND id IN (SELECT value FROM json_each(?2))"
		args = append(args, string(ids))
	} else {
		stores, _ := json.Marshal(nonNilList(q.Stores))
		where += " AND resource_store IN (SELECT value FROM json_each(?2)) AND time_ns >= ?3 AND time_ns < ?4"
		args = append(args, string(stores), q.From.UnixNano(), toNs(q.To))
	}
	outer := ""
	if q.BadOnly {
		outer = " WHERE bad"
	}
	// An event without categories carries its store: the store's
	// inventory categories are this tenant's, not every tenant's.
	rows, err := s.r.QueryContext(ctx, `SELECT tenant, bad, categories, count(*), total(records), unlabelled FROM (
		SELECT tenant, records, categories, `+badActorSQL+` AS bad,
			CASE WHEN categories IS NULL OR categories IN ('', '[]', 'null') THEN resource_store ELSE '' END AS unlabelled
		FROM access_events WHERE `+where+`)`+outer+`
		GROUP BY tenant, bad, categories, unlabelled`, args...)
	if err != nil {
		return nil, fmt.Errorf("sqlite store: access by tenant: %w", err)
	}
	defer rows.Close()
	byTenant := map[string]*incident.TenantAccess{}
	var order []string
	for rows.Next() {
		var tenant string
		var bad bool
		var cats sql.NullString
		var n int64
		var total float64 // total() sums in floating point: it never overflows
		var unlabelled string
		if err := rows.Scan(&tenant, &bad, &cats, &n, &total, &unlabelled); err != nil {
			return nil, fmt.Errorf("sqlite store: access by tenant: %w", err)
		}
		records := incident.SatFloat(total)
		cs, err := unlist(cats)
		if err != nil {
			return nil, fmt.Errorf("sqlite store: access by tenant: categories: %w", err)
		}
		ta := byTenant[tenant]
		if ta == nil {
			ta = &incident.TenantAccess{Tenant: tenant}
			byTenant[tenant] = ta
			order = append(order, tenant)
		}
		ta.Events += n
		ta.Records = incident.SatAdd(ta.Records, records)
		ta.Categories = addAll(ta.Categories, cs)
		if unlabelled != "" {
			ta.Unlabelled = addAll(ta.Unlabelled, []string{unlabelled})
		}
		if bad {
			ta.BadEvents += n
			ta.BadRecords = incident.SatAdd(ta.BadRecords, records)
			ta.BadCategories = addAll(ta.BadCategories, cs)
			if unlabelled != "" {
				ta.BadUnlabelled = addAll(ta.BadUnlabelled, []string{unlabelled})
			}
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite store: access by tenant: %w", err)
	}
	slices.Sort(order)
	out := make([]incident.TenantAccess, 0, len(order))
	for _, t := range order {
		out = append(out, *byTenant[t])
	}
	return out, nil
}

func nonNilList(ss []string) []string {
	if ss == nil {
		return []string{}
	}
	return ss
}

// toNs is t in Unix nanoseconds; the zero time is "no end".
func toNs(t time.Time) int64 {
	if t.IsZero() || t.After(event.MaxTime()) {
		return event.MaxTime().UnixNano()
	}
	return t.UnixNano()
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
	stores, _ := json.Marshal(nonNilList(q.Stores))
	// Whole days before To's from the summary, To's day from its events.
	to := endOf(q.To)
	y, m, d := to.UTC().Date()
	dayStart := time.Date(y, m, d, 0, 0, 0, 0, time.UTC)
	rows, err := s.r.QueryContext(ctx, `SELECT tenant, sum(ev), total(rec) FROM (
			SELECT tenant, events AS ev, records AS rec FROM store_tenants
			WHERE store IN (SELECT value FROM json_each(?1)) AND day < ?2
			UNION ALL
			SELECT tenant, count(*) AS ev, total(records) AS rec FROM access_events
			WHERE resource_store IN (SELECT value FROM json_each(?1)) AND time_ns >= ?3 AND time_ns <= ?4 GROUP BY tenant)
		GROUP BY tenant ORDER BY tenant`,
		string(stores), day(to), dayStart.UnixNano(), to.UnixNano())
	if err != nil {
		return nil, fmt.Errorf("sqlite store: store holders: %w", err)
	}
	defer rows.Close()
	var out []incident.TenantAccess
	for rows.Next() {
		var t incident.TenantAccess
		var total float64
		if err := rows.Scan(&t.Tenant, &t.Events, &total); err != nil {
			return nil, fmt.Errorf("sqlite store: store holders: %w", err)
		}
		t.Records = incident.SatFloat(total)
		out = append(out, t)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite store: store holders: %w", err)
	}
	return out, nil
}

// endOf is t, or the end of accepted event times for the zero time.
func endOf(t time.Time) time.Time {
	if t.IsZero() || t.After(event.MaxTime()) {
		return event.MaxTime()
	}
	return t
}

// EnqueueDeliveries writes outbox rows that are not there yet; a row
// already written (whatever its state) is left as it is.
func (s *Store) EnqueueDeliveries(ctx context.Context, ds []incident.Delivery) error {
	return s.insertDeliveries(ctx, ds, `INSERT INTO outbox (id, incident, version, tenant, recipient, channel, facts, state,
		attempts, batch, error, created_ns, updated_ns, sent_ns) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?) ON CONFLICT (id) DO NOTHING`)
}

// UpdateDeliveries records new states of outbox rows (rows not written
// yet are not created).
func (s *Store) UpdateDeliveries(ctx context.Context, ds []incident.Delivery) error {
	if len(ds) == 0 {
		return nil
	}
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("sqlite store: begin: %w", err)
	}
	defer tx.Rollback()
	st, err := tx.PrepareContext(ctx, `UPDATE outbox SET state = ?, attempts = ?, batch = ?, error = ?, updated_ns = ?, sent_ns = ? WHERE id = ?`)
	if err != nil {
		return fmt.Errorf("sqlite store: outbox: %w", err)
	}
	defer st.Close()
	for i := range ds {
		d := &ds[i]
		if _, err := st.ExecContext(ctx, d.State, d.Attempts, d.Batch, d.Error, d.UpdatedAt.UnixNano(), nanos(d.SentAt), d.ID); err != nil {
			return fmt.Errorf("sqlite store: outbox: %w", err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("sqlite store: commit: %w", err)
	}
	return nil
}

func (s *Store) insertDeliveries(ctx context.Context, ds []incident.Delivery, stmt string) error {
	if len(ds) == 0 {
		return nil
	}
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("sqlite store: begin: %w", err)
	}
	defer tx.Rollback()
	st, err := tx.PrepareContext(ctx, stmt)
	if err != nil {
		return fmt.Errorf("sqlite store: outbox: %w", err)
	}
	defer st.Close()
	for i := range ds {
		d := &ds[i]
		facts, err := json.Marshal(d.Facts)
		if err != nil {
			return fmt.Errorf("sqlite store: outbox: %w", err)
		}
		if _, err := st.ExecContext(ctx, d.ID, d.Incident, d.Version, d.Tenant, d.Recipient, d.Channel, string(facts), d.State,
			d.Attempts, d.Batch, d.Error, d.CreatedAt.UnixNano(), d.UpdatedAt.UnixNano(), nanos(d.SentAt)); err != nil {
			return fmt.Errorf("sqlite store: outbox: %w", err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("sqlite store: commit: %w", err)
	}
	return nil
}

func nanos(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

func fromNanos(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n).UTC()
}

// Deliveries calls fn for each outbox row q selects, by incident, tenant
// and id.
func (s *Store) Deliveries(ctx context.Context, q incident.DeliveryQuery, fn func(*incident.Delivery) error) error {
	where, args := []string{"1=1"}, []any{}
	for _, c := range []struct {
		col string
		val any
		set bool
	}{{"incident", q.Incident, q.Incident != ""}, {"version", q.Version, q.Version != 0}, {"tenant", q.Tenant, q.Tenant != ""},
		{"channel", q.Channel, q.Channel != ""}} {
		if c.set {
			where, args = append(where, c.col+" = ?"), append(args, c.val)
		}
	}
	if len(q.States) > 0 {
		where = append(where, "state IN ("+strings.TrimSuffix(strings.Repeat("?,", len(q.States)), ",")+")")
		for _, st := range q.States {
			args = append(args, st)
		}
	}
	rows, err := s.r.QueryContext(ctx, `SELECT id, incident, version, tenant, recipient, channel, facts, state, attempts, batch,
		error, created_ns, updated_ns, sent_ns FROM outbox WHERE `+strings.Join(where, " AND ")+` ORDER BY incident, tenant, id`, args...)
	if err != nil {
		return fmt.Errorf("sqlite store: outbox: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var d incident.Delivery
		var facts string
		var created, updated, sent int64
		if err := rows.Scan(&d.ID, &d.Incident, &d.Version, &d.Tenant, &d.Recipient, &d.Channel, &facts, &d.State, &d.Attempts,
			&d.Batch, &d.Error, &created, &updated, &sent); err != nil {
			return fmt.Errorf("sqlite store: outbox: %w", err)
		}
		if err := json.Unmarshal([]byte(facts), &d.Facts); err != nil {
			return fmt.Errorf("sqlite store: outbox row %s: facts: %w", d.ID, err)
		}
		d.CreatedAt, d.UpdatedAt, d.SentAt = fromNanos(created), fromNanos(updated), fromNanos(sent)
		if err := fn(&d); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("sqlite store: outbox: %w", err)
	}
	return nil
}

// AddDeliveryEvents keeps the events not seen before (by id) and returns
// those.
func (s *Store) AddDeliveryEvents(ctx context.Context, es []incident.DeliveryEvent) ([]incident.DeliveryEvent, error) {
	if len(es) == 0 {
		return nil, nil
	}
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("sqlite store: begin: %w", err)
	}
	defer tx.Rollback()
	var added []incident.DeliveryEvent
	for _, e := range es {
		res, err := tx.ExecContext(ctx, `INSERT INTO delivery_events (id, delivery, incident, tenant, type, at_ns, detail)
			VALUES (?,?,?,?,?,?,?) ON CONFLICT (id) DO NOTHING`, e.ID, e.Delivery, e.Incident, e.Tenant, e.Type, e.At.UnixNano(), e.Detail)
		if err != nil {
			return nil, fmt.Errorf("sqlite store: delivery events: %w", err)
		}
		if n, _ := res.RowsAffected(); n == 1 {
			added = append(added, e)
		}
	}
	if err := tx.Commit(); err != nil {
		return nil, fmt.Errorf("sqlite store: commit: %w", err)
	}
	return added, nil
}

// DeliveryEvents calls fn for each event of an incident's deliveries
// (those of one delivery when delivery is not empty), oldest first.
func (s *Store) DeliveryEvents(ctx context.Context, inc, delivery string, fn func(*incident.DeliveryEvent) error) error {
	q, args := `SELECT id, delivery, incident, tenant, type, at_ns, detail FROM delivery_events WHERE incident = ?`, []any{inc}
	if delivery != "" {
		q, args = q+" AND delivery = ?", append(args, delivery)
	}
	rows, err := s.r.QueryContext(ctx, q+" ORDER BY at_ns, id", args...)
	if err != nil {
		return fmt.Errorf("sqlite store: delivery events: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var e incident.DeliveryEvent
		var at int64
		if err := rows.Scan(&e.ID, &e.Delivery, &e.Incident, &e.Tenant, &e.Type, &at, &e.Detail); err != nil {
			return fmt.Errorf("sqlite store: delivery events: %w", err)
		}
		e.At = fromNanos(at)
		if err := fn(&e); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("sqlite store: delivery events: %w", err)
	}
	return nil
}

// RevokeToken records that the API token of that name is revoked; a
// second revocation keeps the first.
func (s *Store) RevokeToken(ctx context.Context, name, by, reason string, at time.Time) error {
	if _, err := s.w.ExecContext(ctx, `INSERT INTO revoked_tokens (name, at_ns, by, reason) VALUES (?, ?, ?, ?)
		ON CONFLICT (name) DO NOTHING`, name, at.UnixNano(), by, reason); err != nil {
		return fmt.Errorf("sqlite store: revoke token: %w", err)
	}
	return nil
}

// RevokedTokens calls fn for each revoked token.
func (s *Store) RevokedTokens(ctx context.Context, fn func(name, by, reason string, at time.Time) error) error {
	rows, err := s.r.QueryContext(ctx, `SELECT name, at_ns, by, reason FROM revoked_tokens ORDER BY name`)
	if err != nil {
		return fmt.Errorf("sqlite store: revoked tokens: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var name, by, reason string
		var at int64
		if err := rows.Scan(&name, &at, &by, &reason); err != nil {
			return fmt.Errorf("sqlite store: revoked tokens: %w", err)
		}
		if err := fn(name, by, reason, time.Unix(0, at).UTC()); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("sqlite store: revoked tokens: %w", err)
	}
	return nil
}
