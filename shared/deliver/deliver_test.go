package deliver

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/pushfn/pushfn/shared/config"
	"github.com/pushfn/pushfn/shared/message"
	"github.com/pushfn/pushfn/shared/metrics"
	"github.com/pushfn/pushfn/shared/metrics/metricstest"
	"github.com/pushfn/pushfn/shared/push"
	"github.com/pushfn/pushfn/shared/store"
)

// fakeQueue records visibility changes: SQS's part is exercised by the integration test.
type fakeQueue struct {
	mu         sync.Mutex
	calls      int
	visibility map[string]int32 // receipt handle -> seconds
}

func (q *fakeQueue) ChangeMessageVisibilityBatch(ctx context.Context, in *sqs.ChangeMessageVisibilityBatchInput, _ ...func(*sqs.Options)) (*sqs.ChangeMessageVisibilityBatchOutput, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.calls++
	if len(in.Entries) > 10 {
		return nil, fmt.Errorf("%d entries in one call", len(in.Entries))
	}
	for _, e := range in.Entries {
		q.visibility[aws.ToString(e.ReceiptHandle)] = e.VisibilityTimeout
	}
	return &sqs.ChangeMessageVisibilityBatchOutput{Successful: make([]sqstypes.ChangeMessageVisibilityBatchResultEntry, len(in.Entries))}, nil
}

func (q *fakeQueue) changes() map[string]int32 {
	q.mu.Lock()
	defer q.mu.Unlock()
	return maps(q.visibility)
}

func maps(m map[string]int32) map[string]int32 {
	c := make(map[string]int32, len(m))
	for k, v := range m {
		c[k] = v
	}
	return c
}

// target is a loopback receiver answering with a fixed status, counting pushes per message id.
type target struct {
	*httptest.Server
	mu   sync.Mutex
	hits map[string]int
}

func newTarget(t *testing.T, status int, header http.Header, delay time.Duration) *target {
	t.Helper()
	tg := &target{hits: map[string]int{}}
	stop := make(chan struct{})
	tg.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		tg.mu.Lock()
		tg.hits[r.Header.Get(push.HeaderID)]++
		tg.mu.Unlock()
		if delay > 0 {
			select {
			case <-time.After(delay):
			case <-stop:
			}
		}
		for k, v := range header {
			w.Header()[k] = v
		}
		w.WriteHeader(status)
	}))
	t.Cleanup(tg.Close)
	t.Cleanup(func() { close(stop) })
	return tg
}

func (tg *target) count(id string) int {
	tg.mu.Lock()
	defer tg.mu.Unlock()
	return tg.hits[id]
}

func (tg *target) total() int {
	tg.mu.Lock()
	defer tg.mu.Unlock()
	n := 0
	for _, c := range tg.hits {
		n += c
	}
	return n
}

// bundle is a fresh handler with its store and queue.
type bundle struct {
	h     *Handler
	store *store.Memory
	queue *fakeQueue
	now   time.Time
	seq   int
}

func newBundle(t *testing.T, adjust func(*Handler)) *bundle {
	t.Helper()
	cfg := config.Defaults()
	cfg.AllowHTTPTargets = true
	cfg.AllowPrivateTargets = true
	cfg.MaxAttempts = 3
	cfg.RequestTimeout = 5 * time.Second
	client := push.NewClient(push.Options{AllowPrivate: true, MaxPerHost: cfg.MaxPerHost})
	t.Cleanup(client.CloseIdleConnections)
	b := &bundle{store: &store.Memory{}, queue: &fakeQueue{visibility: map[string]int32{}}, now: time.Now()}
	b.h = &Handler{
		Store: b.store, Sender: client, Queue: b.queue, QueueURL: "http://sqs.local/q", Config: cfg,
		StoreBudget: time.Second, Margin: 100 * time.Millisecond,
		Jitter: func(d time.Duration) time.Duration { return d }, // the upper bound, so tests can check it
	}
	if adjust != nil {
		adjust(b.h)
	}
	return b
}

// record creates the message's record and returns an SQS record carrying it.
func (b *bundle) record(t *testing.T, url string) (events.SQSMessage, string) {
	t.Helper()
	b.seq++
	id := message.NewID(b.now)
	if err := b.store.Create(context.Background(), message.Record{ID: id, Fingerprint: fingerprint(id), CreatedAt: b.now, UpdatedAt: b.now}); err != nil {
		t.Fatal(err)
	}
	return b.sqsRecord(t, message.Envelope{ID: id, Fingerprint: fingerprint(id), Target: message.Target{URL: url}, Payload: json.RawMessage(`{"user_id":"1","message":"Hello"}`)}), id
}

// fingerprint is the fingerprint the bundle gives message id's record and copies.
func fingerprint(id string) string { return "sha256:" + id }

func (b *bundle) sqsRecord(t *testing.T, env message.Envelope) events.SQSMessage {
	t.Helper()
	body, err := json.Marshal(env)
	if err != nil {
		t.Fatal(err)
	}
	b.seq++
	n := strconv.Itoa(b.seq)
	return events.SQSMessage{MessageId: "sqs-" + n, ReceiptHandle: "rh-" + n, Body: string(body)}
}

// copyOf returns an SQS record carrying a copy of message id with the given fingerprint and
// target URL (either may be empty, as in a malformed copy) and a small payload of its own.
func (b *bundle) copyOf(t *testing.T, id, fp, url string) events.SQSMessage {
	t.Helper()
	env := message.Envelope{ID: id, Fingerprint: fp, Payload: json.RawMessage(`{"a":1}`)}
	if url != "" {
		env.Target = message.Target{URL: url}
	}
	return b.sqsRecord(t, env)
}

func (b *bundle) status(t *testing.T, id string) (message.Status, int) {
	t.Helper()
	rec, err := b.store.Get(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return rec.Status, rec.Attempts
}

func failures(resp events.SQSEventResponse) []string {
	var ids []string
	for _, f := range resp.BatchItemFailures {
		ids = append(ids, f.ItemIdentifier)
	}
	slices.Sort(ids)
	return ids
}

func closedURL(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	u := "http://" + ln.Addr().String() + "/"
	_ = ln.Close()
	return u
}

func TestHandleMixedTargets(t *testing.T) {
	t.Parallel()
	b := newBundle(t, func(h *Handler) { h.Config.RequestTimeout = time.Second })
	tests := []struct {
		name       string
		target     *target
		url        string
		status     message.Status
		fails      bool
		visibility int32
	}{
		{name: "200", target: newTarget(t, 200, nil, 0), status: message.Delivered},
		{name: "204", target: newTarget(t, 204, nil, 0), status: message.Delivered},
		{name: "500", target: newTarget(t, 500, nil, 0), status: message.Retrying, fails: true, visibility: 10},
		{name: "429 retry after", target: newTarget(t, 429, http.Header{"Retry-After": {"120"}}, 0), status: message.Retrying, fails: true, visibility: 120},
		{name: "503 retry after beyond the max", target: newTarget(t, 503, http.Header{"Retry-After": {"999999"}}, 0), status: message.Retrying, fails: true, visibility: 3600},
		{name: "404", target: newTarget(t, 404, nil, 0), status: message.Failed},
		{name: "301 not followed", target: newTarget(t, 301, http.Header{"Location": {"/x"}}, 0), status: message.Failed},
		{name: "hanging", target: newTarget(t, 200, nil, time.Hour), status: message.Retrying, fails: true, visibility: 10},
		{name: "closed port", url: closedURL(t), status: message.Retrying, fails: true, visibility: 10},
	}
	var ev events.SQSEvent
	ids := make([]string, len(tests))
	var wantFailures []string
	for i, tt := range tests {
		u := tt.url
		if tt.target != nil {
			u = tt.target.URL + "/push"
		}
		rec, id := b.record(t, u)
		ev.Records = append(ev.Records, rec)
		ids[i] = id
		if tt.fails {
			wantFailures = append(wantFailures, rec.MessageId)
		}
	}
	slices.Sort(wantFailures)
	resp, err := b.h.Handle(context.Background(), ev)
	if err != nil {
		t.Fatal(err)
	}
	if got := failures(resp); !slices.Equal(got, wantFailures) {
		t.Errorf("batch item failures %v, want %v", got, wantFailures)
	}
	vis := b.queue.changes()
	for i, tt := range tests {
		status, attempts := b.status(t, ids[i])
		if status != tt.status || attempts != 1 {
			t.Errorf("%s: record %s after %d attempts, want %s after 1", tt.name, status, attempts, tt.status)
		}
		if tt.target != nil && tt.target.count(ids[i]) != 1 {
			t.Errorf("%s: target got %d pushes, want 1", tt.name, tt.target.count(ids[i]))
		}
		v, changed := vis[ev.Records[i].ReceiptHandle]
		if changed != tt.fails || v != tt.visibility {
			t.Errorf("%s: visibility changed %v to %d, want %v to %d", tt.name, changed, v, tt.fails, tt.visibility)
		}
	}
}

func TestHandleAttemptsExhausted(t *testing.T) {
	t.Parallel()
	b := newBundle(t, nil)
	tg := newTarget(t, 500, nil, 0)
	rec, id := b.record(t, tg.URL)
	for attempt := 1; attempt <= 3; attempt++ {
		resp, err := b.h.Handle(context.Background(), events.SQSEvent{Records: []events.SQSMessage{rec}})
		if err != nil {
			t.Fatal(err)
		}
		status, attempts := b.status(t, id)
		wantStatus, wantFailures := message.Retrying, 1
		if attempt == 3 {
			wantStatus, wantFailures = message.Failed, 0
		}
		if status != wantStatus || attempts != attempt || len(resp.BatchItemFailures) != wantFailures {
			t.Fatalf("after attempt %d: %s, %d attempts, %d failures", attempt, status, attempts, len(resp.BatchItemFailures))
		}
		if want := int32(10 << (attempt - 1)); attempt < 3 && b.queue.changes()[rec.ReceiptHandle] != want {
			t.Fatalf("after attempt %d: visibility %d, want %d", attempt, b.queue.changes()[rec.ReceiptHandle], want)
		}
	}
	if tg.count(id) != 3 {
		t.Fatalf("target got %d pushes, want 3", tg.count(id))
	}
}

func TestHandleDuplicates(t *testing.T) {
	t.Parallel()
	b := newBundle(t, nil)
	tg := newTarget(t, 200, nil, 0)
	rec, id := b.record(t, tg.URL)
	dup := rec
	dup.MessageId, dup.ReceiptHandle = "sqs-dup", "rh-dup"
	resp, err := b.h.Handle(context.Background(), events.SQSEvent{Records: []events.SQSMessage{rec, dup}})
	if err != nil || len(resp.BatchItemFailures) != 0 {
		t.Fatalf("first batch: %v, %v", resp, err)
	}
	again := rec
	again.MessageId, again.ReceiptHandle = "sqs-again", "rh-again"
	resp, err = b.h.Handle(context.Background(), events.SQSEvent{Records: []events.SQSMessage{again}})
	if err != nil || len(resp.BatchItemFailures) != 0 {
		t.Fatalf("second batch: %v, %v", resp, err)
	}
	if n := tg.count(id); n != 1 {
		t.Fatalf("target got %d pushes, want 1", n)
	}
	if status, attempts := b.status(t, id); status != message.Delivered || attempts != 1 {
		t.Fatalf("record %s after %d attempts", status, attempts)
	}
}

func TestHandleLeases(t *testing.T) {
	t.Parallel()
	b := newBundle(t, nil)
	tg := newTarget(t, 200, nil, 0)
	ctx := context.Background()

	stale, staleID := b.record(t, tg.URL)
	if _, err := b.store.Claim(ctx, staleID, store.Claim{Now: b.now.Add(-time.Hour), Lease: time.Minute, Token: "dead worker"}); err != nil {
		t.Fatal(err)
	}
	live, liveID := b.record(t, tg.URL)
	if _, err := b.store.Claim(ctx, liveID, store.Claim{Now: time.Now(), Lease: time.Hour, Token: "live worker"}); err != nil {
		t.Fatal(err)
	}
	done, doneID := b.record(t, tg.URL)
	if _, err := b.store.Finish(ctx, doneID, store.Outcome{Now: b.now, Status: message.Delivered}); err != nil {
		t.Fatal(err)
	}
	gone := b.sqsRecord(t, message.Envelope{ID: message.NewID(b.now), Target: message.Target{URL: tg.URL}, Payload: json.RawMessage(`1`)})

	resp, err := b.h.Handle(ctx, events.SQSEvent{Records: []events.SQSMessage{stale, live, done, gone}})
	if err != nil {
		t.Fatal(err)
	}
	if got := failures(resp); !slices.Equal(got, []string{live.MessageId}) {
		t.Fatalf("failures %v, want only the live lease's record", got)
	}
	// The live lease's record becomes visible again when that lease ends, about an hour on.
	if vis := b.queue.changes(); len(vis) != 1 || vis[live.ReceiptHandle] < 3500 || vis[live.ReceiptHandle] > 3600 {
		t.Fatalf("visibility changes %v, want only %s's, to the end of the live lease (3600 s)", vis, live.ReceiptHandle)
	}
	checks := []struct {
		id       string
		status   message.Status
		attempts int
		pushes   int
	}{
		{staleID, message.Delivered, 2, 1},
		{liveID, message.Delivering, 1, 0},
		{doneID, message.Delivered, 0, 0},
	}
	for _, c := range checks {
		status, attempts := b.status(t, c.id)
		if status != c.status || attempts != c.attempts || tg.count(c.id) != c.pushes {
			t.Errorf("%s: %s after %d attempts, %d pushes; want %s, %d, %d", c.id, status, attempts, tg.count(c.id), c.status, c.attempts, c.pushes)
		}
	}
	if tg.total() != 1 {
		t.Errorf("target got %d pushes, want 1", tg.total())
	}
}

func TestHandleDeadline(t *testing.T) {
	t.Parallel()
	// One record at a time, each taking 1 s against a 2 s request timeout plus 200 ms of store
	// budget and a 100 ms margin (2.3 s): with 3 s left the first starts even 700 ms late on a
	// busy machine; after it, at most 2 s are left, which no longer fits.
	b := newBundle(t, func(h *Handler) {
		h.Config.MaxConcurrency = 1
		h.Config.RequestTimeout = 2 * time.Second
		h.StoreBudget = 200 * time.Millisecond
	})
	out := withMetrics(b)
	tg := newTarget(t, 200, nil, time.Second)
	var ev events.SQSEvent
	var ids []string
	for range 5 {
		rec, id := b.record(t, tg.URL)
		ev.Records = append(ev.Records, rec)
		ids = append(ids, id)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	resp, err := b.h.Handle(ctx, ev)
	if err != nil {
		t.Fatal(err)
	}
	failed := failures(resp)
	vis := b.queue.changes()
	delivered, unstarted := 0, 0
	for i, id := range ids {
		status, attempts := b.status(t, id)
		returned := slices.Contains(failed, ev.Records[i].MessageId)
		switch {
		case status == message.Delivered && attempts == 1 && !returned && tg.count(id) == 1:
			delivered++
		case status == message.Accepted && attempts == 0 && returned && tg.count(id) == 0:
			unstarted++
			if v, ok := vis[ev.Records[i].ReceiptHandle]; !ok || v != 0 {
				t.Errorf("unstarted record %d: visibility %d (changed %v), want 0", i, v, ok)
			}
		default:
			t.Errorf("record %d: %s, %d attempts, returned %v, %d pushes", i, status, attempts, returned, tg.count(id))
		}
	}
	if delivered != 1 {
		t.Errorf("%d records delivered, want 1", delivered)
	}
	docs := metricstest.Documents(t, out.String())
	if got := metricstest.Sum(docs, metrics.RecordsNotStarted, nil); got != float64(unstarted) {
		t.Errorf("RecordsNotStarted %v, want the %d records returned unstarted", got, unstarted)
	}
}

func TestHandleMalformedAndExpired(t *testing.T) {
	t.Parallel()
	b := newBundle(t, nil)
	tg := newTarget(t, 200, nil, 0)
	ctx := context.Background()
	good, goodID := b.record(t, tg.URL)

	mk := func(mutate func(*message.Envelope)) (events.SQSMessage, string) {
		_, id := b.record(t, "https://example.com/")
		env := message.Envelope{ID: id, Fingerprint: fingerprint(id), Target: message.Target{URL: tg.URL}, Payload: json.RawMessage(`{"a":1}`)}
		mutate(&env)
		return b.sqsRecord(t, env), id
	}
	past := time.Now().Add(-time.Minute)
	expired, expiredID := mk(func(e *message.Envelope) { e.ExpiresAt = &past })
	noPayload, noPayloadID := mk(func(e *message.Envelope) { e.Payload = nil })
	badURL, badURLID := mk(func(e *message.Envelope) { e.Target.URL = "not a url" })
	_, wrongShapeID := b.record(t, tg.URL)
	wrongShape := events.SQSMessage{MessageId: "sqs-shape", ReceiptHandle: "rh-shape", Body: `{"id":"` + wrongShapeID + `","fingerprint":"` + fingerprint(wrongShapeID) + `","target":5}`}
	garbage := events.SQSMessage{MessageId: "sqs-garbage", ReceiptHandle: "rh-garbage", Body: "not json at all"}
	good2, good2ID := b.record(t, tg.URL)

	resp, err := b.h.Handle(ctx, events.SQSEvent{Records: []events.SQSMessage{garbage, good, expired, noPayload, badURL, wrongShape, good2}})
	if err != nil || len(resp.BatchItemFailures) != 0 {
		t.Fatalf("Handle: %+v, %v", resp, err)
	}
	want := map[string]message.Status{
		goodID: message.Delivered, good2ID: message.Delivered, expiredID: message.Expired,
		noPayloadID: message.Failed, badURLID: message.Failed, wrongShapeID: message.Failed,
	}
	for id, status := range want {
		rec, err := b.store.Get(ctx, id)
		if err != nil || rec.Status != status {
			t.Errorf("%s: %s (%v), want %s", id, rec.Status, err, status)
		}
		if status == message.Failed && (rec.LastAttempt == nil || rec.LastAttempt.Error == "") {
			t.Errorf("%s: failed without a reason: %+v", id, rec.LastAttempt)
		}
	}
	if tg.total() != 2 || tg.count(goodID) != 1 || tg.count(good2ID) != 1 {
		t.Errorf("target pushes %v, want the two good ones once", tg.hits)
	}
}

func TestHandlePlainHTTPRefused(t *testing.T) {
	t.Parallel()
	b := newBundle(t, func(h *Handler) { h.Config.AllowHTTPTargets = false })
	tg := newTarget(t, 200, nil, 0)
	rec, id := b.record(t, tg.URL)
	resp, err := b.h.Handle(context.Background(), events.SQSEvent{Records: []events.SQSMessage{rec}})
	if err != nil || len(resp.BatchItemFailures) != 0 {
		t.Fatalf("Handle: %+v, %v", resp, err)
	}
	if status, _ := b.status(t, id); status != message.Failed || tg.total() != 0 {
		t.Fatalf("record %s, %d pushes", status, tg.total())
	}
}

func TestHandleRefusesPrivateTargets(t *testing.T) {
	t.Parallel()
	client := push.NewClient(push.Options{})
	t.Cleanup(client.CloseIdleConnections)
	b := newBundle(t, func(h *Handler) { h.Sender = client })
	tg := newTarget(t, 200, nil, 0)
	_, port, _ := net.SplitHostPort(tg.Listener.Addr().String())
	rec, id := b.record(t, "http://localhost:"+port+"/")
	resp, err := b.h.Handle(context.Background(), events.SQSEvent{Records: []events.SQSMessage{rec}})
	if err != nil || len(resp.BatchItemFailures) != 0 {
		t.Fatalf("Handle: %+v, %v", resp, err)
	}
	if status, _ := b.status(t, id); status != message.Failed || tg.total() != 0 {
		t.Fatalf("record %s, %d pushes; want failed, none", status, tg.total())
	}
}

func TestHandleCountsStoreCalls(t *testing.T) {
	t.Parallel()
	b := newBundle(t, nil)
	tg := newTarget(t, 200, nil, 0)
	const n = 200
	var ev events.SQSEvent
	for range n {
		rec, _ := b.record(t, tg.URL)
		ev.Records = append(ev.Records, rec)
	}
	writes0, reads0 := b.store.Counts()
	resp, err := b.h.Handle(context.Background(), ev)
	if err != nil || len(resp.BatchItemFailures) != 0 {
		t.Fatalf("Handle: %d failures, %v", len(resp.BatchItemFailures), err)
	}
	writes, reads := b.store.Counts()
	if tg.total() != n {
		t.Fatalf("%d pushes, want %d", tg.total(), n)
	}
	if w := writes - writes0; w > 2*n {
		t.Errorf("%d store writes for %d messages, want at most 2 each", w, n)
	}
	if r := reads - reads0; r != 0 {
		t.Errorf("%d store reads, want 0", r)
	}
	if b.queue.calls != 0 {
		t.Errorf("%d visibility calls on the happy path", b.queue.calls)
	}
}

func TestBackoff(t *testing.T) {
	t.Parallel()
	h := &Handler{Config: config.Defaults(), Jitter: func(d time.Duration) time.Duration { return d }}
	tests := []struct {
		attempt    int
		retryAfter time.Duration
		want       time.Duration
	}{
		{1, 0, 10 * time.Second},
		{2, 0, 20 * time.Second},
		{3, 0, 40 * time.Second},
		{9, 0, 2560 * time.Second},
		{10, 0, time.Hour},
		{500, 0, time.Hour},
		{1, 30 * time.Second, 30 * time.Second},
		{1, 5 * time.Hour, time.Hour},
	}
	for _, tt := range tests {
		if got := h.backoff(tt.attempt, tt.retryAfter); got != tt.want {
			t.Errorf("backoff(%d, %s) = %s, want %s", tt.attempt, tt.retryAfter, got, tt.want)
		}
	}
	random := &Handler{Config: config.Defaults()}
	for range 100 {
		if d := random.backoff(3, 0); d < 0 || d > 40*time.Second {
			t.Fatalf("jittered backoff %s outside [0, 40s]", d)
		}
	}
}
