package relay

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/pushfn/pushfn/shared/endpoint"
	"github.com/pushfn/pushfn/shared/ingest"
	"github.com/pushfn/pushfn/shared/store"
)

// flakyEndpoints is an endpoint store whose reads fail while down is set.
type flakyEndpoints struct {
	*store.MemoryEndpoints
	down atomic.Bool
}

var errDown = errors.New("table unreachable")

func (f *flakyEndpoints) GetEndpoint(ctx context.Context, id string) (endpoint.Record, error) {
	if f.down.Load() {
		return endpoint.Record{}, errDown
	}
	return f.MemoryEndpoints.GetEndpoint(ctx, id)
}

func TestRelayToEndpoints(t *testing.T) {
	t.Parallel()
	b := setup(t)
	eps := &flakyEndpoints{MemoryEndpoints: &store.MemoryEndpoints{}}
	id := endpoint.NewID(t0)
	if _, err := eps.CreateEndpoint(context.Background(), endpoint.Record{Endpoint: endpoint.Endpoint{ID: id, URL: "https://hooks.example.com/orders"}}); err != nil {
		t.Fatal(err)
	}
	b.h.Enqueuer.Endpoints = ingest.NewEndpointCache(eps)
	toEndpoint := func(id string) string { return `{"endpoint_id":"` + id + `","payload":{"n":1}}` }
	missing := endpoint.NewID(t0)

	// EventBridge and SNS events naming an endpoint are queued by endpoint id.
	for name, ev := range map[string]string{
		"eventbridge": eventBridge("eb-1", toEndpoint(id)),
		"sns":         sns("sns-1", `{"messages":[`+toEndpoint(id)+`]}`),
	} {
		resp, err := b.h.Handle(context.Background(), json.RawMessage(ev))
		if err != nil || resp.Error != nil || len(resp.Messages) != 1 || resp.Messages[0].Error != nil {
			t.Fatalf("%s: %+v, %v", name, resp, err)
		}
	}
	envs := b.prod.Envelopes()
	if len(envs) != 2 || envs[0].EndpointID != id || envs[1].EndpointID != id || envs[0].Target.URL != "" {
		t.Fatalf("queued %+v, want two copies to %s", envs, id)
	}

	// A missing endpoint is invalid input: answered, logged, not retried, nothing queued.
	resp, err := b.h.Handle(context.Background(), json.RawMessage(eventBridge("eb-2", `{"messages":[`+toEndpoint(id)+`,`+toEndpoint(missing)+`]}`)))
	if err != nil || resp.Error == nil || resp.Error.Code != ingest.CodeEndpointNotFound || len(resp.Error.Details) != 1 ||
		resp.Error.Details[0].Path != "messages[1].endpoint_id" || len(resp.Messages) != 0 {
		t.Fatalf("missing endpoint: %+v, %v", resp, err)
	}
	if n := len(b.prod.Envelopes()); n != 2 {
		t.Fatalf("%d copies after a refused event, want still 2", n)
	}

	// A store that cannot be read: the source retries the event; nothing of it is queued.
	eps.down.Store(true)
	_, err = b.h.Handle(context.Background(), json.RawMessage(sns("sns-2", toEndpoint(endpoint.NewID(t0)))))
	if !errors.Is(err, ErrRetry) || !strings.Contains(err.Error(), errDown.Error()) {
		t.Fatalf("store down: %v, want ErrRetry", err)
	}
	if n := len(b.prod.Envelopes()); n != 2 {
		t.Fatalf("%d copies after a retried event, want still 2", n)
	}
}
