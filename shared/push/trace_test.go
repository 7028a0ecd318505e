package push

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

// With tracing on, every push carries the W3C trace context of the span in its context, in
// place of the message's own traceparent and tracestate; with tracing off, it sends none of its
// own and the message's are sent as they are. Both of the client's paths (HTTP/1.1 for small
// bodies, net/http for large ones) agree, and the signature is unchanged by either.
func TestSendTraceContext(t *testing.T) {
	t.Parallel()
	key := specKey(t)
	got := make(chan http.Header, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = r.Body.Read(make([]byte, 1))
		got <- r.Header.Clone()
	}))
	t.Cleanup(srv.Close)
	on := NewClient(Options{AllowPrivate: true, Keys: [][]byte{key}, Propagator: propagation.TraceContext{}})
	off := NewClient(Options{AllowPrivate: true, Keys: [][]byte{key}})
	t.Cleanup(on.CloseIdleConnections)
	t.Cleanup(off.CloseIdleConnections)

	sc := trace.NewSpanContext(trace.SpanContextConfig{
		TraceID:    trace.TraceID{0x4b, 0xf9, 0x2f, 0x35, 0x77, 0xb3, 0x4d, 0xa6, 0xa3, 0xce, 0x92, 0x9d, 0x0e, 0x0e, 0x47, 0x36},
		SpanID:     trace.SpanID{0x00, 0xf0, 0x67, 0xaa, 0x0b, 0xa9, 0x02, 0xb7},
		TraceFlags: trace.FlagsSampled,
	})
	const ours = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	const theirs = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
	spanCtx := trace.ContextWithSpanContext(context.Background(), sc)
	own := map[string]string{"traceparent": theirs, "Tracestate": "vendor=1", "X-Tenant": "acme"}
	large := `{"test": "` + strings.Repeat("a", 20<<10) + `"}`

	tests := []struct {
		name        string
		c           *Client
		ctx         context.Context
		headers     map[string]string
		parent      string // the traceparent the target gets; "" for none
		tracestate  string
		withoutSpan bool
	}{
		{"off, no header of the message", off, spanCtx, map[string]string{"X-Tenant": "acme"}, "", "", false},
		{"off, the message's own", off, spanCtx, own, theirs, "vendor=1", false},
		{"on, ours", on, spanCtx, map[string]string{"X-Tenant": "acme"}, ours, "", false},
		{"on, ours in place of the message's", on, spanCtx, own, ours, "", false},
		{"on without a span, the message's are not sent", on, context.Background(), own, "", "", true},
	}
	for _, tt := range tests {
		for _, body := range []string{specBody, large} {
			name := tt.name + ", " + map[bool]string{true: "HTTP/1.1 path", false: "net/http path"}[body == specBody]
			now := time.Now()
			res := tt.c.Send(tt.ctx, Request{ID: specID, URL: srv.URL + "/push", Body: []byte(body), Now: now, Headers: tt.headers})
			if res.Outcome != Delivered {
				t.Fatalf("%s: Send = %+v", name, res)
			}
			h := <-got
			if p := h.Values("Traceparent"); tt.parent == "" && len(p) != 0 || tt.parent != "" && (len(p) != 1 || p[0] != tt.parent) {
				t.Errorf("%s: traceparent %q, want %q", name, p, tt.parent)
			}
			if s := h.Values("Tracestate"); tt.tracestate == "" && len(s) != 0 || tt.tracestate != "" && (len(s) != 1 || s[0] != tt.tracestate) {
				t.Errorf("%s: tracestate %q, want %q", name, s, tt.tracestate)
			}
			if h.Get("X-Tenant") != "acme" {
				t.Errorf("%s: X-Tenant %q, want acme", name, h.Get("X-Tenant"))
			}
			v := Verifier{Keys: [][]byte{key}}
			if err := v.Verify(h.Get(HeaderID), h.Get(HeaderTimestamp), h.Get(HeaderSignature), []byte(body), now); err != nil {
				t.Errorf("%s: signature: %v", name, err)
			}
		}
	}
}

// The carrier keeps the headers of the trace context only, one value each, whatever their case.
func TestTraceHeaders(t *testing.T) {
	t.Parallel()
	var tc traceHeaders
	tc.Set("traceparent", "a")
	tc.Set("Traceparent", "b")
	tc.Set("baggage", "secret=1")
	tc.Set("tracestate", "c")
	if got := tc.Keys(); len(got) != 2 || got[0] != "traceparent" || got[1] != "tracestate" {
		t.Fatalf("Keys = %q, want [traceparent tracestate]", got)
	}
	if tc.Get("TRACEPARENT") != "b" || tc.Get("tracestate") != "c" || tc.Get("baggage") != "" {
		t.Fatalf("Get: traceparent %q, tracestate %q, baggage %q", tc.Get("traceparent"), tc.Get("tracestate"), tc.Get("baggage"))
	}
}
