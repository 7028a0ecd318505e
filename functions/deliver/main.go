// Command deliver is the delivery function (DESIGN §4): SQS batches in, partial batch responses out.
package main

import (
	"context"
	"errors"
	"log/slog"
	"os"

	"github.com/aws/aws-lambda-go/lambda"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/pushfn/pushfn/shared/config"
	"github.com/pushfn/pushfn/shared/deliver"
	"github.com/pushfn/pushfn/shared/push"
	"github.com/pushfn/pushfn/shared/store"
)

var version = "dev" // set with -ldflags "-X main.version=..."

func main() {
	deliver.TuneGC(os.Getenv)
	cfg, err := config.Load(os.Getenv)
	aws, awsErr := awsconfig.LoadDefaultConfig(context.Background())
	if err = errors.Join(err, awsErr); err != nil {
		slog.Error("deliver: configuration", "error", err.Error())
		os.Exit(1)
	}
	push.ReserveFDs(cfg.MaxConcurrency + push.FDMargin) // one connection per delivery in flight
	sender := push.NewClient(push.Options{
		MaxPerHost:   cfg.MaxPerHost,
		MaxIdleConns: cfg.MaxConcurrency, // no more idle than in flight: far from Lambda's 1,024 files
		AllowPrivate: cfg.AllowPrivateTargets,
		Keys:         cfg.SigningSecrets,
		Version:      version,
	})
	h := &deliver.Handler{
		Store:    store.NewDynamoDB(dynamodb.NewFromConfig(aws), cfg.TableName, cfg.RecordTTL),
		Sender:   sender,
		Queue:    sqs.NewFromConfig(aws),
		QueueURL: cfg.QueueURL,
		Config:   cfg,
		Log:      slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: cfg.LogLevel})),
	}
	lambda.Start(h.Handle)
}
