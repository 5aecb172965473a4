package app

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/breachwatch/breachwatch/internal/testenv"
)

// Tokens the test configurations accept.
const (
	ingestToken   = "ingest-token-for-tests-0123456789"
	engineerToken = "engineer-token-for-tests-0123456789"
)

func sha(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:])
}

// testOptions is a configuration for an in-process run: embedded broker
// and HTTP on free ports, the embedded store in a temporary directory.
func testOptions(t testing.TB) Options {
	t.Helper()
	o := Defaults()
	o.DataDir = t.TempDir()
	o.HTTP.Addr = "127.0.0.1:0"
	o.Kafka.Embedded.Addr = "127.0.0.1:0"
	o.Kafka.BatchMaxWait = Duration(50 * time.Millisecond)
	o.Detect.RulesDir, o.Detect.Inventory = "../rules", "../rules/testdata/inventory.yaml"
	o.Auth.Tokens = []TokenOptions{
		{Name: "shipper", Role: "ingest", TokenSHA256: sha(ingestToken)},
		{Name: "on-call", Role: "engineer", TokenSHA256: sha(engineerToken)},
	}
	return o
}

// start runs breachwatch in-process until the test ends.
func start(t testing.TB, o Options) Info {
	t.Helper()
	if err := o.Validate(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	infoc, errc := make(chan Info, 1), make(chan error, 1)
	go func() {
		errc <- Run(ctx, o, Runtime{
			Logger: zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel)),
			Ready:  func(i Info) { infoc <- i },
		})
	}()
	ended := false // Run's result was taken during start-up
	t.Cleanup(func() {
		cancel()
		if ended {
			return
		}
		if err := <-errc; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	select {
	case i := <-infoc:
		return i
	case err := <-errc:
		ended = true
		t.Fatalf("Run ended during start-up: %v", err)
	case <-time.After(2 * time.Minute):
		t.Fatal("breachwatch did not start")
	}
	return Info{}
}

// waitFor polls cond until it holds or the time is up.
func waitFor(t testing.TB, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// chConn opens a connection of the test's own to ClickHouse, to look at
// what breachwatch stored.
func chConn(t testing.TB, addr string) driver.Conn {
	t.Helper()
	conn, err := clickhouse.Open(&clickhouse.Options{Addr: []string{addr}, DialTimeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// chCounts returns, for a table: distinct ids, rows after de-duplication
// (FINAL) and raw rows. The table may not exist yet: then all are 0.
func chCounts(t testing.TB, conn driver.Conn, db, table string) (distinct, final, raw uint64) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	q := fmt.Sprintf("SELECT uniqExact(id), (SELECT count() FROM `%[1]s`.`%[2]s` FINAL), count() FROM `%[1]s`.`%[2]s`", db, table)
	if err := conn.QueryRow(ctx, q).Scan(&distinct, &final, &raw); err != nil {
		return 0, 0, 0
	}
	return distinct, final, raw
}

// chDistinct returns how many distinct event ids a table holds.
func chDistinct(t testing.TB, conn driver.Conn, db, table string) uint64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var n uint64
	if err := conn.QueryRow(ctx, fmt.Sprintf("SELECT uniqExact(id) FROM `%s`.`%s`", db, table)).Scan(&n); err != nil {
		return 0
	}
	return n
}

// chRows returns the raw row count of a table: cheap enough to poll (it
// may count a redelivered event twice until merges; verify with chCounts).
func chRows(t testing.TB, conn driver.Conn, db, table string) uint64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var n uint64
	if err := conn.QueryRow(ctx, fmt.Sprintf("SELECT count() FROM `%s`.`%s`", db, table)).Scan(&n); err != nil {
		return 0
	}
	return n
}

// metric returns the value of one sample on /metrics (0 when absent).
func metric(t testing.TB, httpAddr, sample string) float64 {
	t.Helper()
	resp, err := http.Get("http://" + httpAddr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), sample+" "); ok {
			v, _ := strconv.ParseFloat(strings.TrimSpace(rest), 64)
			return v
		}
	}
	return 0
}

// The breachwatch binary, built once per test run for the tests that run
// it as a separate process (to kill it, or to measure its memory alone).
var (
	binOnce sync.Once
	binPath string
	binErr  error
	binDir  string
)

func TestMain(m *testing.M) {
	code := m.Run()
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	os.Exit(code)
}

func bwBinary(t testing.TB) string {
	t.Helper()
	binOnce.Do(func() {
		binDir, binErr = os.MkdirTemp("", "breachwatch-bin-")
		if binErr != nil {
			return
		}
		binPath = filepath.Join(binDir, "breachwatch")
		out, err := exec.Command("go", "build", "-o", binPath, "github.com/breachwatch/breachwatch/cmd/breachwatch").CombinedOutput()
		if err != nil {
			binErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if binErr != nil {
		t.Fatal(binErr)
	}
	return binPath
}

// proc is breachwatch running as a separate process.
type proc struct {
	cmd      *exec.Cmd
	httpAddr string
	out      *syncBuffer
	done     chan struct{}
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// startProc starts `breachwatch serve` with env (BREACHWATCH_* settings) and
// waits until it is ready.
func startProc(t testing.TB, env ...string) *proc {
	t.Helper()
	port, err := testenv.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	p := &proc{httpAddr: "127.0.0.1:" + strconv.Itoa(port), out: &syncBuffer{}, done: make(chan struct{})}
	p.cmd = exec.Command(bwBinary(t), "serve")
	p.cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME"), "GOGC=" + os.Getenv("GOGC"),
		"BREACHWATCH_HTTP_ADDR=" + p.httpAddr, "BREACHWATCH_LOG_FORMAT=json", "BREACHWATCH_LOG_LEVEL=warn",
		"BREACHWATCH_DETECT_RULES_DIR=../rules", "BREACHWATCH_DETECT_INVENTORY=../rules/testdata/inventory.yaml"}, env...)
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { _ = p.cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		p.kill()
		if t.Failed() {
			t.Logf("breachwatch output:\n%s", tail(p.out.String(), 4000))
		}
		// For a look at a run that passed: BWTEST_OUTPUT_DIR keeps the output.
		if dir := os.Getenv("BWTEST_OUTPUT_DIR"); dir != "" {
			name := fmt.Sprintf("%s-%d.log", strings.ReplaceAll(t.Name(), "/", "_"), p.cmd.Process.Pid)
			_ = os.WriteFile(filepath.Join(dir, name), []byte(p.out.String()), 0o644)
		}
	})
	waitFor(t, "breachwatch to be ready", time.Minute, func() bool {
		select {
		case <-p.done:
			t.Fatalf("breachwatch exited during start-up:\n%s", p.out.String())
		default:
		}
		resp, err := http.Get("http://" + p.httpAddr + "/readyz")
		if err != nil {
			return false
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode == 200
	})
	return p
}

// kill ends the process with SIGKILL, as a crash or an OOM kill would.
func (p *proc) kill() {
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
}

// rss returns the process's resident and peak resident memory in bytes.
func (p *proc) rss() (now, peak int64) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.cmd.Process.Pid))
	if err != nil {
		return 0, 0
	}
	for _, line := range strings.Split(string(data), "\n") {
		fields := strings.Fields(line)
		if len(fields) < 2 {
			continue
		}
		kb, _ := strconv.ParseInt(fields[1], 10, 64)
		switch fields[0] {
		case "VmRSS:":
			now = kb << 10
		case "VmHWM:":
			peak = kb << 10
		}
	}
	return now, peak
}

func tail(s string, n int) string {
	if len(s) > n {
		return "…" + s[len(s)-n:]
	}
	return s
}

// clickhouseCPU is the CPU time (user and system) the ClickHouse server
// processes on this machine have used so far, read from /proc: the
// benchmarks take its difference over a run to say what the store's side
// cost. 0 where /proc is not there.
func clickhouseCPU() time.Duration {
	dirs, _ := filepath.Glob("/proc/[0-9]*/stat")
	var ticks int64
	for _, f := range dirs {
		data, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		s := string(data)
		open, end := strings.IndexByte(s, '('), strings.LastIndexByte(s, ')')
		if open < 0 || end < open || !strings.HasPrefix(s[open+1:end], "clickhouse") {
			continue
		}
		// After the command: state, then 10 fields, then utime and stime.
		fields := strings.Fields(s[end+1:])
		if len(fields) < 13 {
			continue
		}
		u, _ := strconv.ParseInt(fields[11], 10, 64)
		st, _ := strconv.ParseInt(fields[12], 10, 64)
		ticks += u + st
	}
	return time.Duration(ticks) * time.Second / 100 // USER_HZ is 100 on Linux
}
