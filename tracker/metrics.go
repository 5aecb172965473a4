package tracker

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/breachwatch/breachwatch/incident"
)

// metrics are the tracker's Prometheus metrics.
type metrics struct {
	reminders   prometheus.Counter
	alertErrors prometheus.Counter
}

// register registers the tracker's metrics with reg: incidents by status
// and obligations overdue (computed at each scrape), reminders sent and
// alerting failures.
func (t *Tracker) register(reg prometheus.Registerer) error {
	t.m = metrics{
		reminders: prometheus.NewCounter(prometheus.CounterOpts{Name: "breachwatch_tracker_reminders_total",
			Help: "Reminders sent before or after a deadline."}),
		alertErrors: prometheus.NewCounter(prometheus.CounterOpts{Name: "breachwatch_tracker_alert_errors_total",
			Help: "Alerts, updates or reminders that could not be sent (retried at the next tick)."}),
	}
	if reg == nil {
		return nil
	}
	byStatus := prometheus.NewDesc("breachwatch_incidents", "Incidents by status.", []string{"status"}, nil)
	overdue := prometheus.NewDesc("breachwatch_obligations_overdue",
		"Unmet obligations of active incidents whose due time has passed (legal deadlines and internal targets).", []string{"legal"}, nil)
	for _, c := range []prometheus.Collector{t.m.reminders, t.m.alertErrors, collectorFunc{descs: []*prometheus.Desc{byStatus, overdue},
		collect: func(ch chan<- prometheus.Metric) {
			counts := map[incident.Status]int{}
			late := map[bool]int{}
			now := t.opts.Now()
			t.rmu.RLock()
			for _, inc := range t.view {
				counts[inc.Status]++
				if !inc.Status.Active() {
					continue
				}
				for _, o := range inc.Obligations {
					if !o.Settled() && !o.DueAt.IsZero() && now.After(o.DueAt) {
						late[o.Legal]++
					}
				}
			}
			t.rmu.RUnlock()
			for _, s := range []incident.Status{incident.StatusOpen, incident.StatusConfirmed, incident.StatusDismissed,
				incident.StatusNotifying, incident.StatusNotified, incident.StatusClosed} {
				ch <- prometheus.MustNewConstMetric(byStatus, prometheus.GaugeValue, float64(counts[s]), string(s))
			}
			for _, legal := range []bool{true, false} {
				l := "false"
				if legal {
					l = "true"
				}
				ch <- prometheus.MustNewConstMetric(overdue, prometheus.GaugeValue, float64(late[legal]), l)
			}
		}}} {
		if err := reg.Register(c); err != nil {
			return err
		}
	}
	return nil
}

// collectorFunc is a collector computed at each scrape.
type collectorFunc struct {
	descs   []*prometheus.Desc
	collect func(chan<- prometheus.Metric)
}

func (c collectorFunc) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range c.descs {
		ch <- d
	}
}

func (c collectorFunc) Collect(ch chan<- prometheus.Metric) { c.collect(ch) }
