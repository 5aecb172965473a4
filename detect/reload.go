package detect

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/breachwatch/breachwatch/detect/rule"
)

// LoadSet loads the inventory and the rules of dir.
func LoadSet(dir, inventory string) (*rule.Set, error) {
	inv, err := rule.LoadInventory(inventory)
	if err != nil {
		return nil, err
	}
	return rule.Load(dir, inv)
}

// Reloader reloads the rule set when the rules folder or the inventory
// changes, or when asked (SIGHUP). A set that does not load is rejected:
// the engine keeps the set it runs, and the error is logged and shown by
// breachwatch_detect_rules_valid.
type Reloader struct {
	Engine    *Engine
	Dir       string
	Inventory string
	Interval  time.Duration // how often the files are checked (0: only when asked)
	Log       *zap.Logger

	valid    prometheus.Gauge
	failures prometheus.Counter
	reloads  prometheus.Counter
}

// NewReloader registers the reload metrics.
func NewReloader(e *Engine, dir, inventory string, interval time.Duration, reg prometheus.Registerer, log *zap.Logger) (*Reloader, error) {
	r := &Reloader{Engine: e, Dir: dir, Inventory: inventory, Interval: interval, Log: log,
		valid: prometheus.NewGauge(prometheus.GaugeOpts{Name: "breachwatch_detect_rules_valid",
			Help: "1 when the rule files on disk are the running set or a valid one; 0 when the last reload was rejected."}),
		failures: prometheus.NewCounter(prometheus.CounterOpts{Name: "breachwatch_detect_reload_failures_total",
			Help: "Rule reloads rejected because the files did not load."}),
		reloads: prometheus.NewCounter(prometheus.CounterOpts{Name: "breachwatch_detect_reloads_total",
			Help: "Rule sets swapped in by a reload."}),
	}
	r.valid.Set(1)
	err := errors.Join(reg.Register(r.valid), reg.Register(r.failures), reg.Register(r.reloads))
	return r, err
}

// Run reloads on a change of the files (checked every Interval) and on
// every signal from ask, until ctx ends.
func (r *Reloader) Run(ctx context.Context, ask <-chan os.Signal) {
	last, _ := r.stamp()
	var tick <-chan time.Time
	if r.Interval > 0 {
		t := time.NewTicker(r.Interval)
		defer t.Stop()
		tick = t.C
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-ask:
			r.Reload("signal")
			last, _ = r.stamp()
		case <-tick:
			s, err := r.stamp()
			if err != nil || s == last {
				continue
			}
			last = s
			r.Reload("files changed")
		}
	}
}

// Reload loads the files and swaps the set in if it is valid; it reports
// whether it did.
func (r *Reloader) Reload(why string) bool {
	set, err := LoadSet(r.Dir, r.Inventory)
	if err != nil {
		r.valid.Set(0)
		r.failures.Inc()
		r.Log.Error("rule reload rejected; the running rules stay in force", zap.String("why", why), zap.Error(err))
		return false
	}
	r.valid.Set(1)
	old := r.Engine.Set()
	if old != nil && old.Version() == set.Version() {
		return false
	}
	r.Engine.Swap(set)
	r.reloads.Inc()
	r.Log.Info("rules reloaded", zap.String("why", why), zap.Int("rules", set.Len()), zap.String("version", set.Version()))
	return true
}

// stamp summarises the rule files and the inventory (names, sizes, times).
func (r *Reloader) stamp() (string, error) {
	h := sha256.New()
	files, err := rule.Files(r.Dir)
	if err != nil {
		return "", err
	}
	for _, fi := range files {
		fmt.Fprintf(h, "%s %d %d\n", fi.Name(), fi.Size(), fi.ModTime().UnixNano())
	}
	if r.Inventory != "" {
		if fi, err := os.Stat(r.Inventory); err == nil {
			fmt.Fprintf(h, "%s %d %d\n", filepath.Base(r.Inventory), fi.Size(), fi.ModTime().UnixNano())
		}
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}
