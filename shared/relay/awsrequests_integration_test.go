package relay

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"testing"
	"time"

	"github.com/pushfn/pushfn/shared/awscount"
	"github.com/pushfn/pushfn/shared/config"
	"github.com/pushfn/pushfn/shared/ingest"
	"github.com/pushfn/pushfn/shared/local/awstest"
	"github.com/pushfn/pushfn/shared/metrics"
	"github.com/pushfn/pushfn/shared/metrics/metricstest"
)

// The relay's AWS requests, made through clients built as the function builds them (with the
// awscount middleware), are counted in the invocation's metrics: one record write per message
// and one queue send for the event's batch at least (each attempt of a retried call counts).
func TestIntegrationRelayCountsItsAWSRequests(t *testing.T) {
	t.Parallel()
	aws := awstest.Config(t)
	aws.APIOptions = append(aws.APIOptions, awscount.Middleware)
	cfg := config.Defaults()
	cfg.TableName = awstest.Table(t, awstest.DynamoDB(t))
	cfg.QueueURL, _ = awstest.Queues(t, awstest.SQS(t), 5, time.Minute)
	w := ingest.FromConfig(cfg, aws, slog.New(slog.DiscardHandler))
	var out bytes.Buffer
	h := &Handler{Enqueuer: w.Enqueuer, Rules: w.Rules, Logger: slog.New(slog.DiscardHandler), Metrics: metrics.NewWriter(&out, "RelayFunction")}
	batch := `{"messages":[` + okMessage + `,` + okMessage + `,` + okMessage + `]}`
	if resp, err := h.Handle(t.Context(), json.RawMessage(eventBridge("aws-requests", batch))); err != nil || resp.Error != nil || len(resp.Messages) != 3 {
		t.Fatalf("Handle = %+v, %v", resp, err)
	}
	docs := metricstest.Documents(t, out.String())
	count := func(op string) float64 {
		return metricstest.Sum(docs, metrics.AWSRequests, map[string]string{metrics.DimFunction: "RelayFunction", metrics.DimOperation: op})
	}
	if put, send := count("DynamoDB.PutItem"), count("SQS.SendMessageBatch"); put < 3 || send < 1 {
		t.Errorf("AWSRequests: %v DynamoDB.PutItem, %v SQS.SendMessageBatch; want at least 3 and 1:\n%s", put, send, out.String())
	}
}
