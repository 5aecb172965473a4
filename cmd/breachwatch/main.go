// Command breachwatch detects exposure of customers' personal data in access
// logs and configuration changes, and tracks the notification clock. All of
// its work is in package app; main only turns signals into a context (and
// SIGHUP into a request to reload the rules).
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/breachwatch/breachwatch/app"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	reload := make(chan os.Signal, 1)
	signal.Notify(reload, syscall.SIGHUP)
	code := app.Main(ctx, os.Args[1:], os.Stdout, os.Stderr, reload)
	stop()
	os.Exit(code)
}
