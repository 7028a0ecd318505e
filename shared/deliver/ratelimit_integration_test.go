package deliver

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/pushfn/pushfn/shared/endpoint"
	"github.com/pushfn/pushfn/shared/local/awstest"
	"github.com/pushfn/pushfn/shared/local/esm"
	"github.com/pushfn/pushfn/shared/local/lambdarun"
	"github.com/pushfn/pushfn/shared/message"
	"github.com/pushfn/pushfn/shared/push"
	"github.com/pushfn/pushfn/shared/queue"
	"github.com/pushfn/pushfn/shared/ratelimit"
	"github.com/pushfn/pushfn/shared/store"
)

// countingSlots counts the writes the slot counters cost: every UpdateItem, a failed
// conditional one included (DynamoDB charges it as a write).
type countingSlots struct {
	*dynamodb.Client
	writes atomic.Int64
}

func (c *countingSlots) UpdateItem(ctx context.Context, in *dynamodb.UpdateItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error) {
	c.writes.Add(1)
	return c.Client.UpdateItem(ctx, in, optFns...)
}

// arrivals is a loopback receiver that notes when each push arrives, by message id.
type arrivals struct {
	mu sync.Mutex
	at map[string][]time.Time
}

func (a *arrivals) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	now := time.Now()
	a.mu.Lock()
	defer a.mu.Unlock()
	id := r.Header.Get(push.HeaderID)
	a.at[id] = append(a.at[id], now)
}

func (a *arrivals) snapshot() map[string][]time.Time {
	a.mu.Lock()
	defer a.mu.Unlock()
	out := make(map[string][]time.Time, len(a.at))
	for id, ts := range a.at {
		out[id] = append([]time.Time(nil), ts...)
	}
	return out
}

// TestIntegrationRateLimit runs three deliver functions at once, as separate containers (each
// with its own limiter and endpoint cache), fed by SQS through event source mappings, against
// one endpoint limited to 5 per second, with its slot counter and records in DynamoDB Local.
// The receiver never sees more than 5 pushes start in one calendar second, every message arrives
// exactly once, and the shared state costs at most one write per 10 deliveries, plus a constant.
func TestIntegrationRateLimit(t *testing.T) {
	t.Parallel()
	const (
		rate       = 5
		messages   = 60
		containers = 3
	)
	ctx := context.Background()
	ddb, sq := awstest.DynamoDB(t), awstest.SQS(t)
	table := awstest.Table(t, ddb)
	queueURL, _ := awstest.Queues(t, sq, 20, 30*time.Second)
	recv := &arrivals{at: map[string][]time.Time{}}
	srv := httptest.NewServer(recv)
	t.Cleanup(srv.Close)

	kr, err := endpoint.NewKeyring("an-endpoint-secrets-key-of-the-integration-test")
	if err != nil {
		t.Fatal(err)
	}
	eps := store.NewDynamoDBEndpoints(ddb, table)
	epID := endpoint.NewID(time.Now())
	rec := endpoint.Record{Endpoint: endpoint.Endpoint{ID: epID, URL: srv.URL + "/limited", RateLimit: &endpoint.RateLimit{PerSecond: rate},
		CreatedAt: time.Now(), UpdatedAt: time.Now()}}
	rec.Secret = kr.Seal(epID, endpoint.GenerateSecret())
	if _, err := eps.CreateEndpoint(ctx, rec); err != nil {
		t.Fatal(err)
	}
	db := store.NewDynamoDB(ddb, table, awstest.RecordTTL)
	counted := &countingSlots{Client: ddb}
	producer := queue.NewProducer(sq, queueURL)

	var entries []queue.Entry
	ids := make([]string, messages)
	for i := range ids {
		id := message.NewID(time.Now())
		ids[i] = id
		if err := db.Create(ctx, message.Record{ID: id, Fingerprint: fingerprint(id), EndpointID: epID, CreatedAt: time.Now(), UpdatedAt: time.Now()}); err != nil {
			t.Fatal(err)
		}
		body, _ := json.Marshal(message.Envelope{ID: id, Fingerprint: fingerprint(id), EndpointID: epID, Payload: json.RawMessage(`{"n":1}`)})
		entries = append(entries, queue.Entry{Body: string(body)})
	}
	for i, err := range producer.Send(ctx, entries) {
		if err != nil {
			t.Fatalf("queue message %d: %v", i, err)
		}
	}

	run, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	t.Cleanup(func() { stop(); wg.Wait() })
	for range containers {
		b := newBundle(t, func(h *Handler) {
			h.Store = db
			h.Endpoints = NewEndpointCache(eps, kr, message.Rules{AllowHTTPTargets: true, AllowPrivateTargets: true})
			h.Limiter = ratelimit.New(store.NewDynamoDBSlots(counted, table))
			h.Queue, h.QueueURL, h.Producer = sq, queueURL, producer
			h.StoreBudget = DefaultStoreBudget
		})
		m, err := esm.New(sq, lambdarun.NewInProcess(b.h.Handle), esm.Config{QueueURL: queueURL, BatchSize: 10, Concurrency: 1, ReportBatchItemFailures: true})
		if err != nil {
			t.Fatal(err)
		}
		wg.Go(func() {
			if err := m.Run(run); err != nil {
				t.Errorf("mapping: %v", err)
			}
		})
	}

	// Wait until every message is recorded delivered: at 5 per second, about 12 s.
	deadline := time.Now().Add(3 * time.Minute)
	for pending := ids; len(pending) > 0; {
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d messages not delivered after 3 minutes", len(pending), messages)
		}
		var still []string
		for _, id := range pending {
			r, err := db.Get(ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			if r.Status != message.Delivered {
				still = append(still, id)
			}
		}
		pending = still
		if len(pending) > 0 {
			time.Sleep(200 * time.Millisecond) // polling a condition, not timing one
		}
	}
	stop()
	wg.Wait()

	got := recv.snapshot()
	perSecond := map[int64]int{}
	for _, id := range ids {
		if n := len(got[id]); n != 1 {
			t.Errorf("%s arrived %d times, want once", id, n)
		}
		for _, at := range got[id] {
			perSecond[at.Unix()]++
		}
	}
	if len(got) != messages {
		t.Errorf("pushes for %d message ids, want %d", len(got), messages)
	}
	first, last := int64(-1), int64(-1)
	for sec, n := range perSecond {
		if n > rate {
			t.Errorf("%d pushes arrived in second %d, more than the limit of %d", n, sec, rate)
		}
		if first < 0 || sec < first {
			first = sec
		}
		last = max(last, sec)
	}
	counts := make([]int, 0, last-first+1)
	for s := first; s <= last; s++ {
		counts = append(counts, perSecond[s])
	}
	// One write per block of 10 slots; beyond that, per container: its first block, which costs
	// up to 3 writes when the counter is missing or behind (the continuation that fails, the
	// restart, and a continuation after losing the restart to another container), and its last
	// block, which may go partly unused.
	writes := counted.writes.Load()
	limit := int64(messages/ratelimit.MinBlock + 3*containers)
	t.Logf("%d deliveries in %d s, per second %v; %d slot counter writes (%.3f per delivery, limit %d)",
		messages, last-first+1, counts, writes, float64(writes)/messages, limit)
	if writes > limit {
		t.Errorf("%d slot counter writes for %d deliveries, want at most %d", writes, messages, limit)
	}
}
