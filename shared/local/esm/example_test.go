package esm_test

import (
	"context"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/pushfn/pushfn/shared/local/esm"
	"github.com/pushfn/pushfn/shared/local/lambdarun"
)

// A Mapping feeds a function from a queue until its context ends.
func ExampleMapping_Run() {
	var client *sqs.Client // sqs.NewFromConfig(cfg), its endpoint from AWS_ENDPOINT_URL_SQS
	fn := lambdarun.NewInProcess(func(ctx context.Context, e events.SQSEvent) (events.SQSEventResponse, error) {
		return events.SQSEventResponse{}, nil // every record acknowledged
	})
	m, err := esm.New(client, fn, esm.Config{
		QueueURL:                "http://127.0.0.1:4566/000000000000/pushfn",
		BatchSize:               1000,
		Window:                  time.Second,
		Concurrency:             10,
		ReportBatchItemFailures: true,
	})
	if err != nil {
		panic(err)
	}
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	go func() { _ = m.Run(ctx) }()
}
