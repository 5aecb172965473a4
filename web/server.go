// Package web serves breachwatch's HTTP interface: the API (authenticated
// with bearer tokens and roles on every /api/ route), health, readiness and
// metrics. Handlers of the other parts are passed in by app; web never
// imports the pipeline stages.
package web

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"
)

// Check is one dependency /readyz looks at.
type Check struct {
	Name string
	Fn   func(ctx context.Context) error
}

// Route is an authenticated API route.
type Route struct {
	Method  string
	Path    string // a net/http pattern path, e.g. /api/v1/incidents/{id}
	Roles   []Role // who may call it (admin always may)
	Handler http.Handler
}

// Webhook is a route outside /api/ that authenticates its callers itself
// (e.g. by a verified signature, like Slack's and SendGrid's webhooks).
type Webhook struct {
	Method  string
	Path    string // must start with /hooks/
	Handler http.Handler
	// MaxBytes bounds the request body (default 1 MiB).
	MaxBytes int64
}

// Asset is a public, static file outside /api/ (the in-app widget's
// script and style): GET only, no authentication, no data.
type Asset struct {
	Path    string // must start with /widget/
	Handler http.Handler
}

// Options configure the server.
type Options struct {
	Addr     string
	Tokens   []Token
	Routes   []Route
	Webhooks []Webhook
	Assets   []Asset
	// Console serves every path not taken by the API, hooks, assets,
	// health and metrics (the web console); nil: those paths are 404.
	Console http.Handler
	Checks  []Check
	Metrics http.Handler // serves /metrics
	// Revoked reports whether the token of that name was revoked (an
	// admin's decision, kept in the store); nil: none is.
	Revoked func(name string) bool
	Log     *zap.Logger
}

// Server is the HTTP server.
type Server struct {
	opts    Options
	tokens  tokens
	handler http.Handler

	mu      sync.Mutex
	failing map[string]bool // readiness checks failing at the last probe

	routes []string // "METHOD /path" of every API route, webhook and fixed endpoint
}

// Routes lists what the server serves ("GET /api/v1/incidents", …): the
// API routes, the webhooks, /healthz, /readyz and /metrics (not the
// console's pages nor the widget's files), sorted.
func (s *Server) Routes() []string {
	out := slices.Clone(s.routes)
	slices.Sort(out)
	return out
}

// noteCheck logs a readiness check when its state changes, not at every
// probe.
func (s *Server) noteCheck(name string, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	was := s.failing[name]
	switch {
	case err != nil && !was:
		s.opts.Log.Warn("readiness check failing", zap.String("check", name), zap.Error(err))
	case err == nil && was:
		s.opts.Log.Info("readiness check passing again", zap.String("check", name))
	}
	s.failing[name] = err != nil
}

// New builds the server and its routes. Conflicting routes are an error.
func New(o Options) (s *Server, err error) {
	defer func() {
		// net/http's mux panics on conflicting patterns; that is a
		// programming error, reported as an error here.
		if r := recover(); r != nil {
			s, err = nil, fmt.Errorf("web: %v", r)
		}
	}()
	if o.Log == nil {
		o.Log = zap.NewNop()
	}
	s = &Server{opts: o, tokens: newTokens(o.Tokens), failing: map[string]bool{}}
	api := http.NewServeMux()
	methods := map[string][]string{} // path → methods
	for _, r := range o.Routes {
		if !strings.HasPrefix(r.Path, "/api/") {
			return nil, errors.New("web: API route outside /api/: " + r.Path)
		}
		methods[r.Path] = append(methods[r.Path], r.Method)
		api.Handle(r.Method+" "+r.Path, s.authorize(r.Roles, r.Handler))
		s.routes = append(s.routes, r.Method+" "+r.Path)
	}
	for path, ms := range methods {
		allow := strings.Join(ms, ", ")
		notAllowed := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Allow", allow)
			errorJSON(w, http.StatusMethodNotAllowed, "method not allowed; use "+allow)
		})
		// One pattern per other method (not a method-less pattern, which
		// would conflict with a wildcard route of another method).
		for _, m := range []string{"GET", "POST", "PUT", "PATCH", "DELETE"} {
			if !slices.Contains(ms, m) {
				api.Handle(m+" "+path, notAllowed)
			}
		}
	}
	api.Handle("/", http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		errorJSON(w, http.StatusNotFound, "no such API route")
	}))

	root := http.NewServeMux()
	root.Handle("/api/", s.authenticate(api))
	root.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"status":"ok"}` + "\n"))
	})
	root.HandleFunc("GET /readyz", s.ready)
	s.routes = append(s.routes, "GET /healthz", "GET /readyz")
	for _, h := range o.Webhooks {
		if !strings.HasPrefix(h.Path, "/hooks/") {
			return nil, errors.New("web: webhook outside /hooks/: " + h.Path)
		}
		limit := h.MaxBytes
		if limit <= 0 {
			limit = 1 << 20
		}
		root.Handle(h.Method+" "+h.Path, http.MaxBytesHandler(h.Handler, limit))
		s.routes = append(s.routes, h.Method+" "+h.Path)
	}
	for _, a := range o.Assets {
		if !strings.HasPrefix(a.Path, "/widget/") {
			return nil, errors.New("web: asset outside /widget/: " + a.Path)
		}
		root.Handle("GET "+a.Path, a.Handler)
	}
	if o.Metrics != nil {
		root.Handle("GET /metrics", o.Metrics)
		s.routes = append(s.routes, "GET /metrics")
	}
	if o.Console != nil {
		root.Handle("/", o.Console)
	} else {
		root.Handle("/", http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			errorJSON(w, http.StatusNotFound, "not found")
		}))
	}
	s.handler = s.headers(root)
	return s, nil
}

// Handler is the server's whole handler, for tests and embedding.
func (s *Server) Handler() http.Handler { return s.handler }

type principalKey struct{}

// authenticate admits only requests with a known bearer token; every /api/
// route sits behind it, so an unauthenticated caller learns nothing about
// which routes exist.
func (s *Server) authenticate(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, ok := s.tokens.authenticate(r)
		if !ok {
			w.Header().Set("WWW-Authenticate", `Bearer realm="breachwatch"`)
			errorJSON(w, http.StatusUnauthorized, "missing or unknown bearer token")
			return
		}
		if s.opts.Revoked != nil && s.opts.Revoked(p.Name) {
			w.Header().Set("WWW-Authenticate", `Bearer realm="breachwatch", error="invalid_token"`)
			errorJSON(w, http.StatusUnauthorized, "this token was revoked")
			return
		}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), principalKey{}, p)))
	})
}

// PrincipalOf returns who made an authenticated request.
func PrincipalOf(r *http.Request) (Principal, bool) {
	p, ok := r.Context().Value(principalKey{}).(Principal)
	return p, ok
}

func (s *Server) authorize(roles []Role, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, ok := PrincipalOf(r)
		if !ok || (p.Role != RoleAdmin && !slices.Contains(roles, p.Role)) {
			errorJSON(w, http.StatusForbidden, "this token's role may not do this")
			return
		}
		next.ServeHTTP(w, r)
	})
}

// headers sets the security headers every answer carries and logs the
// request (never its headers or body).
func (s *Server) headers(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Content-Security-Policy", "default-src 'none'; frame-ancestors 'none'")
		h.Set("Cache-Control", "no-store")
		rec := &statusRecorder{ResponseWriter: w, code: http.StatusOK}
		start := time.Now()
		next.ServeHTTP(rec, r)
		s.opts.Log.Debug("http request", zap.String("method", r.Method), zap.String("path", r.URL.Path),
			zap.Int("status", rec.code), zap.Duration("took", time.Since(start)))
	})
}

type statusRecorder struct {
	http.ResponseWriter
	code int
}

func (r *statusRecorder) WriteHeader(code int) {
	r.code = code
	r.ResponseWriter.WriteHeader(code)
}

func (r *statusRecorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

// ready answers 200 when every check passes and 503 otherwise, naming the
// failing checks but never their error texts (those go to the log).
func (s *Server) ready(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 3*time.Second)
	defer cancel()
	results := make(map[string]string, len(s.opts.Checks))
	var mu sync.Mutex
	var wg sync.WaitGroup
	ok := true
	for _, c := range s.opts.Checks {
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := c.Fn(ctx)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				ok = false
				results[c.Name] = "failing"
			} else {
				results[c.Name] = "ok"
			}
			s.noteCheck(c.Name, err)
		}()
	}
	wg.Wait()
	code, status := http.StatusOK, "ready"
	if !ok {
		code, status = http.StatusServiceUnavailable, "not ready"
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(map[string]any{"status": status, "checks": results})
}

// Run serves on the configured address until ctx ends, then shuts down
// gracefully, giving requests in flight up to 15 seconds. ready, if not
// nil, receives the bound address once listening.
func (s *Server) Run(ctx context.Context, ready func(addr string)) error {
	ln, err := net.Listen("tcp", s.opts.Addr)
	if err != nil {
		return err
	}
	srv := &http.Server{
		Handler:           s.handler,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       2 * time.Minute,
		WriteTimeout:      2 * time.Minute,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          zap.NewStdLog(s.opts.Log.Named("http")),
	}
	if ready != nil {
		ready(ln.Addr().String())
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		return err
	}
	if err := <-errc; !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
