package httpapi

import (
	"bytes"
	"net/http"
	"strings"
	"testing"

	"github.com/pushfn/pushfn/shared/endpoint"
	"github.com/pushfn/pushfn/shared/ingest"
	"github.com/pushfn/pushfn/shared/message"
	"github.com/pushfn/pushfn/shared/metrics"
	"github.com/pushfn/pushfn/shared/metrics/metricstest"
)

// Each request to a message route writes its metrics once: the messages accepted, replayed and
// refused by code; other routes write none.
func TestRequestMetrics(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name               string
		path, body         string
		headers            []string
		docs               int // documents the request writes
		accepted, replayed float64
		refused            map[string]float64
		status             int
	}{
		{name: "one accepted", path: PathMessages, body: msg(""), docs: 1, accepted: 1, status: http.StatusAccepted},
		{name: "one replayed", path: PathMessages, body: msg(`,"idempotency_key":"k1"`), docs: 1, replayed: 1, status: http.StatusOK},
		{name: "one invalid", path: PathMessages, body: `{"payload":1}`, docs: 2,
			refused: map[string]float64{ingest.CodeValidationFailed: 1}, status: http.StatusBadRequest},
		{name: "one not JSON", path: PathMessages, body: `{`, docs: 2, refused: map[string]float64{ingest.CodeInvalidJSON: 1}, status: http.StatusBadRequest},
		{name: "one of the wrong type", path: PathMessages, body: msg(""), headers: []string{"content-type", "text/plain"}, docs: 2,
			refused: map[string]float64{CodeUnsupportedType: 1}, status: http.StatusUnsupportedMediaType},
		{name: "one the queue refused", path: PathMessages, body: msgTo("https://hooks.example.com/fail"), docs: 2,
			refused: map[string]float64{ingest.CodeUnavailable: 1}, status: http.StatusServiceUnavailable},
		{name: "a batch: accepted, replayed and refused", path: PathBatch,
			body: batch(msg(""), msg(""), msg(`,"idempotency_key":"k1"`), msgTo("https://hooks.example.com/fail")), docs: 2,
			accepted: 2, replayed: 1, refused: map[string]float64{ingest.CodeUnavailable: 1}, status: http.StatusMultiStatus},
		{name: "an invalid batch counts once", path: PathBatch, body: batch(msg(""), `{"payload":1}`), docs: 2,
			refused: map[string]float64{ingest.CodeValidationFailed: 1}, status: http.StatusBadRequest},
		{name: "a GET writes none", path: PathMessages + "/msg_06h3af0dbv9egk3jqqt6dm36w8", docs: 0, status: http.StatusNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t)
			b.prod.Fail = func(env message.Envelope) bool { return strings.HasSuffix(env.Target.URL, "/fail") }
			if tt.replayed > 0 {
				if r := b.do(t, http.MethodPost, PathMessages, msg(`,"idempotency_key":"k1"`)); r.status != http.StatusAccepted {
					t.Fatalf("first request: %d %s", r.status, r.body)
				}
			}
			var out bytes.Buffer
			b.h.Metrics = metrics.NewWriter(&out, "ApiFunction")
			method := http.MethodPost
			if tt.body == "" {
				method = http.MethodGet
			}
			if r := b.do(t, method, tt.path, tt.body, tt.headers...); r.status != tt.status {
				t.Fatalf("answer %d %s, want %d", r.status, r.body, tt.status)
			}
			docs := metricstest.Documents(t, out.String())
			if len(docs) != tt.docs {
				t.Fatalf("%d documents, want %d:\n%s", len(docs), tt.docs, out.String())
			}
			if tt.docs == 0 {
				return
			}
			fn := map[string]string{metrics.DimFunction: "ApiFunction"}
			if got := metricstest.Sum(docs, metrics.MessagesAccepted, fn); got != tt.accepted {
				t.Errorf("MessagesAccepted %v, want %v", got, tt.accepted)
			}
			if got := metricstest.Sum(docs, metrics.MessagesReplayed, fn); got != tt.replayed {
				t.Errorf("MessagesReplayed %v, want %v", got, tt.replayed)
			}
			var refused float64
			for code, n := range tt.refused {
				if got := metricstest.Sum(docs, metrics.MessagesRefused, map[string]string{metrics.DimCode: code}); got != n {
					t.Errorf("MessagesRefused %s = %v, want %v", code, got, n)
				}
				refused += n
			}
			if got := metricstest.Sum(docs, metrics.MessagesRefused, nil); got != refused {
				t.Errorf("MessagesRefused %v in all, want %v", got, refused)
			}
		})
	}
}

// A batch refused whole because some of its messages name no endpoint counts all its messages.
func TestRequestMetricsBatchToMissingEndpoints(t *testing.T) {
	t.Parallel()
	b, _, _ := epMsgSetup(t)
	var out bytes.Buffer
	b.h.Metrics = metrics.NewWriter(&out, "ApiFunction")
	missing := endpoint.NewID(t0)
	body := batch(msg(""), `{"endpoint_id": "`+missing+`", "payload": 1}`, msg(""))
	if r := b.do(t, http.MethodPost, PathBatch, body); r.status != http.StatusUnprocessableEntity {
		t.Fatalf("answer %d %s, want 422", r.status, r.body)
	}
	docs := metricstest.Documents(t, out.String())
	if got := metricstest.Sum(docs, metrics.MessagesRefused, map[string]string{metrics.DimCode: ingest.CodeEndpointNotFound}); got != 3 {
		t.Errorf("MessagesRefused endpoint_not_found = %v, want the batch's 3:\n%s", got, out.String())
	}
	if got := metricstest.Sum(docs, metrics.MessagesAccepted, nil); got != 0 {
		t.Errorf("MessagesAccepted %v, want 0", got)
	}
}
