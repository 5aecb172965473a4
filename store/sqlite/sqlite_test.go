package sqlite_test

import (
	"context"
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

func TestReopen(t *testing.T) {
	dir := t.TempDir()
	storetest.RunReopen(t, func(t *testing.T) interface {
		storetest.Store
		Close() error
	} {
		s, err := sqlite.Open(context.Background(), dir)
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}
