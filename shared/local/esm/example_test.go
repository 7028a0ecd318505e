package esm_test

import (
	"context"
	"fmt"
	"sync"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/pushfn/pushfn/shared/local/esm"
	"github.com/pushfn/pushfn/shared/local/lambdarun"
)

// heldQueue stands in for *sqs.Client: it hands out its messages once, then long-polls until
// the caller gives up, and records what is deleted.
type heldQueue struct {
	mu      sync.Mutex
	msgs    []types.Message
	deleted []string
}

func (q *heldQueue) ReceiveMessage(ctx context.Context, in *sqs.ReceiveMessageInput, _ ...func(*sqs.Options)) (*sqs.ReceiveMessageOutput, error) {
	q.mu.Lock()
	n := min(int(in.MaxNumberOfMessages), len(q.msgs))
	out := q.msgs[:n:n]
	q.msgs = q.msgs[n:]
	q.mu.Unlock()
	if n == 0 {
		<-ctx.Done()
		return nil, ctx.Err()
	}
	return &sqs.ReceiveMessageOutput{Messages: out}, nil
}

func (q *heldQueue) DeleteMessageBatch(_ context.Context, in *sqs.DeleteMessageBatchInput, _ ...func(*sqs.Options)) (*sqs.DeleteMessageBatchOutput, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	out := &sqs.DeleteMessageBatchOutput{}
	for _, e := range in.Entries {
		q.deleted = append(q.deleted, aws.ToString(e.ReceiptHandle))
		out.Successful = append(out.Successful, types.DeleteMessageBatchResultEntry{Id: e.Id})
	}
	return out, nil
}

func (q *heldQueue) ChangeMessageVisibilityBatch(context.Context, *sqs.ChangeMessageVisibilityBatchInput, ...func(*sqs.Options)) (*sqs.ChangeMessageVisibilityBatchOutput, error) {
	return &sqs.ChangeMessageVisibilityBatchOutput{}, nil
}

func (q *heldQueue) GetQueueAttributes(context.Context, *sqs.GetQueueAttributesInput, ...func(*sqs.Options)) (*sqs.GetQueueAttributesOutput, error) {
	return &sqs.GetQueueAttributesOutput{Attributes: map[string]string{"QueueArn": "arn:aws:sqs:us-east-1:000000000000:pushfn"}}, nil
}

// A Mapping feeds a function from a queue until its context ends, deleting the records the
// function acknowledged and leaving its batch item failures for SQS to deliver again. In a local
// run the API is sqs.NewFromConfig(cfg), its endpoint from AWS_ENDPOINT_URL_SQS.
func ExampleMapping_Run() {
	q := &heldQueue{msgs: []types.Message{
		{MessageId: aws.String("m-1"), ReceiptHandle: aws.String("rh-1"), Body: aws.String(`{"id":"msg_1"}`)},
		{MessageId: aws.String("m-2"), ReceiptHandle: aws.String("rh-2"), Body: aws.String(`{"id":"msg_2"}`)},
	}}
	fn := lambdarun.NewInProcess(func(ctx context.Context, e events.SQSEvent) (events.SQSEventResponse, error) {
		return events.SQSEventResponse{BatchItemFailures: []events.SQSBatchItemFailure{{ItemIdentifier: "m-2"}}}, nil
	})
	m, err := esm.New(q, fn, esm.Config{
		QueueURL:                "http://127.0.0.1:4566/000000000000/pushfn",
		BatchSize:               10,
		Concurrency:             1,
		ReportBatchItemFailures: true,
	})
	if err != nil {
		panic(err)
	}
	ctx, stop := context.WithCancel(context.Background())
	batches := make(chan esm.Batch, 1)
	m.OnBatch = func(b esm.Batch) { batches <- b }
	done := make(chan error)
	go func() { done <- m.Run(ctx) }()

	b := <-batches
	stop()
	if err := <-done; err != nil {
		panic(err)
	}
	fmt.Printf("records %d, deleted %d, failed %v\n", b.Records, b.Deleted, b.Failed)
	fmt.Println("deleted receipt handles:", q.deleted)
	// Output:
	// records 2, deleted 1, failed [m-2]
	// deleted receipt handles: [rh-1]
}
