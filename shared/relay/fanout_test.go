package relay

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/pushfn/pushfn/shared/message"
)

// Fan-outs come through every source as through the api: one copy each, carrying the event
// type and tenant, whatever the endpoints; the source's event id keys it, so a redelivered event
// is a replay and fans out no second time.
func TestRelayFanOut(t *testing.T) {
	t.Parallel()
	b := setup(t)
	fanOut := `{"event_type":"order.shipped","tenant_id":"acme","payload":{"n":1}}`
	for name, ev := range map[string]string{
		"eventbridge": eventBridge("eb-fan", fanOut),
		"sns":         sns("sns-fan", `{"messages":[`+fanOut+`]}`),
		"direct":      fanOut,
	} {
		resp, err := b.h.Handle(context.Background(), json.RawMessage(ev))
		if err != nil || resp.Error != nil || len(resp.Messages) != 1 || resp.Messages[0].Error != nil {
			t.Fatalf("%s: %+v, %v", name, resp, err)
		}
	}
	envs := b.prod.Envelopes()
	if len(envs) != 3 {
		t.Fatalf("%d copies queued, want 3", len(envs))
	}
	for _, e := range envs {
		if e.EventType != "order.shipped" || e.TenantID != "acme" || e.EndpointID != "" || e.Target.URL != "" {
			t.Fatalf("copy %+v: want the fan-out's event type and tenant, no other destination", e)
		}
	}
	// The same EventBridge event again: the same id, answered as a replay. Its record is still
	// accepted here (nothing expanded it), so a copy is queued again, as for any message; the
	// expansion's claim lets one copy through.
	id := message.IDForKey("eb-fan")
	resp, err := b.h.Handle(context.Background(), json.RawMessage(eventBridge("eb-fan", fanOut)))
	if err != nil || len(resp.Messages) != 1 || resp.Messages[0].ID != id || resp.Messages[0].Replayed == nil || !*resp.Messages[0].Replayed {
		t.Fatalf("redelivered event: %+v, %v; want a replay of %s", resp, err, id)
	}
	if again := b.prod.Envelopes(); len(again) != 4 || again[3].ID != id {
		t.Fatalf("after the replay, copies %+v", again)
	}
}
