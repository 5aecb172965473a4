package app

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode"

	"go.yaml.in/yaml/v3"

	"github.com/breachwatch/breachwatch/event"
	"github.com/breachwatch/breachwatch/ingest"
	"github.com/breachwatch/breachwatch/internal/yamlstrict"
	"github.com/breachwatch/breachwatch/web"
)

// EnvPrefix starts every environment variable breachwatch reads.
const EnvPrefix = "BREACHWATCH_"

// Options is breachwatch's whole configuration. It comes from defaults, then
// a YAML file, then BREACHWATCH_* environment variables, then flags, each
// overriding the one before. Secrets are read only from the environment or
// from files named in the configuration, never from the YAML itself.
type Options struct {
	// DataDir holds the embedded store, the embedded broker's log and the
	// development token.
	DataDir string `yaml:"data_dir"`
	// Organisation is who breachwatch works for: its name signs the
	// customer notices (the greeting, the sender's name).
	Organisation OrganisationOptions `yaml:"organisation"`
	Log          LogOptions          `yaml:"log"`
	HTTP         HTTPOptions         `yaml:"http"`
	Kafka        KafkaOptions        `yaml:"kafka"`
	Store        StoreOptions        `yaml:"store"`
	Ingest       IngestOptions       `yaml:"ingest"`
	Auth         AuthOptions         `yaml:"auth"`
	Demo         DemoOptions         `yaml:"demo"`
	ClickHouse   ClickHouseOptions   `yaml:"clickhouse"`
	Detect       DetectOptions       `yaml:"detect"`
	Tracker      TrackerOptions      `yaml:"tracker"`
	Slack        SlackOptions        `yaml:"slack"`
	Notify       NotifyOptions       `yaml:"notify"`
	Console      ConsoleOptions      `yaml:"console"`
	Debug        DebugOptions        `yaml:"debug"`
}

// OrganisationOptions say who the organisation is.
type OrganisationOptions struct {
	// Name, e.g. "Bookly B.V.": the notices' greeting ("Dear customer of
	// Bookly B.V.,") and the e-mail sender's name (unless notify.from_name
	// is set).
	Name string `yaml:"name"`
	// LeadAuthority is the organisation's lead supervisory authority (GDPR
	// Art. 56): the one its Art. 33 report goes to, and the authority a new
	// notice draft names for customers of countries without one of their
	// own in the authority table.
	LeadAuthority LeadAuthorityOptions `yaml:"lead_authority"`
}

// LeadAuthorityOptions name a supervisory authority.
type LeadAuthorityOptions struct {
	Name    string `yaml:"name"`
	Website string `yaml:"website"`
}

// SlackOptions configure the alerts to the security engineers. Without a
// channel and a bot token, alerts go to the log.
type SlackOptions struct {
	Channel           string `yaml:"channel"` // channel id, e.g. C0123ABCD
	BotTokenFile      string `yaml:"bot_token_file"`
	BotToken          string `yaml:"-" env:"SLACK_BOT_TOKEN" secret:"bot_token"`
	SigningSecretFile string `yaml:"signing_secret_file"`
	SigningSecret     string `yaml:"-" env:"SLACK_SIGNING_SECRET" secret:"signing_secret"`
	// APIURL is Slack's Web API base; change it only to test.
	APIURL string `yaml:"api_url"`
	// Users may use the buttons, each acting in a breachwatch role.
	Users []SlackUser `yaml:"users"`
}

// NotifyOptions configure the customer notices: who they come from, and
// SendGrid. Without a SendGrid API key, e-mails go to the dev mailbox.
type NotifyOptions struct {
	From     string `yaml:"from"` // the sender address (a verified SendGrid sender)
	FromName string `yaml:"from_name"`
	ReplyTo  string `yaml:"reply_to"` // e.g. the DPO's address
	// SendGrid's API key: BREACHWATCH_SENDGRID_API_KEY or the file.
	SendGridAPIKeyFile string `yaml:"sendgrid_api_key_file"`
	SendGridAPIKey     string `yaml:"-" env:"SENDGRID_API_KEY" secret:"sendgrid_api_key"`
	// SendGridURL is the API's base (https://api.eu.sendgrid.com for the
	// EU region).
	SendGridURL string `yaml:"sendgrid_url"`
	// SendGridWebhookKey is the Event Webhook's verification key (public:
	// base64, as SendGrid's settings show it); set, the webhook is served
	// at /hooks/sendgrid/events.
	SendGridWebhookKey string `yaml:"sendgrid_webhook_key"`
	// MailboxDir is the dev mailbox (default: <data_dir>/mailbox).
	MailboxDir string `yaml:"mailbox_dir"`
	// ReconcileAfter: a send interrupted by a crash is looked up with
	// SendGrid this long after it began (its activity search lags).
	ReconcileAfter Duration `yaml:"reconcile_after"`
	// Interval: the outbox is worked at least this often.
	Interval Duration `yaml:"interval"`
	// SelfApproval lets a DPO approve a notice they wrote (a one-person
	// team); each such approval needs a reason and is audited.
	SelfApproval bool `yaml:"self_approval"`
}

// ConsoleOptions configure the web console. Without users it is off.
type ConsoleOptions struct {
	// Users may sign in: name, role (engineer, dpo or admin) and a bcrypt
	// hash of the password (`breachwatch hash-password` prints one).
	Users []ConsoleUser `yaml:"users"`
	// SecureCookies marks the session cookie Secure; default: on unless
	// HTTP listens on loopback only (development).
	SecureCookies *bool `yaml:"secure_cookies"`
	// OIDC turns on "Sign in with SSO" through an OpenID Connect provider.
	OIDC OIDCOptions `yaml:"oidc"`
}

// OIDCOptions configure sign-in through an OpenID Connect provider.
type OIDCOptions struct {
	Issuer           string `yaml:"issuer"` // e.g. https://login.example.com/realms/acme
	ClientID         string `yaml:"client_id"`
	ClientSecretFile string `yaml:"client_secret_file"`
	ClientSecret     string `yaml:"-" env:"OIDC_CLIENT_SECRET" secret:"client_secret"`
	RedirectURL      string `yaml:"redirect_url"` // https://breachwatch.example.com/login/oidc/callback
	// Roles maps the provider's groups (RolesClaim, default "groups") to
	// breachwatch roles; users in none may not sign in.
	RolesClaim string            `yaml:"roles_claim"`
	Roles      map[string]string `yaml:"roles"`
	NameClaim  string            `yaml:"name_claim"` // default preferred_username, then email
}

// ConsoleUser is a person who may sign in to the console.
type ConsoleUser struct {
	Name         string `yaml:"name"`
	Role         string `yaml:"role"`
	PasswordHash string `yaml:"password_hash"`
}

// SlackUser maps a Slack user to a breachwatch role.
type SlackUser struct {
	ID   string `yaml:"id"`   // Slack user id, e.g. U0123ABCD
	Name string `yaml:"name"` // shown in the audit log as slack:<name>
	Role string `yaml:"role"` // engineer, dpo or admin
}

// TrackerOptions configure the incident tracker: which notification regimes
// apply, the customer directory, reminders.
type TrackerOptions struct {
	// Regimes always apply to the organisation (ids of the regime table).
	Regimes []string `yaml:"regimes"`
	// RegimesByCountry: a regime also applies when an affected customer's
	// country (from the customer directory) is one of its countries.
	RegimesByCountry bool `yaml:"regimes_by_country"`
	// RegimeTable replaces the built-in regime table (empty: built in).
	RegimeTable string `yaml:"regime_table"`
	// Customers is the customer directory file (tenant, country, locale,
	// time zone); empty: none.
	Customers string `yaml:"customers"`
	// ProcessorTarget is the internal target for telling controllers, as
	// their processor (GDPR Art. 33(2) names no number).
	ProcessorTarget Duration `yaml:"processor_target"`
	// ExposureGap: a resource's exposure that reopens within this time of
	// its last closing joins its incident (a new phase of it); later, it
	// is a new incident.
	ExposureGap Duration `yaml:"exposure_merge_gap"`
	// TimeZone is the organisation's, in which deadlines are shown besides UTC.
	TimeZone string `yaml:"time_zone"`
	// RemindBefore: reminders go out when this much time is left before a
	// deadline.
	RemindBefore Durations `yaml:"remind_before"`
	// RemindOverdueEvery: once a deadline has passed, a reminder this often
	// until the obligation is met.
	RemindOverdueEvery Duration `yaml:"remind_overdue_every"`
	// ConsoleURL is the console's external address, linked from alerts.
	ConsoleURL string `yaml:"console_url"`
	// PrivilegedGroups: employees in one of these groups may read customer
	// data; anyone else's reads during an exposure count as "accessed".
	PrivilegedGroups []string `yaml:"privileged_groups"`
}

// Durations is a list of durations, written "48h,24h" in the environment.
type Durations []Duration

// Set parses a comma-separated list of durations.
func (ds *Durations) Set(s string) error {
	*ds = nil
	for _, item := range strings.Split(s, ",") {
		if item = strings.TrimSpace(item); item == "" {
			continue
		}
		var d Duration
		if err := d.Set(item); err != nil {
			return err
		}
		*ds = append(*ds, d)
	}
	return nil
}

// DetectOptions configure the rules engine.
type DetectOptions struct {
	// RulesDir holds the rule files (*.yaml); empty turns detection off.
	RulesDir string `yaml:"rules_dir"`
	// Inventory is the data-inventory file; empty takes every store to
	// hold personal data of the tenants seen on it.
	Inventory string `yaml:"inventory"`
	// Lateness is how far behind the watermark (the event time every
	// input partition has reached) an event may arrive and still be
	// evaluated from the state kept in memory; an older one has its group
	// re-evaluated from the store. Nothing is dropped either way.
	Lateness Duration `yaml:"lateness"`
	// CorrectionHorizon: events older than this behind the watermark are
	// stored but not evaluated (counted and logged; see backfill).
	CorrectionHorizon Duration `yaml:"correction_horizon"`
	// IdleTimeout: an input partition that delivers nothing this long no
	// longer holds the watermark back.
	IdleTimeout Duration `yaml:"idle_timeout"`
	// MaxGroups bounds the live window groups (memory); beyond it the least
	// recently updated is evicted.
	MaxGroups int `yaml:"max_groups"`
	// MatchGap: matches of a rule in one group belong to one finding until
	// the group has been quiet this long.
	MatchGap Duration `yaml:"match_gap"`
	// ExposureHorizon: how far back configuration changes are replayed at
	// start, to find exposure windows still open.
	ExposureHorizon Duration `yaml:"exposure_horizon"`
	// ReloadInterval: how often the rule files are checked for changes
	// (0: only on SIGHUP).
	ReloadInterval Duration `yaml:"reload_interval"`
}

// DebugOptions configure diagnostics.
type DebugOptions struct {
	// PprofAddr serves Go's net/http/pprof on its own listener (not the
	// API's, and without authentication: keep it on loopback). Empty: off.
	PprofAddr string `yaml:"pprof_addr"`
}

// LogOptions configure logging.
type LogOptions struct {
	Format string `yaml:"format"` // auto (console on a terminal, else json), json, console
	Level  string `yaml:"level"`  // debug, info, warn, error
}

// HTTPOptions configure the HTTP server.
type HTTPOptions struct {
	Addr string `yaml:"addr"`
}

// KafkaOptions configure Kafka.
type KafkaOptions struct {
	// Brokers of the Kafka cluster; empty runs the embedded broker.
	Brokers      []string    `yaml:"brokers"`
	ClientID     string      `yaml:"client_id"`
	Group        string      `yaml:"group"`
	Topics       TopicNames  `yaml:"topics"`
	DLQSuffix    string      `yaml:"dlq_suffix"`
	CreateTopics bool        `yaml:"create_topics"` // create missing topics (and their DLQs) at start
	TLS          TLSOptions  `yaml:"tls"`
	SASL         SASLOptions `yaml:"sasl"`
	// Consumer batching and memory bounds.
	BatchMaxRecords      int      `yaml:"batch_max_records"`
	BatchMaxWait         Duration `yaml:"batch_max_wait"`
	FetchMaxBytes        ByteSize `yaml:"fetch_max_bytes"`
	MaxConcurrentFetches int      `yaml:"max_concurrent_fetches"`
	FetchMaxWait         Duration `yaml:"fetch_max_wait"`
	// MaxDrift: while catching up a backlog, a partition whose events run
	// more than this ahead of the slowest partition with records waiting
	// is paused until it catches up, so that detection holds at most this
	// much event time in memory (0: off; only with detection on).
	MaxDrift     Duration `yaml:"max_drift"`
	LagInterval  Duration `yaml:"lag_interval"`  // how often the consumer-lag metric is computed
	StoreWriters int      `yaml:"store_writers"` // batches written to the store at once (raise for a remote ClickHouse)
	Embedded     Embedded `yaml:"embedded"`
}

// TopicNames are the topics breachwatch consumes.
type TopicNames struct {
	Access string `yaml:"access"`
	Config string `yaml:"config"`
	// Anchors receives the audit log's head after every append, to be
	// kept for ever (retention.ms -1 when breachwatch creates it).
	Anchors string `yaml:"anchors"`
}

// SASLOptions configure SASL authentication to Kafka.
type SASLOptions struct {
	Mechanism    string `yaml:"mechanism"` // PLAIN, SCRAM-SHA-256, SCRAM-SHA-512
	Username     string `yaml:"username"`
	PasswordFile string `yaml:"password_file"`
	Password     string `yaml:"-" env:"KAFKA_SASL_PASSWORD" secret:"password"`
}

// Embedded configures the embedded broker.
type Embedded struct {
	Addr       string `yaml:"addr"`
	Partitions int    `yaml:"partitions"`
	SyncWrites bool   `yaml:"sync_writes"` // fsync each produced batch before acknowledging it
}

// TLSOptions configure a TLS client.
type TLSOptions struct {
	Enabled    bool   `yaml:"enabled"`
	CAFile     string `yaml:"ca_file"`
	CertFile   string `yaml:"cert_file"`
	KeyFile    string `yaml:"key_file"`
	ServerName string `yaml:"server_name"`
}

// ClickHouseOptions configure the ClickHouse store.
type ClickHouseOptions struct {
	// Addr of the native protocol (host:9000); empty uses the embedded store.
	Addr         []string   `yaml:"addr"`
	Database     string     `yaml:"database"`
	Username     string     `yaml:"username"`
	PasswordFile string     `yaml:"password_file"`
	Password     string     `yaml:"-" env:"CLICKHOUSE_PASSWORD" secret:"password"`
	TLS          TLSOptions `yaml:"tls"`
	DialTimeout  Duration   `yaml:"dial_timeout"`
	// Compression of the native protocol: lz4, zstd or none (cheaper
	// when ClickHouse runs on the same host).
	Compression string `yaml:"compression"`
}

// StoreOptions apply to whichever store is used.
type StoreOptions struct {
	// RetentionDays drops events on days more than this many days ago
	// (0 keeps everything).
	RetentionDays int `yaml:"retention_days"`
}

// IngestOptions configure validation and HTTP ingest.
type IngestOptions struct {
	// MaxEventBytes bounds one event, and each record of a CloudTrail log
	// file; MaxFileBytes bounds a CloudTrail log file ({"Records":[...]})
	// or JSON array of CloudTrail records as a whole.
	MaxEventBytes    ByteSize `yaml:"max_event_bytes"`
	MaxFileBytes     ByteSize `yaml:"max_file_bytes"`
	HTTPMaxBodyBytes ByteSize `yaml:"http_max_body_bytes"`
	HTTPWriteTimeout Duration `yaml:"http_write_timeout"`
	// MaxClockSkew: an event dated more than this after the receiving
	// clock is refused (HTTP 400, dead-letter reason "value"), so that no
	// event can move detection's event-time clocks past the real ones.
	MaxClockSkew Duration `yaml:"max_clock_skew"`
}

// AuthOptions configure API authentication.
type AuthOptions struct {
	Tokens []TokenOptions `yaml:"tokens"`
	// DevToken creates (once) an admin token in <data_dir>/dev-token, for
	// local use. make run turns it on; never turn it on in production.
	DevToken bool `yaml:"dev_token"`
}

// TokenOptions configure one API token. The secret comes from exactly one
// of TokenFile, TokenEnv (the name of an environment variable) or
// TokenSHA256 (the hex SHA-256 of the secret, which is not itself secret).
type TokenOptions struct {
	Name        string   `yaml:"name"`
	Role        string   `yaml:"role"`
	Tenants     []string `yaml:"tenants"`
	TokenFile   string   `yaml:"token_file"`
	TokenEnv    string   `yaml:"token_env"`
	TokenSHA256 string   `yaml:"token_sha256"`
}

// DemoOptions configure the demo traffic producer.
type DemoOptions struct {
	Enabled bool    `yaml:"enabled"`
	Rate    float64 `yaml:"rate"` // events per second
	Tenants int     `yaml:"tenants"`
	Seed    uint64  `yaml:"seed"`   // 0: a new seed each start
	Count   int64   `yaml:"count"`  // stop after this many events (0: never); for the demo command
	Breach  bool    `yaml:"breach"` // inject realistic exposures among the traffic
}

// Defaults returns the configuration a newcomer gets: HTTP on
// 127.0.0.1:8080, the embedded broker on 127.0.0.1:9092, the embedded store
// under ./data.
func Defaults() Options {
	return Options{
		DataDir: "./data",
		Log:     LogOptions{Format: "auto", Level: "info"},
		HTTP:    HTTPOptions{Addr: "127.0.0.1:8080"},
		Kafka: KafkaOptions{
			ClientID: "breachwatch", Group: "breachwatch",
			Topics:    TopicNames{Access: "breachwatch.access", Config: "breachwatch.config", Anchors: "breachwatch.audit-anchors"},
			DLQSuffix: ".dlq", CreateTopics: true,
			BatchMaxRecords: 10_000, BatchMaxWait: Duration(250 * time.Millisecond),
			FetchMaxBytes: 2 << 20, MaxConcurrentFetches: 2, FetchMaxWait: Duration(500 * time.Millisecond), MaxDrift: Duration(time.Minute), LagInterval: Duration(10 * time.Second), StoreWriters: 1,
			Embedded: Embedded{Addr: "127.0.0.1:9092", Partitions: 4, SyncWrites: true},
		},
		ClickHouse: ClickHouseOptions{Database: "breachwatch", Username: "default", DialTimeout: Duration(5 * time.Second), Compression: "lz4"},
		Store:      StoreOptions{RetentionDays: 400},
		Ingest: IngestOptions{MaxEventBytes: 64 << 10, MaxFileBytes: event.DefaultMaxFileBytes, HTTPMaxBodyBytes: ingest.DefaultHTTPMaxBodyBytes,
			HTTPWriteTimeout: Duration(15 * time.Second),
			MaxClockSkew:     Duration(15 * time.Minute)},
		Demo: DemoOptions{Rate: 200, Tenants: 50},
		Detect: DetectOptions{RulesDir: "./rules", Lateness: Duration(5 * time.Minute), MaxGroups: 1_000_000,
			CorrectionHorizon: Duration(7 * 24 * time.Hour), IdleTimeout: Duration(time.Minute),
			MatchGap: Duration(time.Hour), ExposureHorizon: Duration(30 * 24 * time.Hour), ReloadInterval: Duration(5 * time.Second)},
		Tracker: TrackerOptions{Regimes: []string{"gdpr"}, RegimesByCountry: true, ProcessorTarget: Duration(24 * time.Hour), ExposureGap: Duration(24 * time.Hour),
			TimeZone: "UTC", RemindBefore: Durations{Duration(48 * time.Hour), Duration(24 * time.Hour), Duration(12 * time.Hour),
				Duration(4 * time.Hour), Duration(time.Hour)}, RemindOverdueEvery: Duration(4 * time.Hour),
			PrivilegedGroups: []string{"support", "db-admins"}},
		Notify: NotifyOptions{From: "security@breachwatch.invalid", SendGridURL: "https://api.sendgrid.com",
			ReconcileAfter: Duration(10 * time.Minute), Interval: Duration(5 * time.Second)},
	}
}

// Duration is a time.Duration written as "250ms", "15s", "1h".
type Duration time.Duration

// UnmarshalYAML implements yaml.Unmarshaler.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error { return d.Set(n.Value) }

// Set parses a duration such as "250ms".
func (d *Duration) Set(s string) error {
	v, err := time.ParseDuration(strings.TrimSpace(s))
	if err != nil || v < 0 {
		return fmt.Errorf("want a duration such as 250ms, 15s or 1h, got %q", s)
	}
	*d = Duration(v)
	return nil
}

func (d Duration) String() string { return time.Duration(d).String() }

// MarshalYAML implements yaml.Marshaler, as "250ms".
func (d Duration) MarshalYAML() (any, error) { return d.String(), nil }

// ByteSize is a size in bytes, written as a number or with a unit: 64KiB,
// 16MiB, 1GiB (also KB, MB, GB as powers of 1000).
type ByteSize int64

// UnmarshalYAML implements yaml.Unmarshaler.
func (b *ByteSize) UnmarshalYAML(n *yaml.Node) error { return b.Set(n.Value) }

// Set parses a size such as "16MiB".
func (b *ByteSize) Set(s string) error {
	s = strings.TrimSpace(s)
	i := strings.IndexFunc(s, func(r rune) bool { return !unicode.IsDigit(r) })
	num, unit := s, ""
	if i >= 0 {
		num, unit = s[:i], strings.TrimSpace(s[i:])
	}
	mult := map[string]int64{"": 1, "B": 1, "KB": 1e3, "MB": 1e6, "GB": 1e9, "KIB": 1 << 10, "MIB": 1 << 20, "GIB": 1 << 30}[strings.ToUpper(unit)]
	n, err := strconv.ParseInt(num, 10, 64)
	if err != nil || mult == 0 || n < 0 || n > (1<<62)/mult {
		return fmt.Errorf("want a size such as 65536, 64KiB or 16MiB, got %q", s)
	}
	*b = ByteSize(n * mult)
	return nil
}

// String renders the size with the largest binary unit that divides it.
func (b ByteSize) String() string {
	for _, u := range []struct {
		name string
		size int64
	}{{"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}} {
		if b != 0 && int64(b)%u.size == 0 {
			return strconv.FormatInt(int64(b)/u.size, 10) + u.name
		}
	}
	return strconv.FormatInt(int64(b), 10)
}

// MarshalYAML implements yaml.Marshaler, as "16MiB".
func (b ByteSize) MarshalYAML() (any, error) { return b.String(), nil }

// Load builds the Options from defaults, the YAML file at path (if not
// empty), the environment (environ, as os.Environ returns it) and the
// overrides set on the command line ("key.path=value"), in that order, and
// resolves and checks them.
func Load(path string, environ []string, overrides []string) (Options, error) {
	o := Defaults()
	if path != "" {
		data, err := os.ReadFile(path)
		if err != nil {
			return o, fmt.Errorf("config: %w", err)
		}
		if err := decodeYAML(path, data, &o); err != nil {
			return o, err
		}
	}
	setters := settersOf(&o)
	for _, kv := range environ {
		name, value, _ := strings.Cut(kv, "=")
		if !strings.HasPrefix(name, EnvPrefix) {
			continue
		}
		s, ok := setters.byEnv[name]
		if !ok {
			return o, fmt.Errorf("config: unknown environment variable %s (known: %s)", name, setters.envList())
		}
		if err := s.set(value); err != nil {
			return o, fmt.Errorf("config: %s: %w", name, err)
		}
	}
	for _, kv := range overrides {
		key, value, ok := strings.Cut(kv, "=")
		if !ok {
			return o, fmt.Errorf("config: override %q: want key=value", kv)
		}
		s, ok := setters.byKey[key]
		if !ok {
			return o, fmt.Errorf("config: unknown key %q", key)
		}
		if err := s.set(value); err != nil {
			return o, fmt.Errorf("config: %s: %w", key, err)
		}
	}
	if err := o.resolveSecrets(); err != nil {
		return o, err
	}
	return o, o.Validate()
}

// decodeYAML decodes data onto o (keeping defaults for what it leaves out),
// rejecting unknown keys by name and line.
func decodeYAML(path string, data []byte, o *Options) error {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return fmt.Errorf("config %s: %w", path, err)
	}
	if len(doc.Content) == 0 {
		return nil // an empty file
	}
	if err := yamlstrict.Decode(doc.Content[0], o, explainSecret); err != nil {
		return fmt.Errorf("config %s: %w", path, err)
	}
	return nil
}

// explainSecret tells someone who wrote a secret into the file where it goes.
func explainSecret(t reflect.Type, key string) string {
	for i := 0; i < t.NumField(); i++ {
		if f := t.Field(i); f.Tag.Get("secret") == key {
			return fmt.Sprintf("secrets are not read from the config file; set %s%s or use %s_file", EnvPrefix, f.Tag.Get("env"), key)
		}
	}
	return ""
}

// setter sets one scalar (or list) option from text.
type setter struct {
	key string // dotted path, e.g. kafka.brokers
	env string
	set func(string) error
}

type setterTable struct {
	byKey map[string]setter
	byEnv map[string]setter
}

func (t setterTable) envList() string {
	names := make([]string, 0, len(t.byEnv))
	for n := range t.byEnv {
		names = append(names, n)
	}
	sort.Strings(names)
	return strings.Join(names, ", ")
}

// settersOf lists every option that can be set from the environment or a
// flag: scalars and lists of scalars, plus the secrets.
func settersOf(o *Options) setterTable {
	t := setterTable{byKey: map[string]setter{}, byEnv: map[string]setter{}}
	var walk func(v reflect.Value, prefix string)
	walk = func(v reflect.Value, prefix string) {
		for i := 0; i < v.NumField(); i++ {
			f, fv := v.Type().Field(i), v.Field(i)
			if env := f.Tag.Get("env"); env != "" {
				s := setter{key: prefix + f.Tag.Get("secret"), env: EnvPrefix + env, set: textSetter(fv)}
				t.byEnv[s.env] = s
				continue
			}
			name := yamlstrict.Name(f)
			if name == "" {
				continue
			}
			key := prefix + name
			if fv.Kind() == reflect.Struct {
				walk(fv, key+".")
				continue
			}
			set := textSetter(fv)
			if set == nil {
				continue // e.g. the token list: configuration file only
			}
			s := setter{key: key, env: EnvPrefix + strings.ToUpper(strings.ReplaceAll(key, ".", "_")), set: set}
			t.byKey[s.key] = s
			t.byEnv[s.env] = s
		}
	}
	walk(reflect.ValueOf(o).Elem(), "")
	return t
}

func textSetter(v reflect.Value) func(string) error {
	switch p := v.Addr().Interface().(type) {
	case *Duration:
		return p.Set
	case *ByteSize:
		return p.Set
	case *Durations:
		return p.Set
	case *string:
		return func(s string) error { *p = s; return nil }
	case *[]string:
		return func(s string) error {
			*p = nil
			for _, item := range strings.Split(s, ",") {
				if item = strings.TrimSpace(item); item != "" {
					*p = append(*p, item)
				}
			}
			return nil
		}
	case *bool:
		return func(s string) error {
			b, err := strconv.ParseBool(strings.TrimSpace(s))
			if err != nil {
				return fmt.Errorf("want true or false, got %q", s)
			}
			*p = b
			return nil
		}
	case *int:
		return func(s string) error {
			n, err := strconv.Atoi(strings.TrimSpace(s))
			if err != nil {
				return fmt.Errorf("want a whole number, got %q", s)
			}
			*p = n
			return nil
		}
	case *uint64:
		return func(s string) error {
			n, err := strconv.ParseUint(strings.TrimSpace(s), 10, 64)
			if err != nil {
				return fmt.Errorf("want a non-negative whole number, got %q", s)
			}
			*p = n
			return nil
		}
	case *float64:
		return func(s string) error {
			n, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
			if err != nil {
				return fmt.Errorf("want a number, got %q", s)
			}
			*p = n
			return nil
		}
	}
	return nil
}

// readSecretFile reads a secret from a file, without its trailing newline.
func readSecretFile(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	return strings.TrimRight(string(b), "\r\n"), nil
}

func (o *Options) resolveSecrets() error {
	if o.ClickHouse.PasswordFile != "" {
		p, err := readSecretFile(o.ClickHouse.PasswordFile)
		if err != nil {
			return fmt.Errorf("config: clickhouse.password_file: %w", err)
		}
		o.ClickHouse.Password = p
	}
	if o.Slack.BotTokenFile != "" {
		p, err := readSecretFile(o.Slack.BotTokenFile)
		if err != nil {
			return fmt.Errorf("config: slack.bot_token_file: %w", err)
		}
		o.Slack.BotToken = p
	}
	if o.Slack.SigningSecretFile != "" {
		p, err := readSecretFile(o.Slack.SigningSecretFile)
		if err != nil {
			return fmt.Errorf("config: slack.signing_secret_file: %w", err)
		}
		o.Slack.SigningSecret = p
	}
	if o.Console.OIDC.ClientSecretFile != "" {
		p, err := readSecretFile(o.Console.OIDC.ClientSecretFile)
		if err != nil {
			return fmt.Errorf("config: console.oidc.client_secret_file: %w", err)
		}
		o.Console.OIDC.ClientSecret = p
	}
	if o.Notify.SendGridAPIKeyFile != "" {
		p, err := readSecretFile(o.Notify.SendGridAPIKeyFile)
		if err != nil {
			return fmt.Errorf("config: notify.sendgrid_api_key_file: %w", err)
		}
		o.Notify.SendGridAPIKey = p
	}
	if o.Kafka.SASL.PasswordFile != "" {
		p, err := readSecretFile(o.Kafka.SASL.PasswordFile)
		if err != nil {
			return fmt.Errorf("config: kafka.sasl.password_file: %w", err)
		}
		o.Kafka.SASL.Password = p
	}
	return nil
}

// MinTokenLength is the shortest token secret accepted.
const MinTokenLength = 24

// tokens resolves the configured API tokens, reading their secrets.
func (o *Options) tokens(getenv func(string) string) ([]web.Token, error) {
	var out []web.Token
	names := map[string]bool{}
	for i, t := range o.Auth.Tokens {
		where := fmt.Sprintf("auth.tokens[%d]", i)
		if t.Name == "" {
			return nil, fmt.Errorf("config: %s: name is required", where)
		}
		if names[t.Name] {
			return nil, fmt.Errorf("config: %s: the name %q is used twice", where, t.Name)
		}
		names[t.Name] = true
		role := web.Role(t.Role)
		if !role.Valid() {
			return nil, fmt.Errorf("config: %s (%s): role %q: want one of ingest, engineer, dpo, admin, app", where, t.Name, t.Role)
		}
		if role == web.RoleApp && len(t.Tenants) == 0 {
			return nil, fmt.Errorf("config: %s (%s): an app token needs the tenants it serves", where, t.Name)
		}
		if role != web.RoleApp && len(t.Tenants) > 0 {
			return nil, fmt.Errorf("config: %s (%s): tenants apply to app tokens only", where, t.Name)
		}
		sources := 0
		for _, s := range []string{t.TokenFile, t.TokenEnv, t.TokenSHA256} {
			if s != "" {
				sources++
			}
		}
		if sources != 1 {
			return nil, fmt.Errorf("config: %s (%s): give exactly one of token_file, token_env, token_sha256", where, t.Name)
		}
		tok := web.Token{Name: t.Name, Role: role, Tenants: t.Tenants}
		var secret string
		switch {
		case t.TokenSHA256 != "":
			h, err := parseHash(t.TokenSHA256)
			if err != nil {
				return nil, fmt.Errorf("config: %s (%s): token_sha256: %w", where, t.Name, err)
			}
			tok.Hash = h
			out = append(out, tok)
			continue
		case t.TokenFile != "":
			s, err := readSecretFile(t.TokenFile)
			if err != nil {
				return nil, fmt.Errorf("config: %s (%s): token_file: %w", where, t.Name, err)
			}
			secret = s
		default:
			secret = getenv(t.TokenEnv)
			if secret == "" {
				return nil, fmt.Errorf("config: %s (%s): environment variable %s is empty or unset", where, t.Name, t.TokenEnv)
			}
		}
		if len(secret) < MinTokenLength {
			return nil, fmt.Errorf("config: %s (%s): the token is shorter than %d characters", where, t.Name, MinTokenLength)
		}
		tok.Hash = web.HashToken(secret)
		out = append(out, tok)
	}
	return out, nil
}

func parseHash(s string) ([32]byte, error) {
	var h [32]byte
	s = strings.TrimSpace(s)
	if len(s) != 64 {
		return h, errors.New("want 64 hex digits")
	}
	for i := range h {
		v, err := strconv.ParseUint(s[2*i:2*i+2], 16, 8)
		if err != nil {
			return h, errors.New("want 64 hex digits")
		}
		h[i] = byte(v)
	}
	return h, nil
}

// Validate checks the options for values that cannot work.
func (o *Options) Validate() error {
	var errs []error
	bad := func(key, format string, args ...any) {
		errs = append(errs, fmt.Errorf("config: %s: "+format, append([]any{key}, args...)...))
	}
	if o.DataDir == "" {
		bad("data_dir", "must not be empty")
	}
	switch o.Log.Format {
	case "auto", "json", "console":
	default:
		bad("log.format", "want auto, json or console, got %q", o.Log.Format)
	}
	switch o.Log.Level {
	case "debug", "info", "warn", "error":
	default:
		bad("log.level", "want debug, info, warn or error, got %q", o.Log.Level)
	}
	checkAddr := func(key, addr string) {
		if _, _, err := net.SplitHostPort(addr); err != nil {
			bad(key, "want host:port, got %q", addr)
		}
	}
	checkAddr("http.addr", o.HTTP.Addr)
	if o.Debug.PprofAddr != "" {
		checkAddr("debug.pprof_addr", o.Debug.PprofAddr)
	}
	for _, b := range o.Kafka.Brokers {
		checkAddr("kafka.brokers", b)
	}
	if len(o.Kafka.Brokers) == 0 {
		checkAddr("kafka.embedded.addr", o.Kafka.Embedded.Addr)
		if o.Kafka.Embedded.Partitions < 1 || o.Kafka.Embedded.Partitions > 1000 {
			bad("kafka.embedded.partitions", "want 1 to 1000, got %d", o.Kafka.Embedded.Partitions)
		}
	}
	for _, a := range o.ClickHouse.Addr {
		checkAddr("clickhouse.addr", a)
	}
	switch o.ClickHouse.Compression {
	case "lz4", "zstd", "none":
	default:
		bad("clickhouse.compression", "want lz4, zstd or none, got %q", o.ClickHouse.Compression)
	}
	if t := o.Kafka.Topics; t.Access == "" || t.Config == "" || t.Access == t.Config || t.Anchors == "" || t.Anchors == t.Access || t.Anchors == t.Config {
		bad("kafka.topics", "access, config and anchors must be three different, non-empty topic names")
	}
	if o.Kafka.DLQSuffix == "" {
		bad("kafka.dlq_suffix", "must not be empty (the dead-letter topic would be the source topic)")
	}
	if o.Kafka.Group == "" {
		bad("kafka.group", "must not be empty")
	}
	if o.Kafka.BatchMaxRecords < 1 {
		bad("kafka.batch_max_records", "want at least 1, got %d", o.Kafka.BatchMaxRecords)
	}
	if o.Kafka.FetchMaxBytes < 1<<20 || o.Kafka.FetchMaxBytes > 1<<30 {
		bad("kafka.fetch_max_bytes", "want 1MiB to 1GiB, got %d", o.Kafka.FetchMaxBytes)
	}
	if o.Kafka.StoreWriters < 1 || o.Kafka.StoreWriters > 16 {
		bad("kafka.store_writers", "want 1 to 16, got %d", o.Kafka.StoreWriters)
	}
	if o.Kafka.MaxConcurrentFetches < 1 {
		bad("kafka.max_concurrent_fetches", "want at least 1, got %d", o.Kafka.MaxConcurrentFetches)
	}
	if o.Kafka.MaxDrift < 0 || o.Kafka.MaxDrift > Duration(24*time.Hour) {
		bad("kafka.max_drift", "want 0 (off) to 24h, got %v", time.Duration(o.Kafka.MaxDrift))
	}
	if o.Kafka.FetchMaxWait < Duration(10*time.Millisecond) || o.Kafka.FetchMaxWait > Duration(30*time.Second) {
		bad("kafka.fetch_max_wait", "want 10ms to 30s, got %v", time.Duration(o.Kafka.FetchMaxWait))
	}
	if o.Ingest.MaxEventBytes < 1024 || o.Ingest.MaxEventBytes > 16<<20 {
		bad("ingest.max_event_bytes", "want 1KiB to 16MiB, got %d", o.Ingest.MaxEventBytes)
	}
	if o.Ingest.MaxFileBytes < o.Ingest.MaxEventBytes || o.Ingest.MaxFileBytes > 256<<20 {
		bad("ingest.max_file_bytes", "want at least ingest.max_event_bytes (%d) and at most 256MiB, got %d", o.Ingest.MaxEventBytes, o.Ingest.MaxFileBytes)
	}
	if o.Ingest.MaxClockSkew < Duration(time.Second) || o.Ingest.MaxClockSkew > Duration(7*24*time.Hour) {
		bad("ingest.max_clock_skew", "want 1s to 168h, got %s", time.Duration(o.Ingest.MaxClockSkew))
	}
	if o.Ingest.HTTPMaxBodyBytes < o.Ingest.MaxEventBytes {
		bad("ingest.http_max_body_bytes", "must be at least ingest.max_event_bytes")
	}
	if o.Store.RetentionDays < 0 {
		bad("store.retention_days", "want 0 (keep everything) or more, got %d", o.Store.RetentionDays)
	}
	if o.Demo.Rate <= 0 || o.Demo.Rate > 1e6 {
		bad("demo.rate", "want more than 0 and at most 1000000 events per second, got %v", o.Demo.Rate)
	}
	if o.Detect.MaxGroups < 1000 {
		bad("detect.max_groups", "want at least 1000, got %d", o.Detect.MaxGroups)
	}
	if o.Detect.CorrectionHorizon < Duration(time.Hour) || o.Detect.IdleTimeout < Duration(time.Second) {
		bad("detect", "correction_horizon must be at least 1h and idle_timeout at least 1s")
	}
	if o.Detect.Lateness < 0 || o.Detect.MatchGap <= 0 || o.Detect.ExposureHorizon < 0 || o.Detect.ReloadInterval < 0 {
		bad("detect", "lateness, exposure_horizon and reload_interval must not be negative, and match_gap must be positive")
	}
	if _, err := time.LoadLocation(o.Tracker.TimeZone); err != nil || o.Tracker.TimeZone == "" {
		bad("tracker.time_zone", "want an IANA time zone such as Europe/Amsterdam, got %q", o.Tracker.TimeZone)
	}
	if o.Tracker.ExposureGap <= 0 || o.Tracker.ExposureGap > Duration(365*24*time.Hour) {
		bad("tracker.exposure_merge_gap", "want a positive duration up to 8760h, got %v", o.Tracker.ExposureGap)
	}
	if o.Tracker.ProcessorTarget <= 0 {
		bad("tracker.processor_target", "want a positive duration, got %v", o.Tracker.ProcessorTarget)
	}
	for _, d := range o.Tracker.RemindBefore {
		if d <= 0 {
			bad("tracker.remind_before", "want positive durations, got %v", d)
		}
	}
	if o.Tracker.RemindOverdueEvery < Duration(time.Minute) {
		bad("tracker.remind_overdue_every", "want at least 1m, got %v", o.Tracker.RemindOverdueEvery)
	}
	if u := o.Tracker.ConsoleURL; u != "" && !strings.HasPrefix(u, "https://") && !strings.HasPrefix(u, "http://") {
		bad("tracker.console_url", "want an http(s) URL, got %q", u)
	}
	if o.Slack.Channel != "" {
		if o.Slack.BotToken == "" {
			bad("slack.bot_token_file", "slack.channel is set but there is no bot token (BREACHWATCH_SLACK_BOT_TOKEN or slack.bot_token_file)")
		}
		if o.Slack.SigningSecret == "" {
			bad("slack.signing_secret_file", "slack.channel is set but there is no signing secret for the buttons (BREACHWATCH_SLACK_SIGNING_SECRET or slack.signing_secret_file)")
		}
	}
	if o.Notify.From == "" || strings.Count(o.Notify.From, "@") != 1 || strings.ContainsAny(o.Notify.From, " <>\r\n") {
		bad("notify.from", "want the sender's e-mail address")
	}
	if o.Notify.Interval < Duration(100*time.Millisecond) {
		bad("notify.interval", "want at least 100ms")
	}
	if o.Notify.ReconcileAfter < 0 {
		bad("notify.reconcile_after", "want a duration of 0 or more")
	}
	if u, err := url.Parse(o.Notify.SendGridURL); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		bad("notify.sendgrid_url", "want an http(s) URL such as https://api.sendgrid.com")
	}
	if oi := o.Console.OIDC; oi.Issuer != "" {
		if u, err := url.Parse(oi.Issuer); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			bad("console.oidc.issuer", "want the provider's issuer URL")
		}
		if oi.ClientID == "" {
			bad("console.oidc.client_id", "required with an issuer")
		}
		if u, err := url.Parse(oi.RedirectURL); err != nil || u.Host == "" || !strings.HasSuffix(u.Path, "/login/oidc/callback") {
			bad("console.oidc.redirect_url", "want breachwatch's external URL ending in /login/oidc/callback")
		}
		if len(oi.Roles) == 0 {
			bad("console.oidc.roles", "map at least one of the provider's groups to a role (engineer, dpo or admin)")
		}
		for g, r := range oi.Roles {
			if r != "engineer" && r != "dpo" && r != "admin" {
				bad("console.oidc.roles."+g, "want engineer, dpo or admin")
			}
		}
	}
	seenUsers := map[string]bool{}
	for i, u := range o.Console.Users {
		switch {
		case u.Name == "" || len(u.Name) > 64 || strings.ContainsAny(u.Name, " :\t\r\n"):
			bad(fmt.Sprintf("console.users[%d].name", i), "want a name of 1 to 64 characters without spaces or colons")
		case seenUsers[u.Name]:
			bad(fmt.Sprintf("console.users[%d].name", i), "user "+u.Name+" is listed twice")
		case u.Role != "engineer" && u.Role != "dpo" && u.Role != "admin":
			bad(fmt.Sprintf("console.users[%d].role", i), "want engineer, dpo or admin")
		case !strings.HasPrefix(u.PasswordHash, "$2"):
			bad(fmt.Sprintf("console.users[%d].password_hash", i), "want a bcrypt hash ($2a$…, $2b$…); `breachwatch hash-password` prints one")
		}
		seenUsers[u.Name] = true
	}
	for i, u := range o.Slack.Users {
		if u.ID == "" || u.Name == "" || (u.Role != "engineer" && u.Role != "dpo" && u.Role != "admin") {
			bad(fmt.Sprintf("slack.users[%d]", i), "each user needs an id, a name and a role (engineer, dpo or admin)")
		}
	}
	if o.Demo.Count < 0 {
		bad("demo.count", "want 0 (no end) or more, got %d", o.Demo.Count)
	}
	if o.Demo.Tenants < 1 || o.Demo.Tenants > 100_000 {
		bad("demo.tenants", "want 1 to 100000, got %d", o.Demo.Tenants)
	}
	return errors.Join(errs...)
}
