// Package testenv provides the real parts that breachwatch's tests run
// against: throwaway ClickHouse servers and the kcat binary. It is for tests
// and for the make targets that prepare them; production code never imports it.
package testenv

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
)

// ClickHouseServer is a ClickHouse server process with its own data
// directory and ports, listening on loopback only.
type ClickHouseServer struct {
	Dir      string // holds config, data and logs
	TCPPort  int
	HTTPPort int
	cmd      *exec.Cmd
	exited   chan struct{}
}

// Addr is the native-protocol address.
func (s *ClickHouseServer) Addr() string { return "127.0.0.1:" + strconv.Itoa(s.TCPPort) }

// ClickHouseBinary finds the server binary: Debian's clickhouse-server, or
// the single "clickhouse" binary of upstream packages (returned with the
// "server" argument).
func ClickHouseBinary() (path string, args []string, err error) {
	for _, p := range []string{"clickhouse-server", "/usr/sbin/clickhouse-server", "/usr/bin/clickhouse-server"} {
		if path, err := exec.LookPath(p); err == nil {
			return path, nil, nil
		}
	}
	if path, err := exec.LookPath("clickhouse"); err == nil {
		return path, []string{"server"}, nil
	}
	return "", nil, errors.New("no ClickHouse server binary found (install the Debian package clickhouse-server; make test does this)")
}

// NewClickHouseServer prepares (but does not start) a server in dir, on
// free loopback ports. An existing dir keeps its data: a server can be
// stopped and started again on the same data, as after a crash.
func NewClickHouseServer(dir string) (*ClickHouseServer, error) {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	ports, err := freePorts(3)
	if err != nil {
		return nil, err
	}
	s := &ClickHouseServer{Dir: dir, TCPPort: ports[0], HTTPPort: ports[1]}
	for _, sub := range []string{"data", "tmp", "user_files", "format_schemas", "log"} {
		if err := os.MkdirAll(filepath.Join(dir, sub), 0o755); err != nil {
			return nil, err
		}
	}
	config := fmt.Sprintf(configXML, dir, s.TCPPort, s.HTTPPort, ports[2])
	if err := os.WriteFile(filepath.Join(dir, "config.xml"), []byte(config), 0o644); err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(dir, "users.xml"), []byte(usersXML), 0o644); err != nil {
		return nil, err
	}
	return s, nil
}

// Start starts the server and waits until it answers queries.
func (s *ClickHouseServer) Start(ctx context.Context) error {
	bin, args, err := ClickHouseBinary()
	if err != nil {
		return err
	}
	args = append(args, "--config-file="+filepath.Join(s.Dir, "config.xml"))
	cmd := exec.Command(bin, args...)
	out, err := os.OpenFile(filepath.Join(s.Dir, "log", "stdout.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer out.Close()
	cmd.Stdout, cmd.Stderr = out, out
	cmd.Dir = s.Dir
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start clickhouse-server: %w", err)
	}
	s.cmd = cmd
	s.exited = make(chan struct{})
	go func() { _ = cmd.Wait(); close(s.exited) }()
	if err := WaitClickHouse(ctx, s.Addr(), s.exited); err != nil {
		_ = s.Kill()
		return fmt.Errorf("%w (logs in %s)", err, filepath.Join(s.Dir, "log"))
	}
	return nil
}

// Pid is the server's process id, or 0 when it is not running.
func (s *ClickHouseServer) Pid() int {
	if s.cmd == nil || s.cmd.Process == nil {
		return 0
	}
	return s.cmd.Process.Pid
}

// Stop shuts the server down gracefully.
func (s *ClickHouseServer) Stop() error { return s.signal(syscall.SIGTERM, 60*time.Second) }

// Kill ends the server at once, as a crash would.
func (s *ClickHouseServer) Kill() error { return s.signal(syscall.SIGKILL, 30*time.Second) }

func (s *ClickHouseServer) signal(sig syscall.Signal, wait time.Duration) error {
	if s.cmd == nil {
		return nil
	}
	_ = s.cmd.Process.Signal(sig)
	select {
	case <-s.exited:
	case <-time.After(wait):
		_ = s.cmd.Process.Kill()
		<-s.exited
	}
	s.cmd = nil
	return nil
}

// WaitClickHouse waits until the server at addr answers a ping, or until
// exited is closed (the process died) or ctx ends.
func WaitClickHouse(ctx context.Context, addr string, exited <-chan struct{}) error {
	conn, err := clickhouse.Open(&clickhouse.Options{Addr: []string{addr}, DialTimeout: time.Second})
	if err != nil {
		return err
	}
	defer conn.Close()
	for {
		pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		err := conn.Ping(pctx)
		cancel()
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("clickhouse at %s did not come up: %w", addr, err)
		case <-exited:
			return fmt.Errorf("clickhouse-server exited during start-up")
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func freePorts(n int) ([]int, error) {
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	ports := make([]int, n)
	for i := range ports {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		ls = append(ls, l)
		ports[i] = l.Addr().(*net.TCPAddr).Port
	}
	return ports, nil
}

// FreePort returns a loopback TCP port that was free a moment ago.
func FreePort() (int, error) {
	p, err := freePorts(1)
	if err != nil {
		return 0, err
	}
	return p[0], nil
}

// The server configuration. The <yandex> root is what 18.16 knows; current
// releases still accept it.
const configXML = `<?xml version="1.0"?>
<yandex>
  <logger>
    <level>warning</level>
    <log>%[1]s/log/clickhouse-server.log</log>
    <errorlog>%[1]s/log/clickhouse-server.err.log</errorlog>
    <size>10M</size>
    <count>2</count>
  </logger>
  <listen_host>127.0.0.1</listen_host>
  <tcp_port>%[2]d</tcp_port>
  <http_port>%[3]d</http_port>
  <interserver_http_port>%[4]d</interserver_http_port>
  <interserver_http_host>127.0.0.1</interserver_http_host>
  <path>%[1]s/data/</path>
  <tmp_path>%[1]s/tmp/</tmp_path>
  <user_files_path>%[1]s/user_files/</user_files_path>
  <format_schema_path>%[1]s/format_schemas/</format_schema_path>
  <users_config>%[1]s/users.xml</users_config>
  <default_profile>default</default_profile>
  <default_database>default</default_database>
  <mark_cache_size>268435456</mark_cache_size>
  <max_concurrent_queries>100</max_concurrent_queries>
  <kafka>
    <auto_offset_reset>smallest</auto_offset_reset>
  </kafka>
</yandex>
`

const usersXML = `<?xml version="1.0"?>
<yandex>
  <profiles>
    <default>
      <max_memory_usage>4000000000</max_memory_usage>
      <load_balancing>random</load_balancing>
      <!-- For the Kafka-engine benchmark: JSONEachRow skips the fields a table lacks. -->
      <input_format_skip_unknown_fields>1</input_format_skip_unknown_fields>
    </default>
  </profiles>
  <users>
    <default>
      <password></password>
      <networks><ip>127.0.0.1</ip><ip>::1</ip></networks>
      <profile>default</profile>
      <quota>default</quota>
    </default>
  </users>
  <quotas>
    <default>
      <interval>
        <duration>3600</duration>
        <queries>0</queries>
        <errors>0</errors>
        <result_rows>0</result_rows>
        <read_rows>0</read_rows>
        <execution_time>0</execution_time>
      </interval>
    </default>
  </quotas>
</yandex>
`

// isCI reports whether the tests run in CI, where nothing may skip.
func isCI() bool {
	v := strings.ToLower(os.Getenv("CI"))
	return v != "" && v != "0" && v != "false"
}
