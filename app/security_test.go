package app

import (
	"bytes"
	"compress/gzip"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
)

// Tokens of the matrix, one per role (the test configuration's ingest and
// engineer tokens, and these).
const (
	dpoMatrixToken   = "dpo-token-for-the-matrix-0123456789"
	adminMatrixToken = "admin-token-for-the-matrix-0123456789"
	appMatrixToken   = "app-token-for-the-matrix-0123456789" // tenant cust-0042 only
)

// allowed is who may call each API route, as README's table says (an
// independent statement of the policy, not the code's own list). "app" is
// an app token of the route's {tenant}.
var allowed = map[string][]string{
	"POST /api/v1/events/access":                      {"ingest", "admin"},
	"POST /api/v1/events/config":                      {"ingest", "admin"},
	"GET /api/v1/incidents":                           {"engineer", "dpo", "admin"},
	"GET /api/v1/incidents/{id}":                      {"engineer", "dpo", "admin"},
	"GET /api/v1/incidents/{id}/audit":                {"engineer", "dpo", "admin"},
	"GET /api/v1/incidents/{id}/report":               {"engineer", "dpo", "admin"},
	"GET /api/v1/incidents/{id}/report.html":          {"engineer", "dpo", "admin"},
	"GET /api/v1/register":                            {"engineer", "dpo", "admin"},
	"POST /api/v1/incidents/{id}/{command}":           {"engineer", "dpo", "admin"},
	"GET /api/v1/incidents/{id}/notice":               {"engineer", "dpo", "admin"},
	"GET /api/v1/incidents/{id}/notice/preview":       {"engineer", "dpo", "admin"},
	"GET /api/v1/mailbox":                             {"engineer", "dpo", "admin"},
	"GET /api/v1/mailbox/{id}":                        {"engineer", "dpo", "admin"},
	"GET /api/v1/tenants/{tenant}/notices":            {"app", "admin"},
	"POST /api/v1/tenants/{tenant}/notices/{id}/read": {"app", "admin"},
	"GET /api/v1/tokens":                              {"admin"},
	"POST /api/v1/tokens/{name}/revoke":               {"admin"},
	"POST /api/v1/backfill":                           {"engineer", "admin"},
	"GET /api/v1/backfill/{id}":                       {"engineer", "admin"},
}

// TestAuthzMatrix: every API route the server registers, called with no
// token, a wrong one, and a token of every role: 401 without a valid
// token; 403 for a role the route is not for; anything but 401/403 for one
// it is for. App tokens reach their own tenants only. A route the table
// above does not know fails the test, so that a new route gets a policy.
func TestAuthzMatrix(t *testing.T) {
	o := testOptions(t)
	o.Auth.Tokens = append(o.Auth.Tokens,
		TokenOptions{Name: "dana", Role: "dpo", TokenSHA256: sha(dpoMatrixToken)},
		TokenOptions{Name: "root", Role: "admin", TokenSHA256: sha(adminMatrixToken)},
		TokenOptions{Name: "product", Role: "app", Tenants: []string{"cust-0042"}, TokenSHA256: sha(appMatrixToken)})
	info := start(t, o)
	tokens := map[string]string{"ingest": ingestToken, "engineer": engineerToken, "dpo": dpoMatrixToken, "admin": adminMatrixToken,
		"app": appMatrixToken}
	call := func(method, path, token string) (int, string) {
		t.Helper()
		body := ""
		if method == "POST" {
			body = "{}"
		}
		req, _ := http.NewRequest(method, "http://"+info.HTTPAddr+path, strings.NewReader(body))
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 300))
		resp.Body.Close()
		return resp.StatusCode, string(b)
	}
	fill := func(pattern, tenant string) string {
		r := strings.NewReplacer("{id}", "inc-0000000000000000", "{command}", "note", "{tenant}", tenant, "{name}", "nobody")
		return r.Replace(pattern)
	}
	calls := 0
	for _, route := range info.Routes {
		method, pattern, _ := strings.Cut(route, " ")
		if !strings.HasPrefix(pattern, "/api/") {
			continue
		}
		who, known := allowed[route]
		if !known {
			t.Errorf("%s: no policy in the matrix; add it (and to README's table)", route)
			continue
		}
		path := fill(pattern, "cust-0042")
		for _, tok := range []string{"", "not-a-token-0123456789abcdef"} {
			if code, body := call(method, path, tok); code != http.StatusUnauthorized {
				t.Errorf("%s %s with token %q: %d, want 401: %s", method, path, tok, code, body)
			}
			calls++
		}
		for role, tok := range tokens {
			code, body := call(method, path, tok)
			calls++
			switch may := slices.Contains(who, role); {
			case !may && code != http.StatusForbidden:
				t.Errorf("%s %s as %s: %d, want 403: %s", method, path, role, code, body)
			case may && (code == http.StatusUnauthorized || code == http.StatusForbidden):
				t.Errorf("%s %s as %s: %d, want it allowed: %s", method, path, role, code, body)
			}
		}
		if strings.Contains(pattern, "{tenant}") {
			other := fill(pattern, "cust-0007")
			if code, body := call(method, other, appMatrixToken); code != http.StatusForbidden {
				t.Errorf("%s %s with cust-0042's app token: %d, want 403: %s", method, other, code, body)
			}
			calls++
		}
	}
	if calls < 100 {
		t.Fatalf("only %d calls: the server registered %d routes", calls, len(info.Routes))
	}
	t.Logf("%d calls over %d routes", calls, len(info.Routes))
}

// TestBodyLimitsAndGzipBombs: a body over ingest.http_max_body_bytes is
// refused with 413, compressed or not, and a small gzip body that inflates
// past it (a gzip bomb) is cut at the limit, not inflated whole; nothing
// of either is stored.
func TestBodyLimitsAndGzipBombs(t *testing.T) {
	o := testOptions(t)
	o.Ingest.HTTPMaxBodyBytes = 1 << 20
	info := start(t, o)
	post := func(body []byte, gz bool) int {
		t.Helper()
		req, _ := http.NewRequest("POST", "http://"+info.HTTPAddr+"/api/v1/events/access", bytes.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+ingestToken)
		if gz {
			req.Header.Set("Content-Encoding", "gzip")
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	big := bytes.Repeat([]byte(" "), 2<<20)
	if code := post(big, false); code != http.StatusRequestEntityTooLarge {
		t.Errorf("a 2 MiB body: %d, want 413", code)
	}
	var bomb bytes.Buffer
	zw := gzip.NewWriter(&bomb)
	for range 100 { // 100 MiB of spaces, about 100 KiB compressed
		_, _ = zw.Write(bytes.Repeat([]byte(" "), 1<<20))
	}
	_ = zw.Close()
	if code := post(bomb.Bytes(), true); code != http.StatusRequestEntityTooLarge {
		t.Errorf("a gzip body inflating to 100 MiB (%d bytes sent): %d, want 413", bomb.Len(), code)
	}
}
