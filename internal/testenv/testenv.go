package testenv

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
)

// EnvClickHouse names the variable that points tests at a running ClickHouse
// server (host:port of the native protocol). make test sets it.
const EnvClickHouse = "BWTEST_CLICKHOUSE"

// unavailable skips the test, or fails it in CI, where the test command
// provides every part and nothing may skip.
func unavailable(t testing.TB, why string) {
	t.Helper()
	if isCI() {
		t.Fatalf("%s; in CI this is an error: run the tests with `make test`", why)
	}
	t.Skipf("%s; `make test` provides it", why)
}

// ClickHouse returns the native address of a ClickHouse server: the one
// named by BWTEST_CLICKHOUSE, or else a throwaway server started
// for this test. Without either it skips the test (fails it in CI).
func ClickHouse(t testing.TB) string {
	t.Helper()
	if addr := os.Getenv(EnvClickHouse); addr != "" {
		return addr
	}
	if _, _, err := ClickHouseBinary(); err != nil {
		unavailable(t, err.Error())
	}
	return StartClickHouse(t).Addr()
}

// StartClickHouse starts a server of the test's own, stopped at cleanup.
func StartClickHouse(t testing.TB) *ClickHouseServer {
	t.Helper()
	if _, _, err := ClickHouseBinary(); err != nil {
		unavailable(t, err.Error())
	}
	s, err := NewClickHouseServer(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := s.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Stop() })
	return s
}

var unsafeName = regexp.MustCompile(`[^a-z0-9_]+`)

// Database returns the name of a fresh database for this test on the server
// at addr, dropped when the test ends.
func Database(t testing.TB, addr string) string {
	t.Helper()
	var b [4]byte
	_, _ = rand.Read(b[:])
	name := unsafeName.ReplaceAllString(strings.ToLower(t.Name()), "_")
	if len(name) > 40 {
		name = name[:40]
	}
	name = "bwtest_" + name + "_" + hex.EncodeToString(b[:])
	t.Cleanup(func() {
		conn, err := clickhouse.Open(&clickhouse.Options{Addr: []string{addr}})
		if err != nil {
			return
		}
		defer conn.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_ = conn.Exec(ctx, "DROP DATABASE IF EXISTS "+name)
	})
	return name
}

// Kcat returns the path of kcat (Debian's kcat, once called kafkacat), an
// independent Kafka client written in C on librdkafka.
func Kcat(t testing.TB) string {
	t.Helper()
	for _, name := range []string{"kcat", "kafkacat"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	unavailable(t, "kcat is not installed (Debian package kcat)")
	return ""
}

// Chromium returns the path of a headless-capable Chromium (Debian's
// chromium), skipping the test without one (failing it in CI).
func Chromium(t testing.TB) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	unavailable(t, "no Chromium on PATH (Debian package chromium)")
	return ""
}

// EnvArtifacts names the folder where tests save artifacts such as
// screenshots; make test sets it to ./test-artifacts.
const EnvArtifacts = "BWTEST_ARTIFACTS"

// Artifacts returns the folder for the test's artifacts (created): under
// BWTEST_ARTIFACTS when set, else a temporary folder.
func Artifacts(t testing.TB) string {
	t.Helper()
	base := os.Getenv(EnvArtifacts)
	if base == "" {
		return t.TempDir()
	}
	dir := base + "/" + regexp.MustCompile(`[^A-Za-z0-9_.-]+`).ReplaceAllString(t.Name(), "_")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}
