package clickhouse

import (
	"context"
	"testing"

	"github.com/breachwatch/breachwatch/event"
	"github.com/breachwatch/breachwatch/internal/testenv"
	"github.com/breachwatch/breachwatch/store/storetest"
)

// TestMigrationRunsAgainWhole: a migration cut short after its statements
// but before its version was recorded runs again whole at the next start.
// The v4 fill of the per-day store summary must not count the events
// already stored twice then.
func TestMigrationRunsAgainWhole(t *testing.T) {
	ctx := context.Background()
	addr := testenv.ClickHouse(t)
	s, err := Open(ctx, Options{Addr: []string{addr}, Database: testenv.Database(t, addr)})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Write(ctx, &event.Batch{Access: storetest.Access("m", storetest.Day0, 40)}); err != nil {
		t.Fatal(err)
	}
	sums := func() (events, records uint64) {
		t.Helper()
		if err := s.conn.QueryRow(ctx, "SELECT sum(events), sum(records) FROM "+s.table("store_tenants")).Scan(&events, &records); err != nil {
			t.Fatal(err)
		}
		return events, records
	}
	e0, r0 := sums()
	if e0 != 40 || r0 != 40 {
		t.Fatalf("summary before: %d events, %d records; want 40, 40", e0, r0)
	}
	for _, stmt := range migrations[3] { // v4, as a restart after a cut would run it
		if err := s.conn.Exec(ctx, replaceDB(stmt, s.table)); err != nil {
			t.Fatal(err)
		}
	}
	if e, r := sums(); e != e0 || r != r0 {
		t.Errorf("v4 run again: %d events, %d records in the summary; want %d, %d", e, r, e0, r0)
	}
}
