// Package tracing is a function's OpenTelemetry tracing: off unless an OTLP endpoint is set, then
// a span per invocation (otellambda), per AWS call (otelaws) and per push, exported over
// OTLP/HTTP and flushed before each invocation ends.
//
// Ships in all three functions.
package tracing

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-sdk-go-v2/aws"
	"go.opentelemetry.io/contrib/instrumentation/github.com/aws/aws-lambda-go/otellambda"
	"go.opentelemetry.io/contrib/instrumentation/github.com/aws/aws-sdk-go-v2/otelaws"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
)

// ScopeName is the instrumentation scope of the spans pushfn makes itself (the push spans).
const ScopeName = "github.com/pushfn/pushfn"

// ExportTimeout bounds one export of spans, and the flush at the end of each invocation, unless
// OTEL_EXPORTER_OTLP_TIMEOUT or OTEL_EXPORTER_OTLP_TRACES_TIMEOUT sets the export's own bound (the
// SDK's default, 10 s, is too long to add to an invocation whose collector does not answer).
const ExportTimeout = 2 * time.Second

// flushReserve is kept free before the invocation's deadline: a flush never takes the time the
// runtime needs to send the function's response.
const flushReserve = 500 * time.Millisecond

// Tracing is one process's tracer provider and the instrumentations built on it. A nil *Tracing
// is tracing turned off: its methods change nothing and return nil, so that nothing of
// OpenTelemetry runs on the functions' paths.
type Tracing struct {
	provider *sdktrace.TracerProvider
	flush    time.Duration
	log      *slog.Logger
}

// Options configure Start.
type Options struct {
	// Service is the service.name of the spans unless OTEL_SERVICE_NAME sets one (the function's
	// name); empty means "pushfn".
	Service string
	// Log takes the failures of exports; nil logs none.
	Log *slog.Logger
	// Getenv reads OTEL_EXPORTER_OTLP_TIMEOUT and OTEL_EXPORTER_OTLP_TRACES_TIMEOUT, to know
	// whether the export's bound is set there; nil means none is. Every other OTEL_* variable is
	// read by the SDK itself, from the process's environment.
	Getenv func(string) string
	// Exporter adds to (and overrides) what the environment configures of the OTLP/HTTP
	// exporter: tests point it at their receiver.
	Exporter []otlptracehttp.Option
}

// Start returns the process's tracing when on is true (config.Config.Tracing), or nil. The
// exporter, the sampler (OTEL_TRACES_SAMPLER), the batch processor (OTEL_BSP_*) and the resource
// (OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES) read the environment as the OpenTelemetry SDK
// does; failed exports are not retried, since every invocation flushes its own spans.
func Start(ctx context.Context, on bool, o Options) (*Tracing, error) {
	if !on {
		return nil, nil
	}
	getenv := o.Getenv
	if getenv == nil {
		getenv = func(string) string { return "" }
	}
	flush := ExportTimeout
	opts := []otlptracehttp.Option{otlptracehttp.WithRetry(otlptracehttp.RetryConfig{Enabled: false})}
	if getenv("OTEL_EXPORTER_OTLP_TIMEOUT") == "" && getenv("OTEL_EXPORTER_OTLP_TRACES_TIMEOUT") == "" {
		opts = append(opts, otlptracehttp.WithTimeout(ExportTimeout))
	} else {
		flush = 0 // the export's own bound, within the invocation's deadline
	}
	exp, err := otlptracehttp.New(ctx, append(opts, o.Exporter...)...)
	if err != nil {
		return nil, fmt.Errorf("tracing: OTLP exporter: %w", err)
	}
	// The function's name first, so that OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES win.
	service := cmp.Or(o.Service, "pushfn")
	res, err := resource.New(ctx, resource.WithAttributes(semconv.ServiceName(service), semconv.FaaSName(service)),
		resource.WithTelemetrySDK(), resource.WithFromEnv())
	if err != nil && !errors.Is(err, resource.ErrPartialResource) {
		return nil, fmt.Errorf("tracing: resource: %w", err)
	}
	return &Tracing{
		provider: sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp), sdktrace.WithResource(res)),
		flush:    flush,
		log:      o.Log,
	}, nil
}

// Handler returns handler (a function lambda.Start accepts) with a span around each invocation,
// its spans flushed before the invocation ends; with tracing off, handler itself. The event is
// handed on as its bytes, never decoded and encoded again.
func (t *Tracing) Handler(handler any) any {
	if t == nil {
		return handler
	}
	return otellambda.WrapHandler(lambda.NewHandler(handler),
		otellambda.WithTracerProvider(t.provider), otellambda.WithFlusher(flusher{t}),
		otellambda.WithPropagator(propagation.TraceContext{}))
}

// InstrumentAWS adds a span for each AWS call made by the clients built from cfg afterwards;
// with tracing off, it does nothing.
func (t *Tracing) InstrumentAWS(cfg *aws.Config) {
	if t == nil {
		return
	}
	otelaws.AppendMiddlewares(&cfg.APIOptions, otelaws.WithTracerProvider(t.provider), otelaws.WithTextMapPropagator(propagation.TraceContext{}))
}

// Tracer is the tracer of pushfn's own spans; nil with tracing off.
func (t *Tracing) Tracer() trace.Tracer {
	if t == nil {
		return nil
	}
	return t.provider.Tracer(ScopeName)
}

// Propagator is what carries a span's context to a target: the W3C traceparent and tracestate
// headers, and nothing else (no baggage); nil with tracing off, so that nothing is sent.
func (t *Tracing) Propagator() propagation.TextMapPropagator {
	if t == nil {
		return nil
	}
	return propagation.TraceContext{}
}

// Flush exports the spans ended so far, within ctx, the export bound and the time ctx's
// deadline leaves before the runtime must answer. A failed export is logged, never returned:
// tracing never fails an invocation.
func (t *Tracing) Flush(ctx context.Context) {
	if t == nil {
		return
	}
	end, bounded := time.Time{}, false
	if t.flush > 0 {
		end, bounded = time.Now().Add(t.flush), true
	}
	if d, ok := ctx.Deadline(); ok {
		if d = d.Add(-flushReserve); !bounded || d.Before(end) {
			end, bounded = d, true
		}
	}
	if bounded {
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(ctx, end)
		defer cancel()
	}
	if err := t.provider.ForceFlush(ctx); err != nil && t.log != nil {
		t.log.WarnContext(ctx, "trace export failed", "error", err.Error())
	}
}

// Shutdown flushes what is left and stops the exporter.
func (t *Tracing) Shutdown(ctx context.Context) error {
	if t == nil {
		return nil
	}
	if err := t.provider.Shutdown(ctx); err != nil {
		return fmt.Errorf("tracing: shutdown: %w", err)
	}
	return nil
}

// flusher is otellambda's Flusher: Flush, whose failures are logged rather than returned.
type flusher struct{ t *Tracing }

func (f flusher) ForceFlush(ctx context.Context) error {
	f.t.Flush(ctx)
	return nil
}
