package app

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// fakeIdP is a local OpenID Connect provider: discovery, keys, an
// authorization endpoint that signs in whoever the test says (no prompt),
// and a token endpoint that checks the code, the client and PKCE.
type fakeIdP struct {
	*httptest.Server
	key  *rsa.PrivateKey
	mu   sync.Mutex
	user map[string]any // the claims of whoever signs in next
	// per code: the PKCE challenge, the nonce, the redirect
	codes map[string][3]string
	// tamper: sign the ID token with another key / another nonce
	badKey, badNonce bool
}

func newFakeIdP(t *testing.T) *fakeIdP {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	p := &fakeIdP{key: key, codes: map[string][3]string{}}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		_ = json.NewEncoder(w).Encode(map[string]any{"issuer": p.URL, "authorization_endpoint": p.URL + "/authorize",
			"token_endpoint": p.URL + "/token", "jwks_uri": p.URL + "/jwks", "id_token_signing_alg_values_supported": []string{"RS256"},
			"response_types_supported": []string{"code"}, "subject_types_supported": []string{"public"}})
	})
	mux.HandleFunc("GET /jwks", func(w http.ResponseWriter, r *http.Request) {
		_ = json.NewEncoder(w).Encode(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &key.PublicKey, KeyID: "k1", Algorithm: "RS256", Use: "sig"}}})
	})
	mux.HandleFunc("GET /authorize", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		if q.Get("code_challenge_method") != "S256" || q.Get("client_id") != "breachwatch" {
			http.Error(w, "bad request", 400)
			return
		}
		code := randomHex(8)
		p.mu.Lock()
		p.codes[code] = [3]string{q.Get("code_challenge"), q.Get("nonce"), q.Get("redirect_uri")}
		p.mu.Unlock()
		http.Redirect(w, r, q.Get("redirect_uri")+"?code="+code+"&state="+url.QueryEscape(q.Get("state")), http.StatusFound)
	})
	mux.HandleFunc("POST /token", func(w http.ResponseWriter, r *http.Request) {
		_ = r.ParseForm()
		id, secret, ok := r.BasicAuth()
		if !ok {
			id, secret = r.PostForm.Get("client_id"), r.PostForm.Get("client_secret")
		}
		p.mu.Lock()
		c, found := p.codes[r.PostForm.Get("code")]
		delete(p.codes, r.PostForm.Get("code"))
		claims := map[string]any{}
		for k, v := range p.user {
			claims[k] = v
		}
		badKey, badNonce := p.badKey, p.badNonce
		p.mu.Unlock()
		sum := sha256.Sum256([]byte(r.PostForm.Get("code_verifier")))
		if id != "breachwatch" || secret != "idp-secret" || !found || base64.RawURLEncoding.EncodeToString(sum[:]) != c[0] {
			w.WriteHeader(400)
			_, _ = io.WriteString(w, `{"error":"invalid_grant"}`)
			return
		}
		claims["iss"], claims["aud"], claims["sub"] = p.URL, "breachwatch", "u-1"
		claims["iat"], claims["exp"], claims["nonce"] = time.Now().Unix(), time.Now().Add(5*time.Minute).Unix(), c[1]
		if badNonce {
			claims["nonce"] = "another"
		}
		signKey := p.key
		if badKey {
			signKey, _ = rsa.GenerateKey(rand.Reader, 2048)
		}
		sig, _ := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: signKey}, (&jose.SignerOptions{}).WithHeader("kid", "k1"))
		raw, err := jwt.Signed(sig).Claims(claims).Serialize()
		if err != nil {
			w.WriteHeader(500)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"access_token": "at", "token_type": "Bearer", "id_token": raw, "expires_in": 300})
	})
	p.Server = httptest.NewServer(mux)
	t.Cleanup(p.Close)
	return p
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// TestConsoleOIDC: sign-in through an OpenID Connect provider — the code
// flow with PKCE, state and nonce; groups mapped to roles; a user without a
// mapped group, a forged state, a token signed by another key and a wrong
// nonce are all refused.
func TestConsoleOIDC(t *testing.T) {
	idp := newFakeIdP(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	o := testOptions(t)
	o.HTTP.Addr = addr
	o.Console.OIDC = OIDCOptions{Issuer: idp.URL, ClientID: "breachwatch", ClientSecret: "idp-secret",
		RedirectURL: "http://" + addr + "/login/oidc/callback", Roles: map[string]string{"sec-oncall": "engineer", "privacy": "dpo"}}
	info := start(t, o)
	base := "http://" + info.HTTPAddr

	signIn := func(claims map[string]any, tamper func(*http.Request)) (int, string, *http.Client) {
		t.Helper()
		idp.mu.Lock()
		idp.user = claims
		idp.mu.Unlock()
		jar, _ := cookiejar.New(nil)
		client := &http.Client{Jar: jar}
		if tamper != nil {
			client.CheckRedirect = func(req *http.Request, via []*http.Request) error {
				tamper(req)
				return nil
			}
		}
		resp, err := client.Get(base + "/login/oidc?next=/incidents")
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		return resp.StatusCode, resp.Request.URL.Path + " " + string(b), client
	}
	// A DPO (the strongest of their groups) signs in and lands on the list.
	code, page, client := signIn(map[string]any{"preferred_username": "ada", "groups": []string{"staff", "sec-oncall", "privacy"}}, nil)
	if code != 200 || !strings.HasPrefix(page, "/incidents ") || !strings.Contains(page, "sso:ada (dpo)") {
		t.Fatalf("SSO sign-in: %d %.300s", code, page)
	}
	resp, _ := client.Get(base + "/incidents")
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.Request.URL.Path != "/incidents" {
		t.Errorf("the session does not hold: %d %s", resp.StatusCode, resp.Request.URL.Path)
	}
	for _, tc := range []struct {
		name   string
		claims map[string]any
		tamper func(*http.Request)
		setup  func()
		want   string
	}{
		{"no mapped group", map[string]any{"preferred_username": "eve", "groups": []string{"staff"}}, nil, nil, "no breachwatch role"},
		{"forged state", map[string]any{"preferred_username": "ada", "groups": []string{"privacy"}}, func(r *http.Request) {
			if r.URL.Path == "/login/oidc/callback" {
				q := r.URL.Query()
				q.Set("state", "forged")
				r.URL.RawQuery = q.Encode()
			}
		}, nil, "did not start here"},
		{"signed by another key", map[string]any{"preferred_username": "ada", "groups": []string{"privacy"}}, nil,
			func() { idp.badKey = true }, "could not be verified"},
		{"another nonce", map[string]any{"preferred_username": "ada", "groups": []string{"privacy"}}, nil,
			func() { idp.badKey, idp.badNonce = false, true }, "was not for this sign-in"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.setup != nil {
				idp.mu.Lock()
				tc.setup()
				idp.mu.Unlock()
			}
			code, page, _ := signIn(tc.claims, tc.tamper)
			if code != 403 || !strings.Contains(page, tc.want) {
				t.Errorf("%d %.300s; want 403 saying %q", code, page, tc.want)
			}
		})
	}
}
