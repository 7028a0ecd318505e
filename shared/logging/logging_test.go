package logging_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pushfn/pushfn/shared/logging"
	"github.com/pushfn/pushfn/shared/logging/loggingtest"
)

const trace = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1"

func TestLinesCarryTheInvocation(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	log := logging.New(&buf, logging.Options{Function: "DeliverFunction"})

	// The handler's ctx, and one derived from it as a per-message timeout is.
	ctx := logging.WithColdStart(loggingtest.Traced(loggingtest.Invocation("8476a536-e9f4-11e8-9739-2dfe598c3fcd"), trace), true)
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
		want := map[string]any{
			logging.RequestIDKey: "8476a536-e9f4-11e8-9739-2dfe598c3fcd", logging.FunctionNameKey: "DeliverFunction",
			logging.ServiceKey: logging.DefaultService, logging.ColdStartKey: true,
			logging.TraceIDKey: "1-5759e988-bd862e3fe1be46a994272793",
		}
		for k, v := range want {
			if m[k] != v {
				t.Errorf("line %d: %s is %v, want %v: %v", i, k, m[k], v, m)
			}
		}
		for _, k := range []string{slog.TimeKey, slog.MessageKey} {
			if _, ok := m[k]; ok {
				t.Errorf("line %d keeps slog's key %q: %v", i, k, m)
			}
		}
	}
	if got[0][logging.MessageKey] != "delivery" || got[0]["message_id"] != "msg_1" || got[1][logging.LevelKey] != "WARN" || got[2]["target_host"] != "hooks.example.com" {
		t.Errorf("the record's own keys changed: %v", got)
	}
}

// TestPowertoolsFormat checks each key's form: the timestamp in UTC to the millisecond, the
// level names Lambda's log-level filtering reads, the service.
func TestPowertoolsFormat(t *testing.T) {
	t.Parallel()
	tests := []struct {
		level     slog.Level
		wantLevel string
		service   string
	}{
		{logging.LevelTrace, "TRACE", ""},
		{slog.LevelDebug, "DEBUG", "orders"},
		{slog.LevelInfo, "INFO", ""},
		{slog.LevelWarn, "WARN", ""},
		{slog.LevelWarn + 2, "WARN", ""},
		{slog.LevelError, "ERROR", ""},
		{logging.LevelFatal, "FATAL", ""},
	}
	stamp := regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$`)
	for _, tt := range tests {
		var buf bytes.Buffer
		before := time.Now().Truncate(time.Millisecond)
		logging.New(&buf, logging.Options{Level: logging.LevelTrace, Function: "ApiFunction", Service: tt.service}).Log(context.Background(), tt.level, "start")
		got := loggingtest.Lines(t, buf.String())
		if len(got) != 1 {
			t.Fatalf("level %v: %d lines", tt.level, len(got))
		}
		m := got[0]
		if m[logging.LevelKey] != tt.wantLevel {
			t.Errorf("level %v written as %v, want %s", tt.level, m[logging.LevelKey], tt.wantLevel)
		}
		wantService := tt.service
		if wantService == "" {
			wantService = "pushfn"
		}
		if m[logging.ServiceKey] != wantService || m[logging.MessageKey] != "start" || m[logging.FunctionNameKey] != "ApiFunction" {
			t.Errorf("line %v: want service %s, message start, function ApiFunction", m, wantService)
		}
		ts, _ := m[logging.TimeKey].(string)
		at, err := time.Parse(time.RFC3339, ts)
		if !stamp.MatchString(ts) || err != nil || at.Before(before) {
			t.Errorf("timestamp %q: want RFC 3339 in UTC to the millisecond, not before %s (%v)", ts, before.UTC().Format(logging.TimeFormat), err)
		}
		if len(m) != 5 {
			t.Errorf("line %v: want only level, message, timestamp, service and function_name", m)
		}
	}
}

func TestLinesOutsideAnInvocationHaveNoInvocationKeys(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	log := logging.New(&buf, logging.Options{Function: "ApiFunction"})
	log.Info("start")                                  // init, before any invocation
	log.InfoContext(context.Background(), "no invoke") // a context the runtime did not make
	log.InfoContext(loggingtest.Invocation(""), "empty id")
	log.InfoContext(loggingtest.Traced(context.Background(), ""), "empty trace header")
	got := loggingtest.Lines(t, buf.String())
	if len(got) != 4 {
		t.Fatalf("%d lines, want 4:\n%s", len(got), buf.String())
	}
	for i, m := range got {
		for _, k := range []string{logging.RequestIDKey, logging.ColdStartKey, logging.TraceIDKey} {
			if _, ok := m[k]; ok {
				t.Errorf("line %d has %s: %v", i, k, m)
			}
		}
		if m[logging.FunctionNameKey] != "ApiFunction" || m[logging.ServiceKey] != "pushfn" {
			t.Errorf("line %d: %v, want function ApiFunction and service pushfn", i, m)
		}
	}
}

func TestNoFunctionNameOutsideLambda(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	logging.New(&buf, logging.Options{}).InfoContext(loggingtest.Invocation("req-1"), "local")
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
	log := logging.New(&buf, logging.Options{Level: slog.LevelWarn, Function: "RelayFunction"})
	ctx := loggingtest.Invocation("req-1")
	log.DebugContext(ctx, "hidden")
	log.InfoContext(ctx, "hidden")
	log.WarnContext(ctx, "shown")
	got := loggingtest.Lines(t, buf.String())
	if len(got) != 1 || got[0][logging.MessageKey] != "shown" {
		t.Fatalf("at level WARN got %v", got)
	}
}

func TestParseLevel(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   string
		want slog.Level
		err  bool
	}{
		{"TRACE", logging.LevelTrace, false},
		{"DEBUG", slog.LevelDebug, false},
		{"info", slog.LevelInfo, false},
		{" Warn ", slog.LevelWarn, false},
		{"ERROR", slog.LevelError, false},
		{"FATAL", logging.LevelFatal, false},
		{"WARNING", 0, true},
		{"", 0, true},
		{"INFO+2", 0, true},
		{"\u0131nfo", 0, true}, // a dotless i, which strings.ToUpper would make INFO
	}
	for _, tt := range tests {
		got, err := logging.ParseLevel(tt.in)
		if tt.err != (err != nil) || (err != nil && !errors.Is(err, logging.ErrLevel)) || got != tt.want {
			t.Errorf("ParseLevel(%q) = %v, %v; want %v, error %v", tt.in, got, err, tt.want, tt.err)
		}
		if err == nil && logging.LevelName(got) != strings.ToUpper(strings.TrimSpace(tt.in)) {
			t.Errorf("LevelName(ParseLevel(%q)) = %s", tt.in, logging.LevelName(got))
		}
	}
}

// FuzzParseLevel: a name is either refused with ErrLevel or read as the level a line then names
// the same way.
func FuzzParseLevel(f *testing.F) {
	for _, s := range []string{"TRACE", "debug", " Warn", "WARNING", "FATAL\n", "", "\u0130NFO", "\u0131nfo"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		l, err := logging.ParseLevel(name)
		if err != nil {
			if !errors.Is(err, logging.ErrLevel) {
				t.Errorf("ParseLevel(%q): %v, not ErrLevel", name, err)
			}
			return
		}
		if !strings.EqualFold(logging.LevelName(l), strings.TrimSpace(name)) {
			t.Errorf("ParseLevel(%q) = %v, named %s", name, l, logging.LevelName(l))
		}
	})
}

func TestTraceID(t *testing.T) {
	t.Parallel()
	tests := []struct{ header, want string }{
		{trace, "1-5759e988-bd862e3fe1be46a994272793"},
		{"Parent=53995c3f42cd8ad8; Root=1-5759e988-bd862e3fe1be46a994272793 ;Sampled=0", "1-5759e988-bd862e3fe1be46a994272793"},
		{"Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1;Lineage=25:a87bd80c:1", "1-5759e988-bd862e3fe1be46a994272793"},
		{"1-5759e988-bd862e3fe1be46a994272793", "1-5759e988-bd862e3fe1be46a994272793"},
		{"Parent=53995c3f42cd8ad8;Sampled=1", ""},
		{"", ""},
	}
	for _, tt := range tests {
		if got := logging.TraceID(tt.header); got != tt.want {
			t.Errorf("TraceID(%q) = %q, want %q", tt.header, got, tt.want)
		}
	}
}

// FuzzTraceID: whatever the header, the id is a part of it without a field separator.
func FuzzTraceID(f *testing.F) {
	for _, s := range []string{trace, "1-abc", "Root=", "Root=;Root=x", ";=;", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, header string) {
		id := logging.TraceID(header)
		if !strings.Contains(header, id) || strings.Contains(id, ";") && strings.Contains(header, "=") {
			t.Errorf("TraceID(%q) = %q", header, id)
		}
	})
}

// TestColdStart serves invocations one after another through a wrapped handler: only the
// first one's lines say cold_start true.
func TestColdStart(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	log := logging.New(&buf, logging.Options{Function: "DeliverFunction"})
	handle := logging.ColdStart(func(ctx context.Context, n int) (int, error) {
		log.InfoContext(ctx, "delivery", "invocation", n)
		log.InfoContext(ctx, "delivery", "invocation", n)
		return n, nil
	})
	for i := range 3 {
		if _, err := handle(loggingtest.Invocation(fmt.Sprint("req-", i)), i); err != nil {
			t.Fatal(err)
		}
	}
	log.Info("after") // outside any invocation
	got := loggingtest.Lines(t, buf.String())
	if len(got) != 7 {
		t.Fatalf("%d lines, want 7", len(got))
	}
	for _, m := range got[:6] {
		if want := m["invocation"] == 0.0; m[logging.ColdStartKey] != want {
			t.Errorf("line %v: cold_start %v, want %v", m, m[logging.ColdStartKey], want)
		}
	}
	if _, ok := got[6][logging.ColdStartKey]; ok {
		t.Errorf("a line outside an invocation has cold_start: %v", got[6])
	}
}

// TestConcurrentInvocationsKeepTheirOwnKeys logs from many invocations at once through one
// logger and one wrapped handler, as one process does under AWS_LAMBDA_MAX_CONCURRENCY: each
// line has its own invocation's id and trace, and one invocation only is the cold one.
func TestConcurrentInvocationsKeepTheirOwnKeys(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var buf bytes.Buffer
	log := logging.New(lockedWriter{&mu, &buf}, logging.Options{Function: "DeliverFunction"}).With("component", "test")
	handle := logging.ColdStart(func(ctx context.Context, n int) (struct{}, error) {
		for range 20 {
			log.InfoContext(ctx, "delivery", "invocation", n)
		}
		return struct{}{}, nil
	})
	var wg sync.WaitGroup
	for i := range 16 {
		wg.Go(func() {
			ctx := loggingtest.Traced(loggingtest.Invocation(fmt.Sprint("req-", i)), fmt.Sprintf("Root=1-5759e988-%024d;Sampled=0", i))
			_, _ = handle(ctx, i)
		})
	}
	wg.Wait()
	got := loggingtest.Lines(t, buf.String())
	if len(got) != 16*20 {
		t.Fatalf("%d lines, want %d", len(got), 16*20)
	}
	cold := map[string]bool{}
	for _, m := range got {
		n := int(m["invocation"].(float64))
		if m[logging.RequestIDKey] != fmt.Sprint("req-", n) || m[logging.TraceIDKey] != fmt.Sprintf("1-5759e988-%024d", n) {
			t.Fatalf("line %v: request id %v and trace %v, not invocation %d's", m, m[logging.RequestIDKey], m[logging.TraceIDKey], n)
		}
		if m[logging.ColdStartKey] == true {
			cold[m[logging.RequestIDKey].(string)] = true
		}
	}
	if len(cold) != 1 {
		t.Errorf("cold invocations %v, want exactly one", cold)
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

// Every line names the service and the function; a line logged with the invocation's ctx names
// the invocation and says whether it is the process's first.
func ExampleNew() {
	var buf bytes.Buffer // os.Stdout in a function
	log := logging.New(&buf, logging.Options{Level: slog.LevelInfo, Function: "DeliverFunction"})
	handle := logging.ColdStart(func(ctx context.Context, id string) (struct{}, error) {
		log.InfoContext(ctx, "delivery", "message_id", id)
		return struct{}{}, nil
	})
	_, _ = handle(loggingtest.Invocation("8476a536"), "msg_1") // the runtime's ctx in a function

	var line map[string]any
	if err := json.Unmarshal(buf.Bytes(), &line); err != nil {
		panic(err)
	}
	fmt.Println(line["level"], line["message"], line["message_id"], line["service"], line["function_name"], line["function_request_id"], line["cold_start"])
	// Output: INFO delivery msg_1 pushfn DeliverFunction 8476a536 true
}

// BenchmarkDeliveryLine logs the deliver function's per-push line inside an invocation; the
// plain slog JSON handler, writing the same record with slog's own keys and nothing added, is
// the baseline.
func BenchmarkDeliveryLine(b *testing.B) {
	ctx := logging.WithColdStart(loggingtest.Traced(loggingtest.Invocation("8476a536-e9f4-11e8-9739-2dfe598c3fcd"), trace), false)
	loggers := map[string]*slog.Logger{
		"logging.New": logging.New(io.Discard, logging.Options{Function: "DeliverFunction"}),
		"slog JSON":   slog.New(slog.NewJSONHandler(io.Discard, nil)).With("function_name", "DeliverFunction"),
	}
	for name, log := range loggers {
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				log.LogAttrs(ctx, slog.LevelInfo, "delivery", slog.String("message_id", "msg_06h3af0dbv9egk3jqqt6dm36w8"),
					slog.String("target_host", "hooks.example.com"), slog.String("endpoint_id", ""), slog.Int("attempt", 1),
					slog.String("status", "delivered"), slog.Int("status_code", 200), slog.Int64("duration_ms", 38), slog.String("error", ""))
			}
		})
	}
}
