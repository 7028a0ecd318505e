// Command relay is the event relay function (DESIGN §5, EventBridge/SNS/direct): wiring only.
package main

import (
	"context"
	"log/slog"
	"os"

	"github.com/aws/aws-lambda-go/lambda"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/pushfn/pushfn/shared/config"
	"github.com/pushfn/pushfn/shared/ingest"
	"github.com/pushfn/pushfn/shared/message"
	"github.com/pushfn/pushfn/shared/queue"
	"github.com/pushfn/pushfn/shared/relay"
	"github.com/pushfn/pushfn/shared/store"
)

func main() {
	cfg, err := config.Load(os.Getenv)
	if err != nil {
		slog.Error("start", "error", err)
		os.Exit(1)
	}
	logger := slog.New(slog.NewJSONHandler(os.Stdout, &slog.HandlerOptions{Level: cfg.LogLevel}))
	aws, err := awsconfig.LoadDefaultConfig(context.Background())
	if err != nil {
		logger.Error("load AWS configuration", "error", err)
		os.Exit(1)
	}
	records := store.NewDynamoDB(dynamodb.NewFromConfig(aws), cfg.TableName, cfg.RecordTTL)
	enq := &ingest.Enqueuer{Store: records, Producer: queue.NewProducer(sqs.NewFromConfig(aws), cfg.QueueURL), Logger: logger}
	rules := message.Rules{MaxPayloadBytes: cfg.MaxPayloadBytes, AllowHTTPTargets: cfg.AllowHTTPTargets, AllowPrivateTargets: cfg.AllowPrivateTargets}
	h := &relay.Handler{Enqueuer: enq, Rules: rules, Logger: logger}
	lambda.Start(h.Handle)
}
