package relay

import (
	"encoding/json"
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

	// Redelivered events are replays, answered at once: the first redelivery of each queues one
	// more copy (it cannot know whether the first delivery's was queued; delivery deduplicates)
	// and marks the record, so the second queues nothing.
	for range 2 {
		for _, ev := range events {
			resp, err := h.Handle(t.Context(), json.RawMessage(ev.raw))
			if err != nil || len(resp.Messages) != len(ev.keys) {
				t.Fatalf("redelivery = %+v, %v", resp, err)
			}
			for _, it := range resp.Messages {
				if it.Error != nil || it.Replayed == nil || !*it.Replayed || it.Status != message.Accepted {
					t.Fatalf("redelivered item = %+v, want replayed", it)
				}
			}
		}
	}

	copies := map[string][]ingesttest.Received{}
	for _, r := range s.Drain(t) {
		copies[r.Envelope.ID] = append(copies[r.Envelope.ID], r)
	}
	if len(copies) != len(want) || s.Items(t) != len(want) {
		t.Fatalf("%d queued, %d items; want %d of each", len(copies), s.Items(t), len(want))
	}
	redelivered := map[string]bool{}
	for _, ev := range events {
		for _, k := range ev.keys {
			redelivered[message.IDForKey(k)] = true
		}
	}
	for id := range want {
		rs := copies[id]
		n := 1
		if redelivered[id] {
			n = 2
		}
		if len(rs) != n {
			t.Fatalf("%s queued %d times, want %d", id, len(rs), n)
		}
		for _, r := range rs {
			if r.Envelope.Target.URL != "https://hooks.example.com/push" || string(r.Envelope.Payload) != `{"user_id":"1","message":"Hello"}` ||
				r.Envelope.Fingerprint == "" || r.Envelope.Fingerprint != rs[0].Envelope.Fingerprint {
				t.Fatalf("queued %s", r.Body)
			}
		}
	}
}
