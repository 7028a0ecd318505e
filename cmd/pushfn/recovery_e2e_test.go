package main

import (
	"context"
	"net/http"
	"path/filepath"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/pushfn/pushfn/shared/local/awstest"
	"github.com/pushfn/pushfn/shared/message"
	"github.com/pushfn/pushfn/shared/store"
)

// TestIntegrationRecoverAWindow sends 1,000 messages to an endpoint whose receiver answers 503
// until every one has failed (two attempts each), fixes the receiver, starts one recovery of the
// window, and kills the deliver process while the recovery runs (after its first checkpoint):
// every message is delivered exactly once, and the recovery says 1,000 matched and 1,000
// requeued.
func TestIntegrationRecoverAWindow(t *testing.T) {
	t.Parallel()
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	s := startStackWith(t, stackOptions{env: []string{"MAX_ATTEMPTS=2"}, args: []string{"--template", oneDeliverTemplate(t, root)}})
	records := store.NewDynamoDB(awstest.DynamoDB(t), s.table, 0)
	ctx, cancel := context.WithTimeout(t.Context(), 8*time.Minute)
	defer cancel()
	var broken atomic.Bool
	broken.Store(true)
	tg := newFaultTarget(t, func(int64, *http.Request) int {
		if broken.Load() {
			return http.StatusServiceUnavailable
		}
		return http.StatusOK
	})
	var ep endpointView
	if code := s.do(t, ctx, http.MethodPost, "/v1/endpoints", map[string]any{"url": tg.url()}, &ep); code != http.StatusCreated {
		t.Fatalf("create endpoint: %d", code)
	}
	since := time.Now().Add(-time.Second)
	const n = 1000
	var ids []string
	for b := range 2 {
		var msgs []any
		for i := range n / 2 {
			msgs = append(msgs, map[string]any{"endpoint_id": ep.ID, "payload": map[string]any{"n": b*n/2 + i}})
		}
		var acc struct {
			Messages []struct {
				ID string `json:"id"`
			} `json:"messages"`
		}
		if code := s.do(t, ctx, http.MethodPost, "/v1/messages/batch", map[string]any{"messages": msgs}, &acc); code != http.StatusAccepted {
			t.Fatalf("batch %d: %d", b, code)
		}
		for _, m := range acc.Messages {
			ids = append(ids, m.ID)
		}
	}
	failed := func() int {
		c, cursor := 0, ""
		for {
			page, err := records.ListDeliveries(ctx, store.DeliveryQuery{EndpointID: ep.ID, Status: message.Failed, Limit: 100, Cursor: cursor})
			if err != nil {
				return -1
			}
			c += len(page.Records)
			if cursor = page.Next; cursor == "" {
				return c
			}
		}
	}
	if !poll(ctx, time.Second, func() bool { return failed() == n }) {
		t.Fatalf("%d of %d messages failed", failed(), n)
	}
	broken.Store(false)
	var rcv struct {
		ID       string `json:"id"`
		Status   string `json:"status"`
		Matched  int    `json:"matched"`
		Requeued int    `json:"requeued"`
	}
	if code := s.do(t, ctx, http.MethodPost, "/v1/endpoints/"+ep.ID+"/recover", map[string]any{"since": since.UTC().Format(time.RFC3339Nano)}, &rcv); code != http.StatusAccepted {
		t.Fatalf("recover: %d %+v", code, rcv)
	}
	// Kill the deliver process once the recovery has checkpointed a page, before its end.
	var at message.Record
	if !poll(ctx, 5*time.Millisecond, func() bool {
		rec, err := records.Get(ctx, rcv.ID)
		at = rec
		return err == nil && (rec.Matched > 0 || rec.Status.Final())
	}) {
		t.Fatalf("the recovery never started: %+v", at)
	}
	killed := 0
	for _, pid := range processesUnder(filepath.Join(s.buildDir, "DeliverFunction")) {
		if syscall.Kill(pid, syscall.SIGKILL) == nil {
			killed++
		}
	}
	after, err := records.Get(ctx, rcv.ID)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("killed %d deliver process(es) with the recovery at %d matched, %d requeued, record %s", killed, after.Matched, after.FanoutDeliveries, after.Status)
	if killed == 0 || after.Status.Final() || after.Matched >= n {
		t.Fatalf("the kill did not come while the recovery was mid-way: %d killed, record %+v", killed, after)
	}
	if !poll(ctx, 200*time.Millisecond, func() bool {
		if s.do(t, ctx, http.MethodGet, "/v1/recoveries/"+rcv.ID, nil, &rcv) != http.StatusOK {
			return false
		}
		return rcv.Status != "running"
	}) {
		t.Fatalf("the recovery never ended: %+v", rcv)
	}
	if rcv.Status != "finished" || rcv.Matched != n || rcv.Requeued != n {
		t.Fatalf("recovery %+v, want finished with %d matched and %d requeued", rcv, n, n)
	}
	var got map[string]int
	if !poll(ctx, 200*time.Millisecond, func() bool { got = tg.delivered(); return len(got) == n }) {
		t.Fatalf("%d of %d messages delivered", len(got), n)
	}
	for _, id := range ids {
		if got[id] != 1 {
			t.Errorf("%s delivered %d times, want once", id, got[id])
		}
	}
	t.Logf("recovery %s: %d matched, %d requeued; %d messages delivered once each after the receiver came back", rcv.ID, rcv.Matched, rcv.Requeued, len(got))
}
