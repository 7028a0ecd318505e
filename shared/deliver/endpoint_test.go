package deliver

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/pushfn/pushfn/shared/endpoint"
	"github.com/pushfn/pushfn/shared/message"
	"github.com/pushfn/pushfn/shared/push"
	"github.com/pushfn/pushfn/shared/store"
)

// epStore is an endpoint store that counts its reads, and fails them while down is set.
type epStore struct {
	*store.MemoryEndpoints
	reads atomic.Int64
	down  atomic.Bool
}

var errEndpointsDown = errors.New("endpoint table unreachable")

func (s *epStore) GetEndpoint(ctx context.Context, id string) (endpoint.Record, error) {
	s.reads.Add(1)
	if s.down.Load() {
		return endpoint.Record{}, errEndpointsDown
	}
	return s.MemoryEndpoints.GetEndpoint(ctx, id)
}

// capture is a loopback target that keeps each push's headers by message id.
type capture struct {
	*httptest.Server
	mu     sync.Mutex
	pushes map[string][]http.Header
	bodies map[string][]byte
}

func newCapture(t *testing.T) *capture {
	t.Helper()
	rc := &capture{pushes: map[string][]http.Header{}, bodies: map[string][]byte{}}
	rc.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		rc.mu.Lock()
		id := r.Header.Get(push.HeaderID)
		rc.pushes[id] = append(rc.pushes[id], r.Header.Clone())
		rc.bodies[id] = body
		rc.mu.Unlock()
	}))
	t.Cleanup(rc.Close)
	return rc
}

func (rc *capture) got(id string) ([]http.Header, []byte) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return rc.pushes[id], rc.bodies[id]
}

// epBundle is a bundle whose handler delivers to endpoints kept in eps, through the cache, on a
// fake clock.
type epBundle struct {
	*bundle
	eps     *epStore
	keyring *endpoint.Keyring
	clock   *fakeClock
}

type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }

func (c *fakeClock) add(d time.Duration) { c.mu.Lock(); c.now = c.now.Add(d); c.mu.Unlock() }

func newEPBundle(t *testing.T) *epBundle {
	t.Helper()
	kr, err := endpoint.NewKeyring(strings.Repeat("x", 40))
	if err != nil {
		t.Fatal(err)
	}
	b := &epBundle{eps: &epStore{MemoryEndpoints: &store.MemoryEndpoints{}}, keyring: kr, clock: &fakeClock{now: time.Now()}}
	b.bundle = newBundle(t, func(h *Handler) {
		cache := NewEndpointCache(b.eps, kr, message.Rules{AllowHTTPTargets: true, AllowPrivateTargets: true})
		cache.Now = b.clock.Now
		h.Endpoints = cache
		h.Now = b.clock.Now
		// The client signs with a key of its own, which no endpoint push may carry.
		client := push.NewClient(push.Options{AllowPrivate: true, Keys: [][]byte{[]byte("the-global-signing-secret-of-tests")}})
		t.Cleanup(client.CloseIdleConnections)
		h.Sender = client
	})
	b.bundle.now = b.clock.Now()
	return b
}

// endpoint stores an endpoint sending to url, and returns its record and its secret.
func (b *epBundle) endpoint(t *testing.T, url string, change func(*endpoint.Record)) (endpoint.Record, endpoint.Secret) {
	t.Helper()
	id := endpoint.NewID(b.clock.Now())
	secret := endpoint.GenerateSecret()
	rec := endpoint.Record{Endpoint: endpoint.Endpoint{ID: id, URL: url, Headers: map[string]string{"X-Team": "orders"}}}
	rec.Secret = b.keyring.Seal(id, secret)
	if change != nil {
		change(&rec)
	}
	rec, err := b.eps.CreateEndpoint(context.Background(), rec)
	if err != nil {
		t.Fatal(err)
	}
	return rec, secret
}

// toEndpoint records a message to endpoint epID and returns the SQS record carrying it.
func (b *epBundle) toEndpoint(t *testing.T, epID string) (events.SQSMessage, string) {
	t.Helper()
	id := message.NewID(b.clock.Now())
	rec := message.Record{ID: id, Fingerprint: fingerprint(id), EndpointID: epID, CreatedAt: b.clock.Now(), UpdatedAt: b.clock.Now()}
	if err := b.store.Create(context.Background(), rec); err != nil {
		t.Fatal(err)
	}
	return b.sqsRecord(t, message.Envelope{ID: id, Fingerprint: fingerprint(id), EndpointID: epID, Payload: json.RawMessage(`{"n":1}`)}), id
}

func (b *epBundle) record(t *testing.T, id string) message.Record {
	t.Helper()
	rec, err := b.store.Get(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return rec
}

func TestDeliverToEndpoint(t *testing.T) {
	t.Parallel()
	b := newEPBundle(t)
	rc := newCapture(t)
	enabled, secret := b.endpoint(t, rc.URL+"/orders", nil)
	disabled, _ := b.endpoint(t, rc.URL+"/off", func(r *endpoint.Record) { r.Disabled = true })
	refused, _ := b.endpoint(t, rc.URL+"/bad", func(r *endpoint.Record) { r.Headers = map[string]string{"Host": "internal"} })
	deleted, _ := b.endpoint(t, rc.URL+"/gone", nil)
	if err := b.eps.DeleteEndpoint(context.Background(), deleted.ID, 1); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		ep       string
		status   message.Status
		attempts int
		errText  string // the last attempt's error begins with it
		pushes   int
	}{
		{"enabled", enabled.ID, message.Delivered, 1, "", 1},
		{"disabled", disabled.ID, message.Failed, 0, message.ReasonEndpointDisabled, 0},
		{"deleted", deleted.ID, message.Failed, 0, message.ReasonEndpointDeleted, 0},
		{"headers refused at delivery", refused.ID, message.Failed, 0, "endpoint_refused: headers.Host", 0},
	}
	var ev events.SQSEvent
	ids := make([]string, len(tests))
	for i, tt := range tests {
		var r events.SQSMessage
		r, ids[i] = b.toEndpoint(t, tt.ep)
		ev.Records = append(ev.Records, r)
	}
	resp, err := b.h.Handle(context.Background(), ev)
	if err != nil || len(resp.BatchItemFailures) != 0 {
		t.Fatalf("Handle = %+v, %v; want every record acknowledged", resp, err)
	}
	for i, tt := range tests {
		rec := b.record(t, ids[i])
		errText := ""
		if rec.LastAttempt != nil {
			errText = rec.LastAttempt.Error
		}
		if rec.Status != tt.status || rec.Attempts != tt.attempts || !strings.HasPrefix(errText, tt.errText) || (tt.errText == "") != (errText == "") {
			t.Errorf("%s: record %s after %d attempts (%q), want %s after %d (%q)", tt.name, rec.Status, rec.Attempts, errText, tt.status, tt.attempts, tt.errText)
		}
		if hs, _ := rc.got(ids[i]); len(hs) != tt.pushes {
			t.Errorf("%s: %d pushes, want %d", tt.name, len(hs), tt.pushes)
		}
	}
	// The push carries the endpoint's headers and its signature, not the client's key.
	hs, body := rc.got(ids[0])
	h := hs[0]
	if h.Get("X-Team") != "orders" || len(h.Values(push.HeaderSignature)) != 1 || strings.Count(h.Get(push.HeaderSignature), "v1,") != 1 {
		t.Fatalf("push headers %v", h)
	}
	v := push.Verifier{Keys: [][]byte{secret.Key()}}
	if err := v.Verify(h.Get(push.HeaderID), h.Get(push.HeaderTimestamp), h.Get(push.HeaderSignature), body, b.clock.Now()); err != nil {
		t.Errorf("the push does not verify with the endpoint's secret: %v", err)
	}
}

func TestDeliverToEndpointSignsWithBothSecretsAfterRotation(t *testing.T) {
	t.Parallel()
	b := newEPBundle(t)
	rc := newCapture(t)
	next := endpoint.GenerateSecret()
	ep, old := b.endpoint(t, rc.URL+"/orders", nil)
	ep.Rotate(b.keyring, next, b.clock.Now())
	if _, err := b.eps.UpdateEndpoint(context.Background(), ep); err != nil {
		t.Fatal(err)
	}
	deliverOne := func() (http.Header, []byte) {
		t.Helper()
		r, id := b.toEndpoint(t, ep.ID)
		if resp, err := b.h.Handle(context.Background(), events.SQSEvent{Records: []events.SQSMessage{r}}); err != nil || len(resp.BatchItemFailures) != 0 {
			t.Fatalf("Handle = %+v, %v", resp, err)
		}
		hs, body := rc.got(id)
		if len(hs) != 1 {
			t.Fatalf("%d pushes, want 1", len(hs))
		}
		return hs[0], body
	}
	verifies := func(h http.Header, body []byte, s endpoint.Secret) bool {
		return push.Verifier{Keys: [][]byte{s.Key()}}.Verify(h.Get(push.HeaderID), h.Get(push.HeaderTimestamp), h.Get(push.HeaderSignature), body, b.clock.Now()) == nil
	}

	h, body := deliverOne()
	if n := strings.Count(h.Get(push.HeaderSignature), "v1,"); n != 2 || !verifies(h, body, next) || !verifies(h, body, old) {
		t.Fatalf("after a rotation: %d signatures, new secret verifies %v, old %v; want 2, both", n, verifies(h, body, next), verifies(h, body, old))
	}
	// Just before the overlap ends the old secret still signs; at its end, only the new one,
	// although the endpoint read before is still cached (its keys are filtered at each push).
	b.clock.add(endpoint.RotationOverlap - time.Second)
	reads := b.eps.reads.Load()
	h, body = deliverOne()
	if !verifies(h, body, old) {
		t.Error("the old secret stopped signing before the overlap ended")
	}
	b.clock.add(time.Second)
	h, body = deliverOne()
	if n := strings.Count(h.Get(push.HeaderSignature), "v1,"); n != 1 || !verifies(h, body, next) || verifies(h, body, old) {
		t.Errorf("after the overlap: %d signatures, new verifies %v, old %v; want the new one only", n, verifies(h, body, next), verifies(h, body, old))
	}
	if b.eps.reads.Load() != reads+1 {
		t.Errorf("%d endpoint reads over two deliveries 1 s apart, want 1", b.eps.reads.Load()-reads)
	}
}

func TestDeliverToEndpointStoreDown(t *testing.T) {
	t.Parallel()
	b := newEPBundle(t)
	rc := newCapture(t)
	ep, _ := b.endpoint(t, rc.URL+"/orders", nil)
	b.eps.down.Store(true)
	r, id := b.toEndpoint(t, ep.ID)
	resp, err := b.h.Handle(context.Background(), events.SQSEvent{Records: []events.SQSMessage{r}})
	if err != nil || len(resp.BatchItemFailures) != 1 {
		t.Fatalf("Handle = %+v, %v; want the record handed back", resp, err)
	}
	if v := b.queue.changes()[r.ReceiptHandle]; v != int32(DependencyBaseDelay.Seconds()) {
		t.Errorf("visible again in %d s, want the dependency delay %s", v, DependencyBaseDelay)
	}
	if rec := b.record(t, id); rec.Status != message.Accepted || rec.Attempts != 0 {
		t.Errorf("record %s after %d attempts, want untouched", rec.Status, rec.Attempts)
	}
	// The failed read is not kept: once the store is back, the copy is delivered.
	b.eps.down.Store(false)
	if resp, _ := b.h.Handle(context.Background(), events.SQSEvent{Records: []events.SQSMessage{r}}); len(resp.BatchItemFailures) != 0 {
		t.Fatalf("after the store came back: %+v", resp)
	}
	if rec := b.record(t, id); rec.Status != message.Delivered || rec.Attempts != 1 {
		t.Errorf("record %s after %d attempts, want delivered after 1", rec.Status, rec.Attempts)
	}
}

func TestDeliverToDisabledEndpointLeavesALiveLease(t *testing.T) {
	t.Parallel()
	b := newEPBundle(t)
	ep, _ := b.endpoint(t, "http://127.0.0.1:9/off", func(r *endpoint.Record) { r.Disabled = true })
	r, id := b.toEndpoint(t, ep.ID)
	// Another worker holds the message's lease (it read the endpoint before it was disabled).
	if _, err := b.store.Claim(context.Background(), id, store.Claim{Now: b.clock.Now(), Lease: time.Minute, Token: "other", Fingerprint: fingerprint(id)}); err != nil {
		t.Fatal(err)
	}
	resp, err := b.h.Handle(context.Background(), events.SQSEvent{Records: []events.SQSMessage{r}})
	if err != nil || len(resp.BatchItemFailures) != 1 {
		t.Fatalf("Handle = %+v, %v; want the copy handed back until the lease ends", resp, err)
	}
	if v := b.queue.changes()[r.ReceiptHandle]; v != 60 {
		t.Errorf("visible again in %d s, want 60 (the lease's end)", v)
	}
	if rec := b.record(t, id); rec.Status != message.Delivering || rec.LeaseToken != "other" {
		t.Errorf("record %s leased by %q, want the live lease left alone", rec.Status, rec.LeaseToken)
	}
}

// TestDeliverReadsAnEndpointOncePerTTL counts the endpoint store's reads: the records of a
// batch for one endpoint, and the batches after it within the cache's lifetime, read it once.
func TestDeliverReadsAnEndpointOncePerTTL(t *testing.T) {
	t.Parallel()
	b := newEPBundle(t)
	rc := newCapture(t)
	ep, _ := b.endpoint(t, rc.URL+"/orders", nil)
	batch := func(n int) []string {
		t.Helper()
		var ev events.SQSEvent
		ids := make([]string, n)
		for i := range n {
			var r events.SQSMessage
			r, ids[i] = b.toEndpoint(t, ep.ID)
			ev.Records = append(ev.Records, r)
		}
		if resp, err := b.h.Handle(context.Background(), ev); err != nil || len(resp.BatchItemFailures) != 0 {
			t.Fatalf("Handle = %+v, %v", resp, err)
		}
		return ids
	}
	ids := batch(300)
	if n := b.eps.reads.Load(); n != 1 {
		t.Errorf("a batch of 300 records for one endpoint read it %d times, want 1", n)
	}
	b.clock.add(endpoint.DefaultCacheTTL - time.Millisecond)
	ids = append(ids, batch(50)...)
	if n := b.eps.reads.Load(); n != 1 {
		t.Errorf("%d reads after a second batch within 30 s, want 1", n)
	}
	b.clock.add(time.Millisecond)
	ids = append(ids, batch(50)...)
	if n := b.eps.reads.Load(); n != 2 {
		t.Errorf("%d reads after a batch 30 s after the first read, want 2", n)
	}
	if writes, reads := b.store.Counts(); writes != 3*len(ids) || reads != 0 {
		t.Errorf("record store: %d writes and %d reads for %d messages, want 3 per message (the test's create, the claim, the result) and no read", writes, reads, len(ids))
	}
	for _, id := range ids {
		if hs, _ := rc.got(id); len(hs) != 1 || b.record(t, id).Status != message.Delivered {
			t.Fatalf("message %s: %d pushes, %s", id, len(hs), b.record(t, id).Status)
		}
	}
}

func TestEndpointNeverShowsItsKeys(t *testing.T) {
	t.Parallel()
	kr, err := endpoint.NewKeyring(strings.Repeat("x", 40))
	if err != nil {
		t.Fatal(err)
	}
	secret, _ := endpoint.ParseSecret("whsec_jwK4rvqrr0UMy0p8eWGdsFvqwTgUpF1cuBc27bzLp5U=")
	rec := endpoint.Record{Endpoint: endpoint.Endpoint{ID: endpoint.NewID(time.Now()), URL: "https://hooks.example.com:8443/x"}}
	rec.Secret = kr.Seal(rec.ID, secret)
	e, err := resolve(rec, kr, message.Rules{})
	if err != nil || e.Host != "hooks.example.com:8443" || len(e.Keys(time.Now())) != 1 || string(e.Keys(time.Now())[0]) != string(secret.Key()) {
		t.Fatalf("resolve = %v (host %q), %v", e, e.Host, err)
	}
	var logged strings.Builder
	slog.New(slog.NewJSONHandler(&logged, nil)).Info("x", "endpoint", e)
	raw := string(secret.Key())
	for _, text := range []string{fmt.Sprintf("%v %+v %#v %s", e, e, e, e), logged.String()} {
		if strings.Contains(text, raw) || strings.Contains(text, fmt.Sprint(secret.Key())) || !strings.Contains(text, "hooks.example.com") {
			t.Errorf("an endpoint shows as %q", text)
		}
	}
}

// An endpoint whose secret does not decrypt under the function's key reads the same however
// often it is read: its message ends failed at once, saying why, and is not handed back to come
// round until the dead-letter queue takes it with its record still waiting.
func TestDeliverToAnUnreadableEndpoint(t *testing.T) {
	t.Parallel()
	b := newEPBundle(t)
	other, err := endpoint.NewKeyring(strings.Repeat("y", 40))
	if err != nil {
		t.Fatal(err)
	}
	rc := newCapture(t)
	ep, _ := b.endpoint(t, rc.URL+"/orders", func(r *endpoint.Record) {
		r.Secret = other.Seal(r.ID, endpoint.GenerateSecret()) // sealed under another key
	})
	r, id := b.toEndpoint(t, ep.ID)
	resp, err := b.h.Handle(context.Background(), events.SQSEvent{Records: []events.SQSMessage{r}})
	if err != nil || len(resp.BatchItemFailures) != 0 {
		t.Fatalf("Handle = %+v, %v; want the record acknowledged", resp, err)
	}
	rec := b.record(t, id)
	if rec.Status != message.Failed || rec.Attempts != 0 || rec.LastAttempt == nil || rec.LastAttempt.Error != message.ReasonEndpointUnreadable {
		t.Errorf("record %s after %d attempts, last attempt %+v; want failed, %s, no attempt", rec.Status, rec.Attempts, rec.LastAttempt, message.ReasonEndpointUnreadable)
	}
	if pushes, _ := rc.got(id); len(pushes) != 0 {
		t.Errorf("the endpoint got %d pushes, want none", len(pushes))
	}
}
