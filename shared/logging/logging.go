// Package logging builds the functions' logger: log/slog JSON lines on one stream, with the keys
// Powertools for AWS Lambda writes (level, message, timestamp, service, cold_start,
// function_name, function_request_id, xray_trace_id), so that the same CloudWatch Logs Insights
// queries work, and with the level names Lambda's log-level filtering reads.
//
// Ships in all three functions.
package logging

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"strings"
	"sync/atomic"
	"time"

	"github.com/aws/aws-lambda-go/lambdacontext"
)

// The keys of a line, as Powertools for AWS Lambda names them. slog's own time, level and msg
// are written as TimeKey, LevelKey and MessageKey.
const (
	TimeKey         = "timestamp"
	LevelKey        = "level"
	MessageKey      = "message"
	ServiceKey      = "service"
	FunctionNameKey = "function_name"
	RequestIDKey    = "function_request_id"
	ColdStartKey    = "cold_start"
	TraceIDKey      = "xray_trace_id"
)

// DefaultService is the service a line names when POWERTOOLS_SERVICE_NAME sets none.
const DefaultService = "pushfn"

// TimeFormat is how a line's timestamp is written: RFC 3339 in UTC, to the millisecond, as
// Powertools writes it.
const TimeFormat = "2006-01-02T15:04:05.000Z"

// Lambda's application log levels that slog lacks: TRACE below DEBUG, FATAL above ERROR.
const (
	LevelTrace = slog.LevelDebug - 4
	LevelFatal = slog.LevelError + 4
)

// ErrLevel is the error ParseLevel returns for a name that is not a level.
var ErrLevel = errors.New("must be TRACE, DEBUG, INFO, WARN, ERROR or FATAL")

// levels are Lambda's application log levels, most detailed first.
var levels = []struct {
	name  string
	level slog.Level
}{
	{"TRACE", LevelTrace}, {"DEBUG", slog.LevelDebug}, {"INFO", slog.LevelInfo},
	{"WARN", slog.LevelWarn}, {"ERROR", slog.LevelError}, {"FATAL", LevelFatal},
}

// ParseLevel reads a level as Lambda names them in AWS_LAMBDA_LOG_LEVEL (TRACE, DEBUG, INFO,
// WARN, ERROR, FATAL), in any case of ASCII letters.
func ParseLevel(s string) (slog.Level, error) {
	s = strings.TrimSpace(s)
	for _, l := range levels {
		if strings.EqualFold(s, l.name) {
			return l.level, nil
		}
	}
	return 0, ErrLevel
}

// LevelName returns the name a line gives level: the name of the highest of Lambda's levels at
// or below it (WARN, not slog's WARN+2), which Lambda's log-level filtering reads.
func LevelName(level slog.Level) string {
	switch {
	case level < slog.LevelDebug:
		return "TRACE"
	case level < slog.LevelInfo:
		return "DEBUG"
	case level < slog.LevelWarn:
		return "INFO"
	case level < slog.LevelError:
		return "WARN"
	case level < LevelFatal:
		return "ERROR"
	}
	return "FATAL"
}

// Options configure New.
type Options struct {
	Level    slog.Leveler // the lowest level written; INFO when nil
	Function string       // written under FunctionNameKey; none when empty, as outside Lambda
	Service  string       // written under ServiceKey; DefaultService when empty
}

// New returns a logger writing one JSON object per line to w. Every line has TimeKey, LevelKey,
// MessageKey and ServiceKey, and FunctionNameKey when o names a function. A line logged with a
// context the Lambda runtime made for an invocation (the ctx a handler receives, or one
// derived from it) adds the invocation's request id (RequestIDKey) and its X-Ray trace id
// (TraceIDKey, when the invocation has one); with a context from a handler wrapped by
// ColdStart, ColdStartKey too.
//
// In a function: logging.New(os.Stdout, logging.Options{Level: cfg.LogLevel,
// Function: lambdacontext.FunctionName, Service: cfg.ServiceName}).
func New(w io.Writer, o Options) *slog.Logger {
	service := o.Service
	if service == "" {
		service = DefaultService
	}
	attrs := []slog.Attr{slog.String(ServiceKey, service)}
	if o.Function != "" {
		attrs = append(attrs, slog.String(FunctionNameKey, o.Function))
	}
	h := slog.NewJSONHandler(w, &slog.HandlerOptions{Level: o.Level, ReplaceAttr: replaceAttr})
	return slog.New(NewHandler(h.WithAttrs(attrs)))
}

// replaceAttr renames and formats slog's own keys as Powertools writes them.
func replaceAttr(groups []string, a slog.Attr) slog.Attr {
	if len(groups) > 0 {
		return a
	}
	switch a.Key {
	case slog.TimeKey:
		if t, ok := a.Value.Any().(time.Time); ok {
			return slog.String(TimeKey, t.UTC().Format(TimeFormat))
		}
		a.Key = TimeKey
	case slog.LevelKey:
		if l, ok := a.Value.Any().(slog.Level); ok {
			return slog.String(LevelKey, LevelName(l))
		}
	case slog.MessageKey:
		a.Key = MessageKey
	}
	return a
}

// Handler passes records to the handler it wraps, adding to each one logged with an
// invocation's context that invocation's request id, X-Ray trace id and cold start. It holds
// no state of its own, so invocations running at once in one process
// (AWS_LAMBDA_MAX_CONCURRENCY) share it safely. Groups opened with WithGroup hold the added
// keys too; pushfn opens none.
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

// Handle adds what ctx says of its invocation, if anything, and passes r on.
func (h *Handler) Handle(ctx context.Context, r slog.Record) error {
	var add [3]slog.Attr
	n := 0
	if lc, ok := lambdacontext.FromContext(ctx); ok && lc.AwsRequestID != "" {
		add[n] = slog.String(RequestIDKey, lc.AwsRequestID)
		n++
	}
	if cold, ok := ctx.Value(coldStartKey{}).(bool); ok {
		add[n] = slog.Bool(ColdStartKey, cold)
		n++
	}
	if id := TraceID(traceHeader(ctx)); id != "" {
		add[n] = slog.String(TraceIDKey, id)
		n++
	}
	if n > 0 {
		r = r.Clone() // r may share its attributes with the caller's copy
		r.AddAttrs(add[:n]...)
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

// traceHeaderKey is the context key aws-lambda-go stores an invocation's X-Ray trace header
// under (Lambda-Runtime-Trace-Id); it sets _X_AMZN_TRACE_ID only when the process serves one
// invocation at a time, so the context is the one place that holds it for every invocation.
const traceHeaderKey = "x-amzn-trace-id"

func traceHeader(ctx context.Context) string {
	s, _ := ctx.Value(traceHeaderKey).(string)
	return s
}

// TraceID returns the trace id of an X-Ray trace header
// ("Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1" gives
// "1-5759e988-bd862e3fe1be46a994272793"), as Powertools writes it under xray_trace_id; a
// header with no "=" is the id itself; none without a Root.
func TraceID(header string) string {
	if !strings.Contains(header, "=") {
		return strings.TrimSpace(header)
	}
	for field := range strings.SplitSeq(header, ";") {
		if k, v, ok := strings.Cut(strings.TrimSpace(field), "="); ok && k == "Root" {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// coldStartKey is the context key ColdStart marks an invocation's context with.
type coldStartKey struct{}

// WithColdStart returns ctx marked as the context of an invocation that is (cold true) or is not
// the first its process serves: lines logged with it carry ColdStartKey. ColdStart marks the
// contexts of a handler's invocations.
func WithColdStart(ctx context.Context, cold bool) context.Context {
	return context.WithValue(ctx, coldStartKey{}, cold)
}

// ColdStart wraps a Lambda handler so that the lines logged with the context of each
// invocation say whether it is the first this process serves (cold_start true) or a later one
// (false). Of invocations starting at once in one process (AWS_LAMBDA_MAX_CONCURRENCY), the
// first to reach the handler is the cold one. Wrap once, in main:
// lambda.Start(logging.ColdStart(h.Handle)).
func ColdStart[E, R any](handler func(context.Context, E) (R, error)) func(context.Context, E) (R, error) {
	var served atomic.Bool
	return func(ctx context.Context, event E) (R, error) {
		return handler(WithColdStart(ctx, !served.Swap(true)), event)
	}
}
