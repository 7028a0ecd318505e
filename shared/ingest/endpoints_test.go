package ingest_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/pushfn/pushfn/shared/endpoint"
	"github.com/pushfn/pushfn/shared/ingest"
	"github.com/pushfn/pushfn/shared/message"
	"github.com/pushfn/pushfn/shared/store"
)

// countingEndpoints counts the reads of an endpoint store, and fails them while down is set.
type countingEndpoints struct {
	*store.MemoryEndpoints
	reads atomic.Int64
	down  atomic.Bool
}

func (c *countingEndpoints) GetEndpoint(ctx context.Context, id string) (endpoint.Record, error) {
	c.reads.Add(1)
	if c.down.Load() {
		return endpoint.Record{}, errTableDown
	}
	return c.MemoryEndpoints.GetEndpoint(ctx, id)
}

// withEndpoints gives b's Enqueuer an endpoint cache over a counting store holding one enabled
// and one disabled endpoint, and returns the store and the two ids.
func withEndpoints(t *testing.T, b *bundle) (eps *countingEndpoints, enabled, disabled string) {
	t.Helper()
	eps = &countingEndpoints{MemoryEndpoints: &store.MemoryEndpoints{}}
	keys, err := endpoint.NewKeyring(strings.Repeat("k", 32))
	if err != nil {
		t.Fatal(err)
	}
	for i, url := range []string{"https://Hooks.Example.com:8443/orders", "https://other.example.com/x"} {
		id := endpoint.NewID(t0)
		rec := endpoint.Record{Endpoint: endpoint.Endpoint{ID: id, URL: url, Disabled: i == 1, CreatedAt: t0, UpdatedAt: t0}}
		rec.Secret = keys.Seal(id, endpoint.GenerateSecret())
		if _, err := eps.CreateEndpoint(context.Background(), rec); err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			enabled = id
		} else {
			disabled = id
		}
	}
	cache := ingest.NewEndpointCache(eps)
	cache.Now = b.clock.Now
	b.enq.Endpoints = cache
	return eps, enabled, disabled
}

func toEndpoint(id, key, payload string) message.Message {
	return message.Message{EndpointID: id, Payload: json.RawMessage(payload), IdempotencyKey: key}
}

func TestCheckEndpoints(t *testing.T) {
	t.Parallel()
	b := setup(t)
	eps, enabled, disabled := withEndpoints(t, b)
	missing := endpoint.NewID(t0)
	ctx := context.Background()
	target := newMessage("", `1`)

	tests := []struct {
		name    string
		msgs    []message.Message
		batch   bool
		paths   []string // the problems' paths; nil: no problem
		unavail bool
	}{
		{"targets only", []message.Message{target}, false, nil, false},
		{"enabled endpoint", []message.Message{toEndpoint(enabled, "", `1`)}, false, nil, false},
		{"disabled endpoint is accepted", []message.Message{toEndpoint(disabled, "", `1`)}, false, nil, false},
		{"missing endpoint", []message.Message{toEndpoint(missing, "", `1`)}, false, []string{"endpoint_id"}, false},
		{"batch: every message naming a missing endpoint", []message.Message{toEndpoint(missing, "", `1`), target, toEndpoint(enabled, "", `2`), toEndpoint(missing, "", `3`)},
			true, []string{"messages[0].endpoint_id", "messages[3].endpoint_id"}, false},
	}
	for _, tt := range tests {
		err := b.enq.CheckEndpoints(ctx, tt.msgs, tt.batch)
		var me *ingest.MissingEndpointsError
		switch {
		case tt.paths == nil && err != nil:
			t.Errorf("%s: %v, want nil", tt.name, err)
		case tt.paths != nil && (!errors.As(err, &me) || !errors.Is(err, ingest.ErrEndpointNotFound)):
			t.Errorf("%s: %v, want a *MissingEndpointsError", tt.name, err)
		case tt.paths != nil:
			var got []string
			for _, p := range me.Problems {
				got = append(got, p.Path())
			}
			if strings.Join(got, ",") != strings.Join(tt.paths, ",") {
				t.Errorf("%s: problems at %v, want %v", tt.name, got, tt.paths)
			}
			body := ingest.MissingEndpointsBody(me)
			if body.Error.Code != ingest.CodeEndpointNotFound || len(body.Error.Details) != len(tt.paths) || body.Error.Details[0].Field != "endpoint_id" {
				t.Errorf("%s: body %+v", tt.name, body)
			}
		}
	}
	// Three endpoints, each read once: the cache answers every later check, the missing one too.
	if n := eps.reads.Load(); n != 3 {
		t.Errorf("%d endpoint reads, want 3", n)
	}

	// A store that cannot be read makes the check unavailable (503), not a 422.
	b2 := setup(t)
	eps2, enabled2, _ := withEndpoints(t, b2)
	eps2.down.Store(true)
	if err := b2.enq.CheckEndpoints(ctx, []message.Message{toEndpoint(enabled2, "", `1`)}, false); !errors.Is(err, ingest.ErrUnavailable) {
		t.Errorf("check with the store down: %v, want ErrUnavailable", err)
	}
	eps2.down.Store(false)
	if err := b2.enq.CheckEndpoints(ctx, []message.Message{toEndpoint(enabled2, "", `1`)}, false); err != nil {
		t.Errorf("check once the store is back: %v (a failed read must not be kept)", err)
	}
	if writes, _ := b2.store.Counts(); writes != 0 || b2.prod.Calls() != 0 {
		t.Errorf("a check wrote %d records and sent %d times, want nothing", writes, b2.prod.Calls())
	}
}

func TestEnqueueToEndpoint(t *testing.T) {
	t.Parallel()
	b := setup(t)
	eps, enabled, _ := withEndpoints(t, b)
	ctx := context.Background()
	const n = 50
	msgs := make([]message.Message, n)
	for i := range msgs {
		msgs[i] = toEndpoint(enabled, "", `{"n":1}`)
	}
	msgs[0].IdempotencyKey = "ep-key"
	if err := b.enq.CheckEndpoints(ctx, msgs, true); err != nil {
		t.Fatal(err)
	}
	rs := b.enq.Enqueue(ctx, msgs)
	for i, r := range rs {
		if r.Err != nil || r.Status != message.Accepted {
			t.Fatalf("result %d: %+v", i, r)
		}
	}
	// The api's happy path: one endpoint read for the check and the 50 records together.
	if got := eps.reads.Load(); got != 1 {
		t.Errorf("%d endpoint reads for %d messages to one endpoint, want 1", got, n)
	}
	rec, err := b.store.Get(ctx, rs[0].ID)
	if err != nil {
		t.Fatal(err)
	}
	fp, _ := message.Fingerprint(msgs[0])
	if rec.EndpointID != enabled || rec.TargetHost != "hooks.example.com" || rec.Fingerprint != fp {
		t.Errorf("record %+v: want endpoint %s, target_host hooks.example.com, the message's fingerprint", rec, enabled)
	}
	envs := b.prod.Envelopes()
	if len(envs) != n {
		t.Fatalf("%d envelopes queued, want %d", len(envs), n)
	}
	for _, e := range b.prod.Entries() {
		if strings.Contains(e.Body, `"target"`) || strings.Contains(e.Body, "whsec_") || strings.Contains(e.Body, "hooks.example.com") {
			t.Fatalf("an envelope carries a target, a secret or the endpoint's URL: %s", e.Body)
		}
	}
	if envs[0].EndpointID != enabled || envs[0].Fingerprint != fp {
		t.Errorf("envelope %+v: want the endpoint id and the record's fingerprint", envs[0])
	}

	// The same key with the same endpoint and payload is a replay; with another endpoint, a reuse.
	again := b.enq.Enqueue(ctx, []message.Message{msgs[0]})[0]
	if again.Err != nil || !again.Replayed || again.ID != rs[0].ID {
		t.Errorf("replay: %+v", again)
	}
	other := toEndpoint(endpoint.NewID(t0), "ep-key", `{"n":1}`)
	if _, err := eps.CreateEndpoint(ctx, endpoint.Record{Endpoint: endpoint.Endpoint{ID: other.EndpointID, URL: "https://x.example/"}}); err != nil {
		t.Fatal(err)
	}
	if r := b.enq.Enqueue(ctx, []message.Message{other})[0]; !errors.Is(r.Err, ingest.ErrKeyReused) {
		t.Errorf("the key with another endpoint: %+v, want ErrKeyReused", r)
	}
}

func TestEnqueueEndpointDeletedAfterCheck(t *testing.T) {
	t.Parallel()
	b := setup(t)
	eps, enabled, _ := withEndpoints(t, b)
	ctx := context.Background()
	msg := toEndpoint(enabled, "", `1`)
	if err := b.enq.CheckEndpoints(ctx, []message.Message{msg}, false); err != nil {
		t.Fatal(err)
	}
	// The endpoint goes, and the cached answer runs out, between the check and the record.
	if err := eps.DeleteEndpoint(ctx, enabled, 1); err != nil {
		t.Fatal(err)
	}
	b.clock.Advance(endpoint.DefaultCacheTTL)
	r := b.enq.Enqueue(ctx, []message.Message{msg})[0]
	if !errors.Is(r.Err, ingest.ErrEndpointNotFound) || ingest.ErrorOf(r.Err).Code != ingest.CodeEndpointNotFound {
		t.Fatalf("result %+v, want ErrEndpointNotFound", r)
	}
	if writes, _ := b.store.Counts(); writes != 0 || b.prod.Calls() != 0 {
		t.Errorf("%d writes and %d sends for a message to a deleted endpoint, want none", writes, b.prod.Calls())
	}
}

// A client whose POST to an endpoint timed out retries it with its key after the endpoint was
// deleted: the message was accepted, so the retry is a replay with its id, not a 422; a new key
// to the deleted endpoint is still refused.
func TestReplayAfterTheEndpointWasDeleted(t *testing.T) {
	t.Parallel()
	b := setup(t)
	eps, enabled, _ := withEndpoints(t, b)
	ctx := context.Background()
	msg := toEndpoint(enabled, "order-7", `{"n":7}`)
	first := b.enq.Enqueue(ctx, []message.Message{msg})[0]
	if first.Err != nil {
		t.Fatal(first.Err)
	}
	if err := eps.DeleteEndpoint(ctx, enabled, 1); err != nil {
		t.Fatal(err)
	}
	b.clock.Advance(endpoint.DefaultCacheTTL)
	if err := b.enq.CheckEndpoints(ctx, []message.Message{msg}, false); err != nil {
		t.Fatalf("check of the retry: %v, want it let through", err)
	}
	again := b.enq.Enqueue(ctx, []message.Message{msg})[0]
	if again.Err != nil || !again.Replayed || again.ID != first.ID {
		t.Errorf("retry after the endpoint was deleted: %+v, want a replay of %s", again, first.ID)
	}
	var missing *ingest.MissingEndpointsError
	if err := b.enq.CheckEndpoints(ctx, []message.Message{toEndpoint(enabled, "order-8", `{"n":8}`)}, false); !errors.As(err, &missing) {
		t.Errorf("a new key to the deleted endpoint: %v, want it refused", err)
	}
}
