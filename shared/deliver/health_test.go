package deliver

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/pushfn/pushfn/shared/endpoint"
	"github.com/pushfn/pushfn/shared/message"
)

// healthCounter is a HealthStore that counts the health writes it is asked for, by kind, and
// those that applied.
type healthCounter struct {
	HealthStore
	mu                         sync.Mutex
	failing, healthy, disables int
	applied                    int
	// hold, when set, is called before the first failing write, which waits for it to return.
	hold func()
}

func (c *healthCounter) count(kind *int, applied bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	*kind++
	if applied {
		c.applied++
	}
}

func (c *healthCounter) MarkEndpointFailing(ctx context.Context, id string, since time.Time) (endpoint.Record, bool, error) {
	c.mu.Lock()
	hold := c.hold
	c.hold = nil
	c.mu.Unlock()
	if hold != nil {
		hold()
	}
	rec, applied, err := c.HealthStore.MarkEndpointFailing(ctx, id, since)
	c.count(&c.failing, applied)
	return rec, applied, err
}

func (c *healthCounter) MarkEndpointHealthy(ctx context.Context, id string) (endpoint.Record, bool, error) {
	rec, applied, err := c.HealthStore.MarkEndpointHealthy(ctx, id)
	c.count(&c.healthy, applied)
	return rec, applied, err
}

func (c *healthCounter) DisableFailingEndpoint(ctx context.Context, id string, since, at time.Time) (endpoint.Record, bool, error) {
	rec, applied, err := c.HealthStore.DisableFailingEndpoint(ctx, id, since, at)
	c.count(&c.disables, applied)
	return rec, applied, err
}

// writes returns the health writes asked for (failing, healthy, disable) and those applied.
func (c *healthCounter) writes() (failing, healthy, disables, applied int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.failing, c.healthy, c.disables, c.applied
}

// eventLog is a Publisher that keeps what it is given.
type eventLog struct {
	mu     sync.Mutex
	events []OpEvent
}

func (l *eventLog) Publish(e OpEvent) { l.mu.Lock(); l.events = append(l.events, e); l.mu.Unlock() }

func (l *eventLog) all() []OpEvent {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]OpEvent{}, l.events...)
}

// switchable is a receiver that answers every push with its current status, counting them.
type switchable struct {
	*httptest.Server
	status atomic.Int32
	pushes atomic.Int64
}

func newSwitchable(t *testing.T, status int) *switchable {
	t.Helper()
	s := &switchable{}
	s.status.Store(int32(status))
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.pushes.Add(1)
		w.WriteHeader(int(s.status.Load()))
	}))
	t.Cleanup(s.Close)
	return s
}

// withHealth gives b's handler a Health writing through a counter, with events kept, and
// disableAfter as its ENDPOINT_DISABLE_AFTER.
func withHealth(b *epBundle, disableAfter time.Duration) (*healthCounter, *eventLog) {
	c, l := &healthCounter{HealthStore: b.eps}, &eventLog{}
	b.h.Health = &Health{Store: c, Events: l}
	b.h.Config.EndpointDisableAfter = disableAfter
	return c, l
}

// prepare records n messages to endpoint epID and returns the batch of their copies, and their
// ids.
func (b *epBundle) prepare(t *testing.T, epID string, n int) (events.SQSEvent, []string) {
	t.Helper()
	var ev events.SQSEvent
	ids := make([]string, n)
	for i := range n {
		var r events.SQSMessage
		r, ids[i] = b.toEndpoint(t, epID)
		ev.Records = append(ev.Records, r)
	}
	return ev, ids
}

// batch records n messages to endpoint epID and hands them to h as one batch; it returns their
// ids.
func (b *epBundle) batch(t *testing.T, h *Handler, epID string, n int) []string {
	t.Helper()
	ev, ids := b.prepare(t, epID, n)
	if _, err := h.Handle(context.Background(), ev); err != nil {
		t.Fatal(err)
	}
	return ids
}

// TestHealthWritesOnlyOnChange: 100 failed deliveries to one endpoint, in one batch and then one
// at a time, make one health write (failing_since, the first attempt's time), whether the
// receiver's answer is retryable or permanent; the first success after them makes one (clear),
// and the successes after it none.
func TestHealthWritesOnlyOnChange(t *testing.T) {
	t.Parallel()
	for _, status := range []int{http.StatusServiceUnavailable, http.StatusBadRequest} {
		t.Run(http.StatusText(status), func(t *testing.T) {
			t.Parallel()
			b := newEPBundle(t)
			counter, _ := withHealth(b, 5*24*time.Hour)
			rc := newSwitchable(t, status)
			ep, _ := b.endpoint(t, rc.URL, nil)
			start := b.clock.Now()
			// The first write waits until every push of the batch has been answered, so the
			// other 49 deliveries meet it in flight and must not write again after it. On a
			// busy machine that wait can outlast the default 2 s store budget, and a write whose
			// budget ran out during it would fail and leave the endpoint to the next delivery
			// (2 writes seen under load): the budget here outlasts the wait.
			b.h.StoreBudget = time.Minute
			counter.hold = func() { waitFor(t, func() bool { return rc.pushes.Load() >= 50 }) }
			b.batch(t, b.h, ep.ID, 50)
			for range 50 {
				b.clock.add(time.Second) // the cache reads the endpoint again after 30 of them
				b.batch(t, b.h, ep.ID, 1)
			}
			if n := rc.pushes.Load(); n != 100 {
				t.Fatalf("%d pushes, want 100", n)
			}
			if failing, healthy, disables, applied := counter.writes(); failing != 1 || healthy+disables != 0 || applied != 1 {
				t.Fatalf("after 100 failures: %d failing, %d healthy, %d disable writes (%d applied); want 1 failing write", failing, healthy, disables, applied)
			}
			got := mustEndpoint(t, b, ep.ID)
			if got.FailingSince == nil || !got.FailingSince.Equal(start) || got.Disabled {
				t.Fatalf("endpoint after 100 failures: failing since %v, disabled %t; want since %v, enabled", got.FailingSince, got.Disabled, start)
			}

			rc.status.Store(http.StatusOK)
			b.batch(t, b.h, ep.ID, 20)
			b.batch(t, b.h, ep.ID, 20)
			if failing, healthy, disables, applied := counter.writes(); failing != 1 || healthy != 1 || disables != 0 || applied != 2 {
				t.Fatalf("after 40 successes: %d failing, %d healthy, %d disable writes (%d applied); want 1 failing, 1 healthy", failing, healthy, disables, applied)
			}
			if got := mustEndpoint(t, b, ep.ID); got.FailingSince != nil {
				t.Fatalf("endpoint after a success: failing since %v, want healthy", got.FailingSince)
			}
		})
	}
}

// waitFor returns when cond holds, polling; it fails t if cond does not hold within a minute
// (a bound for a hung test, not a timing assertion).
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	for end := time.Now().Add(time.Minute); !cond(); time.Sleep(time.Millisecond) {
		if time.Now().After(end) {
			t.Error("condition not met within a minute")
			return
		}
	}
}

func mustEndpoint(t *testing.T, b *epBundle, id string) endpoint.Record {
	t.Helper()
	rec, err := b.eps.GetEndpoint(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return rec
}

// TestHealthDisablesOnceAcrossContainers: two handlers (two warm containers, each with its own
// endpoint cache and health memory) deliver concurrently to an endpoint that fails for longer
// than ENDPOINT_DISABLE_AFTER: it is disabled by one write, with one event, and every later
// delivery through either ends failed endpoint_disabled without a push.
func TestHealthDisablesOnceAcrossContainers(t *testing.T) {
	t.Parallel()
	b := newEPBundle(t)
	counter, published := withHealth(b, time.Minute)
	second := *b.h
	cache := NewEndpointCache(b.eps, b.keyring, message.Rules{AllowHTTPTargets: true, AllowPrivateTargets: true})
	cache.Now = b.clock.Now
	second.Endpoints, second.Health = cache, &Health{Store: counter, Events: published}
	handlers := []*Handler{b.h, &second}

	rc := newSwitchable(t, http.StatusServiceUnavailable)
	ep, _ := b.endpoint(t, rc.URL, func(r *endpoint.Record) { r.TenantID = "acme" })
	start := b.clock.Now()
	// Each handler delivers a batch of 20 failing messages, at the same time as the other.
	race := func() {
		batches := make([]events.SQSEvent, len(handlers))
		for i := range handlers {
			batches[i], _ = b.prepare(t, ep.ID, 20)
		}
		var wg sync.WaitGroup
		for i, h := range handlers {
			wg.Go(func() {
				if _, err := h.Handle(context.Background(), batches[i]); err != nil {
					t.Error(err)
				}
			})
		}
		wg.Wait()
	}
	race()
	if got := mustEndpoint(t, b, ep.ID); got.FailingSince == nil || !got.FailingSince.Equal(start) || got.Disabled {
		t.Fatalf("after the first failures: failing since %v, disabled %t; want since %v, enabled", got.FailingSince, got.Disabled, start)
	}
	b.clock.add(30 * time.Second) // failing, not yet for a minute: nothing to write
	race()
	if _, _, disables, applied := counter.writes(); disables != 0 || applied != 1 {
		t.Fatalf("before a minute of failure: %d disable writes, %d applied writes; want none, 1", disables, applied)
	}

	b.clock.add(31 * time.Second)
	at := b.clock.Now()
	race()
	_, _, disables, applied := counter.writes()
	if applied != 2 || disables < 1 || disables > len(handlers) {
		t.Fatalf("after a minute of failure: %d disable writes, %d applied writes; want 1 or 2 disables, 2 applied (failing, disable)", disables, applied)
	}
	got := mustEndpoint(t, b, ep.ID)
	if !got.Disabled || got.DisabledReason != endpoint.ReasonFailing || got.DisabledAt == nil || !got.DisabledAt.Equal(at) {
		t.Fatalf("endpoint: disabled %t (%q at %v); want disabled %q at %v", got.Disabled, got.DisabledReason, got.DisabledAt, endpoint.ReasonFailing, at)
	}
	evs := published.all()
	if len(evs) != 1 {
		t.Fatalf("%d events, want 1: %+v", len(evs), evs)
	}
	d, ok := evs[0].Detail.(EndpointDisabled)
	if evs[0].DetailType != DetailTypeEndpointDisabled || !ok || d.EndpointID != ep.ID || d.TenantID != "acme" ||
		!d.FailingSince.Equal(start) || !d.DisabledAt.Equal(at) || !evs[0].Time.Equal(at) {
		t.Fatalf("event %+v, want %s of %s (tenant acme) failing since %v, disabled at %v", evs[0], DetailTypeEndpointDisabled, ep.ID, start, at)
	}

	// Later deliveries, through both containers, within their caches' lifetime and after it.
	for _, step := range []time.Duration{0, time.Minute} {
		b.clock.add(step)
		pushes := rc.pushes.Load()
		for _, h := range handlers {
			for _, id := range b.batch(t, h, ep.ID, 5) {
				rec := b.record(t, id)
				if rec.Status != message.Failed || rec.Attempts != 0 || rec.LastAttempt == nil || rec.LastAttempt.Error != message.ReasonEndpointDisabled {
					t.Fatalf("a delivery after the disabling: %s after %d attempts (%+v); want failed %s", rec.Status, rec.Attempts, rec.LastAttempt, message.ReasonEndpointDisabled)
				}
			}
		}
		if n := rc.pushes.Load(); n != pushes {
			t.Fatalf("%d pushes after the disabling, want none", n-pushes)
		}
	}
	if _, _, _, applied := counter.writes(); applied != 2 {
		t.Fatalf("%d applied health writes in all, want 2", applied)
	}
}

// TestHealthReenabled: an endpoint disabled for failing and re-enabled through the API (which
// clears failing_since) takes deliveries again once the cache reads it, the disabling this
// container remembers giving way to the newer version; its next failure starts a new failing
// time, not disabled at once.
func TestHealthReenabled(t *testing.T) {
	t.Parallel()
	b := newEPBundle(t)
	counter, published := withHealth(b, time.Minute)
	rc := newSwitchable(t, http.StatusInternalServerError)
	ep, _ := b.endpoint(t, rc.URL, nil)
	b.batch(t, b.h, ep.ID, 1)
	b.clock.add(2 * time.Minute)
	b.batch(t, b.h, ep.ID, 1)
	if got := mustEndpoint(t, b, ep.ID); !got.Disabled {
		t.Fatal("endpoint not disabled after two minutes of failure")
	}

	cur := mustEndpoint(t, b, ep.ID)
	patch, err := endpoint.ParsePatch([]byte(`{"disabled": false}`))
	if err != nil {
		t.Fatal(err)
	}
	cur.Endpoint = patch.Apply(cur.Endpoint, b.clock.Now())
	if _, err := b.eps.UpdateEndpoint(context.Background(), cur); err != nil {
		t.Fatal(err)
	}
	b.clock.add(endpoint.DefaultCacheTTL)
	pushes := rc.pushes.Load()
	failedAt := b.clock.Now()
	b.batch(t, b.h, ep.ID, 1)
	if rc.pushes.Load() != pushes+1 {
		t.Fatal("no push to the re-enabled endpoint")
	}
	got := mustEndpoint(t, b, ep.ID)
	if got.Disabled || got.FailingSince == nil || !got.FailingSince.Equal(failedAt) {
		t.Fatalf("re-enabled endpoint after a failure: disabled %t, failing since %v; want enabled, failing since %v", got.Disabled, got.FailingSince, failedAt)
	}
	if failing, _, disables, applied := counter.writes(); failing != 2 || disables != 1 || applied != 3 || len(published.all()) != 1 {
		t.Fatalf("%d failing, %d disable writes, %d applied, %d events; want 2, 1, 3, 1", failing, disables, applied, len(published.all()))
	}
}

// TestHealthNeverDisablesWhenZero: with ENDPOINT_DISABLE_AFTER 0, failing_since is kept but the
// endpoint is never disabled.
func TestHealthNeverDisablesWhenZero(t *testing.T) {
	t.Parallel()
	b := newEPBundle(t)
	counter, published := withHealth(b, 0)
	rc := newSwitchable(t, http.StatusBadGateway)
	ep, _ := b.endpoint(t, rc.URL, nil)
	for range 3 {
		b.batch(t, b.h, ep.ID, 2)
		b.clock.add(365 * 24 * time.Hour)
	}
	got := mustEndpoint(t, b, ep.ID)
	if failing, _, disables, _ := counter.writes(); got.Disabled || got.FailingSince == nil || failing != 1 || disables != 0 || len(published.all()) != 0 {
		t.Fatalf("disabled %t, failing since %v, %d failing and %d disable writes, %d events; want enabled, failing, 1, 0, 0",
			got.Disabled, got.FailingSince, failing, disables, len(published.all()))
	}
}

// TestHealthStaleMemoryCorrected: a container whose cache read an endpoint healthy before
// another container marked it failing learns the stored failing_since from its one write's
// answer (which does not apply), and writes no more.
func TestHealthStaleMemoryCorrected(t *testing.T) {
	t.Parallel()
	b := newEPBundle(t)
	counter, _ := withHealth(b, 5*24*time.Hour)
	rc := newSwitchable(t, http.StatusServiceUnavailable)
	ep, _ := b.endpoint(t, rc.URL, nil)
	// Another container marks it failing after this one's cache read it healthy.
	if _, err := b.h.Endpoints.Get(context.Background(), ep.ID); err != nil {
		t.Fatal(err)
	}
	other := b.clock.Now().Add(-time.Hour)
	if _, _, err := b.eps.MarkEndpointFailing(context.Background(), ep.ID, other); err != nil {
		t.Fatal(err)
	}
	b.batch(t, b.h, ep.ID, 10)
	b.batch(t, b.h, ep.ID, 10)
	got := mustEndpoint(t, b, ep.ID)
	if failing, _, _, applied := counter.writes(); failing != 1 || applied != 0 || !got.FailingSince.Equal(other) {
		t.Fatalf("%d failing writes (%d applied), failing since %v; want 1 (0 applied), the other container's %v", failing, applied, got.FailingSince, other)
	}
	if got.Disabled {
		t.Fatalf("disabled %q: a failure an hour long is not five days", got.DisabledReason)
	}
}
