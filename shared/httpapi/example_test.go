package httpapi_test

import (
	"context"
	"fmt"

	"github.com/aws/aws-lambda-go/events"

	"github.com/pushfn/pushfn/shared/httpapi"
	"github.com/pushfn/pushfn/shared/ingest"
	"github.com/pushfn/pushfn/shared/queue"
	"github.com/pushfn/pushfn/shared/store"
)

// printingProducer stands in for queue.Producer: it queues everything and says how much.
type printingProducer struct{}

func (printingProducer) Send(_ context.Context, entries []queue.Entry) []error {
	fmt.Printf("queued %d message(s) in one call\n", len(entries))
	return make([]error, len(entries))
}

func ExampleHandler_Handle() {
	records := &store.Memory{}
	h := &httpapi.Handler{
		Enqueuer: &ingest.Enqueuer{Store: records, Producer: printingProducer{}},
		Records:  records,
	}
	req := events.APIGatewayV2HTTPRequest{
		RawPath: "/v1/messages",
		Headers: map[string]string{"content-type": "application/json", "idempotency-key": "order-42-shipped"},
		Body:    `{"target": {"url": "https://hooks.example.com/push"}, "payload": {"user_id": "1", "message": "Hello"}}`,
	}
	req.RequestContext.HTTP.Method = "POST"
	resp, _ := h.Handle(context.Background(), req)
	fmt.Println(resp.StatusCode, resp.Headers["Location"])
	fmt.Println(resp.Body)
	// Output:
	// queued 1 message(s) in one call
	// 202 /v1/messages/msg_b124tm6y9hkd6kmzdn4ysvk4fr
	// {"id":"msg_b124tm6y9hkd6kmzdn4ysvk4fr","status":"accepted"}
}
