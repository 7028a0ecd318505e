package httpapi

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"

	"github.com/aws/aws-lambda-go/events"

	"github.com/pushfn/pushfn/shared/config"
	"github.com/pushfn/pushfn/shared/deliver"
	"github.com/pushfn/pushfn/shared/message"
	"github.com/pushfn/pushfn/shared/push"
)

// On DynamoDB Local and fauxqs: a message whose target answers 404 ends failed with its queued
// copy kept; a retry queues exactly that copy again, and the deliver function delivers it, once
// the target answers, at attempt 1 with the 404 in its history and no copy left.
func TestIntegrationRetry(t *testing.T) {
	t.Parallel()
	b, s := integration(t)
	b.h.Reopener = s.Store
	b.h.Rules = message.Rules{AllowHTTPTargets: true, AllowPrivateTargets: true}

	var status, pushes atomic.Int32
	status.Store(http.StatusNotFound)
	tg := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		pushes.Add(1)
		w.WriteHeader(int(status.Load()))
	}))
	t.Cleanup(tg.Close)
	cfg := config.Defaults()
	cfg.AllowHTTPTargets, cfg.AllowPrivateTargets = true, true
	client := push.NewClient(push.Options{AllowPrivate: true})
	t.Cleanup(client.CloseIdleConnections)
	d := &deliver.Handler{Store: s.Store, Sender: client, Config: cfg}
	// run delivers the one copy on the queue, as the event source mapping would hand it over,
	// and returns its body.
	run := func() string {
		t.Helper()
		got := s.Drain(t)
		if len(got) != 1 {
			t.Fatalf("%d copies on the queue, want 1", len(got))
		}
		ev := events.SQSEvent{Records: []events.SQSMessage{{MessageId: got[0].MessageID, ReceiptHandle: "rh", Body: got[0].Body,
			Attributes: map[string]string{"ApproximateReceiveCount": "1"}}}}
		if resp, err := d.Handle(context.Background(), ev); err != nil || len(resp.BatchItemFailures) != 0 {
			t.Fatalf("deliver = %+v, %v; want the copy acknowledged", resp, err)
		}
		return got[0].Body
	}

	r := b.do(t, http.MethodPost, PathMessages, `{"target":{"url":"`+tg.URL+`/push"},"payload":{ "user_id" : "1", "note": "<&>" }}`)
	if r.status != http.StatusAccepted {
		t.Fatalf("POST = %d %s", r.status, r.body)
	}
	id := decode[accepted](t, r).ID
	first := run()
	rec, err := s.Store.Get(t.Context(), id)
	if err != nil || rec.Status != message.Failed || string(rec.Copy) != first {
		t.Fatalf("after the 404: %s with copy %q (%v); want failed with the queued body %q", rec.Status, rec.Copy, err, first)
	}

	if r := b.do(t, http.MethodPost, PathMessages+"/"+id+"/retry", ""); r.status != http.StatusAccepted {
		t.Fatalf("retry = %d %s", r.status, r.body)
	}
	status.Store(http.StatusOK)
	if again := run(); again != first {
		t.Fatalf("retry queued %q, want the first copy %q", again, first)
	}
	v := decode[View](t, b.do(t, http.MethodGet, PathMessages+"/"+id, ""))
	if v.Status != message.Delivered || v.Attempts != 1 || len(v.History) != 1 || v.History[0].StatusCode != http.StatusNotFound ||
		v.LastAttempt == nil || v.LastAttempt.StatusCode != http.StatusOK {
		t.Fatalf("GET after the retry = %+v; want delivered at attempt 1, the 404 in history", v)
	}
	if rec, _ := s.Store.Get(t.Context(), id); rec.Copy != nil {
		t.Errorf("the delivered record kept its copy (%d bytes)", len(rec.Copy))
	}
	if n := pushes.Load(); n != 2 {
		t.Errorf("%d pushes, want 2 (the 404, the 200)", n)
	}
	if r := b.do(t, http.MethodPost, PathMessages+"/"+id+"/retry", ""); r.status != http.StatusConflict {
		t.Errorf("retry of a delivered message = %d %s, want 409", r.status, r.body)
	}
}
