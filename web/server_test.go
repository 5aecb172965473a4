package web

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func newTestServer(t *testing.T, checks ...Check) *httptest.Server {
	t.Helper()
	ok := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, _ := PrincipalOf(r)
		_, _ = io.WriteString(w, "hello "+p.Name)
	})
	s, err := New(Options{
		Tokens: []Token{
			{Name: "shipper", Role: RoleIngest, Hash: HashToken("ingest-secret")},
			{Name: "alice", Role: RoleEngineer, Hash: HashToken("engineer-secret")},
			{Name: "root", Role: RoleAdmin, Hash: HashToken("admin-secret")},
		},
		Routes: []Route{
			{Method: "POST", Path: "/api/v1/events/access", Roles: []Role{RoleIngest}, Handler: ok},
			{Method: "GET", Path: "/api/v1/things/{id}", Roles: []Role{RoleEngineer, RoleDPO}, Handler: ok},
		},
		Checks:  checks,
		Metrics: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "metrics") }),
	})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(s.Handler())
	t.Cleanup(ts.Close)
	return ts
}

func TestAuthAndRoles(t *testing.T) {
	ts := newTestServer(t)
	tests := []struct {
		name, method, path, auth string
		code                     int
		body                     string
	}{
		{"no token", "POST", "/api/v1/events/access", "", 401, "missing or unknown bearer token"},
		{"unknown token", "POST", "/api/v1/events/access", "Bearer nope", 401, "missing or unknown"},
		{"wrong scheme", "POST", "/api/v1/events/access", "Basic aW5nZXN0LXNlY3JldA==", 401, ""},
		{"token without scheme", "POST", "/api/v1/events/access", "ingest-secret", 401, ""},
		{"empty bearer", "POST", "/api/v1/events/access", "Bearer ", 401, ""},
		{"ingest token", "POST", "/api/v1/events/access", "Bearer ingest-secret", 200, "hello shipper"},
		{"scheme is case-insensitive", "POST", "/api/v1/events/access", "bearer ingest-secret", 200, "hello shipper"},
		{"engineer may not ingest", "POST", "/api/v1/events/access", "Bearer engineer-secret", 403, "may not"},
		{"admin may do anything", "POST", "/api/v1/events/access", "Bearer admin-secret", 200, "hello root"},
		{"ingest may not read", "GET", "/api/v1/things/1", "Bearer ingest-secret", 403, ""},
		{"engineer reads", "GET", "/api/v1/things/1", "Bearer engineer-secret", 200, "hello alice"},
		{"wrong method", "GET", "/api/v1/events/access", "Bearer ingest-secret", 405, "use POST"},
		{"unknown route, no token: 401 not 404", "GET", "/api/v1/secret-admin", "", 401, ""},
		{"unknown route, token", "GET", "/api/v1/nothing", "Bearer engineer-secret", 404, "no such API route"},
		{"health is open", "GET", "/healthz", "", 200, `"ok"`},
		{"metrics is open", "GET", "/metrics", "", 200, "metrics"},
		{"other paths", "GET", "/etc/passwd", "", 404, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, _ := http.NewRequest(tt.method, ts.URL+tt.path, strings.NewReader("{}"))
			if tt.auth != "" {
				req.Header.Set("Authorization", tt.auth)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tt.code || !strings.Contains(string(body), tt.body) {
				t.Errorf("%s %s: %d %s; want %d containing %q", tt.method, tt.path, resp.StatusCode, body, tt.code, tt.body)
			}
			if tt.code == 401 && resp.Header.Get("WWW-Authenticate") == "" {
				t.Error("401 without WWW-Authenticate")
			}
			for _, h := range []string{"X-Content-Type-Options", "Content-Security-Policy", "X-Frame-Options"} {
				if resp.Header.Get(h) == "" {
					t.Errorf("missing security header %s", h)
				}
			}
		})
	}
}

func TestReadiness(t *testing.T) {
	var storeErr error
	ts := newTestServer(t,
		Check{Name: "kafka", Fn: func(context.Context) error { return nil }},
		Check{Name: "store", Fn: func(context.Context) error { return storeErr }},
	)
	get := func() (int, map[string]any, string) {
		resp, err := http.Get(ts.URL + "/readyz")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		raw, _ := io.ReadAll(resp.Body)
		var m map[string]any
		if err := json.Unmarshal(raw, &m); err != nil {
			t.Fatal(err)
		}
		return resp.StatusCode, m, string(raw)
	}
	if code, m, _ := get(); code != 200 || m["status"] != "ready" {
		t.Errorf("healthy: %d %v", code, m)
	}
	storeErr = errors.New("dial tcp 10.0.0.7:9000: connection refused (password=hunter2)")
	code, m, raw := get()
	if code != 503 || m["checks"].(map[string]any)["store"] != "failing" || m["checks"].(map[string]any)["kafka"] != "ok" {
		t.Errorf("store down: %d %v", code, m)
	}
	if strings.Contains(raw, "10.0.0.7") || strings.Contains(raw, "hunter2") {
		t.Errorf("readiness leaks an internal error: %s", raw)
	}
}

func TestRoutesOutsideAPIAreRefused(t *testing.T) {
	_, err := New(Options{Routes: []Route{{Method: "GET", Path: "/admin", Handler: http.NotFoundHandler()}}})
	if err == nil {
		t.Fatal("a route outside /api/ would have no authentication")
	}
}

func TestCanServe(t *testing.T) {
	app := Principal{Role: RoleApp, Tenants: []string{"cust-1"}}
	if !app.CanServe("cust-1") || app.CanServe("cust-2") {
		t.Error("app token scope")
	}
	if !(Principal{Role: RoleEngineer}).CanServe("cust-2") {
		t.Error("engineers see every tenant")
	}
}
