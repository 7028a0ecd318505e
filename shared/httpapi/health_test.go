package httpapi

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pushfn/pushfn/shared/endpoint"
	"github.com/pushfn/pushfn/shared/opevent"
)

// TestEndpointDisabledForFailingShownAndReenabled: an endpoint the deliver function disabled
// shows disabled_reason "failing", disabled_at and failing_since; PATCH {"disabled": false}
// re-enables it, clearing all three, so it starts healthy.
func TestEndpointDisabledForFailingShownAndReenabled(t *testing.T) {
	t.Parallel()
	b := epSetup(t)
	c := decode[endpoint.Endpoint](t, b.do(t, "POST", "/v1/endpoints", `{"url": "https://hooks.example.com/a"}`))
	if strings.Contains(b.do(t, "GET", "/v1/endpoints/"+c.ID, "").body, "failing_since") {
		t.Fatal("a healthy endpoint shows failing_since")
	}
	ctx := context.Background()
	since, at := t0.Add(time.Minute), t0.Add(time.Hour)
	if _, ok, err := b.mem.MarkEndpointFailing(ctx, c.ID, since); err != nil || !ok {
		t.Fatalf("mark failing: %t, %v", ok, err)
	}
	if _, ok, err := b.mem.DisableFailingEndpoint(ctx, c.ID, since, at); err != nil || !ok {
		t.Fatalf("disable: %t, %v", ok, err)
	}
	g := decode[endpoint.Endpoint](t, b.do(t, "GET", "/v1/endpoints/"+c.ID, ""))
	if !g.Disabled || g.DisabledReason != endpoint.ReasonFailing || g.DisabledAt == nil || !g.DisabledAt.Equal(at) ||
		g.FailingSince == nil || !g.FailingSince.Equal(since) {
		t.Fatalf("GET of an endpoint disabled for failing: %+v", g)
	}

	p := b.do(t, "PATCH", "/v1/endpoints/"+c.ID, `{"disabled": false}`)
	if p.status != 200 {
		t.Fatalf("re-enable = %d %s", p.status, p.body)
	}
	for _, field := range []string{"failing_since", "disabled_reason", "disabled_at"} {
		if strings.Contains(p.body, field) {
			t.Errorf("re-enabled endpoint shows %s: %s", field, p.body)
		}
	}
	if got, err := b.mem.GetEndpoint(ctx, c.ID); err != nil || got.Disabled || got.FailingSince != nil || got.DisabledAt != nil || got.DisabledReason != "" {
		t.Errorf("stored after re-enabling: %+v, %v", got.Endpoint, err)
	}
	if p := b.do(t, "PATCH", "/v1/endpoints/"+c.ID, `{"failing_since": null}`); p.status != 422 && p.status != 400 {
		t.Errorf("PATCH of failing_since = %d %s, want a refusal", p.status, p.body)
	}
}

// TestEndpointPatchMeetsHealthWrite: a health write between a PATCH's read and its write makes
// the PATCH read again and reapply itself: both changes are kept.
func TestEndpointPatchMeetsHealthWrite(t *testing.T) {
	t.Parallel()
	b := epSetup(t)
	c := decode[endpoint.Endpoint](t, b.do(t, "POST", "/v1/endpoints", `{"url": "https://hooks.example.com/a"}`))
	since := t0.Add(time.Minute)
	b.eps.beforeUpdate = func(n int64) {
		if n == 1 {
			if _, ok, err := b.mem.MarkEndpointFailing(context.Background(), c.ID, since); err != nil || !ok {
				t.Errorf("mark failing: %t, %v", ok, err)
			}
		}
	}
	p := b.do(t, "PATCH", "/v1/endpoints/"+c.ID, `{"description": "orders"}`)
	got := decode[endpoint.Endpoint](t, p)
	if p.status != 200 || got.Description != "orders" || got.FailingSince == nil || !got.FailingSince.Equal(since) || b.eps.updates.Load() != 2 {
		t.Fatalf("PATCH meeting a health write = %d %s after %d writes; want the description and failing_since, 2 writes", p.status, p.body, b.eps.updates.Load())
	}
}

// recordedEvents keeps what the routes publish and how often they flush.
type recordedEvents struct {
	mu      sync.Mutex
	events  []opevent.Event
	flushes int
}

func (r *recordedEvents) Publish(e opevent.Event) {
	r.mu.Lock()
	r.events = append(r.events, e)
	r.mu.Unlock()
}
func (r *recordedEvents) Flush(context.Context) { r.mu.Lock(); r.flushes++; r.mu.Unlock() }

// Enabling a disabled endpoint again publishes one pushfn.endpoint.enabled, flushed before the
// answer; disabling it, or changing an enabled one, publishes nothing.
func TestEndpointEnabledEvent(t *testing.T) {
	t.Parallel()
	b := epSetup(t)
	ev := &recordedEvents{}
	b.h.Events = ev
	ep := b.create(t, `{"url": "https://hooks.example.com/orders", "tenant_id": "acme"}`)
	for _, body := range []string{`{"disabled": true}`, `{"description": "still off"}`, `{"disabled": false}`, `{"description": "on"}`} {
		if r := b.do(t, "PATCH", PathEndpoints+"/"+ep.ID, body); r.status != http.StatusOK {
			t.Fatalf("PATCH %s: %d %s", body, r.status, r.body)
		}
	}
	if len(ev.events) != 1 || ev.flushes != 1 {
		t.Fatalf("%d events, %d flushes; want 1 and 1: %+v", len(ev.events), ev.flushes, ev.events)
	}
	e := ev.events[0]
	d, ok := e.Detail.(opevent.EndpointEnable)
	if e.DetailType != opevent.EndpointEnabled || !ok || d.EndpointID != ep.ID || d.TenantID != "acme" || d.DisabledReason != "manual" || d.EnabledAt.IsZero() {
		t.Fatalf("event %+v", e)
	}
}
