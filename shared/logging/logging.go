// Package logging builds the functions' logger: log/slog JSON lines on one stream, each naming
// the function and, when logged with an invocation's context, that invocation's request id.
//
// Ships in all three functions.
package logging

import (
	"context"
	"io"
	"log/slog"

	"github.com/aws/aws-lambda-go/lambdacontext"
)

// Keys the logger adds to slog's own (time, level, msg), named as Powertools for AWS Lambda
// names them so that the same CloudWatch Logs Insights queries work.
const (
	RequestIDKey    = "function_request_id"
	FunctionNameKey = "function_name"
)

// New returns a logger writing one JSON object per line to w, for records at level or above.
// Every line carries function under FunctionNameKey (none when function is empty, as outside
// Lambda); a line logged with a context the Lambda runtime made for an invocation (the ctx a
// handler receives, or one derived from it) carries its request id under RequestIDKey.
//
// In a function: logging.New(os.Stdout, cfg.LogLevel, lambdacontext.FunctionName).
func New(w io.Writer, level slog.Leveler, function string) *slog.Logger {
	var h slog.Handler = slog.NewJSONHandler(w, &slog.HandlerOptions{Level: level})
	if function != "" {
		h = h.WithAttrs([]slog.Attr{slog.String(FunctionNameKey, function)})
	}
	return slog.New(NewHandler(h))
}

// Handler passes records to the handler it wraps, adding to each one logged with an
// invocation's context that invocation's request id. It holds no state of its own, so
// invocations running at once in one process (AWS_LAMBDA_MAX_CONCURRENCY) share it safely.
// Groups opened with WithGroup hold the request id too; pushfn opens none.
type Handler struct {
	next slog.Handler
}

var _ slog.Handler = (*Handler)(nil)

// NewHandler returns a Handler that wraps next.
func NewHandler(next slog.Handler) *Handler { return &Handler{next: next} }

// Enabled reports whether the wrapped handler handles records at level.
func (h *Handler) Enabled(ctx context.Context, level slog.Level) bool {
	return h.next.Enabled(ctx, level)
}

// Handle adds the request id of the invocation in ctx, if any, and passes r on.
func (h *Handler) Handle(ctx context.Context, r slog.Record) error {
	if lc, ok := lambdacontext.FromContext(ctx); ok && lc.AwsRequestID != "" {
		r = r.Clone() // r may share its attributes with the caller's copy
		r.AddAttrs(slog.String(RequestIDKey, lc.AwsRequestID))
	}
	return h.next.Handle(ctx, r)
}

// WithAttrs returns a Handler whose wrapped handler has attrs.
func (h *Handler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return &Handler{next: h.next.WithAttrs(attrs)}
}

// WithGroup returns a Handler whose wrapped handler has the group name open.
func (h *Handler) WithGroup(name string) slog.Handler {
	return &Handler{next: h.next.WithGroup(name)}
}
