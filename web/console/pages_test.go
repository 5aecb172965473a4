package console

import (
	"net/url"
	"strings"
	"testing"
)

// TestSafeNextKeepsRedirectsOnSite: after sign-in the console redirects to
// "next". Every target a browser would take off-site (or that is no path of
// this site) becomes the home page; paths of the site are kept as they
// are. The hostile targets are given as they arrive in the query string.
func TestSafeNextKeepsRedirectsOnSite(t *testing.T) {
	for _, raw := range []string{
		"/%09/evil.example/path", // a tab: the browser drops it, "//evil.example/path"
		"/%0a/evil.example", "/%0d/evil.example", "/%0d%0a/evil.example",
		"%2F%2Fevil.example", "//evil.example", "///evil.example",
		"/%5Cevil.example", "/%5C%5Cevil.example", "%5C%5Cevil.example", // backslashes
		"https://evil.example/", "javascript:alert(1)", "evil.example", "",
		"/%00/evil.example", "/%7f/evil.example", "/incidents%09", " /incidents",
		"/" + strings.Repeat("a", 3000),
	} {
		n, err := url.QueryUnescape(raw)
		if err != nil {
			t.Fatal(err)
		}
		if got := safeNext(n); got != "/" {
			t.Errorf("next=%.60s: redirects to %.60q", raw, got)
		}
	}
	for _, n := range []string{"/incidents", "/incidents/inc-1?tab=notice#draft", "/register", "/a/b%2Fc"} {
		if got := safeNext(n); got != n {
			t.Errorf("next=%s: redirects to %q, want it kept", n, got)
		}
	}
}

// TestFlashIsNeverTakenFromTheURL: after a command the console redirects
// with ?done=<command>; the page's message is made from that code, so a
// crafted link cannot put its own words on the console's page.
func TestFlashIsNeverTakenFromTheURL(t *testing.T) {
	c := &Console{o: Options{Allowed: func(role, cmd string) bool { return cmd == "approve" && role == "dpo" || cmd == "confirm" }}}
	for done, want := range map[string]string{
		"confirm": "confirm: done", "approve": "approve: done", doneRevoked: "Token revoked.", "": "",
		"Your session expired: call +1 555 0100": "", "confirm: done. Also, call us": "", "<b>x</b>": "",
	} {
		if got := c.flash(done); got != want {
			t.Errorf("done=%q: flash %q, want %q", done, got, want)
		}
	}
}
