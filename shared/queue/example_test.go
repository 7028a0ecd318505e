package queue_test

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/pushfn/pushfn/shared/queue"
)

// Create the queues once, then send any number of entries and act on each outcome.
func ExampleProducer() {
	ctx := context.Background()
	cfg, err := config.LoadDefaultConfig(ctx) // AWS_ENDPOINT_URL_SQS points it at an emulator
	if err != nil {
		return
	}
	client := sqs.NewFromConfig(cfg)
	url, _, err := queue.CreateQueues(ctx, client, "pushfn", 15, 6*time.Minute)
	if err != nil {
		return
	}
	p := queue.NewProducer(client, url)
	for i, err := range p.Send(ctx, []queue.Entry{{Body: `{"id":"msg_1"}`}, {Body: `{"id":"msg_2"}`, DelaySeconds: 60}}) {
		switch {
		case err == nil: // queued
		case errors.Is(err, queue.ErrPermanent):
			slog.Error("message refused", "index", i, "err", err)
		default: // queue.ErrRetryable: answer 503, the caller retries
			slog.Warn("message not queued", "index", i, "err", err)
		}
	}
}
