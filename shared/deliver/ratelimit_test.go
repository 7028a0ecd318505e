package deliver

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/pushfn/pushfn/shared/endpoint"
	"github.com/pushfn/pushfn/shared/message"
	"github.com/pushfn/pushfn/shared/ratelimit"
	"github.com/pushfn/pushfn/shared/store"
)

// rlBundle delivers to an endpoint limited to rate per second, its clock at sub into a second,
// with a limiter over slots and a fake producer.
type rlBundle struct {
	*epBundle
	slots    *store.MemorySlots
	producer *fakeProducer
	rc       *capture
	ep       string
	sec      int64 // the clock's second
}

func newRLBundle(t *testing.T, rate int, sub time.Duration) *rlBundle {
	t.Helper()
	b := &rlBundle{epBundle: newEPBundle(t), slots: &store.MemorySlots{}, producer: &fakeProducer{}, rc: newCapture(t)}
	b.clock.now = b.clock.now.Truncate(time.Second).Add(sub)
	b.sec = b.clock.now.Unix()
	b.h.Limiter = ratelimit.New(b.slots)
	b.h.Producer = b.producer
	rec, _ := b.endpoint(t, b.rc.URL+"/limited", func(r *endpoint.Record) { r.RateLimit = &endpoint.RateLimit{PerSecond: rate} })
	b.ep = rec.ID
	return b
}

// carrying returns an SQS record of a new message to the endpoint carrying slot n at rate, on
// its receive-th receive.
func (b *rlBundle) carrying(t *testing.T, n int64, rate, receive int) (events.SQSMessage, string) {
	t.Helper()
	r, id := b.toEndpoint(t, b.ep)
	env, err := decodeEnvelope(r.Body)
	if err != nil {
		t.Fatal(err)
	}
	env.Slot, env.SlotRate = n, rate
	body, _ := json.Marshal(env)
	r.Body = string(body)
	r.Attributes = map[string]string{"ApproximateReceiveCount": string(rune('0' + receive))}
	return r, id
}

func (b *rlBundle) handle(t *testing.T, records ...events.SQSMessage) events.SQSEventResponse {
	t.Helper()
	resp, err := b.h.Handle(context.Background(), events.SQSEvent{Records: records})
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

// A record whose slot starts later than MaxSlotWait is not handed back but queued again, as a
// copy carrying its slot and delayed by the whole seconds until it starts, and acknowledged.
func TestRateLimitFarSlotRequeues(t *testing.T) {
	t.Parallel()
	b := newRLBundle(t, 1, 100*time.Millisecond)
	// Another container holds the slots of the next 5 seconds.
	if _, err := b.slots.ReserveSlots(context.Background(), b.ep, 1, b.sec, 5); err != nil {
		t.Fatal(err)
	}
	r, id := b.toEndpoint(t, b.ep)
	if resp := b.handle(t, r); len(resp.BatchItemFailures) != 0 {
		t.Fatalf("failures %v, want the record acknowledged once its copy is queued", resp.BatchItemFailures)
	}
	sent := b.producer.sent()
	if len(sent) != 1 {
		t.Fatalf("%d copies queued, want 1", len(sent))
	}
	// Slot sec+5 starts 4.9 s after the clock: the copy is to arrive slotLead (2 s) early, so
	// 2 whole seconds; it waits the rest in the function.
	if sent[0].DelaySeconds != 2 {
		t.Errorf("delay %d s, want 2", sent[0].DelaySeconds)
	}
	env, err := decodeEnvelope(sent[0].Body)
	if err != nil || env.ID != id || env.EndpointID != b.ep || env.Fingerprint != fingerprint(id) || env.Slot != b.sec+5 || env.SlotRate != 1 || string(env.Payload) != `{"n":1}` {
		t.Errorf("copy %+v (%v), want message %s holding slot %d at 1/s", env, err, id, b.sec+5)
	}
	if hs, _ := b.rc.got(id); len(hs) != 0 {
		t.Errorf("%d pushes before the slot, want 0", len(hs))
	}
	if st, n := b.status(t, id); st != message.Accepted || n != 0 {
		t.Errorf("record %s after %d attempts, want accepted with none: no attempt before the slot", st, n)
	}
}

// A record whose slot starts within MaxSlotWait waits for it in the function, then is sent.
func TestRateLimitNearSlotWaits(t *testing.T) {
	t.Parallel()
	b := newRLBundle(t, 1, 700*time.Millisecond) // past the usable end: the first slot is sec+1's, 0.3 s on
	r, id := b.toEndpoint(t, b.ep)
	start := time.Now()
	if resp := b.handle(t, r); len(resp.BatchItemFailures) != 0 {
		t.Fatalf("failures %v", resp.BatchItemFailures)
	}
	if waited := time.Since(start); waited < 300*time.Millisecond {
		t.Errorf("sent after %v, before its slot started (0.3 s)", waited)
	}
	if st, n := b.status(t, id); st != message.Delivered || n != 1 {
		t.Errorf("record %s after %d attempts, want delivered after 1", st, n)
	}
	if len(b.producer.sent()) != 0 {
		t.Error("a copy was queued for a slot within MaxSlotWait")
	}
}

// A copy uses the slot it carries when it is of the endpoint's rate, still usable and this is
// its first receive; otherwise it takes a new one. One arriving before its slot is queued again
// with the same slot.
func TestRateLimitCarriedSlot(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name     string
		slot     int64 // after the clock's second's first slot
		rate     int
		receive  int
		reserves int64 // reservations made
		requeued int64 // -1: sent
	}{
		{"usable: used", 1, 5, 1, 0, -1},
		{"receive count unknown: used", 2, 5, 0, 0, -1},
		{"received again: a new slot", 1, 5, 2, 1, -1},
		{"another rate: a new slot", 1, 10, 1, 1, -1},
		{"passed: a new slot", -5, 5, 1, 1, -1},
		// A kept copy retried an hour after it failed carries the slot it waited for then.
		{"retried an hour later: a new slot", -5 * 3600, 5, 1, 1, -1},
		{"early: queued again with it", 5 * 20, 5, 1, 0, 5 * 20},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			b := newRLBundle(t, 5, 500*time.Millisecond)
			r, id := b.carrying(t, b.sec*int64(tc.rate)+tc.slot, tc.rate, tc.receive)
			if resp := b.handle(t, r); len(resp.BatchItemFailures) != 0 {
				t.Fatalf("failures %v", resp.BatchItemFailures)
			}
			if w := b.slots.Writes(); w != tc.reserves {
				t.Errorf("%d reservations, want %d", w, tc.reserves)
			}
			st, _ := b.status(t, id)
			sent := b.producer.sent()
			if tc.requeued < 0 {
				if st != message.Delivered || len(sent) != 0 {
					t.Errorf("record %s, %d copies queued; want delivered, none", st, len(sent))
				}
				return
			}
			if st != message.Accepted || len(sent) != 1 {
				t.Fatalf("record %s, %d copies queued; want accepted, 1", st, len(sent))
			}
			env, _ := decodeEnvelope(sent[0].Body)
			if env.Slot != b.sec*5+tc.requeued || sent[0].DelaySeconds != 17 {
				t.Errorf("queued again with slot %d after %d s, want slot %d after 17 s (2 s before it starts)", env.Slot, sent[0].DelaySeconds, b.sec*5+tc.requeued)
			}
		})
	}
}

// A copy that could not be queued hands its record back, as after a dependency failure, and
// nothing is sent; so does a slot that cannot be reserved.
func TestRateLimitFailuresHandBack(t *testing.T) {
	t.Parallel()
	errQueue := errors.New("queue unreachable")
	for _, tc := range []struct {
		name   string
		adjust func(b *rlBundle)
	}{
		{"copy refused", func(b *rlBundle) { b.producer.err = errQueue }},
		{"no producer", func(b *rlBundle) { b.h.Producer = nil }},
		{"no slot", func(b *rlBundle) { b.h.Limiter = ratelimit.New(downSlots{}) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			b := newRLBundle(t, 1, 100*time.Millisecond)
			if _, err := b.slots.ReserveSlots(context.Background(), b.ep, 1, b.sec, 5); err != nil {
				t.Fatal(err)
			}
			tc.adjust(b)
			r, id := b.toEndpoint(t, b.ep)
			resp := b.handle(t, r)
			if len(resp.BatchItemFailures) != 1 || resp.BatchItemFailures[0].ItemIdentifier != r.MessageId {
				t.Fatalf("failures %v, want the record handed back", resp.BatchItemFailures)
			}
			if d := b.queue.changes()[r.ReceiptHandle]; d != int32(DependencyBaseDelay/time.Second) {
				t.Errorf("visible again in %d s, want %d (a dependency failure)", d, int32(DependencyBaseDelay/time.Second))
			}
			if st, n := b.status(t, id); st != message.Accepted || n != 0 {
				t.Errorf("record %s after %d attempts, want accepted with none", st, n)
			}
			if hs, _ := b.rc.got(id); len(hs) != 0 {
				t.Errorf("%d pushes, want 0", len(hs))
			}
		})
	}
}

var errSlotsDown = errors.New("slot counters unreachable")

type downSlots struct{}

func (downSlots) ReserveSlots(context.Context, string, int, int64, int) (int64, error) {
	return 0, errSlotsDown
}

// slowClaims is a store whose claims take a second of the clock.
type slowClaims struct {
	*store.Memory
	clock *fakeClock
}

func (s slowClaims) Claim(ctx context.Context, id string, c store.Claim) (message.Record, error) {
	s.clock.add(time.Second)
	return s.Memory.Claim(ctx, id, c)
}

// A send whose slot passed while its claim was written is not made: the record says why and the
// copy comes back at once for a new slot.
func TestRateLimitSlotPassedDuringClaim(t *testing.T) {
	t.Parallel()
	b := newRLBundle(t, 5, 100*time.Millisecond)
	b.h.Store = slowClaims{Memory: b.store, clock: b.clock}
	r, id := b.toEndpoint(t, b.ep)
	resp := b.handle(t, r)
	if len(resp.BatchItemFailures) != 1 {
		t.Fatalf("failures %v, want the record handed back", resp.BatchItemFailures)
	}
	if d, ok := b.queue.changes()[r.ReceiptHandle]; !ok || d != 0 {
		t.Errorf("visible again in %d s (set %v), want 0", d, ok)
	}
	rec := b.record(t, id)
	if rec.Status != message.Retrying || rec.LastAttempt == nil || !strings.Contains(rec.LastAttempt.Error, "rate limit slot passed") {
		t.Errorf("record %+v, want retrying, saying its slot passed", rec)
	}
	if hs, _ := b.rc.got(id); len(hs) != 0 {
		t.Errorf("%d pushes, want 0", len(hs))
	}
}

// Without a rate limit, no slot is taken.
func TestRateLimitUnlimitedTakesNoSlot(t *testing.T) {
	t.Parallel()
	b := newRLBundle(t, 1, 100*time.Millisecond)
	open, _ := b.endpoint(t, b.rc.URL+"/open", nil)
	var ev []events.SQSMessage
	for range 5 {
		r, _ := b.toEndpoint(t, open.ID)
		ev = append(ev, r)
	}
	if resp := b.handle(t, ev...); len(resp.BatchItemFailures) != 0 {
		t.Fatalf("failures %v", resp.BatchItemFailures)
	}
	if w := b.slots.Writes(); w != 0 {
		t.Errorf("%d reservations for an endpoint without a limit, want 0", w)
	}
}

// A copy queued to wait for its slot carries the payload's bytes exactly as accepted: the
// target receives what the caller sent, spaces and <, > and & included.
func TestRateLimitRequeueKeepsThePayloadsBytes(t *testing.T) {
	t.Parallel()
	b := newRLBundle(t, 1, 100*time.Millisecond)
	if _, err := b.slots.ReserveSlots(context.Background(), b.ep, 1, b.sec, 5); err != nil {
		t.Fatal(err)
	}
	_, id := b.toEndpoint(t, b.ep)
	const payload = `{ "html" : "<b>&</b>" }`
	body, err := message.EncodeEnvelope(message.Envelope{ID: id, Fingerprint: fingerprint(id), EndpointID: b.ep, Payload: json.RawMessage(payload)})
	if err != nil {
		t.Fatal(err)
	}
	b.handle(t, events.SQSMessage{MessageId: "sqs-raw", ReceiptHandle: "rh-raw", Body: string(body)})
	sent := b.producer.sent()
	if len(sent) != 1 {
		t.Fatalf("%d copies queued, want 1", len(sent))
	}
	env, err := decodeEnvelope(sent[0].Body)
	if err != nil || string(env.Payload) != payload {
		t.Fatalf("the queued copy's payload is %q (%v), want %q", env.Payload, err, payload)
	}
}
