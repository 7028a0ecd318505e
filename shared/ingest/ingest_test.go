package ingest_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/pushfn/pushfn/shared/ingest"
	"github.com/pushfn/pushfn/shared/ingest/ingesttest"
	"github.com/pushfn/pushfn/shared/message"
	"github.com/pushfn/pushfn/shared/queue"
	"github.com/pushfn/pushfn/shared/store"
)

var t0 = time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC)

// errTableDown is what the fake stores answer for a table that cannot be reached.
var errTableDown = errors.New("fake: table unreachable")

// failingStore fails every Create whose message has the key fail.
type failingStore struct {
	*store.Memory
	fail string
}

func (s failingStore) Create(ctx context.Context, rec message.Record) error {
	if rec.IdempotencyKey == s.fail {
		return errTableDown
	}
	return s.Memory.Create(ctx, rec)
}

type bundle struct {
	store *store.Memory
	prod  *ingesttest.Producer
	clock *ingesttest.Clock
	enq   *ingest.Enqueuer
}

func setup(t *testing.T) *bundle {
	t.Helper()
	b := &bundle{store: &store.Memory{}, prod: &ingesttest.Producer{}, clock: ingesttest.NewClock(t0)}
	b.enq = &ingest.Enqueuer{Store: b.store, Producer: b.prod, Now: b.clock.Now, Logger: slog.New(slog.DiscardHandler)}
	return b
}

func newMessage(key string, payload string) message.Message {
	return message.Message{
		Target:         message.Target{URL: "https://hooks.example.com/push", Headers: map[string]string{"X-Tenant": "acme"}},
		Payload:        json.RawMessage(payload),
		IdempotencyKey: key,
	}
}

func messages(n int, keyPrefix string) []message.Message {
	ms := make([]message.Message, n)
	for i := range ms {
		key := ""
		if keyPrefix != "" {
			key = fmt.Sprintf("%s-%d", keyPrefix, i)
		}
		ms[i] = newMessage(key, fmt.Sprintf(`{"n": %d}`, i))
	}
	return ms
}

func TestEnqueueRecordsThenQueuesOnce(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ms := messages(500, "k")
	ms[7].DelaySeconds = 30
	ms[7].IdempotencyKey = ""
	rs := b.enq.Enqueue(t.Context(), ms)
	calls, entries := b.prod.Calls(), b.prod.Entries()
	if calls != 1 || len(entries) != 500 {
		t.Fatalf("Send called %d times with %d entries, want once with 500", calls, len(entries))
	}
	for i, r := range rs {
		if r.Err != nil || r.Status != message.Accepted || r.Replayed {
			t.Fatalf("result %d = %+v", i, r)
		}
		if ms[i].IdempotencyKey != "" && r.ID != message.IDForKey(ms[i].IdempotencyKey) {
			t.Fatalf("result %d id %s is not derived from its key", i, r.ID)
		}
		var env message.Envelope
		if err := json.Unmarshal([]byte(entries[i].Body), &env); err != nil {
			t.Fatalf("entry %d: %v", i, err)
		}
		if env.ID != r.ID || string(env.Payload) != string(ms[i].Payload) || env.Target.URL != ms[i].Target.URL {
			t.Fatalf("entry %d = %s, want the envelope of message %d", i, entries[i].Body, i)
		}
		rec, err := b.store.Get(t.Context(), r.ID)
		if err != nil || rec.Status != message.Accepted || rec.TargetHost != "hooks.example.com" || rec.Fingerprint == "" {
			t.Fatalf("record %d = %+v, %v", i, rec, err)
		}
	}
	if entries[7].DelaySeconds != 30 {
		t.Fatalf("delay = %d, want 30", entries[7].DelaySeconds)
	}
	if writes, reads := b.store.Counts(); writes != 500 || reads != 500 { // reads: the checks above
		t.Fatalf("store writes = %d, reads = %d", writes, reads)
	}
}

func TestEnqueueReplay(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		advance    time.Duration
		status     message.Status // moved to before the replay; "" leaves it accepted
		change     func(*message.Message)
		wantErr    error
		wantStatus message.Status
		wantSent   int // entries queued by the replay
	}{
		{name: "accepted, at once: queued again", wantStatus: message.Accepted, wantSent: 1},
		{name: "accepted, later: queued again", advance: 2 * time.Minute, wantStatus: message.Accepted, wantSent: 1},
		{name: "delivered", advance: time.Second, status: message.Delivered, wantStatus: message.Delivered},
		{name: "retrying", advance: 2 * time.Minute, status: message.Retrying, wantStatus: message.Retrying},
		{name: "different delay and expiry are a replay", advance: 2 * time.Minute, status: message.Failed, wantStatus: message.Failed,
			change: func(m *message.Message) { m.DelaySeconds = 5; e := t0.Add(time.Hour); m.ExpiresAt = &e }},
		{name: "different payload", advance: 2 * time.Minute, change: func(m *message.Message) { m.Payload = json.RawMessage(`{"n":2}`) }, wantErr: ingest.ErrKeyReused},
		{name: "different header", advance: 2 * time.Minute, change: func(m *message.Message) { m.Target.Headers = nil }, wantErr: ingest.ErrKeyReused},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t)
			m := newMessage("order-42", `{"n":1}`)
			first := b.enq.Enqueue(t.Context(), []message.Message{m})[0]
			if first.Err != nil {
				t.Fatal(first.Err)
			}
			if tt.status != "" {
				_, err := b.store.Finish(t.Context(), first.ID, store.Outcome{Now: t0, Status: tt.status})
				if err != nil {
					t.Fatal(err)
				}
			}
			b.clock.Advance(tt.advance)
			if tt.change != nil {
				tt.change(&m)
			}
			r := b.enq.Enqueue(t.Context(), []message.Message{m})[0]
			if !errors.Is(r.Err, tt.wantErr) || (tt.wantErr == nil) != (r.Err == nil) {
				t.Fatalf("replay error = %v, want %v", r.Err, tt.wantErr)
			}
			if r.ID != first.ID {
				t.Fatalf("replay id = %s, want %s", r.ID, first.ID)
			}
			if tt.wantErr == nil && (!r.Replayed || r.Status != tt.wantStatus) {
				t.Fatalf("replay = %+v, want replayed with status %s", r, tt.wantStatus)
			}
			envs := b.prod.Envelopes()
			if len(envs) != 1+tt.wantSent {
				t.Fatalf("%d entries queued in all, want %d", len(envs), 1+tt.wantSent)
			}
			for _, env := range envs {
				if env.Fingerprint != envs[0].Fingerprint || env.Fingerprint == "" {
					t.Fatalf("copies carry fingerprints %q and %q, want the record's in each", envs[0].Fingerprint, env.Fingerprint)
				}
			}
		})
	}
}

func TestEnqueueReplayOfMarkedRecordQueuesNothing(t *testing.T) {
	t.Parallel()
	b := setup(t)
	m := newMessage("order-42", `{"n":1}`)
	first := b.enq.Enqueue(t.Context(), []message.Message{m})[0]
	replay := b.enq.Enqueue(t.Context(), []message.Message{m})[0]
	if first.Err != nil || replay.Err != nil || !replay.Replayed {
		t.Fatalf("first = %+v, replay = %+v", first, replay)
	}
	writes, _ := b.store.Counts()
	// The first replay queued a copy and marked the record: the next ones know a copy is queued
	// and answer with one refused create, queuing nothing.
	for range 3 {
		r := b.enq.Enqueue(t.Context(), []message.Message{m})[0]
		if r.Err != nil || !r.Replayed || r.Status != message.Accepted {
			t.Fatalf("replay of a marked record = %+v", r)
		}
	}
	if n := len(b.prod.Entries()); n != 2 {
		t.Fatalf("%d copies queued, want 2 (the first request's and the first replay's)", n)
	}
	if after, _ := b.store.Counts(); after-writes != 3 {
		t.Fatalf("3 replays of a marked record made %d writes, want 3 refused creates", after-writes)
	}
}

func TestEnqueueSendFailureRemovesRecords(t *testing.T) {
	t.Parallel()
	b := setup(t)
	failID := message.IDForKey("k-1")
	b.prod.Fail = func(env message.Envelope) bool { return env.ID == failID }
	rs := b.enq.Enqueue(t.Context(), messages(3, "k"))
	if rs[0].Err != nil || rs[2].Err != nil {
		t.Fatalf("results = %+v", rs)
	}
	if !errors.Is(rs[1].Err, ingest.ErrUnavailable) || rs[1].RetryAfter <= 0 {
		t.Fatalf("result 1 = %+v, want ErrUnavailable with a retry delay", rs[1])
	}
	if _, err := b.store.Get(t.Context(), failID); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("record of the unqueued message: %v, want ErrNotFound", err)
	}
	if _, err := b.store.Get(t.Context(), rs[2].ID); err != nil {
		t.Fatal(err)
	}
	// The client retries the failed one with the same key: it is created and queued anew.
	b.prod.Fail = nil
	r := b.enq.Enqueue(t.Context(), messages(3, "k")[1:2])[0]
	if r.Err != nil || r.Replayed || r.ID != failID {
		t.Fatalf("retry = %+v", r)
	}
}

func TestEnqueuePermanentQueueRefusalIsNotRetryable(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.enq.Producer = refusingProducer{}
	r := b.enq.Enqueue(t.Context(), messages(1, "k"))[0]
	if r.Err == nil || errors.Is(r.Err, ingest.ErrUnavailable) || !errors.Is(r.Err, queue.ErrPermanent) || r.RetryAfter != 0 {
		t.Fatalf("result = %+v, want a permanent, non-retryable error", r)
	}
	if ingest.ErrorOf(r.Err).Code != ingest.CodeInternal {
		t.Fatalf("code = %s", ingest.ErrorOf(r.Err).Code)
	}
	if _, err := b.store.Get(t.Context(), r.ID); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("record left behind: %v", err)
	}
}

// refusingProducer refuses every entry as SQS refuses one that is too large.
type refusingProducer struct{}

func (refusingProducer) Send(_ context.Context, entries []queue.Entry) []error {
	errs := make([]error, len(entries))
	for i := range errs {
		errs[i] = &queue.Error{Code: "InvalidParameterValue", Message: "too long", Permanent: true}
	}
	return errs
}

func TestEnqueueStoreFailure(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.enq.Store = failingStore{Memory: b.store, fail: "k-0"}
	rs := b.enq.Enqueue(t.Context(), messages(2, "k"))
	if !errors.Is(rs[0].Err, ingest.ErrUnavailable) || rs[1].Err != nil {
		t.Fatalf("results = %+v", rs)
	}
	if calls, entries := b.prod.Calls(), b.prod.Entries(); calls != 1 || len(entries) != 1 {
		t.Fatalf("sent %d entries in %d calls, want 1 in 1", len(entries), calls)
	}
}

func TestEnqueueConcurrentSameKey(t *testing.T) {
	t.Parallel()
	for range 20 {
		b := setup(t)
		m := newMessage("same", `{"n":1}`)
		var wg sync.WaitGroup
		rs := make([]ingest.Result, 2)
		for i := range rs {
			wg.Go(func() { rs[i] = b.enq.Enqueue(t.Context(), []message.Message{m})[0] })
		}
		wg.Wait()
		if rs[0].ID != rs[1].ID {
			t.Fatalf("ids %s and %s", rs[0].ID, rs[1].ID)
		}
		// One creates and queues; the other finds the record accepted, queues its own copy and
		// marks the record: both succeed, and delivery deduplicates the two copies.
		if entries := b.prod.Entries(); len(entries) != 2 {
			t.Fatalf("%d copies queued, want 2", len(entries))
		}
		if writes, _ := b.store.Counts(); writes != 3 {
			t.Fatalf("%d writes, want 3 (two creates, one refused, and a mark)", writes)
		}
		replayed := 0
		for _, r := range rs {
			if r.Err != nil || r.Status != message.Accepted {
				t.Fatalf("result %+v, want accepted", r)
			}
			if r.Replayed {
				replayed++
			}
		}
		if replayed != 1 {
			t.Fatalf("%d requests replayed, want 1 (the other accepted)", replayed)
		}
		newDeliverer(b).wantDeliveredOnce(t, rs[0].ID, m)
	}
}

func TestItemsOf(t *testing.T) {
	t.Parallel()
	rs := []ingest.Result{
		{ID: "msg_a", Status: message.Accepted, IdempotencyKey: "a"},
		{ID: "msg_b", Status: message.Delivered, Replayed: true},
		{ID: "msg_c", Err: fmt.Errorf("x: %w", ingest.ErrKeyReused)},
		{ID: "msg_d", Err: fmt.Errorf("queue msg_d at arn:aws:sqs:secret-queue: %w", ingest.ErrUnavailable), RetryAfter: 1500 * time.Millisecond},
	}
	body, err := json.Marshal(ingest.ItemsOf(rs))
	if err != nil {
		t.Fatal(err)
	}
	want := `{"messages":[{"id":"msg_a","status":"accepted","idempotency_key":"a","replayed":false},` +
		`{"id":"msg_b","status":"delivered","replayed":true},` +
		`{"id":"msg_c","error":{"code":"idempotency_key_reused","message":"this idempotency key was already used for a different message; use a new key"}},` +
		`{"id":"msg_d","error":{"code":"service_unavailable","message":"the message could not be queued; retry later (with the same idempotency key, if any)"}}]}`
	if string(body) != want {
		t.Fatalf("items =\n%s\nwant\n%s", body, want)
	}
	if got := ingest.RetryAfterSeconds(rs...); got != 2 {
		t.Fatalf("RetryAfterSeconds = %d, want 2", got)
	}
}

// panickyStore panics in Create for the key boom, and in MarkReplayed always.
type panickyStore struct {
	*store.Memory
}

func (s panickyStore) Create(ctx context.Context, rec message.Record) error {
	if rec.IdempotencyKey == "boom" {
		panic("boom")
	}
	return s.Memory.Create(ctx, rec)
}

func (s panickyStore) MarkReplayed(context.Context, string, string, time.Time) (message.Record, error) {
	panic("boom in mark")
}

func TestEnqueuePanicFailsOnlyItsMessage(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.enq.Store = panickyStore{Memory: b.store}
	ms := messages(40, "k")
	ms[17].IdempotencyKey = "boom"
	rs := b.enq.Enqueue(t.Context(), ms)
	for i, r := range rs {
		switch {
		case i == 17 && (r.Err == nil || ingest.ErrorOf(r.Err).Code != ingest.CodeInternal):
			t.Fatalf("result of the panicking message = %+v, want an internal error", r)
		case i != 17 && (r.Err != nil || r.Status != message.Accepted):
			t.Fatalf("result %d = %+v, want accepted", i, r)
		}
	}
	if n := len(b.prod.Entries()); n != 39 {
		t.Fatalf("%d queued, want 39", n)
	}
	// A panic while settling a replay fails that replay alone.
	rs = b.enq.Enqueue(t.Context(), messages(3, "k"))
	for i, r := range rs {
		if r.Err == nil || ingest.ErrorOf(r.Err).Code != ingest.CodeInternal || r.Replayed {
			t.Fatalf("replay %d whose mark panicked = %+v, want an internal error", i, r)
		}
	}
}
