package deliver

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/aws/aws-lambda-go/events"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/pushfn/pushfn/shared/message"
	"github.com/pushfn/pushfn/shared/push"
	"github.com/pushfn/pushfn/shared/tracing"
)

// With a tracer, each push has a span under the invocation's, naming the message, its target's
// host, the attempt, the answer and the outcome, and the target receives that span's context as
// traceparent; without one, no span is made and no traceparent sent.
func TestPushSpans(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name    string
		status  int
		tracing bool
		outcome string
		final   message.Status
	}{
		{"delivered", http.StatusOK, true, "delivered", message.Delivered},
		{"retryable", http.StatusServiceUnavailable, true, "retryable", message.Retrying},
		{"permanent", http.StatusNotFound, true, "permanent", message.Failed},
		{"tracing off", http.StatusOK, false, "", message.Delivered},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			parents := make(chan string, 1)
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				parents <- r.Header.Get("Traceparent")
				w.WriteHeader(tt.status)
			}))
			t.Cleanup(srv.Close)
			rec := tracetest.NewSpanRecorder()
			tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
			b := newBundle(t, func(h *Handler) {
				o := push.Options{AllowPrivate: true}
				if tt.tracing {
					h.Tracer = tp.Tracer(tracing.ScopeName)
					o.Propagator = propagation.TraceContext{}
				}
				c := push.NewClient(o)
				t.Cleanup(c.CloseIdleConnections)
				h.Sender = c
			})
			msg, id := b.record(t, srv.URL+"/push")
			ctx, inv := tp.Tracer("test").Start(context.Background(), "invocation")
			if _, err := b.h.Handle(ctx, events.SQSEvent{Records: []events.SQSMessage{msg}}); err != nil {
				t.Fatal(err)
			}
			inv.End()
			if st, _ := b.status(t, id); st != tt.final {
				t.Fatalf("status %s, want %s", st, tt.final)
			}
			parent := <-parents
			var pushes []sdktrace.ReadOnlySpan
			for _, s := range rec.Ended() {
				if s.Name() == PushSpanName {
					pushes = append(pushes, s)
				}
			}
			if !tt.tracing {
				if parent != "" || len(pushes) != 0 {
					t.Fatalf("tracing off: traceparent %q and %d push spans, want none", parent, len(pushes))
				}
				return
			}
			if len(pushes) != 1 {
				t.Fatalf("%d push spans, want 1", len(pushes))
			}
			s := pushes[0]
			if s.Parent().SpanID() != inv.SpanContext().SpanID() || s.SpanKind() != trace.SpanKindClient {
				t.Errorf("push span's parent %s kind %s, want the invocation's %s, client", s.Parent().SpanID(), s.SpanKind(), inv.SpanContext().SpanID())
			}
			want := map[attribute.Key]attribute.Value{
				AttrMessageID: attribute.StringValue(id), AttrTargetHost: attribute.StringValue(srv.Listener.Addr().String()),
				AttrAttempt: attribute.IntValue(1), AttrStatusCode: attribute.IntValue(tt.status), AttrOutcome: attribute.StringValue(tt.outcome),
			}
			got := map[attribute.Key]attribute.Value{}
			for _, kv := range s.Attributes() {
				got[kv.Key] = kv.Value
			}
			for k, v := range want {
				if got[k] != v {
					t.Errorf("attribute %s = %v, want %v", k, got[k].String(), v.String())
				}
			}
			if (s.Status().Code == codes.Error) != (tt.outcome != "delivered") {
				t.Errorf("span status %v for outcome %s", s.Status(), tt.outcome)
			}
			wantParent := "00-" + s.SpanContext().TraceID().String() + "-" + s.SpanContext().SpanID().String() + "-01"
			if parent != wantParent {
				t.Errorf("traceparent %q, want %q (the push span's)", parent, wantParent)
			}
		})
	}
}
