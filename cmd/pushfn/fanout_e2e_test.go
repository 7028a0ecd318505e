package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/url"
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
	"github.com/pushfn/pushfn/shared/local/receiver"
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

// timedReceiver is pushfn's receiver (the one `pushfn receiver --secret` serves), in process:
// it verifies each push's signature with the endpoint's secret and keeps, per webhook-id, the
// pushes and their arrival times.
type timedReceiver struct {
	*httptest.Server
	mu      sync.Mutex
	pushes  map[string]int
	badSigs int
	arrived []time.Time
}

func newTimedReceiver(t *testing.T, secret string) *timedReceiver {
	t.Helper()
	key, err := push.ParseSecret(secret)
	if err != nil {
		t.Fatal(err)
	}
	tr := &timedReceiver{pushes: map[string]int{}}
	rc := &receiver.Receiver{Status: http.StatusOK, Keys: [][]byte{key}}
	rc.OnPush = func(p receiver.Push) {
		tr.mu.Lock()
		defer tr.mu.Unlock()
		tr.arrived = append(tr.arrived, time.Now())
		tr.pushes[p.ID]++
		if !p.Signed || !p.SignatureOK {
			tr.badSigs++
		}
	}
	tr.Server = httptest.NewServer(rc)
	t.Cleanup(tr.Close)
	return tr
}

// got returns the pushes per webhook-id, the pushes with a bad or no signature, and the most
// pushes that arrived within one calendar second, with the count of each second.
func (tr *timedReceiver) got() (per map[string]int, bad, maxPerSecond int, seconds []int) {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	per = maps.Clone(tr.pushes)
	bySecond := map[int64]int{}
	var first, last int64
	for i, at := range tr.arrived {
		s := at.Unix()
		bySecond[s]++
		if i == 0 || s < first {
			first = s
		}
		last = max(last, s)
	}
	for s := first; len(tr.arrived) > 0 && s <= last; s++ {
		seconds = append(seconds, bySecond[s])
		maxPerSecond = max(maxPerSecond, bySecond[s])
	}
	return per, tr.badSigs, maxPerSecond, seconds
}

func newSecret(t *testing.T) string {
	t.Helper()
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return "whsec_" + base64.StdEncoding.EncodeToString(b)
}

// TestIntegrationFanOutToATenant publishes 300 events of three types through the batch route
// to a tenant of three endpoints, each with its own secret: one subscribed to order.* only, one
// disabled, one limited to 5 deliveries a second. Each receives exactly the events it
// subscribed to, once each, signed with its own secret; the disabled one none, its deliveries
// failed endpoint_disabled; the limited one never more than 5 in a calendar second.
func TestIntegrationFanOutToATenant(t *testing.T) {
	t.Parallel()
	s := startStack(t)
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	tenant := "tenant-" + strings.ToLower(s.table)
	type ep struct {
		view endpointView
		recv *timedReceiver
	}
	create := func(extra map[string]any) ep {
		secret := newSecret(t)
		e := ep{recv: newTimedReceiver(t, secret)}
		body := map[string]any{"url": e.recv.URL + "/hook", "tenant_id": tenant, "secret": secret}
		maps.Copy(body, extra)
		if code := s.do(t, ctx, http.MethodPost, "/v1/endpoints", body, &e.view); code != http.StatusCreated {
			t.Fatalf("create %v: %d", extra, code)
		}
		return e
	}
	filtered := create(map[string]any{"event_types": []string{"order.*"}})
	disabled := create(map[string]any{"disabled": true})
	limited := create(map[string]any{"rate_limit": map[string]any{"per_second": 5}})

	types := []string{"order.created", "order.shipped", "invoice.paid"}
	var msgs []any
	for i := range 300 {
		msgs = append(msgs, map[string]any{"event_type": types[i%3], "tenant_id": tenant, "payload": map[string]any{"n": i}})
	}
	var acc struct {
		Messages []struct {
			ID     string `json:"id"`
			Status string `json:"status"`
		} `json:"messages"`
	}
	if code := s.do(t, ctx, http.MethodPost, "/v1/messages/batch", map[string]any{"messages": msgs}, &acc); code != http.StatusAccepted || len(acc.Messages) != 300 {
		t.Fatalf("publish: %d, %d messages", code, len(acc.Messages))
	}
	orders := map[string]bool{}
	for i, m := range acc.Messages {
		if types[i%3] != "invoice.paid" {
			orders[m.ID] = true
		}
	}
	if !poll(ctx, 200*time.Millisecond, func() bool {
		a, _, _, _ := filtered.recv.got()
		c, _, _, _ := limited.recv.got()
		return len(a) == 200 && len(c) == 300
	}) {
		a, _, _, _ := filtered.recv.got()
		c, _, _, _ := limited.recv.got()
		// What became of the first event the limited endpoint missed, for whoever reads the failure.
		for _, m := range acc.Messages {
			if c[m.ID] == 0 {
				dl := message.DeliveryID(m.ID, limited.view.ID)
				rec, err := store.NewDynamoDB(awstest.DynamoDB(t), s.table, 0).Get(context.Background(), dl)
				t.Logf("missing %s (delivery %s): record %+v (%v); its log lines:", m.ID, dl, rec, err)
				for _, line := range strings.Split(s.logs.String(), "\n") {
					if strings.Contains(line, m.ID) || strings.Contains(line, dl) {
						t.Log(line)
					}
				}
				break
			}
		}
		t.Fatalf("the filtered endpoint got %d events of 200, the limited one %d of 300", len(a), len(c))
	}
	a, badA, _, _ := filtered.recv.got()
	c, badC, maxC, seconds := limited.recv.got()
	b, _, _, _ := disabled.recv.got()
	for id, n := range a {
		if n != 1 || !orders[id] {
			t.Errorf("the order.* endpoint got %s %d times (an order event: %v)", id, n, orders[id])
		}
	}
	for _, m := range acc.Messages {
		if c[m.ID] != 1 {
			t.Errorf("the limited endpoint got %s %d times, want once", m.ID, c[m.ID])
		}
	}
	if badA != 0 || badC != 0 || len(b) != 0 {
		t.Errorf("bad signatures: %d and %d; the disabled endpoint got %d events", badA, badC, len(b))
	}
	if maxC > 5 {
		t.Errorf("the endpoint limited to 5/s got %d pushes in one second: per second %v", maxC, seconds)
	}
	// The disabled endpoint's deliveries say why it got nothing, once each message's
	// expansion reached it.
	var failed int
	if !poll(ctx, 500*time.Millisecond, func() bool {
		failed = 0
		path := "/v1/endpoints/" + disabled.view.ID + "/deliveries?limit=100"
		for {
			var page struct {
				Deliveries []struct {
					Status      string `json:"status"`
					LastAttempt *struct {
						Error string `json:"error"`
					} `json:"last_attempt"`
				} `json:"deliveries"`
				NextCursor *string `json:"next_cursor"`
			}
			if s.do(t, ctx, http.MethodGet, path, nil, &page) != http.StatusOK {
				return false
			}
			for _, d := range page.Deliveries {
				if d.Status == "failed" && d.LastAttempt != nil && d.LastAttempt.Error == "endpoint_disabled" {
					failed++
				}
			}
			if page.NextCursor == nil {
				return failed == 300
			}
			path = "/v1/endpoints/" + disabled.view.ID + "/deliveries?limit=100&cursor=" + url.QueryEscape(*page.NextCursor)
		}
	}) {
		t.Errorf("the disabled endpoint lists %d deliveries failed endpoint_disabled, want 300", failed)
	}
	t.Logf("order.* endpoint: %d events, once each, signatures ok; disabled: %d pushes, %d deliveries failed endpoint_disabled; "+
		"limited to 5/s: %d events, once each, at most %d in a second, per second %v", len(a), len(b), failed, len(c), maxC, seconds)
}
