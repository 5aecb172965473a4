// Package store holds what breachwatch's two stores share. The stores
// themselves are store/clickhouse (for production volumes) and store/sqlite
// (embedded, the default); both pass the contract suite in store/storetest.
package store

import (
	"context"
	"time"

	"go.uber.org/zap"
)

// CutoffDay is the first UTC day that retention keeps: events on days more
// than days days before today (UTC) are dropped. days ≤ 0 keeps everything
// and returns the zero time.
func CutoffDay(now time.Time, days int) time.Time {
	if days <= 0 {
		return time.Time{}
	}
	y, m, d := now.UTC().Date()
	return time.Date(y, m, d-days, 0, 0, 0, 0, time.UTC)
}

// Dropper removes whole days of events.
type Dropper interface {
	// DropBefore removes every event dated before day (a UTC midnight) and
	// returns how many days (partitions) it dropped.
	DropBefore(ctx context.Context, day time.Time) (int, error)
}

// RunRetention applies the retention of days days now and then every
// interval until ctx ends. Failures are logged and retried at the next tick.
func RunRetention(ctx context.Context, d Dropper, days int, interval time.Duration, now func() time.Time, log *zap.Logger) {
	if days <= 0 {
		return
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		cutoff := CutoffDay(now(), days)
		n, err := d.DropBefore(ctx, cutoff)
		switch {
		case err != nil && ctx.Err() == nil:
			log.Warn("retention failed; will retry", zap.Time("cutoff", cutoff), zap.Error(err))
		case n > 0:
			log.Info("retention dropped old days", zap.Int("days", n), zap.Time("cutoff", cutoff))
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
