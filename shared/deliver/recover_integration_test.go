package deliver

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"golang.org/x/sync/errgroup"

	"github.com/pushfn/pushfn/shared/endpoint"
	"github.com/pushfn/pushfn/shared/local/awstest"
	"github.com/pushfn/pushfn/shared/message"
	"github.com/pushfn/pushfn/shared/queue"
	"github.com/pushfn/pushfn/shared/store"
)

// recoveryScale is how many failed deliveries TestIntegrationRecoveryAtScale recovers:
// PUSHFN_RECOVERY_N when set, else 1,000, which make test runs (seeding them directly in the
// table takes most of the time: about 17 s for 2,000 on a loaded 2-core machine).
func recoveryScale(t *testing.T) int {
	t.Helper()
	if v := os.Getenv("PUSHFN_RECOVERY_N"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			t.Fatalf("PUSHFN_RECOVERY_N=%q: want a positive whole number", v)
		}
		return n
	}
	return 1000
}

// vmHWM is the process's peak resident set (VmHWM), in MiB; 0 where /proc is not there.
func vmHWM() float64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			kb, _ := strconv.Atoi(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")))
			return float64(kb) / 1024
		}
	}
	return 0
}

// visibleAt is a producer that keeps, for each entry it is sent, only when it becomes visible
// (its send time plus its delay), so that what is measured is the recovery's own memory.
type visibleAt struct {
	mu sync.Mutex
	at []time.Time
}

func (v *visibleAt) Send(_ context.Context, entries []queue.Entry) []error {
	now := time.Now()
	v.mu.Lock()
	defer v.mu.Unlock()
	for _, e := range entries {
		v.at = append(v.at, now.Add(time.Duration(e.DelaySeconds)*time.Second))
	}
	return make([]error, len(entries))
}

// TestIntegrationRecoveryAtScale makes N failed deliveries to one endpoint limited to 1,000 a
// second directly in DynamoDB Local (each with its kept copy), then runs one recovery of the
// window through the handler, against the same table: every one is matched and requeued, the
// copies are fed no faster than the rate (copy k delayed k / 1,000 seconds from the start),
// and the heap stays bounded while it pages through them. It logs the peak heap and resident
// set of the process running it, and the time it took.
func TestIntegrationRecoveryAtScale(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	ddb := awstest.DynamoDB(t)
	table := awstest.Table(t, ddb)
	db := store.NewDynamoDB(ddb, table, awstest.RecordTTL)
	eps := store.NewDynamoDBEndpoints(ddb, table)
	kr, err := endpoint.NewKeyring("an-endpoint-secrets-key-of-the-recovery-test")
	if err != nil {
		t.Fatal(err)
	}
	const rate = 1000
	epID := endpoint.NewID(time.Now())
	rec := endpoint.Record{Endpoint: endpoint.Endpoint{ID: epID, URL: "http://127.0.0.1:1/x", RateLimit: &endpoint.RateLimit{PerSecond: rate},
		CreatedAt: time.Now(), UpdatedAt: time.Now()}}
	rec.Secret = kr.Seal(epID, endpoint.GenerateSecret())
	if _, err := eps.CreateEndpoint(ctx, rec); err != nil {
		t.Fatal(err)
	}
	n := recoveryScale(t)
	start := time.Now()
	base := start.Add(-time.Hour)
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(16)
	for i := range n {
		g.Go(func() error {
			at := base.Add(time.Duration(i) * time.Millisecond)
			id := message.NewID(at)
			fp := "sha256:" + id
			if err := db.Create(gctx, message.Record{ID: id, Fingerprint: fp, EndpointID: epID, CreatedAt: at, UpdatedAt: at}); err != nil {
				return err
			}
			body, err := message.EncodeEnvelope(message.Envelope{ID: id, Fingerprint: fp, EndpointID: epID, Payload: json.RawMessage(fmt.Sprintf(`{"n":%d,"pad":"%0200d"}`, i, i))})
			if err != nil {
				return err
			}
			_, err = db.Finish(gctx, id, store.Outcome{Now: at, Status: message.Failed, Fingerprint: fp, Keep: body, Attempt: &message.Attempt{At: at, StatusCode: 503}})
			return err
		})
	}
	if err := g.Wait(); err != nil {
		t.Fatal(err)
	}
	seeded := time.Since(start)

	prod := &visibleAt{}
	b := newBundle(t, func(h *Handler) {
		h.Store, h.Listing, h.Producer = db, db, prod
		h.Endpoints = NewEndpointCache(eps, kr, message.Rules{AllowHTTPTargets: true, AllowPrivateTargets: true})
	})
	now := time.Now()
	id := message.NewPrefixedID(message.RecoveryIDPrefix, now)
	since, until := base.Add(-time.Second), now
	if err := db.Create(ctx, message.Record{ID: id, Fingerprint: "recovery:" + id, EndpointID: epID, RecoverSince: since, RecoverUntil: until, CreatedAt: now, UpdatedAt: now}); err != nil {
		t.Fatal(err)
	}
	body, _ := json.Marshal(message.Envelope{ID: id, EndpointID: epID, Since: &since, Until: &until, Fingerprint: "recovery:" + id})
	var peakHeap atomic.Uint64
	done := make(chan struct{})
	go func() {
		var ms runtime.MemStats
		for {
			runtime.ReadMemStats(&ms)
			if ms.HeapInuse > peakHeap.Load() {
				peakHeap.Store(ms.HeapInuse)
			}
			select {
			case <-done:
				return
			case <-time.After(20 * time.Millisecond):
			}
		}
	}()
	began := time.Now()
	// An invocation with Lambda's 120 s deadline, received again (as the queue would hand back
	// a paused copy) until the recovery ends.
	for round := 1; ; round++ {
		ictx, cancel := context.WithTimeout(ctx, 120*time.Second)
		resp, err := b.h.Handle(ictx, events.SQSEvent{Records: []events.SQSMessage{{MessageId: "rcv-" + strconv.Itoa(round), Body: string(body)}}})
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		if len(resp.BatchItemFailures) == 0 || round == 50 {
			break
		}
	}
	took := time.Since(began)
	close(done)
	got, err := db.Get(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if got.Status != message.Delivered || got.Matched != n || got.FanoutDeliveries != n {
		t.Fatalf("recovery %s, %d matched, %d requeued; want finished, %d and %d", got.Status, got.Matched, got.FanoutDeliveries, n, n)
	}
	if len(prod.at) != n {
		t.Fatalf("%d copies queued, want %d", len(prod.at), n)
	}
	// Fed no faster than the rate: the k-th copy is due k / rate seconds after the recovery
	// began, and becomes visible no sooner than a second before that (delays are whole seconds).
	for k, at := range prod.at {
		if due := now.Add(time.Duration(k) * time.Second / rate); at.Before(due.Add(-time.Second)) {
			t.Fatalf("copy %d visible %s after the start, due %s after it", k, at.Sub(now), due.Sub(now))
		}
	}
	t.Logf("%d failed deliveries seeded in %s; recovered in %s (%d pages): %d matched, %d requeued, the last visible %d s after the start at %d/s; peak heap %.1f MiB, peak RSS of the process %.1f MiB",
		n, seeded.Round(time.Millisecond), took.Round(time.Millisecond), (n+99)/100, got.Matched, got.FanoutDeliveries,
		int(prod.at[n-1].Sub(now)/time.Second), rate, float64(peakHeap.Load())/(1<<20), vmHWM())
}
