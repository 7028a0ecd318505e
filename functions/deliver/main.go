// Command deliver is the delivery function (DESIGN §4): SQS batches in, partial batch responses out.
package main

import (
	"context"
	"errors"
	"log/slog"
	"os"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambda"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/pushfn/pushfn/shared/config"
)

func main() {
	level := new(slog.LevelVar)
	log := slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	cfg, err := config.Load(os.Getenv)
	if err != nil {
		log.Error("deliver: cannot start", "error", err.Error())
		os.Exit(1)
	}
	level.Set(cfg.LogLevel)
	if _, err := awsconfig.LoadDefaultConfig(context.Background()); err != nil {
		log.Error("deliver: AWS configuration", "error", err.Error())
		os.Exit(1)
	}
	lambda.Start(func(ctx context.Context, _ events.SQSEvent) (events.SQSEventResponse, error) {
		log.ErrorContext(ctx, "deliver function is not built yet")
		return events.SQSEventResponse{}, errors.New("deliver: not built yet")
	})
}
