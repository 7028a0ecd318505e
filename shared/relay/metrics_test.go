package relay

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/pushfn/pushfn/shared/ingest"
	"github.com/pushfn/pushfn/shared/message"
	"github.com/pushfn/pushfn/shared/metrics"
	"github.com/pushfn/pushfn/shared/metrics/metricstest"
)

// Each invocation writes its metrics once: the messages accepted, replayed and refused by code.
func TestRelayMetrics(t *testing.T) {
	t.Parallel()
	fail := strings.Replace(okMessage, "/push", "/fail", 1)
	tests := []struct {
		name               string
		before, event      string // before is relayed first, without metrics
		accepted, replayed float64
		refused            map[string]float64
	}{
		{name: "an event's batch accepted", event: eventBridge("e1", `{"messages":[`+okMessage+`,`+okMessage+`]}`), accepted: 2},
		{name: "a redelivered event replayed", before: sns("s1", okMessage), event: sns("s1", okMessage), replayed: 1},
		{name: "an invalid message refused", event: sns("s2", `{"payload":1}`), refused: map[string]float64{ingest.CodeValidationFailed: 1}},
		{name: "input that is no event refused", event: `"push"`, refused: map[string]float64{ingest.CodeValidationFailed: 1}},
		{name: "a message the queue refused", event: eventBridge("e2", `{"messages":[`+okMessage+`,`+fail+`]}`), accepted: 1,
			refused: map[string]float64{ingest.CodeUnavailable: 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t)
			b.prod.Fail = func(env message.Envelope) bool { return strings.HasSuffix(env.Target.URL, "/fail") }
			if tt.before != "" {
				if _, err := b.h.Handle(t.Context(), json.RawMessage(tt.before)); err != nil {
					t.Fatal(err)
				}
			}
			var out bytes.Buffer
			b.h.Metrics = metrics.NewWriter(&out, "RelayFunction")
			_, _ = b.h.Handle(t.Context(), json.RawMessage(tt.event)) // a refused message asks for a retry: not what is checked here
			docs := metricstest.Documents(t, out.String())
			if want := 1 + len(tt.refused); len(docs) != want {
				t.Fatalf("%d documents, want %d:\n%s", len(docs), want, out.String())
			}
			if got := metricstest.Sum(docs, metrics.MessagesAccepted, nil); got != tt.accepted {
				t.Errorf("MessagesAccepted %v, want %v", got, tt.accepted)
			}
			if got := metricstest.Sum(docs, metrics.MessagesReplayed, nil); got != tt.replayed {
				t.Errorf("MessagesReplayed %v, want %v", got, tt.replayed)
			}
			for code, n := range tt.refused {
				if got := metricstest.Sum(docs, metrics.MessagesRefused, map[string]string{metrics.DimCode: code}); got != n {
					t.Errorf("MessagesRefused %s = %v, want %v", code, got, n)
				}
			}
		})
	}
}
