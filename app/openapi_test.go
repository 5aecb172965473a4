package app

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers/legacy"
)

// loadOpenAPI loads docs/openapi.yaml and validates it as an OpenAPI
// document (kin-openapi).
func loadOpenAPI(t *testing.T) *openapi3.T {
	t.Helper()
	doc, err := openapi3.NewLoader().LoadFromFile("../docs/openapi.yaml")
	if err != nil {
		t.Fatalf("docs/openapi.yaml: %v", err)
	}
	if err := doc.Validate(context.Background()); err != nil {
		t.Fatalf("docs/openapi.yaml is not a valid OpenAPI document: %v", err)
	}
	return doc
}

// TestOpenAPIMatchesTheServer: docs/openapi.yaml is a valid OpenAPI
// document; every route the server registers is documented and every
// documented route is registered (the union of two configurations: the dev
// mailbox, and SendGrid with its webhook and Slack); and the responses of
// the read routes validate against the document's schemas.
func TestOpenAPIMatchesTheServer(t *testing.T) {
	doc := loadOpenAPI(t)
	var documented []string
	for path, item := range doc.Paths.Map() {
		for method := range item.Operations() {
			documented = append(documented, method+" "+path)
		}
	}
	slices.Sort(documented)

	// Configuration A: the defaults of a test run (dev mailbox, no Slack).
	a := start(t, testOptions(t))
	// Configuration B: SendGrid with its signed webhook, and Slack.
	slackAPI := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"ok":true,"channel":"C0ALERTS","ts":"1.2"}`)
	}))
	defer slackAPI.Close()
	ob := testOptions(t)
	ob.Notify.SendGridAPIKey, ob.Notify.SendGridURL, ob.Notify.From = "SG.key-for-tests", slackAPI.URL, "security@bookly.example"
	whKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	der, _ := x509.MarshalPKIXPublicKey(&whKey.PublicKey)
	ob.Notify.SendGridWebhookKey = base64.StdEncoding.EncodeToString(der)
	ob.Slack.Channel, ob.Slack.BotToken, ob.Slack.SigningSecret, ob.Slack.APIURL = "C0ALERTS", "xoxb-test", "signing-secret-for-tests", slackAPI.URL+"/"
	b := start(t, ob)

	registered := slices.Compact(slices.Sorted(slices.Values(append(slices.Clone(a.Routes), b.Routes...))))
	for _, r := range registered {
		if !slices.Contains(documented, r) {
			t.Errorf("registered but not in docs/openapi.yaml: %s", r)
		}
	}
	for _, d := range documented {
		if !slices.Contains(registered, d) {
			t.Errorf("in docs/openapi.yaml but not registered: %s", d)
		}
	}

	// An incident to read: one cross-tenant read, posted as the producer
	// would.
	ev := `{"id":"oa-1","time":"` + time.Now().UTC().Add(-time.Minute).Format(time.RFC3339Nano) + `","tenant":"cust-0042",` +
		`"actor":{"id":"u-7","type":"customer_user","tenant":"cust-0007"},"action":"read",` +
		`"resource":{"type":"contact","id":"c-1","store":"postgres-eu-1"},"records":3,"outcome":"success"}` + "\n"
	req, _ := http.NewRequest("POST", "http://"+a.HTTPAddr+"/api/v1/events/access", strings.NewReader(ev))
	req.Header.Set("Authorization", "Bearer "+ingestToken)
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != http.StatusAccepted {
		t.Fatalf("posting an event: %v %v", resp, err)
	}
	var incID string
	waitFor(t, "the incident", 30*time.Second, func() bool {
		req, _ := http.NewRequest("GET", "http://"+a.HTTPAddr+"/api/v1/incidents", nil)
		req.Header.Set("Authorization", "Bearer "+engineerToken)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		var l struct{ Incidents []struct{ ID string } }
		if json.NewDecoder(resp.Body).Decode(&l) != nil || len(l.Incidents) == 0 {
			return false
		}
		incID = l.Incidents[0].ID
		return true
	})

	// The read routes' responses, validated against the document.
	doc.Servers = openapi3.Servers{{URL: "http://" + a.HTTPAddr}} // where this run listens
	router, err := legacy.NewRouter(doc)
	if err != nil {
		t.Fatal(err)
	}
	inc := "/api/v1/incidents/" + incID
	for _, path := range []string{"/healthz", "/readyz", "/api/v1/incidents", "/api/v1/incidents?status=open", "/api/v1/register",
		"/api/v1/mailbox", inc, inc + "/audit", inc + "/report", inc + "/notice", "/api/v1/incidents/inc-0000000000000000",
		"/api/v1/register?format=bogus"} {
		req, _ := http.NewRequest("GET", "http://"+a.HTTPAddr+path, nil)
		req.Header.Set("Authorization", "Bearer "+engineerToken)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		route, params, err := router.FindRoute(req)
		if err != nil {
			t.Errorf("GET %s: no documented route: %v", path, err)
			continue
		}
		in := &openapi3filter.RequestValidationInput{Request: req, PathParams: params, Route: route,
			Options: &openapi3filter.Options{AuthenticationFunc: openapi3filter.NoopAuthenticationFunc}}
		out := &openapi3filter.ResponseValidationInput{RequestValidationInput: in, Status: resp.StatusCode, Header: resp.Header,
			Options: &openapi3filter.Options{IncludeResponseStatus: true}}
		out.SetBodyBytes(body)
		if err := openapi3filter.ValidateResponse(context.Background(), out); err != nil {
			t.Errorf("GET %s: the response (%d) does not match docs/openapi.yaml: %v\n%s", path, resp.StatusCode,
				strings.SplitN(err.Error(), "\n", 2)[0], truncateForLog(body))
		}
	}
}

func truncateForLog(b []byte) string {
	if len(b) > 300 {
		return string(b[:300]) + "…"
	}
	return string(b)
}
