package relay

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/lambdacontext"

	"github.com/pushfn/pushfn/shared/ingest"
	"github.com/pushfn/pushfn/shared/ingest/ingesttest"
	"github.com/pushfn/pushfn/shared/message"
	"github.com/pushfn/pushfn/shared/store"
)

var t0 = time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC)

type bundle struct {
	store *store.Memory
	prod  *ingesttest.Producer
	clock *ingesttest.Clock
	h     *Handler
}

func setup(t *testing.T) *bundle {
	t.Helper()
	quiet := slog.New(slog.DiscardHandler)
	b := &bundle{store: &store.Memory{}, prod: &ingesttest.Producer{}, clock: ingesttest.NewClock(t0)}
	b.h = &Handler{
		Enqueuer: &ingest.Enqueuer{Store: b.store, Producer: b.prod, Now: b.clock.Now, Logger: quiet},
		Now:      b.clock.Now,
		Logger:   quiet,
	}
	return b
}

const okMessage = `{"target":{"url":"https://hooks.example.com/push"},"payload":{"user_id":"1","message":"Hello"}}`

func eventBridge(id, detail string) string {
	return `{"version":"0","id":"` + id + `","detail-type":"push","source":"acme.orders","account":"123456789012",` +
		`"time":"2026-11-24T10:00:00Z","region":"eu-west-1","resources":[],"detail":` + detail + `}`
}

func sns(id, msg string) string {
	b, _ := json.Marshal(msg)
	return `{"Records":[{"EventVersion":"1.0","EventSubscriptionArn":"arn:aws:sns:eu-west-1:123456789012:push:x","EventSource":"aws:sns",` +
		`"Sns":{"Type":"Notification","MessageId":"` + id + `","TopicArn":"arn:aws:sns:eu-west-1:123456789012:push","Subject":"",` +
		`"Message":` + string(b) + `,"Timestamp":"2026-11-24T10:00:00Z","MessageAttributes":{}}}]}`
}

func withRequestID(ctx context.Context, id string) context.Context {
	return lambdacontext.NewContext(ctx, &lambdacontext.LambdaContext{AwsRequestID: id})
}

func TestRelayAccepts(t *testing.T) {
	t.Parallel()
	batch2 := `{"messages":[` + okMessage + `,` + strings.Replace(okMessage, `"payload"`, `"idempotency_key":"own","payload"`, 1) + `]}`
	longID := strings.Repeat("e", 260)
	tests := []struct {
		name  string
		ctx   func(context.Context) context.Context
		event string
		keys  []string // the idempotency keys the messages end up with; "" for none
	}{
		{"eventbridge message", nil, eventBridge("eb-1", okMessage), []string{"eb-1"}},
		{"eventbridge batch", nil, eventBridge("eb-2", batch2), []string{"eb-2/0", "own"}},
		{"eventbridge batch of one", nil, eventBridge("eb-3", `{"messages":[`+okMessage+`]}`), []string{"eb-3/0"}},
		{"sns message", nil, sns("sns-1", okMessage), []string{"sns-1"}},
		{"sns batch", nil, sns("sns-2", batch2), []string{"sns-2/0", "own"}},
		{"direct message", func(c context.Context) context.Context { return withRequestID(c, "req-1") }, okMessage, []string{"req-1"}},
		{"direct batch", func(c context.Context) context.Context { return withRequestID(c, "req-2") }, batch2, []string{"req-2/0", "own"}},
		{"direct without a request id", nil, okMessage, []string{""}},
		{"long event id", nil, eventBridge(longID, okMessage), []string{"sha256:" + sha(longID)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t)
			ctx := t.Context()
			if tt.ctx != nil {
				ctx = tt.ctx(ctx)
			}
			resp, err := b.h.Handle(ctx, json.RawMessage(tt.event))
			if err != nil || resp.Error != nil {
				t.Fatalf("Handle = %+v, %v", resp, err)
			}
			calls, sent := b.prod.Calls(), b.prod.Envelopes()
			if len(resp.Messages) != len(tt.keys) || calls != 1 || len(sent) != len(tt.keys) {
				t.Fatalf("%d items, %d sent in %d calls, want %d in 1", len(resp.Messages), len(sent), calls, len(tt.keys))
			}
			for i, key := range tt.keys {
				it := resp.Messages[i]
				if it.IdempotencyKey != key || it.Status != message.Accepted || it.Error != nil {
					t.Fatalf("item %d = %+v, want key %q", i, it, key)
				}
				if key != "" && it.ID != message.IDForKey(key) {
					t.Fatalf("item %d id %s not derived from %q", i, it.ID, key)
				}
				if sent[i].ID != it.ID {
					t.Fatalf("queued %s, want %s", sent[i].ID, it.ID)
				}
			}
		})
	}
}

func sha(s string) string {
	k := withDefaultKeys([]message.Message{{}}, false, s)[0].IdempotencyKey
	return strings.TrimPrefix(k, "sha256:")
}

func TestRelayRedeliveredEventIsNotPushedTwice(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ev := json.RawMessage(sns("sns-9", okMessage))
	if _, err := b.h.Handle(t.Context(), ev); err != nil {
		t.Fatal(err)
	}
	id := message.IDForKey("sns-9")
	if _, err := b.store.Finish(t.Context(), id, store.Outcome{Now: t0, Status: message.Delivered}); err != nil {
		t.Fatal(err)
	}
	b.clock.Advance(2 * time.Minute)
	resp, err := b.h.Handle(t.Context(), ev)
	if err != nil || len(resp.Messages) != 1 || resp.Messages[0].Replayed == nil || !*resp.Messages[0].Replayed {
		t.Fatalf("redelivery = %+v, %v", resp, err)
	}
	if n := len(b.prod.Envelopes()); n != 1 {
		t.Fatalf("%d queued, want 1", n)
	}
}

func TestRelayRefusesInvalidInputWithoutRetry(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, event, code, field string
	}{
		{"eventbridge detail not a message", eventBridge("e", `{"hello":"world"}`), ingest.CodeValidationFailed, "hello"},
		{"eventbridge private target", eventBridge("e", strings.Replace(okMessage, "hooks.example.com", "169.254.169.254", 1)), ingest.CodeValidationFailed, "target.url"},
		{"sns message not JSON", sns("s", "hello"), ingest.CodeInvalidJSON, "body"},
		{"sns batch with a bad message", sns("s", `{"messages":[`+okMessage+`,{"payload":1}]}`), ingest.CodeValidationFailed, "messages[1].target"},
		{"direct empty batch", `{"messages":[]}`, ingest.CodeValidationFailed, "messages"},
		{"direct string", `"push"`, ingest.CodeValidationFailed, "body"},
		{"sqs event", `{"Records":[{"eventSource":"aws:sqs","body":"{}"}]}`, ingest.CodeValidationFailed, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t)
			resp, err := b.h.Handle(t.Context(), json.RawMessage(tt.event))
			if err != nil {
				t.Fatalf("invalid input returned an error, so the source would retry it: %v", err)
			}
			if resp.Error == nil || resp.Error.Code != tt.code || len(resp.Messages) != 0 {
				t.Fatalf("response = %+v, want error %s", resp, tt.code)
			}
			if tt.field != "" && (len(resp.Error.Details) == 0 || resp.Error.Details[0].Path != tt.field) {
				t.Fatalf("details = %+v, want %s first", resp.Error.Details, tt.field)
			}
			if w, r := b.store.Counts(); w != 0 || r != 0 || b.prod.Calls() != 0 {
				t.Fatalf("store %d/%d, producer %d calls", w, r, b.prod.Calls())
			}
		})
	}
}

func TestRelayKeyReusedIsNotRetried(t *testing.T) {
	t.Parallel()
	b := setup(t)
	if _, err := b.h.Handle(t.Context(), json.RawMessage(eventBridge("same", okMessage))); err != nil {
		t.Fatal(err)
	}
	other := strings.Replace(okMessage, `"Hello"`, `"Bye"`, 1)
	resp, err := b.h.Handle(t.Context(), json.RawMessage(eventBridge("same", other)))
	if err != nil || resp.Messages[0].Error == nil || resp.Messages[0].Error.Code != ingest.CodeKeyReused {
		t.Fatalf("= %+v, %v", resp, err)
	}
}

func TestRelayDependencyFailureIsRetried(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.prod.Fail = func(message.Envelope) bool { return true }
	resp, err := b.h.Handle(t.Context(), json.RawMessage(eventBridge("e-1", okMessage)))
	if !errors.Is(err, ErrRetry) {
		t.Fatalf("err = %v, want ErrRetry", err)
	}
	if resp.Messages[0].Error == nil || resp.Messages[0].Error.Code != ingest.CodeUnavailable {
		t.Fatalf("resp = %+v", resp)
	}
	if _, err := b.store.Get(t.Context(), message.IDForKey("e-1")); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("record left: %v", err)
	}
	// The retry of the event succeeds once the queue is back.
	b.prod.Fail = nil
	if _, err := b.h.Handle(t.Context(), json.RawMessage(eventBridge("e-1", okMessage))); err != nil {
		t.Fatal(err)
	}
	if n := len(b.prod.Envelopes()); n != 1 {
		t.Fatalf("%d queued", n)
	}
}
