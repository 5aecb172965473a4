// Command chserver starts and stops the throwaway ClickHouse server that
// `make test` and `make bench` run the tests against.
//
//	chserver start DIR   start a server keeping everything in DIR; print its address
//	chserver stop DIR    stop the server started in DIR
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/breachwatch/breachwatch/internal/testenv"
)

func main() {
	if len(os.Args) != 3 || (os.Args[1] != "start" && os.Args[1] != "stop") {
		fmt.Fprintln(os.Stderr, "usage: chserver start|stop DIR")
		os.Exit(2)
	}
	dir := os.Args[2]
	var err error
	if os.Args[1] == "start" {
		err = start(dir)
	} else {
		err = stop(dir)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "chserver:", err)
		os.Exit(1)
	}
}

func start(dir string) error {
	if pid, err := readPid(dir); err == nil && syscall.Kill(pid, 0) == nil {
		return fmt.Errorf("a server (pid %d) already runs in %s; stop it first", pid, dir)
	}
	s, err := testenv.NewClickHouseServer(dir)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := s.Start(ctx); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "pid"), []byte(strconv.Itoa(s.Pid())), 0o644); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "addr"), []byte(s.Addr()), 0o644); err != nil {
		return err
	}
	fmt.Println(s.Addr())
	return nil
}

func readPid(dir string) (int, error) {
	b, err := os.ReadFile(filepath.Join(dir, "pid"))
	if err != nil {
		return 0, err
	}
	return strconv.Atoi(strings.TrimSpace(string(b)))
}

func stop(dir string) error {
	pid, err := readPid(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	defer os.Remove(filepath.Join(dir, "pid"))
	if err := syscall.Kill(pid, syscall.SIGTERM); err != nil {
		return nil // already gone
	}
	for deadline := time.Now().Add(60 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if syscall.Kill(pid, 0) != nil {
			return nil
		}
	}
	return syscall.Kill(pid, syscall.SIGKILL)
}
