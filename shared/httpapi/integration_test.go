package httpapi

import (
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"testing"
	"time"

	"github.com/pushfn/pushfn/shared/ingest"
	"github.com/pushfn/pushfn/shared/ingest/ingesttest"
	"github.com/pushfn/pushfn/shared/message"
	"github.com/pushfn/pushfn/shared/store"
)

// integration returns a bundle whose handler writes to a table and queue of its own on the
// emulators.
func integration(t *testing.T) (*bundle, *ingesttest.Stack) {
	t.Helper()
	c := ingesttest.NewClock(time.Now())
	s := ingesttest.New(t, c.Now)
	b := &bundle{clock: c, h: &Handler{Enqueuer: s.Enqueuer, Records: s.Store, Now: c.Now, Logger: quiet}}
	return b, s
}

func TestIntegrationAPI(t *testing.T) {
	t.Parallel()
	b, s := integration(t)

	// Every invalid request: refused, nothing written, nothing queued.
	for _, tt := range invalid {
		r := b.do(t, http.MethodPost, tt.path, tt.body, tt.hdrs...)
		if r.status != tt.status {
			t.Fatalf("%s: status %d, want %d", tt.name, r.status, tt.status)
		}
	}
	if n := s.Items(t); n != 0 || s.Sends.Calls() != 0 {
		t.Fatalf("invalid requests left %d items and made %d send calls", n, s.Sends.Calls())
	}

	one := b.do(t, http.MethodPost, PathMessages, msg(`,"expires_at":"2030-01-01T00:00:00Z"`), "Idempotency-Key", "single-1")
	if one.status != http.StatusAccepted {
		t.Fatalf("single = %d %s", one.status, one.body)
	}
	oneID := decode[accepted](t, one).ID

	r := b.do(t, http.MethodPost, PathBatch, keyed(500, "it"))
	if r.status != http.StatusAccepted {
		t.Fatalf("batch = %d %.300s", r.status, r.body)
	}
	batchCalls := s.Sends.Calls() - 1
	t.Logf("500 messages: %d SendMessageBatch calls", batchCalls)
	if batchCalls > 50 {
		t.Fatalf("%d send calls for 500 messages, want at most 50", batchCalls)
	}

	got := ingesttest.Unique(t, s.Drain(t))
	if len(got) != 501 || s.Items(t) != 501 {
		t.Fatalf("%d queued, %d items; want 501 of each", len(got), s.Items(t))
	}
	env := got[oneID].Envelope
	if env.Target.URL != okURL || string(env.Payload) != `{"user_id":"1","message":"Hello"}` || env.ExpiresAt == nil || !env.ExpiresAt.Equal(time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)) {
		t.Fatalf("queued envelope = %s", got[oneID].Body)
	}
	for i := range 500 {
		if _, ok := got[message.IDForKey(fmt.Sprintf("it-%d", i))]; !ok {
			t.Fatalf("message it-%d not queued", i)
		}
	}

	g := decode[View](t, b.do(t, http.MethodGet, "/v1/messages/"+oneID, ""))
	if g.ID != oneID || g.Status != message.Accepted || g.TargetHost != "hooks.example.com" {
		t.Fatalf("GET = %+v", g)
	}

	// Replay the batch once most items are past accepted: no new items, and only the ones still
	// accepted are queued again.
	for i := range 450 {
		id := message.IDForKey(fmt.Sprintf("it-%d", i))
		if _, err := s.Store.Finish(t.Context(), id, store.Outcome{Now: time.Now(), Status: message.Delivered}); err != nil {
			t.Fatal(err)
		}
	}
	b.clock.Advance(2 * time.Minute)
	again := b.do(t, http.MethodPost, PathBatch, keyed(500, "it"))
	if again.status != http.StatusAccepted || again.headers["Idempotent-Replayed"] != "true" {
		t.Fatalf("replay = %d %.300s", again.status, again.body)
	}
	requeued := ingesttest.Unique(t, s.Drain(t))
	if len(requeued) != 50 || s.Items(t) != 501 {
		t.Fatalf("replay queued %d (want the 50 still accepted) and the table holds %d items", len(requeued), s.Items(t))
	}
	for id := range requeued {
		if rec, err := s.Store.Get(t.Context(), id); err != nil || rec.Status != message.Accepted {
			t.Fatalf("re-queued %s in state %s (%v)", id, rec.Status, err)
		}
	}
}

func TestIntegrationAPIQueueDown(t *testing.T) {
	t.Parallel()
	b, s := integration(t)
	s.Enqueuer.Producer = &ingesttest.Producer{Fail: func(message.Envelope) bool { return true }}
	r := b.do(t, http.MethodPost, PathMessages, msg(``), "Idempotency-Key", "down")
	if r.status != http.StatusServiceUnavailable || decode[ingest.ErrorBody](t, r).Error.Code != ingest.CodeUnavailable {
		t.Fatalf("= %d %s", r.status, r.body)
	}
	if n := s.Items(t); n != 0 {
		t.Fatalf("%d items left after a failed send", n)
	}
}

// A fan-out's summary and deliveries listing read from DynamoDB (gsi1) as from the memory store.
func TestIntegrationFanout(t *testing.T) {
	t.Parallel()
	c := ingesttest.NewClock(t0)
	s := ingesttest.New(t, c.Now)
	b := fanSetupWith(s.Store, s.Enqueuer, c)
	id := b.post(t, fanoutBody)
	other := b.post(t, `{"event_type": "order.shipped", "payload": 5}`)
	b.expand(t, id, 5, message.Delivered)
	eps := epIDs(5)
	var want []View
	for i, st := range []message.Status{message.Delivered, message.Failed, message.Retrying, message.Delivered} {
		want = append(want, ViewOf(b.deliver(t, id, eps[i], st)))
	}
	b.deliver(t, other, eps[0], message.Delivered)

	// Both read gsi1, which DynamoDB keeps eventually consistent, and so does DynamoDB Local
	// under load (two runs of make test under two busy loops counted a delivery written an
	// instant before in its earlier state, or missed it): each is read again until it shows
	// every write, for at most a minute.
	var g response
	until := time.Now().Add(time.Minute)
	for {
		g = b.do(t, http.MethodGet, PathMessages+"/"+id, "")
		sum := decode[View](t, g).Deliveries
		if g.status == http.StatusOK && sum != nil && *sum == (Summary{Total: 5, Accepted: 1, Delivered: 2, Retrying: 1, Failed: 1}) {
			break
		}
		if time.Now().After(until) {
			t.Fatalf("GET = %d %s", g.status, g.body)
		}
		time.Sleep(50 * time.Millisecond)
	}
	var got []View
	var pages int
	for {
		got, pages = nil, 0
		target := PathMessages + "/" + id + "/deliveries?limit=3"
		for {
			p := decode[deliveriesView](t, b.do(t, http.MethodGet, target, ""))
			pages++
			got = append(got, p.Deliveries...)
			if p.NextCursor == nil {
				break
			}
			target = PathMessages + "/" + id + "/deliveries?limit=3&cursor=" + url.QueryEscape(*p.NextCursor)
		}
		wantBody, gotBody := reply(200, want, nil).Body, reply(200, got, nil).Body
		if gotBody == wantBody && pages == 2 {
			break
		}
		if time.Now().After(until) {
			t.Fatalf("%d pages:\n %s\nwant\n %s", pages, gotBody, wantBody)
		}
		time.Sleep(50 * time.Millisecond)
	}
	first := decode[deliveriesView](t, b.do(t, http.MethodGet, PathMessages+"/"+id+"/deliveries?limit=1", ""))
	if first.NextCursor == nil {
		t.Fatal("no cursor for the first page")
	}
	r := b.do(t, http.MethodGet, PathMessages+"/"+other+"/deliveries?cursor="+url.QueryEscape(*first.NextCursor), "")
	if r.status != http.StatusBadRequest || !slices.Equal(problemFields(t, r), []string{"cursor"}) {
		t.Fatalf("another message's cursor = %d %s", r.status, r.body)
	}
	single := b.post(t, msg(``))
	if r := b.do(t, http.MethodGet, PathMessages+"/"+single+"/deliveries", ""); r.status != http.StatusNotFound {
		t.Fatalf("a message to a target = %d %s", r.status, r.body)
	}
}
