package tracing

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-lambda-go/lambdacontext"
	"github.com/aws/aws-sdk-go-v2/aws"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"

	"github.com/pushfn/pushfn/shared/tracing/tracingtest"
)

type event struct {
	N json.Number `json:"n"`
}

// handle is a handler as the functions have: a typed event in, a typed answer out.
func handle(ctx context.Context, ev event) (event, error) { return ev, nil }

// Off, tracing changes nothing: the handler is the same function, the AWS configuration gets no
// middleware, and there is no tracer or propagator.
func TestOff(t *testing.T) {
	t.Parallel()
	tr, err := Start(context.Background(), false, Options{Service: "fn"})
	if err != nil || tr != nil {
		t.Fatalf("Start(off) = %v, %v; want nil, nil", tr, err)
	}
	if h := tr.Handler(handle); reflect.ValueOf(h).Pointer() != reflect.ValueOf(handle).Pointer() {
		t.Error("Handler wrapped the handler with tracing off")
	}
	var cfg aws.Config
	tr.InstrumentAWS(&cfg)
	if len(cfg.APIOptions) != 0 || tr.Tracer() != nil || tr.Propagator() != nil {
		t.Errorf("off: %d API options, tracer %v, propagator %v; want none", len(cfg.APIOptions), tr.Tracer(), tr.Propagator())
	}
	tr.Flush(context.Background())
	if err := tr.Shutdown(context.Background()); err != nil {
		t.Error(err)
	}
}

// invoke runs h as the Lambda runtime would, with a request id and a deadline.
func invoke(t *testing.T, h any, payload string, deadline time.Time) (string, error) {
	t.Helper()
	lh, ok := h.(lambda.Handler)
	if !ok {
		lh = lambda.NewHandler(h)
	}
	ctx := lambdacontext.NewContext(context.Background(), &lambdacontext.LambdaContext{AwsRequestID: "req-1", InvokedFunctionArn: "arn:aws:lambda:us-east-1:123456789012:function:fn"})
	ctx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()
	out, err := lh.Invoke(ctx, []byte(payload))
	return string(out), err
}

// On, each invocation has a server span whose spans, pushfn's own under it, are exported before
// the invocation returns; the event reaches the handler as its bytes (a number beyond float64's
// precision is intact).
func TestInvocationSpansFlushedBeforeItEnds(t *testing.T) {
	t.Parallel()
	rc := tracingtest.NewReceiver(t)
	tr, err := Start(context.Background(), true, Options{Service: "fn", Exporter: []otlptracehttp.Option{otlptracehttp.WithEndpointURL(rc.URL() + "/v1/traces")}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = tr.Shutdown(context.Background()) })
	h := tr.Handler(func(ctx context.Context, ev event) (event, error) {
		_, span := tr.Tracer().Start(ctx, "push")
		span.End()
		return ev, nil
	})
	out, err := invoke(t, h, `{"n":12345678901234567891}`, time.Now().Add(time.Minute))
	if err != nil || out != `{"n":12345678901234567891}` {
		t.Fatalf("Invoke = %s, %v; want the event back as it was", out, err)
	}
	spans, bad := rc.Spans() // no wait: the invocation flushed before it returned
	if len(bad) != 0 || len(spans) != 2 {
		t.Fatalf("%d spans and %v when the invocation returned, want 2", len(spans), bad)
	}
	inv, push := spans[0], spans[1]
	if inv.Name == "push" {
		inv, push = push, inv
	}
	if inv.Parent != "" || inv.Attrs["faas.invocation_id"] != "req-1" || inv.Service != "fn" {
		t.Errorf("invocation span %+v: want a root with faas.invocation_id req-1, service fn", inv)
	}
	if push.Parent != inv.SpanID || push.TraceID != inv.TraceID || push.Scope != ScopeName {
		t.Errorf("push span %+v: want a child of %s in scope %s", push, inv.SpanID, ScopeName)
	}
}

// A collector that never answers neither fails nor holds up an invocation past the flush's
// bound, kept before the invocation's deadline; the failure is logged.
func TestUnansweringCollector(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c) // read nothing, answer nothing
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		_ = ln.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			_ = c.Close()
		}
	})
	var logs bytes.Buffer
	var logMu sync.Mutex
	log := slog.New(slog.NewJSONHandler(writerFunc(func(p []byte) (int, error) {
		logMu.Lock()
		defer logMu.Unlock()
		return logs.Write(p)
	}), nil))
	tr, err := Start(context.Background(), true, Options{Service: "fn", Log: log,
		Exporter: []otlptracehttp.Option{otlptracehttp.WithEndpointURL("http://" + ln.Addr().String() + "/v1/traces")}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_ = tr.Shutdown(ctx)
	})
	// The deadline, not the export's own bound, ends this flush: the invocation returns before it.
	out, err := invoke(t, tr.Handler(handle), `{"n":1}`, time.Now().Add(flushReserve+200*time.Millisecond))
	if err != nil || out != `{"n":1}` {
		t.Fatalf("Invoke = %s, %v; want the handler's answer", out, err)
	}
	logMu.Lock()
	defer logMu.Unlock()
	if !strings.Contains(logs.String(), `"msg":"trace export failed"`) {
		t.Errorf("no export failure logged: %s", logs.String())
	}
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

// On, the AWS configuration gets the otelaws middleware, and there are a tracer and the W3C
// propagator for pushes.
func TestOnInstruments(t *testing.T) {
	t.Parallel()
	tr, err := Start(context.Background(), true, Options{Service: "fn", Exporter: []otlptracehttp.Option{otlptracehttp.WithEndpointURL("http://127.0.0.1:1/v1/traces")}})
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	var cfg aws.Config
	tr.InstrumentAWS(&cfg)
	if len(cfg.APIOptions) == 0 || tr.Tracer() == nil || tr.Propagator() == nil {
		t.Errorf("on: %d API options, tracer %v, propagator %v; want all", len(cfg.APIOptions), tr.Tracer(), tr.Propagator())
	}
	_ = tr.Shutdown(context.Background())
}
