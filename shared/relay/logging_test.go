package relay

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"github.com/pushfn/pushfn/shared/logging"
	"github.com/pushfn/pushfn/shared/logging/loggingtest"
	"github.com/pushfn/pushfn/shared/message"
)

// TestEveryLogLineCarriesTheRequestID relays events that log on every path (relayed, invalid,
// not an event, queue failure) with the function's logger, as the Lambda runtime calls Handle,
// and checks each line names the invocation.
func TestEveryLogLineCarriesTheRequestID(t *testing.T) {
	t.Parallel()
	b := setup(t)
	var buf bytes.Buffer
	log := logging.New(&buf, logging.Options{Level: slog.LevelDebug, Function: "RelayFunction"})
	b.h.Logger, b.h.Enqueuer.Logger = log, log
	b.prod.Fail = func(env message.Envelope) bool { return strings.HasSuffix(env.Target.URL, "/fail") }

	evs := []string{
		eventBridge("ev-1", okMessage),
		sns("sns-1", `{"payload":1}`),
		`[1, 2]`,
		eventBridge("ev-2", `{"target":{"url":"https://hooks.example.com/fail"},"payload":1}`),
	}
	for i, ev := range evs {
		ctx := loggingtest.Invocation(fmt.Sprint("req-", i))
		_, _ = b.h.Handle(ctx, json.RawMessage(ev)) // the queue failure is an error, for the source to retry
	}

	lines := loggingtest.Lines(t, buf.String())
	queueWarned := false
	for _, m := range lines {
		queueWarned = queueWarned || m[logging.MessageKey] == "queue message"
		if id, _ := m[logging.RequestIDKey].(string); !strings.HasPrefix(id, "req-") || m[logging.FunctionNameKey] != "RelayFunction" {
			t.Errorf("line without the invocation or the function: %v", m)
		}
	}
	if len(lines) < len(evs) || !queueWarned {
		t.Fatalf("%d lines (want at least one per event, and the queue failure's warning):\n%s", len(lines), buf.String())
	}
}
