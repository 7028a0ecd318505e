package deliver

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/pushfn/pushfn/shared/message"
	"github.com/pushfn/pushfn/shared/metrics"
	"github.com/pushfn/pushfn/shared/metrics/metricstest"
	"github.com/pushfn/pushfn/shared/push"
	"github.com/pushfn/pushfn/shared/store"
)

// lockedBuffer is the function's stdout in a test.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// withMetrics has the bundle's handler write its metrics to the returned buffer.
func withMetrics(b *bundle) *lockedBuffer {
	out := &lockedBuffer{}
	b.h.Metrics = metrics.NewWriter(out, "DeliverFunction")
	return out
}

// One invocation writes its metrics once, at its end: every record of the batch counted in
// BatchSize, each recorded result by outcome, each attempt's latency, the lease conflict; a
// duplicate and a record leased by a live worker are no Deliveries.
func TestHandleWritesItsMetricsOnce(t *testing.T) {
	t.Parallel()
	// The target's answer is the URL's path; each attempt "takes" 7 ms.
	sender := senderFunc(func(_ context.Context, r push.Request) push.Result {
		u, _ := url.Parse(r.URL)
		switch u.Path {
		case "/ok":
			return push.Result{Outcome: push.Delivered, StatusCode: 200, Duration: 7 * time.Millisecond}
		case "/busy":
			return push.Result{Outcome: push.Retryable, StatusCode: 503, Duration: 7 * time.Millisecond, Err: push.ErrStatus}
		}
		return push.Result{Outcome: push.Permanent, StatusCode: 404, Duration: 7 * time.Millisecond, Err: push.ErrStatus}
	})
	b := newBundle(t, func(h *Handler) { h.Sender = sender })
	out := withMetrics(b)
	ctx := context.Background()
	var recs []events.SQSMessage
	add := func(path string, n int) {
		for range n {
			rec, _ := b.record(t, "http://target.test"+path)
			recs = append(recs, rec)
		}
	}
	add("/ok", 3)
	add("/busy", 2)
	add("/gone", 1)
	recs = append(recs, recs[0]) // a duplicate of the first
	live, liveID := b.record(t, "http://target.test/ok")
	if _, err := b.store.Claim(ctx, liveID, store.Claim{Now: time.Now(), Lease: time.Hour, Token: "live worker"}); err != nil {
		t.Fatal(err)
	}
	recs = append(recs, live)
	expiredID := message.NewID(b.now)
	if err := b.store.Create(ctx, message.Record{ID: expiredID, Fingerprint: fingerprint(expiredID), CreatedAt: b.now, UpdatedAt: b.now}); err != nil {
		t.Fatal(err)
	}
	past := b.now.Add(-time.Minute)
	recs = append(recs, b.sqsRecord(t, message.Envelope{ID: expiredID, Fingerprint: fingerprint(expiredID), ExpiresAt: &past,
		Target: message.Target{URL: "http://target.test/ok"}, Payload: json.RawMessage(`1`)}))

	handle(t, b, recs...)
	docs := metricstest.Documents(t, out.String())
	// One document under service and function, one for each outcome.
	if n := strings.Count(out.String(), "\n"); n != 5 || len(docs) != 5 {
		t.Fatalf("%d lines, %d documents, want 5:\n%s", n, len(docs), out.String())
	}
	want := map[string]float64{
		metrics.BatchSize: float64(len(recs)), metrics.LeaseConflicts: 1, metrics.RecordsNotStarted: 0, metrics.AttemptLatency: 6 * 7,
	}
	for name, v := range want {
		if got := metricstest.Sum(docs, name, map[string]string{metrics.DimFunction: "DeliverFunction"}); got != v {
			t.Errorf("%s = %v, want %v", name, got, v)
		}
	}
	if n := docs[0].Counts[metrics.AttemptLatency]; n != 6 {
		t.Errorf("%v attempt latencies, want 6", n)
	}
	for outcome, n := range map[message.Status]float64{message.Delivered: 3, message.Retrying: 2, message.Failed: 1, message.Expired: 1} {
		if got := metricstest.Sum(docs, metrics.Deliveries, map[string]string{metrics.DimOutcome: string(outcome)}); got != n {
			t.Errorf("Deliveries %s = %v, want %v", outcome, got, n)
		}
	}
}

// A handler without a metrics writer writes none, and delivers as before.
func TestHandleWithoutMetrics(t *testing.T) {
	t.Parallel()
	b := newBundle(t, nil)
	tg := newTarget(t, 200, nil, 0)
	rec, id := b.record(t, tg.URL)
	handle(t, b, rec)
	if st, _ := b.status(t, id); st != message.Delivered {
		t.Errorf("status %s, want delivered", st)
	}
}

// The invocation's document counts the deliveries by outcome for each target host (with its
// port, in lower case) and for each endpoint, as properties.
func TestHandleTalliesOutcomesByHostAndEndpoint(t *testing.T) {
	t.Parallel()
	b := newEPBundle(t)
	out := withMetrics(b.bundle)
	ok := newCapture(t)
	gone := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusGone) }))
	t.Cleanup(gone.Close)
	ep, _ := b.endpoint(t, ok.URL+"/push", nil)
	toEP, _ := b.toEndpoint(t, ep.ID)
	direct, _ := b.bundle.record(t, ok.URL+"/direct")
	failed, _ := b.bundle.record(t, strings.Replace(gone.URL, "127.0.0.1", "LOCALHOST", 1)+"/gone")
	handle(t, b.bundle, toEP, direct, failed)

	okHost := strings.TrimPrefix(ok.URL, "http://")
	goneHost := strings.Replace(strings.TrimPrefix(gone.URL, "http://"), "127.0.0.1", "localhost", 1)
	want := map[string]map[string]map[string]float64{
		metrics.PropTargetHosts: {okHost: {"delivered": 2}, goneHost: {"failed": 1}},
		metrics.PropEndpoints:   {ep.ID: {"delivered": 1}},
	}
	got := map[string]map[string]map[string]float64{}
	for l := range strings.Lines(out.String()) {
		var root map[string]json.RawMessage
		if err := json.Unmarshal([]byte(l), &root); err != nil {
			t.Fatalf("%s: %v", l, err)
		}
		for p := range want {
			if raw, ok := root[p]; ok {
				var v map[string]map[string]float64
				if err := json.Unmarshal(raw, &v); err != nil {
					t.Fatalf("%s: %v", p, err)
				}
				got[p] = v
			}
		}
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("properties %v, want %v\n%s", got, want, out.String())
	}
	metricstest.Documents(t, out.String())
}
