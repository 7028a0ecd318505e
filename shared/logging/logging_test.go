package logging_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/lambdacontext"

	"github.com/pushfn/pushfn/shared/logging"
	"github.com/pushfn/pushfn/shared/logging/loggingtest"
)

func TestLinesCarryTheInvocationsRequestID(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	log := logging.New(&buf, slog.LevelInfo, "DeliverFunction")

	// The handler's ctx, and one derived from it as a per-message timeout is.
	ctx := loggingtest.Invocation("8476a536-e9f4-11e8-9739-2dfe598c3fcd")
	derived, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	log.InfoContext(ctx, "delivery", "message_id", "msg_1")
	log.LogAttrs(derived, slog.LevelWarn, "claim failed", slog.String("message_id", "msg_2"))
	log.With("target_host", "hooks.example.com").ErrorContext(derived, "recording the result failed")

	got := loggingtest.Lines(t, buf.String())
	if len(got) != 3 {
		t.Fatalf("%d lines, want 3:\n%s", len(got), buf.String())
	}
	for i, m := range got {
		if m[logging.RequestIDKey] != "8476a536-e9f4-11e8-9739-2dfe598c3fcd" || m[logging.FunctionNameKey] != "DeliverFunction" {
			t.Errorf("line %d: %v, want %s and %s", i, m, logging.RequestIDKey, logging.FunctionNameKey)
		}
		for _, k := range []string{slog.TimeKey, slog.LevelKey, slog.MessageKey} {
			if _, ok := m[k]; !ok {
				t.Errorf("line %d has no %q: %v", i, k, m)
			}
		}
	}
	if got[0][slog.MessageKey] != "delivery" || got[0]["message_id"] != "msg_1" || got[1][slog.LevelKey] != "WARN" || got[2]["target_host"] != "hooks.example.com" {
		t.Errorf("the record's own keys changed: %v", got)
	}
}

func TestLinesOutsideAnInvocationHaveNoRequestID(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	log := logging.New(&buf, slog.LevelInfo, "ApiFunction")
	log.Info("start")                                  // init, before any invocation
	log.InfoContext(context.Background(), "no invoke") // a context the runtime did not make
	log.InfoContext(loggingtest.Invocation(""), "empty id")
	got := loggingtest.Lines(t, buf.String())
	if len(got) != 3 {
		t.Fatalf("%d lines, want 3:\n%s", len(got), buf.String())
	}
	for i, m := range got {
		if _, ok := m[logging.RequestIDKey]; ok {
			t.Errorf("line %d has a request id: %v", i, m)
		}
		if m[logging.FunctionNameKey] != "ApiFunction" {
			t.Errorf("line %d: function name %v, want ApiFunction", i, m[logging.FunctionNameKey])
		}
	}
}

func TestNoFunctionNameOutsideLambda(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	logging.New(&buf, slog.LevelInfo, "").InfoContext(loggingtest.Invocation("req-1"), "local")
	got := loggingtest.Lines(t, buf.String())
	if len(got) != 1 || got[0][logging.RequestIDKey] != "req-1" {
		t.Fatalf("got %v", got)
	}
	if _, ok := got[0][logging.FunctionNameKey]; ok {
		t.Errorf("function name without a function: %v", got[0])
	}
}

func TestLevel(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	log := logging.New(&buf, slog.LevelWarn, "RelayFunction")
	ctx := loggingtest.Invocation("req-1")
	log.DebugContext(ctx, "hidden")
	log.InfoContext(ctx, "hidden")
	log.WarnContext(ctx, "shown")
	got := loggingtest.Lines(t, buf.String())
	if len(got) != 1 || got[0][slog.MessageKey] != "shown" {
		t.Fatalf("at level WARN got %v", got)
	}
}

// TestConcurrentInvocationsKeepTheirOwnID logs from many invocations at once through one
// logger, as one process does under AWS_LAMBDA_MAX_CONCURRENCY: each line has its own id.
func TestConcurrentInvocationsKeepTheirOwnID(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var buf bytes.Buffer
	log := logging.New(lockedWriter{&mu, &buf}, slog.LevelInfo, "DeliverFunction").With("component", "test")
	var wg sync.WaitGroup
	for i := range 16 {
		wg.Go(func() {
			ctx := loggingtest.Invocation(fmt.Sprint("req-", i))
			for range 20 {
				log.InfoContext(ctx, "delivery", "invocation", i)
			}
		})
	}
	wg.Wait()
	got := loggingtest.Lines(t, buf.String())
	if len(got) != 16*20 {
		t.Fatalf("%d lines, want %d", len(got), 16*20)
	}
	for _, m := range got {
		if want := fmt.Sprint("req-", m["invocation"]); m[logging.RequestIDKey] != want {
			t.Fatalf("line %v: request id %v, want %s", m, m[logging.RequestIDKey], want)
		}
	}
}

type lockedWriter struct {
	mu *sync.Mutex
	w  *bytes.Buffer
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// Every line names the function; a line logged with the invocation's ctx names the invocation.
func ExampleNew() {
	var buf bytes.Buffer // os.Stdout in a function
	log := logging.New(&buf, slog.LevelInfo, "DeliverFunction")
	ctx := lambdacontext.NewContext(context.Background(), &lambdacontext.LambdaContext{AwsRequestID: "8476a536"})
	log.InfoContext(ctx, "delivery", "message_id", "msg_1")

	var line map[string]any
	if err := json.Unmarshal(buf.Bytes(), &line); err != nil {
		panic(err)
	}
	fmt.Println(line["msg"], line["message_id"], line[logging.FunctionNameKey], line[logging.RequestIDKey])
	// Output: delivery msg_1 DeliverFunction 8476a536
}
