package main

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/pushfn/pushfn/shared/metrics"
	"github.com/pushfn/pushfn/shared/metrics/metricstest"
)

// After a known workload through the real functions, every metrics document they wrote passes
// the checks of the Embedded Metric Format specification, the documents count what was done (the
// messages accepted, each delivery's outcome and each attempt), and the template's dashboard draws
// each metric they hold under its dimensions.
func TestIntegrationMetricsE2E(t *testing.T) {
	t.Parallel()
	s := startStack(t) // a stack of its own: its log holds this workload's documents only
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	ok := newTarget(t, s.key, http.StatusOK, 0, 0)
	flaky := newTarget(t, s.key, http.StatusOK, 1, http.StatusServiceUnavailable) // the first push of each message 503
	gone := newTarget(t, s.key, http.StatusNotFound, 0, 0)
	const batchN = 20
	msgs := make([]any, batchN)
	for i := range msgs {
		msgs[i] = newMessage(ok.url(), i)
	}
	var out struct {
		Messages []status `json:"messages"`
	}
	if code := s.do(t, ctx, http.MethodPost, "/v1/messages/batch", map[string]any{"messages": msgs}, &out); code != http.StatusAccepted || len(out.Messages) != batchN {
		t.Fatalf("POST batch: %d with %d messages, want 202 with %d", code, len(out.Messages), batchN)
	}
	ids := make([]string, 0, batchN+2)
	for _, m := range out.Messages {
		ids = append(ids, m.ID)
	}
	for _, tg := range []*target{flaky, gone} {
		var accepted status
		if code := s.do(t, ctx, http.MethodPost, "/v1/messages", newMessage(tg.url(), 0), &accepted); code != http.StatusAccepted {
			t.Fatalf("POST: %d, want 202", code)
		}
		ids = append(ids, accepted.ID)
	}
	for _, id := range ids {
		s.awaitFinal(t, ctx, id)
	}

	// What the workload did: 22 messages accepted; 21 delivered (one after a retry), one failed;
	// 23 attempts.
	want := map[string]float64{
		"MessagesAccepted":             batchN + 2,
		"Deliveries outcome=delivered": batchN + 1,
		"Deliveries outcome=retrying":  1,
		"Deliveries outcome=failed":    1,
		"AttemptLatency count":         batchN + 3,
	}
	got := func(docs []metricstest.Document) map[string]float64 {
		m := map[string]float64{
			"MessagesAccepted":     metricstest.Sum(docs, metrics.MessagesAccepted, map[string]string{metrics.DimFunction: "ApiFunction"}),
			"AttemptLatency count": 0,
		}
		for _, o := range []string{"delivered", "retrying", "failed"} {
			m["Deliveries outcome="+o] = metricstest.Sum(docs, metrics.Deliveries, map[string]string{metrics.DimFunction: "DeliverFunction", metrics.DimOutcome: o})
		}
		for _, d := range docs {
			m["AttemptLatency count"] += d.Counts[metrics.AttemptLatency]
		}
		return m
	}
	// A function writes its documents after its last result: wait for them.
	var docs []metricstest.Document
	for {
		docs = docs[:0]
		for l := range strings.Lines(s.logs.String()) {
			if line := []byte(strings.TrimSpace(l)); metricstest.IsDocument(line) {
				if d, err := metricstest.Check(line); err == nil {
					docs = append(docs, d)
				}
			}
		}
		g := got(docs)
		done := true
		for k, v := range want {
			done = done && g[k] == v
		}
		if done {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatalf("metrics %v, want %v; the log:\n%s", g, want, tail(s.logs.String(), 40))
		case <-time.After(100 * time.Millisecond):
		}
	}
	// Every document, checked once more to report any that is not valid.
	all := metricstest.Documents(t, s.logs.String())
	fns := map[string]int{}
	for _, d := range all {
		fns[d.Dimensions[metrics.DimFunction]]++
		if d.Dimensions[metrics.DimService] != metrics.Service {
			t.Errorf("document with service %q", d.Dimensions[metrics.DimService])
		}
	}
	if fns["ApiFunction"] == 0 || fns["DeliverFunction"] == 0 || len(fns) != 2 {
		t.Errorf("documents by function %v, want some of ApiFunction and of DeliverFunction only", fns)
	}
	if n := metricstest.Sum(all, metrics.Deliveries, map[string]string{metrics.DimOutcome: "expired"}); n != 0 {
		t.Errorf("%v deliveries expired, want none", n)
	}
	t.Logf("%d metrics documents, all valid: %v", len(all), fns)
	checkDashboardShows(t, all)
}
