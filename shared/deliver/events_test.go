package deliver

import (
	"context"
	"encoding/json"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/pushfn/pushfn/shared/message"
	"github.com/pushfn/pushfn/shared/push"
	"github.com/pushfn/pushfn/shared/store"
)

// recordingSender stands in for the network: the sample event's targets are not reachable from
// a test.
type recordingSender struct {
	mu   sync.Mutex
	sent []push.Request
}

func (s *recordingSender) Send(ctx context.Context, r push.Request) push.Result {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sent = append(s.sent, r)
	return push.Result{Outcome: push.Delivered, StatusCode: 200}
}

// TestHandleSampleEvent runs events/sqs-batch.json, the event `pushfn invoke` and the docs use,
// through the handler: every record is a well-formed envelope and is pushed as it says.
func TestHandleSampleEvent(t *testing.T) {
	t.Parallel()
	raw, err := os.ReadFile("../../events/sqs-batch.json")
	if err != nil {
		t.Fatal(err)
	}
	var ev events.SQSEvent
	if err := json.Unmarshal(raw, &ev); err != nil || len(ev.Records) == 0 {
		t.Fatalf("sample event: %d records, %v", len(ev.Records), err)
	}
	mem := &store.Memory{}
	want := map[string]message.Envelope{}
	for _, r := range ev.Records {
		var env message.Envelope
		if err := json.Unmarshal([]byte(r.Body), &env); err != nil {
			t.Fatal(err)
		}
		want[env.ID] = env
		if err := mem.Create(context.Background(), message.Record{ID: env.ID, CreatedAt: time.Now(), UpdatedAt: time.Now()}); err != nil {
			t.Fatal(err)
		}
	}
	sender := &recordingSender{}
	b := newBundle(t, func(h *Handler) { h.Store, h.Sender = mem, sender })
	resp, err := b.h.Handle(context.Background(), ev)
	if err != nil || len(resp.BatchItemFailures) != 0 {
		t.Fatalf("Handle: %+v, %v", resp, err)
	}
	if len(sender.sent) != len(want) {
		t.Fatalf("%d pushes for %d messages", len(sender.sent), len(want))
	}
	for _, r := range sender.sent {
		env := want[r.ID]
		if r.URL != env.Target.URL || string(r.Body) != string(env.Payload) || len(r.Headers) != len(env.Target.Headers) {
			t.Errorf("push %+v, want the envelope %+v", r, env)
		}
		if rec, err := mem.Get(context.Background(), r.ID); err != nil || rec.Status != message.Delivered {
			t.Errorf("%s: %s, %v", r.ID, rec.Status, err)
		}
	}
}
