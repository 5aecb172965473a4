// Command breachwatch detects exposure of customers' personal data in access
// logs and configuration changes, and tracks the notification clock. All of
// its work is in package app; main only turns signals into a context.
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
	code := app.Main(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
