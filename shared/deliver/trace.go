package deliver

import (
	"context"
	"net/http"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/pushfn/pushfn/shared/push"
)

// The attributes of a push span. They name the push, never its content: no payload, no header
// value, no URL (whose query may hold a secret).
const (
	AttrMessageID  = attribute.Key("pushfn.message_id")  // the record's id, as the logs' message_id
	AttrEndpointID = attribute.Key("pushfn.endpoint_id") // set for a push to an endpoint
	AttrTargetHost = attribute.Key("pushfn.target_host") // host[:port] of the target, as the logs' target_host
	AttrAttempt    = attribute.Key("pushfn.attempt")     // 1 for the first attempt
	AttrOutcome    = attribute.Key("pushfn.outcome")     // delivered, retryable or permanent
	AttrStatusCode = attribute.Key("http.response.status_code")
)

// PushSpanName is the name of the span around each push.
const PushSpanName = "push"

// startPush starts the span of j's push, attempt n, under ctx's span: the push sends its context
// to the target as traceparent.
func (h *Handler) startPush(ctx context.Context, j *job, n int) (context.Context, trace.Span) {
	attrs := []attribute.KeyValue{AttrMessageID.String(j.env.ID), AttrTargetHost.String(j.host), AttrAttempt.Int(n),
		attribute.String("http.request.method", http.MethodPost)}
	if j.env.EndpointID != "" {
		attrs = append(attrs, AttrEndpointID.String(j.env.EndpointID))
	}
	return h.Tracer.Start(ctx, PushSpanName, trace.WithSpanKind(trace.SpanKindClient), trace.WithAttributes(attrs...))
}

// endPush records res on span and ends it.
func endPush(span trace.Span, res push.Result) {
	span.SetAttributes(AttrOutcome.String(res.Outcome.String()))
	if res.StatusCode != 0 {
		span.SetAttributes(AttrStatusCode.Int(res.StatusCode))
	}
	if res.Err != nil {
		span.SetStatus(codes.Error, res.Err.Error())
	}
	span.End()
}
