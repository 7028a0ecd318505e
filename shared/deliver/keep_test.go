package deliver

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/pushfn/pushfn/shared/endpoint"
	"github.com/pushfn/pushfn/shared/message"
	"github.com/pushfn/pushfn/shared/store"
)

// Every write that ends a record failed or expired keeps the copy it came from, byte for byte;
// a delivered record keeps none, and a malformed copy is never kept in its message's record.
func TestKeepsTheCopyOfAnEndedDelivery(t *testing.T) {
	t.Parallel()
	b := newBundle(t, func(h *Handler) { h.Config.MaxReceiveCount = 5; h.Config.MaxAttempts = 10 })
	gone, busy, ok := newTarget(t, 404, nil, 0), newTarget(t, 503, nil, 0), newTarget(t, 200, nil, 0)
	past := b.now.Add(-time.Minute)
	for _, tc := range []struct {
		name   string
		copy   func() (events.SQSMessage, string)
		status message.Status
		kept   bool
	}{
		{"permanent failure", func() (events.SQSMessage, string) { return b.record(t, gone.URL) }, message.Failed, true},
		{"dead-lettered", func() (events.SQSMessage, string) {
			r, id := b.record(t, busy.URL)
			r.Attributes = map[string]string{"ApproximateReceiveCount": "5"}
			return r, id
		}, message.Failed, true},
		{"expired", func() (events.SQSMessage, string) {
			_, id := b.record(t, ok.URL)
			// A payload written as the caller wrote it: its bytes must be kept as they are.
			return b.sqsRecord(t, message.Envelope{ID: id, Fingerprint: fingerprint(id), Target: message.Target{URL: ok.URL},
				Payload: json.RawMessage(`{ "a" : "<&>",  "n": 1.50 }`), ExpiresAt: &past}), id
		}, message.Expired, true},
		{"delivered", func() (events.SQSMessage, string) { return b.record(t, ok.URL) }, message.Delivered, false},
		{"malformed", func() (events.SQSMessage, string) {
			_, id := b.record(t, ok.URL)
			return b.copyOf(t, id, fingerprint(id), "ftp://nowhere/"), id
		}, message.Failed, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, id := tc.copy()
			handle(t, b, r)
			got, err := b.store.Get(context.Background(), id)
			if err != nil || got.Status != tc.status {
				t.Fatalf("record %s (%v), want %s", got.Status, err, tc.status)
			}
			switch {
			case tc.kept && !bytes.Equal(got.Copy, []byte(r.Body)):
				t.Errorf("copy kept = %q, want the SQS body %q", got.Copy, r.Body)
			case !tc.kept && got.Copy != nil:
				t.Errorf("copy kept = %q, want none", got.Copy)
			}
		})
	}
}

// A copy to a disabled endpoint ends its record failed with the copy kept, so that it can be sent
// once the endpoint is enabled again.
func TestKeepsTheCopyToADisabledEndpoint(t *testing.T) {
	t.Parallel()
	b := newEPBundle(t)
	ep, _ := b.endpoint(t, "http://127.0.0.1:9/off", func(r *endpoint.Record) { r.Disabled = true })
	r, id := b.toEndpoint(t, ep.ID)
	handle(t, b.bundle, r)
	if rec := b.record(t, id); rec.Status != message.Failed || !bytes.Equal(rec.Copy, []byte(r.Body)) {
		t.Fatalf("record %s with copy %q, want failed with %q", rec.Status, rec.Copy, r.Body)
	}
}

// A copy not started before the deadline on its last receive keeps its copy in its record.
func TestKeepsTheCopyOfAnUnstartedDeadLetter(t *testing.T) {
	t.Parallel()
	b := newBundle(t, func(h *Handler) { h.Config.MaxReceiveCount = 5; h.Margin = time.Minute })
	r, id := b.record(t, newTarget(t, 200, nil, 0).URL)
	r.Attributes = map[string]string{"ApproximateReceiveCount": "5"}
	// Less than the margin, so nothing starts; more than half of it, so there is time to record.
	ctx, cancel := context.WithTimeout(context.Background(), 45*time.Second)
	defer cancel()
	if _, err := b.h.Handle(ctx, events.SQSEvent{Records: []events.SQSMessage{r}}); err != nil {
		t.Fatal(err)
	}
	if rec, _ := b.store.Get(context.Background(), id); rec.Status != message.Failed || !bytes.Equal(rec.Copy, []byte(r.Body)) {
		t.Fatalf("record %s with copy %q, want failed with %q", rec.Status, rec.Copy, r.Body)
	}
}

// The kept copy of a failed message, reopened and received again once its target answers, is
// delivered at attempt 1 with the failed attempt in its history, and the copy is dropped.
func TestReopenedCopyIsDeliveredFromAttemptOne(t *testing.T) {
	t.Parallel()
	b := newBundle(t, nil)
	var status, pushes atomic.Int32
	status.Store(404)
	tg := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		pushes.Add(1)
		w.WriteHeader(int(status.Load()))
	}))
	t.Cleanup(tg.Close)
	r, id := b.record(t, tg.URL)
	handle(t, b, r)
	rec, err := b.store.Reopen(context.Background(), id, store.Reopen{Now: time.Now(), Token: "reopen-1"})
	if err != nil {
		t.Fatal(err)
	}
	status.Store(200)
	again := events.SQSMessage{MessageId: "sqs-again", ReceiptHandle: "rh-again", Body: string(rec.Copy)}
	if resp := handle(t, b, again); len(resp.BatchItemFailures) != 0 {
		t.Fatalf("reopened copy handed back: %+v", resp)
	}
	got, _ := b.store.Get(context.Background(), id)
	if got.Status != message.Delivered || got.Attempts != 1 || len(got.History) != 1 || got.History[0].StatusCode != 404 || got.Copy != nil {
		t.Fatalf("record %s after %d attempts, history %+v, copy %q; want delivered after 1, the 404 in history, no copy",
			got.Status, got.Attempts, got.History, got.Copy)
	}
	if n := pushes.Load(); n != 2 {
		t.Errorf("target got %d pushes, want 2 (the 404, then the delivery)", n)
	}
}
