package httpapi

import (
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/pushfn/pushfn/shared/endpoint"
	"github.com/pushfn/pushfn/shared/ingest"
	"github.com/pushfn/pushfn/shared/ingest/ingesttest"
	"github.com/pushfn/pushfn/shared/store"
)

// epMsgSetup is epSetup whose message routes find endpoints through the cache over the endpoint
// store, as the api function runs them; it returns the message store and producer too.
func epMsgSetup(t *testing.T) (*epBundle, *store.Memory, *ingesttest.Producer) {
	t.Helper()
	b := epSetup(t)
	records, prod := &store.Memory{}, &ingesttest.Producer{}
	cache := ingest.NewEndpointCache(b.eps)
	cache.Now = b.clock.Now
	b.h.Enqueuer = &ingest.Enqueuer{Store: records, Producer: prod, Endpoints: cache, Now: b.clock.Now, Logger: quiet}
	b.h.Records = records
	return b, records, prod
}

func TestMessageToEndpoint(t *testing.T) {
	t.Parallel()
	b, records, prod := epMsgSetup(t)
	ep := b.create(t, `{"url": "https://Hooks.Example.com/orders", "headers": {"X-Team": "a"}}`)
	calls := b.eps.calls.Load()

	r := b.do(t, "POST", "/v1/messages", `{"endpoint_id": "`+ep.ID+`", "payload": {"a": 1}}`, "Idempotency-Key", "k-1")
	if r.status != http.StatusAccepted {
		t.Fatalf("POST to an endpoint: %d %s", r.status, r.body)
	}
	var acc accepted
	_ = json.Unmarshal([]byte(r.body), &acc)
	got := b.do(t, "GET", "/v1/messages/"+acc.ID, "")
	var v View
	if err := json.Unmarshal([]byte(got.body), &v); err != nil || got.status != http.StatusOK {
		t.Fatalf("GET: %d %s", got.status, got.body)
	}
	if v.EndpointID != ep.ID || v.TargetHost != "hooks.example.com" || v.Status != "accepted" {
		t.Errorf("GET shows %+v, want endpoint_id %s and target_host hooks.example.com", v, ep.ID)
	}
	if !strings.Contains(got.body, `"endpoint_id":"`+ep.ID+`"`) {
		t.Errorf("GET body lacks endpoint_id: %s", got.body)
	}
	// A replay of the key, and a batch of messages to the same endpoint: no further endpoint read.
	if r := b.do(t, "POST", "/v1/messages", `{"endpoint_id": "`+ep.ID+`", "payload": {"a": 1}}`, "Idempotency-Key", "k-1"); r.status != http.StatusOK {
		t.Errorf("replay: %d %s", r.status, r.body)
	}
	batch := `{"messages": [` + strings.Repeat(`{"endpoint_id": "`+ep.ID+`", "payload": 1},`, 9) + `{"endpoint_id": "` + ep.ID + `", "payload": 2}]}`
	if r := b.do(t, "POST", "/v1/messages/batch", batch); r.status != http.StatusAccepted {
		t.Errorf("batch: %d %s", r.status, r.body)
	}
	if n := b.eps.calls.Load() - calls; n != 1 {
		t.Errorf("%d endpoint reads for 12 messages to one endpoint, want 1", n)
	}
	// The first message, its replay (the record is still accepted, so it is queued again) and
	// the batch's ten; each to the endpoint by id only.
	envs := prod.Envelopes()
	if len(envs) != 12 {
		t.Errorf("%d copies queued, want 12", len(envs))
	}
	for _, e := range envs {
		if e.EndpointID != ep.ID || e.Target.URL != "" || e.Target.Headers != nil {
			t.Fatalf("copy %+v: want the endpoint id and no target", e)
		}
	}
	if rec, err := records.Get(t.Context(), acc.ID); err != nil || rec.EndpointID != ep.ID {
		t.Errorf("record %+v, %v", rec, err)
	}
}

func TestMessageToEndpointRefused(t *testing.T) {
	t.Parallel()
	b, records, prod := epMsgSetup(t)
	ep := b.create(t, `{"url": "https://hooks.example.com/orders"}`)
	missing := endpoint.NewID(t0)
	tests := []struct {
		name   string
		path   string
		body   string
		status int
		code   string
		paths  []string
	}{
		{"missing endpoint", "/v1/messages", `{"endpoint_id": "` + missing + `", "payload": 1}`, 422, ingest.CodeEndpointNotFound, []string{"endpoint_id"}},
		{"batch with missing endpoints", "/v1/messages/batch", `{"messages": [{"endpoint_id": "` + ep.ID + `", "payload": 1}, {"endpoint_id": "` + missing + `", "payload": 1},
			{"target": {"url": "https://hooks.example.com/x"}, "payload": 1}, {"endpoint_id": "` + missing + `", "payload": 2}]}`,
			422, ingest.CodeEndpointNotFound, []string{"messages[1].endpoint_id", "messages[3].endpoint_id"}},
		{"malformed endpoint id", "/v1/messages", `{"endpoint_id": "ep_1", "payload": 1}`, 400, ingest.CodeValidationFailed, []string{"endpoint_id"}},
		{"target and endpoint", "/v1/messages", `{"endpoint_id": "` + ep.ID + `", "target": {"url": "https://hooks.example.com/x"}, "payload": 1}`, 400, ingest.CodeValidationFailed, []string{"endpoint_id"}},
		{"event type and endpoint", "/v1/messages", `{"event_type": "order.shipped", "endpoint_id": "` + ep.ID + `", "payload": 1}`, 400, ingest.CodeValidationFailed, []string{"event_type"}},
		{"batch with a tenant alone", "/v1/messages/batch", `{"messages": [{"endpoint_id": "` + ep.ID + `", "payload": 1}, {"tenant_id": "acme", "target": {"url": "https://hooks.example.com/x"}, "payload": 1}]}`,
			400, ingest.CodeValidationFailed, []string{"messages[1].tenant_id"}},
	}
	for _, tt := range tests {
		r := b.do(t, "POST", tt.path, tt.body)
		var e ingest.ErrorBody
		_ = json.Unmarshal([]byte(r.body), &e)
		var paths []string
		for _, d := range e.Error.Details {
			paths = append(paths, d.Path)
		}
		if r.status != tt.status || e.Error.Code != tt.code || strings.Join(paths, ",") != strings.Join(tt.paths, ",") {
			t.Errorf("%s: %d %s, want %d %s at %v", tt.name, r.status, r.body, tt.status, tt.code, tt.paths)
		}
	}
	if writes, _ := records.Counts(); writes != 0 || prod.Calls() != 0 {
		t.Errorf("refused requests wrote %d records and sent %d times, want nothing", writes, prod.Calls())
	}

	// The endpoint store failing: 503 with Retry-After, nothing written.
	b.eps.fail = errors.New("table unreachable")
	r := b.do(t, "POST", "/v1/messages", `{"endpoint_id": "`+endpoint.NewID(t0)+`", "payload": 1}`)
	if r.status != http.StatusServiceUnavailable || r.headers["Retry-After"] == "" || !strings.Contains(r.body, ingest.CodeUnavailable) {
		t.Errorf("store down: %d %v %s, want 503 with Retry-After", r.status, r.headers, r.body)
	}
	if writes, _ := records.Counts(); writes != 0 {
		t.Errorf("%d records written with the endpoint store down", writes)
	}
}
