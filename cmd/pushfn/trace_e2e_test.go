package main

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/pushfn/pushfn/shared/deliver"
	"github.com/pushfn/pushfn/shared/tracing/tracingtest"
)

// parentTarget is a push target that keeps the traceparent headers each message's pushes carried.
type parentTarget struct {
	srv *httptest.Server

	mu      sync.Mutex
	parents map[string][]string // webhook-id → the traceparent values of its pushes
}

func newParentTarget(t *testing.T) *parentTarget {
	pt := &parentTarget{parents: map[string][]string{}}
	pt.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		pt.mu.Lock()
		pt.parents[r.Header.Get("Webhook-Id")] = r.Header.Values("Traceparent")
		pt.mu.Unlock()
	}))
	t.Cleanup(pt.srv.Close)
	return pt
}

func (pt *parentTarget) of(id string) []string {
	pt.mu.Lock()
	defer pt.mu.Unlock()
	return pt.parents[id]
}

// A message's own traceparent, which a target gets as it is while tracing is off.
const callersParent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"

// postTraced posts one message to pt, with the caller's own traceparent among its headers when
// own is set, waits until it is delivered and returns its id.
func postTraced(t *testing.T, ctx context.Context, s *e2eStack, pt *parentTarget, own bool) string {
	t.Helper()
	m := newMessage(pt.srv.URL+"/push", 0)
	if own {
		m["target"].(map[string]any)["headers"] = map[string]string{"traceparent": callersParent}
	}
	var accepted status
	if code := s.do(t, ctx, http.MethodPost, "/v1/messages", m, &accepted); code != http.StatusAccepted {
		t.Fatalf("POST: %d, want 202", code)
	}
	if st := s.awaitFinal(t, ctx, accepted.ID); st.Status != "delivered" {
		t.Fatalf("message %s: %+v, want delivered", accepted.ID, st)
	}
	return accepted.ID
}

// With OTEL_EXPORTER_OTLP_ENDPOINT set, the real functions export to an OTLP receiver on
// loopback: the api's invocation span with its DynamoDB and SQS calls under it, and the deliver
// function's invocation span with its DynamoDB calls and the push span under it; the push span
// names the message, its target's host, the attempt, the status and the outcome, and the target
// received that span's context as traceparent, in place of the message's own.
func TestIntegrationTracingE2E(t *testing.T) {
	t.Parallel()
	otlp := tracingtest.NewReceiver(t)
	s := startStackWith(t, stackOptions{env: []string{"OTEL_EXPORTER_OTLP_ENDPOINT=" + otlp.URL()}})
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	pt := newParentTarget(t)
	id := postTraced(t, ctx, s, pt, true)

	pushOf := func(spans []tracingtest.Span) *tracingtest.Span {
		for i := range spans {
			if spans[i].Name == deliver.PushSpanName && spans[i].Attrs[string(deliver.AttrMessageID)] == id {
				return &spans[i]
			}
		}
		return nil
	}
	byID := func(spans []tracingtest.Span, spanID string) *tracingtest.Span {
		for i := range spans {
			if spans[i].SpanID == spanID {
				return &spans[i]
			}
		}
		return nil
	}
	// The api's trace: its invocation and the calls under it.
	apiTrace := func(spans []tracingtest.Span) (inv *tracingtest.Span, calls map[string]bool) {
		calls = map[string]bool{}
		for i := range spans {
			if sp := &spans[i]; sp.Name == "ApiFunction" && sp.Parent == "" {
				for _, c := range spans {
					if c.Parent == sp.SpanID && c.TraceID == sp.TraceID {
						calls[c.Name] = true
					}
				}
				if calls["SQS.SendMessage"] || calls["SQS.SendMessageBatch"] {
					return sp, calls
				}
			}
		}
		return nil, calls
	}
	// The deliver function flushes its spans before its invocation ends, the api before it
	// answers: all are there by now, or arrive while the last invocation returns.
	spans, err := otlp.Await(ctx, func(spans []tracingtest.Span) bool {
		p := pushOf(spans)
		inv, _ := apiTrace(spans)
		return p != nil && byID(spans, p.Parent) != nil && inv != nil
	})
	if err != nil {
		t.Fatalf("%v\n%+v", err, spans)
	}
	if _, bad := otlp.Spans(); len(bad) > 0 {
		t.Errorf("exports the receiver could not decode: %v", bad)
	}

	p := pushOf(spans)
	inv := byID(spans, p.Parent)
	if inv.Name != "DeliverFunction" || inv.Parent != "" || inv.Service != "DeliverFunction" || inv.Attrs["faas.invocation_id"] == "" {
		t.Errorf("the push span's parent %+v: want the deliver function's invocation span, a root, with its request id", inv)
	}
	host := pt.srv.Listener.Addr().String()
	for k, want := range map[string]string{
		string(deliver.AttrTargetHost): host, string(deliver.AttrAttempt): "1",
		string(deliver.AttrStatusCode): "200", string(deliver.AttrOutcome): "delivered",
	} {
		if p.Attrs[k] != want {
			t.Errorf("push span attribute %s = %q, want %q", k, p.Attrs[k], want)
		}
	}
	deliverCalls := map[string]bool{}
	for _, c := range spans {
		if c.Parent == inv.SpanID && c.TraceID == inv.TraceID && c.Scope != p.Scope {
			deliverCalls[c.Name] = true
		}
	}
	if !deliverCalls["DynamoDB.UpdateItem"] {
		t.Errorf("the deliver invocation's AWS calls %v: want DynamoDB.UpdateItem (the claim and the result) under it", deliverCalls)
	}
	if apiInv, calls := apiTrace(spans); !calls["DynamoDB.PutItem"] && !calls["DynamoDB.TransactWriteItems"] || apiInv.Service != "ApiFunction" {
		t.Errorf("the api invocation's calls %v (service %s): want its DynamoDB write and SQS send under it", calls, apiInv.Service)
	}
	want := "00-" + p.TraceID + "-" + p.SpanID + "-01"
	if got := pt.of(id); len(got) != 1 || got[0] != want {
		t.Errorf("the target's traceparent %q, want the push span's %q (not the message's own)", got, want)
	}
}

// With tracing off (no OTLP endpoint), a target receives no traceparent of pushfn's: none at all
// for a message without one, and the message's own as it is.
func TestIntegrationTracingOffE2E(t *testing.T) {
	t.Parallel()
	s := startStack(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	pt := newParentTarget(t)
	plain := postTraced(t, ctx, s, pt, false)
	own := postTraced(t, ctx, s, pt, true)
	if got := pt.of(plain); len(got) != 0 {
		t.Errorf("a message without a traceparent arrived with %q", got)
	}
	if got := pt.of(own); len(got) != 1 || got[0] != callersParent {
		t.Errorf("a message with its own traceparent arrived with %q, want %q", got, callersParent)
	}
}
