package deliver

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/pushfn/pushfn/shared/endpoint"
	"github.com/pushfn/pushfn/shared/message"
	"github.com/pushfn/pushfn/shared/push"
	"github.com/pushfn/pushfn/shared/queue"
	"github.com/pushfn/pushfn/shared/store"
)

// fakeProducer keeps the entries it is sent. err, when set, fails every entry with it; fail,
// when set, decides per call (1-based) whether the whole call fails.
type fakeProducer struct {
	mu      sync.Mutex
	calls   int
	entries []queue.Entry
	err     error
	fail    func(call int) bool
}

var errQueueDown = errors.New("queue unreachable")

func (p *fakeProducer) Send(_ context.Context, entries []queue.Entry) []error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.calls++
	errs := make([]error, len(entries))
	if p.err != nil || (p.fail != nil && p.fail(p.calls)) {
		for i := range errs {
			errs[i] = cmp.Or(p.err, errQueueDown)
		}
		return errs
	}
	p.entries = append(p.entries, entries...)
	return errs
}

// sent returns the entries sent since the last take.
func (p *fakeProducer) sent() []queue.Entry {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]queue.Entry(nil), p.entries...)
}

// take returns the entries sent since the last take, as SQS records.
func (p *fakeProducer) take() []events.SQSMessage {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []events.SQSMessage
	for i, e := range p.entries {
		out = append(out, events.SQSMessage{MessageId: "fan-" + strconv.Itoa(i), ReceiptHandle: "rh", Body: e.Body})
	}
	p.entries = nil
	return out
}

// pathTarget counts the pushes each path receives, and keeps their webhook ids.
type pathTarget struct {
	*httptest.Server
	mu  sync.Mutex
	got map[string][]string // path -> webhook ids
}

func newPathTarget(t *testing.T) *pathTarget {
	t.Helper()
	pt := &pathTarget{got: map[string][]string{}}
	pt.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		pt.mu.Lock()
		pt.got[r.URL.Path] = append(pt.got[r.URL.Path], r.Header.Get(push.HeaderID))
		pt.mu.Unlock()
	}))
	t.Cleanup(pt.Close)
	return pt
}

func (pt *pathTarget) pushes(path string) []string {
	pt.mu.Lock()
	defer pt.mu.Unlock()
	return pt.got[path]
}

// fanBundle is an endpoint bundle whose handler expands fan-outs into prod.
type fanBundle struct {
	*epBundle
	prod *fakeProducer
}

func newFanBundle(t *testing.T) *fanBundle {
	t.Helper()
	b := &fanBundle{epBundle: newEPBundle(t), prod: &fakeProducer{}}
	b.h.Producer, b.h.Subscribers = b.prod, b.eps
	// Hundreds of pushes at once to one loopback server: on a loaded machine (make test beside
	// two busy loops) one took longer than the bundle's 5 s, was handed back to be retried, and
	// failed a test that counts each endpoint's pushes.
	b.h.Config.RequestTimeout = time.Minute
	return b
}

// fanOut records a fan-out message of eventType to tenant and returns the SQS record of its
// expansion and its id.
func (b *fanBundle) fanOut(t *testing.T, eventType, tenant string) (events.SQSMessage, string) {
	t.Helper()
	id := message.NewID(b.clock.Now())
	rec := message.Record{ID: id, Fingerprint: fingerprint(id), EventType: eventType, TenantID: tenant, CreatedAt: b.clock.Now(), UpdatedAt: b.clock.Now()}
	if err := b.store.Create(context.Background(), rec); err != nil {
		t.Fatal(err)
	}
	return b.sqsRecord(t, message.Envelope{ID: id, Fingerprint: fingerprint(id), EventType: eventType, TenantID: tenant,
		Payload: json.RawMessage(`{"order":42}`)}), id
}

func (b *fanBundle) handle(t *testing.T, recs ...events.SQSMessage) events.SQSEventResponse {
	t.Helper()
	resp, err := b.h.Handle(context.Background(), events.SQSEvent{Records: recs})
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

func TestFanOutReachesEverySubscribedEndpointOnce(t *testing.T) {
	t.Parallel()
	b := newFanBundle(t)
	pt := newPathTarget(t)
	sub := func(tenant string, types ...string) func(*endpoint.Record) {
		return func(r *endpoint.Record) { r.TenantID, r.EventTypes = tenant, types }
	}
	all, _ := b.endpoint(t, pt.URL+"/all", sub("acme"))
	orders, _ := b.endpoint(t, pt.URL+"/orders", sub("acme", "order.*"))
	exact, _ := b.endpoint(t, pt.URL+"/exact", sub("acme", "invoice.paid", "order.shipped"))
	b.endpoint(t, pt.URL+"/invoices", sub("acme", "invoice.*"))
	b.endpoint(t, pt.URL+"/globex", sub("globex"))
	b.endpoint(t, pt.URL+"/none", sub(""))
	disabled, _ := b.endpoint(t, pt.URL+"/disabled", func(r *endpoint.Record) { r.TenantID, r.Disabled = "acme", true })

	rec, id := b.fanOut(t, "order.shipped", "acme")
	if f := failures(b.handle(t, rec)); len(f) != 0 {
		t.Fatalf("the expansion was handed back: %v", f)
	}
	got := b.record(t, id)
	if got.Status != message.Delivered || got.FanoutDeliveries != 4 || got.FanoutCursor != "" {
		t.Fatalf("the fan-out's record is %+v, want delivered with 4 deliveries", got)
	}
	copies := b.prod.take()
	if len(copies) != 4 {
		t.Fatalf("%d delivery copies queued, want 4", len(copies))
	}
	if f := failures(b.handle(t, copies...)); len(f) != 0 {
		t.Fatalf("deliveries handed back: %v", f)
	}
	for _, path := range []string{"/all", "/orders", "/exact"} {
		if got := pt.pushes(path); len(got) != 1 || got[0] != id {
			t.Errorf("%s received %v, want the message once, its webhook-id %s", path, got, id)
		}
	}
	for _, path := range []string{"/invoices", "/globex", "/none", "/disabled"} {
		if got := pt.pushes(path); len(got) != 0 {
			t.Errorf("%s received %v, want nothing", path, got)
		}
	}
	for _, ep := range []endpoint.Record{all, orders, exact} {
		d := b.record(t, message.DeliveryID(id, ep.ID))
		if d.Status != message.Delivered || d.MessageID != id || d.EndpointID != ep.ID || d.Attempts != 1 || !d.CreatedAt.Equal(got.CreatedAt) {
			t.Errorf("delivery to %s: %+v", ep.URL, d)
		}
	}
	d := b.record(t, message.DeliveryID(id, disabled.ID))
	if d.Status != message.Failed || d.Attempts != 0 || d.LastAttempt == nil || d.LastAttempt.Error != message.ReasonEndpointDisabled {
		t.Errorf("delivery to the disabled endpoint: %+v, want failed endpoint_disabled with no attempt", d)
	}
	// The copies again (a retried send): acknowledged, nobody receives the message twice.
	if f := failures(b.handle(t, copies...)); len(f) != 0 {
		t.Fatalf("copies again handed back: %v", f)
	}
	if got := pt.pushes("/all"); len(got) != 1 {
		t.Errorf("/all received %d pushes after the copies came again", len(got))
	}
}

func TestFanOutMatchingNoEndpointEndsDelivered(t *testing.T) {
	t.Parallel()
	b := newFanBundle(t)
	b.endpoint(t, "http://127.0.0.1:1/x", func(r *endpoint.Record) { r.TenantID, r.EventTypes = "acme", []string{"invoice.*"} })
	rec, id := b.fanOut(t, "order.shipped", "acme")
	if f := failures(b.handle(t, rec)); len(f) != 0 {
		t.Fatalf("handed back: %v", f)
	}
	if got := b.record(t, id); got.Status != message.Delivered || got.FanoutDeliveries != 0 {
		t.Fatalf("record %+v, want delivered with zero deliveries", got)
	}
	if n := len(b.prod.take()); n != 0 {
		t.Fatalf("%d copies queued", n)
	}
}

// failingCheckpoints fails the checkpoints of a store while down is set.
type failingCheckpoints struct {
	*store.Memory
	down atomic.Bool
}

func (s *failingCheckpoints) Checkpoint(ctx context.Context, id string, p store.Progress) (message.Record, error) {
	if s.down.Load() {
		return message.Record{}, errors.New("table unreachable")
	}
	return s.Memory.Checkpoint(ctx, id, p)
}

// A worker that dies after queueing a page but before its checkpoint (here: the checkpoint
// fails, and the lease is left to run out) is taken over from the last checkpoint: the page is
// queued again, and still every endpoint receives the message once.
func TestFanOutTakenOverFromItsLastCheckpoint(t *testing.T) {
	t.Parallel()
	b := newFanBundle(t)
	cs := &failingCheckpoints{Memory: b.store}
	b.h.Store = cs
	pt := newPathTarget(t)
	const n = 250 // three pages of endpoints
	for i := range n {
		b.endpoint(t, pt.URL+"/"+strconv.Itoa(i), func(r *endpoint.Record) { r.TenantID = "acme" })
	}
	// The first page is queued and checkpointed; the second is queued, then its checkpoint
	// fails.
	b.prod.fail = func(call int) bool {
		if call == 2 {
			cs.down.Store(true)
		}
		return false
	}
	rec, id := b.fanOut(t, "order.shipped", "acme")
	if f := failures(b.handle(t, rec)); len(f) != 1 {
		t.Fatalf("the expansion was not handed back")
	}
	got := b.record(t, id)
	if got.Status != message.Delivering || got.FanoutDeliveries != 100 || got.FanoutCursor == "" {
		t.Fatalf("after the failed checkpoint the record is %+v, want delivering at the first page's checkpoint", got)
	}
	first := b.prod.take()
	if len(first) != 200 {
		t.Fatalf("%d copies queued before the failure, want 200", len(first))
	}
	// Another worker's receive while the lease lives is handed back, expanding nothing.
	cs.down.Store(false)
	b.prod.fail = nil
	if f := failures(b.handle(t, rec)); len(f) != 1 || len(b.prod.take()) != 0 {
		t.Fatal("a receive during the live lease expanded")
	}
	b.clock.add(time.Hour) // the lease runs out
	if f := failures(b.handle(t, rec)); len(f) != 0 {
		t.Fatalf("the takeover was handed back: %v", f)
	}
	got = b.record(t, id)
	if got.Status != message.Delivered || got.FanoutDeliveries != n {
		t.Fatalf("after the takeover the record is %+v, want delivered with %d deliveries", got, n)
	}
	rest := b.prod.take()
	if len(rest) != 150 {
		t.Fatalf("the takeover queued %d copies, want 150 (the second page again, and the third)", len(rest))
	}
	if f := failures(b.handle(t, append(first, rest...)...)); len(f) != 0 {
		t.Fatalf("deliveries handed back: %v", f)
	}
	for i := range n {
		if got := pt.pushes("/" + strconv.Itoa(i)); len(got) != 1 {
			t.Fatalf("endpoint %d received %d pushes, want 1", i, len(got))
		}
	}
	if got := len(pt.got); got != n {
		t.Fatalf("%d endpoints received the message, want %d", got, n)
	}
}

// A queue that cannot be reached pauses the expansion at its last checkpoint, releasing the
// lease, so the copy's next receive goes on at once from there.
func TestFanOutPausedWhenTheQueueFails(t *testing.T) {
	t.Parallel()
	b := newFanBundle(t)
	for i := range 150 {
		b.endpoint(t, "http://127.0.0.1:1/"+strconv.Itoa(i), func(r *endpoint.Record) { r.TenantID = "acme" })
	}
	b.prod.fail = func(call int) bool { return call == 2 }
	rec, id := b.fanOut(t, "order.shipped", "acme")
	if f := failures(b.handle(t, rec)); len(f) != 1 {
		t.Fatal("the expansion was not handed back")
	}
	if got := b.record(t, id); got.FanoutDeliveries != 100 || !got.LeaseUntil.Before(b.clock.Now()) {
		t.Fatalf("record %+v, want the first page's checkpoint and a released lease", got)
	}
	b.clock.add(time.Millisecond)
	if f := failures(b.handle(t, rec)); len(f) != 0 {
		t.Fatalf("handed back again: %v", f)
	}
	if got := b.record(t, id); got.Status != message.Delivered || got.FanoutDeliveries != 150 || len(b.prod.take()) != 150 {
		t.Fatalf("record %+v after the second receive", got)
	}
}

// A fan-out whose record the api removed (its answer was 503) fans out to no one.
func TestFanOutWithoutItsRecordQueuesNothing(t *testing.T) {
	t.Parallel()
	b := newFanBundle(t)
	b.endpoint(t, "http://127.0.0.1:1/x", func(r *endpoint.Record) { r.TenantID = "acme" })
	id := message.NewID(b.clock.Now())
	rec := b.sqsRecord(t, message.Envelope{ID: id, Fingerprint: fingerprint(id), EventType: "order.shipped", TenantID: "acme", Payload: json.RawMessage(`1`)})
	if f := failures(b.handle(t, rec)); len(f) != 0 || len(b.prod.take()) != 0 {
		t.Fatal("a fan-out without a record was expanded or handed back")
	}
}

func TestMalformedFanOutCopies(t *testing.T) {
	t.Parallel()
	b := newFanBundle(t)
	now := b.clock.Now()
	msgID := message.NewID(now)
	ep := endpoint.NewID(now)
	good := message.Envelope{ID: message.DeliveryID(msgID, ep), MessageID: msgID, EndpointID: ep, CreatedAt: &now,
		Payload: json.RawMessage(`1`), Fingerprint: "f"}
	for name, change := range map[string]func(*message.Envelope){
		"delivery id of another pair": func(e *message.Envelope) { e.ID = message.DeliveryID(msgID, endpoint.NewID(now)) },
		"no endpoint":                 func(e *message.Envelope) { e.EndpointID = "" },
		"message id not a message's":  func(e *message.Envelope) { e.MessageID = ep },
		"no created_at":               func(e *message.Envelope) { e.CreatedAt = nil },
		"target beside":               func(e *message.Envelope) { e.Target.URL = "http://127.0.0.1:1/" },
		"expansion with a target": func(e *message.Envelope) {
			*e = message.Envelope{ID: msgID, EventType: "a.b", Target: message.Target{URL: "http://127.0.0.1:1/"}, Payload: json.RawMessage(`1`), Fingerprint: "f"}
		},
		"expansion with a bad type": func(e *message.Envelope) {
			*e = message.Envelope{ID: msgID, EventType: "a b", Payload: json.RawMessage(`1`), Fingerprint: "f"}
		},
	} {
		env := good
		change(&env)
		j := job{msg: &events.SQSMessage{Body: mustJSON(t, env)}}
		b.h.parse(&j)
		if j.bad == nil {
			t.Errorf("%s: parsed as well formed", name)
		}
	}
	j := job{msg: &events.SQSMessage{Body: mustJSON(t, good)}}
	if b.h.parse(&j); j.bad != nil {
		t.Fatalf("a good delivery copy is malformed: %v", j.bad)
	}
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// countingLister counts the listings it serves.
type countingLister struct {
	Subscribers
	calls atomic.Int64
}

func (c *countingLister) ListEndpoints(ctx context.Context, q store.EndpointQuery) (store.EndpointPage, error) {
	c.calls.Add(1)
	return c.Subscribers.ListEndpoints(ctx, q)
}

// A warm function reads a small tenant's listing once per cache lifetime, however many
// fan-outs it expands; a tenant of more than one page reads its later pages each time.
func TestFanOutReadsATenantsFirstPageOncePerTTL(t *testing.T) {
	t.Parallel()
	b := newFanBundle(t)
	counted := &countingLister{Subscribers: b.eps}
	cache := NewSubscriberCache(counted)
	cache.(*subscriberCache).firstPages.Now = b.clock.Now
	b.h.Subscribers = cache
	for i := range 3 {
		b.endpoint(t, "http://127.0.0.1:1/small/"+strconv.Itoa(i), func(r *endpoint.Record) { r.TenantID = "small" })
	}
	for i := range 150 {
		b.endpoint(t, "http://127.0.0.1:1/big/"+strconv.Itoa(i), func(r *endpoint.Record) { r.TenantID = "big" })
	}
	for range 5 {
		rec, _ := b.fanOut(t, "order.shipped", "small")
		b.handle(t, rec)
	}
	if n := counted.calls.Load(); n != 1 {
		t.Errorf("5 fan-outs to a tenant of 3 endpoints listed it %d times, want 1", n)
	}
	if n := len(b.prod.take()); n != 15 {
		t.Errorf("%d copies queued, want 15", n)
	}
	for range 2 {
		rec, _ := b.fanOut(t, "order.shipped", "big")
		b.handle(t, rec)
	}
	if n := counted.calls.Load(); n != 4 { // big's first page once, its second twice
		t.Errorf("listings after 2 fan-outs to a tenant of 150 endpoints: %d, want 4", n)
	}
	b.clock.add(endpoint.DefaultCacheTTL + time.Second)
	rec, _ := b.fanOut(t, "order.shipped", "small")
	b.handle(t, rec)
	if n := counted.calls.Load(); n != 5 {
		t.Errorf("after the cache's lifetime the listing was read %d times in all, want 5", n)
	}
}
