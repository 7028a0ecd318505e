package httpapi

import (
	"bytes"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"testing"

	"github.com/aws/aws-lambda-go/events"

	"github.com/pushfn/pushfn/shared/logging"
	"github.com/pushfn/pushfn/shared/logging/loggingtest"
	"github.com/pushfn/pushfn/shared/message"
)

// TestEveryLogLineCarriesTheRequestID serves requests that log on every path (accepted, refused,
// not found, queue failure) with the function's logger, as the Lambda runtime calls Handle, and
// checks each line names the invocation.
func TestEveryLogLineCarriesTheRequestID(t *testing.T) {
	t.Parallel()
	b := setup(t)
	var buf bytes.Buffer
	log := logging.New(&buf, logging.Options{Level: slog.LevelDebug, Function: "ApiFunction"})
	b.h.Logger, b.h.Enqueuer.Logger = log, log
	b.prod.Fail = func(env message.Envelope) bool { return strings.HasSuffix(env.Target.URL, "/fail") }

	requests := []struct{ method, path, body string }{
		{http.MethodPost, PathMessages, `{"target":{"url":"https://hooks.example.com/push"},"payload":1}`},
		{http.MethodPost, PathMessages, `{"target":{"url":"https://hooks.example.com/fail"},"payload":1}`},
		{http.MethodPost, PathMessages, `{"payload":1}`},
		{http.MethodGet, PathMessages + "/msg_06h3af0dbv9egk3jqqt6dm36w8", ""},
	}
	for i, r := range requests {
		ctx := loggingtest.Invocation(fmt.Sprint("req-", i))
		req := events.APIGatewayV2HTTPRequest{RawPath: r.path, Body: r.body, Headers: map[string]string{"content-type": "application/json"}}
		req.RequestContext.HTTP.Method = r.method
		if _, err := b.h.Handle(ctx, req); err != nil {
			t.Fatal(err)
		}
	}

	lines := loggingtest.Lines(t, buf.String())
	queueWarned := false
	for _, m := range lines {
		queueWarned = queueWarned || m[logging.MessageKey] == "queue message"
		if id, _ := m[logging.RequestIDKey].(string); !strings.HasPrefix(id, "req-") || m[logging.FunctionNameKey] != "ApiFunction" {
			t.Errorf("line without the invocation or the function: %v", m)
		}
	}
	if len(lines) < len(requests) || !queueWarned {
		t.Fatalf("%d lines (want at least one per request, and the queue failure's warning):\n%s", len(lines), buf.String())
	}
}
