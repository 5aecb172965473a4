package app

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/breachwatch/breachwatch/internal/testenv"
)

// browser drives a headless Chromium for one test (make test installs
// Debian's chromium; in CI a missing one fails the test) and saves its
// screenshots as test artifacts.
type browser struct {
	t   *testing.T
	ctx context.Context
	art string
}

func newBrowser(t *testing.T, width, height int) *browser {
	t.Helper()
	chromium := testenv.Chromium(t)
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(chromium), chromedp.NoSandbox,
		chromedp.Flag("disable-dev-shm-usage", true), chromedp.WindowSize(width, height))
	actx, cancelA := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx)
	ctx, cancelT := context.WithTimeout(ctx, 120*time.Second)
	t.Cleanup(func() { cancelT(); cancel(); cancelA() })
	return &browser{t: t, ctx: ctx, art: testenv.Artifacts(t)}
}

// step fails the test when a browser action failed.
func (b *browser) step(what string, err error) {
	b.t.Helper()
	if err != nil {
		b.t.Fatalf("browser: %s: %v", what, err)
	}
}

// do runs actions in order.
func (b *browser) do(what string, actions ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	b.step(what, chromedp.Do(b.ctx, actions...))
}

// eval evaluates JavaScript returning a string.
func (b *browser) eval(js string) string {
	b.t.Helper()
	v, err := chromedp.Run(b.ctx, chromedp.Evaluate[string](js))
	b.step(js, err)
	return v
}

// attr is an element's attribute.
func (b *browser) attr(sel, name string) string {
	b.t.Helper()
	r, err := chromedp.Run(b.ctx, chromedp.AttributeValue(sel, name))
	b.step(sel+" "+name, err)
	return r.Value
}

// shot saves a full-page screenshot as <name>.png and returns it.
func (b *browser) shot(name string) []byte {
	b.t.Helper()
	png, err := chromedp.Run(b.ctx, chromedp.FullScreenshot(100))
	b.step("screenshot "+name, err)
	_ = os.WriteFile(filepath.Join(b.art, name+".png"), png, 0o644)
	return png
}
