package httpapi

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"reflect"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/pushfn/pushfn/shared/config"
	"github.com/pushfn/pushfn/shared/endpoint"
	"github.com/pushfn/pushfn/shared/ingest"
	"github.com/pushfn/pushfn/shared/ingest/ingesttest"
	"github.com/pushfn/pushfn/shared/message"
	"github.com/pushfn/pushfn/shared/store"
)

const epKey = "the-endpoint-secrets-key-of-these-tests"

// countingEndpoints counts the calls that reach the store, and can fail or race them.
type countingEndpoints struct {
	store.Endpoints
	calls atomic.Int64
	// beforeUpdate, when set, runs before each UpdateEndpoint (to write concurrently).
	beforeUpdate func(n int64)
	updates      atomic.Int64
	fail         error // every call fails with it when set
}

func (c *countingEndpoints) CreateEndpoint(ctx context.Context, rec endpoint.Record) (endpoint.Record, error) {
	c.calls.Add(1)
	if c.fail != nil {
		return endpoint.Record{}, c.fail
	}
	return c.Endpoints.CreateEndpoint(ctx, rec)
}

func (c *countingEndpoints) GetEndpoint(ctx context.Context, id string) (endpoint.Record, error) {
	c.calls.Add(1)
	if c.fail != nil {
		return endpoint.Record{}, c.fail
	}
	return c.Endpoints.GetEndpoint(ctx, id)
}

func (c *countingEndpoints) UpdateEndpoint(ctx context.Context, rec endpoint.Record) (endpoint.Record, error) {
	c.calls.Add(1)
	if f := c.beforeUpdate; f != nil {
		f(c.updates.Add(1))
	}
	return c.Endpoints.UpdateEndpoint(ctx, rec)
}

func (c *countingEndpoints) ListEndpoints(ctx context.Context, q store.EndpointQuery) (store.EndpointPage, error) {
	c.calls.Add(1)
	if c.fail != nil {
		return store.EndpointPage{}, c.fail
	}
	return c.Endpoints.ListEndpoints(ctx, q)
}

type epBundle struct {
	mem   *store.MemoryEndpoints
	eps   *countingEndpoints
	clock *ingesttest.Clock
	logs  *syncBuffer
	h     *Handler
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func epSetup(t *testing.T) *epBundle {
	t.Helper()
	kr, err := endpoint.NewKeyring(epKey)
	if err != nil {
		t.Fatal(err)
	}
	b := &epBundle{mem: &store.MemoryEndpoints{}, clock: ingesttest.NewClock(t0), logs: &syncBuffer{}}
	b.eps = &countingEndpoints{Endpoints: b.mem}
	b.h = &Handler{
		Enqueuer:  &ingest.Enqueuer{Store: &store.Memory{}, Producer: &ingesttest.Producer{}, Now: b.clock.Now, Logger: quiet},
		Records:   &store.Memory{},
		Endpoints: b.eps,
		Keyring:   kr,
		Rules:     message.Rules{},
		Now:       b.clock.Now,
		Logger:    slog.New(slog.NewJSONHandler(b.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	}
	return b
}

// do sends one request; a body is sent as JSON. A 204 has no body; every other answer is JSON.
func (b *epBundle) do(t *testing.T, method, target, body string, headers ...string) response {
	t.Helper()
	path, query, _ := strings.Cut(target, "?")
	req := events.APIGatewayV2HTTPRequest{RawPath: path, RawQueryString: query, Body: body, Headers: map[string]string{}}
	req.RequestContext.HTTP.Method = method
	req.RequestContext.Stage = "$default"
	if body != "" {
		req.Headers["content-type"] = "application/json"
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Headers[strings.ToLower(headers[i])] = headers[i+1]
	}
	resp, err := b.h.Handle(t.Context(), req)
	if err != nil {
		t.Fatalf("Handle returned an error: %v", err)
	}
	if resp.StatusCode == http.StatusNoContent {
		if resp.Body != "" {
			t.Fatalf("204 with a body: %s", resp.Body)
		}
	} else if resp.Headers["Content-Type"] != "application/json" || !json.Valid([]byte(resp.Body)) {
		t.Fatalf("%s %s: response is not JSON: %d %v %s", method, target, resp.StatusCode, resp.Headers, resp.Body)
	}
	return response{resp.StatusCode, resp.Headers, resp.Body}
}

// createdView is a create's answer.
type createdView struct {
	endpoint.Endpoint
	Secret string `json:"secret"`
}

type pageView struct {
	Endpoints  []endpoint.Endpoint `json:"endpoints"`
	NextCursor *string             `json:"next_cursor"`
}

func (b *epBundle) create(t *testing.T, body string) createdView {
	t.Helper()
	r := b.do(t, "POST", "/v1/endpoints", body)
	if r.status != http.StatusCreated {
		t.Fatalf("create = %d %s", r.status, r.body)
	}
	return decode[createdView](t, r)
}

func TestEndpointLifecycle(t *testing.T) {
	t.Parallel()
	b := epSetup(t)
	r := b.do(t, "POST", "/v1/endpoints", `{"url": "https://hooks.example.com/a", "tenant_id": "acme", "description": "orders",
		"headers": {"X-Team": "billing"}, "event_types": ["order.*"], "rate_limit": {"per_second": 5}, "metadata": {"k": "v"}}`)
	if r.status != http.StatusCreated {
		t.Fatalf("create = %d %s", r.status, r.body)
	}
	c := decode[createdView](t, r)
	if !endpoint.ValidID(c.ID) || r.headers["Location"] != "/v1/endpoints/"+c.ID {
		t.Fatalf("id %q, Location %q", c.ID, r.headers["Location"])
	}
	if _, err := endpoint.ParseSecret(c.Secret); err != nil {
		t.Fatalf("created secret %q: %v", c.Secret, err)
	}
	want := endpoint.Endpoint{ID: c.ID, TenantID: "acme", URL: "https://hooks.example.com/a", Description: "orders",
		Headers: map[string]string{"X-Team": "billing"}, EventTypes: []string{"order.*"}, RateLimit: &endpoint.RateLimit{PerSecond: 5},
		Metadata: map[string]string{"k": "v"}, CreatedAt: t0, UpdatedAt: t0}
	if !reflect.DeepEqual(c.Endpoint, want) {
		t.Errorf("created\n %+v\nwant\n %+v", c.Endpoint, want)
	}

	get := b.do(t, "GET", "/v1/endpoints/"+c.ID, "")
	if get.status != 200 || decode[endpoint.Endpoint](t, get).URL != want.URL {
		t.Fatalf("get = %d %s", get.status, get.body)
	}
	if strings.Contains(get.body, `"secret"`) || strings.Contains(get.body, c.Secret[6:]) {
		t.Errorf("GET shows the secret: %s", get.body)
	}
	if s := decode[secretBody](t, b.do(t, "GET", "/v1/endpoints/"+c.ID+"/secret", "")); s.Key != c.Secret {
		t.Errorf("secret route = %q, want the created one", s.Key)
	}

	b.clock.Advance(time.Minute)
	p := b.do(t, "PATCH", "/v1/endpoints/"+c.ID, `{"description": null, "headers": {"X-Team": null, "X-New": "1"}, "disabled": true}`)
	patched := decode[endpoint.Endpoint](t, p)
	if p.status != 200 || patched.Description != "" || fmt.Sprint(patched.Headers) != "map[X-New:1]" || !patched.Disabled ||
		patched.DisabledReason != "manual" || patched.DisabledAt == nil || !patched.UpdatedAt.Equal(t0.Add(time.Minute)) || patched.URL != want.URL {
		t.Fatalf("patch = %d %s", p.status, p.body)
	}
	if g := decode[endpoint.Endpoint](t, b.do(t, "GET", "/v1/endpoints/"+c.ID, "")); !g.Disabled || g.Description != "" {
		t.Errorf("GET after PATCH: %+v", g)
	}

	rot := b.do(t, "POST", "/v1/endpoints/"+c.ID+"/secret/rotate", "")
	next := decode[secretBody](t, rot)
	if rot.status != 200 || next.Key == c.Secret {
		t.Fatalf("rotate = %d %s", rot.status, rot.body)
	}
	if s := decode[secretBody](t, b.do(t, "GET", "/v1/endpoints/"+c.ID+"/secret", "")); s.Key != next.Key {
		t.Errorf("secret after rotation = %q, want the new one", s.Key)
	}
	rec, err := b.mem.GetEndpoint(t.Context(), c.ID)
	if err != nil {
		t.Fatal(err)
	}
	active, err := rec.ActiveSecrets(b.h.Keyring, b.clock.Now())
	if err != nil || len(active) != 2 || active[0].Reveal() != next.Key || active[1].Reveal() != c.Secret {
		t.Fatalf("active secrets after rotation: %d, %v; want the new then the old", len(active), err)
	}
	if strings.Contains(string(rec.Secret), next.Key[6:]) {
		t.Error("the store holds the secret in clear")
	}

	given := endpoint.GenerateSecret()
	if s := decode[secretBody](t, b.do(t, "POST", "/v1/endpoints/"+c.ID+"/secret/rotate", `{"key": "`+given.Reveal()+`"}`)); s.Key != given.Reveal() {
		t.Errorf("rotation to a given key answered %q", s.Key)
	}

	if d := b.do(t, "DELETE", "/v1/endpoints/"+c.ID, ""); d.status != http.StatusNoContent {
		t.Fatalf("delete = %d %s", d.status, d.body)
	}
	for _, path := range []string{"/v1/endpoints/" + c.ID, "/v1/endpoints/" + c.ID + "/secret"} {
		if g := b.do(t, "GET", path, ""); g.status != 404 || decode[ingest.ErrorBody](t, g).Error.Code != CodeNotFound {
			t.Errorf("GET %s after delete = %d %s", path, g.status, g.body)
		}
	}
	if d := b.do(t, "DELETE", "/v1/endpoints/"+c.ID, ""); d.status != 404 {
		t.Errorf("second delete = %d, want 404", d.status)
	}

	for _, secret := range []string{c.Secret, next.Key, given.Reveal()} {
		if strings.Contains(b.logs.String(), secret[6:]) {
			t.Errorf("a secret is in the logs")
		}
	}
	if !strings.Contains(b.logs.String(), `"endpoint_id":"`+c.ID+`"`) {
		t.Errorf("the logs do not name the endpoint: %s", b.logs.String())
	}
}

func TestEndpointCreateWithSecret(t *testing.T) {
	t.Parallel()
	b := epSetup(t)
	s := endpoint.GenerateSecret()
	c := b.create(t, `{"url": "https://hooks.example.com/a", "secret": "`+s.Reveal()+`"}`)
	if c.Secret != s.Reveal() || c.TenantID != "" || c.EventTypes == nil || c.Headers == nil || c.Metadata == nil || c.RateLimit != nil {
		t.Errorf("created %+v", c)
	}
	if g := decode[secretBody](t, b.do(t, "GET", "/v1/endpoints/"+c.ID+"/secret", "")); g.Key != s.Reveal() {
		t.Errorf("secret route = %q", g.Key)
	}
}

// problemFields lists the fields of a 400's details.
func problemFields(t *testing.T, r response) []string {
	t.Helper()
	var out []string
	for _, d := range decode[ingest.ErrorBody](t, r).Error.Details {
		out = append(out, d.Field)
	}
	return out
}

func TestEndpointErrors(t *testing.T) {
	t.Parallel()
	b := epSetup(t)
	acme := b.create(t, `{"url": "https://hooks.example.com/a", "tenant_id": "acme"}`)
	b.create(t, `{"url": "https://hooks.example.com/b", "tenant_id": "acme"}`)
	b.create(t, `{"url": "https://hooks.example.com/c", "tenant_id": "other"}`)
	b.create(t, `{"url": "https://hooks.example.com/d", "tenant_id": "other"}`)
	otherPage := decode[pageView](t, b.do(t, "GET", "/v1/endpoints?tenant_id=other&limit=1", ""))
	if otherPage.NextCursor == nil {
		t.Fatal("no cursor for the other tenant's first page")
	}
	missing := endpoint.NewID(t0)
	big := `{"url": "https://hooks.example.com/a", "description": "` + strings.Repeat("x", endpoint.MaxBodyBytes) + `"}`
	tests := []struct {
		name, method, target, body string
		headers                    []string
		status                     int
		code                       string
		fields                     []string
		allow                      string
	}{
		{name: "create: not JSON", method: "POST", target: "/v1/endpoints", body: `{"url":`, status: 400, code: "invalid_json", fields: []string{"body"}},
		{name: "create: invalid fields", method: "POST", target: "/v1/endpoints", body: `{"url": "http://10.0.0.1/", "event_types": ["*"], "extra": 1}`,
			status: 400, code: "validation_failed", fields: []string{"event_types[0]", "extra", "url"}},
		{name: "create: no url", method: "POST", target: "/v1/endpoints", body: `{}`, status: 400, code: "validation_failed", fields: []string{"url"}},
		{name: "create: bad secret", method: "POST", target: "/v1/endpoints", body: `{"url": "https://h.example.com", "secret": "whsec_short"}`,
			status: 400, code: "validation_failed", fields: []string{"secret"}},
		{name: "create: wrong content type", method: "POST", target: "/v1/endpoints", body: `{}`, headers: []string{"Content-Type", "text/plain"}, status: 415, code: CodeUnsupportedType},
		{name: "create: too large", method: "POST", target: "/v1/endpoints", body: big, status: 413, code: CodeTooLarge},
		{name: "collection: wrong method", method: "DELETE", target: "/v1/endpoints", status: 405, code: CodeMethodNotAllowed, allow: "GET, POST"},
		{name: "endpoint: wrong method", method: "POST", target: "/v1/endpoints/" + acme.ID, status: 405, code: CodeMethodNotAllowed, allow: "DELETE, GET, PATCH"},
		{name: "secret: wrong method", method: "POST", target: "/v1/endpoints/" + acme.ID + "/secret", status: 405, code: CodeMethodNotAllowed, allow: "GET"},
		{name: "rotate: wrong method", method: "GET", target: "/v1/endpoints/" + acme.ID + "/secret/rotate", status: 405, code: CodeMethodNotAllowed, allow: "POST"},
		{name: "unknown sub-route", method: "GET", target: "/v1/endpoints/" + acme.ID + "/attempts", status: 404, code: CodeNotFound},
		{name: "empty id", method: "GET", target: "/v1/endpoints/", status: 404, code: CodeNotFound},
		{name: "get: unknown id", method: "GET", target: "/v1/endpoints/" + missing, status: 404, code: CodeNotFound},
		{name: "patch: unknown id", method: "PATCH", target: "/v1/endpoints/" + missing, body: `{}`, status: 404, code: CodeNotFound},
		{name: "delete: unknown id", method: "DELETE", target: "/v1/endpoints/" + missing, status: 404, code: CodeNotFound},
		{name: "secret: unknown id", method: "GET", target: "/v1/endpoints/" + missing + "/secret", status: 404, code: CodeNotFound},
		{name: "rotate: unknown id", method: "POST", target: "/v1/endpoints/" + missing + "/secret/rotate", status: 404, code: CodeNotFound},
		{name: "patch: secret", method: "PATCH", target: "/v1/endpoints/" + acme.ID, body: `{"secret": "whsec_x"}`, status: 400, code: "validation_failed", fields: []string{"secret"}},
		{name: "patch: result invalid", method: "PATCH", target: "/v1/endpoints/" + acme.ID, body: `{"url": "http://hooks.example.com/"}`, status: 400, code: "validation_failed", fields: []string{"url"}},
		{name: "patch: url null", method: "PATCH", target: "/v1/endpoints/" + acme.ID, body: `{"url": null}`, status: 400, code: "validation_failed", fields: []string{"url"}},
		{name: "patch: no content type", method: "PATCH", target: "/v1/endpoints/" + acme.ID, body: `{}`, headers: []string{"Content-Type", ""}, status: 415, code: CodeUnsupportedType},
		{name: "rotate: bad key", method: "POST", target: "/v1/endpoints/" + acme.ID + "/secret/rotate", body: `{"key": "whsec_!"}`, status: 400, code: "validation_failed", fields: []string{"key"}},
		{name: "rotate: unknown field", method: "POST", target: "/v1/endpoints/" + acme.ID + "/secret/rotate", body: `{"secret": "x"}`, status: 400, code: "validation_failed", fields: []string{"secret"}},
		{name: "list: limit 0", method: "GET", target: "/v1/endpoints?limit=0", status: 400, code: "validation_failed", fields: []string{"limit"}},
		{name: "list: limit 101", method: "GET", target: "/v1/endpoints?limit=101", status: 400, code: "validation_failed", fields: []string{"limit"}},
		{name: "list: limit not a number", method: "GET", target: "/v1/endpoints?limit=ten", status: 400, code: "validation_failed", fields: []string{"limit"}},
		{name: "list: empty tenant", method: "GET", target: "/v1/endpoints?tenant_id=", status: 400, code: "validation_failed", fields: []string{"tenant_id"}},
		{name: "list: unknown parameter", method: "GET", target: "/v1/endpoints?page=2", status: 400, code: "validation_failed", fields: []string{"page"}},
		{name: "list: parameter twice", method: "GET", target: "/v1/endpoints?limit=1&limit=2", status: 400, code: "validation_failed", fields: []string{"limit"}},
		{name: "list: parameter with no name", method: "GET", target: "/v1/endpoints?=x", status: 400, code: "validation_failed", fields: []string{"query"}},
		{name: "list: garbled cursor", method: "GET", target: "/v1/endpoints?tenant_id=acme&cursor=abc", status: 400, code: "validation_failed", fields: []string{"cursor"}},
		{name: "list: another tenant's cursor", method: "GET", target: "/v1/endpoints?tenant_id=acme&cursor=" + url.QueryEscape(*otherPage.NextCursor),
			status: 400, code: "validation_failed", fields: []string{"cursor"}},
	}
	for _, tt := range tests {
		r := b.do(t, tt.method, tt.target, tt.body, tt.headers...)
		e := decode[ingest.ErrorBody](t, r).Error
		if r.status != tt.status || e.Code != tt.code || r.headers["Allow"] != tt.allow {
			t.Errorf("%s: %d %q Allow %q, want %d %q Allow %q (%s)", tt.name, r.status, e.Code, r.headers["Allow"], tt.status, tt.code, tt.allow, r.body)
		}
		if got := problemFields(t, r); !slices.Equal(got, tt.fields) {
			t.Errorf("%s: details fields %q, want %q", tt.name, got, tt.fields)
		}
	}
	// None of the refusals changed an endpoint.
	if g := decode[endpoint.Endpoint](t, b.do(t, "GET", "/v1/endpoints/"+acme.ID, "")); !reflect.DeepEqual(g, acme.Endpoint) {
		t.Errorf("after the refusals: %+v, want %+v", g, acme.Endpoint)
	}
	if s := decode[secretBody](t, b.do(t, "GET", "/v1/endpoints/"+acme.ID+"/secret", "")); s.Key != acme.Secret {
		t.Error("a refused rotation changed the secret")
	}
}

// An id of the wrong shape is refused without a lookup.
func TestEndpointBadIDsReachNoStore(t *testing.T) {
	t.Parallel()
	b := epSetup(t)
	for _, id := range []string{"x", "ep_", "msg_06h0td7azajsjqpb4b4ngtdr24", "ep_06h0td7azajsjqpb4b4ngtdr2u", "EP_06H0TD7AZAJSJQPB4B4NGTDR24"} {
		for _, req := range [][2]string{{"GET", ""}, {"PATCH", ""}, {"DELETE", ""}, {"GET", "/secret"}, {"POST", "/secret/rotate"}} {
			body := ""
			if req[0] == "PATCH" {
				body = "{}"
			}
			if r := b.do(t, req[0], "/v1/endpoints/"+id+req[1], body); r.status != 404 {
				t.Errorf("%s %s%s = %d, want 404", req[0], id, req[1], r.status)
			}
		}
	}
	if n := b.eps.calls.Load(); n != 0 {
		t.Errorf("%d store calls for ids that cannot exist, want 0", n)
	}
}

func TestEndpointListPages(t *testing.T) {
	t.Parallel()
	b := epSetup(t)
	var want, all []string
	for i := range 5 {
		b.clock.Advance(time.Millisecond)
		want = append(want, b.create(t, `{"url": "https://hooks.example.com/`+fmt.Sprint(i)+`", "tenant_id": "acme"}`).ID)
	}
	all = append(all, want...)
	b.clock.Advance(time.Millisecond) // ids order by the millisecond of creation, then at random
	all = append(all, b.create(t, `{"url": "https://hooks.example.com/x"}`).ID)
	var got []string
	target, pages := "/v1/endpoints?tenant_id=acme&limit=2", 0
	for {
		p := decode[pageView](t, b.do(t, "GET", target, ""))
		pages++
		for _, e := range p.Endpoints {
			got = append(got, e.ID)
			if e.TenantID != "acme" {
				t.Errorf("tenant acme lists %+v", e)
			}
		}
		if p.NextCursor == nil {
			break
		}
		target = "/v1/endpoints?tenant_id=acme&limit=2&cursor=" + url.QueryEscape(*p.NextCursor)
	}
	if !slices.Equal(got, want) || pages != 3 {
		t.Errorf("%d pages of %v, want 3 of %v", pages, got, want)
	}
	p := decode[pageView](t, b.do(t, "GET", "/v1/endpoints", ""))
	var ids []string
	for _, e := range p.Endpoints {
		ids = append(ids, e.ID)
	}
	if !slices.Equal(ids, all) || p.NextCursor != nil {
		t.Errorf("every endpoint: %v (next %v), want %v", ids, p.NextCursor, all)
	}
	// A listing never shows a secret.
	if body := b.do(t, "GET", "/v1/endpoints", "").body; strings.Contains(body, "secret") || strings.Contains(body, "whsec_") {
		t.Errorf("the listing shows secrets: %s", body)
	}
	// With no query string, API Gateway may give only the parameters map.
	req := events.APIGatewayV2HTTPRequest{RawPath: "/v1/endpoints", QueryStringParameters: map[string]string{"tenant_id": "acme", "limit": "1"}}
	req.RequestContext.HTTP.Method = "GET"
	resp, _ := b.h.Handle(t.Context(), req)
	if var1 := decode[pageView](t, response{body: resp.Body}); len(var1.Endpoints) != 1 || var1.Endpoints[0].ID != want[0] {
		t.Errorf("parameters map: %s", resp.Body)
	}
}

// A PATCH that meets a concurrent write reads again and applies itself to the new version:
// neither write is lost. One that meets a write on every try answers 409.
func TestEndpointPatchConcurrentWrite(t *testing.T) {
	t.Parallel()
	b := epSetup(t)
	c := b.create(t, `{"url": "https://hooks.example.com/a"}`)
	b.eps.beforeUpdate = func(n int64) {
		if n != 1 {
			return
		}
		rec, err := b.mem.GetEndpoint(context.Background(), c.ID)
		if err != nil {
			t.Error(err)
			return
		}
		rec.Metadata = map[string]string{"other": "writer"}
		if _, err := b.mem.UpdateEndpoint(context.Background(), rec); err != nil {
			t.Error(err)
		}
	}
	r := b.do(t, "PATCH", "/v1/endpoints/"+c.ID, `{"description": "mine"}`)
	got := decode[endpoint.Endpoint](t, r)
	if r.status != 200 || got.Description != "mine" || got.Metadata["other"] != "writer" {
		t.Fatalf("patch after a concurrent write = %d %s; want both changes", r.status, r.body)
	}
	if n := b.eps.updates.Load(); n != 2 {
		t.Errorf("%d update calls, want 2 (one lost the race, one retried)", n)
	}

	b.eps.beforeUpdate = func(int64) {
		rec, _ := b.mem.GetEndpoint(context.Background(), c.ID)
		rec.Description += "!"
		_, _ = b.mem.UpdateEndpoint(context.Background(), rec)
	}
	r = b.do(t, "PATCH", "/v1/endpoints/"+c.ID, `{"description": "again"}`)
	if r.status != http.StatusConflict || decode[ingest.ErrorBody](t, r).Error.Code != CodeConflict || r.headers["Retry-After"] == "" {
		t.Errorf("patch losing every race = %d %v %s, want 409 conflict with Retry-After", r.status, r.headers, r.body)
	}
	b.eps.beforeUpdate = nil
	// A patch that changes nothing writes nothing.
	before := b.eps.updates.Load()
	if r := b.do(t, "PATCH", "/v1/endpoints/"+c.ID, `{"url": "https://hooks.example.com/a"}`); r.status != 200 || b.eps.updates.Load() != before {
		t.Errorf("no-op patch = %d with %d writes", r.status, b.eps.updates.Load()-before)
	}
}

func TestEndpointDependencyFailures(t *testing.T) {
	t.Parallel()
	b := epSetup(t)
	c := b.create(t, `{"url": "https://hooks.example.com/a"}`)
	b.eps.fail = errors.New("dial tcp 10.1.2.3:443: connection refused to table pushfn-prod")
	for _, req := range [][3]string{
		{"POST", "/v1/endpoints", `{"url": "https://hooks.example.com/a"}`}, {"GET", "/v1/endpoints", ""},
		{"GET", "/v1/endpoints/" + c.ID, ""}, {"PATCH", "/v1/endpoints/" + c.ID, "{}"}, {"DELETE", "/v1/endpoints/" + c.ID, ""},
		{"GET", "/v1/endpoints/" + c.ID + "/secret", ""}, {"POST", "/v1/endpoints/" + c.ID + "/secret/rotate", ""},
	} {
		r := b.do(t, req[0], req[1], req[2])
		if r.status != 503 || r.headers["Retry-After"] == "" || decode[ingest.ErrorBody](t, r).Error.Code != ingest.CodeUnavailable ||
			strings.Contains(r.body, "pushfn-prod") {
			t.Errorf("%s %s with the store down = %d %v %s", req[0], req[1], r.status, r.headers, r.body)
		}
	}
}

// A secret that does not decrypt (ENDPOINT_SECRETS_KEY changed) is an internal error that shows
// nothing of the stored value.
func TestEndpointSecretUnreadable(t *testing.T) {
	t.Parallel()
	b := epSetup(t)
	c := b.create(t, `{"url": "https://hooks.example.com/a"}`)
	other, err := endpoint.NewKeyring(epKey + "-rotated")
	if err != nil {
		t.Fatal(err)
	}
	h := *b.h
	h.Keyring = other
	b.h = &h
	r := b.do(t, "GET", "/v1/endpoints/"+c.ID+"/secret", "")
	if r.status != 500 || decode[ingest.ErrorBody](t, r).Error.Code != ingest.CodeInternal || strings.Contains(r.body, "v1:") {
		t.Errorf("unreadable secret = %d %s", r.status, r.body)
	}
	if !strings.Contains(b.logs.String(), "ENDPOINT_SECRETS_KEY") {
		t.Errorf("the log does not say what to check: %s", b.logs.String())
	}
}

// The endpoint routes need a store and a keyring; a handler without them (the relay's tests)
// answers them 404, as an unknown route.
func TestEndpointRoutesNeedAStore(t *testing.T) {
	t.Parallel()
	b := setup(t)
	if r := b.do(t, "GET", "/v1/endpoints", ""); r.status != 404 {
		t.Errorf("GET /v1/endpoints without a store = %d", r.status)
	}
}

func TestEndpointKeyLengthsAgree(t *testing.T) {
	t.Parallel()
	if config.MinEndpointSecretsKeyChars != endpoint.MinKeyChars {
		t.Fatalf("config accepts ENDPOINT_SECRETS_KEY from %d characters, the keyring from %d", config.MinEndpointSecretsKeyChars, endpoint.MinKeyChars)
	}
}

// base64 bodies work on the endpoint routes as on the message routes.
func TestEndpointBase64Body(t *testing.T) {
	t.Parallel()
	b := epSetup(t)
	req := events.APIGatewayV2HTTPRequest{RawPath: "/v1/endpoints", IsBase64Encoded: true,
		Body: base64.StdEncoding.EncodeToString([]byte(`{"url": "https://hooks.example.com/a"}`)), Headers: map[string]string{"content-type": "application/json"}}
	req.RequestContext.HTTP.Method = "POST"
	if resp, _ := b.h.Handle(t.Context(), req); resp.StatusCode != http.StatusCreated {
		t.Errorf("base64 create = %d %s", resp.StatusCode, resp.Body)
	}
}
