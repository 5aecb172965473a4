package clickhouse_test

import (
	"context"
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

// TestReopen also runs the migrations a second time on an existing schema.
func TestReopen(t *testing.T) {
	addr := testenv.ClickHouse(t)
	opts := clickhouse.Options{Addr: []string{addr}, Database: testenv.Database(t, addr)}
	storetest.RunReopen(t, func(t *testing.T) interface {
		storetest.Store
		Close() error
	} {
		s, err := clickhouse.Open(context.Background(), opts)
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}

func TestOptionsErrors(t *testing.T) {
	for _, o := range []clickhouse.Options{
		{},
		{Addr: []string{"127.0.0.1:1"}, Database: "bad-name; DROP"},
		{Addr: []string{"127.0.0.1:1"}, Compression: "gzip"},
	} {
		if _, err := clickhouse.Open(context.Background(), o); err == nil {
			t.Errorf("Open(%+v) succeeded", o)
		}
	}
}
