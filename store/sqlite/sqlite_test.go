package sqlite_test

import (
	"context"
	"github.com/breachwatch/breachwatch/event"
	"testing"

	"github.com/breachwatch/breachwatch/store/sqlite"
	"github.com/breachwatch/breachwatch/store/storetest"
)

func TestContract(t *testing.T) {
	storetest.Run(t, func(t *testing.T) storetest.Store {
		s, err := sqlite.Open(context.Background(), t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	})
}

func TestReopenKeepsDataAndSchema(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s, err := sqlite.Open(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	b := event.Batch{Access: storetest.Access("k", storetest.Day0, 10)}
	if err := s.Write(ctx, &b); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s, err = sqlite.Open(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if a, _, err := s.Count(ctx); err != nil || a != 10 {
		t.Fatalf("after reopen Count = %d, %v; want 10", a, err)
	}
}
