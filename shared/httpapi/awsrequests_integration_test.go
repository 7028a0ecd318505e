package httpapi

import (
	"bytes"
	"log/slog"
	"net/http"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/pushfn/pushfn/shared/awscount"
	"github.com/pushfn/pushfn/shared/config"
	"github.com/pushfn/pushfn/shared/ingest"
	"github.com/pushfn/pushfn/shared/local/awstest"
	"github.com/pushfn/pushfn/shared/message"
	"github.com/pushfn/pushfn/shared/metrics"
	"github.com/pushfn/pushfn/shared/metrics/metricstest"
)

// A route that counts no message still counts the AWS requests it made: a GET reads the record
// once, through a client built as the function builds it (with the awscount middleware).
func TestIntegrationGetCountsItsAWSRequests(t *testing.T) {
	t.Parallel()
	aws := awstest.Config(t)
	aws.APIOptions = append(aws.APIOptions, awscount.Middleware)
	cfg := config.Defaults()
	cfg.TableName = awstest.Table(t, awstest.DynamoDB(t))
	cfg.QueueURL = "http://127.0.0.1:1/unused"
	w := ingest.FromConfig(cfg, aws, slog.New(slog.DiscardHandler))
	var out bytes.Buffer
	h := &Handler{Records: w.Records, Enqueuer: w.Enqueuer, Rules: w.Rules, Logger: slog.New(slog.DiscardHandler), Metrics: metrics.NewWriter(&out, "ApiFunction")}
	req := events.APIGatewayV2HTTPRequest{RawPath: PathMessages + "/" + message.NewID(time.Now())}
	req.RequestContext.HTTP.Method = http.MethodGet
	resp, err := h.Handle(t.Context(), req)
	if err != nil || resp.StatusCode != http.StatusNotFound {
		t.Fatalf("GET an unknown id: %d %s, %v; want 404", resp.StatusCode, resp.Body, err)
	}
	docs := metricstest.Documents(t, out.String())
	got := metricstest.Sum(docs, metrics.AWSRequests, map[string]string{metrics.DimFunction: "ApiFunction", metrics.DimOperation: "DynamoDB.GetItem"})
	if got < 1 || metricstest.Sum(docs, metrics.MessagesAccepted, nil) != 0 {
		t.Errorf("documents %s: want DynamoDB.GetItem counted and no message", out.String())
	}
}
