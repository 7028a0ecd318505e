package deliver

import (
	"context"
	"encoding/json"
	"errors"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/pushfn/pushfn/shared/endpoint"
	"github.com/pushfn/pushfn/shared/message"
	"github.com/pushfn/pushfn/shared/opevent"
	"github.com/pushfn/pushfn/shared/store"
)

// recBundle is a fan bundle whose handler runs recoveries over its memory store.
type recBundle struct {
	*fanBundle
}

func newRecBundle(t *testing.T) *recBundle {
	t.Helper()
	b := &recBundle{newFanBundle(t)}
	b.h.Listing = b.store
	return b
}

// failedTo records n messages to endpoint ep that ended failed, each keeping its copy, created
// one millisecond apart from the clock's time; it returns their ids.
func (b *recBundle) failedTo(t *testing.T, ep string, n int) []string {
	t.Helper()
	ctx := context.Background()
	var ids []string
	for i := range n {
		at := b.clock.Now().Add(time.Duration(i) * time.Millisecond)
		id := message.NewID(at)
		rec := message.Record{ID: id, Fingerprint: fingerprint(id), EndpointID: ep, CreatedAt: at, UpdatedAt: at}
		if err := b.store.Create(ctx, rec); err != nil {
			t.Fatal(err)
		}
		body, err := message.EncodeEnvelope(message.Envelope{ID: id, Fingerprint: fingerprint(id), EndpointID: ep, Payload: json.RawMessage(`{"n":` + strconv.Itoa(i) + `}`)})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := b.store.Finish(ctx, id, store.Outcome{Now: at, Status: message.Failed, Fingerprint: fingerprint(id), Keep: body,
			Attempt: &message.Attempt{At: at, StatusCode: 503}}); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	return ids
}

// recovery records a recovery of endpoint ep's window and returns the SQS record of its copy.
func (b *recBundle) recovery(t *testing.T, ep string, since, until time.Time) (events.SQSMessage, string) {
	t.Helper()
	now := b.clock.Now()
	id := message.NewPrefixedID(message.RecoveryIDPrefix, now)
	rec := message.Record{ID: id, Fingerprint: "recovery:" + id, EndpointID: ep, RecoverSince: since, RecoverUntil: until, CreatedAt: now, UpdatedAt: now}
	if err := b.store.Create(context.Background(), rec); err != nil {
		t.Fatal(err)
	}
	return b.sqsRecord(t, message.Envelope{ID: id, EndpointID: ep, Since: &since, Until: &until, Fingerprint: rec.Fingerprint}), id
}

func TestRecoveryRequeuesTheWindowsFailedDeliveries(t *testing.T) {
	t.Parallel()
	b := newRecBundle(t)
	pt := newPathTarget(t)
	ep, _ := b.endpoint(t, pt.URL+"/ep", nil)
	start := b.clock.Now()
	ids := b.failedTo(t, ep.ID, 250) // three pages of the endpoint's deliveries
	// A delivered message in the window, and a failed one before it: neither is recovered.
	_, delivered := b.toEndpoint(t, ep.ID)
	if _, err := b.store.Finish(context.Background(), delivered, store.Outcome{Now: start, Status: message.Delivered, Fingerprint: fingerprint(delivered)}); err != nil {
		t.Fatal(err)
	}
	b.clock.add(time.Second)
	events := &fakeEvents{}
	b.h.Events = events
	rec, id := b.recovery(t, ep.ID, start.Add(-time.Millisecond), b.clock.Now())
	if f := failures(b.handle(t, rec)); len(f) != 0 {
		t.Fatalf("the recovery was handed back: %v", f)
	}
	got := b.record(t, id)
	if got.Status != message.Delivered || got.Matched != 250 || got.FanoutDeliveries != 250 {
		t.Fatalf("recovery record %+v, want finished with 250 matched and requeued", got)
	}
	want := opevent.RecoveryEnd{RecoveryID: id, EndpointID: ep.ID, Matched: 250, Requeued: 250}
	if len(events.events) != 1 || events.events[0].DetailType != opevent.RecoveryFinished || events.events[0].Detail != want {
		t.Fatalf("events %+v, want one %s with %+v", events.events, opevent.RecoveryFinished, want)
	}
	copies := b.prod.take()
	if len(copies) != 250 {
		t.Fatalf("%d copies queued, want 250", len(copies))
	}
	if f := failures(b.handle(t, copies...)); len(f) != 0 {
		t.Fatalf("deliveries handed back: %v", f)
	}
	for _, mid := range ids {
		r := b.record(t, mid)
		if r.Status != message.Delivered || r.Attempts != 1 || len(r.History) != 1 || r.ReopenToken != id {
			t.Fatalf("%s after the recovery: %+v", mid, r)
		}
	}
	if n := len(pt.pushes("/ep")); n != 250 {
		t.Fatalf("the endpoint received %d pushes, want 250", n)
	}
}

// failingReopen fails the reopens of a store after the first `after` of them.
type failingReopen struct {
	*store.Memory
	after int64
	n     atomic.Int64
}

func (s *failingReopen) Reopen(ctx context.Context, id string, r store.Reopen) (message.Record, error) {
	if s.n.Add(1) > s.after {
		return message.Record{}, errors.New("table unreachable")
	}
	return s.Memory.Reopen(ctx, id, r)
}

// A recovery that fails mid-page (here: its reopens start failing) is taken over from its last
// checkpoint: the page is read again, the deliveries it reopened count as its own, and the counts
// end the same as without the failure.
func TestRecoveryTakenOverFromItsLastCheckpoint(t *testing.T) {
	t.Parallel()
	b := newRecBundle(t)
	ep, _ := b.endpoint(t, "http://127.0.0.1:1/ep", nil)
	start := b.clock.Now()
	b.failedTo(t, ep.ID, 250)
	fr := &failingReopen{Memory: b.store, after: 150} // the first page, and half of the second
	b.h.Store = fr
	b.clock.add(time.Second)
	rec, id := b.recovery(t, ep.ID, start.Add(-time.Millisecond), b.clock.Now())
	if f := failures(b.handle(t, rec)); len(f) != 1 {
		t.Fatal("the recovery was not handed back")
	}
	got := b.record(t, id)
	if got.Matched != 100 || got.FanoutDeliveries != 100 || !got.LeaseUntil.Before(b.clock.Now()) {
		t.Fatalf("after the failure: %+v, want the first page's checkpoint and a released lease", got)
	}
	fr.after = 1 << 30
	b.clock.add(time.Millisecond)
	if f := failures(b.handle(t, rec)); len(f) != 0 {
		t.Fatalf("handed back again: %v", f)
	}
	got = b.record(t, id)
	if got.Status != message.Delivered || got.Matched != 250 || got.FanoutDeliveries != 250 {
		t.Fatalf("after the takeover: %+v, want 250 matched and requeued", got)
	}
	// Every failed delivery was queued at least once (the half page reopened before the failure
	// twice: its claim lets one copy through).
	seen := map[string]bool{}
	for _, c := range b.prod.take() {
		env, err := decodeEnvelope(c.Body)
		if err != nil {
			t.Fatal(err)
		}
		seen[env.ID] = true
	}
	if len(seen) != 250 {
		t.Fatalf("%d distinct deliveries queued, want 250", len(seen))
	}
}

// A recovery feeds the queue no faster than its endpoint's rate limit: its k-th copy is delayed
// k / per_second seconds from its start, and one whose delay would pass SQS's longest pauses the
// recovery, queued again, to go on later.
func TestRecoveryFeedsAtTheEndpointsRate(t *testing.T) {
	t.Parallel()
	b := newRecBundle(t)
	ep, _ := b.endpoint(t, "http://127.0.0.1:1/ep", func(r *endpoint.Record) { r.RateLimit = &endpoint.RateLimit{PerSecond: 1} })
	start := b.clock.Now()
	b.failedTo(t, ep.ID, 1000)
	b.clock.add(time.Second)
	rec, id := b.recovery(t, ep.ID, start.Add(-time.Millisecond), b.clock.Now())
	if f := failures(b.handle(t, rec)); len(f) != 0 {
		t.Fatalf("handed back: %v", f)
	}
	sent := b.prod.sent()
	// 1/s: 9 pages fit in SQS's 900 s of delay (copy k waits k seconds); the 10th would not, so
	// the recovery pauses itself there.
	if len(sent) != 901 {
		t.Fatalf("%d entries queued, want 900 copies and the paused recovery", len(sent))
	}
	for k, e := range sent[:900] {
		if e.DelaySeconds != k {
			t.Fatalf("copy %d delayed %d s, want %d", k, e.DelaySeconds, k)
		}
	}
	if env, err := decodeEnvelope(sent[900].Body); err != nil || env.ID != id || sent[900].DelaySeconds < 100 || sent[900].DelaySeconds > 101 {
		t.Fatalf("last entry %+v (%v), want the recovery's own copy, delayed 100 s rounded up (copy 1,000 is due in 1,000 s)", sent[900], err)
	}
	if got := b.record(t, id); got.Matched != 900 || got.FanoutDeliveries != 900 || got.Status != message.Delivering || !got.LeaseUntil.Before(b.clock.Now()) {
		t.Fatalf("paused recovery %+v", got)
	}
}
