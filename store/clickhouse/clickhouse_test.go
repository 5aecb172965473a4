package clickhouse_test

import (
	"context"
	"github.com/breachwatch/breachwatch/event"
	"testing"

	"github.com/breachwatch/breachwatch/internal/testenv"
	"github.com/breachwatch/breachwatch/store/clickhouse"
	"github.com/breachwatch/breachwatch/store/storetest"
)

func TestContract(t *testing.T) {
	addr := testenv.ClickHouse(t)
	storetest.Run(t, func(t *testing.T) storetest.Store {
		s, err := clickhouse.Open(context.Background(), clickhouse.Options{Addr: []string{addr}, Database: testenv.Database(t, addr)})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	})
}

func TestMigrateTwiceAndReopen(t *testing.T) {
	ctx := context.Background()
	addr := testenv.ClickHouse(t)
	opts := clickhouse.Options{Addr: []string{addr}, Database: testenv.Database(t, addr)}
	s, err := clickhouse.Open(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	b := event.Batch{Access: storetest.Access("k", storetest.Day0, 10)}
	if err := s.Write(ctx, &b); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s, err = clickhouse.Open(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if a, _, err := s.Count(ctx); err != nil || a != 10 {
		t.Fatalf("after reopen Count = %d, %v; want 10", a, err)
	}
}
