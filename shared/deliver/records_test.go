package deliver

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/pushfn/pushfn/shared/config"
	"github.com/pushfn/pushfn/shared/message"
	"github.com/pushfn/pushfn/shared/push"
	"github.com/pushfn/pushfn/shared/store"
)

// errThrottled stands for DynamoDB's throttling and transient errors.
var errThrottled = errors.New("ProvisionedThroughputExceededException: rate of requests exceeds the allowed throughput")

// flakyStore is a store.Memory whose first claims or result writes fail as a throttled or
// unreachable DynamoDB fails them.
type flakyStore struct {
	*store.Memory
	mu          sync.Mutex
	claimFails  int // claims still to fail
	finishFails int // result writes still to fail
	finishes    int // result writes asked for
}

func (f *flakyStore) take(n *int) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if *n > 0 {
		*n--
		return true
	}
	return false
}

func (f *flakyStore) Claim(ctx context.Context, id string, c store.Claim) (message.Record, error) {
	if f.take(&f.claimFails) {
		return message.Record{}, fmt.Errorf("claim %s: %w", id, errThrottled)
	}
	return f.Memory.Claim(ctx, id, c)
}

func (f *flakyStore) Finish(ctx context.Context, id string, o store.Outcome) (message.Record, error) {
	f.mu.Lock()
	f.finishes++
	f.mu.Unlock()
	if f.take(&f.finishFails) {
		return message.Record{}, fmt.Errorf("finish %s: %w", id, errThrottled)
	}
	return f.Memory.Finish(ctx, id, o)
}

// senderFunc runs a function around a real send.
type senderFunc func(ctx context.Context, r push.Request) push.Result

func (f senderFunc) Send(ctx context.Context, r push.Request) push.Result { return f(ctx, r) }

func handle(t *testing.T, b *bundle, recs ...events.SQSMessage) events.SQSEventResponse {
	t.Helper()
	resp, err := b.h.Handle(context.Background(), events.SQSEvent{Records: recs})
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

// A 2xx whose result write meets a few throttling errors is recorded by trying the write again,
// not handed back to SQS to be POSTed a second time once its lease runs out.
func TestHandleResultWriteOutlastsThrottling(t *testing.T) {
	t.Parallel()
	b := newBundle(t, nil)
	flaky := &flakyStore{Memory: b.store, finishFails: 4}
	b.h.Store = flaky
	tg := newTarget(t, 200, nil, 0)
	rec, id := b.record(t, tg.URL)
	resp := handle(t, b, rec)
	if len(resp.BatchItemFailures) != 0 {
		// What SQS would do with it: deliver it again, here after the lease has run out.
		b.h.Now = func() time.Time { return time.Now().Add(time.Hour) }
		handle(t, b, rec)
	}
	if n := tg.count(id); n != 1 {
		t.Errorf("target got %d POSTs, want 1", n)
	}
	if status, attempts := b.status(t, id); status != message.Delivered || attempts != 1 {
		t.Errorf("record %s after %d attempts, want delivered after 1", status, attempts)
	}
	if flaky.finishes != 5 {
		t.Errorf("%d result writes, want 5 (4 throttled, then the one that succeeded)", flaky.finishes)
	}
}

// A record handed back because the store could not be reached becomes visible again after a few
// seconds, growing with its receive count, never after the queue's whole visibility timeout.
func TestHandleDependencyFailureBacksOffBriefly(t *testing.T) {
	t.Parallel()
	tg := newTarget(t, 200, nil, 0)
	for _, tc := range []struct {
		receives string
		want     int32
	}{{"", 2}, {"1", 2}, {"2", 4}, {"4", 16}, {"9", 30}} {
		b := newBundle(t, nil)
		b.h.Store = &flakyStore{Memory: b.store, claimFails: 1}
		rec, id := b.record(t, tg.URL)
		rec.Attributes = map[string]string{"ApproximateReceiveCount": tc.receives}
		resp := handle(t, b, rec)
		if got := failures(resp); !slices.Equal(got, []string{rec.MessageId}) {
			t.Errorf("receive %q: failures %v, want the record handed back", tc.receives, got)
		}
		if v, ok := b.queue.changes()[rec.ReceiptHandle]; !ok || v != tc.want {
			t.Errorf("receive %q: visibility %d (changed %v), want %d s", tc.receives, v, ok, tc.want)
		}
		if tg.count(id) != 0 {
			t.Errorf("receive %q: sent without a claim", tc.receives)
		}
	}
}

// A worker whose lease was taken over during its send does not acknowledge its copy while the
// record still waits for delivery: the copy comes back when the new holder's lease ends.
func TestHandleLeaseLostIsNotAcknowledged(t *testing.T) {
	t.Parallel()
	b := newBundle(t, nil)
	tg := newTarget(t, 503, nil, 0)
	var takeover time.Time
	real := b.h.Sender
	b.h.Sender = senderFunc(func(ctx context.Context, r push.Request) push.Result {
		res := real.Send(ctx, r)
		// Meanwhile this worker's lease ran out and another worker claimed the record.
		takeover = time.Now().Add(10 * time.Minute)
		if _, err := b.store.Claim(ctx, r.ID, store.Claim{Now: takeover, Lease: time.Hour, Token: "other worker"}); err != nil {
			t.Error(err)
		}
		return res
	})
	rec, id := b.record(t, tg.URL)
	resp := handle(t, b, rec)
	if got := failures(resp); !slices.Equal(got, []string{rec.MessageId}) {
		t.Fatalf("failures %v, want the record handed back (its message is still to be delivered)", got)
	}
	want := time.Until(takeover.Add(time.Hour)).Seconds()
	if v := b.queue.changes()[rec.ReceiptHandle]; float64(v) < want-60 || float64(v) > want+60 {
		t.Errorf("visibility %d s, want about %.0f s: when the other worker's lease ends", v, want)
	}
	if status, _ := b.status(t, id); status != message.Delivering {
		t.Errorf("record %s, want still delivering under the other worker", status)
	}
}

// A malformed copy under a good message's id never changes that message's record unless it
// proves to be the record's own copy, so the good copy that follows is still delivered.
func TestHandleMalformedCopyLeavesItsMessage(t *testing.T) {
	t.Parallel()
	b := newBundle(t, nil)
	tg := newTarget(t, 200, nil, 0)
	good, id := b.record(t, tg.URL)
	noTarget := b.copyOf(t, id, "", "")
	wrongPrint := b.copyOf(t, id, "sha256:earlier", "")
	garbled := events.SQSMessage{MessageId: "sqs-garbled", ReceiptHandle: "rh-garbled", Body: `{"id":"` + id + `","target":5}`}
	for _, bad := range []events.SQSMessage{noTarget, wrongPrint, garbled} {
		if resp := handle(t, b, bad); len(resp.BatchItemFailures) != 0 {
			t.Errorf("malformed copy %s handed back, want it acknowledged", bad.MessageId)
		}
		if status, attempts := b.status(t, id); status != message.Accepted || attempts != 0 {
			t.Fatalf("after malformed copy %s: record %s after %d attempts, want accepted, untouched", bad.MessageId, status, attempts)
		}
	}
	if resp := handle(t, b, good); len(resp.BatchItemFailures) != 0 {
		t.Fatalf("good copy handed back: %v", resp)
	}
	if status, _ := b.status(t, id); status != message.Delivered || tg.count(id) != 1 {
		t.Errorf("good copy: record %s with %d POSTs, want delivered with 1", status, tg.count(id))
	}
}

// A copy whose fingerprint is not its record's (left in SQS from an earlier message under the
// same key) is acknowledged without a send.
func TestHandleStaleCopyIsNotSent(t *testing.T) {
	t.Parallel()
	b := newBundle(t, nil)
	tg := newTarget(t, 200, nil, 0)
	_, id := b.record(t, tg.URL)
	stale := b.copyOf(t, id, "sha256:earlier", tg.URL)
	if resp := handle(t, b, stale); len(resp.BatchItemFailures) != 0 {
		t.Errorf("stale copy handed back, want it acknowledged")
	}
	if status, attempts := b.status(t, id); status != message.Accepted || attempts != 0 || tg.total() != 0 {
		t.Errorf("record %s after %d attempts, %d POSTs; want accepted, 0, none", status, attempts, tg.total())
	}
}

// An expired copy met while another worker holds a live lease writes nothing over that lease; it
// comes back when the lease ends.
func TestHandleExpiredCopyLeavesLiveLease(t *testing.T) {
	t.Parallel()
	b := newBundle(t, nil)
	tg := newTarget(t, 200, nil, 0)
	_, id := b.record(t, tg.URL)
	held, err := b.store.Claim(context.Background(), id, store.Claim{Now: time.Now(), Lease: time.Hour, Token: "live worker"})
	if err != nil {
		t.Fatal(err)
	}
	past := time.Now().Add(-time.Minute)
	expired := b.sqsRecord(t, message.Envelope{ID: id, Fingerprint: fingerprint(id), ExpiresAt: &past, Target: message.Target{URL: tg.URL}, Payload: json.RawMessage(`{"a":1}`)})
	resp := handle(t, b, expired)
	if got := failures(resp); !slices.Equal(got, []string{expired.MessageId}) {
		t.Errorf("failures %v, want the expired copy handed back until the live lease ends", got)
	}
	if v := b.queue.changes()[expired.ReceiptHandle]; v < 3500 || v > 3600 {
		t.Errorf("visibility %d s, want the rest of the live lease (about 3600 s)", v)
	}
	got, err := b.store.Get(context.Background(), id)
	if err != nil || got.Status != message.Delivering || got.LeaseToken != held.LeaseToken {
		t.Errorf("record %s under %q (%v), want still delivering under the live worker", got.Status, got.LeaseToken, err)
	}
}

// A record's retry delay starts when its own delivery ends: its visibility is changed while a
// hanging target still holds the rest of its batch.
func TestHandleVisibilityPerRecord(t *testing.T) {
	t.Parallel()
	b := newBundle(t, func(h *Handler) { h.Config.RequestTimeout = 30 * time.Second })
	release := make(chan struct{})
	hanging := newTarget(t, 200, nil, 0)
	inner := hanging.Config.Handler
	hanging.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-time.After(20 * time.Second):
		}
		inner.ServeHTTP(w, r)
	})
	busy := newTarget(t, 500, nil, 0)
	slow, slowID := b.record(t, hanging.URL)
	quick, _ := b.record(t, busy.URL)

	done := make(chan events.SQSEventResponse, 1)
	go func() {
		resp, _ := b.h.Handle(context.Background(), events.SQSEvent{Records: []events.SQSMessage{slow, quick}})
		done <- resp
	}()
	deadline := time.Now().Add(15 * time.Second)
	changed := false
	for !changed && time.Now().Before(deadline) {
		_, changed = b.queue.changes()[quick.ReceiptHandle]
		if !changed {
			time.Sleep(5 * time.Millisecond)
		}
	}
	close(release)
	resp := <-done
	if !changed {
		t.Errorf("the 500's visibility was not changed while the hanging record was in flight")
	}
	if got := failures(resp); !slices.Equal(got, []string{quick.MessageId}) {
		t.Errorf("failures %v, want only the 500's", got)
	}
	if status, _ := b.status(t, slowID); status != message.Delivered {
		t.Errorf("hanging record %s, want delivered once released", status)
	}
}

// The lease runs to the invocation's deadline, covering the result write's own budget: no other
// copy can take the record over while this worker may still record its send.
func TestHandleLeaseCoversResultBudget(t *testing.T) {
	t.Parallel()
	b := newBundle(t, nil)
	tg := newTarget(t, 200, nil, 0)
	var leased message.Record
	real := b.h.Sender
	b.h.Sender = senderFunc(func(ctx context.Context, r push.Request) push.Result {
		leased, _ = b.store.Get(ctx, r.ID)
		return real.Send(ctx, r)
	})
	rec, _ := b.record(t, tg.URL)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	deadline, _ := ctx.Deadline()
	if _, err := b.h.Handle(ctx, events.SQSEvent{Records: []events.SQSMessage{rec}}); err != nil {
		t.Fatal(err)
	}
	if leased.LeaseUntil.Before(deadline.Add(-time.Second)) {
		t.Errorf("lease until %v, want the invocation's deadline %v", leased.LeaseUntil, deadline)
	}
}

// The configuration checks REQUEST_TIMEOUT against the function's timeout with the handler's own
// reserve: they must not drift apart.
func TestDefaultsMatchConfigReserve(t *testing.T) {
	t.Parallel()
	if got := DefaultStoreBudget + DefaultMargin; got != config.DeliverReserve {
		t.Errorf("DefaultStoreBudget + DefaultMargin = %s, config.DeliverReserve = %s", got, config.DeliverReserve)
	}
}

// On a copy's last receive before the dead-letter queue, a retryable failure ends the record
// failed (dead-lettered) instead of retrying, and the copy is handed back to go to that queue;
// redriven from it, the copy delivers the message.
func TestHandleDeadLetteredOnLastReceive(t *testing.T) {
	t.Parallel()
	b := newBundle(t, func(h *Handler) { h.Config.MaxReceiveCount = 5; h.Config.MaxAttempts = 10 })
	busy := newTarget(t, 503, nil, 0)
	for _, tc := range []struct {
		receives string
		want     message.Status
		vis      int32
	}{{"4", message.Retrying, 10}, {"5", message.Failed, 0}} {
		rec, id := b.record(t, busy.URL)
		rec.Attributes = map[string]string{"ApproximateReceiveCount": tc.receives}
		resp := handle(t, b, rec)
		if len(resp.BatchItemFailures) != 1 {
			t.Errorf("receive %s: %d failures, want the copy handed back", tc.receives, len(resp.BatchItemFailures))
		}
		got, err := b.store.Get(context.Background(), id)
		if err != nil || got.Status != tc.want {
			t.Errorf("receive %s: record %s (%v), want %s", tc.receives, got.Status, err, tc.want)
		}
		if v := b.queue.changes()[rec.ReceiptHandle]; v != tc.vis {
			t.Errorf("receive %s: visibility %d, want %d", tc.receives, v, tc.vis)
		}
		if tc.want != message.Failed {
			continue
		}
		if got.LastAttempt == nil || got.LastAttempt.StatusCode != 503 || !strings.HasPrefix(got.LastAttempt.Error, message.ReasonDeadLettered) {
			t.Errorf("last attempt %+v, want the 503 with reason %s", got.LastAttempt, message.ReasonDeadLettered)
		}
		// Redriven from the dead-letter queue, to a target that now answers.
		ok := newTarget(t, 200, nil, 0)
		redriven := b.copyOf(t, id, fingerprint(id), ok.URL)
		redriven.Attributes = map[string]string{"ApproximateReceiveCount": "1"}
		if resp := handle(t, b, redriven); len(resp.BatchItemFailures) != 0 {
			t.Errorf("redriven copy handed back")
		}
		if status, attempts := b.status(t, id); status != message.Delivered || attempts != 2 || ok.count(id) != 1 {
			t.Errorf("redriven: record %s after %d attempts, %d POSTs; want delivered after 2, 1", status, attempts, ok.count(id))
		}
	}
}

// A copy not started before the deadline on its last receive ends its record failed
// (dead-lettered), attempts untouched.
func TestHandleDeadLetteredNotStarted(t *testing.T) {
	t.Parallel()
	b := newBundle(t, func(h *Handler) { h.Config.MaxReceiveCount = 5; h.Margin = time.Minute })
	tg := newTarget(t, 200, nil, 0)
	last, lastID := b.record(t, tg.URL)
	last.Attributes = map[string]string{"ApproximateReceiveCount": "5"}
	early, earlyID := b.record(t, tg.URL)
	early.Attributes = map[string]string{"ApproximateReceiveCount": "2"}
	// Less than the margin, so nothing starts; more than half of it, so there is time to record.
	ctx, cancel := context.WithTimeout(context.Background(), 45*time.Second)
	defer cancel()
	resp, err := b.h.Handle(ctx, events.SQSEvent{Records: []events.SQSMessage{last, early}})
	if err != nil || len(resp.BatchItemFailures) != 2 {
		t.Fatalf("Handle: %v, %v; want both handed back", resp, err)
	}
	got, _ := b.store.Get(context.Background(), lastID)
	if got.Status != message.Failed || got.Attempts != 0 || got.LastAttempt == nil || !strings.HasPrefix(got.LastAttempt.Error, message.ReasonDeadLettered) {
		t.Errorf("last receive: record %s, %d attempts, last attempt %+v; want failed (dead-lettered), 0", got.Status, got.Attempts, got.LastAttempt)
	}
	if status, _ := b.status(t, earlyID); status != message.Accepted {
		t.Errorf("earlier receive: record %s, want accepted", status)
	}
	if tg.total() != 0 {
		t.Errorf("%d POSTs, want none", tg.total())
	}
}

// A stale copy and the record's own copy in one batch are not duplicates of each other: the stale
// one is dropped, the own one delivered.
func TestHandleStaleAndOwnCopyInOneBatch(t *testing.T) {
	t.Parallel()
	b := newBundle(t, nil)
	tg := newTarget(t, 200, nil, 0)
	own, id := b.record(t, tg.URL)
	stale := b.copyOf(t, id, "sha256:earlier", tg.URL)
	b.h.Config.MaxConcurrency = 1 // the stale copy first
	if resp := handle(t, b, stale, own); len(resp.BatchItemFailures) != 0 {
		t.Errorf("failures %v, want none", failures(resp))
	}
	if status, _ := b.status(t, id); status != message.Delivered || tg.count(id) != 1 {
		t.Errorf("record %s with %d POSTs, want delivered with 1", status, tg.count(id))
	}
}

// Many records retrying at once are all given their delay, ten or fewer to a call.
func TestHandleVisibilityManyRetries(t *testing.T) {
	t.Parallel()
	b := newBundle(t, nil)
	busy := newTarget(t, 500, nil, 0)
	var ev events.SQSEvent
	for range 25 {
		rec, _ := b.record(t, busy.URL)
		ev.Records = append(ev.Records, rec)
	}
	resp := handle(t, b, ev.Records...)
	if len(resp.BatchItemFailures) != 25 {
		t.Fatalf("%d failures, want 25", len(resp.BatchItemFailures))
	}
	vis := b.queue.changes()
	for _, rec := range ev.Records {
		if v, ok := vis[rec.ReceiptHandle]; !ok || v != 10 {
			t.Errorf("%s: visibility %d (changed %v), want 10", rec.ReceiptHandle, v, ok)
		}
	}
	if b.queue.calls < 3 || b.queue.calls > 25 {
		t.Errorf("%d visibility calls for 25 changes, want 3 to 25", b.queue.calls)
	}
}

// A push is bounded by its own timeout, never past the item's deadline, and by nothing else: it
// ends no later than the invocation allows, and the context it gets is never cancelled early.
func TestHandlePushIsBoundedByItsTimeout(t *testing.T) {
	t.Parallel()
	b := newBundle(t, nil)
	type seen struct {
		timeout     time.Duration
		hasDeadline bool
		cancellable bool
	}
	got := make(chan seen, 1)
	send := b.h.Sender
	b.h.Sender = senderFunc(func(ctx context.Context, r push.Request) push.Result {
		_, ok := ctx.Deadline()
		got <- seen{r.Timeout, ok, ctx.Done() != nil}
		return send.Send(ctx, r)
	})
	tg := newTarget(t, 200, nil, 0)
	rec, id := b.record(t, tg.URL)
	// 8 s left: the 5 s request timeout, the 1 s store budget and the margin fit once.
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Second)
	defer cancel()
	if _, err := b.h.Handle(ctx, events.SQSEvent{Records: []events.SQSMessage{rec}}); err != nil {
		t.Fatal(err)
	}
	s := <-got
	if s.timeout <= 0 || s.timeout > b.h.Config.RequestTimeout || s.hasDeadline || s.cancellable {
		t.Errorf("push got timeout %s (request timeout %s), a deadline %v, cancellable %v; want a timeout within the request timeout and a context that ends only with it",
			s.timeout, b.h.Config.RequestTimeout, s.hasDeadline, s.cancellable)
	}
	if status, _ := b.status(t, id); status != message.Delivered {
		t.Errorf("record %s, want delivered", status)
	}
}
