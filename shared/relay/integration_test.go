package relay

import (
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/pushfn/pushfn/shared/ingest/ingesttest"
	"github.com/pushfn/pushfn/shared/message"
)

func TestIntegrationRelay(t *testing.T) {
	t.Parallel()
	c := ingesttest.NewClock(time.Now())
	s := ingesttest.New(t, c.Now)
	h := &Handler{Enqueuer: s.Enqueuer, Now: c.Now, Logger: s.Enqueuer.Logger}
	batch := `{"messages":[` + okMessage + `,` + okMessage + `,` + okMessage + `]}`
	events := []struct {
		raw  string
		keys []string
	}{
		{eventBridge("eb-it-1", okMessage), []string{"eb-it-1"}},
		{eventBridge("eb-it-2", batch), []string{"eb-it-2/0", "eb-it-2/1", "eb-it-2/2"}},
		{sns("sns-it-1", okMessage), []string{"sns-it-1"}},
		{sns("sns-it-2", batch), []string{"sns-it-2/0", "sns-it-2/1", "sns-it-2/2"}},
	}
	want := map[string]bool{}
	for _, ev := range events {
		resp, err := h.Handle(t.Context(), json.RawMessage(ev.raw))
		if err != nil || resp.Error != nil || len(resp.Messages) != len(ev.keys) {
			t.Fatalf("Handle(%.80s) = %+v, %v", ev.raw, resp, err)
		}
		for _, k := range ev.keys {
			want[message.IDForKey(k)] = true
		}
	}
	direct, err := h.Handle(withRequestID(t.Context(), "req-it"), json.RawMessage(batch))
	if err != nil || len(direct.Messages) != 3 || direct.Messages[2].ID != message.IDForKey("req-it/2") {
		t.Fatalf("direct = %+v, %v", direct, err)
	}
	for _, it := range direct.Messages {
		want[it.ID] = true
	}

	// Invalid events: answered, not retried, nothing written.
	for _, raw := range []string{eventBridge("bad", `{"target":{"url":"https://10.0.0.1/"},"payload":1}`), sns("bad", "not json"), `{"messages":[]}`} {
		resp, err := h.Handle(t.Context(), json.RawMessage(raw))
		if err != nil || resp.Error == nil {
			t.Fatalf("invalid event: %+v, %v", resp, err)
		}
	}

	// Events redelivered while their first delivery may still be in flight are sent back for a
	// later retry: nothing is queued twice.
	for _, ev := range events {
		if _, err := h.Handle(t.Context(), json.RawMessage(ev.raw)); !errors.Is(err, ErrRetry) {
			t.Fatalf("redelivery in flight: err = %v, want ErrRetry", err)
		}
	}

	got := ingesttest.Unique(t, s.Drain(t))
	if len(got) != len(want) || s.Items(t) != len(want) {
		t.Fatalf("%d queued, %d items; want %d of each", len(got), s.Items(t), len(want))
	}
	for id := range want {
		r, ok := got[id]
		if !ok {
			t.Fatalf("%s not queued", id)
		}
		if r.Envelope.Target.URL != "https://hooks.example.com/push" || string(r.Envelope.Payload) != `{"user_id":"1","message":"Hello"}` {
			t.Fatalf("queued %s", r.Body)
		}
	}
}
