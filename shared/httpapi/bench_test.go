package httpapi

import (
	"context"
	"fmt"
	"testing"

	"github.com/aws/aws-lambda-go/events"

	"github.com/pushfn/pushfn/shared/ingest"
	"github.com/pushfn/pushfn/shared/ingest/ingesttest"
	"github.com/pushfn/pushfn/shared/store"
)

// BenchmarkHandleBatch500 measures the api function's own work for a batch of 500 new messages
// (parse, validate, fingerprint, record in memory, build the queue entries).
func BenchmarkHandleBatch500(b *testing.B) {
	prod := &ingesttest.Producer{}
	for i := 0; b.Loop(); i++ {
		b.StopTimer()
		h := &Handler{Enqueuer: &ingest.Enqueuer{Store: &store.Memory{}, Producer: prod, Logger: quiet}, Logger: quiet}
		req := events.APIGatewayV2HTTPRequest{RawPath: PathBatch, Body: keyed(500, fmt.Sprint(i)), Headers: map[string]string{"content-type": "application/json"}}
		req.RequestContext.HTTP.Method = "POST"
		b.StartTimer()
		resp, _ := h.Handle(context.Background(), req)
		if resp.StatusCode != 202 {
			b.Fatal(resp.StatusCode, resp.Body)
		}
	}
}
