package ingest_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pushfn/pushfn/shared/ingest"
	"github.com/pushfn/pushfn/shared/message"
	"github.com/pushfn/pushfn/shared/store"
)

// These tests hold the ingest path to its promise: a 2xx means the message will be delivered (or
// end in a final state), a 503 means it will not be unless the caller retries, and a retry with
// the same key delivers it once. Each forces one interleaving of a first request, its undo, its
// replays and ambiguous queue failures, then plays the deliver function over every copy the
// queue holds and checks what each answer promised.

// deliverer plays the deliver function against the store: each queued copy, in order, is claimed
// unless its record is gone (acknowledged, not sent) or its record's fingerprint is not the
// copy's (a stale copy, not sent); a claim that finds the record final is a duplicate.
type deliverer struct {
	b *bundle

	mu     sync.Mutex
	next   int
	pushes map[string][]string // message id → payloads pushed with a 2xx, in order
}

func newDeliverer(b *bundle) *deliverer {
	return &deliverer{b: b, pushes: map[string][]string{}}
}

// drain delivers every copy queued since the last drain.
func (d *deliverer) drain(t *testing.T) {
	t.Helper()
	d.mu.Lock()
	defer d.mu.Unlock()
	ctx := context.Background()
	envs := d.b.prod.Envelopes()
	for ; d.next < len(envs); d.next++ {
		env := envs[d.next]
		rec, err := d.b.store.Get(ctx, env.ID)
		if errors.Is(err, store.ErrNotFound) {
			continue
		}
		if err != nil {
			t.Fatalf("deliverer: get %s: %v", env.ID, err)
		}
		if env.Fingerprint == "" {
			t.Fatalf("deliverer: copy of %s carries no fingerprint", env.ID)
		}
		if env.Fingerprint != rec.Fingerprint {
			continue
		}
		token := fmt.Sprintf("worker-%d", d.next)
		_, err = d.b.store.Claim(ctx, env.ID, store.Claim{Now: d.b.clock.Now(), Lease: time.Minute, Token: token})
		if errors.Is(err, store.ErrFinal) {
			continue
		}
		if err != nil {
			t.Fatalf("deliverer: claim %s: %v", env.ID, err)
		}
		d.pushes[env.ID] = append(d.pushes[env.ID], string(env.Payload))
		if _, err := d.b.store.Finish(ctx, env.ID, store.Outcome{Now: d.b.clock.Now(), Status: message.Delivered, Token: token}); err != nil {
			t.Fatalf("deliverer: finish %s: %v", env.ID, err)
		}
	}
}

// delivered returns the payloads pushed for id.
func (d *deliverer) delivered(id string) []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]string(nil), d.pushes[id]...)
}

// wantDeliveredOnce drains the queue and checks that m was pushed exactly once, with its own
// payload, and that its record says delivered.
func (d *deliverer) wantDeliveredOnce(t *testing.T, id string, m message.Message) {
	t.Helper()
	d.drain(t)
	if got := d.delivered(id); len(got) != 1 || !jsonEqual(got[0], string(m.Payload)) {
		t.Fatalf("message %s pushed %d times with %q, want once with %s", id, len(got), got, m.Payload)
	}
	rec, err := d.b.store.Get(context.Background(), id)
	if err != nil || rec.Status != message.Delivered {
		t.Fatalf("record of %s = %+v, %v; want delivered", id, rec, err)
	}
}

// wantNotDelivered drains the queue and checks that nothing was pushed for id.
func (d *deliverer) wantNotDelivered(t *testing.T, id string) {
	t.Helper()
	d.drain(t)
	if got := d.delivered(id); len(got) != 0 {
		t.Fatalf("message %s pushed %d times after a 503, want never", id, len(got))
	}
}

func jsonEqual(a, b string) bool {
	var x, y any
	if json.Unmarshal([]byte(a), &x) != nil || json.Unmarshal([]byte(b), &y) != nil {
		return false
	}
	xb, _ := json.Marshal(x)
	yb, _ := json.Marshal(y)
	return string(xb) == string(yb)
}

func enqueueOne(t *testing.T, b *bundle, m message.Message) ingest.Result {
	t.Helper()
	return b.enq.Enqueue(context.Background(), []message.Message{m})[0]
}

// wantAccepted checks that r is a fresh accept (202).
func wantAccepted(t *testing.T, what string, r ingest.Result) {
	t.Helper()
	if r.Err != nil || r.Replayed || r.Status != message.Accepted {
		t.Fatalf("%s = %+v, want accepted (202)", what, r)
	}
}

// wantReplayed checks that r is a replay (200) with status.
func wantReplayed(t *testing.T, what string, r ingest.Result, status message.Status) {
	t.Helper()
	if r.Err != nil || !r.Replayed || r.Status != status {
		t.Fatalf("%s = %+v, want replayed (200) with status %s", what, r, status)
	}
}

// wantUnavailable checks that r is a 503.
func wantUnavailable(t *testing.T, what string, r ingest.Result) {
	t.Helper()
	if !errors.Is(r.Err, ingest.ErrUnavailable) || r.RetryAfter <= 0 {
		t.Fatalf("%s = %+v, want ErrUnavailable with a retry delay (503)", what, r)
	}
}

// switchable is a queue failure a test turns on and off.
type switchable struct{ on atomic.Bool }

func (s *switchable) pick(message.Envelope) bool { return s.on.Load() }

// The reviewer's first finding: a client that retries a POST that timed out on its side, after
// the first request answered 202, got 409 for a minute.
func TestReplayAfterAnswerIsAtOnce(t *testing.T) {
	t.Parallel()
	b := setup(t)
	d := newDeliverer(b)
	m := newMessage("order-1", `{"n":1}`)
	first := enqueueOne(t, b, m)
	wantAccepted(t, "first", first)
	b.clock.Advance(time.Second)
	again := enqueueOne(t, b, m)
	wantReplayed(t, "replay one second later", again, message.Accepted)
	if again.ID != first.ID {
		t.Fatalf("replay id %s, want %s", again.ID, first.ID)
	}
	d.wantDeliveredOnce(t, first.ID, m)
	wantReplayed(t, "replay after delivery", enqueueOne(t, b, m), message.Delivered)
}

// lostAnswerStore applies every Create and then answers as the SDK's retry of it would: the
// retry meets the condition its own first write made true.
type lostAnswerStore struct {
	*store.Memory
}

func (s lostAnswerStore) Create(ctx context.Context, rec message.Record) error {
	if err := s.Memory.Create(ctx, rec); err != nil {
		return err
	}
	return s.Memory.Create(ctx, rec)
}

// The reviewer's second finding, at the unit level: a create whose answer was lost is the
// request's own create, not a conflict (the DynamoDB Local version is in the integration test).
func TestCreateWhoseAnswerWasLostIsCreated(t *testing.T) {
	t.Parallel()
	b := setup(t)
	d := newDeliverer(b)
	b.enq.Store = lostAnswerStore{Memory: b.store}
	ms := messages(3, "")
	ms[2].IdempotencyKey = "with-key"
	rs := b.enq.Enqueue(context.Background(), ms)
	for i, r := range rs {
		wantAccepted(t, fmt.Sprintf("message %d", i), r)
		d.wantDeliveredOnce(t, r.ID, ms[i])
	}
}

// The reviewer's third finding: after an ambiguous send failure and a 503, a retry with the same
// key and another body is accepted; the stale copy must never be delivered in its place.
func TestAmbiguousSendThenOtherBodyDeliversOnlyTheNew(t *testing.T) {
	t.Parallel()
	b := setup(t)
	d := newDeliverer(b)
	b.prod.Ambiguous = func(message.Envelope) bool { return true }
	old := newMessage("order-2", `{"n":"old"}`)
	r := enqueueOne(t, b, old)
	wantUnavailable(t, "first", r)
	b.prod.Ambiguous = nil
	fresh := newMessage("order-2", `{"n":"new"}`)
	wantAccepted(t, "retry with another body", enqueueOne(t, b, fresh))
	if n := len(b.prod.Envelopes()); n != 2 {
		t.Fatalf("%d copies queued, want 2 (the stale one and the new one)", n)
	}
	d.wantDeliveredOnce(t, r.ID, fresh)
}

// The reviewer's fourth finding: an undo refused because a stored copy was already claimed was
// only logged, and the caller told 503 about a message that is delivered.
func TestUndoAfterTheCopyWasClaimedAnswersAccepted(t *testing.T) {
	t.Parallel()
	for _, key := range []string{"order-3", ""} {
		t.Run("key="+key, func(t *testing.T) {
			t.Parallel()
			b := setup(t)
			d := newDeliverer(b)
			b.prod.Ambiguous = func(message.Envelope) bool { return true }
			b.prod.After = func(int, []message.Envelope) { d.drain(t) }
			m := newMessage(key, `{"n":3}`)
			r := enqueueOne(t, b, m)
			wantAccepted(t, "first", r)
			d.wantDeliveredOnce(t, r.ID, m)
		})
	}
}

// A replay that arrives after the first request's create and before its send: it queues its own
// copy and answers 200 at once; whatever the first send then does, the first request answers
// 202 and the message is delivered once.
func TestReplayBetweenCreateAndSend(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name            string
		fail, ambiguous bool
	}{{"first send succeeds", false, false}, {"first send fails", true, false}, {"first send ambiguous", false, true}} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t)
			d := newDeliverer(b)
			m := newMessage("order-5", `{"n":5}`)
			var fail, ambiguous switchable
			b.prod.Fail, b.prod.Ambiguous = fail.pick, ambiguous.pick
			var replay ingest.Result
			b.prod.Before = func(call int, _ []message.Envelope) {
				if call != 1 {
					return
				}
				replay = enqueueOne(t, b, m)
				fail.on.Store(tc.fail)
				ambiguous.on.Store(tc.ambiguous)
			}
			first := enqueueOne(t, b, m)
			wantReplayed(t, "replay", replay, message.Accepted)
			wantAccepted(t, "first", first)
			d.wantDeliveredOnce(t, first.ID, m)
		})
	}
}

// A replay that arrives after the first request's failed send and before its undo: the replay's
// copy is queued, so the undo must leave the record and the first request answers 202.
func TestReplayBetweenSendAndUndo(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name      string
		ambiguous bool
	}{{"first send fails", false}, {"first send ambiguous", true}} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t)
			d := newDeliverer(b)
			m := newMessage("order-6", `{"n":6}`)
			var fail, ambiguous switchable
			b.prod.Fail, b.prod.Ambiguous = fail.pick, ambiguous.pick
			fail.on.Store(!tc.ambiguous)
			ambiguous.on.Store(tc.ambiguous)
			var replay ingest.Result
			b.prod.After = func(call int, _ []message.Envelope) {
				if call != 1 {
					return
				}
				fail.on.Store(false)
				ambiguous.on.Store(false)
				replay = enqueueOne(t, b, m)
			}
			first := enqueueOne(t, b, m)
			wantReplayed(t, "replay", replay, message.Accepted)
			wantAccepted(t, "first", first)
			d.wantDeliveredOnce(t, first.ID, m)
		})
	}
}

// Two replays at once, both while the record is accepted: both answer 200 and the message is
// delivered once.
func TestTwoReplaysAtOnce(t *testing.T) {
	t.Parallel()
	b := setup(t)
	d := newDeliverer(b)
	m := newMessage("order-8", `{"n":8}`)
	first := enqueueOne(t, b, m)
	wantAccepted(t, "first", first)
	// Each replay waits in its send until the other has reached its own, so both are in flight.
	var arrived sync.WaitGroup
	arrived.Add(2)
	b.prod.Before = func(call int, _ []message.Envelope) {
		if call == 2 || call == 3 {
			arrived.Done()
			arrived.Wait()
		}
	}
	rs := make([]ingest.Result, 2)
	var wg sync.WaitGroup
	for i := range rs {
		wg.Go(func() { rs[i] = enqueueOne(t, b, m) })
	}
	wg.Wait()
	for i, r := range rs {
		wantReplayed(t, fmt.Sprintf("replay %d", i), r, message.Accepted)
	}
	d.wantDeliveredOnce(t, first.ID, m)
}

// undoStore wraps the store's Delete: fail makes it fail as an unreachable table would, and done
// (if set) is closed after the first Delete returns.
type undoStore struct {
	*store.Memory
	fail bool
	once sync.Once
	done chan struct{}
}

func (s *undoStore) Delete(ctx context.Context, id, createToken string) error {
	if s.done != nil {
		defer s.once.Do(func() { close(s.done) })
	}
	if s.fail {
		return errTableDown
	}
	return s.Memory.Delete(ctx, id, createToken)
}

// A replay whose own send fails changes nothing: it answers 503, the first request's copy is
// delivered once, and a later replay answers 200.
func TestReplayWhoseSendFails(t *testing.T) {
	t.Parallel()
	b := setup(t)
	d := newDeliverer(b)
	m := newMessage("order-10", `{"n":10}`)
	first := enqueueOne(t, b, m)
	wantAccepted(t, "first", first)
	b.prod.Fail = func(message.Envelope) bool { return true }
	wantUnavailable(t, "replay with the queue down", enqueueOne(t, b, m))
	b.prod.Fail = nil
	wantReplayed(t, "replay", enqueueOne(t, b, m), message.Accepted)
	d.wantDeliveredOnce(t, first.ID, m)
}

// A replay that sent its copy while the first request was undoing: by the time it marks the
// record, the record is gone. Its copy may have been acknowledged unsent in the meantime, so it
// must record the message anew and queue it again, answering 202.
func TestReplayFindsTheRecordUndone(t *testing.T) {
	t.Parallel()
	b := setup(t)
	d := newDeliverer(b)
	undo := &undoStore{Memory: b.store, done: make(chan struct{})}
	b.enq.Store = undo
	m := newMessage("order-11", `{"n":11}`)
	var ambiguous switchable
	ambiguous.on.Store(true)
	b.prod.Ambiguous = ambiguous.pick
	sending, replayDone := make(chan struct{}), make(chan struct{})
	var replay ingest.Result
	b.prod.Before = func(call int, _ []message.Envelope) {
		if call == 2 { // the replay's send: hold it until the first request has undone
			close(sending)
			<-undo.done
			// The deliver function meets the first request's stored copy now: no record.
			d.drain(t)
		}
	}
	b.prod.After = func(call int, _ []message.Envelope) {
		if call != 1 {
			return
		}
		ambiguous.on.Store(false)
		go func() {
			defer close(replayDone)
			replay = enqueueOne(t, b, m)
		}()
		select {
		case <-sending:
		case <-replayDone:
		}
	}
	first := enqueueOne(t, b, m)
	<-replayDone
	wantUnavailable(t, "first", first)
	wantAccepted(t, "replay", replay)
	d.wantDeliveredOnce(t, first.ID, m)
}

// churnStore replaces the record (removes it and records it again under another create) just
// before each MarkReplayed, as concurrent requests with the same key undoing and recording it
// would.
type churnStore struct {
	*store.Memory
	n atomic.Int64
}

func (s *churnStore) MarkReplayed(ctx context.Context, id, createToken string, now time.Time) (message.Record, error) {
	if rec, err := s.Memory.Get(ctx, id); err == nil {
		if err := s.Memory.Delete(ctx, id, rec.CreateToken); err != nil {
			return message.Record{}, err
		}
		rec.CreateToken = fmt.Sprintf("churn-%d", s.n.Add(1))
		if err := s.Memory.Create(ctx, rec); err != nil {
			return message.Record{}, err
		}
	}
	return s.Memory.MarkReplayed(ctx, id, createToken, now)
}

// A replay whose record is replaced under it on every try gives up with 409 after a bounded
// number of rounds; the copies it queued are bound to the message and delivered once.
func TestReplayWhoseRecordKeepsBeingReplacedIsInProgress(t *testing.T) {
	t.Parallel()
	b := setup(t)
	d := newDeliverer(b)
	m := newMessage("order-12", `{"n":12}`)
	first := enqueueOne(t, b, m)
	wantAccepted(t, "first", first)
	b.enq.Store = &churnStore{Memory: b.store}
	r := enqueueOne(t, b, m)
	if !errors.Is(r.Err, ingest.ErrInProgress) || r.RetryAfter <= 0 || ingest.ErrorOf(r.Err).Code != ingest.CodeInProgress {
		t.Fatalf("replay = %+v, want ErrInProgress with a retry delay (409)", r)
	}
	if calls := b.prod.Calls(); calls != 4 {
		t.Fatalf("%d sends, want 4 (the first request's and one per round)", calls)
	}
	d.wantDeliveredOnce(t, first.ID, m)
}

// A first request that answers 503, then a retry with the same key: whatever the send and the
// undo did, the retry's answer is what the record says and the message is delivered once.
func TestUnavailableThenRetry(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		// ambiguous: the send failed after the queue stored its copy (else nothing was stored).
		// undoFails: the undo failed as an unreachable table would, so the record stays.
		ambiguous, undoFails bool
		// retryReplayed: the retry finds the record (200), else records it anew (202).
		retryReplayed bool
	}{
		// The record is removed and the stored copy is never delivered.
		{name: "ambiguous send undone", ambiguous: true},
		// The record is gone, so the retry is a fresh accept.
		{name: "failed send undone"},
		// The record stays accepted with no copy; the retry queues it and answers 200 at once.
		{name: "failed send, failed undo", undoFails: true, retryReplayed: true},
		// The one case a 503 cannot know: the record stays accepted and the stored copy is
		// delivered although the answer was 503; the retry answers 200 and the message is still
		// pushed only once.
		{name: "ambiguous send, failed undo", ambiguous: true, undoFails: true, retryReplayed: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t)
			d := newDeliverer(b)
			if tc.undoFails {
				b.enq.Store = &undoStore{Memory: b.store, fail: true}
			}
			always := func(message.Envelope) bool { return true }
			if tc.ambiguous {
				b.prod.Ambiguous = always
			} else {
				b.prod.Fail = always
			}
			m := newMessage("order-4", `{"n":4}`)
			first := enqueueOne(t, b, m)
			wantUnavailable(t, "first", first)
			if !(tc.ambiguous && tc.undoFails) {
				d.wantNotDelivered(t, first.ID)
			}
			b.prod.Ambiguous, b.prod.Fail = nil, nil
			retry := enqueueOne(t, b, m)
			if tc.retryReplayed {
				wantReplayed(t, "retry", retry, message.Accepted)
			} else {
				wantAccepted(t, "retry", retry)
			}
			d.wantDeliveredOnce(t, first.ID, m)
		})
	}
}
