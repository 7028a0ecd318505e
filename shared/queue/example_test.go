package queue_test

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/pushfn/pushfn/shared/queue"
)

// busySQS stands in for *sqs.Client: its first request fails every entry but the first with a
// service error, as SQS may under load; later requests queue everything.
type busySQS struct{ requests atomic.Int32 }

func (b *busySQS) SendMessageBatch(_ context.Context, in *sqs.SendMessageBatchInput, _ ...func(*sqs.Options)) (*sqs.SendMessageBatchOutput, error) {
	first := b.requests.Add(1) == 1
	out := &sqs.SendMessageBatchOutput{}
	for k, e := range in.Entries {
		if first && k > 0 {
			out.Failed = append(out.Failed, types.BatchResultErrorEntry{Id: e.Id, Code: aws.String("ServiceUnavailable")})
			continue
		}
		out.Successful = append(out.Successful, types.SendMessageBatchResultEntry{Id: e.Id})
	}
	return out, nil
}

// Send batches the entries, sends again those SQS failed for its own reasons, and reports each
// entry's outcome. In a function the API is sqs.NewFromConfig(cfg), and the queue comes from
// queue.CreateQueues (locally) or the template.
func ExampleProducer() {
	api := &busySQS{}
	p := queue.NewProducer(api, "https://sqs.us-east-1.amazonaws.com/000000000000/pushfn")
	entries := []queue.Entry{
		{Body: `{"id":"msg_1"}`},
		{Body: `{"id":"msg_2"}`, DelaySeconds: 60},
		{Body: `{"id":"msg_3"}`, DelaySeconds: 901},
	}
	for i, err := range p.Send(context.Background(), entries) {
		switch {
		case err == nil:
			fmt.Println(i, "queued")
		case errors.Is(err, queue.ErrPermanent): // answer 4xx: sending it again cannot succeed
			fmt.Println(i, "refused:", err)
		default: // queue.ErrRetryable: answer 503, the caller retries
			fmt.Println(i, "not queued:", err)
		}
	}
	fmt.Println("requests:", api.requests.Load())
	// Output:
	// 0 queued
	// 1 queued
	// 2 refused: send to queue: delay of 901 seconds is outside 0 to 900
	// requests: 2
}
