// Package app is breachwatch's one composition root: it builds every part
// from Options, in order, runs them, and tears them down in reverse order.
// Run can be started in-process, which is how the end-to-end tests run it.
package app

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/pprof"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/breachwatch/breachwatch/detect"
	"github.com/breachwatch/breachwatch/incident"
	"github.com/breachwatch/breachwatch/ingest"
	"github.com/breachwatch/breachwatch/notify"
	slacknotify "github.com/breachwatch/breachwatch/notify/slack"
	"github.com/breachwatch/breachwatch/store"
	"github.com/breachwatch/breachwatch/store/clickhouse"
	"github.com/breachwatch/breachwatch/store/sqlite"
	"github.com/breachwatch/breachwatch/tracker"
	"github.com/breachwatch/breachwatch/web"
	"github.com/breachwatch/breachwatch/web/console"
)

// Runtime is what Run needs from its surroundings besides the Options.
type Runtime struct {
	Stdout io.Writer           // receives the start-up banner; nil for none
	Logger *zap.Logger         // nil: built from Options.Log
	Getenv func(string) string // nil: os.Getenv
	Now    func() time.Time    // nil: time.Now
	// Ready, if set, is called once everything is listening.
	Ready func(Info)
	// Reload delivers a signal (SIGHUP) to reload the rules; nil for none.
	Reload <-chan os.Signal
}

// Info says where a running breachwatch can be reached.
type Info struct {
	HTTPAddr     string
	KafkaBrokers []string
	Embedded     bool     // the broker is the embedded one
	Store        string   // a description, e.g. "sqlite data/breachwatch.db"
	DevTokenFile string   // set when the development token is on
	Notices      string   // where customer e-mails go: SendGrid or the dev mailbox
	Console      bool     // the web console is on
	DemoLogins   []string // development: the console's demo logins (name, role, password)
	Rules        int      // rules running (0: detection off)
	RulesVersion string
	Routes       []string // what the HTTP server serves ("GET /api/v1/incidents", …; see web.Server.Routes)
}

// appStore is what app needs of a store.
type appStore interface {
	ingest.Store
	detect.Store
	SaveFindings(ctx context.Context, fs []incident.Finding) error
	Findings(ctx context.Context, since time.Time, limit int) ([]incident.Finding, error)
	notify.Outbox
	notify.Ledger
	revocationStore
	tracker.Store
	tracker.AccessSource
	Latest(ctx context.Context) (time.Time, error)
	store.Dropper
	Ping(ctx context.Context) error
	Close() error
}

// Run runs breachwatch until ctx ends or a part fails, then stops every
// part in reverse order. It returns nil after a clean stop.
func Run(ctx context.Context, o Options, rt Runtime) (err error) {
	log := rt.Logger
	if log == nil {
		if log, err = NewLogger(o.Log); err != nil {
			return err
		}
		defer func() { _ = log.Sync() }()
	}
	if rt.Getenv == nil {
		rt.Getenv = os.Getenv
	}
	if rt.Now == nil {
		rt.Now = time.Now
	}
	if err := os.MkdirAll(o.DataDir, 0o750); err != nil {
		return fmt.Errorf("data dir: %w", err)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	reg := prometheus.NewRegistry()
	if err := errors.Join(
		reg.Register(collectors.NewGoCollector()),
		reg.Register(collectors.NewProcessCollector(collectors.ProcessCollectorOpts{})),
	); err != nil {
		return fmt.Errorf("metrics: %w", err)
	}

	st, storeDesc, err := openStore(ctx, o, log)
	if err != nil {
		return err
	}
	defer st.Close()

	kopts, err := o.kafkaClient()
	if err != nil {
		return err
	}
	topics := []string{o.Kafka.Topics.Access, o.Kafka.Topics.Config,
		o.Kafka.Topics.Access + o.Kafka.DLQSuffix, o.Kafka.Topics.Config + o.Kafka.DLQSuffix}
	if embedded := len(o.Kafka.Brokers) == 0; embedded {
		topics = append(topics, o.Kafka.Topics.Anchors) // the embedded broker keeps every topic's log
	}
	embedded := len(o.Kafka.Brokers) == 0
	if embedded {
		emb, err := ingest.StartEmbedded(ingest.EmbeddedOptions{
			Addr: o.Kafka.Embedded.Addr, DataDir: filepath.Join(o.DataDir, "kafka"),
			SyncWrites: o.Kafka.Embedded.SyncWrites, Partitions: int32(o.Kafka.Embedded.Partitions), Topics: topics,
		}, log)
		if err != nil {
			return err
		}
		defer emb.Close() // after the consumer and the demo producer have stopped
		kopts.Brokers = []string{emb.Addr()}
	} else if o.Kafka.CreateTopics {
		tctx, tcancel := context.WithTimeout(ctx, 20*time.Second)
		err := ingest.EnsureTopics(tctx, kopts, log, topics...)
		if err == nil {
			forever := "-1"
			err = ingest.EnsureTopicsWith(tctx, kopts, log, map[string]*string{"retention.ms": &forever}, o.Kafka.Topics.Anchors)
		}
		if err != nil {
			log.Warn("could not create the topics; create them yourself if they are missing", zap.Error(err))
		}
		tcancel()
	}
	anchors, err := newAnchorPublisher(kopts, o.Kafka.Topics.Anchors, log.Named("audit"))
	if err != nil {
		return err
	}
	defer anchors.close()

	metrics, err := ingest.NewMetrics(reg)
	if err != nil {
		return fmt.Errorf("metrics: %w", err)
	}
	var engine *detect.Engine
	inventory := func() *incident.Inventory {
		// engine is set before any part that reports findings starts.
		if engine != nil {
			return engine.Set().Inventory()
		}
		return nil
	}
	tr, err := newTracker(ctx, o, st, inventory, exposureCloser{func() *detect.Engine { return engine }}, anchors.publish, reg, rt.Now, log.Named("tracker"))
	if err != nil {
		return err
	}
	orgZone, err := time.LoadLocation(o.Tracker.TimeZone)
	if err != nil {
		return fmt.Errorf("tracker.time_zone: %w", err)
	}
	nt, err := newNotices(o, st, tr, orgZone, reg, rt.Now, log.Named("notify"))
	if err != nil {
		return err
	}
	feed := newTrackerFeed(tr, log.Named("tracker"))
	if n, err := replayFindings(ctx, st, feed, rt.Now()); err != nil {
		return fmt.Errorf("reading the stored findings: %w", err)
	} else if n > 0 {
		log.Info("stored findings queued for the tracker again (it ignores what it has)", zap.Int("findings", n))
	}
	var handoff ingest.Handoff
	var detectRoutes []web.Route
	if o.Detect.RulesDir != "" {
		var sink detect.Sink
		if engine, sink, err = newEngine(ctx, o, st, feed, reg, log.Named("detect"), rt.Now); err != nil {
			return err
		}
		handoff = engine
		backfills := &detect.Backfills{
			NewEngine: func() (*detect.Engine, error) {
				return detect.New(engine.Set(), sink, o.engineOptions(st, rt.Now), prometheus.NewRegistry(), log.Named("backfill"))
			},
			Latest:          func(ctx context.Context) (time.Time, error) { return latestStored(ctx, o, st, rt.Now) },
			ExposureHorizon: time.Duration(o.Detect.ExposureHorizon), Now: rt.Now, Log: log.Named("backfill"),
		}
		staff := []web.Role{web.RoleEngineer}
		detectRoutes = []web.Route{
			{Method: "POST", Path: "/api/v1/backfill", Roles: staff, Handler: backfills.StartHandler(ctx)},
			{Method: "GET", Path: "/api/v1/backfill/{id}", Roles: staff, Handler: backfills.GetHandler()},
		}
	} else {
		log.Warn("detection is off (detect.rules_dir is empty): events are stored, nothing is evaluated")
	}
	writer := ingest.NewWriter(st, ingest.Backoff{}, metrics, log.Named("ingest"))
	var maxDrift time.Duration // aligning partitions only serves detection
	if handoff != nil {
		maxDrift = time.Duration(o.Kafka.MaxDrift)
	}
	consumer, err := ingest.NewConsumer(kopts, ingest.ConsumerOptions{
		Group: o.Kafka.Group, AccessTopic: o.Kafka.Topics.Access, ConfigTopic: o.Kafka.Topics.Config,
		DLQSuffix: o.Kafka.DLQSuffix, MaxBatch: o.Kafka.BatchMaxRecords, MaxWait: time.Duration(o.Kafka.BatchMaxWait),
		MaxEventBytes: int(o.Ingest.MaxEventBytes), MaxFileBytes: int(o.Ingest.MaxFileBytes), MaxClockSkew: time.Duration(o.Ingest.MaxClockSkew), Now: rt.Now,
		FetchMaxBytes:        int32(o.Kafka.FetchMaxBytes),
		MaxConcurrentFetches: o.Kafka.MaxConcurrentFetches, FetchMaxWait: time.Duration(o.Kafka.FetchMaxWait), LagInterval: time.Duration(o.Kafka.LagInterval),
		Writers: o.Kafka.StoreWriters, MaxDrift: maxDrift,
	}, writer, handoff, metrics, log.Named("consumer"))
	if err != nil {
		return err
	}
	httpIngest := ingest.NewHTTP(writer, handoff, ingest.HTTPOptions{
		MaxBodyBytes: int64(o.Ingest.HTTPMaxBodyBytes), MaxEventBytes: int(o.Ingest.MaxEventBytes), MaxFileBytes: int(o.Ingest.MaxFileBytes),
		WriteTimeout: time.Duration(o.Ingest.HTTPWriteTimeout), MaxClockSkew: time.Duration(o.Ingest.MaxClockSkew), Now: rt.Now,
	}, metrics, log.Named("http-ingest"))

	tokens, err := o.tokens(rt.Getenv)
	if err != nil {
		return err
	}
	var devTokenFile string
	if o.Auth.DevToken {
		tok, path, err := devToken(o.DataDir)
		if err != nil {
			return err
		}
		tokens, devTokenFile = append(tokens, tok), path
	}
	if len(tokens) == 0 {
		log.Warn("no API tokens are configured: every /api/ request will be refused (see auth.tokens)")
	}
	admin, err := newTokenAdmin(ctx, st, tokens, rt.Now, log.Named("tokens"))
	if err != nil {
		return fmt.Errorf("reading the revoked tokens: %w", err)
	}
	cons, demoLogins, err := newConsole(o, st, tr, nt, admin, func() *detect.Engine { return engine }, orgZone, rt.Now, log.Named("console"))
	if err != nil {
		return err
	}
	alerter, webhooks, err := newAlerter(o, tr, log.Named("slack"))
	if err != nil {
		return err
	}
	ingestRoles := []web.Role{web.RoleIngest}
	srv, err := web.New(web.Options{
		Addr:   o.HTTP.Addr,
		Tokens: tokens,
		Routes: append([]web.Route{
			{Method: "POST", Path: "/api/v1/events/access", Roles: ingestRoles, Handler: httpIngest.Access()},
			{Method: "POST", Path: "/api/v1/events/config", Roles: ingestRoles, Handler: httpIngest.Config()},
		}, slices.Concat(incidentRoutes(tr), nt.routes, admin.routes(), detectRoutes)...),
		Webhooks: append(webhooks, nt.webhooks...),
		Assets:   nt.assets,
		Console:  consoleHandler(cons),
		Revoked:  admin.Revoked,
		Checks: []web.Check{
			{Name: "kafka", Fn: consumer.Ping},
			{Name: "store", Fn: func(ctx context.Context) error {
				if !writer.Healthy() {
					return errors.New("store writes are failing")
				}
				return st.Ping(ctx)
			}},
		},
		Metrics: promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}),
		Log:     log.Named("http"),
	})
	if err != nil {
		return err
	}

	g := newGroup(cancel)
	if engine != nil {
		reloader, err := detect.NewReloader(engine, o.Detect.RulesDir, o.Detect.Inventory, time.Duration(o.Detect.ReloadInterval), reg, log.Named("rules"))
		if err != nil {
			return fmt.Errorf("metrics: %w", err)
		}
		g.Go("rule reloader", func() error { reloader.Run(ctx, rt.Reload); return nil })
	}
	g.Go("kafka consumer", func() error { return consumer.Run(ctx) })
	g.Go("findings to the tracker", func() error { feed.Run(ctx); return nil })
	g.Go("revoked tokens", func() error { admin.Run(ctx, 30*time.Second); return nil })
	g.Go("customer notices", func() error { nt.notifier.Run(ctx, time.Duration(o.Notify.Interval), nil); return nil })
	g.Go("incident alerts and reminders", func() error {
		tr.Run(ctx, alerter, o.reminders(), 30*time.Second)
		return nil
	})
	listening := make(chan string, 1)
	g.Go("http server", func() error { return srv.Run(ctx, func(addr string) { listening <- addr }) })
	g.Go("retention", func() error {
		store.RunRetention(ctx, st, o.Store.RetentionDays, time.Hour, rt.Now, log.Named("retention"))
		return nil
	})
	if o.Debug.PprofAddr != "" {
		g.Go("pprof", func() error { return servePprof(ctx, o.Debug.PprofAddr, log) })
	}
	if o.Demo.Enabled {
		g.Go("demo traffic", func() error { return runDemo(ctx, kopts, o.Demo, o.demoTopics(), log.Named("demo")) })
	}
	select {
	case addr := <-listening:
		info := Info{HTTPAddr: addr, KafkaBrokers: kopts.Brokers, Embedded: embedded, Store: storeDesc, DevTokenFile: devTokenFile, Routes: srv.Routes(),
			Notices: nt.sender, Console: cons != nil, DemoLogins: demoLogins}
		if engine != nil {
			info.Rules, info.RulesVersion = engine.Set().Len(), engine.Set().Version()
		}
		log.Info("breachwatch is running", zap.String("http", addr), zap.Strings("kafka", kopts.Brokers), zap.String("store", storeDesc))
		if rt.Stdout != nil {
			printBanner(rt.Stdout, o, info)
		}
		if rt.Ready != nil {
			rt.Ready(info)
		}
	case <-ctx.Done():
	}
	if err := g.Wait(); err != nil {
		return err
	}
	log.Info("stopped")
	return nil
}

// newEngine loads the rules, builds the engine reporting to the store and
// the log, and warms its windows from the stored tail of the stream.
func newEngine(ctx context.Context, o Options, st appStore, feed *trackerFeed, reg prometheus.Registerer, log *zap.Logger, now func() time.Time) (*detect.Engine, detect.Sink, error) {
	if _, err := os.Stat(o.Detect.RulesDir); errors.Is(err, os.ErrNotExist) {
		return nil, nil, fmt.Errorf("the rules folder %s does not exist: set detect.rules_dir (or set it to \"\" to run without detection)", o.Detect.RulesDir)
	}
	set, err := detect.LoadSet(o.Detect.RulesDir, o.Detect.Inventory)
	if err != nil {
		return nil, nil, fmt.Errorf("rules: %w", err)
	}
	sink := &findingSink{store: st, feed: feed, log: log}
	engine, err := detect.New(set, sink, o.engineOptions(st, now), reg, log)
	if err != nil {
		return nil, nil, err
	}
	latest, err := latestStored(ctx, o, st, now)
	if err != nil {
		return nil, nil, err
	}
	// Warmed even when no event is stored (retention dropped them all):
	// the open exposure windows live with the findings.
	if latest.IsZero() {
		latest = now()
	}
	start := time.Now()
	n, err := engine.Warm(ctx, latest, time.Duration(o.Detect.ExposureHorizon))
	if err != nil {
		return nil, nil, fmt.Errorf("warming the rule windows from the store: %w", err)
	}
	log.Info("rule windows warmed from the store", zap.Int("events", n), zap.Time("up_to", latest), zap.Duration("took", time.Since(start)))
	log.Info("rules loaded", zap.Int("rules", set.Len()), zap.String("version", set.Version()))
	return engine, sink, nil
}

// latestStored is the newest stored event time, but no later than now and
// the skew allowed: an event stored before dates were bounded may lie far
// ahead, and nothing may start from it.
func latestStored(ctx context.Context, o Options, st interface {
	Latest(ctx context.Context) (time.Time, error)
}, now func() time.Time) (time.Time, error) {
	latest, err := st.Latest(ctx)
	if err != nil {
		return time.Time{}, err
	}
	if limit := now().Add(time.Duration(o.Ingest.MaxClockSkew)); latest.After(limit) {
		latest = limit
	}
	return latest, nil
}

// engineOptions are the rules engine's options from the configuration,
// reading the store st.
func (o Options) engineOptions(st detect.Store, now func() time.Time) detect.Options {
	return detect.Options{Lateness: time.Duration(o.Detect.Lateness), Horizon: time.Duration(o.Detect.CorrectionHorizon),
		IdleTimeout: time.Duration(o.Detect.IdleTimeout), MaxGroups: o.Detect.MaxGroups,
		MatchGap: time.Duration(o.Detect.MatchGap), Now: now, Store: st}
}

// findingSink stores findings and hands them to the tracker, retrying
// while the store refuses, and logs them.
type findingSink struct {
	store interface {
		SaveFindings(ctx context.Context, fs []incident.Finding) error
	}
	feed *trackerFeed // nil: findings are only stored and logged
	log  *zap.Logger
}

func (s *findingSink) Findings(ctx context.Context, fs []incident.Finding) error {
	for attempt := 1; ; attempt++ {
		err := s.store.SaveFindings(ctx, fs)
		if err == nil {
			if s.feed != nil {
				s.feed.Add(fs)
			}
			break
		}
		if ctx.Err() != nil {
			return err
		}
		delay := ingest.DefaultBackoff().Delay(attempt)
		s.log.Warn("could not store findings; retrying", zap.Int("findings", len(fs)), zap.Duration("retry_in", delay), zap.Error(err))
		select {
		case <-ctx.Done():
			return err
		case <-time.After(delay):
		}
	}
	return detect.LogSink{Log: s.log}.Findings(ctx, fs)
}

// exposureCloser hands the tracker's close-exposure command to the rules
// engine (built after the tracker; nil while detection is off).
type exposureCloser struct{ engine func() *detect.Engine }

func (c exposureCloser) CloseExposure(ctx context.Context, fingerprint string, by incident.ManualClose) error {
	e := c.engine()
	if e == nil {
		return errors.New("detection is off")
	}
	return e.CloseExposure(ctx, fingerprint, by)
}

// Stored hands the time span of a batch detection evaluated to the
// tracker, off the ingest path (detect.StoredSink).
func (s *findingSink) Stored(_ context.Context, from, to time.Time) {
	if s.feed != nil {
		s.feed.Stored(from, to)
	}
}

// newTracker builds the incident tracker from its configuration,
// rebuilding the incidents from the store's audit log.
func newTracker(ctx context.Context, o Options, st interface {
	tracker.Store
	tracker.AccessSource
}, inventory func() *incident.Inventory, exposures tracker.ExposureCloser, anchor func(tracker.Anchor), reg prometheus.Registerer, now func() time.Time, log *zap.Logger) (*tracker.Tracker, error) {
	regimes, err := tracker.DefaultRegimes()
	if o.Tracker.RegimeTable != "" {
		var data []byte
		if data, err = os.ReadFile(o.Tracker.RegimeTable); err == nil {
			regimes, err = tracker.ParseRegimes(o.Tracker.RegimeTable, data)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("tracker.regime_table: %w", err)
	}
	customers, err := tracker.LoadCustomers(o.Tracker.Customers)
	if err != nil {
		return nil, fmt.Errorf("tracker.customers: %w", err)
	}
	zone, err := time.LoadLocation(o.Tracker.TimeZone)
	if err != nil {
		return nil, fmt.Errorf("tracker.time_zone: %w", err)
	}
	start := time.Now()
	tr, err := tracker.New(ctx, st, tracker.Options{Regimes: regimes, Apply: o.Tracker.Regimes, ByCountry: o.Tracker.RegimesByCountry,
		Customers: customers, ProcessorTarget: time.Duration(o.Tracker.ProcessorTarget), ExposureGap: time.Duration(o.Tracker.ExposureGap), Zone: zone,
		ConsoleURL: strings.TrimSuffix(o.Tracker.ConsoleURL, "/"), Access: st, Inventory: inventory,
		PrivilegedGroups: o.Tracker.PrivilegedGroups, SelfApproval: o.Notify.SelfApproval, Exposures: exposures,
		Anchor: anchor, Registerer: reg, Now: now, Log: log})
	if err != nil {
		return nil, err
	}
	if anchor != nil {
		anchor(tr.Head()) // the head the chain was read back to
	}
	log.Info("incidents rebuilt from the audit log", zap.Int("incidents", len(tr.List(""))), zap.String("regimes_version", regimes.Version),
		zap.Duration("took", time.Since(start)))
	return tr, nil
}

// reminders is when reminders go out.
func (o Options) reminders() tracker.Reminders {
	r := tracker.Reminders{OverdueEvery: time.Duration(o.Tracker.RemindOverdueEvery)}
	for _, d := range o.Tracker.RemindBefore {
		r.Before = append(r.Before, time.Duration(d))
	}
	return r
}

// newAlerter alerts in Slack when it is configured (with its interactivity
// webhook), in the log otherwise.
func newAlerter(o Options, tr *tracker.Tracker, log *zap.Logger) (tracker.Alerter, []web.Webhook, error) {
	if o.Slack.Channel == "" {
		log.Info("slack is not configured (slack.channel): incident alerts and reminders go to the log")
		return tracker.LogAlerter{Log: log}, nil, nil
	}
	users := map[string]slacknotify.User{}
	for _, u := range o.Slack.Users {
		users[u.ID] = slacknotify.User{Name: u.Name, Role: u.Role}
	}
	n, err := slacknotify.New(slacknotify.Options{Token: o.Slack.BotToken, Channel: o.Slack.Channel, SigningSecret: o.Slack.SigningSecret,
		APIURL: o.Slack.APIURL, ConsoleURL: strings.TrimSuffix(o.Tracker.ConsoleURL, "/"), Users: users, Log: log})
	if err != nil {
		return nil, nil, err
	}
	return n, []web.Webhook{{Method: "POST", Path: "/hooks/slack/interactions", Handler: n.Interactions(slackTriage{tr})}}, nil
}

// slackTriage carries out Slack button clicks on the tracker.
type slackTriage struct{ tr *tracker.Tracker }

func (s slackTriage) Triage(ctx context.Context, actor, role, id, command, reason string) (string, bool) {
	return s.do(ctx, tracker.Actor{Name: actor, Role: role}, tracker.Command{Incident: id, Name: command, Reason: reason})
}

func (s slackTriage) Approve(ctx context.Context, actor, role, id string, version int, hash string) (string, bool) {
	return s.do(ctx, tracker.Actor{Name: actor, Role: role}, tracker.Command{Incident: id, Name: tracker.CmdApprove, Version: version, Hash: hash})
}

func (s slackTriage) do(ctx context.Context, by tracker.Actor, c tracker.Command) (string, bool) {
	return doCommand(ctx, s.tr, by, c)
}

// doCommand carries out a command for a person (Slack, the console) and
// says what happened in words safe to show them.
func doCommand(ctx context.Context, tr *tracker.Tracker, by tracker.Actor, c tracker.Command) (string, bool) {
	_, err := tr.Do(ctx, by, c)
	var ie *tracker.InvalidError
	switch {
	case err == nil:
		return "done", true
	case errors.Is(err, tracker.ErrNotFound):
		return "There is no such incident.", false
	case errors.Is(err, tracker.ErrForbidden):
		return "Your role (" + by.Role + ") may not " + c.Name + " incidents.", false
	case errors.As(err, &ie):
		return ie.Msg, false
	}
	return "The change could not be recorded; try again.", false
}

// incidentRoutes are the incident API's routes: engineers and the DPO
// read and triage; what each role may change is the tracker's decision.
func incidentRoutes(tr *tracker.Tracker) []web.Route {
	api := tracker.NewAPI(tr, func(r *http.Request) (tracker.Actor, bool) {
		p, ok := web.PrincipalOf(r)
		return tracker.Actor{Name: "token:" + p.Name, Role: string(p.Role)}, ok
	})
	staff := []web.Role{web.RoleEngineer, web.RoleDPO}
	return []web.Route{
		{Method: "GET", Path: "/api/v1/incidents", Roles: staff, Handler: api.List()},
		{Method: "GET", Path: "/api/v1/incidents/{id}", Roles: staff, Handler: api.Get()},
		{Method: "GET", Path: "/api/v1/incidents/{id}/audit", Roles: staff, Handler: api.Audit()},
		{Method: "GET", Path: "/api/v1/incidents/{id}/report", Roles: staff, Handler: api.ReportJSON()},
		{Method: "GET", Path: "/api/v1/incidents/{id}/report.html", Roles: staff, Handler: api.ReportPage()},
		{Method: "GET", Path: "/api/v1/register", Roles: staff, Handler: api.RegisterJSON()},
		{Method: "POST", Path: "/api/v1/incidents/{id}/{command}", Roles: staff, Handler: api.Command()},
	}
}

// openStore opens ClickHouse when an address is configured (waiting for it
// to come up), the embedded store otherwise.
func openStore(ctx context.Context, o Options, log *zap.Logger) (appStore, string, error) {
	if len(o.ClickHouse.Addr) == 0 {
		s, err := sqlite.Open(ctx, o.DataDir)
		if err != nil {
			return nil, "", err
		}
		return s, "sqlite " + filepath.Join(o.DataDir, sqlite.FileName), nil
	}
	tlsConf, err := o.ClickHouse.TLS.config()
	if err != nil {
		return nil, "", fmt.Errorf("clickhouse.tls: %w", err)
	}
	opts := clickhouse.Options{Addr: o.ClickHouse.Addr, Database: o.ClickHouse.Database, Username: o.ClickHouse.Username,
		Password: o.ClickHouse.Password, TLS: tlsConf, DialTimeout: time.Duration(o.ClickHouse.DialTimeout),
		Compression: o.ClickHouse.Compression}
	for attempt := 1; ; attempt++ {
		s, err := clickhouse.Open(ctx, opts)
		if err == nil {
			return s, fmt.Sprintf("clickhouse %v database %s", o.ClickHouse.Addr, o.ClickHouse.Database), nil
		}
		delay := ingest.DefaultBackoff().Delay(attempt)
		log.Warn("cannot open the ClickHouse store yet; retrying", zap.Int("attempt", attempt), zap.Duration("retry_in", delay), zap.Error(err))
		select {
		case <-ctx.Done():
			return nil, "", err
		case <-time.After(delay):
		}
	}
}

func (o Options) kafkaClient() (ingest.KafkaOptions, error) {
	tlsConf, err := o.Kafka.TLS.config()
	if err != nil {
		return ingest.KafkaOptions{}, fmt.Errorf("kafka.tls: %w", err)
	}
	return ingest.KafkaOptions{Brokers: o.Kafka.Brokers, ClientID: o.Kafka.ClientID, TLS: tlsConf,
		SASLMechanism: o.Kafka.SASL.Mechanism, SASLUser: o.Kafka.SASL.Username, SASLPassword: o.Kafka.SASL.Password}, nil
}

func (t TLSOptions) config() (*tls.Config, error) {
	if !t.Enabled {
		return nil, nil
	}
	c := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: t.ServerName}
	if t.CAFile != "" {
		pem, err := os.ReadFile(t.CAFile)
		if err != nil {
			return nil, err
		}
		c.RootCAs = x509.NewCertPool()
		if !c.RootCAs.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("ca_file %s holds no PEM certificate", t.CAFile)
		}
	}
	if t.CertFile != "" || t.KeyFile != "" {
		cert, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile)
		if err != nil {
			return nil, err
		}
		c.Certificates = []tls.Certificate{cert}
	}
	return c, nil
}

// devToken reads, or creates, the development admin token in dataDir.
func devToken(dataDir string) (web.Token, string, error) {
	path := filepath.Join(dataDir, "dev-token")
	secret, err := readSecretFile(path)
	if errors.Is(err, os.ErrNotExist) {
		var b [32]byte
		if _, err := rand.Read(b[:]); err != nil {
			return web.Token{}, "", err
		}
		secret = "bw_dev_" + base64.RawURLEncoding.EncodeToString(b[:])
		if err := os.WriteFile(path, []byte(secret+"\n"), 0o600); err != nil {
			return web.Token{}, "", fmt.Errorf("dev token: %w", err)
		}
	} else if err != nil {
		return web.Token{}, "", fmt.Errorf("dev token: %w", err)
	}
	return web.Token{Name: "dev", Role: web.RoleAdmin, Hash: web.HashToken(secret)}, path, nil
}

// NewLogger builds the logger: JSON for machines, or a readable console
// format on a terminal.
func NewLogger(o LogOptions) (*zap.Logger, error) {
	level, err := zapcore.ParseLevel(o.Level)
	if err != nil {
		return nil, fmt.Errorf("log.level: %w", err)
	}
	format := o.Format
	if format == "auto" {
		format = "json"
		if fi, err := os.Stderr.Stat(); err == nil && fi.Mode()&os.ModeCharDevice != 0 {
			format = "console"
		}
	}
	var cfg zap.Config
	if format == "console" {
		cfg = zap.NewDevelopmentConfig()
		cfg.Development = false
		cfg.DisableStacktrace = true
		cfg.EncoderConfig.EncodeLevel = zapcore.CapitalColorLevelEncoder
		// The date too: the encoder also writes time fields (the oldest
		// event beyond the horizon, a backfill's range), which may be days
		// old.
		cfg.EncoderConfig.EncodeTime = zapcore.TimeEncoderOfLayout("2006-01-02 15:04:05.000Z07:00")
	} else {
		cfg = zap.NewProductionConfig()
		cfg.EncoderConfig.TimeKey = "time"
		cfg.EncoderConfig.EncodeTime = zapcore.RFC3339NanoTimeEncoder
	}
	cfg.Level = zap.NewAtomicLevelAt(level)
	return cfg.Build()
}

// servePprof serves the runtime profiles on addr until ctx ends.
func servePprof(ctx context.Context, addr string, log *zap.Logger) error {
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	srv := &http.Server{Addr: addr, Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	log.Warn("pprof is on, without authentication", zap.String("addr", addr))
	go func() {
		<-ctx.Done()
		_ = srv.Close()
	}()
	if err := srv.ListenAndServe(); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// group runs parts concurrently; the first that fails stops the others.
type group struct {
	wg     sync.WaitGroup
	once   sync.Once
	err    error
	cancel context.CancelFunc
}

func newGroup(cancel context.CancelFunc) *group { return &group{cancel: cancel} }

func (g *group) Go(name string, fn func() error) {
	g.wg.Add(1)
	go func() {
		defer g.wg.Done()
		if err := fn(); err != nil {
			g.once.Do(func() {
				g.err = fmt.Errorf("%s: %w", name, err)
				g.cancel()
			})
		}
	}()
}

func (g *group) Wait() error {
	g.wg.Wait()
	return g.err
}

// isTerminal reports whether w is a terminal (not a file or a pipe that a
// log collector may keep).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

func printBanner(w io.Writer, o Options, i Info) {
	fmt.Fprintf(w, "\nbreachwatch is running.\n\n")
	if i.Console {
		fmt.Fprintf(w, "  console       http://%s/\n", i.HTTPAddr)
		switch {
		case len(i.DemoLogins) > 0 && isTerminal(w):
			for _, l := range i.DemoLogins {
				fmt.Fprintf(w, "                  %s   (development only)\n", l)
			}
		case len(i.DemoLogins) > 0:
			// Not a terminal: the output is likely kept in a log. The
			// passwords stay in their file.
			fmt.Fprintf(w, "                  development logins: %s\n", filepath.Join(o.DataDir, "dev-logins"))
		}
	}
	fmt.Fprintf(w, "  HTTP API      http://%s   (health: /healthz  readiness: /readyz  metrics: /metrics)\n", i.HTTPAddr)
	broker := "Kafka brokers"
	if i.Embedded {
		broker = "embedded Kafka"
	}
	fmt.Fprintf(w, "  %-13s %v   topics %s, %s (bad records go to <topic>%s)\n", broker, i.KafkaBrokers,
		o.Kafka.Topics.Access, o.Kafka.Topics.Config, o.Kafka.DLQSuffix)
	fmt.Fprintf(w, "  store         %s\n", i.Store)
	if i.Notices != "" {
		fmt.Fprintf(w, "  notices       e-mail to the %s\n", i.Notices)
	}
	if i.Rules > 0 {
		fmt.Fprintf(w, "  rules         %d from %s (version %s); findings are logged and stored\n", i.Rules, o.Detect.RulesDir, i.RulesVersion)
	}
	if o.Demo.Enabled {
		breach := ""
		if o.Demo.Breach {
			breach = ", with injected breaches (the first findings appear within a minute)"
		}
		fmt.Fprintf(w, "  demo traffic  %.0f events/s from %d tenants%s\n", o.Demo.Rate, o.Demo.Tenants, breach)
	}
	if i.DevTokenFile != "" {
		fmt.Fprintf(w, "  admin token   in %s (development only)\n", i.DevTokenFile)
		fmt.Fprintf(w, "\nTry:\n  curl -s http://%s/metrics | grep breachwatch_ingest\n", i.HTTPAddr)
		fmt.Fprintf(w, "  echo '{\"id\":\"try-1\",\"time\":\"%s\",\"tenant\":\"cust-0001\",\"actor\":{\"id\":\"u-1\",\"type\":\"customer_user\",\"tenant\":\"cust-0001\"},\"action\":\"read\",\"resource\":{\"type\":\"booking\",\"store\":\"postgres-eu-1\"},\"outcome\":\"success\"}' \\\n",
			time.Now().UTC().Format(time.RFC3339))
		fmt.Fprintf(w, "    | curl -s -H \"Authorization: Bearer $(cat %s)\" --data-binary @- http://%s/api/v1/events/access\n", i.DevTokenFile, i.HTTPAddr)
		if i.Embedded {
			fmt.Fprintf(w, "  kcat -C -b %s -t %s -e -o -5     # the newest access events\n", i.KafkaBrokers[0], o.Kafka.Topics.Access)
		}
		url := ""
		if i.HTTPAddr != "127.0.0.1:8080" {
			url = " --url http://" + i.HTTPAddr
		}
		fmt.Fprintf(w, "  go run ./cmd/breachwatch incidents list%s --token-file %s   # incidents and their clocks\n", url, i.DevTokenFile)
		fmt.Fprintf(w, "  curl -s -H \"Authorization: Bearer $(cat %s)\" http://%s/api/v1/incidents\n", i.DevTokenFile, i.HTTPAddr)
	}
	fmt.Fprintf(w, "\nStop with Ctrl-C.\n\n")
}

// consoleHandler is the console's handler, nil when it is off.
func consoleHandler(c *console.Console) http.Handler {
	if c == nil {
		return nil
	}
	return c.Handler()
}
