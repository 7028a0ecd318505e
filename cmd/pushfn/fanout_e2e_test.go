package main

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/pushfn/pushfn/shared/local/awstest"
	"github.com/pushfn/pushfn/shared/message"
	"github.com/pushfn/pushfn/shared/push"
	"github.com/pushfn/pushfn/shared/store"
)

// pathCounter is a loopback receiver standing for many endpoints: it counts, per path, the
// pushes of each webhook-id it answered 200.
type pathCounter struct {
	*httptest.Server
	mu  sync.Mutex
	got map[string]map[string]int // path -> webhook-id -> pushes
	n   int
}

func newPathCounter(t *testing.T) *pathCounter {
	t.Helper()
	pc := &pathCounter{got: map[string]map[string]int{}}
	pc.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		pc.mu.Lock()
		defer pc.mu.Unlock()
		if pc.got[r.URL.Path] == nil {
			pc.got[r.URL.Path] = map[string]int{}
		}
		pc.got[r.URL.Path][r.Header.Get(push.HeaderID)]++
		pc.n++
	}))
	t.Cleanup(pc.Close)
	return pc
}

// of returns, per path, how many pushes of message id it received, and the pushes in all.
func (pc *pathCounter) of(id string) (map[string]int, int) {
	pc.mu.Lock()
	defer pc.mu.Unlock()
	per := map[string]int{}
	for path, ids := range pc.got {
		if n := ids[id]; n > 0 {
			per[path] = n
		}
	}
	return per, pc.n
}

// oneDeliverTemplate is the fault tests' template (short timeouts, a 60 s visibility) with one
// deliver invocation at a time, so that the process expanding a fan-out runs nothing else
// while it does: killing it kills the expansion and no delivery in flight.
func oneDeliverTemplate(t *testing.T, root string) string {
	t.Helper()
	path := faultTemplate(t, root)
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	old := "  DeliverMaximumConcurrency:\n    Type: Number\n    Default: 10\n"
	if !strings.Contains(string(raw), old) {
		t.Fatalf("template.yaml no longer has %q: update oneDeliverTemplate", old)
	}
	s := strings.Replace(string(raw), old, "  DeliverMaximumConcurrency:\n    Type: Number\n    Default: 1\n", 1)
	out := filepath.Join(t.TempDir(), "template.yaml")
	if err := os.WriteFile(out, []byte(s), 0o600); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestIntegrationFanOutToThousandsSurvivesAKill publishes one event to a tenant of 2,000
// endpoints (one loopback receiver, a path each) in one API call, kills the deliver process
// while it expands the fan-out (after its first checkpoint, before its last), and checks that
// every endpoint received the event exactly once, with the message's id, and that the
// message's record counts 2,000 deliveries, all delivered.
func TestIntegrationFanOutToThousandsSurvivesAKill(t *testing.T) {
	t.Parallel()
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	s := startStackWith(t, stackOptions{args: []string{"--template", oneDeliverTemplate(t, root)}})
	records := store.NewDynamoDB(awstest.DynamoDB(t), s.table, 0)
	deliveries := store.NewDynamoDB(awstest.DynamoDB(t), s.table, 0)
	ctx, cancel := context.WithTimeout(t.Context(), 8*time.Minute)
	defer cancel()
	rc := newPathCounter(t)
	const n = 2000
	tenant := "fanout-" + strings.ToLower(s.table)
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(8)
	for i := range n {
		g.Go(func() error {
			var e endpointView
			body := map[string]any{"url": rc.URL + "/" + strconv.Itoa(i), "tenant_id": tenant}
			if code := s.do(t, gctx, http.MethodPost, "/v1/endpoints", body, &e); code != http.StatusCreated {
				t.Errorf("create endpoint %d: %d", i, code)
			}
			return nil
		})
	}
	_ = g.Wait()
	if t.Failed() {
		t.FailNow()
	}

	// Up to three tries: a try whose expansion ended before the kill proves nothing.
	for try := 1; ; try++ {
		var acc struct {
			ID string `json:"id"`
		}
		start := time.Now()
		code := s.do(t, ctx, http.MethodPost, "/v1/messages", map[string]any{"event_type": "order.shipped", "tenant_id": tenant,
			"payload": map[string]any{"try": try}}, &acc)
		took := time.Since(start)
		if code != http.StatusAccepted || !message.ValidID(acc.ID) {
			t.Fatalf("publish: %d %+v", code, acc)
		}
		t.Logf("try %d: the fan-out to %d endpoints was accepted in %s", try, n, took.Round(time.Millisecond))
		// Kill the deliver process once the expansion has checkpointed a page, before its end.
		var at message.Record
		if !poll(ctx, 5*time.Millisecond, func() bool {
			rec, err := records.Get(ctx, acc.ID)
			at = rec
			return err == nil && (rec.FanoutDeliveries > 0 || rec.Status.Final())
		}) {
			t.Fatalf("the expansion never started: %+v", at)
		}
		killed := 0
		for _, pid := range processesUnder(filepath.Join(s.buildDir, "DeliverFunction")) {
			if syscall.Kill(pid, syscall.SIGKILL) == nil {
				killed++
			}
		}
		after, err := records.Get(ctx, acc.ID)
		if err != nil {
			t.Fatal(err)
		}
		midway := killed > 0 && !after.Status.Final() && after.FanoutDeliveries > 0 && after.FanoutDeliveries < n
		t.Logf("try %d: killed %d deliver process(es) with %d deliveries queued, record %s", try, killed, after.FanoutDeliveries, after.Status)

		// Every endpoint gets the event once, whether or not the kill came mid-way.
		var per map[string]int
		if !poll(ctx, 100*time.Millisecond, func() bool { per, _ = rc.of(acc.ID); return len(per) == n }) {
			t.Fatalf("try %d: %d of %d endpoints received the event", try, len(per), n)
		}
		var rec message.Record
		if !poll(ctx, 100*time.Millisecond, func() bool {
			rec, err = records.Get(ctx, acc.ID)
			return err == nil && rec.Status.Final()
		}) {
			t.Fatalf("try %d: the fan-out's record never ended: %+v", try, rec)
		}
		var counts map[message.Status]int
		if !poll(ctx, 100*time.Millisecond, func() bool {
			counts, err = deliveries.CountDeliveries(ctx, acc.ID)
			return err == nil && counts[message.Delivered] == n
		}) {
			t.Fatalf("try %d: deliveries by state %v, want %d delivered", try, counts, n)
		}
		per, _ = rc.of(acc.ID)
		for path, k := range per {
			if k != 1 {
				t.Errorf("try %d: %s received the event %d times", try, path, k)
			}
		}
		if rec.Status != message.Delivered || rec.FanoutDeliveries != n || len(counts) != 1 {
			t.Fatalf("try %d: record %s with %d deliveries, by state %v; want delivered, %d, all delivered", try, rec.Status, rec.FanoutDeliveries, counts, n)
		}
		t.Logf("try %d: %d endpoints received the event once each; record delivered with %d deliveries (%d expansion attempts)", try, len(per), rec.FanoutDeliveries, rec.Attempts)
		if midway {
			if rec.Attempts < 2 {
				t.Errorf("try %d: the expansion was killed mid-way yet took %d attempt(s)", try, rec.Attempts)
			}
			return
		}
		if try == 3 {
			t.Fatal("three tries, and the kill never came while the expansion was mid-way")
		}
	}
}
